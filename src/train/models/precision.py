"""Run a block in float32 even when the caller uses autocast."""

from __future__ import annotations

import contextlib

import torch


def float32_region(device_type: str) -> contextlib.AbstractContextManager:
    """`autocast(enabled=False)` when autocast is active on `device_type`, else a no-op.

    Entering the autocast context only when it is active keeps the graph free of autocast
    nodes during ONNX export, where the model already runs in float32.
    """
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()
