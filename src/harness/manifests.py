"""Window manifests: every training and evaluation window as one CSV row.

Four tables, written by `build_manifests`:

- `focal.csv`: every 5 s window of every focal clip (the last partial window keeps its row);
- `soundscape_labelled.csv`: labelled soundscape windows outside the held-out sites;
- `heldout.csv`: labelled windows of the held-out sites (S22 by default), for evaluation only;
- `unlabelled.csv`: windows of unlabelled soundscapes outside the held-out sites, plus any extra
  unlabelled recordings, for Noisy Student pseudo-labelling and BatchNorm recalibration.

No audio of a held-out site reaches training in any form: not as labels, pseudo-labels or
BatchNorm statistics.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import soundfile as sf

from harness.dataset import BirdCLEFData, load_dataset, parse_clock, parse_label_list, site_of, split_labels
from infer.atomic import atomic_write_text

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = (
    "window_id", "row_id", "path", "start_s", "end_s", "kind", "labels", "secondary", "site", "licence",
)
MANIFEST_NAMES = ("focal", "soundscape_labelled", "heldout", "unlabelled")


@dataclass
class ManifestConfig:
    """Manifest settings.

    Attributes:
        window_seconds: Window length.
        heldout_sites: Sites whose audio never reaches training.
        extra_unlabelled: Recordings outside the dataset usable as unlabelled soundscape audio.
        max_focal_clips: Cap on focal clips (the phase-0 baseline uses 3,000); None = all.
        max_windows_per_clip: Cap on windows per focal clip, from the start; None = all.
    """

    window_seconds: float = 5.0
    heldout_sites: tuple[str, ...] = ("22",)
    extra_unlabelled: tuple[str, ...] = ()
    max_focal_clips: int | None = None
    max_windows_per_clip: int | None = None


def _duration(path: str) -> float | None:
    try:
        return sf.info(path).duration
    except (sf.LibsndfileError, RuntimeError, FileNotFoundError):
        return None


def _row(window_id, row_id, path, start, end, kind, labels, secondary="", site="", licence="") -> dict:
    return dict(window_id=window_id, row_id=row_id, path=path, start_s=round(start, 3), end_s=round(end, 3),
                kind=kind, labels=labels, secondary=secondary, site=site, licence=licence)


def _windows_of(duration: float, window: float, cap: int | None) -> list[tuple[float, float]]:
    count = max(1, math.ceil(duration / window - 1e-9))
    if cap is not None:
        count = min(count, cap)
    return [(k * window, min((k + 1) * window, duration)) for k in range(count)]


def focal_windows(data: BirdCLEFData, config: ManifestConfig, skipped: list[str]) -> pd.DataFrame:
    known = set(data.taxonomy.labels)
    train = data.train if config.max_focal_clips is None else data.train.head(config.max_focal_clips)
    rows = []
    for clip in train.itertuples(index=False):
        duration = _duration(clip.path)
        if duration is None or duration == 0 or clip.primary_label not in known:
            skipped.append(clip.filename)
            continue
        secondary = ";".join(label for label in parse_label_list(clip.secondary_labels) if label in known)
        stem = Path(clip.filename).stem
        for index, (start, end) in enumerate(_windows_of(duration, config.window_seconds, config.max_windows_per_clip)):
            rows.append(_row(f"{clip.filename}:{index}", f"{stem}_{int(round(start + config.window_seconds))}",
                             clip.path, start, end, "focal", clip.primary_label, secondary,
                             licence=getattr(clip, "license", "")))
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def soundscape_windows(data: BirdCLEFData, config: ManifestConfig) -> pd.DataFrame:
    known = set(data.taxonomy.labels)
    present = {p.name: p for p in data.soundscapes}
    rows = []
    for label_row in data.soundscape_labels.itertuples(index=False):
        path = present.get(label_row.filename)
        if path is None:
            continue
        start, end = parse_clock(label_row.start), parse_clock(label_row.end)
        labels = ";".join(label for label in split_labels(label_row.primary_label) if label in known)
        site = site_of(label_row.filename, data.site_pattern) or ""
        rows.append(_row(f"{label_row.filename}:{int(start)}", f"{path.stem}_{int(round(end))}",
                         str(path), start, end, "soundscape", labels, site=site))
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def unlabelled_windows(data: BirdCLEFData, config: ManifestConfig) -> pd.DataFrame:
    labelled = set(data.soundscape_labels["filename"])
    sources = [p for p in data.soundscapes if p.name not in labelled]
    sources += [Path(p) for p in config.extra_unlabelled]
    rows = []
    for path in sources:
        site = site_of(path.name, data.site_pattern) or ""
        if site in config.heldout_sites:
            continue
        duration = _duration(str(path))
        if not duration:
            log.warning("unlabelled recording %s is unreadable or empty; skipped", path)
            continue
        for start, end in _windows_of(duration, config.window_seconds, None):
            rows.append(_row(f"{path.name}:{int(start)}", f"{path.stem}_{int(round(start + config.window_seconds))}",
                             str(path.resolve()), start, end, "unlabelled", "", site=site))
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def build_manifests(root: Path | str, out_dir: Path | str, config: ManifestConfig,
                    site_pattern: str | None = None) -> dict[str, pd.DataFrame]:
    """Write the four manifests and `summary.json` into `out_dir`; return the tables.

    Effects:
        Writes focal.csv, soundscape_labelled.csv, heldout.csv, unlabelled.csv, summary.json.
    """
    data = load_dataset(root, site_pattern) if site_pattern else load_dataset(root)
    skipped: list[str] = []
    soundscapes = soundscape_windows(data, config)
    heldout_mask = soundscapes["site"].isin(config.heldout_sites)
    tables = {
        "focal": focal_windows(data, config, skipped),
        "soundscape_labelled": soundscapes[~heldout_mask].reset_index(drop=True),
        "heldout": soundscapes[heldout_mask].reset_index(drop=True),
        "unlabelled": unlabelled_windows(data, config),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        atomic_write_text(out_dir / f"{name}.csv", table.to_csv(index=False))
    summary = {
        "root": str(data.root),
        "taxonomy_sha256": data.taxonomy.sha256,
        "heldout_sites": list(config.heldout_sites),
        "windows": {name: len(table) for name, table in tables.items()},
        "skipped_focal_clips": skipped,
        "duplicate_label_rows_dropped": data.duplicate_label_rows,
    }
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    log.info("manifests in %s: %s", out_dir, summary["windows"])
    if skipped:
        log.warning("%d focal clip(s) skipped (missing, unreadable or unknown label): %s", len(skipped), skipped[:10])
    return tables


def read_manifest(path: Path | str) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"labels": str, "secondary": str, "site": str, "licence": str}, keep_default_na=False)
    return frame
