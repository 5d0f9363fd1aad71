"""Compose the Hydra configuration and check what every run must state."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from infer.frontend import FrontendSpec

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REQUIRED_RUN_KEYS = ("goal", "hypothesis", "stop_condition")


class RunIntentError(ValueError):
    """A training run was started without stating its goal, hypothesis or stop condition."""


def config_dir() -> Path:
    """`conf/` of this checkout, or the folder named by PANTANAL_CONFIG_DIR."""
    return Path(os.environ.get("PANTANAL_CONFIG_DIR", PROJECT_ROOT / "conf")).resolve()


def project_root() -> Path:
    return Path(os.environ.get("PANTANAL_ROOT", PROJECT_ROOT)).resolve()


if not OmegaConf.has_resolver("project_root"):
    OmegaConf.register_new_resolver("project_root", lambda: str(project_root()))


class ConfigError(ValueError):
    """The configuration cannot be composed from the given overrides."""


def load_config(overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
    """Compose `conf/<config_name>.yaml` with command-line style `overrides`.

    Raises:
        ConfigError: An override names an unknown group, option or key, or does not parse.
    """
    overrides = list(overrides or [])
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides)
    except HydraException as exc:
        message = str(exc)
        unknown = re.match(r"Could not override '([^']+)'", message)
        if unknown:
            # Hydra's hint is to append the key with '+', which for a misspelt key only hides the
            # mistake, so the message names the keys that exist instead.
            message = f"there is no key {unknown.group(1)}; {_key_hint(unknown.group(1), overrides, config_name)}"
        raise ConfigError(f"invalid configuration {overrides}: {message} (configs are in {config_dir()})") from exc


def _key_hint(key: str, overrides: list[str], config_name: str) -> str:
    """Suggest the existing key closest to `key`, and list the keys of its section."""
    others = [o for o in overrides if not o.lstrip("+~").startswith(key + "=")]
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=others)
    except HydraException:
        return "check its spelling"
    section, parts = cfg, key.split(".")
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(section, DictConfig) or part not in section:
            parent = ".".join(parts[:depth]) or "the top level"
            return f"{parent} has {', '.join(sorted(section.keys()))}"
        section = section[part]
    keys = sorted(str(k) for k in section.keys()) if isinstance(section, DictConfig) else []
    close = difflib.get_close_matches(parts[-1], keys, n=1)
    where = ".".join(parts[:-1]) or "the top level"
    suggestion = f"did you mean {'.'.join([*parts[:-1], close[0]])}? " if close else ""
    return f"{suggestion}{where} has {', '.join(keys)}"


def require_run_intent(cfg: DictConfig) -> dict[str, str]:
    """Return the run's goal, hypothesis and stop condition, or raise naming every missing one."""
    run = cfg.get("run") or {}
    missing = [f"run.{key}" for key in REQUIRED_RUN_KEYS if OmegaConf.is_missing(run, key) or not str(run.get(key) or "").strip()]
    if missing:
        raise RunIntentError(
            f"refusing to start a run without {', '.join(missing)}: state why the run exists, e.g. "
            "run.goal='beat the champion on Site-22' run.hypothesis='teacher distillation helps frogs' "
            "run.stop_condition='3 epochs without held-out improvement' (or set them in the experiment config)"
        )
    return {key: str(run[key]) for key in REQUIRED_RUN_KEYS}


def frontend_spec(cfg: DictConfig) -> FrontendSpec:
    return FrontendSpec.from_dict(OmegaConf.to_container(cfg.data.frontend, resolve=True))


def stage_round(stage: str) -> int:
    """0 for the supervised stage, k for Noisy Student round `ns<k>`."""
    if stage == "supervised":
        return 0
    if stage.startswith("ns") and stage[2:].isdigit() and int(stage[2:]) >= 1:
        return int(stage[2:])
    raise ValueError(f"stage={stage!r} is not 'supervised' or 'ns<k>' (ns1, ns2, ...)")


def require_stage_in_recipe(cfg: DictConfig) -> None:
    """Raise ConfigError for a Noisy Student stage past `ns.rounds`.

    Such a stage is not part of the recipe the export selects from, and training it would overwrite
    the outputs (and invalidate the DVC record) of an earlier, longer recipe of the experiment.
    """
    round_index, rounds = int(cfg.stage.round), int(cfg.ns.rounds)
    if round_index > rounds:
        raise ConfigError(f"stage={cfg.stage.name} is past ns.rounds={rounds}: the recipe ends at "
                          f"{stage_name(rounds)}; set ns.rounds={round_index} to train it")


def require_round_configs(cfg: DictConfig) -> None:
    """Check before any training that every round up to `ns.rounds` has its `conf/stage/ns<k>.yaml`."""
    rounds = int(cfg.ns.rounds)
    missing = [f"stage/{stage_name(k)}.yaml" for k in range(1, rounds + 1)
               if not (config_dir() / "stage" / f"{stage_name(k)}.yaml").is_file()]
    if missing:
        raise ConfigError(f"ns.rounds={rounds} needs {', '.join(missing)} in {config_dir()}; each contains "
                          "two lines, e.g. 'name: ns4' and 'round: 4'")


def stage_name(round_index: int) -> str:
    return "supervised" if round_index == 0 else f"ns{round_index}"


def stage_dir(cfg: DictConfig, stage: str | None = None) -> Path:
    return Path(cfg.paths.experiment_dir) / (stage or cfg.stage.name)
