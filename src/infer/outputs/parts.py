"""Per-file outputs under `<out>/files/<key>/`, written as each file finishes, so a batch can resume.

One folder per input file holds:

- `scores.npz`: window scores `[W, C]` float32, row ids, start and end times; every other part
  can be rebuilt from it;
- `submission.csv`: the file's submission rows, without the header;
- `detections.csv`, `raven.txt`, `audacity.txt`: its human-facing outputs (those requested);
- `spectrogram.png`: its spectrogram, when the HTML report is requested;
- `done.json`: written last, atomically. It records what produced the parts (source file
  identity, scoring fingerprint, display fingerprint) and the sha256 of each part. A folder
  without a valid `done.json` is incomplete and its file is processed again.

A file that failed because of its content (empty, truncated, unreadable...) gets `failed.json`
instead, with the same identity and fingerprint, so a resumed run reports it again without
decoding it again until the file or the settings change.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from infer.atomic import atomic_open, atomic_write_text
from infer.audio import AudioInfo, DecodeReport
from infer.member import file_sha256
from infer.pipeline import FileScores

SCHEMA_VERSION = 1
DONE = "done.json"
FAILED = "failed.json"
SCORES = "scores.npz"
SUBMISSION = "submission.csv"
DETECTIONS = "detections.csv"
RAVEN = "raven.txt"
AUDACITY = "audacity.txt"
SPECTROGRAM = "spectrogram.png"


def part_key(path: Path) -> str:
    """Folder name for one input: its sanitised stem plus a hash of its absolute path.

    Files with the same name in different folders get different keys; the stem keeps the
    folder recognisable. Letters outside ASCII are kept (normalised to NFC).
    """
    resolved = str(Path(path).resolve())
    digest = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    stem = unicodedata.normalize("NFC", Path(path).stem)
    safe = re.sub(r"[^\w.-]+", "_", stem).strip("._")[:60] or "audio"
    return f"{safe}-{digest}"


def source_identity(path: Path) -> dict[str, Any]:
    """Identify an input between runs by its absolute path, size and modification time."""
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def fingerprint(values: dict[str, Any]) -> str:
    """sha256 of a JSON-serialisable settings dict, independent of key order."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def write_scores(directory: Path, scores: FileScores) -> None:
    with atomic_open(directory / SCORES, "wb") as handle:
        np.savez(
            handle,
            scores=scores.scores.astype(np.float32),
            starts=scores.starts.astype(np.float64),
            ends=scores.ends.astype(np.float64),
            row_ids=np.array(scores.row_ids, dtype=np.str_),
        )


def load_scores(directory: Path, record: dict[str, Any], source: Path) -> FileScores:
    """Rebuild a file's `FileScores` from its part folder (no member or teacher scores)."""
    info, report = decode_objects(record)
    with np.load(directory / SCORES, allow_pickle=False) as data:
        return FileScores(
            path=source,
            row_ids=[str(r) for r in data["row_ids"]],
            starts=data["starts"],
            ends=data["ends"],
            scores=data["scores"],
            member_scores={},
            teacher_scores=None,
            info=info,
            report=report,
        )


def decode_record(info: AudioInfo, report: DecodeReport) -> dict[str, Any]:
    """Serialise the header and decode facts of a file for its done record."""
    return {"info": {**asdict(info), "path": str(info.path)}, "report": asdict(report)}


def decode_objects(record: dict[str, Any]) -> tuple[AudioInfo, DecodeReport]:
    """Rebuild the `AudioInfo` and `DecodeReport` stored in a done record."""
    info = AudioInfo(**{**record["info"], "path": Path(record["info"]["path"])})
    return info, DecodeReport(**record["report"])


def write_done(directory: Path, record: dict[str, Any], part_names: list[str]) -> dict[str, Any]:
    """Hash the parts, then write `done.json` atomically; return the record written."""
    record = {**record, "schema": SCHEMA_VERSION, "parts": {n: file_sha256(directory / n) for n in part_names}}
    (directory / FAILED).unlink(missing_ok=True)
    atomic_write_text(directory / DONE, json.dumps(record, indent=1, ensure_ascii=False))
    return record


def read_done(directory: Path) -> dict[str, Any] | None:
    """Read the done record of a part folder; None when it is missing or unreadable."""
    return _read_record(directory / DONE)


def write_failed(directory: Path, record: dict[str, Any]) -> None:
    """Record a content failure; any done record of an earlier version of the file goes."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / DONE).unlink(missing_ok=True)
    atomic_write_text(directory / FAILED, json.dumps({**record, "schema": SCHEMA_VERSION}, indent=1, ensure_ascii=False))


def read_failed(directory: Path, expected: dict[str, Any]) -> dict[str, Any] | None:
    """Read the failure record of a part folder; None unless it matches `expected` source and scoring."""
    record = _read_record(directory / FAILED)
    if record is None or any(record.get(key) != expected[key] for key in ("source", "scoring")):
        return None
    return record


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("schema") == SCHEMA_VERSION else None


def invalid_reason(directory: Path, record: dict[str, Any] | None, expected: dict[str, Any], required: list[str]) -> str | None:
    """Why a part folder cannot be reused, or None when it is complete and valid.

    Args:
        directory: The part folder.
        record: Its done record (None when missing).
        expected: `source` identity and `scoring` fingerprint the parts must have been made with.
        required: Part names the current run needs.
    """
    if record is None:
        return "no done record"
    for key in ("source", "scoring"):
        if record.get(key) != expected[key]:
            return f"{key} changed"
    parts = record.get("parts", {})
    for name in required:
        if name not in parts:
            return f"{name} was not produced"
    for name, digest in parts.items():
        if not (directory / name).is_file() or file_sha256(directory / name) != digest:
            return f"{name} is missing or was modified"
    return _row_count_problem(directory, record.get("rows"))


def _row_count_problem(directory: Path, rows: Any) -> str | None:
    with open(directory / SUBMISSION, "rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    if not isinstance(rows, int) or rows < 1 or lines != rows:
        return f"{SUBMISSION} holds {lines} rows, the record says {rows}"
    return None
