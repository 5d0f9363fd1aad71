"""MLflow bookkeeping for training stages: intent, config, provenance, lineage."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import mlflow
from omegaconf import DictConfig, OmegaConf

from harness.dvc_hash import directory_md5, git_commit
from harness.config import flatten_settings
from harness.registry import TAG, configure_tracking
from train.config import project_root, require_run_intent

log = logging.getLogger(__name__)


def flat_params(cfg: DictConfig) -> dict[str, str]:
    """Flatten the resolved config to `dotted.key -> value`, each cut to MLflow's 6,000-character limit."""
    flat = flatten_settings(OmegaConf.to_container(cfg, resolve=True))
    text = {key: json.dumps(value) if isinstance(value, (list, tuple)) else str(value) for key, value in flat.items()}
    return {key: value[:6000] for key, value in text.items()}


def data_version(cfg: DictConfig) -> str:
    cache = Path(cfg.paths.output_dir) / ".data_hash_cache.json"
    return directory_md5(cfg.data.root, cache)


@contextlib.contextmanager
def stage_run(cfg: DictConfig, stage: str, parent_run_id: str | None, lineage: list[dict]) -> Iterator[mlflow.ActiveRun]:
    """Start the MLflow run of one stage, recording why it exists and where it came from.

    Effects:
        Sets tags (goal, hypothesis, stop condition, stage, experiment, git commit, data version,
        parent run, lineage) and params (the resolved config) and logs `config.yaml`.
    """
    intent = require_run_intent(cfg)
    configure_tracking(cfg.logger.tracking_uri, cfg.logger.experiment, cfg.logger.artifact_location)
    tags = {
        TAG.goal: intent["goal"],
        TAG.hypothesis: intent["hypothesis"],
        TAG.stop_condition: intent["stop_condition"],
        TAG.stage: stage,
        TAG.experiment: cfg.experiment_name,
        TAG.model: cfg.model.name,
        TAG.git_commit: git_commit(project_root()),
        TAG.data_version: data_version(cfg),
        TAG.data_root: str(cfg.data.root),
        TAG.lineage: json.dumps(lineage),
        TAG.teacher: str(cfg.teacher.name),
    }
    if cfg.teacher.name:
        # A model distilled from a teacher may inherit its licence terms, so the run records them.
        tags["pantanal.teacher_licence"] = str(cfg.teacher.get("licence") or "unknown")
    if parent_run_id:
        tags[TAG.parent_run] = parent_run_id
    with mlflow.start_run(run_name=f"{cfg.experiment_name}/{stage}", tags=tags) as run:
        mlflow.log_params(flat_params(cfg))
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        log.info("MLflow run %s (%s/%s) at %s", run.info.run_id, cfg.experiment_name, stage, cfg.logger.tracking_uri)
        yield run
