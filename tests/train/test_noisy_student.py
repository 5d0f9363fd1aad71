"""Pseudo-label caps and the rule that pseudo-labels never share a sample with hard soundscape labels."""

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import write_tone
from train.augment import allowed_pairs, mixup
from train.data import KIND_FOCAL, KIND_PSEUDO, KIND_SOUNDSCAPE, WindowDataset, WindowTable
from train.pseudo_label import cap_pseudo_labels


def test_caps_keep_pseudo_labels_below_a_hard_label():
    rng = np.random.default_rng(0)
    probabilities = rng.random((200, 30)).astype(np.float32)
    probabilities[0] = 1.0
    capped = cap_pseudo_labels(probabilities, class_cap=0.8, mass_cap=0.9, min_probability=0.05)
    assert capped.max() <= 0.8
    assert capped.sum(axis=1).max() <= 0.9 + 1e-6
    assert capped.sum(axis=1).max() < 1.0  # one hard label weighs 1


def test_caps_drop_background_noise():
    probabilities = np.array([[0.02, 0.3, 0.04]], np.float32)
    capped = cap_pseudo_labels(probabilities, 0.8, 0.9, 0.05)
    np.testing.assert_allclose(capped, [[0.0, 0.3, 0.0]])


def test_caps_must_stay_below_one():
    with pytest.raises(ValueError, match="below a hard label"):
        cap_pseudo_labels(np.zeros((1, 2)), class_cap=1.0, mass_cap=0.9, min_probability=0.0)


def test_mixup_pairs_never_join_pseudo_and_soundscape():
    kinds = torch.tensor([KIND_PSEUDO, KIND_SOUNDSCAPE, KIND_FOCAL, KIND_PSEUDO])
    partners = torch.tensor([1, 0, 3, 2])
    np.testing.assert_array_equal(allowed_pairs(kinds, partners).numpy(), [False, False, True, True])


def test_mixup_keeps_forbidden_samples_unmixed():
    torch.manual_seed(0)
    waves = torch.stack([torch.full((10,), float(i)) for i in range(8)])
    kinds = torch.tensor([KIND_PSEUDO, KIND_SOUNDSCAPE] * 4)
    targets = torch.eye(8)
    for _ in range(20):
        mixed, mixed_targets = mixup(waves, targets, kinds, probability=1.0)
        for i in range(8):
            sources = torch.nonzero(mixed_targets[i]).flatten().tolist()
            source_kinds = {int(kinds[s]) for s in sources}
            assert source_kinds != {KIND_PSEUDO, KIND_SOUNDSCAPE}


def _table(path, kinds, targets):
    manifest = pd.DataFrame({"window_id": [f"w{i}" for i in range(len(kinds))], "path": [str(path)] * len(kinds),
                             "start_s": [0.0] * len(kinds)})
    return WindowTable(manifest, np.asarray(targets, np.float32), np.asarray(kinds), np.ones(len(kinds), np.float32),
                       np.ones(len(kinds)))


def test_background_mixing_only_reaches_focal_windows(tmp_path):
    audio = write_tone(tmp_path / "a.wav", 6.0)
    train = _table(audio, [KIND_FOCAL, KIND_SOUNDSCAPE], [[1, 0, 0], [0, 1, 0]])
    background = _table(audio, [KIND_PSEUDO], [[0, 0, 0.5]])
    augment = {"mixup_background_prob": 1.0, "gain_db": 0, "time_shift_s": 0}
    dataset = WindowDataset(train, 32000, 160000, augment, background=background)
    focal, soundscape = dataset[0], dataset[1]
    np.testing.assert_allclose(focal["target"].numpy(), [1, 0, 0.5])
    np.testing.assert_allclose(soundscape["target"].numpy(), [0, 1, 0])
