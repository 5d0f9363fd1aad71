"""The held-out-site harness: score a site's labelled soundscapes exactly as the field command does.

Only exported models are evaluated, through `infer.pipeline.Scorer` (the class behind
`pantanal infer`): BN-recalibrated ONNX members, time-shift TTA averaged in probability space,
the configured blend and post-processing. The labelled windows come from the dataset's
`train_soundscapes_labels.csv` (exact repeats dropped), and the expected window count of each
file comes from its audio header. Any labelled window or audio window without a scored row is a
coverage gap, and a report with a gap carries no metrics.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from harness.config import HarnessConfig
from harness.metrics import (
    bootstrap_macro_auc,
    group_macro_roc_auc,
    macro_roc_auc,
    padded_cmap,
    per_class_roc_auc,
)
from infer.audio import AudioDecodeError, probe
from infer.loading import Provenance
from infer.pipeline import FileScores, Scorer
from infer.taxonomy import Taxonomy

log = logging.getLogger(__name__)

REPORT_SCHEMA = "1"


class SiteLabelsError(ValueError):
    """The site's labels cannot be evaluated (no labelled audio, unknown labels, misaligned windows)."""


@dataclass
class LabelledWindows:
    """The labelled windows of one site, in file then time order.

    Attributes:
        site: Site number as in file names ("22").
        paths: Audio file of every labelled soundscape with audio, by file name.
        row_ids: Submission row id `<stem>_<end second>` of each window `[N]`.
        files: File name of each window `[N]` (the bootstrap resamples these).
        labels: 0/1 targets `[N, C]` in taxonomy order.
        without_audio: Labelled soundscapes of the site whose audio is not in the dataset.
    """

    site: str
    paths: dict[str, Path]
    row_ids: list[str]
    files: list[str]
    labels: np.ndarray
    without_audio: list[str] = field(default_factory=list)


@dataclass
class Coverage:
    """Files and windows expected versus scored; any entry in `gaps` fails the harness."""

    files_expected: int = 0
    files_scored: int = 0
    windows_expected: int = 0
    windows_scored: int = 0
    audio_windows_expected: int = 0
    audio_windows_scored: int = 0
    gaps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.gaps

    def to_dict(self) -> dict:
        return {
            "ok": self.ok, "files_expected": self.files_expected, "files_scored": self.files_scored,
            "windows_expected": self.windows_expected, "windows_scored": self.windows_scored,
            "audio_windows_expected": self.audio_windows_expected, "audio_windows_scored": self.audio_windows_scored,
            "gaps": list(self.gaps),
        }


@dataclass
class SiteScores:
    """Scores of the labelled windows: `scores[i]` belongs to `windows.row_ids[i]`.

    Rows without a scored window stay NaN, and then `coverage` lists them as gaps.
    """

    windows: LabelledWindows
    scores: np.ndarray
    coverage: Coverage
    file_scores: list[FileScores]


def labelled_site_windows(
    data_root: Path | str, site: str, site_pattern: str, taxonomy: Taxonomy, window_seconds: float
) -> LabelledWindows:
    """Read the labelled windows of `site` and check they fit the taxonomy and the window grid.

    Raises:
        SiteLabelsError: No labelled audio of the site exists, a label is not in the taxonomy, a
            labelled window is not one window of the grid, or one window has conflicting labels.
    """
    from harness.dataset import load_dataset, site_of

    data = load_dataset(data_root, site_pattern)
    present = {p.name: p for p in data.soundscapes}
    rows = [r for r in data.soundscape_labels.itertuples(index=False) if site_of(r.filename, site_pattern) == site]
    without_audio = sorted({r.filename for r in rows if r.filename not in present})
    rows = [r for r in rows if r.filename in present]
    if not rows:
        raise SiteLabelsError(
            f"no labelled soundscape of site S{site} has audio under {data.root} "
            f"({len(without_audio)} labelled file(s) without audio); check --data-root and --site"
        )

    targets, file_of, problems = _window_targets(rows, taxonomy, window_seconds)
    if problems:
        raise SiteLabelsError(f"{len(problems)} problem(s) in the S{site} labels:\n  - " + "\n  - ".join(problems))

    order = sorted(targets, key=lambda rid: (file_of[rid], int(rid.rsplit("_", 1)[1])))
    return LabelledWindows(
        site=site,
        paths={name: present[name] for name in sorted(set(file_of.values()))},
        row_ids=order,
        files=[file_of[rid] for rid in order],
        labels=np.stack([targets[rid] for rid in order]),
        without_audio=without_audio,
    )


def _window_targets(rows: list, taxonomy: Taxonomy, window_seconds: float
                    ) -> tuple[dict[str, np.ndarray], dict[str, str], list[str]]:
    """Build the 0/1 targets and the file name of every labelled window by row id; list the problems found."""
    from harness.dataset import parse_clock, split_labels

    index = taxonomy.index()
    targets: dict[str, np.ndarray] = {}
    file_of: dict[str, str] = {}
    problems: list[str] = []
    for row in rows:
        start, end = parse_clock(row.start), parse_clock(row.end)
        position = start / window_seconds
        if abs(end - start - window_seconds) > 1e-6 or abs(position - round(position)) > 1e-6:
            problems.append(f"{row.filename} {row.start}-{row.end} is not one {window_seconds:g} s window of the grid")
            continue
        target = np.zeros(len(taxonomy), dtype=np.int8)
        for label in split_labels(row.primary_label):
            if label not in index:
                problems.append(f"{row.filename} {row.start}-{row.end}: label {label!r} is not in the taxonomy")
                continue
            target[index[label]] = 1
        rid = f"{Path(row.filename).stem}_{int(round(end))}"
        if rid in targets and not np.array_equal(targets[rid], target):
            problems.append(f"{row.filename} {row.start}-{row.end}: conflicting label rows for the same window")
        targets[rid], file_of[rid] = target, row.filename
    return targets, file_of, problems


def header_windows(path: Path, window_seconds: float) -> int | None:
    """Count the windows the file's header promises (a partial last window counts); None without a length."""
    info = probe(path)
    if info.declared_frames is None:
        return None
    seconds = info.declared_frames / info.sample_rate
    return max(1, math.ceil(seconds / window_seconds - 1e-6))


def score_site(scorer: Scorer, windows: LabelledWindows) -> SiteScores:
    """Score every labelled file of the site with `scorer` and account for every window."""
    coverage = Coverage(files_expected=len(windows.paths), windows_expected=len(windows.row_ids))
    scores = np.full((len(windows.row_ids), len(scorer.taxonomy)), np.nan, dtype=np.float64)
    position = {rid: i for i, rid in enumerate(windows.row_ids)}
    file_scores = []
    for name, path in windows.paths.items():
        try:
            expected = header_windows(path, scorer.window_seconds)
            coverage.audio_windows_expected += expected or 0
            result = scorer.score_file(path)
        except AudioDecodeError as exc:
            coverage.gaps.append(f"{name}: not decodable ({exc.cause})")
            continue
        file_scores.append(result)
        coverage.files_scored += 1
        coverage.audio_windows_scored += result.n_windows
        if expected is not None and result.n_windows != expected:
            coverage.gaps.append(f"{name}: {result.n_windows} windows scored, its header promises {expected}")
        if not np.isfinite(result.scores).all():
            coverage.gaps.append(f"{name}: non-finite scores")
        for rid, row in zip(result.row_ids, result.scores):
            if rid in position:
                scores[position[rid]] = row
                coverage.windows_scored += 1

    missing = [rid for rid, row in zip(windows.row_ids, scores) if np.isnan(row).any()]
    if missing:
        coverage.gaps.append(f"{len(missing)} labelled window(s) without a scored row: {', '.join(missing[:10])}")
    return SiteScores(windows, scores, coverage, file_scores)


def site_metrics(site_scores: SiteScores, taxonomy: Taxonomy, config: HarnessConfig) -> dict:
    """Compute macro ROC-AUC, per-taxon AUC, padded cmAP, bootstrap interval and per-class AUC."""
    labels, scores = site_scores.windows.labels, site_scores.scores
    interval = bootstrap_macro_auc(
        labels, scores, site_scores.windows.files, config.bootstrap.resamples, config.bootstrap.confidence,
        config.bootstrap.seed,
    )
    aucs = per_class_roc_auc(labels, scores)
    positives = labels.sum(axis=0)
    per_class = [
        {
            "label": taxon.label, "scientific_name": taxon.scientific_name, "class_name": taxon.class_name,
            "positives": int(positives[c]), "negatives": int(len(labels) - positives[c]), "auc": _finite(aucs[c]),
        }
        for c, taxon in enumerate(taxonomy.taxa) if positives[c] > 0
    ]
    taxon_auc = group_macro_roc_auc(labels, scores, [t.class_name for t in taxonomy.taxa])
    return {
        "macro_auc": _finite(macro_roc_auc(labels, scores)),
        "padded_cmap": _finite(padded_cmap(labels, scores, config.padded_cmap_rows)),
        "taxon_auc": {name: _finite(value) for name, value in taxon_auc.items()},
        "bootstrap": {
            "low": _finite(interval.low), "high": _finite(interval.high), "std": _finite(interval.std),
            "resamples": interval.resamples, "confidence": config.bootstrap.confidence, "files": len(site_scores.windows.paths),
        },
        "classes_with_positives": len(per_class),
        "classes_with_auc": sum(entry["auc"] is not None for entry in per_class),
        "per_class": per_class,
    }


def build_report(site_scores: SiteScores, scorer: Scorer, provenance: Provenance, config: HarnessConfig) -> dict:
    """Build the JSON report: model provenance, scoring settings, coverage and (when complete) metrics."""
    coverage = site_scores.coverage
    return {
        "schema_version": REPORT_SCHEMA,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "site": site_scores.windows.site,
        "data_root": str(Path(config.data_root).resolve()),
        "taxonomy_sha256": scorer.taxonomy.sha256,
        "model": {
            "kind": provenance.kind, "identifier": provenance.identifier, "sha256": provenance.sha256,
            "source_run_ids": sorted({m["source_run_id"] for m in provenance.members if m.get("source_run_id")}),
            "members": provenance.members,
        },
        "scoring": scoring_settings(scorer),
        "coverage": coverage.to_dict(),
        "labelled_files_without_audio": site_scores.windows.without_audio,
        "metrics": site_metrics(site_scores, scorer.taxonomy, config) if coverage.ok else None,
    }


def scoring_settings(scorer: Scorer) -> dict:
    """Describe the TTA, blend and post-processing the scorer ran with, for the report."""
    settings = scorer.config
    postproc = settings.postproc
    return {
        "tta_shifts": list(settings.tta_shifts),
        "blend": {"mode": settings.blend.mode, "weights": dict(settings.blend.weights)},
        "postproc": None if postproc is None else asdict(postproc),
        "teacher_weight": settings.teacher_weight,
        "members": [member.name for member in scorer.members],
    }


def evaluate(scorer: Scorer, provenance: Provenance, config: HarnessConfig) -> tuple[dict, SiteScores]:
    """Score the configured site with `scorer` and build its report."""
    windows = labelled_site_windows(config.data_root, config.site, config.site_pattern, scorer.taxonomy,
                                    scorer.window_seconds)
    log.info("site S%s: %d labelled window(s) in %d file(s)", windows.site, len(windows.row_ids), len(windows.paths))
    if windows.without_audio:
        log.info("site S%s: %d labelled file(s) have no audio in this dataset and are not expected",
                 windows.site, len(windows.without_audio))
    site_scores = score_site(scorer, windows)
    return build_report(site_scores, scorer, provenance, config), site_scores


def _finite(value: float) -> float | None:
    """Convert a metric for JSON: None for NaN (an undefined AUC), else a float."""
    return None if value is None or math.isnan(value) else float(value)
