"""Losses: clipwise BCE + frame-max auxiliary BCE, and cosine distillation."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def sed_loss(logits: torch.Tensor, frame_logits: torch.Tensor, targets: torch.Tensor,
             sample_weights: torch.Tensor, frame_max_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipwise BCE plus `frame_max_weight` times the BCE of the per-class maximum frame logit.

    The frame-max term makes at least one frame carry a present class, which keeps the framewise
    output usable for localisation. Soft targets (pseudo-labels, secondary labels) are allowed.

    Args:
        logits: `[B, K]` clipwise logits.
        frame_logits: `[B, T, K]` framewise logits.
        targets: `[B, K]` targets in [0, 1].
        sample_weights: `[B]` per-sample weights.
        frame_max_weight: Weight of the auxiliary term.
    """
    clip = F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="none").mean(dim=1)
    frame_max = frame_logits.float().max(dim=1).values
    aux = F.binary_cross_entropy_with_logits(frame_max, targets, reduction="none").mean(dim=1)
    weights = sample_weights / sample_weights.sum().clamp(min=1e-8)
    clip_loss = (clip * weights).sum()
    aux_loss = (aux * weights).sum()
    return clip_loss + frame_max_weight * aux_loss, {"clip_bce": clip_loss.detach(), "frame_max_bce": aux_loss.detach()}


def cosine_distillation(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean `1 - cos(student, teacher)` over the samples where `mask` is true (0 when none)."""
    if not bool(mask.any()):
        return student.sum() * 0.0
    cosine = F.cosine_similarity(student[mask].float(), teacher[mask].float(), dim=1)
    return (1.0 - cosine).mean()
