"""Ledger entries: hashing, YAML round trip, the champion they imply, input checks."""

import os
import subprocess

import pytest
import yaml

from harness.ledger import (
    Ledger,
    LedgerError,
    champion_from_entries,
    decide,
    decision_tags,
    default_reviewer,
    dump_entry,
    entry_sha256,
)
from harness.registry import TAG
from tests.conftest import PROJECT_ROOT


def make_entry(run_id: str, decision: str, date: str, version: str = "1") -> dict:
    entry = {
        "schema_version": "1", "run_id": run_id, "experiment": "demo", "goal": "beat the champion",
        "decision": decision, "reason": "because: it scores 0.81 on S22", "reviewer": "Ana",
        "date": date, "override": False,
        "model": {"registered_model": "pantanal-sed", "version": version, "export_sha256": "f" * 64,
                  "stage": "ns2", "harness_macro_auc": 0.8125},
        "proposal": {"recommendation": "promote", "passed": True,
                     "gates": [{"name": "parity", "passed": True, "detail": "ok", "value": 1.1920928955078125e-07,
                                "threshold": 1e-4}]},
        "history": [],
    }
    entry["sha256"] = entry_sha256(entry)
    return entry


def test_hash_survives_the_yaml_round_trip(tmp_path):
    entry = make_entry("run1", "promote", "2026-01-02T03:04:05+00:00")
    ledger = Ledger(tmp_path)
    ledger.write(entry)
    again = ledger.read("run1")
    assert again == entry
    assert entry_sha256(again) == entry["sha256"]


def test_hash_changes_with_any_field():
    entry = make_entry("run1", "promote", "2026-01-02T03:04:05+00:00")
    edited = dict(entry, reason="because I said so")
    assert entry_sha256(edited) != entry["sha256"]


def test_dates_stay_strings_in_yaml():
    entry = make_entry("run1", "promote", "2026-01-02T03:04:05+00:00")
    assert isinstance(yaml.safe_load(dump_entry(entry))["date"], str)


def test_hand_edited_datetime_still_hashes():
    entry = make_entry("run1", "promote", "2026-01-02T03:04:05+00:00")
    loaded = yaml.safe_load(dump_entry(entry).replace("'2026-01-02T03:04:05+00:00'", "2026-01-02 03:04:05"))
    assert entry_sha256(loaded) != entry["sha256"]


def test_decision_tags_mirror_the_entry():
    entry = make_entry("run1", "reject", "2026-01-02T03:04:05+00:00")
    tags = decision_tags(entry)
    assert tags[TAG.decision] == "reject"
    assert tags[TAG.decision_sha256] == entry["sha256"]
    assert tags[TAG.decision_gates] == "passed"
    assert tags[TAG.decision_override] == "false"


def test_champion_is_every_promoted_run_in_promotion_order():
    entries = {
        "b": make_entry("b", "promote", "2026-02-01T00:00:00+00:00", version="2"),
        "a": make_entry("a", "promote", "2026-01-01T00:00:00+00:00", version="1"),
        "c": make_entry("c", "reject", "2026-03-01T00:00:00+00:00", version="3"),
        "d": make_entry("d", "hold", "2026-03-02T00:00:00+00:00", version="4"),
    }
    champion = champion_from_entries(entries)
    assert [m["run_id"] for m in champion["members"]] == ["a", "b"]
    assert champion["alias_version"] == "2"


def test_no_promotion_means_no_champion():
    champion = champion_from_entries({"c": make_entry("c", "reject", "2026-03-01T00:00:00+00:00")})
    assert champion["members"] == []
    assert champion["alias_version"] is None


def test_unreadable_entry_is_reported(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.decisions_dir.mkdir(parents=True)
    (ledger.decisions_dir / "run9.yaml").write_text("- just\n- a list\n")
    entries, unreadable = ledger.read_all()
    assert entries == {}
    assert "does not contain a YAML mapping" in unreadable["run9"]


def test_default_reviewer_is_git_user_or_login(monkeypatch):
    monkeypatch.setenv("USER", "field-reviewer")
    git_name = subprocess.run(["git", "config", "user.name"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
    assert default_reviewer() == (git_name or "field-reviewer")


@pytest.mark.parametrize(
    ("decision", "reason", "message"),
    [("ship", "ok", "is not one of"), ("promote", "  ", "needs a reason"), ("hold", "x" * 5000, "keep it under")],
)
def test_decide_checks_its_inputs_first(tmp_path, decision, reason, message):
    # The checks run before the store is touched, so no MLflow store is needed.
    with pytest.raises(LedgerError, match=message):
        decide(None, Ledger(tmp_path), "run1", decision, reason, config=None, reviewer="Ana")
    assert not os.path.exists(tmp_path / "decisions")
