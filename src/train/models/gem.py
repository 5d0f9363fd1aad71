"""Generalised-mean pooling over the frequency axis, always in float32."""

from __future__ import annotations

import torch
from torch import nn

from train.models.precision import float32_region


class GeMFrequency(nn.Module):
    """GEM over frequency: `[B, C, F, T]` to `[B, C, T]`, `(mean_f x^p)^(1/p)` with learnable p.

    Under bf16/fp16 autocast `x ** p` with p near 3 overflows or loses most of its mantissa, so
    the pooling is computed in float32 with autocast disabled, whatever the caller's precision.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learnable: bool = True) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)), requires_grad=learnable)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with float32_region(x.device.type):
            x = x.float().clamp(min=self.eps)
            p = self.p.float()
            return x.pow(p).mean(dim=2).pow(1.0 / p)
