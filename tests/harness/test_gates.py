"""Each promotion gate on hand-made inputs, and the recommendation the gates imply."""

from dataclasses import asdict
from types import SimpleNamespace

import pytest

from harness.config import HarnessConfig
from harness.gates import (
    GateResult,
    Proposal,
    blend_gate,
    final_stage_gate,
    parity_gate,
    provenance_gate,
    recommend,
    standalone_gate,
)
from harness.metrics import BootstrapInterval
from harness.registry import TAG

SHA = "a" * 64


def harness_report(macro_auc=0.8, sha256=SHA, ok=True) -> dict:
    config = HarnessConfig().scoring_config()
    return {
        "model": {"sha256": sha256},
        "scoring": {"tta_shifts": list(config.tta_shifts), "postproc": asdict(config.postproc)},
        "coverage": {"ok": ok},
        "metrics": {"macro_auc": macro_auc} if ok else None,
    }


@pytest.mark.parametrize(
    ("report", "passed", "detail"),
    [
        (None, False, "no harness report"),
        (harness_report(sha256="b" * 64), False, "scored another model file"),
        (harness_report(ok=False), False, "coverage gaps"),
        (harness_report(macro_auc=None), False, "no class of the site has a defined AUC"),
        (harness_report(macro_auc=0.7), False, "0.7000 < bar 0.7500"),
        (harness_report(macro_auc=0.75), True, "0.7500 >= bar 0.7500"),
    ],
)
def test_standalone_gate(report, passed, detail):
    gate = standalone_gate(report, SHA, HarnessConfig())
    assert gate.passed is passed
    assert detail in gate.detail


def test_standalone_gate_needs_the_configured_scoring():
    report = harness_report()
    report["scoring"]["tta_shifts"] = [0.0]
    gate = standalone_gate(report, SHA, HarnessConfig())
    assert not gate.passed
    assert "other scoring settings" in gate.detail


@pytest.mark.parametrize(
    ("parity", "passed"),
    [
        (None, False),
        ({"max_abs_probability_difference": 2e-7, "passed": True, "windows": 8}, True),
        ({"max_abs_probability_difference": 5e-4, "passed": True, "windows": 8}, False),
        ({"max_abs_probability_difference": 2e-7, "passed": False, "windows": 8}, False),
    ],
)
def test_parity_gate(parity, passed):
    assert parity_gate(parity, 1e-4).passed is passed


def test_final_stage_gate_passes_for_the_final_stage():
    selection = {"final_stage": "ns2", "chosen": {"stage": "ns2", "epoch": 3}}
    gate = final_stage_gate(selection, "ns2", "ns2")
    assert gate.passed
    assert "ns2 epoch 3" in gate.detail


def test_final_stage_gate_names_every_earlier_stage():
    selection = {"final_stage": "ns2", "chosen": {"stage": "ns1", "epoch": 0}}
    gate = final_stage_gate(selection, "ns1", "ns1")
    assert not gate.passed
    assert "checkpoint comes from stage ns1" in gate.detail
    assert "logged to a ns1 run" in gate.detail
    assert "ONNX metadata names stage ns1" in gate.detail


def run_tags(**changes) -> dict:
    tags = {TAG.goal: "g", TAG.hypothesis: "h", TAG.stop_condition: "s", TAG.git_commit: "0123456789abcdef",
            TAG.data_version: "d41d8cd98f00b204e9800998ecf8427e.dir", TAG.model_version: "3"}
    tags.update(changes)
    return {k: v for k, v in tags.items() if v is not None}


def member_from(run_id: str):
    return SimpleNamespace(metadata=SimpleNamespace(source_run_id=run_id))


def test_provenance_gate_passes_with_everything_recorded():
    gate = provenance_gate("run1", run_tags(), {"seed": "42"}, member_from("run1"))
    assert gate.passed
    assert "model version 3" in gate.detail


def test_provenance_gate_lists_every_gap():
    tags = run_tags(**{TAG.goal: None, TAG.git_commit: "unknown"})
    gate = provenance_gate("run1", tags, {}, member_from("run0"))
    assert not gate.passed
    assert f"missing tag {TAG.goal}" in gate.detail
    assert "git commit unknown" in gate.detail
    assert "no resolved config" in gate.detail
    assert "names run run0" in gate.detail


def test_provenance_gate_notes_uncommitted_changes():
    gate = provenance_gate("run1", run_tags(**{TAG.git_commit: "0123456789ab-dirty"}), {"a": "1"}, member_from("run1"))
    assert gate.passed
    assert "uncommitted changes" in gate.detail


def interval(estimate: float, std: float) -> BootstrapInterval:
    return BootstrapInterval(estimate, estimate - 2 * std, estimate + 2 * std, std, 200)


def test_blend_gate_without_champion_passes():
    assert blend_gate(None, [], 1.0).passed


def test_blend_gate_needs_more_than_the_noise():
    assert blend_gate(interval(0.03, 0.01), ["champ"], 1.0, 0.80, 0.83).passed
    gate = blend_gate(interval(0.01, 0.02), ["champ"], 1.0, 0.80, 0.81)
    assert not gate.passed
    assert "+0.0100 <= noise 0.0200" in gate.detail


def test_blend_gate_zero_gain_fails():
    assert not blend_gate(interval(0.0, 0.0), ["champ"], 1.0, 0.8, 0.8).passed


def test_blend_gate_reports_coverage_gaps():
    gate = blend_gate(None, ["champ"], 1.0, gaps=["a.ogg: not decodable"])
    assert not gate.passed
    assert "a.ogg: not decodable" in gate.detail


def gates(*failing: str) -> list[GateResult]:
    names = ("standalone", "blend", "parity", "final_stage", "provenance")
    return [GateResult(name, name not in failing, "") for name in names]


@pytest.mark.parametrize(
    ("failing", "recommendation"),
    [((), "promote"), (("blend",), "hold"), (("parity",), "reject"), (("blend", "standalone"), "reject")],
)
def test_recommendation(failing, recommendation):
    assert recommend(gates(*failing)) == recommendation


def test_proposal_round_trips_through_a_dict():
    proposal = Proposal("run1", SHA, "hold", gates("blend"), ["champ"], {"site": "22"})
    again = Proposal.from_dict(proposal.to_dict())
    assert again == proposal
    assert again.failed == ["blend"]
    assert not again.passed
