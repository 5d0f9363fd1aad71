"""Read and validate a dataset in the BirdCLEF+ 2026 layout.

    <root>/taxonomy.csv                     class list; row order = class order everywhere
    <root>/train.csv                        focal clips: primary_label, secondary_labels, filename, ...
    <root>/train_audio/<label>/<id>.ogg     focal recordings
    <root>/train_soundscapes/*.ogg          60 s soundscapes, site in the name (`_S22_`)
    <root>/train_soundscapes_labels.csv     filename, start, end (HH:MM:SS), primary_label (`;`-separated)

Problems are collected, counted and named, never silently dropped: `check_dataset` returns a
`DatasetReport` that lists missing audio, labels absent from the taxonomy, duplicated label rows
(the published labels file repeats every row) and unreadable files.
"""

from __future__ import annotations

import ast
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from infer.audio import AudioDecodeError, declared_length_error, probe
from infer.taxonomy import Taxonomy

log = logging.getLogger(__name__)

DEFAULT_SITE_PATTERN = r"_S(\d+)_"
TRAIN_COLUMNS = ("primary_label", "secondary_labels", "filename")
LABEL_COLUMNS = ("filename", "start", "end", "primary_label")
REQUIRED_ENTRIES = ("taxonomy.csv", "train.csv")
OPTIONAL_ENTRIES = ("train_audio/", "train_soundscapes/", "train_soundscapes_labels.csv")


class DatasetError(ValueError):
    """The dataset cannot be read at all (missing folder or required file or column)."""


@dataclass
class DatasetReport:
    """Findings of `check_dataset`; `errors` block training, `warnings` do not."""

    root: str
    counts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    sites: dict[str, dict[str, int]] = field(default_factory=dict)

    def error(self, kind: str, names: list[str]) -> None:
        if names:
            self.errors.setdefault(kind, []).extend(names)

    def warn(self, kind: str, names: list[str]) -> None:
        if names:
            self.warnings.setdefault(kind, []).extend(names)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, object]:
        return {"root": self.root, "ok": self.ok, "counts": self.counts, "errors": self.errors,
                "warnings": self.warnings, "sites": self.sites}

    def format(self, max_names: int | None = 10) -> str:
        """Human-readable report: counts, then each problem with its count and names.

        Args:
            max_names: Names shown per problem; None shows every one.
        """
        lines = [f"dataset {self.root}"]
        lines += [f"  {key}: {value}" for key, value in self.counts.items()]
        if self.sites:
            lines.append("  sites: " + ", ".join(
                f"S{site} ({v['soundscapes']} soundscapes, {v['labelled_windows']} labelled windows)"
                for site, v in sorted(self.sites.items())
            ))
        for title, group in (("ERROR", self.errors), ("WARNING", self.warnings)):
            for kind, names in group.items():
                listed = ", ".join(names[:max_names])
                if max_names is not None and len(names) > max_names:
                    listed += f", ... ({len(names) - max_names} more: --all-names lists them, --json writes them)"
                lines.append(f"{title} {kind} ({len(names)}): {listed}")
        lines.append("OK" if self.ok else f"{sum(len(v) for v in self.errors.values())} problem(s) must be fixed before training")
        return "\n".join(lines)


def site_of(filename: str, pattern: str = DEFAULT_SITE_PATTERN) -> str | None:
    """Recorder site of a soundscape file name (`..._S22_...` gives "22"), or None."""
    match = re.search(pattern, filename)
    return match.group(1) if match else None


def parse_label_list(value: object) -> list[str]:
    """Labels of a `secondary_labels` cell, written as a Python list string such as "['a', 'b']"."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() in ("", "[]"):
        return []
    try:
        parsed = ast.literal_eval(str(value))
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"not a Python list of labels: {value!r}") from exc
    if not isinstance(parsed, (list, tuple)):
        raise ValueError(f"not a Python list of labels: {value!r}")
    return [str(v).strip() for v in parsed if str(v).strip()]


def parse_clock(value: str) -> float:
    """Seconds of an `HH:MM:SS` (or `MM:SS`, or plain seconds) time."""
    parts = str(value).strip().split(":")
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"not a time: {value!r}")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + float(part)
    return seconds


@dataclass
class BirdCLEFData:
    """The tables of one dataset, read and lightly normalised.

    Attributes:
        root: Dataset folder.
        taxonomy: Class list.
        train: train.csv with `secondary` (parsed list) and `path` (absolute audio path) added.
        soundscape_labels: Deduplicated label rows with `start_s`, `end_s`, `labels` (list), `site`.
        soundscapes: Every soundscape audio file.
        duplicate_label_rows: Label rows dropped as exact repeats.
    """

    root: Path
    taxonomy: Taxonomy
    train: pd.DataFrame
    soundscape_labels: pd.DataFrame
    soundscapes: list[Path]
    duplicate_label_rows: int
    site_pattern: str = DEFAULT_SITE_PATTERN


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetError(f"{path} not found; is data.root the folder of a BirdCLEF-layout dataset?")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DatasetError(f"{path} lacks the columns {missing} (has {list(frame.columns)})")
    return frame


def load_dataset(root: Path | str, site_pattern: str = DEFAULT_SITE_PATTERN) -> BirdCLEFData:
    """Read the tables of a BirdCLEF-layout dataset (audio is not opened here)."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise DatasetError(f"data.root={root} is not a folder")
    missing = [name for name in REQUIRED_ENTRIES if not (root / name).is_file()]
    if missing:
        absent = [name for name in OPTIONAL_ENTRIES if not (root / name.rstrip("/")).exists()]
        raise DatasetError(
            f"{root} lacks {', '.join(missing + absent)}; point data.root at the folder of a "
            "BirdCLEF+ 2026 download")
    taxonomy = Taxonomy.from_csv(root / "taxonomy.csv")

    train = _read_csv(root / "train.csv", TRAIN_COLUMNS)
    train["path"] = [str(root / "train_audio" / name) for name in train["filename"]]

    labels_path = root / "train_soundscapes_labels.csv"
    if labels_path.is_file():
        raw = _read_csv(labels_path, LABEL_COLUMNS)
    else:
        raw = pd.DataFrame(columns=list(LABEL_COLUMNS))
    labels = raw.drop_duplicates(subset=list(LABEL_COLUMNS)).reset_index(drop=True)
    duplicates = len(raw) - len(labels)
    if duplicates:
        log.info("%s: dropped %d duplicated label rows (%d remain)", labels_path.name, duplicates, len(labels))

    soundscape_dir = root / "train_soundscapes"
    soundscapes = sorted(p for p in soundscape_dir.iterdir() if p.is_file()) if soundscape_dir.is_dir() else []
    return BirdCLEFData(root, taxonomy, train, labels, soundscapes, duplicates, site_pattern)


def check_dataset(root: Path | str, site_pattern: str = DEFAULT_SITE_PATTERN, open_audio: bool = True,
                  progress=None) -> DatasetReport:
    """Validate a dataset; every problem is counted and named in the report.

    Args:
        root: Dataset folder.
        site_pattern: Regex whose first group is the site in a soundscape file name.
        open_audio: Open every audio file to find unreadable ones (slow on the full dataset).
        progress: Optional callable wrapping an iterable (a progress bar).
    """
    data = load_dataset(root, site_pattern)
    report = DatasetReport(root=str(data.root))
    report.warn("optional parts of the layout that are absent",
                [name for name in OPTIONAL_ENTRIES if not (data.root / name.rstrip("/")).exists()])
    known = set(data.taxonomy.labels)
    report.counts["classes"] = len(data.taxonomy)
    report.counts["focal_clips"] = len(data.train)

    _check_focal(data, known, report)
    _check_soundscapes(data, known, report)
    if open_audio:
        audio = list(data.train["path"]) + [str(p) for p in data.soundscapes]
        report.error("unreadable audio files", _unreadable(audio, progress))
    return report


def _check_focal(data: BirdCLEFData, known: set[str], report: DatasetReport) -> None:
    missing_audio = [name for name, path in zip(data.train["filename"], data.train["path"]) if not Path(path).is_file()]
    report.error("focal clips listed in train.csv whose audio is missing", missing_audio)

    unknown = Counter(label for label in data.train["primary_label"] if label not in known)
    report.error("primary labels of train.csv not in the taxonomy", [f"{k} x{v}" for k, v in sorted(unknown.items())])

    unknown_secondary: Counter[str] = Counter()
    bad_cells = []
    for index, cell in enumerate(data.train["secondary_labels"]):
        try:
            unknown_secondary.update(label for label in parse_label_list(cell) if label not in known)
        except ValueError:
            bad_cells.append(f"row {index + 2}: {cell!r}")
    report.error("unparsable secondary_labels cells in train.csv", bad_cells)
    report.warn("secondary labels not in the taxonomy (ignored in training)", [f"{k} x{v}" for k, v in sorted(unknown_secondary.items())])


def _check_soundscapes(data: BirdCLEFData, known: set[str], report: DatasetReport) -> None:
    labels = data.soundscape_labels
    report.counts["soundscapes"] = len(data.soundscapes)
    report.counts["soundscape_label_rows"] = len(labels)
    if data.duplicate_label_rows:
        report.warn("duplicated rows in train_soundscapes_labels.csv (dropped)", [f"{data.duplicate_label_rows} rows"])

    unknown: Counter[str] = Counter()
    bad_times = []
    for row in labels.itertuples(index=False):
        unknown.update(label for label in split_labels(row.primary_label) if label not in known)
        try:
            start, end = parse_clock(row.start), parse_clock(row.end)
            if end <= start:
                bad_times.append(f"{row.filename} {row.start}-{row.end}")
        except ValueError:
            bad_times.append(f"{row.filename} {row.start}-{row.end}")
    report.error("soundscape labels not in the taxonomy", [f"{k} x{v}" for k, v in sorted(unknown.items())])
    report.error("soundscape label rows with invalid start/end times", bad_times)

    present = {p.name for p in data.soundscapes}
    labelled = sorted(set(labels["filename"]))
    report.counts["labelled_soundscapes"] = len(labelled)
    report.counts["labelled_soundscapes_with_audio"] = sum(name in present for name in labelled)
    # A download may hold only some of the labelled soundscapes. Absent audio only shrinks the
    # labelled set, so it is a warning with names, not an error.
    report.warn("labelled soundscapes whose audio is missing", [n for n in labelled if n not in present])

    no_site = [p.name for p in data.soundscapes if site_of(p.name, data.site_pattern) is None]
    report.warn(f"soundscape names without a site matching {data.site_pattern!r}", no_site)
    windows_per_file = Counter(labels["filename"])
    for path in data.soundscapes:
        site = site_of(path.name, data.site_pattern)
        if site is None:
            continue
        entry = report.sites.setdefault(site, {"soundscapes": 0, "labelled_windows": 0})
        entry["soundscapes"] += 1
        entry["labelled_windows"] += windows_per_file.get(path.name, 0)


def split_labels(cell: str) -> list[str]:
    return [part.strip() for part in str(cell).split(";") if part.strip()]


def _unreadable(paths: list[str], progress) -> list[str]:
    # The field command's own header check, so `data check` and `pantanal infer` name a broken
    # file's problem with the same words (empty, no audio, truncated, unreadable).
    problems = []
    iterator = progress(paths) if progress else paths
    for path in iterator:
        if not Path(path).is_file():
            continue  # already reported as missing
        try:
            error = declared_length_error(probe(Path(path)))
        except AudioDecodeError as exc:
            error = exc
        if error is not None:
            problems.append(f"{path}: {error.code}: {error.cause}")
    return problems


