"""Detections: the top-k classes of every window, with names, for people rather than scorers.

`--top-k`, `--min-score` and a site species list shape these and the Raven, Audacity and HTML
outputs built from them. The submission CSV never passes through here.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from infer.atomic import atomic_open
from infer.i18n import common_name
from infer.pipeline import FileScores
from infer.taxonomy import Taxonomy

DETECTION_COLUMNS = (
    "file", "start", "end", "label", "scientific_name", "common_name", "class_name", "score", "rank", "bundle_id",
)


@dataclass(frozen=True)
class Detection:
    """One class in the top-k of one window; `common_name` is in the active language."""

    file: str
    start: float
    end: float
    label: str
    scientific_name: str
    common_name: str
    class_name: str
    score: float
    rank: int
    window: int = 0


@dataclass(frozen=True)
class DisplayFilter:
    """Filters of the human-facing outputs.

    Attributes:
        top_k: Classes listed per window.
        min_score: Lowest score listed, 0 to 1.
        allowed: Boolean `[C]` mask of classes a site species list allows; None allows all.
    """

    top_k: int = 3
    min_score: float = 0.0
    allowed: np.ndarray | None = None


def top_detections(
    scores: FileScores, taxonomy: Taxonomy, top_k: int = 3, min_score: float = 0.0,
    allowed: np.ndarray | None = None,
) -> Iterator[Detection]:
    """Yield the `top_k` classes of each window that score at least `min_score`.

    Args:
        scores: One file's scores.
        taxonomy: Class order and names.
        top_k: Classes per window.
        min_score: Lowest score kept.
        allowed: Boolean `[C]` mask of classes that may be shown (a site species list); None = all.
    """
    candidates = np.arange(len(taxonomy)) if allowed is None else np.flatnonzero(allowed)
    for window, row in enumerate(scores.scores):
        order = candidates[np.argsort(-row[candidates], kind="stable")][:top_k]
        for rank, index in enumerate(order, start=1):
            if row[index] < min_score:
                break
            yield _detection(scores, taxonomy, window, int(index), float(row[index]), rank)


def shown_detections(scores: FileScores, taxonomy: Taxonomy, display: DisplayFilter) -> list[Detection]:
    """List the detections the human-facing outputs show for one file."""
    return list(top_detections(scores, taxonomy, display.top_k, display.min_score, display.allowed))


def hidden_detections(scores: FileScores, taxonomy: Taxonomy, display: DisplayFilter) -> list[Detection]:
    """Detections the species list removed: in the unrestricted top-k, but of a class it excludes."""
    if display.allowed is None:
        return []
    unrestricted = top_detections(scores, taxonomy, display.top_k, display.min_score)
    index = taxonomy.index()
    return [d for d in unrestricted if not display.allowed[index[d.label]]]


def detection_rows(detections: Iterable[Detection], bundle_id: str) -> Iterator[list[str]]:
    """CSV rows in `DETECTION_COLUMNS` order."""
    for d in detections:
        yield [
            d.file, f"{d.start:.3f}", f"{d.end:.3f}", d.label, d.scientific_name, d.common_name,
            d.class_name, f"{d.score:.6f}", str(d.rank), bundle_id,
        ]


def write_detection_rows(handle: IO[str], detections: Iterable[Detection], bundle_id: str) -> int:
    """Append detection rows (no header) to an open text file; return the number of rows."""
    writer = csv.writer(handle, lineterminator="\n")
    count = 0
    for row in detection_rows(detections, bundle_id):
        writer.writerow(row)
        count += 1
    return count


def write_detections(path: Path, detections: Iterable[Detection], bundle_id: str = "") -> int:
    """Write the detections CSV atomically; return the number of rows."""
    with atomic_open(path) as handle:
        csv.writer(handle, lineterminator="\n").writerow(DETECTION_COLUMNS)
        return write_detection_rows(handle, detections, bundle_id)


def _detection(scores: FileScores, taxonomy: Taxonomy, window: int, index: int, score: float, rank: int) -> Detection:
    taxon = taxonomy.taxa[index]
    return Detection(
        file=str(scores.path),
        start=float(scores.starts[window]),
        end=float(scores.ends[window]),
        label=taxon.label,
        scientific_name=taxon.scientific_name,
        common_name=common_name(taxon),
        class_name=taxon.class_name,
        score=score,
        rank=rank,
        window=window,
    )
