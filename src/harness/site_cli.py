"""`pantanal harness`: the held-out-site evaluation of an exported model or a bundle.

    pantanal harness --model outputs/demo_b0/export/model.onnx --site S22
    pantanal harness --run <MLflow run id>          the run's exported model, from MLflow
    pantanal harness --bundle bundle/               a bundle with its own TTA, blend and post-processing

Exit status: 0 when every expected window was scored, 1 on a coverage gap (the report is still
written, without metrics), 2 when the inputs cannot be evaluated. Imports of MLflow, pandas and
the evaluation code happen inside the command, so `pantanal --help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import sys
import tempfile
from pathlib import Path

from harness.registry import RunStoreError

log = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "harness",
        help="score an exported model on the held-out site's labelled soundscapes",
        description="Score the labelled soundscapes of a held-out site through the field inference pipeline "
                    "and write a JSON report: macro ROC-AUC, per-taxon AUC, padded cmAP, bootstrap interval, "
                    "per-class AUC and coverage.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="exported ONNX model")
    source.add_argument("--bundle", type=Path, help="bundle folder; its manifest sets TTA, blend and post-processing")
    source.add_argument("--run", help="MLflow run id; scores the model that run exported")
    parser.add_argument("--site", help="held-out site, e.g. S22 (default: `site` of the config)")
    parser.add_argument("--data-root", type=Path, help="dataset folder in the BirdCLEF+ 2026 layout (default: from the config)")
    add_config_options(parser)
    parser.add_argument("--out", type=Path, help="report file (default: outputs/harness/S<site>_<model id>.json)")
    parser.add_argument("--scores-out", type=Path, help="also write every scored window as a submission CSV")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or mlruns/mlflow.db)")
    parser.add_argument("--no-log", action="store_true", help="do not store the report in the model's MLflow run")
    parser.add_argument("--taxonomy", type=Path, help="taxonomy.csv (default: the one inside the model)")
    parser.add_argument("--threads", type=int, help="CPU threads for the models (default: all cores)")
    parser.set_defaults(func=cmd_harness)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """--config and --set, shared by the commands that read the harness config."""
    parser.add_argument("--config", type=Path, help="harness config YAML (default: conf/harness/default.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set gates.standalone_bar=0.8 (repeatable)")


def exit_on_input_errors(command):
    """Wrap a command so that an invalid input prints one error line and exits with status 2.

    Input errors are the `ValueError`s of config, labels, models and the ledger, a missing file,
    and a run or artifact that is not in the tracking store. `-v` logs the traceback.
    """
    @functools.wraps(command)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (RunStoreError, ValueError, FileNotFoundError) as exc:
            log.debug("%s failed", command.__name__, exc_info=True)
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return wrapper


@exit_on_input_errors
def cmd_harness(args: argparse.Namespace) -> int:
    from harness.config import load_harness_config, normalise_site, project_root
    from harness.site_eval import evaluate
    from infer.atomic import atomic_write_text

    config = load_harness_config(args.config, args.overrides)
    # Set directly, not as dotted overrides, which would read a site like "03" as the number 3.
    if args.site:
        config.site = normalise_site(args.site)
    if args.data_root:
        config.data_root = str(args.data_root.resolve())

    with contextlib.ExitStack() as stack:
        scorer, provenance, run_id = _load_scorer(args, config, stack)
        report, site_scores = evaluate(scorer, provenance, config)
        store = None if args.no_log or run_id is None else _store_for(args.tracking_uri, run_id)
        if store is not None:
            report["training"] = training_site_auc(store, run_id)

        out = args.out or project_root() / "outputs" / "harness" / f"S{config.site}_{provenance.identifier}.json"
        atomic_write_text(out, json.dumps(report, indent=2))
        if args.scores_out:
            from infer.outputs.submission import write_submission

            write_submission(args.scores_out, scorer.taxonomy.labels, site_scores.file_scores)
        print(format_summary(report))
        print(f"report: {out}")
        if not report["coverage"]["ok"]:
            print("error: coverage gap, no metrics reported:\n  - " + "\n  - ".join(report["coverage"]["gaps"]), file=sys.stderr)
            return 1
        if store is not None:
            store.log_harness_report(run_id, report)
            print(f"logged to MLflow run {run_id} ({store.tracking_uri})")
    return 0


def _load_scorer(args: argparse.Namespace, config, stack: contextlib.ExitStack):
    """Load the scorer and its provenance, and name the MLflow run to log into (None for a bundle)."""
    from infer.loading import load_scorer

    if args.bundle is not None:
        try:
            scorer, provenance = load_scorer(bundle=args.bundle, threads=args.threads)
        except ModuleNotFoundError as exc:
            raise ValueError(f"bundle scoring is not available in this installation: {exc}") from exc
        return scorer, provenance, None

    model = args.model
    if args.run is not None:
        from harness.registry import default_tracking_uri
        from harness.runs import RunStore

        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pantanal-harness-")))
        model = RunStore(args.tracking_uri or default_tracking_uri()).model_file(args.run, folder)
    scorer, provenance = load_scorer(model=model, config=config.scoring_config(), taxonomy_path=args.taxonomy,
                                     threads=args.threads)
    run_ids = {m.get("source_run_id") for m in provenance.members} - {None, ""}
    return scorer, provenance, run_ids.pop() if len(run_ids) == 1 else None


def _store_for(tracking_uri: str | None, run_id: str):
    """Open the tracking store that contains `run_id`; return None with a warning when it is not there."""
    from harness.registry import default_tracking_uri
    from harness.runs import RunStore

    uri = tracking_uri or default_tracking_uri()
    try:
        store = RunStore(uri)
    except RunStoreError as exc:
        log.warning("report not logged to MLflow: %s", exc)
        return None
    if store.find_run(run_id) is None:
        log.warning("report not logged to MLflow: the model's run %s is not in %s (pass --tracking-uri)", run_id, uri)
        return None
    return store


def training_site_auc(store, run_id: str) -> dict | None:
    """Read the training-time held-out-site AUC (torch, no TTA) of the exported epoch from the run's selection."""
    from harness.registry import EXPORT_SELECTION_ARTIFACT

    selection = store.json_artifact(run_id, EXPORT_SELECTION_ARTIFACT)
    if not selection:
        return None
    chosen = selection["chosen"]
    score = chosen.get("score")
    # The training side logs -1 when the held-out windows give no defined AUC.
    defined = score is not None and score >= 0
    return {"metric": "val/site_auc", "site_auc": score if defined else None, "stage": chosen["stage"],
            "epoch": chosen["epoch"], "tta": False}


def format_summary(report: dict) -> str:
    """Format a few lines for the terminal: coverage, headline metrics, the training-time metric."""
    coverage = report["coverage"]
    lines = [
        f"site S{report['site']}: {coverage['files_scored']}/{coverage['files_expected']} file(s), "
        f"{coverage['windows_scored']}/{coverage['windows_expected']} labelled windows, "
        f"{coverage['audio_windows_scored']}/{coverage['audio_windows_expected']} audio windows scored"
    ]
    metrics = report["metrics"]
    if metrics is not None:
        interval = metrics["bootstrap"]
        lines.append(
            f"macro ROC-AUC {_number(metrics['macro_auc'])} ({interval['confidence']:.0%} CI "
            f"{_number(interval['low'])} to {_number(interval['high'])} over {interval['files']} file(s)), "
            f"padded cmAP {_number(metrics['padded_cmap'])}, {metrics['classes_with_auc']} class(es) with an AUC"
        )
        taxa = ", ".join(f"{name} {_number(value)}" for name, value in metrics["taxon_auc"].items() if value is not None)
        lines.append(f"per taxon: {taxa or 'no taxon has a class with an AUC'}")
    training = report.get("training")
    if training:
        lines.append(f"training-time site AUC (no TTA): {_number(training['site_auc'])} "
                     f"({training['stage']} epoch {training['epoch']})")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"
