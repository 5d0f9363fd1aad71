"""Named model presets: `model=b0_sed` in a config resolves here.

Each preset fixes the architecture; configs may still override training-time options
(dropout, drop path, local weights). The `*_tiny` presets have the same structure at a fraction of
the width and depth, for tests that must train and export in seconds on a CPU.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from train.models.sed import GAPLinearModel, SEDModel

MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "b0_sed": {"head": "sed", "backbone": "efficientnet_b0"},
    "v2s_sed": {"head": "sed", "backbone": "tf_efficientnetv2_s"},
    "b0_gap": {"head": "gap", "backbone": "efficientnet_b0"},
    # timm's own test network: an EfficientNet of 0.1 M parameters.
    "b0_sed_tiny": {"head": "sed", "backbone": "test_efficientnet"},
    "v2s_sed_tiny": {
        "head": "sed",
        "backbone": "efficientnetv2_s",
        "backbone_kwargs": {"channel_multiplier": 0.25, "depth_multiplier": 0.25},
    },
    "b0_gap_tiny": {"head": "gap", "backbone": "test_efficientnet"},
}


def create_model(
    name: str,
    num_classes: int,
    pretrained_file: str | None = None,
    drop_rate: float = 0.25,
    drop_path_rate: float = 0.0,
    gem_p: float = 3.0,
) -> nn.Module:
    """Build the preset `name` with `num_classes` outputs.

    Raises:
        ValueError: `name` is not a preset; the message lists the presets.
    """
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODEL_PRESETS)}")
    preset = MODEL_PRESETS[name]
    common = dict(
        backbone=preset["backbone"],
        num_classes=num_classes,
        pretrained_file=pretrained_file,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        backbone_kwargs=preset.get("backbone_kwargs"),
    )
    if preset["head"] == "gap":
        return GAPLinearModel(**common)
    return SEDModel(gem_p=gem_p, **common)
