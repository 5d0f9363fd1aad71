"""Detections: the top-k classes of every window, with names, for people rather than scorers."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infer.atomic import atomic_open
from infer.pipeline import FileScores
from infer.taxonomy import Taxonomy

DETECTION_COLUMNS = (
    "file", "start", "end", "label", "scientific_name", "common_name", "class_name", "score", "rank", "bundle_id",
)


@dataclass(frozen=True)
class Detection:
    file: str
    start: float
    end: float
    label: str
    scientific_name: str
    common_name: str
    class_name: str
    score: float
    rank: int


def top_detections(
    scores: FileScores, taxonomy: Taxonomy, top_k: int = 3, min_score: float = 0.0,
    allowed: np.ndarray | None = None,
) -> Iterator[Detection]:
    """The `top_k` classes of each window scoring at least `min_score`.

    Args:
        allowed: Boolean `[C]` mask of classes that may be shown (a site species list); None = all.
    """
    for window, row in enumerate(scores.scores):
        candidates = np.arange(len(row)) if allowed is None else np.flatnonzero(allowed)
        order = candidates[np.argsort(-row[candidates], kind="stable")][:top_k]
        for rank, index in enumerate(order, start=1):
            if row[index] < min_score:
                break
            taxon = taxonomy.taxa[index]
            yield Detection(
                file=str(scores.path),
                start=float(scores.starts[window]),
                end=float(scores.ends[window]),
                label=taxon.label,
                scientific_name=taxon.scientific_name,
                common_name=taxon.common_name,
                class_name=taxon.class_name,
                score=float(row[index]),
                rank=rank,
            )


def write_detections(path: Path, detections: Iterable[Detection], bundle_id: str = "") -> int:
    """Write the detections CSV atomically; return the number of rows."""
    count = 0
    with atomic_open(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(DETECTION_COLUMNS)
        for d in detections:
            writer.writerow([
                d.file, f"{d.start:.3f}", f"{d.end:.3f}", d.label, d.scientific_name, d.common_name,
                d.class_name, f"{d.score:.6f}", d.rank, bundle_id,
            ])
            count += 1
    return count
