"""Batch-level noise: SpecAugment masks and in-batch mixup that respects label kinds."""

from __future__ import annotations

import torch

from train.data import KIND_PSEUDO, KIND_SOUNDSCAPE


def spec_augment(logmel: torch.Tensor, freq_masks: int, freq_width: int, time_masks: int, time_width: int) -> torch.Tensor:
    """Zero random frequency bands and time spans of `[B, 1, M, T]` log-mels (one draw per sample).

    Inputs are z-scored, so zero is the window's mean level rather than silence.
    """
    out = logmel.clone()
    batch, _, n_mels, n_frames = out.shape
    for axis, count, width, size in ((2, freq_masks, freq_width, n_mels), (3, time_masks, time_width, n_frames)):
        for _ in range(count):
            widths = torch.randint(0, width + 1, (batch,))
            starts = (torch.rand(batch) * (size - widths).clamp(min=1)).long()
            positions = torch.arange(size)
            mask = (positions[None, :] >= starts[:, None]) & (positions[None, :] < (starts + widths)[:, None])
            shape = [batch, 1, 1, 1]
            shape[axis] = size
            out = out.masked_fill(mask.view(*shape).to(out.device), 0.0)
    return out


def allowed_pairs(kinds: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
    """True where sample i may be mixed with sample partners[i]: never pseudo with hard soundscape."""
    a, b = kinds, kinds[partners]
    forbidden = ((a == KIND_PSEUDO) & (b == KIND_SOUNDSCAPE)) | ((a == KIND_SOUNDSCAPE) & (b == KIND_PSEUDO))
    return ~forbidden


def mixup(waves: torch.Tensor, targets: torch.Tensor, kinds: torch.Tensor, probability: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each selected sample with a random partner of the batch; targets take the union (max).

    A call stays present when another recording is laid over it, so the union, not the
    weighted mean, is the right target for presence labels.
    """
    if probability <= 0 or len(waves) < 2:
        return waves, targets
    partners = torch.randperm(len(waves))
    selected = (torch.rand(len(waves)) < probability) & allowed_pairs(kinds, partners) & (partners != torch.arange(len(waves)))
    if not bool(selected.any()):
        return waves, targets
    weight = (0.3 + 0.4 * torch.rand(len(waves))).to(waves.device)[:, None]
    mixed_waves = torch.where(selected.to(waves.device)[:, None], (1 - weight) * waves + weight * waves[partners], waves)
    mixed_targets = torch.where(selected.to(targets.device)[:, None], torch.maximum(targets, targets[partners]), targets)
    return mixed_waves, mixed_targets
