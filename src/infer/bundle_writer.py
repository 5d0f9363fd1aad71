"""Write ensemble bundles: copy members, the teacher and the taxonomy, and hash them in a manifest.

The format and its verification live in `infer.bundle`; `pantanal package` calls `write_bundle`
and `pantanal checklist` calls `update_manifest`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from infer.atomic import atomic_write_text
from infer.blend import BlendConfig
from infer.bundle import (
    BUNDLE_SCHEMA_VERSION,
    MANIFEST_NAME,
    MEMBERS_DIR,
    TAXONOMY_NAME,
    UNREVIEWED,
    BundleError,
    MemberEntry,
)
from infer.member import OnnxMember, file_sha256
from infer.pipeline import ScoringConfig
from infer.taxonomy import Taxonomy
from infer.teacher import Teacher, TeacherSpec, map_to_taxonomy

log = logging.getLogger(__name__)


@dataclass
class MemberSource:
    """A member to package.

    Attributes:
        path: The exported `.onnx` file.
        name: Name in the bundle; defaults to the experiment recorded in the model, else the file stem.
        weight: Blend weight.
        decision: Registry decision found for its source run.
        quantization: Set when `path` is an int8 copy (see `MemberEntry.quantization`).
    """

    path: Path
    name: str | None = None
    weight: float = 1.0
    decision: str = UNREVIEWED
    quantization: dict[str, object] | None = None


def write_bundle(
    out: Path,
    members: list[MemberSource],
    taxonomy_path: Path | None,
    config: ScoringConfig,
    teacher: TeacherSpec | None = None,
    teacher_weight: float | None = None,
    overwrite: bool = False,
    sections: dict[str, object] | None = None,
) -> str:
    """Package members (and optionally a teacher) into a bundle folder at `out`.

    The folder is built beside `out` and renamed into place, so a failed run leaves no half bundle.
    Blend weights come from `members` (and `teacher_weight`, default `config.teacher_weight`);
    the rest of `config` is recorded as it is. `sections` adds top-level manifest sections
    (e.g. the int8 gate record).

    Returns:
        The sha256 of the written manifest.

    Raises:
        BundleError: `out` exists and `overwrite` is False, names collide, or a member does not
            match the taxonomy.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise BundleError(out, [f"{out} already exists; choose another folder or replace it (--force)"])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest = _stage_bundle(staging, members, taxonomy_path, config, teacher, teacher_weight, sections or {})
        _replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("bundle written to %s: %d member(s); licences: %s", out, len(manifest["members"]),
             " | ".join(manifest["licences"]))
    return file_sha256(out / MANIFEST_NAME)


def _stage_bundle(
    staging: Path, members: list[MemberSource], taxonomy_path: Path | None, config: ScoringConfig,
    teacher: TeacherSpec | None, teacher_weight: float | None, sections: dict[str, object],
) -> dict:
    (staging / MEMBERS_DIR).mkdir()
    loaded = [OnnxMember(m.path, threads=1) for m in members]
    if not loaded:
        raise BundleError(staging, ["a bundle needs at least one CNN member"])
    taxonomy = _write_taxonomy(staging / TAXONOMY_NAME, taxonomy_path, loaded[0])
    entries = [_copy_cnn(staging, source, member, taxonomy) for source, member in zip(members, loaded)]
    weight = config.teacher_weight if teacher_weight is None else teacher_weight
    mapping = None
    if teacher is not None:
        teacher_entry, mapping = _copy_teacher(staging, teacher, weight, taxonomy)
        entries.append(teacher_entry)
    _check_unique_names(staging, [e.name for e in entries])

    config = dataclasses.replace(
        config,
        blend=BlendConfig(config.blend.mode, {e.name: e.weight for e in entries if e.kind == "cnn"}),
        teacher_weight=weight if teacher is not None else 0.0,
    )
    manifest = {**build_manifest(entries, taxonomy, config, mapping), **sections}
    _write_manifest(staging / MANIFEST_NAME, manifest)
    # mkdtemp creates the folder for its owner only; a bundle is meant to be shared.
    staging.chmod(0o755)
    return manifest


def build_manifest(
    entries: list[MemberEntry], taxonomy: Taxonomy, config: ScoringConfig, teacher_mapping: dict | None
) -> dict:
    """The manifest as a JSON-ready dict, with the licences right after the schema version."""
    return {
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "licences": sorted({e.licence for e in entries}),
        "licence_notice": (
            "Use and share this bundle only under the terms of every member's licence: "
            + "; ".join(f"{e.name}: {e.licence}" for e in entries)
        ),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "taxonomy": {"file": TAXONOMY_NAME, "sha256": taxonomy.sha256, "classes": len(taxonomy)},
        "members": [asdict(e) for e in entries],
        "scoring": config.to_dict(),
        "teacher_mapping": teacher_mapping,
        "throughput": None,
        "checklist": None,
    }


def _write_taxonomy(target: Path, taxonomy_path: Path | None, first: OnnxMember) -> Taxonomy:
    if taxonomy_path is not None:
        shutil.copyfile(taxonomy_path, target)
        return Taxonomy.from_csv(target)
    embedded = first.metadata.taxonomy()
    if embedded is None:
        raise BundleError(target.parent, [f"{first.path} carries no taxonomy rows; name the taxonomy.csv"])
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(embedded.to_records()[0]))
        writer.writeheader()
        writer.writerows(embedded.to_records())
    return Taxonomy.from_csv(target)


def _copy_cnn(staging: Path, source: MemberSource, member: OnnxMember, taxonomy: Taxonomy) -> MemberEntry:
    member.check_taxonomy(taxonomy)
    meta = member.metadata
    name = source.name or meta.extra.get("experiment") or member.path.stem
    relative = f"{MEMBERS_DIR}/{name}.onnx"
    shutil.copyfile(member.path, staging / relative)
    return MemberEntry(
        name=name, kind="cnn", file=relative, sha256=file_sha256(staging / relative), weight=float(source.weight),
        licence=meta.extra.get("licence", "unknown"), source_run_id=meta.source_run_id, stage=meta.stage,
        decision=source.decision, quantization=source.quantization,
    )


def _copy_teacher(staging: Path, spec: TeacherSpec, weight: float, taxonomy: Taxonomy) -> tuple[MemberEntry, dict]:
    teacher = Teacher(spec, threads=1)
    relative = f"{MEMBERS_DIR}/{spec.name}.{spec.kind}"
    labels_relative = f"{MEMBERS_DIR}/{spec.name}_labels{Path(spec.labels_path).suffix or '.txt'}"
    shutil.copyfile(spec.model_path, staging / relative)
    shutil.copyfile(spec.labels_path, staging / labels_relative)
    details = {
        "labels_file": labels_relative,
        "labels_sha256": file_sha256(staging / labels_relative),
        "labels_format": spec.labels_format,
        "sample_rate": spec.sample_rate,
        "window_samples": spec.window_samples,
        "logits_output": spec.logits_output,
        "embedding_output": spec.embedding_output,
    }
    entry = MemberEntry(
        name=spec.name, kind="teacher", file=relative, sha256=file_sha256(staging / relative), weight=float(weight),
        licence=spec.licence, decision="external teacher (no registry entry)", teacher=details,
    )
    mapping = map_to_taxonomy(teacher.labels, taxonomy).report(taxonomy)
    return entry, mapping


def _check_unique_names(folder: Path, names: list[str]) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BundleError(folder, [f"member names must be unique, got {duplicates} more than once; name them (--names)"])


def _replace_folder(staging: Path, out: Path) -> None:
    if out.exists():
        retired = out.with_name(f".{out.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        out.rename(retired)
        staging.rename(out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(out)


def update_manifest(folder: Path, **sections: object) -> str:
    """Set top-level manifest sections (e.g. throughput, checklist) and return the new manifest sha256."""
    path = Path(folder) / MANIFEST_NAME
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(sections)
    _write_manifest(path, manifest)
    return file_sha256(path)


def _write_manifest(path: Path, manifest: dict) -> None:
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    path.chmod(0o644)  # the atomic writer's temporary file is readable by its owner only
