"""`pantanal registry`: propose, decide, check and show reviewed decisions on exported runs.

    pantanal registry propose <run id>                         compute the gates, record the proposal
    pantanal registry decide <run id> promote --reason "..."   record a decision (also reject, hold)
    pantanal registry check                                    ledger vs MLflow; exit 1 naming each run
    pantanal registry show                                     runs with goal, scores, gates, decision

Every command takes --registry (the ledger folder, default registry/ or PANTANAL_REGISTRY_DIR)
and --tracking-uri (default MLFLOW_TRACKING_URI or mlruns/mlflow.db). MLflow is imported inside
the commands, so `pantanal --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from harness.site_cli import add_config_options, exit_on_input_errors

log = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("registry", help="promotion gates and the reviewed decision ledger")
    commands = parser.add_subparsers(dest="registry_command", metavar="ACTION", required=True)

    propose = commands.add_parser("propose", help="compute the promotion gates of a run and record the proposal")
    propose.add_argument("run_id", help="MLflow run id of an exported model (see `pantanal registry show`)")
    _common(propose, config=True)
    propose.add_argument("--json", action="store_true", help="print the proposal as JSON")
    propose.set_defaults(func=cmd_propose)

    decide = commands.add_parser("decide", help="record a reviewed promote, reject or hold decision")
    decide.add_argument("run_id", help="MLflow run id of an exported model")
    decide.add_argument("decision", choices=("promote", "reject", "hold"))
    decide.add_argument("--reason", required=True, help="why, in the reviewer's words (stored in the ledger and MLflow)")
    decide.add_argument("--reviewer", help="name recorded with the decision (default: git config user.name, else $USER)")
    decide.add_argument("--override", action="store_true",
                        help="promote although gates fail or --set/--config change the project's settings; "
                             "the ledger and the run's tags record the override")
    decide.add_argument("--recompute", action="store_true", help="compute the gates again instead of reusing the latest proposal")
    _common(decide, config=True)
    decide.set_defaults(func=cmd_decide)

    check = commands.add_parser("check", help="compare the ledger with MLflow; exit 1 naming every run that disagrees")
    _common(check)
    check.set_defaults(func=cmd_check)

    show = commands.add_parser("show", help="list exported runs with goal, scores, gates and decision")
    _common(show)
    show.add_argument("--site", default="22", help="site of the harness scores shown (default: S22)")
    show.add_argument("--json", action="store_true", help="print the summaries as JSON")
    show.set_defaults(func=cmd_show)


def _common(parser: argparse.ArgumentParser, config: bool = False) -> None:
    parser.add_argument("--registry", type=Path, help="ledger folder (default: registry/ or PANTANAL_REGISTRY_DIR)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or mlruns/mlflow.db)")
    if config:
        add_config_options(parser)


def _open(args: argparse.Namespace):
    from harness.ledger import Ledger, default_registry_dir
    from harness.registry import default_tracking_uri
    from harness.runs import RunStore

    return RunStore(args.tracking_uri or default_tracking_uri()), Ledger(Path(args.registry or default_registry_dir()))


@exit_on_input_errors
def cmd_propose(args: argparse.Namespace) -> int:
    from harness.config import load_harness_config
    from harness.gates import propose

    store, ledger = _open(args)
    proposal = propose(store, ledger.champion_members(), args.run_id, load_harness_config(args.config, args.overrides))
    print(json.dumps(proposal.to_dict(), indent=2) if args.json else format_proposal(proposal))
    return 0


@exit_on_input_errors
def cmd_decide(args: argparse.Namespace) -> int:
    from harness.config import load_harness_config
    from harness.ledger import decide

    store, ledger = _open(args)
    config = load_harness_config(args.config, args.overrides)
    entry = decide(store, ledger, args.run_id, args.decision, args.reason, config, args.reviewer, args.override,
                   args.recompute)
    reasons = (["gates failed"] if not entry["proposal"]["passed"] else []) + \
        [f"{key} changed" for key in entry["settings_changed"]]
    note = f" (override: {', '.join(reasons)})" if entry["override"] else ""
    print(f"{entry['decision']} {entry['run_id']} by {entry['reviewer']} at {entry['date']}{note}")
    print(f"ledger: {ledger.path_of(entry['run_id'])}")
    return 0


@exit_on_input_errors
def cmd_check(args: argparse.Namespace) -> int:
    from harness.ledger import check_consistency

    store, ledger = _open(args)
    problems = check_consistency(store, ledger)
    if problems:
        print(f"{len(problems)} disagreement(s) between {ledger.root} and {store.tracking_uri}:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    entries, _ = ledger.read_all()
    print(f"ledger {ledger.root} and MLflow agree ({len(entries)} decision(s), "
          f"{len(ledger.champion_members())} champion member(s))")
    return 0


@exit_on_input_errors
def cmd_show(args: argparse.Namespace) -> int:
    from harness.config import normalise_site
    from harness.overview import run_summaries

    store, ledger = _open(args)
    summaries = run_summaries(store, ledger, normalise_site(args.site))
    if args.json:
        print(json.dumps(summaries, indent=2))
    else:
        print(format_summaries(summaries, normalise_site(args.site)))
    return 0


def format_proposal(proposal) -> str:
    lines = [f"run {proposal.run_id}: {proposal.recommendation.upper()}"]
    lines += [f"  [{'pass' if gate.passed else 'FAIL'}] {gate.name}: {gate.detail}" for gate in proposal.gates]
    if proposal.champion:
        lines.append(f"  compared with champion member(s): {', '.join(proposal.champion)}")
    return "\n".join(lines)


def format_summaries(summaries: list[dict], site: str) -> str:
    """Format a plain-text table: one line per run, then its goal indented below."""
    if not summaries:
        return "no exported runs in this tracking store"
    header = f"{'run id':32}  {'experiment':20} {'stage':10} {'train AUC':>9} {f'S{site} AUC':>9} {'95% CI':>13}  {'proposal':8}  decision"
    lines = [header, "-" * len(header)]
    for s in summaries:
        harness = s["harness"]
        interval = "" if harness.get("ci_low") is None else f"{harness['ci_low']:.3f}-{harness['ci_high']:.3f}"
        decision = s["decision"] or "-"
        if s["decision"] and s["mlflow_decision"] != s["decision"]:
            decision += f" (MLflow: {s['mlflow_decision']})"
        if s["override"]:
            decision += f" (override{': ' + ', '.join(s['settings_changed']) + ' changed' if s['settings_changed'] else ''})"
        lines.append(f"{s['run_id']:32}  {s['experiment'][:20]:20} {s['stage'][:10]:10} {_cell(s['training_site_auc']):>9} "
                     f"{_cell(harness.get('macro_auc')):>9} {interval:>13}  {(s['recommendation'] or '-'):8}  {decision}")
        lines.append(f"{'':34}goal: {s['goal']}")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
