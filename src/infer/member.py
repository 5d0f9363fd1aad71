"""A CNN ensemble member: an exported ONNX model that describes itself in its metadata.

Loading validates the metadata contract and raises one `ModelMetadataError` that lists every
missing or inconsistent field, so a broken export is diagnosed in one go. The front-end is built
from the specification found in the model, never from defaults.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from infer.frontend import FrontendSpec, FrontendSpecError
from infer.taxonomy import Taxonomy, TaxonomyError

SCHEMA_VERSION = "1"
META_PREFIX = "pantanal."
REQUIRED_KEYS = (
    "schema_version",
    "classes",
    "taxonomy_sha256",
    "frontend",
    "source_run_id",
    "stage",
    "checkpoint_sha256",
)
INPUT_NAME = "logmel"
OUTPUT_NAMES = ("logits", "frame_logits")


# Windows per ONNX Runtime run. The CPU arena keeps the activation memory of the largest run:
# measured on 2 cores with the demo B0 member, 36 windows per run peaked at 869 MiB RSS and 12 at
# 449 MiB, at the same speed per file.
RUN_BATCH = 12


class ModelMetadataError(ValueError):
    """An ONNX member's metadata or signature breaks the contract."""


@dataclass(frozen=True)
class MemberMetadata:
    """The contract an exported member carries in its ONNX metadata props.

    Attributes:
        classes: Class labels in output order.
        taxonomy_sha256: sha256 of the taxonomy.csv the model was trained with.
        frontend: Front-end specification of the model's input.
        source_run_id: MLflow run that produced the checkpoint.
        stage: Training stage of the checkpoint (supervised, ns1, ns2, ...).
        checkpoint_sha256: sha256 of the exported checkpoint file.
        extra: Every other `pantanal.*` key (taxonomy rows, BN recalibration, parity, licence).
    """

    classes: tuple[str, ...]
    taxonomy_sha256: str
    frontend: FrontendSpec
    source_run_id: str
    stage: str
    checkpoint_sha256: str
    extra: dict[str, str]

    def taxonomy(self) -> Taxonomy | None:
        """Return the taxonomy rows embedded at export, or None."""
        rows = self.extra.get("taxonomy")
        if not rows:
            return None
        return Taxonomy.from_records(json.loads(rows), self.taxonomy_sha256)


def parse_metadata(props: dict[str, str], source: str) -> MemberMetadata:
    """Validate `pantanal.*` metadata props; raise one error naming every problem."""
    values = {k[len(META_PREFIX) :]: v for k, v in props.items() if k.startswith(META_PREFIX)}
    problems = [f"missing metadata key {META_PREFIX}{key}" for key in REQUIRED_KEYS if key not in values]

    version = values.get("schema_version")
    if version is not None and version != SCHEMA_VERSION:
        problems.append(f"schema_version {version!r} is not supported (expected {SCHEMA_VERSION!r})")

    classes: tuple[str, ...] = ()
    if "classes" in values:
        try:
            classes = tuple(json.loads(values["classes"]))
        except (json.JSONDecodeError, TypeError) as exc:
            problems.append(f"classes is not a JSON list: {exc}")

    frontend = None
    if "frontend" in values:
        try:
            frontend = FrontendSpec.from_dict(json.loads(values["frontend"]))
        except (json.JSONDecodeError, TypeError, FrontendSpecError) as exc:
            problems.append(f"frontend: {exc}")

    if problems:
        raise ModelMetadataError(f"{source} is not a valid pantanal member:\n  - " + "\n  - ".join(problems))
    extra = {k: v for k, v in values.items() if k not in REQUIRED_KEYS}
    return MemberMetadata(
        classes=classes,
        taxonomy_sha256=values["taxonomy_sha256"],
        frontend=frontend,
        source_run_id=values["source_run_id"],
        stage=values["stage"],
        checkpoint_sha256=values["checkpoint_sha256"],
        extra=extra,
    )


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """ORT options for CPU inference: full graph optimisation, one intra-op pool sized to the cores."""
    options = ort.SessionOptions()
    # ORT_ENABLE_ALL measured 2-6x faster than BASIC for these EfficientNets on a 2-core x86 CPU.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning, which leaves the cores to the prefetch thread
    # and the other members. Measured on an idle 2-core AMD EPYC with ONNX Runtime 1.32, the three
    # demo members on 36 windows took 1.37 s instead of 1.46 s with spinning.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OnnxMember:
    """One exported SED model, run with ONNX Runtime on the CPU.

    Args:
        path: The `.onnx` file.
        threads: Intra-op threads; defaults to the machine's cores.
        name: Display name; defaults to the file stem.

    Raises:
        ModelMetadataError: The metadata or the input/output signature breaks the contract.
    """

    kind = "cnn"

    def __init__(self, path: Path | str, threads: int | None = None, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        if self.path.is_dir():
            raise FileNotFoundError(f"{self.path} is a folder, not an ONNX model file; a bundle folder goes with --bundle")
        if not self.path.is_file():
            raise FileNotFoundError(f"model file not found: {self.path}")
        try:
            self.session = ort.InferenceSession(
                str(self.path), session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types, not a common base
            raise ModelMetadataError(f"{self.path} is not a loadable ONNX model: {exc}") from exc
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        self.metadata = parse_metadata(props, str(self.path))
        self._check_signature()

    @property
    def frontend(self) -> FrontendSpec:
        return self.metadata.frontend

    @property
    def classes(self) -> tuple[str, ...]:
        return self.metadata.classes

    def _check_signature(self) -> None:
        spec = self.metadata.frontend
        problems = []
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        if INPUT_NAME not in inputs:
            problems.append(f"input {INPUT_NAME!r} not found (inputs: {sorted(inputs)})")
        else:
            shape = inputs[INPUT_NAME].shape
            expected = [1, spec.n_mels, spec.n_frames]
            if len(shape) != 4 or list(shape[1:]) != expected:
                problems.append(f"input shape {shape} does not match [batch, {expected[0]}, {expected[1]}, {expected[2]}]")
        for name in OUTPUT_NAMES:
            if name not in outputs:
                problems.append(f"output {name!r} not found (outputs: {sorted(outputs)})")
        if "logits" in outputs and outputs["logits"].shape[-1] != len(self.metadata.classes):
            problems.append(
                f"logits has {outputs['logits'].shape[-1]} classes but the metadata lists {len(self.metadata.classes)}"
            )
        if problems:
            raise ModelMetadataError(f"{self.path} breaks the member signature:\n  - " + "\n  - ".join(problems))

    def check_taxonomy(self, taxonomy: Taxonomy) -> None:
        """Raise unless the member's classes equal `taxonomy` in order."""
        if list(self.classes) != taxonomy.labels:
            raise TaxonomyError(
                f"{self.path}: its {len(self.classes)} classes differ from the taxonomy's "
                f"{len(taxonomy)} (or their order differs); re-export it with the taxonomy in use"
            )

    def logits(self, logmel: np.ndarray, batch_size: int = RUN_BATCH) -> np.ndarray:
        """Clipwise logits `[B, C]` for log-mel input `[B, 1, n_mels, frames]`, `batch_size` windows per run."""
        parts = []
        for start in range(0, len(logmel), batch_size):
            batch = np.ascontiguousarray(logmel[start : start + batch_size], dtype=np.float32)
            parts.append(self.session.run(["logits"], {INPUT_NAME: batch})[0])
        if not parts:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return np.concatenate(parts)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    out = np.empty_like(x, dtype=np.float32)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    exp_x = np.exp(x[~positive])
    out[~positive] = exp_x / (1.0 + exp_x)
    return out
