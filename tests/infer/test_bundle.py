"""Bundles: writing, verified loading, and one error that names every problem."""

import json
import shutil

import numpy as np
import pytest

from infer.bundle import BundleError, open_bundle, read_manifest, scorer_from_bundle
from infer.bundle_writer import MemberSource, update_manifest, write_bundle
from infer.loading import load_scorer
from infer.member import OnnxMember
from infer.pipeline import Scorer, ScoringConfig
from infer.taxonomy import Taxonomy
from infer.teacher import Teacher, spec_from_dict
from tests.conftest import MINI, write_tone
from tests.fake_models import write_fake_member, write_fake_teacher


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle_parts")
    taxonomy = Taxonomy.from_csv(MINI / "taxonomy.csv")
    members = [write_fake_member(folder / f"m{seed}.onnx", taxonomy, seed=seed, experiment=f"exp{seed}", run_id=f"run{seed}")
               for seed in (0, 1)]
    teacher = spec_from_dict(write_fake_teacher(folder / "teacher", [t.scientific_name for t in taxonomy.taxa[:30]]))
    audio = write_tone(folder / "tone.wav", 9.0)
    return {"taxonomy": taxonomy, "members": members, "teacher": teacher, "audio": audio}


@pytest.fixture(scope="module")
def built(parts, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles") / "bundle"
    sources = [MemberSource(parts["members"][0], weight=2.0, decision="promote"), MemberSource(parts["members"][1])]
    write_bundle(out, sources, MINI / "taxonomy.csv", ScoringConfig(), parts["teacher"], teacher_weight=0.5)
    return out


def _copy(built, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(built, target)
    return target


def test_manifest_records_members_and_settings(built):
    manifest = read_manifest(built)
    assert manifest["schema_version"] == "1"
    entries = {m["name"]: m for m in manifest["members"]}
    assert set(entries) == {"exp0", "exp1", "fake_teacher"}
    assert entries["exp0"]["kind"] == "cnn"
    assert entries["exp0"]["weight"] == 2.0
    assert entries["exp0"]["decision"] == "promote"
    assert entries["exp0"]["source_run_id"] == "run0"
    assert entries["fake_teacher"]["kind"] == "teacher"
    assert entries["fake_teacher"]["weight"] == 0.5
    assert len(entries["fake_teacher"]["sha256"]) == 64
    assert manifest["scoring"]["blend"] == {"mode": "probability", "weights": {"exp0": 2.0, "exp1": 1.0}}
    assert manifest["scoring"]["teacher_weight"] == 0.5
    assert manifest["scoring"]["postproc"]["tuned_on"] == "probability"
    assert manifest["teacher_mapping"]["matched"] == 30
    assert "CC BY-NC-SA 4.0 (test teacher)" in manifest["licences"]
    assert "fake_teacher: CC BY-NC-SA 4.0" in manifest["licence_notice"]
    assert (built / "members" / "fake_teacher_labels.txt").is_file()


def test_bundle_scores_like_its_members(built, parts):
    scorer, provenance = scorer_from_bundle(built)
    assert provenance.kind == "bundle"
    assert provenance.identifier == provenance.sha256[:12]
    assert [m["name"] for m in provenance.members] == ["exp0", "exp1", "fake_teacher"]
    assert {"name", "kind", "file", "sha256", "source_run_id", "stage", "licence", "decision", "weight"} <= set(provenance.members[0])
    config = ScoringConfig(teacher_weight=0.5)
    config.blend.weights = {"exp0": 2.0, "exp1": 1.0}
    direct = Scorer([OnnxMember(p, name=f"exp{i}") for i, p in enumerate(parts["members"])], parts["taxonomy"],
                    config, Teacher(parts["teacher"]))
    np.testing.assert_allclose(scorer.score_file(parts["audio"]).scores, direct.score_file(parts["audio"]).scores, atol=1e-6)


def test_load_scorer_opens_bundles(built):
    scorer, provenance = load_scorer(bundle=built)
    assert provenance.kind == "bundle"
    assert scorer.teacher is not None


def test_deleted_member_is_named(built, tmp_path):
    bundle = _copy(built, tmp_path)
    (bundle / "members" / "exp1.onnx").unlink()
    with pytest.raises(BundleError) as error:
        open_bundle(bundle)
    assert "members/exp1.onnx is missing" in str(error.value)


def test_edited_byte_is_named(built, tmp_path):
    bundle = _copy(built, tmp_path)
    path = bundle / "members" / "fake_teacher.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError) as error:
        open_bundle(bundle)
    assert "members/fake_teacher.onnx has sha256" in str(error.value)


def test_every_problem_is_listed_in_one_error(built, tmp_path):
    bundle = _copy(built, tmp_path)
    (bundle / "members" / "exp0.onnx").unlink()
    (bundle / "taxonomy.csv").write_text("edited", encoding="utf-8")
    manifest = read_manifest(bundle)
    manifest["schema_version"] = "99"
    manifest["members"][2]["weight"] = 3.0
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError) as error:
        open_bundle(bundle)
    problems = error.value.problems
    assert len(problems) == 4
    assert any("schema_version '99'" in p for p in problems)
    assert any("taxonomy.csv has sha256" in p for p in problems)
    assert any("exp0.onnx is missing" in p for p in problems)
    assert any("fake_teacher: weight 3.0 differs" in p for p in problems)


def test_member_with_other_classes_is_rejected(built, parts, tmp_path):
    bundle = _copy(built, tmp_path)
    reversed_classes = list(reversed(parts["taxonomy"].labels))
    write_fake_member(bundle / "members" / "exp1.onnx", parts["taxonomy"], seed=1, classes=reversed_classes)
    manifest = read_manifest(bundle)
    from infer.member import file_sha256

    manifest["members"][1]["sha256"] = file_sha256(bundle / "members" / "exp1.onnx")
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="member exp1: its 234 classes differ"):
        open_bundle(bundle)


def test_paths_outside_the_bundle_are_rejected(built, tmp_path):
    bundle = _copy(built, tmp_path)
    manifest = read_manifest(bundle)
    manifest["members"][0]["file"] = "../elsewhere.onnx"
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="points outside the bundle folder"):
        open_bundle(bundle)


def test_missing_or_broken_manifest(tmp_path):
    with pytest.raises(BundleError, match="not found"):
        open_bundle(tmp_path / "absent")
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleError, match="not valid JSON"):
        open_bundle(tmp_path)


def test_existing_folder_needs_overwrite(built, parts):
    with pytest.raises(BundleError, match="already exists"):
        write_bundle(built, [MemberSource(parts["members"][0])], None, ScoringConfig())


def test_duplicate_names_are_rejected(parts, tmp_path):
    sources = [MemberSource(parts["members"][0], name="same"), MemberSource(parts["members"][1], name="same")]
    with pytest.raises(BundleError, match="unique"):
        write_bundle(tmp_path / "bundle", sources, None, ScoringConfig())
    assert not (tmp_path / "bundle").exists()
    assert list(tmp_path.iterdir()) == []


def test_update_manifest_keeps_the_bundle_valid(built, tmp_path):
    bundle = _copy(built, tmp_path)
    before = open_bundle(bundle).manifest_sha256
    after = update_manifest(bundle, checklist={"passed": True}, throughput={"files_per_minute": 1.0})
    loaded = open_bundle(bundle)
    assert loaded.manifest_sha256 == after != before
    assert loaded.manifest["checklist"] == {"passed": True}
