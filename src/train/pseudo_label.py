"""Noisy Student pseudo-labels for unlabelled soundscape windows.

The previous stage's best checkpoint (within-stage rule of the selector) scores every unlabelled
window, optionally blended with the teacher's mapped probabilities. The soft labels are then
capped so that a pseudo-labelled window always weighs less than a hard label: at most `class_cap`
per class and `mass_cap` summed over classes, both below 1, the mass of one hard label.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from infer.atomic import atomic_open, atomic_write_text
from infer.member import sigmoid
from infer.taxonomy import Taxonomy
from infer.teacher import Teacher, map_to_taxonomy
from train.checkpoint import load_checkpoint
from train.config import stage_dir, stage_name, stage_round
from train.data import KIND_PSEUDO, WindowTable, load_manifests, read_window
from train.selector import Candidate, best_of_stage

log = logging.getLogger(__name__)


def cap_pseudo_labels(probabilities: np.ndarray, class_cap: float, mass_cap: float, min_probability: float) -> np.ndarray:
    """Zero values below `min_probability`, clip each class at `class_cap`, scale rows to `mass_cap`.

    Raises:
        ValueError: A cap is not below 1, so a pseudo-label could weigh as much as a hard label.
    """
    if not (0 < class_cap < 1 and 0 < mass_cap < 1):
        raise ValueError(f"class_cap={class_cap} and mass_cap={mass_cap} must lie in (0, 1), below a hard label")
    capped = np.where(probabilities < min_probability, 0.0, np.minimum(probabilities, class_cap))
    mass = capped.sum(axis=1, keepdims=True)
    scale = np.where(mass > mass_cap, mass_cap / np.maximum(mass, 1e-12), 1.0)
    return (capped * scale).astype(np.float32)


def stage_candidates(cfg: DictConfig, stage: str) -> list[Candidate]:
    path = stage_dir(cfg, stage) / "scores.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: stage {stage} of {cfg.experiment_name} has not been trained")
    return [
        Candidate(stage=stage, round=stage_round(stage), epoch=r["epoch"], score=r["site_auc"],
                  checkpoint=r["checkpoint"], sha256=r["sha256"])
        for r in json.loads(path.read_text())
    ]


@torch.no_grad()
def predict_windows(checkpoint: str, manifest: pd.DataFrame, batch_size: int = 16) -> np.ndarray:
    """Probabilities `[N, C]` of a checkpoint on manifest windows (no augmentation, eval mode)."""
    loaded = load_checkpoint(checkpoint)
    spec = loaded.frontend.spec
    out = []
    rows = list(zip(manifest["path"], manifest["start_s"]))
    for begin in range(0, len(rows), batch_size):
        waves = np.stack([read_window(p, float(s), spec.sample_rate, spec.window_samples) for p, s in rows[begin : begin + batch_size]])
        logits = loaded.model(loaded.frontend(torch.from_numpy(waves))).logits
        out.append(torch.sigmoid(logits.float()).numpy())
    return np.concatenate(out) if out else np.zeros((0, loaded.hparams["num_classes"]), np.float32)


def _teacher_probabilities(cfg: DictConfig, manifest: pd.DataFrame, taxonomy: Taxonomy) -> tuple[np.ndarray, np.ndarray]:
    from train.teacher_cache import cache_for, teacher_logits_for

    logits = teacher_logits_for(cfg, manifest)
    if logits is None:
        raise FileNotFoundError(
            f"teacher scores of unlabelled windows are not cached; run `pantanal teacher embed experiment={cfg.experiment_name}`"
        )
    mapping = map_to_taxonomy(Teacher(cache_for(cfg).spec).labels, taxonomy)
    return mapping.to_taxonomy(sigmoid(logits)), mapping.visible


def run_pseudo_label(cfg: DictConfig) -> dict:
    """Write `pseudo_labels.csv`, `.npz` and `.json` for Noisy Student stage `cfg.stage.name`."""
    round_index = stage_round(cfg.stage.name)
    if round_index < 1:
        raise ValueError("pseudo-labels belong to a Noisy Student stage: use stage=ns1, ns2, ...")
    parent = stage_name(round_index - 1)
    ns = cfg.ns
    chosen = best_of_stage(stage_candidates(cfg, parent), parent, int(cfg.selector.tie_decimals))
    manifest = load_manifests(Path(cfg.paths.manifest_dir))["unlabelled"]
    if manifest.empty:
        raise ValueError("no unlabelled soundscape windows to pseudo-label; add data.extra_unlabelled recordings")
    taxonomy = Taxonomy.from_csv(Path(cfg.data.root) / "taxonomy.csv")

    probabilities = predict_windows(chosen.checkpoint, manifest)
    blend = float(ns.teacher_blend)
    if blend > 0 and cfg.teacher.name:
        teacher, visible = _teacher_probabilities(cfg, manifest, taxonomy)
        probabilities[:, visible] = (1 - blend) * probabilities[:, visible] + blend * teacher[:, visible]
    labels = cap_pseudo_labels(probabilities, float(ns.class_cap), float(ns.mass_cap), float(ns.min_probability))

    out = stage_dir(cfg, cfg.stage.name)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "pseudo_labels.csv", manifest.to_csv(index=False))
    with atomic_open(out / "pseudo_labels.npz", "wb") as handle:
        np.savez(handle, targets=labels)
    summary = {
        "stage": cfg.stage.name,
        "parent_stage": parent,
        "checkpoint": chosen.checkpoint,
        "checkpoint_sha256": chosen.sha256,
        "checkpoint_epoch": chosen.epoch,
        "teacher_blend": blend,
        "windows": len(labels),
        "mean_mass": float(labels.sum(axis=1).mean()),
        "max_value": float(labels.max(initial=0.0)),
        "windows_with_labels": int((labels.sum(axis=1) > 0).sum()),
    }
    atomic_write_text(out / "pseudo_labels.json", json.dumps(summary, indent=2))
    log.info("pseudo-labelled %d windows with %s epoch %d: mean mass %.3f, %d with any label",
             len(labels), parent, chosen.epoch, summary["mean_mass"], summary["windows_with_labels"])
    return summary


def load_pseudo_table(folder: Path, loss_weight: float) -> WindowTable:
    """Pseudo-labelled windows of a Noisy Student stage, sampled in proportion to confidence."""
    csv_path, npz_path = folder / "pseudo_labels.csv", folder / "pseudo_labels.npz"
    if not csv_path.is_file() or not npz_path.is_file():
        raise FileNotFoundError(f"pseudo-labels not found in {folder}; run `pantanal pseudo-label` for this stage first")
    manifest = pd.read_csv(csv_path, dtype={"labels": str, "secondary": str, "site": str, "licence": str}, keep_default_na=False)
    manifest["kind"] = "pseudo"
    with np.load(npz_path) as data:
        targets = data["targets"].astype(np.float32)
    confidence = targets.max(axis=1) if len(targets) else np.zeros(0)
    # Windows where the model heard nothing still teach what background sounds like; the floor
    # keeps them in the sample at a low rate.
    sample_weights = np.maximum(confidence, 0.05).astype(np.float64)
    n = len(manifest)
    return WindowTable(manifest, targets, np.full(n, KIND_PSEUDO, np.int64), np.full(n, loss_weight, np.float32), sample_weights)
