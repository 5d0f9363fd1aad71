"""The SED model: timm backbone, GEM over frequency, attention head."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn

from train.models.gem import GeMFrequency
from train.models.sed_head import AttentionSEDHead

log = logging.getLogger(__name__)


@dataclass
class SEDOutput:
    """Model outputs.

    Attributes:
        logits: Clipwise logits `[B, K]`.
        frame_logits: Framewise logits `[B, T, K]`.
        embedding: Time-averaged pooled features `[B, C]`, the input of the distillation head.
    """

    logits: torch.Tensor
    frame_logits: torch.Tensor
    embedding: torch.Tensor


def create_backbone(name: str, pretrained_file: str | None, drop_rate: float, drop_path_rate: float, **kwargs) -> nn.Module:
    """Create a timm feature extractor with one input channel.

    Weights come from `pretrained_file` (a local checkpoint, loaded through timm's
    `pretrained_cfg_overlay`, which adapts the 3-channel stem to 1 channel) or start random.
    Nothing is ever fetched from a model hub.
    """
    options = dict(num_classes=0, global_pool="", in_chans=1, drop_rate=drop_rate, drop_path_rate=drop_path_rate, **kwargs)
    if pretrained_file:
        path = Path(pretrained_file)
        if not path.is_file():
            raise FileNotFoundError(f"model.pretrained_file={path} does not exist; set it to a local timm checkpoint or null")
        log.info("loading backbone weights for %s from %s", name, path)
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **options)
    return timm.create_model(name, pretrained=False, **options)


class SEDModel(nn.Module):
    """Log-mel `[B, 1, n_mels, frames]` in, clipwise and framewise logits out.

    Args:
        backbone: timm model name, e.g. "efficientnet_b0" or "tf_efficientnetv2_s".
        num_classes: Output classes.
        pretrained_file: Local backbone weights, or None for random initialisation.
        drop_rate: Dropout of the backbone head and the SED head.
        drop_path_rate: Stochastic depth of the backbone (a Noisy Student noise source).
        gem_p: Initial GEM exponent.
        backbone_kwargs: Extra timm arguments (width and depth multipliers of test variants).
    """

    def __init__(
        self,
        backbone: str,
        num_classes: int,
        pretrained_file: str | None = None,
        drop_rate: float = 0.25,
        drop_path_rate: float = 0.0,
        gem_p: float = 3.0,
        backbone_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.backbone = create_backbone(backbone, pretrained_file, drop_rate, drop_path_rate, **(backbone_kwargs or {}))
        self.num_features = self.backbone.num_features
        self.pool = GeMFrequency(p=gem_p)
        self.head = AttentionSEDHead(self.num_features, num_classes, dropout=drop_rate)

    def forward(self, logmel: torch.Tensor) -> SEDOutput:
        features = self.backbone.forward_features(logmel)  # [B, C, F', T']
        pooled = self.pool(features)  # [B, C, T'] float32
        logits, frame_logits, _ = self.head(pooled)
        return SEDOutput(logits=logits, frame_logits=frame_logits, embedding=pooled.mean(dim=2))


class GAPLinearModel(nn.Module):
    """The phase-0 baseline: backbone, global average pooling, one linear layer.

    It has no frame resolution; `frame_logits` repeats the clipwise logits over one frame so that
    the export contract and the losses stay the same.
    """

    def __init__(self, backbone: str, num_classes: int, pretrained_file: str | None = None,
                 drop_rate: float = 0.2, drop_path_rate: float = 0.0, backbone_kwargs: dict | None = None) -> None:
        super().__init__()
        self.backbone = create_backbone(backbone, pretrained_file, drop_rate, drop_path_rate, **(backbone_kwargs or {}))
        self.num_features = self.backbone.num_features
        self.dropout = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(self.num_features, num_classes)

    def forward(self, logmel: torch.Tensor) -> SEDOutput:
        features = self.backbone.forward_features(logmel).float()
        embedding = features.mean(dim=(2, 3))
        logits = self.classifier(self.dropout(embedding))
        return SEDOutput(logits=logits, frame_logits=logits.unsqueeze(1), embedding=embedding)


class ExportWrapper(nn.Module):
    """Exported module: `logmel` in, `(logits, frame_logits)` out, without the distillation head."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(logmel)
        return out.logits, out.frame_logits
