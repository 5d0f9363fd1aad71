"""`pantanal package`: options reach the manifest; registry decisions are recorded and enforced."""

import pytest

from harness.package import teacher_spec
from infer.bundle import open_bundle, read_manifest
from infer.cli import main
from infer.taxonomy import Taxonomy
from tests.conftest import MINI, PROJECT_ROOT
from tests.fake_models import write_fake_member, write_fake_teacher


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    folder = tmp_path_factory.mktemp("package")
    taxonomy = Taxonomy.from_csv(MINI / "taxonomy.csv")
    return [write_fake_member(folder / f"m{s}.onnx", taxonomy, seed=s, run_id=f"run{s}", experiment=f"exp{s}") for s in (0, 1)]


def _package(members, out, *extra):
    return main(["package", "--members", *map(str, members), "--out", str(out), "--taxonomy", str(MINI / "taxonomy.csv"),
                 "--tracking-uri", "none", *extra])


def test_package_records_options(members, tmp_path):
    out = tmp_path / "bundle"
    code = _package(members, out, "--names", "first", "second", "--weights", "1", "2.5", "--blend", "rank",
                    "--tuned-on", "rank", "--smoothing", "0.1", "--tta-shifts", "0", "--ledger", str(tmp_path))
    assert code == 0
    manifest = read_manifest(out)
    assert [m["name"] for m in manifest["members"]] == ["first", "second"]
    assert manifest["scoring"]["blend"] == {"mode": "rank", "weights": {"first": 1.0, "second": 2.5}}
    assert manifest["scoring"]["postproc"]["smoothing"] == 0.1
    assert manifest["scoring"]["tta_shifts"] == [0.0]
    assert [m["decision"] for m in manifest["members"]] == ["unreviewed", "unreviewed"]
    open_bundle(out)


def test_package_with_onnx_teacher(members, tmp_path):
    values = write_fake_teacher(tmp_path / "teacher", ["Scinax fuscovarius", "Ramphastos toco"])
    spec_file = tmp_path / "teacher.yaml"
    spec_file.write_text("\n".join(f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}" for k, v in values.items()
                                   if k not in ("model_path", "labels_path")) + "\nmodel_path: ???\nlabels_path: ???\n")
    out = tmp_path / "bundle"
    code = _package(members[:1], out, "--teacher", str(spec_file), "--teacher-model", values["model_path"],
                    "--teacher-labels", values["labels_path"], "--teacher-sub-windows", "centre", "--ledger", str(tmp_path))
    assert code == 0
    manifest = read_manifest(out)
    assert manifest["members"][1]["kind"] == "teacher"
    assert manifest["scoring"]["teacher_sub_windows"] == "centre"
    assert open_bundle(out).teacher is not None


def test_require_promoted_rejects_unreviewed_members(members, tmp_path):
    ledger = tmp_path / "decisions"
    ledger.mkdir()
    (ledger / "run0.yaml").write_text("decision: promote\nreviewer: someone\n")
    (ledger / "run1.yaml").write_text("decision: hold\n")
    out = tmp_path / "bundle"
    assert _package(members, out, "--ledger", str(ledger), "--require-promoted") == 1
    assert not out.exists()
    assert _package(members[:1], out, "--ledger", str(ledger), "--require-promoted") == 0
    assert read_manifest(out)["members"][0]["decision"] == "promote"


def test_mismatched_option_counts_are_rejected(members, tmp_path):
    assert _package(members, tmp_path / "bundle", "--weights", "1", "--ledger", str(tmp_path)) == 1


def test_teacher_spec_finds_birdnet_and_conf_names(tmp_path):
    with pytest.raises(ValueError, match="neither birdnet_v24"):
        teacher_spec("no_such_teacher")
    assert (PROJECT_ROOT / "conf" / "teacher" / "perch_v2.yaml").is_file()
    with pytest.raises(ValueError, match="lacks"):
        teacher_spec("perch_v2")  # the conf file leaves the model and labels to the user


def test_package_warns_on_rank_blend(members, tmp_path, caplog):
    assert _package(members, tmp_path / "bundle", "--blend", "rank", "--ledger", str(tmp_path)) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("the checklist will fail this bundle" in w and "rank" in w for w in warnings), warnings


def test_package_warns_on_rejected_member(members, tmp_path, caplog):
    ledger = tmp_path / "decisions"
    ledger.mkdir()
    (ledger / "run1.yaml").write_text("decision: reject\n")
    assert _package(members, tmp_path / "bundle", "--ledger", str(ledger)) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(w.startswith(f"member {members[1]} comes from a rejected run") for w in warnings), warnings
