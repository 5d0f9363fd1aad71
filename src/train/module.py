"""LightningModule of one training stage: front-end, SED model, losses, held-out-site metric."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from harness.metrics import macro_roc_auc
from infer.frontend import FrontendSpec
from train.augment import mixup, spec_augment
from train.frontend import TorchFrontend
from train.losses import cosine_distillation, sed_loss
from train.models import create_model

log = logging.getLogger(__name__)


class SEDLitModule(L.LightningModule):
    """One stage of SED training.

    Args:
        model: Model config (name, pretrained_file, drop_rate, gem_p).
        num_classes: Output classes.
        frontend: Front-end specification as a dict.
        stage: The stage config (lr, weight_decay, frame_max_weight, augment, drop_path_rate,
            and distill_weight for the supervised stage).
        teacher_dim: Teacher embedding size; 0 disables distillation.
        max_epochs: For the cosine learning-rate schedule.
    """

    def __init__(self, model: dict[str, Any], num_classes: int, frontend: dict[str, Any], stage: dict[str, Any],
                 teacher_dim: int = 0, max_epochs: int = 1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = create_model(
            model["name"], num_classes, pretrained_file=model.get("pretrained_file"),
            drop_rate=model.get("drop_rate", 0.25), drop_path_rate=stage.get("drop_path_rate", 0.0),
            gem_p=model.get("gem_p", 3.0),
        )
        self.frontend = TorchFrontend(FrontendSpec.from_dict(frontend))
        self.distill_weight = float(stage.get("distill_weight", 0.0)) if teacher_dim else 0.0
        # The projection exists only for training; the export wrapper leaves it behind.
        self.projection = nn.Linear(self.model.num_features, teacher_dim) if self.distill_weight > 0 else None
        self.stage_cfg = stage
        self._val_scores: list[np.ndarray] = []
        self._val_targets: list[np.ndarray] = []

    def forward(self, logmel: torch.Tensor):
        return self.model(logmel)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        augment = self.stage_cfg.get("augment") or {}
        waves, targets = mixup(batch["wave"], batch["target"], batch["kind"], float(augment.get("mixup_prob", 0)))
        logmel = self.frontend(waves)
        if augment.get("specaugment"):
            logmel = spec_augment(logmel, augment["freq_masks"], augment["freq_mask_width"],
                                  augment["time_masks"], augment["time_mask_width"])
        out = self.model(logmel)
        loss, parts = sed_loss(out.logits, out.frame_logits, targets, batch["loss_weight"],
                               float(self.stage_cfg.get("frame_max_weight", 0.5)))
        if self.projection is not None:
            distill = cosine_distillation(self.projection(out.embedding), batch["teacher"], batch["has_teacher"])
            loss = loss + self.distill_weight * distill
            parts["distill_cosine"] = distill.detach()
        batch_size = len(waves)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size)
        for name, value in parts.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=batch_size)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.model(self.frontend(batch["wave"]))
        self._val_scores.append(torch.sigmoid(out.logits.float()).cpu().numpy())
        self._val_targets.append(batch["target"].cpu().numpy())

    def on_validation_epoch_end(self) -> None:
        if not self._val_scores:
            return
        scores, targets = np.concatenate(self._val_scores), np.concatenate(self._val_targets)
        self._val_scores, self._val_targets = [], []
        auc = macro_roc_auc(targets > 0.5, scores)
        # Logged as NaN-free: a held-out set without positives gives no AUC, reported as -1.
        self.log("val/site_auc", float(auc) if np.isfinite(auc) else -1.0, prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=float(self.stage_cfg["lr"]),
                                      weight_decay=float(self.stage_cfg["weight_decay"]))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.hparams.max_epochs))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
