"""`dvc repro` runs the real pipeline, does nothing when nothing changed, and reruns only downstream stages."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.dvc_hash import directory_md5
from tests.conftest import EXTRA, MINI, PROJECT_ROOT

pytestmark = pytest.mark.slow
EXPERIMENT = "tinydvc"


def _copy_project(target: Path) -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        source = PROJECT_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _write_experiment(repo: Path, noisy_student_epochs: int) -> None:
    experiment = {
        "defaults": [{"override /model": "b0_sed_tiny"}, {"override /teacher": "none"}],
        "experiment_name": EXPERIMENT,
        "seed": 1,
        "run": {"goal": "test dvc", "hypothesis": "only downstream stages rerun", "stop_condition": "one epoch"},
        "data": {"extra_unlabelled": [str(EXTRA / "1min.wav")], "max_windows_per_clip": 1, "batch_size": 4},
        "supervised": {"max_epochs": 1},
        "ns": {"rounds": 2, "max_epochs": noisy_student_epochs},
        "export": {"bn_recalibration_windows": 4},
    }
    text = "# @package _global_\n" + yaml.safe_dump(experiment, sort_keys=False)
    (repo / "conf" / "experiment" / f"{EXPERIMENT}.yaml").write_text(text)


def _repro(repo: Path, env: dict) -> list[str]:
    result = subprocess.run(["dvc", "repro", f"export@{EXPERIMENT}"], cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return re.findall(r"Running stage '([^@']+)@", result.stdout)


def test_dvc_reruns_only_what_changed(tmp_path):
    repo = tmp_path / "repo"
    _copy_project(repo)
    pipeline = {"experiments": [EXPERIMENT], "data_root": str(MINI), "extra_audio": str(EXTRA / "1min.wav")}
    (repo / "conf" / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    _write_experiment(repo, noisy_student_epochs=1)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PANTANAL_ROOT": str(repo),
        "PANTANAL_CONFIG_DIR": str(repo / "conf"),
        "PANTANAL_DATA_ROOT": str(MINI),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
    }
    subprocess.run(["dvc", "init", "--no-scm", "--force", "-q"], cwd=repo, env=env, check=True)

    first = _repro(repo, env)
    assert first == ["prepare", "teacher_embed", "supervised", "ns1", "ns2", "export"]
    assert (repo / "outputs" / EXPERIMENT / "export" / "model.onnx").is_file()
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    data_dep = next(d for d in lock["stages"][f"prepare@{EXPERIMENT}"]["deps"] if d["path"] == str(MINI))
    assert data_dep["md5"] == directory_md5(MINI)  # the data version runs record is DVC's own hash

    assert _repro(repo, env) == []

    _write_experiment(repo, noisy_student_epochs=2)
    assert _repro(repo, env) == ["ns1", "ns2", "export"]
