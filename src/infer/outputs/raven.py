"""Raven Pro selection tables: one tab-separated table per audio file.

Raven reads a selection table by its header names, so the standard columns keep Raven's English
spelling in every language: Selection, View, Channel, Begin Time (s), End Time (s), Low Freq (Hz),
High Freq (Hz). The species and score columns follow them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from infer.atomic import atomic_open
from infer.outputs.detections import Detection

RAVEN_COLUMNS = (
    "Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)",
    "Species Code", "Common Name", "Scientific Name", "Score", "Rank",
)


def write_raven_table(
    path: Path, detections: Iterable[Detection], channel: int = 1, low_hz: float = 0.0, high_hz: float = 16000.0,
) -> int:
    """Write one file's selection table atomically; return the number of selections.

    Args:
        path: The `.txt` table.
        detections: The file's detections, one selection each.
        channel: 1-based channel the selections refer to.
        low_hz: Lower frequency bound of every selection (the model's lowest mel band).
        high_hz: Upper frequency bound (the model's highest mel band).
    """
    count = 0
    with atomic_open(path) as handle:
        handle.write("\t".join(RAVEN_COLUMNS) + "\n")
        for count, d in enumerate(detections, start=1):
            fields = [
                str(count), "Spectrogram 1", str(channel), f"{d.start:.3f}", f"{d.end:.3f}",
                f"{low_hz:.1f}", f"{high_hz:.1f}", d.label, _clean(d.common_name), _clean(d.scientific_name),
                f"{d.score:.4f}", str(d.rank),
            ]
            handle.write("\t".join(fields) + "\n")
    return count


def _clean(text: str) -> str:
    # A tab or newline inside a name would shift Raven's columns.
    return " ".join(text.split())
