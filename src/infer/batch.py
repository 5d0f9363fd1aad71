"""The batch runner behind `pantanal infer`: every file scored once, and outputs that survive.

For each input file, in order:

1. with `--resume`, a file whose part folder under `<out>/files/` is complete and valid is
   skipped (its human-facing parts are rebuilt from the stored scores if the display options
   changed);
2. the header is checked: a file whose header declares more audio than the file contains is
   truncated, a per-file error unless `--allow-truncated`;
3. the file is scored, with the decoded blocks feeding the progress bar and the spectrogram;
4. a decode that produced no audio, or less than the header declares, is a per-file error;
5. its parts are written atomically, `done.json` last.

A failed file is recorded with its cause and the batch goes on. After the loop the run-level
outputs (submission.csv, detections.csv, Raven and Audacity tables, report.html, errors.csv,
summary) are assembled from the parts of every file that has them, each atomically.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infer.atomic import atomic_open, atomic_write_text
from infer.audio import (
    AudioDecodeError,
    declared_length_error,
    decoded_length_error,
    length_difference_note,
    probe,
)
from infer.budget import BudgetExceeded, BudgetGuard
from infer.i18n import _, current_language, decimal
from infer.loading import Provenance
from infer.outputs import parts
from infer.outputs.audacity import write_audacity_labels
from infer.outputs.detections import (
    DETECTION_COLUMNS,
    DisplayFilter,
    hidden_detections,
    shown_detections,
    write_detection_rows,
)
from infer.outputs.raven import write_raven_table
from infer.outputs.report import ReportFile, ReportRun, ReportWriter
from infer.outputs.spectrogram import Spectrogram, SpectrogramBuilder
from infer.outputs.submission import write_submission_header, write_submission_rows
from infer.outputs.summary import FAILED, PROCESSED, SKIPPED, FileOutcome, RunSummary, format_summary
from infer.outputs.summary import write_errors_csv, write_summary_json
from infer.pipeline import FileScores, Scorer
from infer.progress import Progress
from infer.species_list import SpeciesList

log = logging.getLogger(__name__)

FORMATS = ("submission", "detections", "raven", "audacity", "html")
# Row ids of the windows that had NaN/Inf samples, listed in a note before it is shortened.
_MAX_LISTED_WINDOWS = 10


class OutputWriteError(RuntimeError):
    """The output folder cannot be written (full disk, permissions); the run cannot go on."""


@dataclass(frozen=True)
class BatchOptions:
    """Settings of one batch: what it writes and how it treats broken files.

    Attributes:
        out: Output folder.
        formats: Run-level outputs to write, a subset of `FORMATS`.
        display: `--top-k`, `--min-score` and the species-list mask for human-facing outputs.
        species_list: The site species list, if any.
        resume: Skip files whose parts are complete and valid.
        allow_truncated: Score the decoded part of a truncated file instead of failing it.
        budget_minutes: Time budget for the whole batch; None disables the guard.
        budget_action: "warn" or "stop" when the projection exceeds the budget.
        progress: Draw the progress bar; None draws it on a terminal.
    """

    out: Path
    formats: frozenset[str]
    display: DisplayFilter
    species_list: SpeciesList | None = None
    resume: bool = False
    allow_truncated: bool = False
    budget_minutes: float | None = None
    budget_action: str = "warn"
    progress: bool | None = None


@dataclass
class _Done:
    # A file whose parts are complete: what the run-level outputs are assembled from.
    outcome: FileOutcome
    path: Path
    directory: Path
    record: dict[str, Any]


class BatchRunner:
    """Score a list of files with one scorer and write every output.

    Args:
        scorer: The model or bundle, ready to score.
        provenance: Where the scores come from (written into outputs and the report).
        options: What to write and how to treat broken files.
    """

    def __init__(self, scorer: Scorer, provenance: Provenance, options: BatchOptions) -> None:
        self.scorer = scorer
        self.provenance = provenance
        self.options = options
        config = asdict(scorer.config) if is_dataclass(scorer.config) else repr(scorer.config)
        self.scoring_fingerprint = parts.fingerprint({"model": provenance.sha256, "config": config})
        self.progress_drawn = False

    def run(self, files: list[Path]) -> RunSummary:
        """Process `files` in order and assemble the run-level outputs.

        Raises:
            OutputWriteError: A part or output could not be written.
        """
        started = time.monotonic()
        keys = {path: parts.part_key(path) for path in files}
        results: dict[Path, FileOutcome | _Done] = {}

        # reuse what a previous run completed
        if self.options.resume:
            for path in files:
                try:
                    reused = self._reuse(path, keys[path])
                except OSError as exc:
                    raise _write_error(self.options.out, exc) from exc
                if reused is not None:
                    results[path] = reused
        pending = [path for path in files if path not in results]
        log.info(_("%d file(s) to process, %d already complete"), len(pending), len(files) - len(pending))

        # score the rest
        stopped = self._process_all(pending, keys, results)

        # assemble the run-level outputs from every complete part folder
        done = [r for r in (results[p] for p in files) if isinstance(r, _Done)]
        outcomes = [r.outcome if isinstance(r, _Done) else r for r in (results[p] for p in files)]
        summary = RunSummary(outcomes=outcomes, out=self.options.out, stopped=stopped)
        try:
            summary.repeated_row_ids = self._assemble(done, summary)
        except OSError as exc:
            raise _write_error(self.options.out, exc) from exc
        summary.elapsed_s = time.monotonic() - started
        self._write_summary(summary)
        return summary

    def _process_all(self, pending: list[Path], keys: dict[Path, str], results: dict) -> str | None:
        guard = None
        if self.options.budget_minutes is not None and pending:
            guard = BudgetGuard(len(pending), self.options.budget_minutes, action=self.options.budget_action)
        progress = Progress(len(pending), _estimate_windows(pending, self.scorer.window_seconds),
                            self.scorer.window_samples, enabled=self.options.progress)
        self.progress_drawn = progress.enabled
        started = time.monotonic()
        with progress, closing(self._outcomes(pending, keys, progress)) as outcomes:
            for count, (path, outcome) in enumerate(outcomes, start=1):
                results[path] = outcome
                if guard is None:
                    continue
                try:
                    guard.after_file(count, time.monotonic() - started)
                except BudgetExceeded as exc:
                    log.error("%s", exc)
                    for rest in (p for p in pending if p not in results):
                        results[rest] = FileOutcome(
                            str(rest), FAILED, keys[rest], error="not_processed",
                            cause=_("not processed: the run stopped early at the time budget"))
                    return str(exc)
        return None

    def _outcomes(self, pending: list[Path], keys: dict[Path, str], progress: Progress) -> Iterator[tuple[Path, Any]]:
        """Yield `(path, outcome)` for every pending file, scoring them as one stream.

        `Scorer.score_files` decodes the next file while the models run on the current one. A
        file that fails for a reason other than its audio (a bug) ends that stream: it is recorded
        as an internal error and the stream restarts after it, so the batch still goes on.
        """
        remaining = list(pending)
        while remaining:
            run = _ScoringRun(self, remaining, progress)
            try:
                for path, outcome in run.outcomes(keys):
                    yield path, outcome
                return
            except Exception as exc:  # noqa: BLE001 - one file's unexpected failure must not end a night's batch
                culprit = run.first_unfinished()
                log.exception("unexpected error while scoring %s", culprit)
                progress.finish_file(0)
                cause = _("unexpected error (%s: %s); please report it with the log above") % (type(exc).__name__, exc)
                yield culprit, FileOutcome(str(culprit), FAILED, keys[culprit], error="internal", cause=cause)
                remaining = remaining[remaining.index(culprit) + 1 :]

    # ---- one file

    def _reuse(self, path: Path, key: str) -> _Done | FileOutcome | None:
        directory = self._directory(key)
        try:
            expected = {"source": parts.source_identity(path), "scoring": self.scoring_fingerprint}
        except OSError:
            return None
        record = parts.read_done(directory)
        reason = parts.invalid_reason(directory, record, expected, self._required_parts())
        if reason is None and record.get("truncated") and not self.options.allow_truncated:
            reason = "scored while truncated, and --allow-truncated is not given"
        if reason is None:
            if record.get("display") != self._display_fingerprint(path):
                record = self._rewrite_display_parts(path, directory, record)
            outcome = FileOutcome(str(path), SKIPPED, key, rows=record["rows"], notes=self._notes(record), reused=True)
            return _Done(outcome, path, directory, record)
        failure = parts.read_failed(directory, expected)
        if failure is not None and failure.get("allow_truncated") == self.options.allow_truncated:
            return FileOutcome(str(path), FAILED, key, error=failure["error"], cause=failure["cause"], reused=True)
        log.debug("%s: processing again (%s)", path, reason)
        return None

    def _failed(self, path: Path, key: str, error: AudioDecodeError) -> FileOutcome:
        log.error(_("%s failed: %s"), path, error.cause)
        self._record_failure(path, key, error)
        return FileOutcome(str(path), FAILED, key, error=error.code, cause=error.cause)

    def _completed(self, path: Path, key: str, scores: FileScores, spectrogram: Spectrogram | None,
                   started: float) -> FileOutcome | _Done:
        error = decoded_length_error(scores.info, scores.report)
        truncated = error is not None and error.code == "truncated"
        if error is not None and not (truncated and self.options.allow_truncated):
            return self._failed(path, key, error)

        directory = self._directory(key)
        try:
            record = self._write_parts(path, directory, scores, spectrogram, truncated)
        except OSError as exc:
            raise OutputWriteError(_("cannot write the outputs of %s to %s: %s") % (
                path, directory, exc.strerror or exc)) from exc
        seconds = time.monotonic() - started
        # With a progress bar on screen the per-file line is noise; the summary lists every file.
        level = logging.DEBUG if self.progress_drawn else logging.INFO
        log.log(level, _("%s: %d window(s) scored in %s s"), path, scores.n_windows, decimal(seconds, 1))
        outcome = FileOutcome(str(path), PROCESSED, key, rows=scores.n_windows, notes=self._notes(record),
                              seconds=round(seconds, 3))
        return _Done(outcome, path, directory, record)

    def _record_failure(self, path: Path, key: str, error: AudioDecodeError) -> None:
        # A missing decoder is fixed by installing one, not by changing the file: retry it.
        if error.code == "no_decoder":
            return
        try:
            source = parts.source_identity(path)
        except OSError:
            return  # the input itself is gone; nothing to remember it by
        try:
            parts.write_failed(self._directory(key), {
                "source": source, "scoring": self.scoring_fingerprint,
                "allow_truncated": self.options.allow_truncated, "error": error.code, "cause": error.cause,
            })
        except OSError as exc:
            raise _write_error(self.options.out, exc) from exc

    def _write_parts(
        self, path: Path, directory: Path, scores: FileScores, spectrogram: Spectrogram | None, truncated: bool,
    ) -> dict[str, Any]:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / parts.DONE).unlink(missing_ok=True)
        parts.write_scores(directory, scores)
        with atomic_open(directory / parts.SUBMISSION) as handle:
            write_submission_rows(handle, scores)
        names = [parts.SCORES, parts.SUBMISSION]
        if spectrogram is not None:
            with atomic_open(directory / parts.SPECTROGRAM, "wb") as handle:
                handle.write(spectrogram.png)
            names.append(parts.SPECTROGRAM)
        names += self._write_display_parts(directory, scores)
        record = {
            "source": parts.source_identity(path),
            "scoring": self.scoring_fingerprint,
            "display": self._display_fingerprint(path),
            "rows": scores.n_windows,
            "truncated": truncated,
            "window_seconds": self.scorer.window_seconds,
            "spectrogram": None if spectrogram is None else {
                "seconds_per_column": spectrogram.seconds_per_column, "columns": spectrogram.columns,
                "fmax": spectrogram.fmax,
            },
            **parts.decode_record(scores.info, scores.report),
        }
        return parts.write_done(directory, record, names)

    def _write_display_parts(self, directory: Path, scores: FileScores) -> list[str]:
        formats = self.options.formats
        shown = shown_detections(scores, self.scorer.taxonomy, self.options.display)
        names = []
        if "detections" in formats:
            with atomic_open(directory / parts.DETECTIONS) as handle:
                write_detection_rows(handle, shown, self.provenance.identifier)
            names.append(parts.DETECTIONS)
        if "raven" in formats:
            spec = self.scorer.members[0].frontend
            channel = (self.scorer.config.channel or 0) + 1
            write_raven_table(directory / parts.RAVEN, shown, channel, spec.fmin, spec.fmax)
            names.append(parts.RAVEN)
        if "audacity" in formats:
            write_audacity_labels(directory / parts.AUDACITY, shown)
            names.append(parts.AUDACITY)
        return names

    def _rewrite_display_parts(self, path: Path, directory: Path, record: dict[str, Any]) -> dict[str, Any]:
        # The stored scores are exact, so new display options need no rescoring.
        scores = parts.load_scores(directory, record, path)
        scoring_parts = [n for n in (parts.SCORES, parts.SUBMISSION, parts.SPECTROGRAM) if n in record["parts"]]
        names = scoring_parts + self._write_display_parts(directory, scores)
        record = {**record, "display": self._display_fingerprint(path)}
        record.pop("parts")
        return parts.write_done(directory, record, names)

    # ---- settings and notes

    def _directory(self, key: str) -> Path:
        return self.options.out / "files" / key

    def _required_parts(self) -> list[str]:
        required = [parts.SCORES, parts.SUBMISSION]
        if "html" in self.options.formats:
            required.append(parts.SPECTROGRAM)
        return required

    def _display_fingerprint(self, path: Path) -> str:
        display = self.options.display
        return parts.fingerprint({
            "file": str(path),
            "formats": sorted(self.options.formats),
            "top_k": display.top_k,
            "min_score": display.min_score,
            "species_list": self.options.species_list.sha256 if self.options.species_list else None,
            "language": current_language(),
            "bundle_id": self.provenance.identifier,
        })

    def _notes(self, record: dict[str, Any]) -> list[str]:
        info, report = parts.decode_objects(record)
        notes = []
        difference = length_difference_note(info, report)
        if difference:
            notes.append(difference)
        if record.get("truncated"):
            notes.append(_("truncated file: only the decoded part was scored (--allow-truncated)"))
        if report.nonfinite_samples:
            notes.append(_nonfinite_note(report.nonfinite_samples, report.nonfinite_seconds, record))
        return notes

    # ---- run-level outputs

    def _assemble(self, done: list[_Done], summary: RunSummary) -> int:
        out, formats = self.options.out, self.options.formats
        out.mkdir(parents=True, exist_ok=True)
        if "submission" in formats:
            header = io.StringIO()
            write_submission_header(header, self.scorer.taxonomy.labels)
            _concatenate(done, parts.SUBMISSION, out / "submission.csv", header.getvalue())
            summary.outputs.append("submission.csv")
        if "detections" in formats:
            _concatenate(done, parts.DETECTIONS, out / "detections.csv", ",".join(DETECTION_COLUMNS) + "\n")
            summary.outputs.append("detections.csv")
        for fmt, part, folder, suffix in (("raven", parts.RAVEN, "raven", ".selections.txt"),
                                          ("audacity", parts.AUDACITY, "audacity", ".txt")):
            if fmt in formats:
                _copy_parts(done, part, out / folder, suffix)
                summary.outputs.append(folder + "/")
        if "html" in formats:
            self._write_report(done, summary)
            summary.outputs.append("report.html")
        return _repeated_row_ids(done)

    def _write_report(self, done: list[_Done], summary: RunSummary) -> None:
        writer = ReportWriter(self.options.out / "report.html")
        for item in done:
            scores = parts.load_scores(item.directory, item.record, item.path)
            spectrogram = Spectrogram(png=(item.directory / parts.SPECTROGRAM).read_bytes(), **item.record["spectrogram"])
            writer.add_file(ReportFile(
                scores=scores,
                shown=shown_detections(scores, self.scorer.taxonomy, self.options.display),
                hidden=hidden_detections(scores, self.scorer.taxonomy, self.options.display),
                spectrogram=spectrogram,
                notes=item.outcome.notes,
                reused=item.outcome.status == SKIPPED,
            ))
        failures = [(o.file, o.cause) for o in summary.with_status(FAILED)]
        writer.finish(ReportRun(
            provenance=self.provenance,
            processed=len(summary.with_status(PROCESSED)),
            skipped=len(summary.with_status(SKIPPED)),
            failures=failures,
            top_k=self.options.display.top_k,
            min_score=self.options.display.min_score,
            species_list=self.options.species_list.path if self.options.species_list else None,
            generated=time.strftime("%Y-%m-%d %H:%M"),
        ))

    def _write_summary(self, summary: RunSummary) -> None:
        out = self.options.out
        summary.outputs += ["errors.csv", "summary.txt", "summary.json"]
        try:
            write_errors_csv(out / "errors.csv", summary.outcomes)
            atomic_write_text(out / "summary.txt", format_summary(summary))
            write_summary_json(out / "summary.json", summary)
        except OSError as exc:
            raise _write_error(out, exc) from exc


class _ScoringRun:
    """One pass of `Scorer.score_files` over files, with the checks around it.

    Headers are checked before a file enters the scorer, so a truncated WAV is known before any
    decoding. Decode failures come back through `on_error`, and the decoded blocks feed the
    spectrogram and the progress bar.
    """

    def __init__(self, runner: BatchRunner, paths: list[Path], progress: Progress) -> None:
        self.runner = runner
        self.paths = paths
        self.progress = progress
        self.failures: dict[Path, AudioDecodeError] = {}
        self.builders: dict[Path, SpectrogramBuilder | None] = {}
        self.finished: set[Path] = set()
        self.position = {path: index for index, path in enumerate(paths)}
        self.started = time.monotonic()

    def first_unfinished(self) -> Path:
        return next(p for p in self.paths if p not in self.finished)

    def outcomes(self, keys: dict[Path, str]) -> Iterator[tuple[Path, Any]]:
        scorer = self.runner.scorer
        scored = scorer.score_files(self._admitted(), on_error=self._on_error, observe=self._observe)
        with closing(scored):
            for scores in scored:
                yield from self._flush_failures(keys, before=scores.path)
                builder = self.builders.pop(scores.path, None)
                self.progress.finish_file(scores.n_windows)
                outcome = self.runner._completed(
                    scores.path, keys[scores.path], scores, builder.finish() if builder else None, self.started)
                self.finished.add(scores.path)
                self.started = time.monotonic()
                yield scores.path, outcome
        yield from self._flush_failures(keys, before=None)

    def _admitted(self) -> Iterator[Path]:
        # Runs on the scorer's prefetch thread.
        allow_truncated = self.runner.options.allow_truncated
        for path in self.paths:
            try:
                info = probe(path)
                error = declared_length_error(info)
                if error is not None and not (error.code == "truncated" and allow_truncated):
                    raise error
            except AudioDecodeError as exc:
                self.failures[path] = exc
                continue
            if "html" in self.runner.options.formats:
                self.builders[path] = SpectrogramBuilder(self.runner.scorer.sample_rate, info.declared_seconds)
            yield path

    def _on_error(self, error: AudioDecodeError) -> None:
        self.failures[error.path] = error

    def _observe(self, path: Path) -> Callable[[np.ndarray], None]:
        self.progress.start_file(path.name)
        builder = self.builders.get(path)

        def on_block(block: np.ndarray) -> None:
            self.progress.add_samples(len(block))
            if builder is not None:
                builder.add(block)

        return on_block

    def _flush_failures(self, keys: dict[Path, str], before: Path | None) -> Iterator[tuple[Path, Any]]:
        # Failures of files that come before `before` in input order (all of them when None).
        limit = self.position[before] if before is not None else len(self.paths)
        # `failures` grows on the prefetch thread; list() copies its keys in one step under the GIL.
        for path in sorted(list(self.failures), key=self.position.__getitem__):
            if self.position[path] < limit and path not in self.finished:
                self.finished.add(path)
                self.progress.finish_file(0)
                yield path, self.runner._failed(path, keys[path], self.failures.pop(path))


def _write_error(folder: Path, exc: OSError) -> OutputWriteError:
    return OutputWriteError(_("cannot write to %s: %s") % (folder, exc.strerror or exc))


def _estimate_windows(files: list[Path], window_seconds: float) -> int:
    # Headers only. A truncated file counts what it can hold, and a file that cannot be probed
    # counts one window (it fails later with a cause).
    total = 0
    for path in files:
        try:
            info = probe(path)
        except AudioDecodeError:
            total += 1
            continue
        known = [n for n in (info.declared_frames, info.readable_frames) if n is not None]
        seconds = min(known) / info.sample_rate if known else 0.0
        total += max(1, math.ceil(seconds / window_seconds))
    return total


def _nonfinite_note(samples: int, seconds: list[int], record: dict[str, Any]) -> str:
    window_seconds = record["window_seconds"]
    windows = sorted({int(s // window_seconds) for s in seconds} | {int((s + 1) // window_seconds - 1e-9) for s in seconds})
    ends = [f"{(w + 1) * window_seconds:g}" for w in windows[:_MAX_LISTED_WINDOWS]]
    listed = ", ".join(ends) + (" …" if len(windows) > _MAX_LISTED_WINDOWS else "")
    return _("%d NaN/Inf sample(s) were replaced by zeros in %d window(s) (ending at second %s)") % (
        samples, len(windows), listed)


def _concatenate(done: list[_Done], part: str, target: Path, header: str) -> None:
    """Write `header` then every file's `part` to `target` atomically."""
    with atomic_open(target) as handle:
        handle.write(header)
        for item in done:
            with open(item.directory / part, encoding="utf-8", newline="") as source:
                shutil.copyfileobj(source, handle)


def _repeated_row_ids(done: list[_Done]) -> int:
    # Files with the same stem (in different folders, or with different extensions) produce the
    # same `<stem>_<end second>` ids.
    seen: set[str] = set()
    repeated = 0
    for item in done:
        with open(item.directory / parts.SUBMISSION, encoding="utf-8", newline="") as source:
            for row in csv.reader(source):
                repeated += row[0] in seen
                seen.add(row[0])
    return repeated


def _copy_parts(done: list[_Done], part: str, folder: Path, suffix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    names = {f"{item.outcome.key}{suffix}" for item in done}
    for item in done:
        with open(item.directory / part, "rb") as source, atomic_open(folder / f"{item.outcome.key}{suffix}", "wb") as target:
            shutil.copyfileobj(source, target)

    # Tables of recordings outside this run come from an earlier run into the same folder. They
    # may be the user's only copy of that work, so they stay, but the user learns they are there.
    others = sorted(p.name for p in folder.glob(f"*{suffix}") if p.name not in names)
    if others:
        log.warning(_("%s/ also contains %d table(s) of recordings outside this run, left from an earlier "
                      "run into this folder (for example %s); use a new --out folder to keep runs apart"),
                    folder.name, len(others), others[0])
