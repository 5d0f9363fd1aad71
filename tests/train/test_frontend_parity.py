"""The torch (training) and numpy (inference) front-ends agree within 1e-5 on real recordings."""

import numpy as np
import pytest
import torch

from infer.audio import decode_mono
from infer.frontend import FrontendSpec, NumpyFrontend
from tests.conftest import EXTRA, MINI, S22_SOUNDSCAPE, TOAD_44K
from train.config import frontend_spec, load_config
from train.frontend import TorchFrontend

RECORDINGS = [S22_SOUNDSCAPE, MINI / "train_audio" / "1176823" / "iNat145706.ogg", TOAD_44K, EXTRA / "1min.wav"]


def specs_used_by_configs() -> list[FrontendSpec]:
    """Every front-end specification a shipped experiment config composes to."""
    from train.config import config_dir

    specs = {}
    for path in sorted((config_dir() / "experiment").glob("*.yaml")):
        spec = frontend_spec(load_config([f"experiment={path.stem}"]))
        specs[spec.fingerprint()] = spec
    specs[FrontendSpec().fingerprint()] = FrontendSpec()
    return list(specs.values())


def windows_of(path, spec: FrontendSpec, count: int = 3) -> np.ndarray:
    audio = decode_mono(path, spec.sample_rate)
    padded = np.zeros(count * spec.window_samples, np.float32)
    padded[: min(len(audio), len(padded))] = audio[: len(padded)]
    return padded.reshape(count, spec.window_samples)


@pytest.mark.parametrize("spec", specs_used_by_configs(), ids=lambda s: f"{s.n_mels}mel-{s.normalization}")
@pytest.mark.parametrize("recording", RECORDINGS, ids=lambda p: p.name)
def test_torch_matches_numpy(spec, recording):
    windows = windows_of(recording, spec)
    expected = NumpyFrontend(spec).window_logmel(windows)
    actual = TorchFrontend(spec)(torch.from_numpy(windows)).numpy()
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= 1e-5


def test_torch_frontend_ignores_autocast():
    spec = FrontendSpec()
    windows = torch.from_numpy(windows_of(S22_SOUNDSCAPE, spec, 2))
    frontend = TorchFrontend(spec)
    reference = frontend(windows)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = frontend(windows)
    assert under_autocast.dtype == torch.float32
    assert torch.equal(reference, under_autocast)
