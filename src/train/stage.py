"""Train one stage (supervised or Noisy Student round k) and record it.

Outputs in `outputs/<experiment>/<stage>/`: `checkpoints/epoch=NNN.ckpt` (every epoch, so the
selector can choose), `scores.json` (held-out-site AUC, checkpoint path and sha256 per epoch) and
`stage.json` (MLflow run id, parent run, lineage).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
import mlflow
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig, OmegaConf

from infer.atomic import atomic_write_text
from infer.member import file_sha256
from infer.taxonomy import Taxonomy
from train.config import frontend_spec, require_run_intent, stage_dir, stage_name, stage_round
from train.data import WindowTable, hard_table, load_manifests
from train.datamodule import SEDDataModule
from train.module import SEDLitModule
from train.pseudo_label import load_pseudo_table
from train.teacher_cache import load_teacher_embeddings
from train.tracking import stage_run

log = logging.getLogger(__name__)

# Importing `lightning` gives its logger a console handler of its own, and its messages also reach
# the root handler that `pantanal` sets up, so each message printed twice. When a root handler
# exists, Lightning's own handler is removed.
if logging.getLogger().handlers:
    logging.getLogger("lightning").handlers.clear()


def stage_config(cfg: DictConfig, stage: str) -> dict:
    """Return the config section that governs `stage` (supervised or ns)."""
    section = cfg.supervised if stage_round(stage) == 0 else cfg.ns
    return OmegaConf.to_container(section, resolve=True)


def read_stage_info(cfg: DictConfig, stage: str) -> dict:
    path = stage_dir(cfg, stage) / "stage.json"
    if not path.is_file():
        raise FileNotFoundError(f"stage {stage} of experiment {cfg.experiment_name} has not been trained ({path} missing)")
    return json.loads(path.read_text())


class EpochScores(Callback):
    """Write `scores.json` after every checkpoint: epoch, held-out AUC, checkpoint and its sha256."""

    def __init__(self, path: Path, checkpoint: ModelCheckpoint) -> None:
        self.path = path
        self.checkpoint = checkpoint
        self.records: list[dict] = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        score = trainer.callback_metrics.get("val/site_auc")
        epoch = trainer.current_epoch
        ckpt = Path(self.checkpoint.dirpath) / f"epoch={epoch:03d}.ckpt"
        self.records.append({"epoch": epoch, "site_auc": None if score is None else float(score), "checkpoint": str(ckpt)})

    def finalize(self) -> list[dict]:
        for record in self.records:
            record["sha256"] = file_sha256(record["checkpoint"])
        atomic_write_text(self.path, json.dumps(self.records, indent=2))
        return self.records


def _tables(cfg: DictConfig, taxonomy: Taxonomy, stage: str) -> tuple[WindowTable, WindowTable, WindowTable | None]:
    manifests = load_manifests(Path(cfg.paths.manifest_dir))
    weight = float(cfg.data.secondary_label_weight)
    hard = [hard_table(manifests["focal"], taxonomy, weight), hard_table(manifests["soundscape_labelled"], taxonomy, weight)]
    heldout = hard_table(manifests["heldout"], taxonomy, weight)
    background = None
    if stage_round(stage) > 0:
        pseudo = load_pseudo_table(stage_dir(cfg, stage), float(cfg.ns.pseudo_loss_weight))
        hard.append(pseudo)
        background = pseudo
    return WindowTable.concat(hard), heldout, background


def train_stage(cfg: DictConfig) -> dict:
    """Train `cfg.stage.name` and return its stage record (run id, lineage, epoch scores)."""
    require_run_intent(cfg)
    stage = cfg.stage.name
    round_index = stage_round(stage)
    L.seed_everything(int(cfg.seed) + round_index, workers=True)
    out_dir = stage_dir(cfg, stage)
    taxonomy = Taxonomy.from_csv(Path(cfg.data.root) / "taxonomy.csv")
    spec = frontend_spec(cfg)
    section = stage_config(cfg, stage)

    # data: distillation targets exist only in the supervised stage
    train_table, heldout, background = _tables(cfg, taxonomy, stage)
    embeddings, teacher_dim = {}, 0
    if round_index == 0 and cfg.teacher.name and float(section.get("distill_weight", 0)) > 0:
        embeddings, teacher_dim = load_teacher_embeddings(cfg, train_table.manifest)
    datamodule = SEDDataModule(train_table, heldout, int(cfg.data.batch_size), spec.sample_rate, spec.window_samples,
                               section.get("augment"), embeddings, teacher_dim, background,
                               int(cfg.data.num_workers), int(cfg.seed) + round_index)
    log.info("stage %s: %d training windows (%s), %d held-out windows", stage, len(train_table),
             dict(zip(*np.unique(train_table.manifest["kind"], return_counts=True))), len(heldout))

    # model: a Noisy Student round starts from its parent's selected checkpoint
    max_epochs = int(section["max_epochs"])
    module = SEDLitModule(OmegaConf.to_container(cfg.model, resolve=True), len(taxonomy), spec.to_dict(), section,
                          teacher_dim, max_epochs)
    parent_run_id, lineage = None, []
    if round_index > 0:
        parent = read_stage_info(cfg, stage_name(round_index - 1))
        parent_run_id, lineage = parent["run_id"], parent["lineage"]
        teacher_checkpoint = json.loads((out_dir / "pseudo_labels.json").read_text())["checkpoint"]
        state = torch.load(teacher_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
        missing, _ = module.load_state_dict({k: v for k, v in state.items() if not k.startswith("projection.")}, strict=False)
        if [k for k in missing if not k.startswith("projection.")]:
            raise RuntimeError(f"parent checkpoint lacks weights {missing[:5]}...")

    with stage_run(cfg, stage, parent_run_id, lineage) as run:
        checkpoint = ModelCheckpoint(dirpath=out_dir / "checkpoints", filename="epoch={epoch:03d}",
                                     auto_insert_metric_name=False, save_top_k=-1, every_n_epochs=1)
        scores = EpochScores(out_dir / "scores.json", checkpoint)
        logger = MLFlowLogger(experiment_name=cfg.logger.experiment, tracking_uri=cfg.logger.tracking_uri, run_id=run.info.run_id)
        trainer = L.Trainer(max_epochs=max_epochs, logger=logger, callbacks=[checkpoint, scores],
                            default_root_dir=str(out_dir), num_sanity_val_steps=0,
                            **{k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items() if v is not None})
        trainer.fit(module, datamodule=datamodule)
        records = scores.finalize()
        record = _write_stage_info(cfg, stage, run.info.run_id, parent_run_id, lineage, records)
        mlflow.log_dict(record, "stage.json")
    return record


def _write_stage_info(cfg, stage, run_id, parent_run_id, lineage, records) -> dict:
    entry = {"stage": stage, "run_id": run_id, "parent_run_id": parent_run_id,
             "checkpoints": [{"epoch": r["epoch"], "sha256": r["sha256"]} for r in records]}
    record = {
        "experiment": cfg.experiment_name,
        "stage": stage,
        "run_id": run_id,
        "parent_run_id": parent_run_id,
        "lineage": list(lineage) + [entry],
        "epochs": records,
    }
    atomic_write_text(stage_dir(cfg, stage) / "stage.json", json.dumps(record, indent=2))
    return record
