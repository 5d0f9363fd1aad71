"""Blend ensemble members' window scores.

Probability space (a weighted mean of member probabilities) is the default and the only mode the
post-processing defaults were chosen for. Rank mode replaces each member's scores by per-class
ranks over every window of the run before averaging; it suits members with badly calibrated
scores, but its output is no longer a probability, so the pre-submit checklist rejects it in
front of probability-tuned post-processing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BLEND_MODES = ("probability", "rank")


@dataclass
class BlendConfig:
    """How members are combined.

    Attributes:
        mode: "probability" or "rank".
        weights: Member name to weight; members not named get weight 1.
    """

    mode: str = "probability"
    weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in BLEND_MODES:
            raise ValueError(f"blend mode {self.mode!r} is not one of {BLEND_MODES}")
        negative = {k: v for k, v in self.weights.items() if v < 0}
        if negative:
            raise ValueError(f"blend weights must be >= 0, got {negative}")

    def weight(self, name: str) -> float:
        return float(self.weights.get(name, 1.0))


def weighted_mean(
    scores: list[np.ndarray], weights: list[float], coverage: list[np.ndarray | None]
) -> np.ndarray:
    """Per-class weighted mean of member scores `[W, C]`.

    Args:
        scores: One `[W, C]` array per member.
        weights: One weight per member.
        coverage: Per member, a boolean `[C]` mask of the classes it scores (None = all). A class
            is averaged over the members that score it; their weights are renormalised.

    Returns:
        `[W, C]` float32 blend. A class no member scores gets 0.
    """
    if not scores:
        raise ValueError("nothing to blend: no member produced scores")
    n_classes = scores[0].shape[1]
    total = np.zeros_like(scores[0], dtype=np.float64)
    weight_sum = np.zeros(n_classes, dtype=np.float64)
    for member_scores, weight, mask in zip(scores, weights, coverage):
        mask = np.ones(n_classes, dtype=bool) if mask is None else mask
        total[:, mask] += weight * member_scores[:, mask]
        weight_sum[mask] += weight
    blended = np.divide(total, weight_sum, out=np.zeros_like(total), where=weight_sum > 0)
    return blended.astype(np.float32)


def to_ranks(scores: np.ndarray) -> np.ndarray:
    """Per-class ranks of `[N, C]` scores scaled to [0, 1]; ties share their mean rank."""
    n = len(scores)
    if n <= 1:
        return np.full_like(scores, 0.5, dtype=np.float32)
    ranks = np.empty(scores.shape, dtype=np.float64)
    for c in range(scores.shape[1]):
        ranks[:, c] = _average_ranks(scores[:, c])
    return ((ranks - 1) / (n - 1)).astype(np.float32)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0  # mean of ranks start+1 .. end
    return ranks
