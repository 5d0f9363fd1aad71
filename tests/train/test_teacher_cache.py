"""The teacher embedding cache: reuse, and invalidation by audio, teacher and window."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from infer.teacher import spec_from_dict
from tests.conftest import write_tone
from tests.teacher_files import expected_embedding, perch_like_config
from train.data import read_window
from train.teacher_cache import TeacherCache

RATE, WINDOW = 32000, 160000


@pytest.fixture
def setup(tmp_path):
    audio = write_tone(tmp_path / "clip.wav", 12.0, rate=RATE)
    spec = spec_from_dict(perch_like_config(tmp_path, ["Aramus guarauna"]))
    return tmp_path, audio, spec


def test_embeddings_are_computed_once_and_reused(setup):
    folder, audio, spec = setup
    cache = TeacherCache(folder / "cache", spec, RATE, WINDOW)
    assert cache.fill(str(audio), [0.0, 5.0, 10.0]) == 3
    assert cache.fill(str(audio), [0.0, 5.0, 10.0]) == 0
    reopened = TeacherCache(folder / "cache", spec, RATE, WINDOW)
    assert reopened.fill(str(audio), [0.0, 5.0]) == 0
    entries = reopened.read(str(audio))
    window = read_window(str(audio), 5.0, RATE, WINDOW)[None]
    np.testing.assert_allclose(entries[5.0][0], expected_embedding(window)[0], atol=1e-6)


def test_new_windows_are_added_to_an_entry(setup):
    folder, audio, spec = setup
    cache = TeacherCache(folder / "cache", spec, RATE, WINDOW)
    cache.fill(str(audio), [0.0])
    assert cache.fill(str(audio), [0.0, 5.0]) == 1
    assert sorted(cache.read(str(audio))) == [0.0, 5.0]


def test_changed_audio_invalidates(setup):
    folder, audio, spec = setup
    cache = TeacherCache(folder / "cache", spec, RATE, WINDOW)
    cache.fill(str(audio), [0.0])
    before = cache.entry_path(str(audio))
    write_tone(audio, 12.0, rate=RATE, frequency=3000.0)
    assert cache.entry_path(str(audio)) != before
    assert cache.fill(str(audio), [0.0]) == 1


def test_changed_teacher_invalidates(setup):
    folder, audio, spec = setup
    original = TeacherCache(folder / "cache", spec, RATE, WINDOW)
    original.fill(str(audio), [0.0])
    model = onnx.load(str(spec.model_path))
    gain = next(t for t in model.graph.initializer if t.name == "gain")
    gain.CopyFrom(numpy_helper.from_array(np.array(50.0, np.float32), "gain"))
    onnx.save(model, str(spec.model_path))  # retrained weights: a different teacher
    changed = TeacherCache(folder / "cache", spec_from_dict(spec.to_dict()), RATE, WINDOW)
    assert changed.folder != original.folder
    assert changed.fill(str(audio), [0.0]) == 1


def test_changed_window_length_invalidates(setup):
    folder, audio, spec = setup
    TeacherCache(folder / "cache", spec, RATE, WINDOW).fill(str(audio), [0.0])
    shorter = TeacherCache(folder / "cache", spec, RATE, WINDOW // 2)
    assert shorter.fill(str(audio), [0.0]) == 1
