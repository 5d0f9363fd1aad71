"""Build a `Scorer` from what the user names: one exported ONNX model or a bundle directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infer.member import ModelMetadataError, OnnxMember, file_sha256
from infer.pipeline import Scorer, ScoringConfig
from infer.taxonomy import Taxonomy, TaxonomyError


@dataclass
class Provenance:
    """Where the scores come from, for reports and output files.

    Attributes:
        kind: "model" or "bundle".
        identifier: Short id written into outputs (bundle manifest sha256, or model file sha256), 12 hex digits.
        sha256: Full sha256 of the model file or of the bundle manifest.
        members: One dict per member: name, kind, file, sha256, source run, stage, licence, decision.
        licences: Licences of every member.
    """

    kind: str
    identifier: str
    sha256: str
    members: list[dict] = field(default_factory=list)
    licences: list[str] = field(default_factory=list)


def taxonomy_for(member: OnnxMember, taxonomy_path: Path | None) -> Taxonomy:
    """Return the taxonomy named by the user, else the one embedded in the model at export."""
    if taxonomy_path is not None:
        taxonomy = Taxonomy.from_csv(taxonomy_path)
        if taxonomy.sha256 != member.metadata.taxonomy_sha256:
            raise TaxonomyError(
                f"{taxonomy_path} (sha256 {taxonomy.sha256[:12]}) is not the taxonomy {member.path} "
                f"was trained with (sha256 {member.metadata.taxonomy_sha256[:12]})"
            )
        return taxonomy
    embedded = member.metadata.taxonomy()
    if embedded is None:
        raise ModelMetadataError(f"{member.path} carries no taxonomy rows; pass --taxonomy taxonomy.csv")
    return embedded


def scorer_from_model(
    model_path: Path, config: ScoringConfig, taxonomy_path: Path | None = None, threads: int | None = None
) -> tuple[Scorer, Provenance]:
    member = OnnxMember(model_path, threads=threads)
    sha256 = file_sha256(model_path)
    meta = member.metadata
    provenance = Provenance(
        kind="model",
        identifier=sha256[:12],
        sha256=sha256,
        members=[{
            "name": member.name, "kind": "cnn", "file": str(model_path), "sha256": sha256,
            "source_run_id": meta.source_run_id, "stage": meta.stage, "licence": meta.extra.get("licence", "unknown"),
        }],
        licences=[meta.extra.get("licence", "unknown")],
    )
    return Scorer([member], taxonomy_for(member, taxonomy_path), config), provenance


def load_scorer(
    model: Path | None = None,
    bundle: Path | None = None,
    config: ScoringConfig | None = None,
    taxonomy_path: Path | None = None,
    threads: int | None = None,
) -> tuple[Scorer, Provenance]:
    """A scorer and its provenance for exactly one of `model` (an ONNX file) or `bundle` (a folder).

    A bundle carries its own TTA, blend and post-processing settings; `config` applies to a single
    model (None = defaults).
    """
    if (model is None) == (bundle is None):
        raise ValueError("name exactly one of a model (--model file.onnx) or a bundle (--bundle folder)")
    if model is not None:
        return scorer_from_model(Path(model), config or ScoringConfig(), taxonomy_path, threads)
    from infer.bundle import scorer_from_bundle

    return scorer_from_bundle(Path(bundle), threads=threads)
