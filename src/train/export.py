"""Select, recalibrate and export the shipped checkpoint to ONNX, then prove the export right.

The deterministic selector picks a checkpoint of the final stage. BatchNorm statistics are then
re-estimated on clean soundscape windows, and the model (without the distillation head) is
exported with a dynamic batch axis. The metadata contract is written into the file and
`onnx.checker` runs. Finally ONNX Runtime and torch must agree on real windows within
`export.parity_tolerance` on probabilities, or the export fails and no file is left behind.
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import mlflow
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import torch
from omegaconf import DictConfig

from harness.registry import REGISTERED_MODEL, TAG, configure_tracking
from infer.atomic import atomic_write_bytes, atomic_write_text
from infer.member import INPUT_NAME, META_PREFIX, SCHEMA_VERSION, file_sha256, session_options, sigmoid
from infer.taxonomy import Taxonomy
from train.bn_recal import recalibrate_batchnorm
from train.checkpoint import LoadedCheckpoint, load_checkpoint
from train.config import stage_dir, stage_name
from train.data import load_manifests, read_window
from train.models.sed import ExportWrapper
from train.pseudo_label import stage_candidates
from train.selector import Selection, select_checkpoint

log = logging.getLogger(__name__)


class ExportParityError(RuntimeError):
    """ONNX Runtime and torch disagree beyond the tolerance."""


class SaturatedModelError(RuntimeError):
    """The model's logits on real audio are so large that every probability is 0 or 1."""


class TrackingRunError(LookupError):
    """The final stage's MLflow run is not in the tracking store the export would log to."""


def check_not_saturated(wrapper: torch.nn.Module, logmel: torch.Tensor, max_abs_logit: float) -> float:
    """Raise unless the largest |logit| on `logmel` stays within `max_abs_logit`; return it.

    A diverged training run or a BatchNorm recalibration on too little audio can push logits into
    the thousands. Probabilities are then exactly 0 or 1, the ONNX parity check passes trivially,
    and the ranking the metric needs is lost, so such a model is not exported.
    """
    with torch.no_grad():
        largest = float(wrapper(logmel)[0].abs().max())
    if largest > max_abs_logit:
        raise SaturatedModelError(
            f"logits reach {largest:.3g} on real windows (limit export.max_abs_logit={max_abs_logit:g}): the "
            "probabilities are saturated. Check the training curves for divergence, give BatchNorm "
            "recalibration more soundscape audio (data.extra_unlabelled) or raise export.bn_prior_windows"
        )
    return largest


def final_stage(cfg: DictConfig) -> str:
    return stage_name(int(cfg.ns.rounds))


def select_for_export(cfg: DictConfig) -> Selection:
    final = final_stage(cfg)
    candidates = []
    for round_index in range(int(cfg.ns.rounds) + 1):
        stage = stage_name(round_index)
        if (stage_dir(cfg, stage) / "scores.json").is_file():
            candidates.extend(stage_candidates(cfg, stage))
    return select_checkpoint(candidates, final, int(cfg.selector.tie_decimals))


def _waves(manifest: pd.DataFrame, sample_rate: int, window_samples: int, limit: int) -> np.ndarray:
    rows = list(zip(manifest["path"], manifest["start_s"]))[:limit]
    return np.stack([read_window(p, float(s), sample_rate, window_samples) for p, s in rows]) if rows else np.zeros((0, window_samples), np.float32)


def clean_soundscape_windows(cfg: DictConfig, limit: int) -> np.ndarray:
    """Soundscape-like training audio for BN recalibration: unlabelled then labelled windows outside the held-out sites."""
    manifests = load_manifests(Path(cfg.paths.manifest_dir))
    pool = pd.concat([manifests["unlabelled"], manifests["soundscape_labelled"]], ignore_index=True)
    if pool.empty:
        raise ValueError("no soundscape windows outside the held-out sites for BatchNorm recalibration; "
                         "add recordings with data.extra_unlabelled")
    return _waves(pool, int(cfg.data.frontend.sample_rate), int(cfg.data.frontend.window_samples), limit)


def _batches(waves: np.ndarray, size: int):
    for begin in range(0, len(waves), size):
        batch = waves[begin : begin + size]
        if len(batch) >= 2:  # BatchNorm in training mode needs two samples
            yield torch.from_numpy(batch)


def metadata_props(cfg: DictConfig, module: LoadedCheckpoint, taxonomy: Taxonomy, selection: Selection, run_id: str, bn_windows: int) -> dict[str, str]:
    chosen = selection.chosen
    return {
        "schema_version": SCHEMA_VERSION,
        "classes": json.dumps(taxonomy.labels),
        "taxonomy_sha256": taxonomy.sha256,
        "taxonomy": json.dumps(taxonomy.to_records()),
        "frontend": module.frontend.spec.to_json(),
        "source_run_id": run_id,
        "stage": chosen.stage,
        "checkpoint_sha256": chosen.sha256,
        "checkpoint_epoch": str(chosen.epoch),
        "experiment": cfg.experiment_name,
        "model": module.hparams["model"]["name"],
        "bn_recalibrated": "true",
        "bn_windows": str(bn_windows),
        "selection_rule": selection.rule,
        "licence": export_licence(cfg),
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def export_licence(cfg: DictConfig) -> str:
    """Return the licence note of an export, with the teacher's licence when the recipe distilled from one."""
    licence = str(cfg.export.licence)
    if cfg.teacher.name:
        licence += f"; distilled from {cfg.teacher.name}, licensed {cfg.teacher.get('licence') or 'unknown'}"
    return licence


def export_onnx(wrapper: torch.nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    """Export with a dynamic batch axis (traced with a batch of 2 so the axis stays symbolic)."""
    batch = torch.export.Dim("batch", min=1, max=4096)

    # The ONNX optimiser logs each of its graph passes at INFO, dozens of lines per export. They
    # matter only when debugging the export, so they show with -v alone.
    if not log.isEnabledFor(logging.DEBUG):
        for name in ("onnx_ir", "onnxscript"):
            logging.getLogger(name).setLevel(logging.WARNING)
    torch.onnx.export(
        wrapper, (example,), str(path), input_names=[INPUT_NAME], output_names=["logits", "frame_logits"],
        dynamic_shapes={"logmel": {0: batch}}, opset_version=opset, dynamo=True, verbose=False,
    )


def write_metadata(path: Path, props: dict[str, str]) -> None:
    model = onnx.load(str(path))
    existing = {p.key for p in model.metadata_props}
    for key, value in props.items():
        if META_PREFIX + key not in existing:
            entry = model.metadata_props.add()
            entry.key, entry.value = META_PREFIX + key, value
    onnx.checker.check_model(model, full_check=True)
    atomic_write_bytes(path, model.SerializeToString())


def check_parity(path: Path, wrapper: torch.nn.Module, logmel: torch.Tensor, tolerance: float) -> dict:
    """Max absolute difference of probabilities between ONNX Runtime and torch on `logmel`."""
    session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(["logits"], {INPUT_NAME: logmel.numpy()})[0]
    with torch.no_grad():
        torch_logits = wrapper(logmel)[0].numpy()
    difference = float(np.abs(sigmoid(onnx_logits) - sigmoid(torch_logits)).max())
    result = {"max_abs_probability_difference": difference, "tolerance": tolerance, "windows": len(logmel), "passed": difference <= tolerance}
    if not result["passed"]:
        raise ExportParityError(f"ONNX Runtime differs from torch by {difference:.2e} on probabilities (tolerance {tolerance:.0e})")
    return result


def run_export(cfg: DictConfig) -> dict:
    """Select, recalibrate, export and verify; log everything to the final stage's MLflow run."""
    selection = select_for_export(cfg)
    chosen = selection.chosen
    log.info("selected %s epoch %d (score %s) by rule: %s", chosen.stage, chosen.epoch, chosen.score, selection.rule)
    stage_info = json.loads((stage_dir(cfg, chosen.stage) / "stage.json").read_text())
    run_id = stage_info["run_id"]
    require_stage_run(cfg, run_id, chosen.stage)
    taxonomy = Taxonomy.from_csv(Path(cfg.data.root) / "taxonomy.csv")

    # BatchNorm recalibration on clean soundscape audio, then the export wrapper in eval mode
    module = load_checkpoint(chosen.checkpoint)
    clean = clean_soundscape_windows(cfg, int(cfg.export.bn_recalibration_windows))
    bn_windows = recalibrate_batchnorm(module.model, module.frontend, _batches(clean, int(cfg.data.batch_size)),
                                       prior_windows=float(cfg.export.bn_prior_windows))
    wrapper = ExportWrapper(module.model).eval()

    # real windows for tracing and parity: held-out windows first, they are what the harness scores
    manifests = load_manifests(Path(cfg.paths.manifest_dir))
    spec = module.frontend.spec
    probe = _waves(pd.concat([manifests["heldout"], manifests["unlabelled"]], ignore_index=True), spec.sample_rate, spec.window_samples, 8)
    if len(probe) < 2:
        probe = clean[:8]
    with torch.no_grad():
        logmel = module.frontend(torch.from_numpy(probe))

    check_not_saturated(wrapper, logmel, float(cfg.export.max_abs_logit))

    out_dir = Path(cfg.paths.experiment_dir) / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
        temporary = Path(scratch) / "model.onnx"
        export_onnx(wrapper, logmel[:2], temporary, int(cfg.export.opset))
        write_metadata(temporary, metadata_props(cfg, module, taxonomy, selection, run_id, bn_windows))
        parity = check_parity(temporary, wrapper, logmel, float(cfg.export.parity_tolerance))
        final_path = out_dir / "model.onnx"
        temporary.replace(final_path)

    record = {"model": str(final_path), "sha256": file_sha256(final_path), "run_id": run_id,
              "selection": selection.to_dict(), "parity": parity, "bn_windows": bn_windows}
    atomic_write_text(out_dir / "export.json", json.dumps(record, indent=2))
    _log_to_mlflow(cfg, run_id, final_path, record)
    log.info("exported %s (parity %.2e <= %.0e) to %s", chosen.stage, parity["max_abs_probability_difference"],
             parity["tolerance"], final_path)
    return record


def require_stage_run(cfg: DictConfig, run_id: str, stage: str) -> None:
    """Raise before exporting when the stage's MLflow run is not in the configured tracking store.

    The export is logged to the run that trained the stage. Checking first stops a command with a
    mismatched MLFLOW_TRACKING_URI before minutes of work, not after them.
    """
    configure_tracking(cfg.logger.tracking_uri, cfg.logger.experiment, cfg.logger.artifact_location)
    try:
        mlflow.get_run(run_id)
    except mlflow.exceptions.MlflowException as exc:
        raise TrackingRunError(
            f"the MLflow run {run_id} that trained stage {stage} is not in the tracking store "
            f"{cfg.logger.tracking_uri}; export with the store the stage was trained with "
            "(set MLFLOW_TRACKING_URI or logger.tracking_uri to it)"
        ) from exc


def _log_to_mlflow(cfg: DictConfig, run_id: str, path: Path, record: dict) -> None:
    configure_tracking(cfg.logger.tracking_uri, cfg.logger.experiment, cfg.logger.artifact_location)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_dict(record["selection"], "export/selection.json")
        mlflow.log_dict(record["parity"], "export/parity.json")
        mlflow.log_artifact(str(path), "export")
        mlflow.log_metric("export/parity_max_abs_diff", record["parity"]["max_abs_probability_difference"])
        info = mlflow.onnx.log_model(onnx.load(str(path)), name="model", registered_model_name=REGISTERED_MODEL)
        mlflow.set_tags({
            TAG.exported: "true",
            "pantanal.export_sha256": record["sha256"],
            "pantanal.export_stage": record["selection"]["chosen"]["stage"],
            "pantanal.model_version": str(info.registered_model_version),
        })
