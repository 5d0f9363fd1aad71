"""Promotion gates: what `pantanal registry propose` checks before a reviewer decides.

Five gates, each a `GateResult`:

- standalone: the harness macro ROC-AUC of the candidate alone reaches `gates.standalone_bar`,
  from a complete harness report of this very export, scored with the configured settings;
- blend: adding the candidate to the champion ensemble raises the harness macro ROC-AUC of the
  probability-space blend by more than `gates.noise_multiplier` paired-bootstrap standard
  deviations. The blend runs with TTA and post-processing through the field pipeline. The gate
  passes when there is no champion;
- parity: the export's ONNX Runtime vs torch check passed within `gates.parity_tolerance`;
- final_stage: the exported checkpoint comes from the final stage of its run's recipe;
- provenance: the run states goal, hypothesis and stop condition, and records git commit, data
  version, resolved config and a registered model version; the ONNX names this run as its source.

A failing blend gate alone makes the proposal a hold; any other failing gate makes it a reject.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness.config import HarnessConfig, portable_data_root
from harness.metrics import BootstrapInterval, bootstrap_macro_auc_difference, macro_roc_auc
from harness.registry import (
    EXPORT_PARITY_ARTIFACT,
    EXPORT_SELECTION_ARTIFACT,
    PROPOSAL_ARTIFACT,
    TAG,
    harness_prefix,
)
from harness.site_eval import labelled_site_windows, score_site, scoring_settings
from infer.loading import taxonomy_for
from infer.member import OnnxMember, file_sha256
from infer.pipeline import Scorer

log = logging.getLogger(__name__)

GATE_NAMES = ("standalone", "blend", "parity", "final_stage", "provenance")
INTENT_TAGS = (TAG.goal, TAG.hypothesis, TAG.stop_condition)


@dataclass
class GateResult:
    """Outcome of one gate; `value` and `threshold` are set where the gate compares numbers."""

    name: str
    passed: bool
    detail: str
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Proposal:
    """The gates of one candidate and the recommendation they imply.

    Attributes:
        run_id: The candidate's MLflow run (the final stage's run, which holds the export).
        model_sha256: sha256 of the exported ONNX the gates judged.
        recommendation: One of "promote", "hold", "reject".
        gates: One result per gate, in `GATE_NAMES` order.
        champion: Run ids of the champion members the blend was compared with.
        settings: Site, scoring and gate settings the proposal was computed with.
        computed_at: UTC time, ISO 8601.
    """

    run_id: str
    model_sha256: str
    recommendation: str
    gates: list[GateResult]
    champion: list[str]
    settings: dict
    computed_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    @property
    def failed(self) -> list[str]:
        return [gate.name for gate in self.gates if not gate.passed]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Proposal:
        gates = [GateResult(**gate) for gate in data["gates"]]
        fields = {k: data[k] for k in ("run_id", "model_sha256", "recommendation", "champion", "settings", "computed_at")}
        return cls(gates=gates, **fields)


def recommend(gates: list[GateResult]) -> str:
    failed = {gate.name for gate in gates if not gate.passed}
    if failed - {"blend"}:
        return "reject"
    return "hold" if failed else "promote"


def proposal_settings(config: HarnessConfig) -> dict:
    """Return the settings a proposal depends on; a proposal computed with other settings is stale."""
    settings = config.to_dict()
    settings["data_root"] = portable_data_root(settings["data_root"])
    return {key: settings[key] for key in ("site", "data_root", "scoring", "bootstrap", "gates")}


def standalone_gate(report: dict | None, model_sha256: str, config: HarnessConfig) -> GateResult:
    """Judge the candidate's own harness score against the bar, from a report of this export and settings."""
    bar = config.gates.standalone_bar
    rerun = f"run `pantanal harness --run <run id> --site S{config.site}`"
    if report is None:
        return GateResult("standalone", False, f"no harness report for site S{config.site}; {rerun}", threshold=bar)
    if report["model"]["sha256"] != model_sha256:
        return GateResult("standalone", False, f"the harness report scored another model file; {rerun}", threshold=bar)
    scoring = report["scoring"]
    expected = config.scoring_config()
    if scoring["tta_shifts"] != list(expected.tta_shifts) or scoring["postproc"] != asdict(expected.postproc):
        return GateResult("standalone", False, f"the harness report used other scoring settings; {rerun}", threshold=bar)
    if not report["coverage"]["ok"] or report["metrics"] is None:
        return GateResult("standalone", False, "the harness report has coverage gaps", threshold=bar)
    value = report["metrics"]["macro_auc"]
    if value is None:
        return GateResult("standalone", False, "no class of the site has a defined AUC", threshold=bar)
    passed = value >= bar
    detail = f"harness macro ROC-AUC {value:.4f} {'>=' if passed else '<'} bar {bar:.4f}"
    return GateResult("standalone", passed, detail, value=value, threshold=bar)


def parity_gate(parity: dict | None, tolerance: float) -> GateResult:
    """Judge the export's ONNX Runtime vs torch check again, against the configured tolerance."""
    if parity is None:
        return GateResult("parity", False, f"the run has no {EXPORT_PARITY_ARTIFACT}", threshold=tolerance)
    difference = float(parity["max_abs_probability_difference"])
    passed = bool(parity.get("passed")) and difference <= tolerance
    detail = f"max |ONNX - torch| probability difference {difference:.2e} on {parity.get('windows', '?')} windows"
    detail += f" {'<=' if passed else '>'} {tolerance:.0e}" if bool(parity.get("passed")) else " (the export check failed)"
    return GateResult("parity", passed, detail, value=difference, threshold=tolerance)


def final_stage_gate(selection: dict | None, run_stage: str | None, model_stage: str) -> GateResult:
    """Check that the exported checkpoint, the run and the ONNX metadata all name the recipe's final stage."""
    if selection is None:
        return GateResult("final_stage", False, f"the run has no {EXPORT_SELECTION_ARTIFACT}")
    final = selection["final_stage"]
    chosen = selection["chosen"]
    problems = []
    if chosen["stage"] != final:
        problems.append(f"the checkpoint comes from stage {chosen['stage']}")
    if run_stage != final:
        problems.append(f"the export was logged to a {run_stage} run")
    if model_stage != final:
        problems.append(f"the ONNX metadata names stage {model_stage}")
    if problems:
        return GateResult("final_stage", False, f"final stage is {final}, but " + "; ".join(problems))
    return GateResult("final_stage", True, f"{final} epoch {chosen['epoch']}, the final stage")


def provenance_gate(run_id: str, tags: dict[str, str], params: dict[str, str], member: OnnxMember) -> GateResult:
    """Check that the run records why it exists and where its code and data came from, and that the ONNX names it."""
    missing = [key for key in INTENT_TAGS + (TAG.git_commit, TAG.data_version, TAG.model_version) if not tags.get(key, "").strip()]
    problems = [f"missing tag {key}" for key in missing]
    if tags.get(TAG.git_commit) == "unknown":
        problems.append("git commit unknown (trained outside a git checkout)")
    if not params:
        problems.append("no resolved config in the run's params")
    if member.metadata.source_run_id != run_id:
        problems.append(f"the ONNX names run {member.metadata.source_run_id} as its source")
    if problems:
        return GateResult("provenance", False, "; ".join(problems))
    commit = tags[TAG.git_commit]
    note = " (built from uncommitted changes)" if commit.endswith("-dirty") else ""
    return GateResult("provenance", True, f"commit {commit[:12]}{note}, data {tags[TAG.data_version][:12]}, "
                                          f"model version {tags[TAG.model_version]}")


def blend_gate(difference: BootstrapInterval | None, champion: list[str], multiplier: float,
               champion_auc: float | None = None, blend_auc: float | None = None, gaps: list[str] | None = None) -> GateResult:
    """Judge the improvement of the champion blend by the candidate against the paired bootstrap noise."""
    if not champion:
        return GateResult("blend", True, "no champion yet: the candidate alone would be the ensemble")
    if gaps:
        return GateResult("blend", False, "blend harness has coverage gaps: " + "; ".join(gaps))
    if difference is None or math.isnan(difference.estimate):
        return GateResult("blend", False, "no class of the site has a defined AUC for the blend")
    noise = multiplier * (0.0 if math.isnan(difference.std) else difference.std)
    passed = difference.estimate > noise
    detail = (f"champion {champion_auc:.4f} -> with candidate {blend_auc:.4f}: {difference.estimate:+.4f} "
              f"{'>' if passed else '<='} noise {noise:.4f} ({multiplier:g} x paired bootstrap std over "
              f"{difference.resamples} resamples)")
    return GateResult("blend", passed, detail, value=difference.estimate, threshold=noise)


def evaluate_blend(candidate: OnnxMember, champion: list[OnnxMember], config: HarnessConfig
                   ) -> tuple[BootstrapInterval | None, float | None, float | None, list[str]]:
    """Score the champion ensemble with and without the candidate on the site, through `Scorer`.

    Returns:
        The paired bootstrap of (blend - champion) macro AUC, the champion's and the blend's macro
        AUC, and coverage gaps (when there are any, the first three are None).
    """
    taxonomy = taxonomy_for(candidate, None)
    # NOTE: every member gets weight 1 (the BlendConfig default); blend weights tuned for a
    # packaged champion bundle are not applied here.
    scoring = config.scoring_config()
    champion_scorer = Scorer(champion, taxonomy, scoring)
    blend_scorer = Scorer(champion + [candidate], taxonomy, scoring)
    windows = labelled_site_windows(config.data_root, config.site, config.site_pattern, taxonomy,
                                    blend_scorer.window_seconds)
    before, after = score_site(champion_scorer, windows), score_site(blend_scorer, windows)
    gaps = before.coverage.gaps + after.coverage.gaps
    if gaps:
        return None, None, None, gaps
    log.info("blend scored with %s", scoring_settings(blend_scorer))
    difference = bootstrap_macro_auc_difference(
        windows.labels, before.scores, after.scores, windows.files, config.bootstrap.resamples,
        config.bootstrap.confidence, config.bootstrap.seed,
    )
    return difference, macro_roc_auc(windows.labels, before.scores), macro_roc_auc(windows.labels, after.scores), []


def propose(store, champion_members: list[dict], run_id: str, config: HarnessConfig) -> Proposal:
    """Compute every gate for the run's export and record the proposal in the run.

    Args:
        store: `harness.runs.RunStore` holding the run and the champion members' runs.
        champion_members: Members of `registry/champion.yaml` (run_id, export_sha256, ...).
        run_id: The candidate run.
        config: Harness config (site, scoring, bootstrap, gate thresholds).

    Effects:
        Logs `registry/proposal.json` to the run and sets its `pantanal.proposal` tag.
    """
    run = store.exported_run(run_id)
    tags = run.data.tags
    others = [m for m in champion_members if m["run_id"] != run_id]
    with tempfile.TemporaryDirectory(prefix="pantanal-propose-") as folder:
        candidate = OnnxMember(store.model_file(run_id, Path(folder)), name=f"candidate-{run_id[:8]}")
        champion = [_champion_member(store, member, Path(folder)) for member in others]
        report = store.json_artifact(run_id, f"{harness_prefix(config.site)}/report.json")
        model_sha256 = tags[TAG.export_sha256]
        blend = blend_gate(None, [], config.gates.noise_multiplier)
        if champion:
            difference, champion_auc, blend_auc, gaps = evaluate_blend(candidate, champion, config)
            blend = blend_gate(difference, [m["run_id"] for m in others], config.gates.noise_multiplier,
                               champion_auc, blend_auc, gaps)
        gates = [
            standalone_gate(report, model_sha256, config),
            blend,
            parity_gate(store.json_artifact(run_id, EXPORT_PARITY_ARTIFACT), config.gates.parity_tolerance),
            final_stage_gate(store.json_artifact(run_id, EXPORT_SELECTION_ARTIFACT), tags.get(TAG.stage),
                             candidate.metadata.stage),
            provenance_gate(run_id, tags, run.data.params, candidate),
        ]
    proposal = Proposal(run_id, model_sha256, recommend(gates), gates, [m["run_id"] for m in others],
                        proposal_settings(config))
    store.log_text(run_id, json.dumps(proposal.to_dict(), indent=2), PROPOSAL_ARTIFACT)
    store.set_tags(run_id, {TAG.proposal: proposal.recommendation})
    return proposal


def _champion_member(store, member: dict, folder: Path) -> OnnxMember:
    path = store.model_file(member["run_id"], folder)
    if file_sha256(path) != member["export_sha256"]:
        raise ValueError(
            f"champion member {member['run_id']}: its exported model no longer matches the sha256 in "
            "champion.yaml; run `pantanal registry check`"
        )
    return OnnxMember(path, name=f"champion-{member['run_id'][:8]}")

