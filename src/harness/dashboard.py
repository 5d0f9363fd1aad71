"""`pantanal dashboard`: one static HTML page for reviewers, built from MLflow and the ledger.

The page is self-contained (inline CSS and SVG, no script) and its Content-Security-Policy blocks
every request, so it opens offline from a file or an e-mail attachment. Sections: the champion,
a timeline of runs with harness scores and decisions, gate results per run, training curves of
every stage run, and per-taxon harness scores.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, timezone
from html import escape
from importlib import resources
from pathlib import Path
from string import Template

from harness.site_cli import exit_on_input_errors
from harness.svg import line_chart, score_bar, timeline_chart

log = logging.getLogger(__name__)

GATE_ORDER = ("standalone", "blend", "parity", "final_stage", "provenance")
TAXA = ("Aves", "Amphibia", "Insecta", "Mammalia", "Reptilia")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dashboard", help="write the champion dashboard as one static HTML file")
    parser.add_argument("--out", type=Path, default=Path("dashboard.html"), help="HTML file to write (default: dashboard.html)")
    parser.add_argument("--registry", type=Path, help="ledger folder (default: registry/ or PANTANAL_REGISTRY_DIR)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or mlruns/mlflow.db)")
    parser.add_argument("--site", default="22", help="site of the harness scores shown (default: S22)")
    parser.set_defaults(func=cmd_dashboard)


@exit_on_input_errors
def cmd_dashboard(args: argparse.Namespace) -> int:
    from harness.config import normalise_site
    from harness.ledger import Ledger, default_registry_dir
    from harness.registry import default_tracking_uri
    from harness.runs import RunStore
    from infer.atomic import atomic_write_text

    store = RunStore(args.tracking_uri or default_tracking_uri())
    ledger = Ledger(Path(args.registry or default_registry_dir()))
    data = collect(store, ledger, normalise_site(args.site))
    atomic_write_text(args.out, render(data))
    print(f"dashboard: {args.out} ({len(data['runs'])} run(s), {len(data['champion']['members'])} champion member(s))")
    if data["disagreements"]:
        print(f"warning: the ledger and MLflow disagree ({len(data['disagreements'])}); the page says so at the "
              "top; run `pantanal registry check`", file=sys.stderr)
    return 0


def collect(store, ledger, site: str) -> dict:
    """Everything the page shows, as plain data (the page itself is `render(collect(...))`)."""
    from harness.ledger import champion_from_entries, check_consistency
    from harness.overview import run_summaries, training_curves

    runs = run_summaries(store, ledger, site)
    for summary in runs:
        summary["curves"] = training_curves(store, summary) if summary["start_time"] is not None else {}
    champion = ledger.read_champion() or champion_from_entries({})
    return {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tracking_uri": store.tracking_uri,
        "registry": str(ledger.root),
        "site": site,
        "champion": champion,
        "alias_version": store.champion_version(),
        "runs": runs,
        "disagreements": [str(problem) for problem in check_consistency(store, ledger)],
    }


def render(data: dict) -> str:
    template = Template(resources.files("harness").joinpath("templates/dashboard.html").read_text(encoding="utf-8"))
    runs = data["runs"]
    return template.substitute(
        generated=escape(data["generated"]),
        tracking_uri=escape(data["tracking_uri"]),
        registry=escape(data["registry"]),
        site=escape(data["site"]),
        consistency=consistency_warning(data.get("disagreements") or []),
        champion=champion_section(data["champion"], data["alias_version"], runs),
        timeline_chart=timeline_chart([_timeline_point(run) for run in runs]),
        timeline_table=timeline_table(runs),
        gates=gates_table(runs),
        curves=curves_section(runs),
        taxa=taxa_table(runs),
    )


def consistency_warning(disagreements: list[str]) -> str:
    """Build a banner listing every disagreement between the ledger and MLflow, or "" when they agree.

    The page draws from both sources, so without it a hand-edited ledger file would look like a
    recorded decision.
    """
    if not disagreements:
        return ""
    items = "".join(f"<li>{escape(problem)}</li>" for problem in disagreements)
    return (f'<div id="disagreements" class="warning"><p><b>The ledger and MLflow disagree '
            f'({len(disagreements)}):</b> the decisions and champion below may not be the recorded ones. '
            f'Run <code>pantanal registry check</code>.</p><ul>{items}</ul></div>')


def champion_section(champion: dict, alias_version: str | None, runs: list[dict]) -> str:
    members = champion.get("members") or []
    if not members:
        return '<div id="champion" class="card empty"><p>No champion yet: no run has been promoted.</p></div>'
    goals = {run["run_id"]: run["goal"] for run in runs}
    rows = "".join(
        f"<tr><td><code>{escape(m['run_id'])}</code></td><td>{escape(str(m.get('experiment') or ''))}</td>"
        f"<td>{escape(str(m['model_version']))}</td><td><code>{escape(str(m['export_sha256'])[:12])}</code></td>"
        f"<td>{score_bar(m.get('harness_macro_auc'))}</td><td>{escape(str(m['promoted']))}</td>"
        f"<td>{escape(str(m['reviewer']))}</td><td>{escape(goals.get(m['run_id'], ''))}</td></tr>"
        for m in members
    )
    alias = (f"MLflow alias <code>{escape(champion.get('alias', 'champion'))}</code> of "
             f"<code>{escape(champion.get('registered_model', ''))}</code> points at version "
             f"<b>{escape(str(alias_version))}</b>")
    return (f'<div id="champion" class="card"><p><b>{len(members)} member(s)</b>; {alias}.</p>'
            "<table><tr><th>run</th><th>experiment</th><th>model version</th><th>export sha256</th>"
            "<th>harness AUC</th><th>promoted</th><th>reviewer</th><th>goal</th></tr>"
            f"{rows}</table></div>")


def _timeline_point(run: dict) -> dict:
    value = run["harness"].get("macro_auc")
    score = "no harness score" if value is None else f"harness {value:.4f}"
    title = f"{run['run_id']} ({run['experiment']}): {score}, decision {run['decision'] or 'none'}"
    return {"label": run["experiment"] or run["run_id"][:8], "value": value, "decision": run["decision"], "title": title}


def _decision_cell(run: dict) -> str:
    if not run["decision"]:
        return "&ndash;"
    changed = ", ".join(run.get("settings_changed") or [])
    text = escape(run["decision"])
    if run["override"]:
        text += f" (override{': ' + escape(changed) + ' changed' if changed else ''})"
    if run["mlflow_decision"] != run["decision"]:
        text += f" <b>MLflow says {escape(str(run['mlflow_decision']))}</b>"
    return f'<span class="decision-{escape(run["decision"])}">{text}</span>'


def timeline_table(runs: list[dict]) -> str:
    if not runs:
        return '<p id="timeline">No exported runs in this tracking store.</p>'
    rows = []
    for run in runs:
        started = "" if run["start_time"] is None else datetime.fromtimestamp(run["start_time"] / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")
        harness = run["harness"]
        interval = "" if harness.get("ci_low") is None else f"{harness['ci_low']:.3f} to {harness['ci_high']:.3f}"
        rows.append(
            f"<tr><td>{started}</td><td><code>{escape(run['run_id'])}</code></td><td>{escape(run['experiment'])}</td>"
            f"<td>{escape(run['goal'])}</td><td>{score_bar(run['training_site_auc'])}</td>"
            f"<td>{score_bar(harness.get('macro_auc'))}</td><td>{interval}</td>"
            f"<td>{escape(run['recommendation'] or '')}</td><td>{_decision_cell(run)}</td>"
            f"<td>{escape(run['reviewer'] or '')}</td><td>{escape(run['reason'] or '')}</td></tr>"
        )
    return ('<table id="timeline"><tr><th>started (UTC)</th><th>run</th><th>experiment</th><th>goal</th>'
            "<th>training site AUC</th><th>harness AUC</th><th>95% CI</th><th>proposal</th><th>decision</th>"
            f"<th>reviewer</th><th>reason</th></tr>{''.join(rows)}</table>")


def gates_table(runs: list[dict]) -> str:
    rows = []
    for run in runs:
        by_name = {gate["name"]: gate for gate in run["gates"]}
        cells = []
        for name in GATE_ORDER:
            gate = by_name.get(name)
            if gate is None:
                cells.append("<td>not computed</td>")
            else:
                state = "pass" if gate["passed"] else "fail"
                cells.append(f'<td class="{state}" title="{escape(gate["detail"])}">{state}: {escape(gate["detail"])}</td>')
        rows.append(f"<tr><td><code>{escape(run['run_id'][:8])}</code> {escape(run['experiment'])}</td>{''.join(cells)}"
                    f"<td>{escape(run['recommendation'] or '')}</td></tr>")
    header = "".join(f"<th>{name}</th>" for name in GATE_ORDER)
    return f'<table id="gates"><tr><th>run</th>{header}<th>proposal</th></tr>{"".join(rows)}</table>'


def curves_section(runs: list[dict]) -> str:
    blocks = []
    for run in runs:
        curves = run.get("curves") or {}
        charts = "".join(
            line_chart([(s["stage"], [value for _, value in s["points"]]) for s in series], key,
                       low=0.0 if key == "val/site_auc" else None, high=1.0 if key == "val/site_auc" else None)
            for key, series in curves.items()
        )
        blocks.append(f"<h3><code>{escape(run['run_id'][:8])}</code> {escape(run['experiment'])}</h3>"
                      f'<div class="curves">{charts or "no curves (the run is not in MLflow)"}</div>')
    return f'<div id="curves">{"".join(blocks)}</div>'


def taxa_table(runs: list[dict]) -> str:
    header = "".join(f"<th>{name}</th>" for name in TAXA)
    rows = "".join(
        f"<tr><td><code>{escape(run['run_id'][:8])}</code> {escape(run['experiment'])}</td>"
        + "".join(f"<td>{score_bar(run['harness']['taxon'].get(name))}</td>" for name in TAXA) + "</tr>"
        for run in runs
    )
    return (f'<table id="taxa"><tr><th>run</th>{header}</tr>{rows}</table>'
            '<p class="meta">A dash: no class of that taxon has both positive and negative windows at the site.</p>')
