"""Review summaries: one per exported run, from MLflow and the ledger together.

`pantanal registry show` prints these summaries as a table and `pantanal dashboard` renders them
with training curves. The decision shown is the ledger's; `mlflow_decision` is the run's tag, so a
disagreement is visible without running `registry check`.
"""

from __future__ import annotations

import json

from harness.ledger import Ledger
from harness.registry import EXPORT_SELECTION_ARTIFACT, PROPOSAL_ARTIFACT, TAG, harness_prefix

# Per-epoch metrics drawn as training curves: the training-time held-out-site metric and the loss.
CURVE_METRICS = ("val/site_auc", "train/loss")


def run_summaries(store, ledger: Ledger, site: str) -> list[dict]:
    """Summaries of every exported run, oldest first, plus ledger entries whose run is gone."""
    entries, _ = ledger.read_all()
    summaries = [_summary(store, run, entries.get(run.info.run_id), site) for run in store.exported_runs()]
    seen = {s["run_id"] for s in summaries}
    for run_id, entry in entries.items():
        if run_id not in seen:
            summaries.append(_orphan_summary(run_id, entry))
    return summaries


def _summary(store, run, entry: dict | None, site: str) -> dict:
    tags, metrics = run.data.tags, run.data.metrics
    prefix = harness_prefix(site)
    selection = store.json_artifact(run.info.run_id, EXPORT_SELECTION_ARTIFACT) or {}
    chosen = selection.get("chosen") or {}
    training_auc = chosen.get("score")
    proposal = entry["proposal"] if entry else store.json_artifact(run.info.run_id, PROPOSAL_ARTIFACT)
    return {
        "run_id": run.info.run_id,
        "experiment": tags.get(TAG.experiment, ""),
        "stage": tags.get(TAG.stage, ""),
        "goal": tags.get(TAG.goal, ""),
        "hypothesis": tags.get(TAG.hypothesis, ""),
        "start_time": run.info.start_time,
        "model_version": tags.get(TAG.model_version),
        "export_sha256": tags.get(TAG.export_sha256),
        "training_site_auc": training_auc if training_auc is not None and training_auc >= 0 else None,
        "training_epoch": chosen.get("epoch"),
        "harness": {
            "macro_auc": metrics.get(f"{prefix}/macro_auc"),
            "ci_low": metrics.get(f"{prefix}/ci_low"),
            "ci_high": metrics.get(f"{prefix}/ci_high"),
            "padded_cmap": metrics.get(f"{prefix}/padded_cmap"),
            "taxon": {key.rsplit("/", 1)[1]: value for key, value in metrics.items() if key.startswith(f"{prefix}/taxon/")},
        },
        "recommendation": proposal["recommendation"] if proposal else None,
        "gates": proposal["gates"] if proposal else [],
        "decision": entry.get("decision") if entry else None,
        "reason": entry.get("reason") if entry else None,
        "reviewer": entry.get("reviewer") if entry else None,
        "date": entry.get("date") if entry else None,
        "override": bool(entry.get("override")) if entry else False,
        "settings_changed": sorted((entry.get("settings_changed") or {}) if entry else {}),
        "mlflow_decision": tags.get(TAG.decision),
        "lineage": _lineage(tags.get(TAG.lineage)),
    }


def _orphan_summary(run_id: str, entry: dict) -> dict:
    proposal = entry.get("proposal") or {}
    return {
        "run_id": run_id, "experiment": entry.get("experiment") or "", "stage": "", "goal": entry.get("goal") or "",
        "hypothesis": "", "start_time": None, "model_version": (entry.get("model") or {}).get("version"),
        "export_sha256": (entry.get("model") or {}).get("export_sha256"), "training_site_auc": None,
        "training_epoch": None, "harness": {"macro_auc": (entry.get("model") or {}).get("harness_macro_auc"), "taxon": {}},
        "recommendation": proposal.get("recommendation"), "gates": proposal.get("gates") or [],
        "decision": entry.get("decision"), "reason": entry.get("reason"), "reviewer": entry.get("reviewer"),
        "date": entry.get("date"), "override": bool(entry.get("override")),
        "settings_changed": sorted(entry.get("settings_changed") or {}), "mlflow_decision": None, "lineage": [],
    }


def _lineage(text: str | None) -> list[dict]:
    """Stage runs before this one (supervised, ns1, ...), from the lineage tag; empty when unreadable."""
    if not text:
        return []
    try:
        lineage = json.loads(text)
    except json.JSONDecodeError:
        return []
    return [{"stage": item.get("stage"), "run_id": item.get("run_id")} for item in lineage if isinstance(item, dict)]


def training_curves(store, summary: dict) -> dict[str, list[dict]]:
    """Read the per-epoch metric histories of every stage run of the recipe, in stage order.

    Returns:
        Metric name to a list of `{"stage", "points": [(step, value), ...]}`; steps restart per stage.
    """
    stages = summary["lineage"] + [{"stage": summary["stage"], "run_id": summary["run_id"]}]
    curves: dict[str, list[dict]] = {}
    for key in CURVE_METRICS:
        series = []
        for stage in stages:
            if stage["run_id"] and store.find_run(stage["run_id"]) is not None:
                points = store.metric_history(stage["run_id"], key)
                if points:
                    series.append({"stage": stage["stage"], "points": points})
        curves[key] = series
    return curves
