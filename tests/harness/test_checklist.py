"""The pre-submit checklist: a passing run, and each failure with the cause it names."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from harness.checklist import (
    FAIL,
    PASS,
    SKIP,
    check_budget,
    check_columns,
    check_coverage,
    check_registry,
    check_values,
    run_checklist,
)
from harness.member_registry import RegistryEntry
from infer.bundle import MemberEntry, read_manifest
from infer.bundle_writer import MemberSource, write_bundle
from infer.cli import main
from infer.member import file_sha256
from infer.pipeline import ScoringConfig
from infer.taxonomy import Taxonomy
from infer.teacher import spec_from_dict
from tests.conftest import MINI, write_tone
from tests.fake_models import write_fake_member, write_fake_teacher


def _tracked_members(folder, taxonomy) -> tuple[list[MemberSource], str]:
    """Fake members whose MLflow runs record their export sha256, as `train.export` does."""
    from mlflow import MlflowClient

    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.create_experiment("checklist", artifact_location=(folder / "artifacts").as_uri())
    sources = []
    for seed in (0, 1):
        run_id = client.create_run(experiment).info.run_id
        path = write_fake_member(folder / f"m{seed}.onnx", taxonomy, seed=seed, experiment=f"exp{seed}", run_id=run_id)
        client.set_tag(run_id, "pantanal.export_sha256", file_sha256(path))
        sources.append(MemberSource(path))
    return sources, tracking_uri


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checklist")
    taxonomy = Taxonomy.from_csv(MINI / "taxonomy.csv")
    members, tracking_uri = _tracked_members(folder, taxonomy)
    teacher = spec_from_dict(write_fake_teacher(folder / "teacher", [t.scientific_name for t in taxonomy.taxa[:20]]))
    bundle = folder / "bundle"
    write_bundle(bundle, members, MINI / "taxonomy.csv", ScoringConfig(), teacher)
    inputs = folder / "inputs"
    write_tone(inputs / "a.wav", 10.0)
    write_tone(inputs / "nested" / "b.wav", 6.5, frequency=800)
    return {"bundle": bundle, "inputs": inputs, "taxonomy": taxonomy, "tracking_uri": tracking_uri}


def _bundle_copy(setup, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(setup["bundle"], target)
    return target


def test_checklist_passes_and_records_results(setup, tmp_path):
    bundle = _bundle_copy(setup, tmp_path)
    code = main(["checklist", str(bundle), "--input", str(setup["inputs"]), "--out", str(tmp_path / "out"),
                 "--sample-submission", str(MINI / "sample_submission.csv"), "--report", str(tmp_path / "report.json"),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'absent.db'}"])
    assert code == 2  # a named tracking store that does not exist is an error, not a skipped check
    code = main(["checklist", str(bundle), "--input", str(setup["inputs"]), "--out", str(tmp_path / "out"),
                 "--sample-submission", str(MINI / "sample_submission.csv"), "--report", str(tmp_path / "report.json"),
                 "--tracking-uri", setup["tracking_uri"]])
    assert code == 0
    manifest = read_manifest(bundle)
    assert manifest["checklist"]["passed"] is True
    assert manifest["throughput"]["files"] == 2
    assert manifest["throughput"]["files_per_minute"] > 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert [i["status"] for i in report["items"]] == [PASS] * 7
    assert report["items"][-1]["details"][0].startswith("exp0: matches run")
    rows = (tmp_path / "out" / "submission.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 + 2  # header, a.wav 2 windows, b.wav 2 windows (the last one partial)


def test_rank_blend_fails_naming_the_cause(setup, tmp_path, capsys):
    bundle = _bundle_copy(setup, tmp_path)
    manifest = read_manifest(bundle)
    manifest["scoring"]["blend"]["mode"] = "rank"
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    code = main(["checklist", str(bundle), "--input", str(setup["inputs"]), "--no-write",
                 "--tracking-uri", setup["tracking_uri"]])
    output = capsys.readouterr().out
    assert code == 1
    assert "FAIL  blend mode fits the post-processing" in output
    assert "blend mode 'rank' feeds post-processing tuned on 'probability' scores" in output


def test_altered_bundle_fails_the_first_check(setup, tmp_path):
    bundle = _bundle_copy(setup, tmp_path)
    (bundle / "members" / "exp1.onnx").unlink()
    result = run_checklist(bundle, [setup["inputs"]], tmp_path / "out")
    assert not result.passed
    assert len(result.items) == 1
    assert "members/exp1.onnx is missing" in result.items[0].details[0]


def test_file_cap_is_a_coverage_failure(setup, tmp_path):
    result = run_checklist(setup["bundle"], [setup["inputs"]], tmp_path / "out", max_files=1)
    coverage = next(i for i in result.items if i.name.startswith("every input file"))
    assert coverage.status == FAIL
    assert "only 1 of 2 files were scored" in coverage.details[0]
    assert "b.wav: 2 of 2 windows (header) have no row" in coverage.details[1]


def test_coverage_gap_names_the_missing_row(setup, tmp_path):
    path = setup["inputs"] / "a.wav"
    item = check_coverage([path], [path], [], [], ["a_5"], 5.0)
    assert item.status == FAIL
    assert item.details == ["a.wav: 1 of 2 windows (header) have no row, e.g. a_10"]
    assert check_coverage([path], [path], [], [], ["a_5", "a_10"], 5.0).status == PASS
    duplicated = check_coverage([path], [path], [], [], ["a_5", "a_10", "a_10"], 5.0)
    assert "1 row ids appear more than once" in duplicated.details[0]


def test_nan_and_out_of_range_values_fail():
    values = np.array([[0.1, np.nan], [1.5, 0.2], [0.3, 0.4]])
    item = check_values(["r1", "r2", "r3"], values)
    assert item.status == FAIL
    assert item.details[0].startswith("1 NaN or infinite values in 1 rows, e.g. r1")
    assert item.details[1].startswith("1 values outside [0, 1] in 1 rows, e.g. r2")
    assert check_values(["r1"], np.array([[0.0, 1.0]])).status == PASS


def test_wrong_column_order_fails(setup):
    labels = setup["taxonomy"].labels
    swapped = [labels[1], labels[0]] + labels[2:]
    item = check_columns(swapped, labels, ["row_id"] + labels)
    assert item.status == FAIL
    assert f"first at column 1: {labels[1]!r} where {labels[0]!r} is expected" in item.details[0]
    assert len(item.details) == 2  # against the taxonomy and against sample_submission.csv
    other_sample = ["row_id"] + labels[:-1]
    short = check_columns(labels, labels, other_sample)
    assert short.details == [f"written header has {len(labels) + 1} columns, sample_submission.csv has {len(labels)}"]
    assert check_columns(labels, labels, ["row_id"] + labels).status == PASS


def test_budget_projection_fails_when_too_slow():
    item, throughput = check_budget(files_scored=2, elapsed_s=120.0, startup_s=5.0, expected_files=100, budget_minutes=90)
    assert item.status == FAIL
    assert throughput["projected_minutes"] == pytest.approx((5 + 60 * 100) / 60, rel=1e-3)
    assert check_budget(2, 4.0, 5.0, 100, 90)[0].status == PASS
    assert check_budget(0, 0.0, 5.0, 100, 90)[0].status == FAIL


class _Registry:
    tracking_uri = "sqlite:///fake.db"

    def __init__(self, records):
        self.records = records

    def entry(self, run_id):
        return self.records.get(run_id, RegistryEntry(run_id, False, None, None, None))


def test_registry_hash_mismatch_fails():
    entries = [
        MemberEntry("a", "cnn", "members/a.onnx", "a" * 64, source_run_id="r1"),
        MemberEntry("b", "cnn", "members/b.onnx", "b" * 64, source_run_id="r2"),
        MemberEntry("c", "cnn", "members/c.onnx", "c" * 64, source_run_id="r3"),
        MemberEntry("t", "teacher", "members/t.tflite", "d" * 64),
    ]
    registry = _Registry({
        "r1": RegistryEntry("r1", True, "promote", "ledger", "a" * 64),
        "r2": RegistryEntry("r2", True, None, None, "f" * 64),
    })
    item = check_registry(entries, registry)
    assert item.status == FAIL
    assert item.details[0].startswith("b: sha256 bbbbbbbbbbbb differs from the export recorded on run r2")
    assert item.details[1].startswith("c: run r3 not found")
    assert check_registry(entries[:1] + entries[3:], registry).status == PASS
    assert check_registry(entries, None).status == SKIP
    assert check_registry(entries, SimpleNamespace(tracking_uri=None)).status == SKIP


def test_checklist_fails_rejected_member():
    entries = [MemberEntry("a", "cnn", "members/a.onnx", "a" * 64, source_run_id="r1"),
               MemberEntry("b", "cnn", "members/b.onnx", "b" * 64, source_run_id="r2")]
    registry = _Registry({
        "r1": RegistryEntry("r1", True, None, None, "a" * 64),
        "r2": RegistryEntry("r2", True, "reject", "ledger", "b" * 64),
    })
    item = check_registry(entries, registry)
    assert item.status == FAIL
    assert item.details == ["b: run r2 was rejected in the registry; remove the member or record another decision"]
    passed = check_registry(entries[:1], registry)
    assert passed.status == PASS
    assert passed.details == ["a: matches run r1 (decision unreviewed)"]
