"""The class list: `taxonomy.csv` row order is the class order of every model and output."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

TAXONOMY_COLUMNS = ("primary_label", "inat_taxon_id", "scientific_name", "common_name", "class_name")

_BINOMIAL = re.compile(r"^([A-Z][a-z]+) [a-z][a-z-]+")


class TaxonomyError(ValueError):
    """The taxonomy file is missing, malformed, or disagrees with a model."""


@dataclass(frozen=True)
class Taxon:
    label: str
    scientific_name: str
    common_name: str
    class_name: str
    inat_taxon_id: str = ""

    @property
    def genus(self) -> str | None:
        """Genus of a binomial name, or None for sonotypes such as "Insect son01"."""
        match = _BINOMIAL.match(self.scientific_name)
        if match is None or self.scientific_name.startswith("Insect son"):
            return None
        return match.group(1)


@dataclass(frozen=True)
class Taxonomy:
    """Ordered classes and the sha256 of the file they came from."""

    taxa: tuple[Taxon, ...]
    sha256: str

    @property
    def labels(self) -> list[str]:
        return [t.label for t in self.taxa]

    def __len__(self) -> int:
        return len(self.taxa)

    def index(self) -> dict[str, int]:
        return {t.label: i for i, t in enumerate(self.taxa)}

    def to_records(self) -> list[dict[str, str]]:
        return [
            {
                "primary_label": t.label,
                "inat_taxon_id": t.inat_taxon_id,
                "scientific_name": t.scientific_name,
                "common_name": t.common_name,
                "class_name": t.class_name,
            }
            for t in self.taxa
        ]

    @classmethod
    def from_csv(cls, path: Path | str) -> Taxonomy:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TaxonomyError(f"cannot read taxonomy {path}: {exc}") from exc
        text = data.decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in TAXONOMY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise TaxonomyError(f"{path} lacks the columns {missing}; expected {list(TAXONOMY_COLUMNS)}")
        taxa = tuple(_taxon(row) for row in reader)
        _check_unique(taxa, str(path))
        return cls(taxa=taxa, sha256=hashlib.sha256(data).hexdigest())

    @classmethod
    def from_records(cls, records: list[dict[str, str]], sha256: str) -> Taxonomy:
        taxa = tuple(_taxon(r) for r in records)
        _check_unique(taxa, "model metadata")
        return cls(taxa=taxa, sha256=sha256)


def _taxon(row: dict[str, str]) -> Taxon:
    return Taxon(
        label=row["primary_label"].strip(),
        scientific_name=row["scientific_name"].strip(),
        common_name=row["common_name"].strip(),
        class_name=row["class_name"].strip(),
        inat_taxon_id=str(row.get("inat_taxon_id", "")).strip(),
    )


def _check_unique(taxa: tuple[Taxon, ...], source: str) -> None:
    seen: set[str] = set()
    duplicates = sorted({t.label for t in taxa if t.label in seen or seen.add(t.label)})
    if duplicates:
        raise TaxonomyError(f"{source} lists these labels more than once: {duplicates}")
