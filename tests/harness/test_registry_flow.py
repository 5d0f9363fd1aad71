"""Two trained runs reviewed end to end: harness, gates, decisions, ledger, MLflow, champion, check."""

import json

import pytest
import yaml

from harness.ledger import Ledger, entry_sha256
from harness.registry import CHAMPION_ALIAS, REGISTERED_MODEL, TAG
from harness.runs import RunStore
from tests.harness.conftest import copy_registry, proposal_json, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tracking_uri):
    return RunStore(tracking_uri)


def test_harness_ran_on_both_runs(registry_scenario):
    for key in ("harness_first", "harness_second"):
        result = registry_scenario[key]
        assert result.code == 0, result.err
        assert "12/12 labelled windows" in result.out
        assert "logged to MLflow run" in result.out


def test_training_and_harness_metrics_side_by_side(registry_scenario, store):
    run = store.run(registry_scenario["first"])
    report = json.loads((registry_scenario["work"] / "first.json").read_text())
    assert "val/site_auc" in run.data.metrics
    assert run.data.metrics["harness/S22/macro_auc"] == report["metrics"]["macro_auc"]
    assert run.data.metrics["harness/S22/training_site_auc"] == report["training"]["site_auc"]
    assert report["training"]["tta"] is False
    logged = store.json_artifact(registry_scenario["first"], "harness/S22/report.json")
    assert logged["model"]["sha256"] == run.data.tags[TAG.export_sha256]


def test_promotion_with_failing_gates_is_blocked(registry_scenario):
    result = registry_scenario["blocked"]
    assert result.code == 2
    assert "--override" in result.err
    assert "standalone" in result.err
    assert not registry_scenario["ledger_after_blocked"]


def test_hold_is_allowed_with_failing_gates(registry_scenario):
    assert registry_scenario["hold"].code == 0, registry_scenario["hold"].err


def test_override_is_recorded(registry_scenario):
    result = registry_scenario["override"]
    assert result.code == 0, result.err
    assert "override" in result.out
    entry = registry_scenario["override_entry"]
    assert entry["decision"] == "promote"
    assert entry["override"] is True
    assert entry["proposal"]["passed"] is False
    assert entry["settings_changed"] == {"gates.standalone_bar": {"project": 0.0, "used": 0.99}}
    assert [h["decision"] for h in entry["history"]] == ["hold"]


def test_promotion_with_laxer_settings_needs_override(registry_scenario):
    result = registry_scenario["lax_settings"]
    assert result.code == 2
    assert "gates.noise_multiplier is 0.5 where the project sets 1.0" in result.err
    assert "--override" in result.err


def test_final_ledger_entries(registry_scenario):
    ledger = Ledger(registry_scenario["registry"])
    first = ledger.read(registry_scenario["first"])
    second = ledger.read(registry_scenario["second"])
    assert first["decision"] == "promote"
    assert first["override"] is False
    assert first["settings_changed"] == {}
    assert first["reviewer"] == "Ana"
    assert [h["decision"] for h in first["history"]] == ["hold", "promote"]
    assert second["decision"] == "reject"
    assert second["reason"] == "different seed, nothing new for the ensemble"
    for entry in (first, second):
        assert entry["sha256"] == entry_sha256(entry)
        assert {g["name"] for g in entry["proposal"]["gates"]} == {"standalone", "blend", "parity", "final_stage", "provenance"}


def test_mlflow_tags_match_the_ledger(registry_scenario, store):
    ledger = Ledger(registry_scenario["registry"])
    for run_id in (registry_scenario["first"], registry_scenario["second"]):
        entry = ledger.read(run_id)
        tags = store.run(run_id).data.tags
        assert tags[TAG.decision] == entry["decision"]
        assert tags[TAG.decision_reason] == entry["reason"]
        assert tags[TAG.decision_reviewer] == entry["reviewer"]
        assert tags[TAG.decision_date] == entry["date"]
        assert tags[TAG.decision_sha256] == entry["sha256"]


def test_champion_file_and_alias(registry_scenario, store):
    first = registry_scenario["first"]
    champion = yaml.safe_load((registry_scenario["registry"] / "champion.yaml").read_text())
    version = store.run(first).data.tags[TAG.model_version]
    assert [m["run_id"] for m in champion["members"]] == [first]
    assert champion["members"][0]["model_version"] == version
    assert champion["alias_version"] == version
    alias = store.client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION_ALIAS)
    assert str(alias.version) == version
    assert alias.run_id == first


def test_second_run_compared_with_the_champion(registry_scenario):
    result = registry_scenario["propose_second"]
    assert result.code == 0, result.err
    proposal = proposal_json(result)
    assert proposal["champion"] == [registry_scenario["first"]]
    blend = next(g for g in proposal["gates"] if g["name"] == "blend")
    assert blend["detail"].startswith("champion ")
    assert blend["value"] is not None


def test_registry_check_is_clean(registry_scenario):
    result = registry_scenario["check"]
    assert result.code == 0, result.err
    assert "agree (2 decision(s), 1 champion member(s))" in result.out


def test_registry_show_lists_both_runs(registry_scenario):
    summaries = {s["run_id"]: s for s in json.loads(registry_scenario["show"].out)}
    first, second = summaries[registry_scenario["first"]], summaries[registry_scenario["second"]]
    assert first["decision"] == first["mlflow_decision"] == "promote"
    assert second["decision"] == second["mlflow_decision"] == "reject"
    assert first["goal"] == "test the pipeline"
    assert first["harness"]["macro_auc"] is not None


def test_registry_show_table(registry_scenario, tracking_uri):
    result = run_cli("registry", "show", "--registry", registry_scenario["registry"], "--tracking-uri", tracking_uri)
    assert result.code == 0, result.err
    assert registry_scenario["first"] in result.out
    assert "goal: test the pipeline" in result.out


def test_tampered_decision_fails_check_naming_the_run(registry_scenario, tracking_uri, tmp_path):
    registry = copy_registry(registry_scenario, tmp_path)
    second = registry_scenario["second"]
    path = registry / "decisions" / f"{second}.yaml"
    path.write_text(path.read_text().replace("reason: different seed", "reason: great seed"))
    result = run_cli("registry", "check", "--registry", registry, "--tracking-uri", tracking_uri)
    assert result.code == 1
    assert f"run {second}: ledger entry was edited" in result.err
    assert registry_scenario["first"] not in result.err


def test_tampered_champion_file_fails_check(registry_scenario, tracking_uri, tmp_path):
    registry = copy_registry(registry_scenario, tmp_path)
    champion = yaml.safe_load((registry / "champion.yaml").read_text())
    champion["members"] = []
    (registry / "champion.yaml").write_text(yaml.safe_dump(champion))
    result = run_cli("registry", "check", "--registry", registry, "--tracking-uri", tracking_uri)
    assert result.code == 1
    assert f"run {registry_scenario['first']}: champion member missing from champion.yaml" in result.err


def test_deleted_decision_fails_check(registry_scenario, tracking_uri, tmp_path):
    registry = copy_registry(registry_scenario, tmp_path)
    (registry / "decisions" / f"{registry_scenario['second']}.yaml").unlink()
    result = run_cli("registry", "check", "--registry", registry, "--tracking-uri", tracking_uri)
    assert result.code == 1
    assert f"run {registry_scenario['second']}: MLflow records decision 'reject'" in result.err


def test_changed_mlflow_tag_fails_check(registry_scenario, tracking_uri, store):
    second = registry_scenario["second"]
    try:
        store.set_tags(second, {TAG.decision: "promote"})
        result = run_cli("registry", "check", "--registry", registry_scenario["registry"], "--tracking-uri", tracking_uri)
    finally:
        store.set_tags(second, {TAG.decision: "reject"})
    assert result.code == 1
    assert f"run {second}: ledger and MLflow disagree on {TAG.decision}" in result.err


def test_decide_rejects_a_run_without_export(registry_scenario, tracking_uri, tiny_pipeline):
    lineage = json.loads(RunStore(tracking_uri).run(registry_scenario["first"]).data.tags[TAG.lineage])
    supervised = lineage[0]["run_id"]
    result = run_cli("registry", "decide", supervised, "reject", "--reason", "x", "--reviewer", "Ana",
                     "--registry", registry_scenario["work"] / "other-registry", "--tracking-uri", tracking_uri)
    assert result.code == 2
    assert "has no exported model" in result.err
