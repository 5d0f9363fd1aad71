"""Audacity label tracks: `start<TAB>end<TAB>label` per line, imported with File > Import > Labels."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from infer.atomic import atomic_open
from infer.outputs.detections import Detection


def write_audacity_labels(path: Path, detections: Iterable[Detection]) -> int:
    """Write one file's labels atomically; return the number of labels."""
    count = 0
    with atomic_open(path) as handle:
        for d in detections:
            name = " ".join(d.common_name.split())
            handle.write(f"{d.start:.6f}\t{d.end:.6f}\t{name} ({d.score:.2f})\n")
            count += 1
    return count
