"""Settings of the held-out-site harness and the promotion gates, read from `conf/harness/`.

The YAML file is validated against the dataclasses below (unknown keys and wrong types raise),
and `--set key=value` overrides from the command line are merged on top.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from infer.pipeline import DEFAULT_TTA_SHIFTS, ScoringConfig
from infer.postproc import PostprocConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SITE_PATTERN = r"_S(\d+)_"


def project_root() -> Path:
    """Checkout root, or the folder named by PANTANAL_ROOT (the same rule as the training side)."""
    return Path(os.environ.get("PANTANAL_ROOT", PROJECT_ROOT)).resolve()


def config_dir() -> Path:
    """`conf/` of this checkout, or the folder named by PANTANAL_CONFIG_DIR."""
    return Path(os.environ.get("PANTANAL_CONFIG_DIR", PROJECT_ROOT / "conf")).resolve()


if not OmegaConf.has_resolver("project_root"):
    OmegaConf.register_new_resolver("project_root", lambda: str(project_root()))


@dataclass
class ScoringSection:
    """Scoring of a single model; `postproc` overrides fields of `PostprocConfig`."""

    tta_shifts: list[float] = field(default_factory=lambda: list(DEFAULT_TTA_SHIFTS))
    postproc: dict[str, Any] = field(default_factory=dict)


@dataclass
class BootstrapSection:
    """File-level bootstrap: resample count, interval confidence and random seed."""

    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


@dataclass
class GateSection:
    """Thresholds of the promotion gates (see `harness.gates`)."""

    standalone_bar: float = 0.75
    noise_multiplier: float = 1.0
    parity_tolerance: float = 1.0e-4


@dataclass
class HarnessConfig:
    """Everything `pantanal harness` and `pantanal registry propose` read from the config."""

    site: str = "22"
    data_root: str = ""
    site_pattern: str = DEFAULT_SITE_PATTERN
    scoring: ScoringSection = field(default_factory=ScoringSection)
    bootstrap: BootstrapSection = field(default_factory=BootstrapSection)
    padded_cmap_rows: int = 5
    gates: GateSection = field(default_factory=GateSection)

    def scoring_config(self) -> ScoringConfig:
        """Build the `ScoringConfig` for a single model: the field command's defaults unless overridden."""
        return ScoringConfig(
            tta_shifts=tuple(float(s) for s in self.scoring.tta_shifts),
            postproc=PostprocConfig(**self.scoring.postproc),
        )

    def to_dict(self) -> dict[str, Any]:
        return OmegaConf.to_container(OmegaConf.structured(self), resolve=True)


def normalise_site(site: str | int) -> str:
    """Site number as written in file names: "S22", "s22" and 22 all give "22"."""
    text = str(site).strip()
    return text[1:] if text[:1] in ("S", "s") else text


def default_config_path() -> Path:
    return config_dir() / "harness" / "default.yaml"


def portable_data_root(data_root: str) -> str:
    """`data_root` as recorded in proposals: relative to the checkout when it sits beside it.

    The demo data lives in `../shared` next to every clone, so a relative path names the same data
    in any clone, and a proposal does not go stale because a colleague cloned elsewhere.
    """
    resolved = Path(data_root).resolve()
    root = project_root()
    if resolved.is_relative_to(root.parent):
        return os.path.relpath(resolved, root)
    return str(resolved)


def settings_changes(config: HarnessConfig, project: HarnessConfig) -> dict[str, dict[str, Any]]:
    """Gate and scoring settings of `config` that differ from the project's, by dotted key.

    The data root is not compared, because it differs between machines and does not change how
    strict the gates are.
    """
    used, reference = flatten_settings(config.to_dict()), flatten_settings(project.to_dict())
    return {key: {"project": reference.get(key), "used": used.get(key)}
            for key in sorted(set(used) | set(reference))
            if key != "data_root" and used.get(key) != reference.get(key)}


def flatten_settings(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested settings to `dotted.key -> value`; an empty section contributes no key."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(flatten_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_harness_config(path: Path | str | None = None, overrides: list[str] | None = None) -> HarnessConfig:
    """Read the harness config at `path` (default `conf/harness/default.yaml`) with dotted overrides.

    Raises:
        ValueError: The file is missing, or a key is unknown or has the wrong type.
    """
    path = Path(path) if path is not None else default_config_path()
    if not path.is_file():
        raise ValueError(f"harness config {path} not found; pass --config FILE or restore conf/harness/default.yaml")
    try:
        merged = OmegaConf.merge(
            OmegaConf.structured(HarnessConfig), OmegaConf.load(path), OmegaConf.from_dotlist(list(overrides or []))
        )
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ValueError(f"invalid harness config {path} (overrides {overrides or []}): {exc}") from exc
    config.site = normalise_site(config.site)
    return config
