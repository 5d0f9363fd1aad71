"""`pantanal infer`: score recordings with an exported model or a bundle and write the outputs.

Exit status:

- 0: every file succeeded;
- 1: the output folder cannot be written (found before the run starts, or during it);
- 2: usage error (bad option, missing input, unloadable model);
- 3: some files failed (listed in errors.csv);
- 4: the time budget stopped the run early;
- 130: interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from infer.audio import AUDIO_EXTENSIONS
from infer.batch import FORMATS, BatchOptions, BatchRunner, OutputWriteError
from infer.budget import BUDGET_ACTIONS
from infer.i18n import LANGUAGES, _
from infer.loading import load_scorer
from infer.outputs.detections import DisplayFilter
from infer.outputs.summary import format_summary
from infer.pipeline import DEFAULT_TTA_SHIFTS, ScoringConfig
from infer.species_list import SpeciesListError, load_species_list

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FATAL, EXIT_USAGE, EXIT_FILES_FAILED, EXIT_BUDGET, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class UsageError(ValueError):
    """A user mistake the command reports in one message, without a traceback."""


def add_infer_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer",
        help=_("identify species in audio files"),
        description=_("Score every 5-second window of the given recordings and write the results."),
        epilog=_("Exit status: 0 all files succeeded, 3 some files failed (see errors.csv), 4 stopped by the "
                 "time budget, 2 usage error, 1 the output folder could not be written, 130 interrupted."),
    )
    parser.add_argument("inputs", nargs="+", type=Path, help=_("audio files or folders (searched recursively)"))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help=_("exported ONNX model"))
    source.add_argument("--bundle", type=Path, help=_("ensemble bundle folder (with manifest.json)"))
    parser.add_argument("--out", type=Path, required=True, help=_("output folder"))
    parser.add_argument("--taxonomy", type=Path, help=_("taxonomy.csv (default: the one inside the model)"))
    parser.add_argument("--format", action="append", type=_formats, metavar="LIST",
                        help=_("outputs to write, comma-separated: %s (default: all)") % ",".join(FORMATS))
    parser.add_argument("--top-k", type=int, default=3,
                        help=_("species listed per window in the detections, tables and report (default: 3)"))
    parser.add_argument("--min-score", type=_decimal, default=0.0,
                        help=_("lowest score listed in the detections, tables and report, 0 to 1 (default: 0); "
                               "the submission CSV always has every score"))
    parser.add_argument("--species-list", type=Path, metavar="FILE",
                        help=_("site species list (labels or scientific names, one per line): only these are shown"))
    parser.add_argument("--channel", type=int, metavar="N",
                        help=_("score only channel N (1 = first) instead of the mix of all channels"))
    parser.add_argument("--no-tta", action="store_true", help=_("score each window once instead of at -0.5, 0 and +0.5 s"))
    parser.add_argument("--resume", action="store_true",
                        help=_("skip files whose outputs in the output folder are complete and valid"))
    parser.add_argument("--allow-truncated", action="store_true",
                        help=_("score the readable part of truncated files (with a warning) instead of failing them"))
    parser.add_argument("--budget-minutes", type=float, metavar="MIN",
                        help=_("time budget for the whole run in minutes, checked after the first 5 files"))
    parser.add_argument("--budget-action", choices=BUDGET_ACTIONS, default="warn",
                        help=_("when the projected time exceeds the budget: warn, or stop (default: warn)"))
    parser.add_argument("--threads", type=int, help=_("CPU threads for the models (default: all cores)"))
    parser.add_argument("--no-progress", action="store_true", help=_("do not draw the progress bar"))
    parser.add_argument("--lang", choices=LANGUAGES, default=argparse.SUPPRESS,
                        help=_("language of messages and reports (default: from the locale)"))
    parser.set_defaults(func=run_infer)


def run_infer(args: argparse.Namespace) -> int:
    """Run the command; return its exit status."""
    try:
        files, runner = _prepare(args)
    except UsageError as exc:
        print(_("error: %s") % exc, file=sys.stderr)
        return EXIT_USAGE
    except OutputWriteError as exc:
        print(_("error: %s") % exc, file=sys.stderr)
        return EXIT_FATAL

    log.info(_("%d audio file(s) found; outputs go to %s"), len(files), args.out)
    try:
        summary = runner.run(files)
    except OutputWriteError as exc:
        print(_("error: %s") % exc, file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print(_("\ninterrupted: the files finished so far are kept; rerun with --resume to continue"), file=sys.stderr)
        return EXIT_INTERRUPTED

    print(format_summary(summary), end="")
    if summary.stopped:
        return EXIT_BUDGET
    return EXIT_FILES_FAILED if summary.with_status("failed") else EXIT_OK


def _prepare(args: argparse.Namespace) -> tuple[list[Path], BatchRunner]:
    # Every check a user can fail runs before the first file is scored.
    _check_numbers(args)
    files = collect_audio(args.inputs)
    _check_output_folder(args.out)
    config = ScoringConfig(tta_shifts=(0.0,) if args.no_tta else DEFAULT_TTA_SHIFTS)
    try:
        scorer, provenance = load_scorer(model=args.model, bundle=args.bundle, config=config,
                                         taxonomy_path=args.taxonomy, threads=args.threads)
    except (OSError, ValueError) as exc:
        raise UsageError(_("cannot load the model: %s") % exc) from exc
    if args.channel is not None:
        # AudioStream counts channels from 0; users count from 1.
        scorer.config.channel = args.channel - 1
    species = None
    if args.species_list is not None:
        try:
            species = load_species_list(args.species_list, scorer.taxonomy)
        except SpeciesListError as exc:
            raise UsageError(str(exc)) from exc
    options = BatchOptions(
        out=args.out,
        formats=frozenset(f for group in (args.format or [FORMATS]) for f in group),
        display=DisplayFilter(args.top_k, args.min_score, species.mask(scorer.taxonomy) if species else None),
        species_list=species,
        resume=args.resume,
        allow_truncated=args.allow_truncated,
        budget_minutes=args.budget_minutes,
        budget_action=args.budget_action,
        progress=False if args.no_progress else None,
    )
    return files, BatchRunner(scorer, provenance, options)


def _check_numbers(args: argparse.Namespace) -> None:
    problems = []
    if args.channel is not None and args.channel < 1:
        problems.append(_("--channel must be 1 or more (1 is the first channel), got %d") % args.channel)
    if args.top_k < 1:
        problems.append(_("--top-k must be 1 or more, got %d") % args.top_k)
    if not 0.0 <= args.min_score <= 1.0:
        problems.append(_("--min-score must be between 0 and 1, got %g") % args.min_score)
    if args.budget_minutes is not None and args.budget_minutes <= 0:
        problems.append(_("--budget-minutes must be more than 0, got %g") % args.budget_minutes)
    if args.threads is not None and args.threads < 1:
        problems.append(_("--threads must be 1 or more, got %d") % args.threads)
    if args.no_tta and args.bundle is not None:
        problems.append(_("--no-tta applies to --model only; a bundle carries its own TTA settings"))
    if problems:
        raise UsageError("\n  ".join(problems))


def _decimal(text: str) -> float:
    """Parse a number written with a decimal point or, as in Portuguese, a decimal comma."""
    try:
        return float(text.replace(",", "."))
    except ValueError:
        raise argparse.ArgumentTypeError(_("not a number: %s") % text) from None


def _formats(text: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            _("unknown format %s; choose from %s") % (",".join(unknown) or repr(text), ",".join(FORMATS)))
    return names


def collect_audio(inputs: list[Path]) -> list[Path]:
    """Audio files among `inputs`: folders searched recursively (extensions in any case), files as named.

    Raises:
        UsageError: An input does not exist, or no audio file was found.
    """
    missing = [str(item) for item in inputs if not item.exists()]
    if missing:
        raise UsageError(_("input not found: %s; check the path") % ", ".join(missing))
    found: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        for path in _audio_in(item) if item.is_dir() else [item]:
            if path.resolve() not in seen:
                seen.add(path.resolve())
                found.append(path)
    if not found:
        raise UsageError(_("no audio files (%s) found in %s") % (
            " ".join(AUDIO_EXTENSIONS), ", ".join(str(i) for i in inputs)))
    return found


def _audio_in(folder: Path) -> list[Path]:
    found = []
    for root, folders, names in os.walk(folder):
        folders.sort()
        for name in sorted(names):
            # "._name.wav" files are macOS metadata that Finder leaves on FAT-formatted SD cards.
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS and not name.startswith("._"):
                found.append(Path(root) / name)
    return found


def _check_output_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputWriteError(_("the output folder %s is a file; choose a folder with --out") % out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise OutputWriteError(_("cannot write to the output folder %s (%s); choose another folder with --out") % (
            out, exc.strerror or exc)) from exc
