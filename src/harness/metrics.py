"""Competition metrics in numpy, independent of scikit-learn's version-dependent edge cases.

`macro_roc_auc` is the BirdCLEF+ 2026 metric: the mean over classes of the ROC-AUC of each class
column, skipping every class without a positive window (a column with only one label value has
no AUC; scikit-learn has raised, warned or returned NaN there depending on its version). Each
class AUC is the Mann-Whitney statistic with tied scores counted as one half, which equals
`sklearn.metrics.roc_auc_score` on columns that have both labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    ranks = np.empty(len(values), dtype=np.float64)
    mean_ranks = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mean_ranks, ends - starts)
    return ranks


def binary_roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC of one column; NaN when the column lacks positives or negatives."""
    labels = np.asarray(labels).astype(bool)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def per_class_roc_auc(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC of every class column `[C]`; NaN where a class has no positive or no negative."""
    labels, scores = _check_shapes(labels, scores)
    return np.array([binary_roc_auc(labels[:, c], scores[:, c]) for c in range(labels.shape[1])])


def scored_classes(labels: np.ndarray) -> np.ndarray:
    """Boolean `[C]`: classes with at least one positive window, the ones the metric averages."""
    return np.asarray(labels).astype(bool).any(axis=0)


def macro_roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean AUC over classes with a positive window; NaN only when no class has a defined AUC.

    A class whose every window is positive has no negatives and no AUC; it is skipped as well.
    """
    aucs = per_class_roc_auc(labels, scores)
    keep = scored_classes(labels) & ~np.isnan(aucs)
    if not keep.any():
        return float("nan")
    return float(aucs[keep].mean())


def group_macro_roc_auc(labels: np.ndarray, scores: np.ndarray, groups: list[str]) -> dict[str, float]:
    """Macro AUC within each group of classes (per taxon: Aves, Amphibia, Insecta, ...)."""
    aucs = per_class_roc_auc(labels, scores)
    if len(groups) != len(aucs):
        raise ValueError(f"{len(groups)} group names for {len(aucs)} classes; pass one group per class column")
    keep = scored_classes(labels) & ~np.isnan(aucs)
    groups_array = np.asarray(groups)
    result = {}
    for group in sorted(set(groups)):
        mask = keep & (groups_array == group)
        result[group] = float(aucs[mask].mean()) if mask.any() else float("nan")
    return result


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Step-wise average precision (scikit-learn's definition) of one column."""
    labels = np.asarray(labels).astype(bool)
    n_pos = labels.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    sorted_scores = np.asarray(scores, dtype=np.float64)[order]
    hits = labels[order].astype(np.float64)
    # Thresholds are the distinct scores: take the cumulative counts at the last index of each.
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    true_pos = np.cumsum(hits)[last_of_tie]
    predicted = last_of_tie + 1
    precision = true_pos / predicted
    recall = true_pos / n_pos
    recall_steps = np.diff(np.r_[0.0, recall])
    return float((recall_steps * precision).sum())


def padded_cmap(labels: np.ndarray, scores: np.ndarray, padding: int = 5) -> float:
    """Class-mean average precision after appending `padding` rows of ones to both tables.

    The padding (BirdCLEF 2021-2023) gives every class at least `padding` positives, so classes
    absent from the evaluation set do not make the metric undefined.
    """
    labels, scores = _check_shapes(labels, scores)
    ones = np.ones((padding, labels.shape[1]))
    padded_labels = np.vstack([labels, ones])
    padded_scores = np.vstack([scores, ones])
    return float(np.mean([average_precision(padded_labels[:, c], padded_scores[:, c]) for c in range(labels.shape[1])]))


@dataclass
class BootstrapInterval:
    """Percentile bootstrap of a metric over files.

    Attributes:
        estimate: Metric on the full set.
        low: Lower percentile.
        high: Upper percentile.
        std: Standard deviation of the resampled metrics (the noise level the gates compare with).
        resamples: Resamples that produced a defined value.
    """

    estimate: float
    low: float
    high: float
    std: float
    resamples: int


def bootstrap_macro_auc(
    labels: np.ndarray, scores: np.ndarray, files: list[str], resamples: int = 1000,
    confidence: float = 0.95, seed: int = 0,
) -> BootstrapInterval:
    """Confidence interval of `macro_roc_auc`, resampling whole files with replacement.

    Windows of one file are correlated (same night, same chorus), so files, not windows, are the
    unit of resampling. With a single file every resample is the full set and the interval has
    width zero: the interval then says nothing, which is why the harness reports the file count.
    """
    labels, scores = _check_shapes(labels, scores)
    # A class without positives in the full set has none in any resample: drop it once, up front.
    keep = scored_classes(labels)
    labels, scores = labels[:, keep], scores[:, keep]
    values = [macro_roc_auc(labels[rows], scores[rows]) for rows in _file_resamples(files, len(labels), resamples, seed)]
    return _interval(macro_roc_auc(labels, scores), values, confidence)


def bootstrap_macro_auc_difference(
    labels: np.ndarray, baseline: np.ndarray, candidate: np.ndarray, files: list[str],
    resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> BootstrapInterval:
    """Paired bootstrap of `macro_roc_auc(candidate) - macro_roc_auc(baseline)` over files.

    Both score tables are evaluated on the same resampled files, so the spread measures the noise
    of the difference itself, which is smaller than the spread of either score when the two
    models err on the same windows.
    """
    labels, baseline = _check_shapes(labels, baseline)
    _, candidate = _check_shapes(labels, candidate)
    keep = scored_classes(labels)
    labels, baseline, candidate = labels[:, keep], baseline[:, keep], candidate[:, keep]
    values = [
        macro_roc_auc(labels[rows], candidate[rows]) - macro_roc_auc(labels[rows], baseline[rows])
        for rows in _file_resamples(files, len(labels), resamples, seed)
    ]
    estimate = macro_roc_auc(labels, candidate) - macro_roc_auc(labels, baseline)
    return _interval(estimate, values, confidence)


def _file_resamples(files: list[str], n_rows: int, resamples: int, seed: int):
    """Row indices of `resamples` bootstrap draws of whole files, with replacement."""
    files_array = np.asarray(files)
    if len(files_array) != n_rows:
        raise ValueError(f"{len(files_array)} file names for {n_rows} windows; pass the file of every window")
    unique = np.unique(files_array)
    rows_of = [np.flatnonzero(files_array == f) for f in unique]
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        picked = rng.integers(0, len(unique), len(unique))
        yield np.concatenate([rows_of[i] for i in picked])


def _interval(estimate: float, values: list[float], confidence: float) -> BootstrapInterval:
    defined = [v for v in values if not np.isnan(v)]
    if not defined:
        return BootstrapInterval(estimate, float("nan"), float("nan"), float("nan"), 0)
    tail = (1 - confidence) / 2 * 100
    return BootstrapInterval(
        estimate=estimate,
        low=float(np.percentile(defined, tail)),
        high=float(np.percentile(defined, 100 - tail)),
        std=float(np.std(defined)),
        resamples=len(defined),
    )


def _check_shapes(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 2:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be equal-shaped [windows, classes]")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or Inf")
    # A soft target (0.5 for a secondary label) would silently count as a positive in the AUC.
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1; threshold soft targets (e.g. labels > 0.5) before scoring")
    return labels, scores
