"""Attention SED head: framewise logits and an attention-weighted clipwise logit."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from train.models.precision import float32_region


class AttentionSEDHead(nn.Module):
    """Sound-event-detection head over pooled frames, computed in float32.

    Input `[B, C, T]` features; outputs clipwise logits `[B, K]`, framewise logits `[B, T, K]`
    and the attention weights `[B, T, K]`. The clipwise logit of class k is the attention-weighted
    mean over frames of its framewise logit, so a short call in one frame can carry the window.
    """

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.25) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, in_features)
        self.attention = nn.Linear(in_features, num_classes)
        self.classifier = nn.Linear(in_features, num_classes)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with float32_region(features.device.type):
            x = features.float().transpose(1, 2)  # [B, T, C]
            x = F.relu(self.fc(self.dropout(x)))
            x = self.dropout(x)
            weights = torch.softmax(torch.tanh(self.attention(x)), dim=1)  # over frames
            frame_logits = self.classifier(x)  # [B, T, K]
            clip_logits = (weights * frame_logits).sum(dim=1)
        return clip_logits, frame_logits, weights
