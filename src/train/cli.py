"""Training-side subcommands of `pantanal`, each taking Hydra overrides.

    pantanal data check <root>
    pantanal data prepare [overrides]        window manifests
    pantanal teacher embed [overrides]       teacher embedding cache
    pantanal train [overrides]               one stage (stage=supervised, ns1, ns2, ...)
    pantanal pseudo-label [overrides]        pseudo-labels for stage=ns<k>
    pantanal export [overrides]              select + BN recalibration + ONNX export + parity
    pantanal recipe [overrides]              all of the above in order

This module imports nothing heavy at import time: `pantanal --help` must stay fast.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from infer.atomic import atomic_write_text

log = logging.getLogger(__name__)


def _input_errors() -> tuple[type[BaseException], ...]:
    # Imported when a command fails, not when the parser is built, to keep `pantanal --help` fast.
    from harness.dataset import DatasetError
    from infer.frontend import FrontendSpecError
    from infer.member import ModelMetadataError
    from infer.taxonomy import TaxonomyError
    from infer.teacher import TeacherError
    from train.config import ConfigError, RunIntentError
    from train.export import ExportParityError, SaturatedModelError, TrackingRunError
    from train.selector import SelectionError

    return (DatasetError, FrontendSpecError, ModelMetadataError, TaxonomyError, TeacherError, ConfigError,
            RunIntentError, ExportParityError, SaturatedModelError, TrackingRunError, SelectionError,
            FileNotFoundError)


def reports_input_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Print one `error:` line and exit with status 2 for the input errors a user can fix.

    The messages of these errors name the value and the fix, so a traceback only hides them;
    `pantanal -v` logs it for debugging. Any other exception is a bug and keeps its traceback.
    """
    @functools.wraps(command)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except Exception as exc:
            if not isinstance(exc, _input_errors()):
                raise
            log.debug("%s failed", command.__name__, exc_info=True)
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return wrapper


def _overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=demo_b0 data.root=/data/birdclef")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the training-side subcommands to the `pantanal` parser."""
    data = subparsers.add_parser("data", help="validate a dataset and write window manifests")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    check = data_commands.add_parser("check", help="report missing audio, unknown labels, duplicates, unreadable files, sites")
    check.add_argument("root", type=Path, help="dataset folder in the BirdCLEF+ 2026 layout")
    check.add_argument("--no-audio", action="store_true", help="skip opening every audio file (much faster)")
    check.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    check.add_argument("--all-names", action="store_true",
                       help="name every file or label of each problem (default: the first 10)")
    check.add_argument("--site-pattern", default=r"_S(\d+)_", help="regex whose first group is the site (default: _S(\\d+)_)")
    check.set_defaults(func=cmd_data_check)
    prepare = data_commands.add_parser("prepare", help="write focal, soundscape, held-out and unlabelled window manifests")
    _overrides(prepare)
    prepare.set_defaults(func=cmd_data_prepare)

    teacher = subparsers.add_parser("teacher", help="teacher embeddings for distillation")
    teacher_commands = teacher.add_subparsers(dest="teacher_command", metavar="ACTION", required=True)
    embed = teacher_commands.add_parser("embed", help="fill the teacher embedding cache for every training window")
    _overrides(embed)
    embed.set_defaults(func=cmd_teacher_embed)

    for name, help_text, func in (
        ("train", "train one stage: stage=supervised (default) or ns1, ns2, ...", cmd_train),
        ("pseudo-label", "pseudo-label unlabelled soundscape windows for stage=ns<k>", cmd_pseudo_label),
        ("export", "select the checkpoint, recalibrate BatchNorm, export ONNX, check parity", cmd_export),
        ("recipe", "prepare, teacher embed, supervised, Noisy Student rounds, export", cmd_recipe),
    ):
        parser = subparsers.add_parser(name, help=help_text)
        _overrides(parser)
        parser.set_defaults(func=func)


def _config(args: argparse.Namespace):
    from train.config import load_config

    return load_config(args.overrides)


@reports_input_errors
def cmd_data_check(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from harness.dataset import check_dataset

    report = check_dataset(args.root, args.site_pattern, open_audio=not args.no_audio,
                           progress=lambda items: tqdm(items, desc="opening audio", unit="file"))
    print(report.format(max_names=None if args.all_names else 10))
    if args.json:
        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2))
    return 0 if report.ok else 1


def prepare(cfg) -> dict:
    from harness.manifests import ManifestConfig, build_manifests

    config = ManifestConfig(
        window_seconds=float(cfg.data.window_seconds),
        heldout_sites=tuple(str(s) for s in cfg.data.heldout_sites),
        extra_unlabelled=tuple(str(Path(p).resolve()) for p in cfg.data.extra_unlabelled),
        max_focal_clips=cfg.data.max_focal_clips,
        max_windows_per_clip=cfg.data.max_windows_per_clip,
    )
    return build_manifests(cfg.data.root, cfg.paths.manifest_dir, config, cfg.data.site_pattern)


@reports_input_errors
def cmd_data_prepare(args: argparse.Namespace) -> int:
    prepare(_config(args))
    return 0


def teacher_embed(cfg) -> dict | None:
    from tqdm import tqdm

    from train.data import load_manifests
    from train.teacher_cache import embed_manifests

    if not cfg.teacher.name:
        # The DVC stage declares this folder as its output, so it exists even when empty.
        out = Path(cfg.paths.experiment_dir) / "teacher"
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "mapping.json", json.dumps({"teacher": None}, indent=2))
        log.info("teacher=none: nothing to embed")
        return None
    manifests = load_manifests(Path(cfg.paths.manifest_dir))
    return embed_manifests(cfg, manifests, progress=lambda items: tqdm(items, desc=f"{cfg.teacher.name} embeddings", unit="file"))


@reports_input_errors
def cmd_teacher_embed(args: argparse.Namespace) -> int:
    teacher_embed(_config(args))
    return 0


@reports_input_errors
def cmd_train(args: argparse.Namespace) -> int:
    from train.config import require_stage_in_recipe
    from train.stage import train_stage

    cfg = _config(args)
    require_stage_in_recipe(cfg)
    train_stage(cfg)
    return 0


@reports_input_errors
def cmd_pseudo_label(args: argparse.Namespace) -> int:
    from train.config import require_stage_in_recipe
    from train.pseudo_label import run_pseudo_label

    cfg = _config(args)
    require_stage_in_recipe(cfg)
    run_pseudo_label(cfg)
    return 0


@reports_input_errors
def cmd_export(args: argparse.Namespace) -> int:
    from train.export import run_export

    record = run_export(_config(args))
    print(record["model"])
    return 0


def run_recipe(overrides: list[str]) -> dict:
    """Run every stage in order: prepare, teacher embed, supervised, `ns.rounds` rounds, export."""
    from train.config import load_config, require_round_configs, require_run_intent, stage_name
    from train.export import run_export
    from train.pseudo_label import run_pseudo_label
    from train.stage import train_stage

    cfg = load_config(overrides)
    require_run_intent(cfg)
    require_round_configs(cfg)
    prepare(cfg)
    teacher_embed(cfg)
    train_stage(load_config(overrides + ["stage=supervised"]))
    for round_index in range(1, int(cfg.ns.rounds) + 1):
        stage_cfg = load_config(overrides + [f"stage={stage_name(round_index)}"])
        run_pseudo_label(stage_cfg)
        train_stage(stage_cfg)
    return run_export(cfg)


@reports_input_errors
def cmd_recipe(args: argparse.Namespace) -> int:
    record = run_recipe(list(args.overrides))
    print(record["model"])
    return 0


if __name__ == "__main__":
    from infer.cli import main

    sys.exit(main())
