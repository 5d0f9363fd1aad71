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
def recalibrate_batchnorm(model: nn.Module, frontend: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Reset and re-estimate every BatchNorm's running statistics; return the windows used.

    Args:
        model: Model whose BatchNorm layers are updated in place; other layers stay in eval mode.
        frontend: Turns waveform batches `[B, N]` into model input.
        batches: Clean waveform batches `[B, N]` (at least two windows each).

    Raises:
        ValueError: No window was given, which would leave the statistics reset.
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    was_training = model.training
    model.eval()
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
        raise ValueError("BatchNorm recalibration got no audio; give it unlabelled soundscape windows")
    log.info("recalibrated %d BatchNorm layers on %d clean windows", len(layers), seen)
    return seen
