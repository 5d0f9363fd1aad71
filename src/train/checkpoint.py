"""Load a stage checkpoint as plain torch modules, without importing Lightning.

Pseudo-labelling and export only need the model and its front-end. Importing Lightning took
about 5 s per command on a 2-core CPU, and a DVC pipeline of many short commands pays it each time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from infer.frontend import FrontendSpec
from train.frontend import TorchFrontend
from train.models import create_model


@dataclass
class LoadedCheckpoint:
    """A checkpoint's model and front-end, and the hyperparameters it was trained with."""

    model: nn.Module
    frontend: TorchFrontend
    hparams: dict[str, Any]


def load_checkpoint(path: Path | str) -> LoadedCheckpoint:
    """Rebuild the SED model of a `SEDLitModule` checkpoint in eval mode (distillation head dropped)."""
    checkpoint = torch.load(str(path), map_location="cpu", weights_only=False)
    hparams = dict(checkpoint["hyper_parameters"])
    model_cfg, stage = hparams["model"], hparams["stage"]
    model = create_model(
        model_cfg["name"], hparams["num_classes"], pretrained_file=None,
        drop_rate=model_cfg.get("drop_rate", 0.25), drop_path_rate=stage.get("drop_path_rate", 0.0),
        gem_p=model_cfg.get("gem_p", 3.0),
    )
    prefix = "model."
    weights = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    model.load_state_dict(weights, strict=True)
    frontend = TorchFrontend(FrontendSpec.from_dict(hparams["frontend"]))
    return LoadedCheckpoint(model.eval(), frontend, hparams)
