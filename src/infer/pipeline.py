"""Score audio files: decode once, window, run every member with TTA, blend, post-process.

This is the one scoring path. The field command, the Kaggle submission, the pre-submit checklist
and the held-out-site harness all go through `Scorer`, which is what makes the harness
submission-parity by construction.

Scoring has two passes:

1. Member outputs (`Scorer.iter_member_outputs`): each file is decoded once and cut into chunks of
   windows. Per chunk, the log-mel is computed once per front-end specification and shared by
   every member and TTA shift that uses it. Each member then runs once on all windows x shifts of
   the chunk, and its probabilities are averaged over the shifts.
2. Blending and post-processing (`Scorer.finish`) over a set of files. Probability blending needs
   one file at a time, so `score_files` streams. Rank blending ranks over every window of the set,
   so it waits for the member outputs of every file first.

Decoding and front-end work run in a background thread, a few chunks ahead of the members
(`ScoringConfig.prefetch_chunks`), so they overlap with ONNX Runtime, which releases the GIL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from infer.audio import AudioDecodeError, AudioInfo, AudioStream, DecodeReport
from infer.blend import BlendConfig, blend_file_set
from infer.frontend import FrontendSpec, NumpyFrontend
from infer.i18n import _
from infer.member import OnnxMember, sigmoid
from infer.postproc import PostprocConfig, compatibility_problem, genus_groups, postprocess
from infer.prefetch import in_background
from infer.taxonomy import Taxonomy
from infer.teacher import SUB_WINDOW_POLICIES, Teacher, TeacherMapping, map_to_taxonomy, teacher_probabilities
from infer.windows import WindowChunk, Windower, row_id, window_bounds

log = logging.getLogger(__name__)

# Receives each decoded mono block of a file, in order.
BlockCallback = Callable[[np.ndarray], None]

DEFAULT_TTA_SHIFTS = (-0.5, 0.0, 0.5)


@dataclass
class ScoringConfig:
    """Scoring settings.

    Attributes:
        tta_shifts: Time shifts in seconds; each member's probabilities are averaged over them.
            Shifts of -0.5 and +0.5 s bring a call cut by a window edge into the window while
            the window's centre stays inside it. 0.5 s is a whole number of 500-sample hops, so
            the shifted windows reuse the file's spectrogram.
        blend: How members are combined.
        postproc: Post-processing; None skips it (raw blended probabilities).
        teacher_weight: Weight of the teacher member in the blend, on the classes it can see.
            0 (default) keeps the teacher out of the blend, so it acts only through gating.
        teacher_tta: Run the teacher on every shift too. Off by default because it costs as much
            as the teacher itself per shift, and its sub-windows already overlap.
        teacher_sub_windows: "cover" (every part of a window heard) or "centre" (one teacher
            window per window, half of BirdNET's compute); see `infer.teacher`.
        channel: 0-based channel to score; None downmixes.
        windows_per_chunk: Windows decoded and scored together; bounds memory on long files.
            12 makes a 60 s soundscape one chunk, so each member runs once per file.
        prefetch_chunks: Chunks prepared ahead in a background thread; 0 prepares them inline.
    """

    tta_shifts: tuple[float, ...] = DEFAULT_TTA_SHIFTS
    blend: BlendConfig = field(default_factory=BlendConfig)
    postproc: PostprocConfig | None = field(default_factory=PostprocConfig)
    teacher_weight: float = 0.0
    teacher_tta: bool = False
    teacher_sub_windows: str = "cover"
    channel: int | None = None
    windows_per_chunk: int = 12
    prefetch_chunks: int = 2

    def __post_init__(self) -> None:
        self.tta_shifts = tuple(float(s) for s in self.tta_shifts)
        problems = []
        if not self.tta_shifts:
            problems.append("tta_shifts is empty; use (0.0,) to score each window once")
        if not (np.isfinite(self.teacher_weight) and self.teacher_weight >= 0):
            problems.append(f"teacher_weight={self.teacher_weight} must be finite and >= 0")
        if self.teacher_sub_windows not in SUB_WINDOW_POLICIES:
            problems.append(f"teacher_sub_windows={self.teacher_sub_windows!r} is not one of {SUB_WINDOW_POLICIES}")
        if self.windows_per_chunk < 1:
            problems.append(f"windows_per_chunk={self.windows_per_chunk} must be >= 1")
        if self.prefetch_chunks < 0:
            problems.append(f"prefetch_chunks={self.prefetch_chunks} must be >= 0")
        if problems:
            raise ValueError("invalid scoring configuration: " + "; ".join(problems))

    def to_dict(self) -> dict[str, object]:
        """Return the settings a bundle records. Channel and prefetching are chosen per run."""
        return {
            "tta_shifts": list(self.tta_shifts),
            "blend": self.blend.to_dict(),
            "postproc": None if self.postproc is None else self.postproc.to_dict(),
            "teacher_weight": self.teacher_weight,
            "teacher_tta": self.teacher_tta,
            "teacher_sub_windows": self.teacher_sub_windows,
            "windows_per_chunk": self.windows_per_chunk,
        }

    @classmethod
    def from_dict(cls, values: dict[str, object], **run_options: object) -> ScoringConfig:
        """Build from a bundle's `scoring` section plus run options (channel, prefetch_chunks)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown scoring keys {unknown}; known keys are {sorted(names)}")
        values = dict(values)
        if "blend" in values:
            values["blend"] = BlendConfig.from_dict(values["blend"])
        if values.get("postproc") is not None:
            values["postproc"] = PostprocConfig.from_dict(values["postproc"])
        return cls(**values, **run_options)


@dataclass
class FileScores:
    """Scores of every window of one file.

    Attributes:
        path: The audio file.
        row_ids: `<stem>_<end second>` per window.
        starts: Window start times in seconds `[W]`.
        ends: Real window end times in seconds `[W]` (the last window may be shorter).
        scores: Final scores `[W, C]` after blending and post-processing.
        member_scores: TTA-averaged probabilities `[W, C]` of each member before blending.
        teacher_scores: Teacher probabilities mapped to the taxonomy `[W, C]`, if a teacher ran.
        info: The file's header values.
        report: What decoding found.
    """

    path: Path
    row_ids: list[str]
    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray
    member_scores: dict[str, np.ndarray]
    teacher_scores: np.ndarray | None
    info: AudioInfo
    report: DecodeReport

    @property
    def n_windows(self) -> int:
        return len(self.row_ids)

    @property
    def decoded_seconds(self) -> float:
        return self.report.decoded_frames / self.info.sample_rate


@dataclass
class MemberOutputs:
    """Pass-1 result of one file: every member's TTA-averaged probabilities, not yet blended.

    Attributes:
        path: The audio file.
        row_ids: `<stem>_<end second>` per window.
        starts: Window start times in seconds `[W]`.
        ends: Real window end times in seconds `[W]`.
        member_scores: Probabilities `[W, C]` of each CNN member, by member name.
        teacher_scores: Teacher probabilities mapped to the taxonomy `[W, C]`, if a teacher ran.
        info: Header fields of the file.
        report: Decoding record (decoded length, non-finite samples).
    """

    path: Path
    row_ids: list[str]
    starts: np.ndarray
    ends: np.ndarray
    member_scores: dict[str, np.ndarray]
    teacher_scores: np.ndarray | None
    info: AudioInfo
    report: DecodeReport


@dataclass
class PreparedChunk:
    """The CPU-side work of one chunk of windows, ready for the members.

    Attributes:
        file_index: Position of the chunk's file in the scored sequence.
        n_windows: Windows in the chunk.
        logmels: Front-end fingerprint to model input `[shifts * n_windows, 1, M, F]`.
        teacher_input: Teacher sub-windows `[teacher shifts * n_windows * per_window, samples]`.
        teacher_per_window: Teacher sub-windows per window.
    """

    file_index: int
    n_windows: int
    logmels: dict[str, np.ndarray]
    teacher_input: np.ndarray | None
    teacher_per_window: int


@dataclass
class _FileDone:
    file_index: int
    path: Path
    stream: AudioStream
    n_windows: int
    total_samples: int


@dataclass
class _FileFailed:
    file_index: int
    error: AudioDecodeError


class Scorer:
    """Runs CNN members (and optionally a teacher) over files.

    Args:
        members: CNN members with distinct names; all must share the sample rate and window length.
        taxonomy: Output class order; every member must match it.
        config: TTA, blend and post-processing.
        teacher: Optional teacher member, mapped to the taxonomy by scientific name.

    Attributes:
        compute_seconds: Seconds spent inside each member's runtime, by member name (the teacher
            under its own name), summed over every file scored. The benchmark's overhead ratio
            divides by it.
    """

    def __init__(
        self,
        members: list[OnnxMember],
        taxonomy: Taxonomy,
        config: ScoringConfig | None = None,
        teacher: Teacher | None = None,
    ) -> None:
        if not members:
            raise ValueError("a scorer needs at least one CNN member")
        names = [m.name for m in members] + ([teacher.name] if teacher is not None else [])
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"member names must be unique, got {duplicates} more than once")
        self.members = members
        self.taxonomy = taxonomy
        self.config = config or ScoringConfig()
        for member in members:
            member.check_taxonomy(taxonomy)
        self.sample_rate, self.window_samples = _common_grid([m.frontend for m in members])
        self.shift_samples = [int(round(s * self.sample_rate)) for s in self.config.tta_shifts]
        self.margin = max(abs(s) for s in self.shift_samples)

        # Members with the same specification share one front-end computation.
        self.frontends: dict[str, NumpyFrontend] = {}
        for member in members:
            self.frontends.setdefault(member.frontend.fingerprint(), NumpyFrontend(member.frontend))

        self.teacher = teacher
        self.teacher_mapping: TeacherMapping | None = None
        if teacher is not None:
            self.teacher_mapping = map_to_taxonomy(teacher.labels, taxonomy)
            log.info(_("teacher %s sees %d of %d classes"), teacher.name, len(self.teacher_mapping.matched), len(taxonomy))
        self.genus_groups = genus_groups([t.genus for t in taxonomy.taxa])
        self.compute_seconds: dict[str, float] = {name: 0.0 for name in names}
        self._warn_about_config()

    def _warn_about_config(self) -> None:
        problem = compatibility_problem(self.config.blend.mode, self.config.postproc)
        if problem:
            log.warning("%s", problem)
        postproc = self.config.postproc
        if self.teacher is None and postproc is not None and postproc.teacher_gate > 0:
            log.debug("no teacher member: teacher gating (strength %.2f) is skipped", postproc.teacher_gate)

    @property
    def window_seconds(self) -> float:
        return self.window_samples / self.sample_rate

    def score_file(self, path: Path | str, on_block: BlockCallback | None = None) -> FileScores:
        """Score every window of one file.

        In rank blend mode the ranks are taken within this file only; use `score_files` to rank
        over a file set.

        Args:
            path: Audio file.
            on_block: Called with every decoded mono block at `sample_rate`, in order (for
                progress and spectrograms that must not hold the whole file). It runs on the
                prefetch thread when prefetching is on.

        Raises:
            AudioDecodeError: The file cannot be decoded (the caller records it and goes on).
        """
        observe = None if on_block is None else (lambda _path: on_block)
        with closing(self.iter_member_outputs([path], observe=observe)) as outputs:
            return self.finish([next(outputs)])[0]

    def score_files(
        self,
        paths: Iterable[Path | str],
        on_error: Callable[[AudioDecodeError], None] | None = None,
        observe: Callable[[Path], BlockCallback | None] | None = None,
    ) -> Iterator[FileScores]:
        """Score files in order, preparing the next chunks while the members run.

        Probability blending yields each file as soon as it is scored. Rank blending needs every
        file's member outputs first, so it yields nothing until the whole set is scored.

        Args:
            paths: Audio files.
            on_error: Called with each file that cannot be decoded; that file then yields nothing.
                None raises the error instead.
            observe: Given each path, returns a callback for its decoded blocks (see `score_file`)
                or None.
        """
        with closing(self.iter_member_outputs(paths, on_error, observe)) as outputs:
            if self.config.blend.mode == "rank":
                yield from self.finish(list(outputs))
                return
            for output in outputs:
                yield self.finish([output])[0]

    def member_outputs(self, path: Path | str) -> MemberOutputs:
        """Pass 1 on one file: every member's TTA-averaged probabilities.

        Raises:
            AudioDecodeError: The file cannot be decoded.
        """
        with closing(self.iter_member_outputs([path])) as outputs:
            return next(outputs)

    def iter_member_outputs(
        self,
        paths: Iterable[Path | str],
        on_error: Callable[[AudioDecodeError], None] | None = None,
        observe: Callable[[Path], BlockCallback | None] | None = None,
    ) -> Iterator[MemberOutputs]:
        """Pass 1 on files in order; see `score_files` for `on_error` and `observe`."""
        items: Iterator = self.prepare_files(paths, observe)
        if self.config.prefetch_chunks > 0:
            items = in_background(items, self.config.prefetch_chunks)
        open_file: dict[int, tuple[list[dict[str, np.ndarray]], list[np.ndarray]]] = {}
        with closing(items):  # stops the prefetch thread when the caller stops early
            for item in items:
                if isinstance(item, _FileFailed):
                    open_file.pop(item.file_index, None)
                    if on_error is None:
                        raise item.error
                    on_error(item.error)
                elif isinstance(item, PreparedChunk):
                    member_parts, teacher_parts = open_file.setdefault(item.file_index, ([], []))
                    member_parts.append(self._run_members(item))
                    if item.teacher_input is not None:
                        teacher_parts.append(self._run_teacher(item))
                else:
                    member_parts, teacher_parts = open_file.pop(item.file_index, ([], []))
                    yield self._collect(item, member_parts, teacher_parts)

    def finish(self, outputs: list[MemberOutputs]) -> list[FileScores]:
        """Pass 2 on a file set: blend (rank mode ranks over the whole set), then post-process each file."""
        blended = blend_file_set(
            [self._blend_inputs(o.member_scores, o.teacher_scores) for o in outputs],
            self._blend_weights(), self._blend_coverage(), self.config.blend.mode,
        )
        return [self._file_scores(output, scores) for output, scores in zip(outputs, blended)]

    def blend(self, member_scores: dict[str, np.ndarray], teacher_scores: np.ndarray | None) -> np.ndarray:
        """Blend the member scores of one file (rank mode ranks within these windows only)."""
        inputs = self._blend_inputs(member_scores, teacher_scores)
        return blend_file_set([inputs], self._blend_weights(), self._blend_coverage(), self.config.blend.mode)[0]

    # Pass 1, CPU side: decoding and front-end work, run in the prefetch thread.

    def prepare_files(
        self, paths: Iterable[Path | str], observe: Callable[[Path], BlockCallback | None] | None = None
    ) -> Iterator[PreparedChunk | _FileDone | _FileFailed]:
        """Decode, window and prepare every chunk of `paths`; other items mark a file's end or failure.

        The benchmark uses it to time each member on exactly the batches scoring gives it.
        """
        for index, path in enumerate(paths):
            path = Path(path)
            try:
                stream = AudioStream(path, self.sample_rate, self.config.channel)
                windower = Windower(self.window_samples, self.margin, self.config.windows_per_chunk)
                on_block = observe(path) if observe is not None else None
                blocks = stream.blocks() if on_block is None else _observed(stream.blocks(), on_block)
                for chunk in windower.chunks(blocks):
                    yield self._prepare_chunk(index, chunk)
            except AudioDecodeError as exc:
                yield _FileFailed(index, exc)
                continue
            yield _FileDone(index, path, stream, windower.n_windows, windower.total_samples)

    def _prepare_chunk(self, file_index: int, chunk: WindowChunk) -> PreparedChunk:
        starts = np.concatenate([chunk.starts(s) for s in self.shift_samples])
        logmels = {key: frontend.logmel_from_starts(chunk.samples, starts) for key, frontend in self.frontends.items()}
        teacher_input, per_window = None, 0
        if self.teacher is not None:
            shifts = self.shift_samples if self.config.teacher_tta else [0]
            windows = np.concatenate([chunk.windows(s) for s in shifts])
            teacher_input, per_window = self.teacher.cut_windows(windows, self.sample_rate, self.config.teacher_sub_windows)
        return PreparedChunk(file_index, chunk.n_windows, logmels, teacher_input, per_window)

    # Pass 1, runtime side: the members, run in the calling thread.

    def _run_members(self, chunk: PreparedChunk) -> dict[str, np.ndarray]:
        n_shifts = len(self.shift_samples)
        probabilities = {}
        for member in self.members:
            started = time.perf_counter()
            logits = member.logits(chunk.logmels[member.frontend.fingerprint()])  # [S * n, C]
            self.compute_seconds[member.name] += time.perf_counter() - started
            # TTA is averaged in probability space, never on logits.
            probabilities[member.name] = sigmoid(logits).reshape(n_shifts, chunk.n_windows, -1).mean(axis=0)
        return probabilities

    def _run_teacher(self, chunk: PreparedChunk) -> np.ndarray:
        started = time.perf_counter()
        logits, _ = self.teacher.score_cut(chunk.teacher_input, chunk.teacher_per_window, want_embedding=False)
        self.compute_seconds[self.teacher.name] += time.perf_counter() - started
        n_shifts = len(logits) // chunk.n_windows
        probabilities = teacher_probabilities(logits).reshape(n_shifts, chunk.n_windows, -1).mean(axis=0)
        return self.teacher_mapping.to_taxonomy(probabilities)

    def _collect(
        self, done: _FileDone, member_parts: list[dict[str, np.ndarray]], teacher_parts: list[np.ndarray]
    ) -> MemberOutputs:
        member_scores = {m.name: np.concatenate([p[m.name] for p in member_parts]) for m in self.members}
        starts, ends = window_bounds(done.n_windows, done.total_samples / self.sample_rate, self.window_seconds)
        return MemberOutputs(
            path=done.path,
            row_ids=[row_id(done.path.stem, w, self.window_seconds) for w in range(done.n_windows)],
            starts=starts,
            ends=ends,
            member_scores=member_scores,
            teacher_scores=np.concatenate(teacher_parts) if teacher_parts else None,
            info=done.stream.info,
            report=done.stream.report,
        )

    # Pass 2: blending and post-processing.

    def _blends_teacher(self) -> bool:
        return self.teacher is not None and self.config.teacher_weight > 0

    def _blend_inputs(self, member_scores: dict[str, np.ndarray], teacher_scores: np.ndarray | None) -> list[np.ndarray]:
        inputs = [member_scores[m.name] for m in self.members]
        if self._blends_teacher():
            if teacher_scores is None:
                raise ValueError("the blend includes the teacher but no teacher scores were given")
            inputs.append(teacher_scores)
        return inputs

    def _blend_weights(self) -> list[float]:
        weights = [self.config.blend.weight(m.name) for m in self.members]
        return weights + ([self.config.teacher_weight] if self._blends_teacher() else [])

    def _blend_coverage(self) -> list[np.ndarray | None]:
        coverage: list[np.ndarray | None] = [None] * len(self.members)
        return coverage + ([self.teacher_mapping.visible] if self._blends_teacher() else [])

    def _file_scores(self, output: MemberOutputs, blended: np.ndarray) -> FileScores:
        scores = blended
        if self.config.postproc is not None:
            visible = self.teacher_mapping.visible if self.teacher_mapping is not None else None
            scores = postprocess(blended, self.config.postproc, self.genus_groups, output.teacher_scores, visible)
        return FileScores(
            path=output.path,
            row_ids=output.row_ids,
            starts=output.starts,
            ends=output.ends,
            scores=scores,
            member_scores=output.member_scores,
            teacher_scores=output.teacher_scores,
            info=output.info,
            report=output.report,
        )


def _observed(blocks: Iterable[np.ndarray], on_block: BlockCallback) -> Iterator[np.ndarray]:
    for block in blocks:
        on_block(block)
        yield block


def _common_grid(specs: list[FrontendSpec]) -> tuple[int, int]:
    grids = {(s.sample_rate, s.window_samples) for s in specs}
    if len(grids) != 1:
        raise ValueError(
            f"members disagree on sample rate and window length {sorted(grids)}; "
            "all CNN members of one scorer must share the window grid"
        )
    return grids.pop()
