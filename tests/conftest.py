"""Shared fixtures: paths to the real recordings, generated audio, and one tiny trained pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
MINI = SHARED_DATA / "birdclef2026-mini"
EXTRA = SHARED_DATA / "extra" / "opensoundscape"
S22_SOUNDSCAPE = MINI / "train_soundscapes" / "BC2026_Train_0039_S22_20211231_201500.ogg"
SHORT_CLIP = MINI / "train_audio" / "1161364" / "iNat1264238.ogg"
TOAD_44K = EXTRA / "great_plains_toad.wav"

if not MINI.is_dir():
    raise RuntimeError(
        f"the real recordings are expected at {SHARED_DATA} (../shared/data beside the checkout); "
        "the tests and the demo run on them"
    )


@pytest.fixture(scope="session")
def mini_root() -> Path:
    return MINI


def write_tone(path: Path, seconds: float, rate: int = 32000, channels: int = 1, subtype: str = "PCM_16",
               frequency: float = 2000.0, amplitude: float = 0.3, fmt: str | None = None) -> Path:
    """A tone with a little noise, written with soundfile; returns `path`."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    mono = amplitude * np.sin(2 * np.pi * frequency * t) + 0.01 * rng.standard_normal(len(t))
    data = np.stack([mono * (1 - 0.3 * c) for c in range(channels)], axis=1) if channels > 1 else mono
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.astype(np.float32), rate, subtype=subtype, format=fmt)
    return path


def training_overrides(out_dir: Path, *extra: str) -> list[str]:
    """Hydra overrides that keep a test's outputs and MLflow runs inside `out_dir`."""
    return [
        "debug=fast",
        f"paths.output_dir={out_dir}/outputs",
        f"logger.tracking_uri=sqlite:///{out_dir}/mlflow.db",
        f"logger.artifact_location={out_dir}/artifacts",
        "run.goal=test the pipeline",
        "run.hypothesis=every stage runs",
        "run.stop_condition=one epoch per stage",
        f"data.extra_unlabelled=[{EXTRA / '1min.wav'}]",
        *extra,
    ]


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> dict:
    """One tiny recipe run (supervised, ns1, ns2, export) shared by the tests that need a model."""
    from train.cli import run_recipe

    out_dir = tmp_path_factory.mktemp("tiny_pipeline")
    overrides = training_overrides(out_dir, "experiment_name=tiny")
    record = run_recipe(overrides)
    return {"dir": out_dir, "overrides": overrides, "record": record, "model": Path(record["model"]),
            "experiment_dir": out_dir / "outputs" / "tiny"}

