"""Site species lists: which taxa the human-facing outputs may show.

A list is a text file with one taxon per line, named by its taxonomy label (`22961`), its
scientific name (`Leptodactylus podicipinus`, any case and spacing) or BirdNET's
`Scientific name_Common name` form. Blank lines and `#` comments are ignored. A UTF-8 byte-order
mark and Windows line endings are accepted. A file that is not UTF-8 is read as Windows-1252,
the encoding of Notepad's "ANSI" files. A name the taxonomy does not know is an error, because a
typo would otherwise hide a species without a word.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infer.i18n import _
from infer.taxonomy import Taxonomy


class SpeciesListError(ValueError):
    """A species list cannot be read or names taxa the taxonomy does not contain."""


@dataclass(frozen=True)
class SpeciesList:
    """The taxa a site list allows.

    Attributes:
        path: The list file.
        labels: Taxonomy labels of the allowed taxa.
        sha256: sha256 of the file, recorded with the outputs it shaped.
    """

    path: Path
    labels: frozenset[str]
    sha256: str

    def mask(self, taxonomy: Taxonomy) -> np.ndarray:
        """Boolean `[C]` mask over the taxonomy's classes, True where the list allows the class."""
        return np.array([label in self.labels for label in taxonomy.labels], dtype=bool)


def load_species_list(path: Path, taxonomy: Taxonomy) -> SpeciesList:
    """Read a species list and resolve every entry to a taxonomy label.

    Raises:
        SpeciesListError: The file cannot be read, lists nothing, or names unknown taxa (all of
            them are listed, with line numbers).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SpeciesListError(_("cannot read the species list %s: %s") % (path, exc.strerror or exc)) from exc
    lookup = _name_lookup(taxonomy)
    labels: set[str] = set()
    unknown: list[str] = []
    for number, entry in _entries(_decode(data)):
        label = _resolve(entry, lookup)
        if label is None:
            unknown.append(f"{number}: {entry}")
        else:
            labels.add(label)
    if unknown:
        raise SpeciesListError(
            _("the species list %s names taxa that are not in the taxonomy (line: entry):\n  %s\n"
              "Use taxonomy labels (e.g. %s) or scientific names (e.g. %s).")
            % (path, "\n  ".join(unknown), taxonomy.taxa[0].label, taxonomy.taxa[0].scientific_name)
        )
    if not labels:
        raise SpeciesListError(_("the species list %s names no taxa") % path)
    return SpeciesList(path=Path(path), labels=frozenset(labels), sha256=hashlib.sha256(data).hexdigest())


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _entries(text: str) -> list[tuple[int, str]]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.append((number, entry))
    return entries


def _normalise(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip().casefold()


def _name_lookup(taxonomy: Taxonomy) -> dict[str, str]:
    lookup = {}
    for taxon in taxonomy.taxa:
        lookup[_normalise(taxon.scientific_name)] = taxon.label
        lookup[_normalise(taxon.label)] = taxon.label
    return lookup


def _resolve(entry: str, lookup: dict[str, str]) -> str | None:
    label = lookup.get(_normalise(entry))
    if label is None and "_" in entry:
        label = lookup.get(_normalise(entry.split("_", 1)[0]))
    return label
