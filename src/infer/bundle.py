"""Ensemble bundles: the format, verified loading, and a scorer built from a bundle.

A bundle is one folder that carries everything a submission or a field run needs.

Layout:

    bundle/
      manifest.json         schema version, taxonomy, members, scoring settings, licences,
                            measured throughput and checklist results
      taxonomy.csv          the class order of every CNN member and every output
      members/<name>.onnx   CNN members
      members/<name>.tflite a teacher member (or .onnx), with members/<name>_labels.txt

Every file is recorded with its sha256. Loading checks the schema version, every hash, that
every CNN member's class list equals the taxonomy, and that the manifest agrees with itself, and
raises one `BundleError` that lists every problem found. Nothing in a bundle is executed as code:
the manifest is JSON, members are ONNX or TFLite graphs, and every path must stay inside the
bundle folder. `infer.bundle_writer` writes bundles.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path

from infer.loading import Provenance
from infer.member import ModelMetadataError, OnnxMember, file_sha256
from infer.pipeline import Scorer, ScoringConfig
from infer.taxonomy import Taxonomy, TaxonomyError
from infer.teacher import Teacher, TeacherError, TeacherSpec

log = logging.getLogger(__name__)

BUNDLE_SCHEMA_VERSION = "1"
MANIFEST_NAME = "manifest.json"
TAXONOMY_NAME = "taxonomy.csv"
MEMBERS_DIR = "members"
MEMBER_KINDS = ("cnn", "teacher")
UNREVIEWED = "unreviewed"


class BundleError(ValueError):
    """A bundle is missing, malformed or altered; `problems` lists every finding."""

    def __init__(self, folder: Path | str, problems: list[str]) -> None:
        self.folder = Path(folder)
        self.problems = list(problems)
        super().__init__(f"bundle {folder} is not valid ({len(problems)} problem(s)):\n  - " + "\n  - ".join(problems))


@dataclass
class MemberEntry:
    """One member as the manifest records it.

    Attributes:
        name: Unique member name (the blend weights and outputs refer to it).
        kind: "cnn" or "teacher".
        file: Path relative to the bundle folder.
        sha256: sha256 of the file.
        weight: Blend weight (for the teacher, on the classes it can see; 0 = gating only).
        licence: Licence of the weights.
        source_run_id: MLflow run that produced a CNN member; None for an external teacher.
        stage: Training stage of a CNN member.
        decision: Registry decision at packaging time (promote, hold, reject, unreviewed).
        teacher: For a teacher: labels file and hash, label format, sample rate, window and
            output names.
        quantization: For an int8 member: method, sha256 of the float32 export it was made from
            (the one the registry records), calibration windows.
    """

    name: str
    kind: str
    file: str
    sha256: str
    weight: float = 1.0
    licence: str = "unknown"
    source_run_id: str | None = None
    stage: str | None = None
    decision: str = UNREVIEWED
    teacher: dict[str, object] | None = None
    quantization: dict[str, object] | None = None

    @property
    def export_sha256(self) -> str:
        """sha256 of the exported file the registry records: the float32 source of an int8 member."""
        if self.quantization and self.quantization.get("source_sha256"):
            return str(self.quantization["source_sha256"])
        return self.sha256

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> MemberEntry:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        missing = [n for n in ("name", "kind", "file", "sha256") if n not in values]
        if unknown or missing:
            raise ValueError(f"member entry has unknown keys {unknown} and lacks {missing}")
        return cls(**values)

    def provenance(self) -> dict[str, object]:
        keys = ("name", "kind", "file", "sha256", "source_run_id", "stage", "licence", "decision", "weight")
        return {k: getattr(self, k) for k in keys}


@dataclass
class LoadedBundle:
    """A verified bundle, ready to score.

    Attributes:
        folder: The bundle folder.
        manifest: The parsed manifest.json.
        manifest_sha256: sha256 of manifest.json as read.
        taxonomy: The bundle's taxonomy.
        members: CNN members, in manifest order.
        teacher: The teacher member, if any.
        config: Scoring settings from the manifest.
        entries: Manifest entries of every member (CNN and teacher).
    """

    folder: Path
    manifest: dict
    manifest_sha256: str
    taxonomy: Taxonomy
    members: list[OnnxMember]
    teacher: Teacher | None
    config: ScoringConfig
    entries: list[MemberEntry] = field(default_factory=list)

    @property
    def licences(self) -> list[str]:
        return sorted({e.licence for e in self.entries})


def read_manifest(folder: Path) -> dict:
    """Read and parse the manifest.json of `folder`; raise BundleError when it is missing or not JSON."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise BundleError(folder, [f"bundle folder {folder} not found"])
    if not path.is_file():
        raise BundleError(folder, [f"{MANIFEST_NAME} not found in {folder}"])
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(folder, [f"{MANIFEST_NAME} is not valid JSON: {exc}"]) from exc
    if not isinstance(manifest, dict):
        raise BundleError(folder, [f"{MANIFEST_NAME} must hold a JSON object, found {type(manifest).__name__}"])
    return manifest


def open_bundle(folder: Path | str, threads: int | None = None, channel: int | None = None) -> LoadedBundle:
    """Verify a bundle and load its members.

    Raises:
        BundleError: Listing every problem: schema version, missing or altered files (named),
            members whose classes differ from the taxonomy, and a manifest that disagrees with itself.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    problems: list[str] = []
    version = manifest.get("schema_version")
    if version != BUNDLE_SCHEMA_VERSION:
        problems.append(f"schema_version {version!r} is not supported (expected {BUNDLE_SCHEMA_VERSION!r})")

    taxonomy = _verified_taxonomy(folder, manifest, problems)
    entries = _member_entries(manifest, problems)
    intact = [e for e in entries if _verified_file(folder, e.file, e.sha256, f"member {e.name}", problems)]
    config = _scoring_config(manifest, entries, problems, channel)

    members, teacher = [], None
    for entry in intact:
        if entry.kind == "cnn":
            member = _load_cnn(folder, entry, taxonomy, threads, problems)
            members += [member] if member is not None else []
        elif entry.kind == "teacher":
            teacher = _load_teacher(folder, entry, threads, problems)
    if problems:
        raise BundleError(folder, problems)
    return LoadedBundle(folder, manifest, file_sha256(folder / MANIFEST_NAME), taxonomy, members, teacher, config, entries)


def _inside(folder: Path, relative: object, subject: str, problems: list[str]) -> Path | None:
    # A manifest may only point at files inside its own folder.
    if not isinstance(relative, str) or not relative:
        problems.append(f"{subject}: file path {relative!r} is missing or not a string")
        return None
    candidate = folder / relative
    if Path(relative).is_absolute() or not candidate.resolve().is_relative_to(folder.resolve()):
        problems.append(f"{subject}: file path {relative!r} points outside the bundle folder")
        return None
    return candidate


def _verified_file(folder: Path, relative: object, sha256: object, subject: str, problems: list[str]) -> bool:
    path = _inside(folder, relative, subject, problems)
    if path is None:
        return False
    if not path.is_file():
        problems.append(f"{subject}: file {relative} is missing")
        return False
    actual = file_sha256(path)
    if actual != sha256:
        problems.append(f"{subject}: file {relative} has sha256 {actual[:12]}..., the manifest records "
                        f"{str(sha256)[:12]}... (the file was altered or replaced)")
        return False
    return True


def _verified_taxonomy(folder: Path, manifest: dict, problems: list[str]) -> Taxonomy | None:
    section = manifest.get("taxonomy")
    if not isinstance(section, dict):
        problems.append("manifest lacks the taxonomy section {file, sha256}")
        return None
    if not _verified_file(folder, section.get("file"), section.get("sha256"), "taxonomy", problems):
        return None
    try:
        return Taxonomy.from_csv(folder / section["file"])
    except TaxonomyError as exc:
        problems.append(f"taxonomy: {exc}")
        return None


def _member_entries(manifest: dict, problems: list[str]) -> list[MemberEntry]:
    raw = manifest.get("members")
    if not isinstance(raw, list) or not raw:
        problems.append("manifest lists no members")
        return []
    entries = []
    for index, values in enumerate(raw):
        try:
            entries.append(MemberEntry.from_dict(values if isinstance(values, dict) else {}))
        except (TypeError, ValueError) as exc:
            problems.append(f"member #{index + 1}: {exc}")
    for entry in entries:
        if entry.kind not in MEMBER_KINDS:
            problems.append(f"member {entry.name}: kind {entry.kind!r} is not one of {MEMBER_KINDS}")
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"member names {duplicates} appear more than once")
    kinds = [e.kind for e in entries]
    if entries and "cnn" not in kinds:
        problems.append("a bundle needs at least one CNN member")
    if kinds.count("teacher") > 1:
        problems.append(f"a bundle holds at most one teacher member, found {kinds.count('teacher')}")
    return entries


def _scoring_config(
    manifest: dict, entries: list[MemberEntry], problems: list[str], channel: int | None
) -> ScoringConfig | None:
    try:
        config = ScoringConfig.from_dict(dict(manifest.get("scoring") or {}), channel=channel)
    except (TypeError, ValueError) as exc:
        problems.append(f"scoring: {exc}")
        return None
    # Member entries and the blend section both record weights; they must agree.
    for entry in entries:
        recorded = config.teacher_weight if entry.kind == "teacher" else config.blend.weight(entry.name)
        if recorded != entry.weight:
            problems.append(f"member {entry.name}: weight {entry.weight} differs from the scoring section's {recorded}")
    known = {e.name for e in entries if e.kind == "cnn"}
    unknown = sorted(set(config.blend.weights) - known)
    if unknown:
        problems.append(f"scoring.blend.weights names {unknown}, which are not CNN members of this bundle")
    if config.teacher_weight > 0 and not any(e.kind == "teacher" for e in entries):
        problems.append(f"scoring.teacher_weight is {config.teacher_weight} but the bundle has no teacher member")
    return config


def _load_cnn(
    folder: Path, entry: MemberEntry, taxonomy: Taxonomy | None, threads: int | None, problems: list[str]
) -> OnnxMember | None:
    try:
        member = OnnxMember(folder / entry.file, threads=threads, name=entry.name)
    except ModelMetadataError as exc:
        problems.append(f"member {entry.name}: {exc}")
        return None
    if taxonomy is not None and list(member.classes) != taxonomy.labels:
        problems.append(f"member {entry.name}: its {len(member.classes)} classes differ from the bundle taxonomy's "
                        f"{len(taxonomy)} (or their order differs)")
        return None
    return member


def _load_teacher(folder: Path, entry: MemberEntry, threads: int | None, problems: list[str]) -> Teacher | None:
    details = entry.teacher or {}
    subject = f"teacher {entry.name} labels"
    if not _verified_file(folder, details.get("labels_file"), details.get("labels_sha256"), subject, problems):
        return None
    try:
        spec = TeacherSpec(
            name=entry.name,
            model_path=folder / entry.file,
            labels_path=folder / str(details["labels_file"]),
            labels_format=str(details["labels_format"]),
            sample_rate=int(details["sample_rate"]),
            window_samples=int(details["window_samples"]),
            logits_output=str(details["logits_output"]),
            embedding_output=str(details["embedding_output"]),
            licence=entry.licence,
        )
        return Teacher(spec, threads=threads)
    except KeyError as exc:
        problems.append(f"teacher {entry.name}: the manifest lacks {exc.args[0]!r}")
    except (TeacherError, ValueError) as exc:
        problems.append(f"teacher {entry.name}: {exc}")
    return None


def scorer_from_bundle(
    folder: Path | str, threads: int | None = None, channel: int | None = None
) -> tuple[Scorer, Provenance]:
    """Build a scorer with the bundle's members and settings, and return it with its provenance.

    Raises:
        BundleError: The bundle fails verification (see `open_bundle`).
    """
    bundle = open_bundle(folder, threads=threads, channel=channel)
    scorer = Scorer(bundle.members, bundle.taxonomy, bundle.config, bundle.teacher)
    provenance = Provenance(
        kind="bundle",
        identifier=bundle.manifest_sha256[:12],
        sha256=bundle.manifest_sha256,
        members=[e.provenance() for e in bundle.entries],
        licences=bundle.licences,
    )
    log.info("bundle %s (%s): %s; licences: %s", bundle.folder, provenance.identifier,
             ", ".join(f"{e.name} ({e.kind})" for e in bundle.entries), " | ".join(provenance.licences))
    return scorer, provenance
