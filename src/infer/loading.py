"""Build a `Scorer` from what the user names: one exported ONNX model (bundles: `infer.bundle`)."""

from __future__ import annotations

from pathlib import Path

from infer.member import ModelMetadataError, OnnxMember
from infer.pipeline import Scorer, ScoringConfig
from infer.taxonomy import Taxonomy, TaxonomyError


def taxonomy_for(member: OnnxMember, taxonomy_path: Path | None) -> Taxonomy:
    """The taxonomy named by the user, else the one embedded in the model at export."""
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
) -> Scorer:
    member = OnnxMember(model_path, threads=threads)
    return Scorer([member], taxonomy_for(member, taxonomy_path), config)
