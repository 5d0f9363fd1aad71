"""The walking pipeline on real audio with a tiny model: train, export, infer."""

import csv
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from infer.member import META_PREFIX, ModelMetadataError, OnnxMember
from tests.conftest import MINI, S22_SOUNDSCAPE

pytestmark = pytest.mark.slow


def test_export_comes_from_the_final_stage(tiny_pipeline):
    selection = tiny_pipeline["record"]["selection"]
    assert selection["final_stage"] == "ns2"
    assert selection["chosen"]["stage"] == "ns2"
    assert {c["stage"] for c in selection["candidates"]} == {"supervised", "ns1", "ns2"}


def test_export_metadata_contract(tiny_pipeline):
    model = onnx.load(str(tiny_pipeline["model"]))
    props = {p.key[len(META_PREFIX):]: p.value for p in model.metadata_props if p.key.startswith(META_PREFIX)}
    classes = json.loads(props["classes"])
    with open(MINI / "taxonomy.csv", newline="") as handle:
        assert classes == [row["primary_label"] for row in csv.DictReader(handle)]
    assert json.loads(props["frontend"])["n_mels"] == 128
    assert props["stage"] == "ns2"
    assert props["bn_recalibrated"] == "true"
    assert len(props["checkpoint_sha256"]) == 64
    member = OnnxMember(tiny_pipeline["model"])
    assert member.session.get_inputs()[0].name == "logmel"
    assert [o.name for o in member.session.get_outputs()] == ["logits", "frame_logits"]


def test_export_parity_recorded(tiny_pipeline):
    parity = tiny_pipeline["record"]["parity"]
    assert parity["passed"]
    assert parity["max_abs_probability_difference"] <= 1e-4


def test_parity_check_fails_above_tolerance(tiny_pipeline, tmp_path):
    from train.export import ExportParityError, check_parity
    from train.checkpoint import load_checkpoint
    from train.models.sed import ExportWrapper

    checkpoint = tiny_pipeline["record"]["selection"]["chosen"]["checkpoint"]
    module = load_checkpoint(checkpoint)
    wrapper = ExportWrapper(module.model).eval()
    with torch.no_grad():
        module.model.head.classifier.bias += 3.0  # torch now disagrees with the exported file
    with pytest.raises(ExportParityError, match="tolerance"):
        check_parity(tiny_pipeline["model"], wrapper, torch.randn(2, 1, 128, 316), 1e-4)


def test_saturated_model_is_not_exported(tiny_pipeline):
    from train.checkpoint import load_checkpoint
    from train.export import SaturatedModelError, check_not_saturated
    from train.models.sed import ExportWrapper

    module = load_checkpoint(tiny_pipeline["record"]["selection"]["chosen"]["checkpoint"])
    wrapper = ExportWrapper(module.model).eval()
    logmel = torch.randn(2, 1, 128, 316)
    assert check_not_saturated(wrapper, logmel, 100.0) < 100.0
    with torch.no_grad():
        module.model.head.classifier.bias -= 5000.0
    with pytest.raises(SaturatedModelError, match="export.max_abs_logit"):
        check_not_saturated(wrapper, logmel, 100.0)


def test_member_metadata_errors_are_listed_together(tiny_pipeline, tmp_path):
    model = onnx.load(str(tiny_pipeline["model"]))
    kept = [p for p in model.metadata_props if not p.key.endswith(("frontend", "stage", "classes"))]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    with pytest.raises(ModelMetadataError) as error:
        OnnxMember(broken)
    message = str(error.value)
    for key in ("frontend", "stage", "classes"):
        assert f"pantanal.{key}" in message


def test_infer_command_on_the_s22_soundscape(tiny_pipeline, tmp_path):
    out = tmp_path / "infer"
    result = subprocess.run(
        [sys.executable, "-m", "infer.cli", "infer", str(S22_SOUNDSCAPE), "--model", str(tiny_pipeline["model"]),
         "--out", str(out)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    with open(out / "submission.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    with open(MINI / "sample_submission.csv", newline="") as handle:
        expected_header = next(csv.reader(handle))
    assert rows[0] == expected_header
    assert len(rows) == 13 and all(len(r) == 235 for r in rows)
    stem = S22_SOUNDSCAPE.stem
    assert [r[0] for r in rows[1:]] == [f"{stem}_{s}" for s in range(5, 65, 5)]
    values = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1
    with open(out / "detections.csv", newline="") as handle:
        detections = list(csv.DictReader(handle))
    assert len(detections) == 12 * 3
    assert detections[0]["scientific_name"]


def test_training_is_deterministic_on_cpu(tiny_pipeline, tmp_path):
    from train.config import load_config
    from train.stage import train_stage
    from tests.conftest import training_overrides

    overrides = training_overrides(tmp_path, "experiment_name=tiny")
    # reuse the shared run's manifests: copy them so only the supervised stage is retrained
    import shutil

    shutil.copytree(tiny_pipeline["experiment_dir"] / "manifests", tmp_path / "outputs" / "tiny" / "manifests")
    record = train_stage(load_config(overrides + ["stage=supervised"]))
    first = torch.load(record["epochs"][-1]["checkpoint"], map_location="cpu", weights_only=False)["state_dict"]
    shared = tiny_pipeline["experiment_dir"] / "supervised" / "checkpoints" / "epoch=000.ckpt"
    second = torch.load(shared, map_location="cpu", weights_only=False)["state_dict"]
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)


def test_run_without_goal_is_refused(tmp_path):
    from train.config import RunIntentError, load_config
    from train.stage import train_stage
    from tests.conftest import training_overrides

    overrides = [o for o in training_overrides(tmp_path) if not o.startswith(("run.goal", "run.stop_condition"))]
    with pytest.raises(RunIntentError) as error:
        train_stage(load_config(overrides))
    missing = str(error.value).split(":")[0]
    assert missing == "refusing to start a run without run.goal, run.stop_condition"
