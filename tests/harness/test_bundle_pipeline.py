"""A trained and exported member plus the real BirdNET teacher: package, then the checklist on S22."""

import json

import pytest

from infer.cli import main
from infer.teacher import TeacherError, locate_birdnet_v24
from tests.conftest import MINI, S22_SOUNDSCAPE

pytestmark = pytest.mark.slow


def test_exported_member_and_birdnet_pass_the_checklist(tiny_pipeline, tmp_path):
    try:
        locate_birdnet_v24()
    except TeacherError as exc:
        pytest.skip(str(exc))
    tracking_uri = f"sqlite:///{tiny_pipeline['dir'] / 'mlflow.db'}"
    bundle = tmp_path / "bundle"
    assert main(["package", "--members", str(tiny_pipeline["model"]), "--teacher", "birdnet_v24",
                 "--taxonomy", str(MINI / "taxonomy.csv"), "--out", str(bundle), "--tracking-uri", tracking_uri,
                 "--ledger", str(tmp_path)]) == 0
    assert main(["checklist", str(bundle), "--input", str(S22_SOUNDSCAPE.parent), "--out", str(tmp_path / "out"),
                 "--sample-submission", str(MINI / "sample_submission.csv"), "--tracking-uri", tracking_uri]) == 0

    manifest = json.loads((bundle / "manifest.json").read_text())
    assert [m["kind"] for m in manifest["members"]] == ["cnn", "teacher"]
    assert manifest["teacher_mapping"]["matched"] == 157
    assert any(licence.startswith("CC BY-NC-SA 4.0") for licence in manifest["licences"])
    items = {item["name"]: item for item in manifest["checklist"]["items"]}
    assert all(item["status"] == "pass" for item in items.values())
    assert items["member hashes match their registry entries, and no member was rejected"]["details"][0].startswith("tiny: matches run")
    rows = (tmp_path / "out" / "submission.csv").read_text().splitlines()
    assert len(rows) == 13
