"""BatchNorm recalibration on clean, soundscape-like audio.

Training statistics come from focal clips under mixup, SpecAugment and gain noise; the deployed
model scores clean far-field soundscapes. Re-estimating the running mean and variance on clean
soundscape windows (no augmentation, weights frozen) before every evaluation and export removes
that shift at no training cost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from torch import nn

log = logging.getLogger(__name__)


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, frontend: nn.Module, batches: Iterable[torch.Tensor], prior_windows: float = 0.0
) -> int:
    """Re-estimate every BatchNorm's running statistics on clean audio; return the windows used.

    Estimates from a few windows are noisy, and a channel whose variance happens to be tiny there
    blows up on other audio. The new statistics are therefore shrunk towards the trained ones with
    weight `n / (n + prior_windows)` for `n` windows, as if the trained statistics were worth
    `prior_windows` windows of evidence; 0 keeps the recalibrated statistics alone.

    Args:
        model: Model whose BatchNorm layers are updated in place; other layers stay in eval mode.
        frontend: Turns waveform batches `[B, N]` into model input.
        batches: Clean waveform batches `[B, N]` (at least two windows each).
        prior_windows: Weight of the trained statistics, in windows.

    Raises:
        ValueError: No window was given; the trained statistics are then left as they were.
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    was_training = model.training
    model.eval()
    trained = [(layer.running_mean.clone(), layer.running_var.clone()) for layer in layers]
    momenta = []
    for layer in layers:
        momenta.append(layer.momentum)
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over all batches, not an exponential one
        layer.train()
    seen = 0
    try:
        for waves in batches:
            model(frontend(waves))
            seen += len(waves)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)
    if seen == 0:
        for layer, (mean, var) in zip(layers, trained):
            layer.running_mean.copy_(mean)
            layer.running_var.copy_(var)
        raise ValueError("BatchNorm recalibration got no audio; give it unlabelled soundscape windows")

    weight = seen / (seen + prior_windows)
    for layer, (mean, var) in zip(layers, trained):
        layer.running_mean.mul_(weight).add_(mean, alpha=1 - weight)
        layer.running_var.mul_(weight).add_(var, alpha=1 - weight)
    log.info("recalibrated %d BatchNorm layers on %d clean windows (weight %.2f against the trained statistics)",
             len(layers), seen, weight)
    return seen
