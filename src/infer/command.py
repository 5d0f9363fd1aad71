"""`pantanal infer`: score recordings with an exported model and write the outputs."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from infer.audio import AUDIO_EXTENSIONS, AudioDecodeError
from infer.i18n import _
from infer.loading import load_scorer
from infer.outputs.detections import top_detections, write_detections
from infer.outputs.submission import write_submission
from infer.pipeline import DEFAULT_TTA_SHIFTS, ScoringConfig

log = logging.getLogger(__name__)


def add_infer_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer",
        help=_("identify species in audio files"),
        description=_("Score every 5-second window of the given recordings and write the results."),
    )
    parser.add_argument("inputs", nargs="+", type=Path, help=_("audio files or folders (searched recursively)"))
    parser.add_argument("--model", type=Path, required=True, help=_("exported ONNX model"))
    parser.add_argument("--out", type=Path, required=True, help=_("output folder"))
    parser.add_argument("--taxonomy", type=Path, help=_("taxonomy.csv (default: the one inside the model)"))
    parser.add_argument("--top-k", type=int, default=3, help=_("species listed per window in the detections (default: 3)"))
    parser.add_argument("--min-score", type=float, default=0.0, help=_("lowest score listed in the detections, 0 to 1 (default: 0)"))
    parser.add_argument("--no-tta", action="store_true", help=_("score each window once instead of at -0.5, 0 and +0.5 s"))
    parser.add_argument("--threads", type=int, help=_("CPU threads for the models (default: all cores)"))
    parser.set_defaults(func=run_infer)


def collect_audio(inputs: list[Path]) -> list[Path]:
    """Audio files among `inputs`, folders searched recursively, extensions in any case."""
    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found.extend(sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS))
        else:
            found.append(item)
    return found


def run_infer(args: argparse.Namespace) -> int:
    config = ScoringConfig(tta_shifts=(0.0,) if args.no_tta else DEFAULT_TTA_SHIFTS)
    scorer, _provenance = load_scorer(model=args.model, config=config, taxonomy_path=args.taxonomy, threads=args.threads)
    files = collect_audio(args.inputs)
    results, failures = [], []
    started = time.perf_counter()
    for path in files:
        try:
            results.append(scorer.score_file(path))
        except AudioDecodeError as exc:
            log.error(_("skipped %s: %s"), exc.path, exc.cause)
            failures.append(exc)

    args.out.mkdir(parents=True, exist_ok=True)
    submission = args.out / "submission.csv"
    rows = write_submission(submission, scorer.taxonomy.labels, results)
    detections = (d for r in results for d in top_detections(r, scorer.taxonomy, args.top_k, args.min_score))
    write_detections(args.out / "detections.csv", detections)
    log.info(
        _("%d file(s) scored, %d failed, %d rows in %.1f s; outputs in %s"),
        len(results), len(failures), rows, time.perf_counter() - started, args.out,
    )
    return 0 if not failures else 3
