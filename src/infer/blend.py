"""Blend ensemble members' window scores.

Probability space (a weighted mean of member probabilities) is the default and the only mode the
post-processing defaults were chosen for. Rank mode replaces each member's scores by per-class
ranks over every window of a file set before averaging. It suits members with badly calibrated
scores, but its output is no longer a probability and it depends on which files were scored
together, so the pre-submit checklist rejects it in front of probability-tuned post-processing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BLEND_MODES = ("probability", "rank")


@dataclass
class BlendConfig:
    """How members are combined.

    Attributes:
        mode: "probability" (weighted mean of probabilities) or "rank" (weighted mean of per-class
            ranks within the scored file set).
        weights: Member name to weight; members not named get weight 1.
    """

    mode: str = "probability"
    weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in BLEND_MODES:
            raise ValueError(f"blend mode {self.mode!r} is not one of {BLEND_MODES}")
        invalid = {k: v for k, v in self.weights.items() if not (np.isfinite(v) and v >= 0)}
        if invalid:
            raise ValueError(f"blend weights must be finite and >= 0, got {invalid}")

    def weight(self, name: str) -> float:
        return float(self.weights.get(name, 1.0))

    def to_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "weights": dict(self.weights)}

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> BlendConfig:
        return cls(mode=str(values.get("mode", "probability")),
                   weights={str(k): float(v) for k, v in dict(values.get("weights") or {}).items()})


def weighted_mean(
    scores: list[np.ndarray], weights: list[float], coverage: list[np.ndarray | None]
) -> np.ndarray:
    """Per-class weighted mean of member scores `[W, C]`.

    Args:
        scores: One `[W, C]` array per member.
        weights: One weight per member.
        coverage: Per member, a boolean `[C]` mask of the classes it scores (None = all). A class
            is averaged over the members that score it, with their weights renormalised.

    Returns:
        `[W, C]` float32 blend. A class that no member with a positive weight scores gets 0.
    """
    if not scores:
        raise ValueError("nothing to blend: no member produced scores")
    if not len(scores) == len(weights) == len(coverage):
        raise ValueError(
            f"got {len(scores)} score arrays, {len(weights)} weights and {len(coverage)} coverage masks; "
            "expected one of each per member"
        )
    shapes = {s.shape for s in scores}
    if len(shapes) != 1:
        raise ValueError(f"member score arrays differ in shape {sorted(shapes)}; expected one [W, C] shape")
    n_classes = scores[0].shape[1]
    total = np.zeros(scores[0].shape, dtype=np.float64)
    weight_sum = np.zeros(n_classes, dtype=np.float64)
    for member_scores, weight, mask in zip(scores, weights, coverage):
        mask = np.ones(n_classes, dtype=bool) if mask is None else mask
        total[:, mask] += weight * member_scores[:, mask]
        weight_sum[mask] += weight
    blended = np.divide(total, weight_sum, out=np.zeros_like(total), where=weight_sum > 0)
    return blended.astype(np.float32)


def blend_file_set(
    per_file: list[list[np.ndarray]],
    weights: list[float],
    coverage: list[np.ndarray | None],
    mode: str = "probability",
) -> list[np.ndarray]:
    """Blend the members of every file in a set; rank mode ranks over all windows of the set.

    Args:
        per_file: For each file, one `[W_f, C]` array per member, members in the same order.
        weights: One weight per member.
        coverage: One class mask per member (see `weighted_mean`).
        mode: "probability" or "rank".

    Returns:
        One `[W_f, C]` float32 blend per file. In probability mode each file's blend depends only on
        that file; in rank mode it depends on every file of the set.
    """
    if mode not in BLEND_MODES:
        raise ValueError(f"blend mode {mode!r} is not one of {BLEND_MODES}")
    if mode == "probability" or not per_file:
        return [weighted_mean(members, weights, coverage) for members in per_file]

    # Rank mode: rank each member's scores over the windows of all files together, then split.
    lengths = [len(members[0]) for members in per_file]
    bounds = np.cumsum(lengths)[:-1]
    ranked_members = []
    for m in range(len(weights)):
        stacked = np.concatenate([members[m] for members in per_file])
        ranked_members.append(np.split(to_ranks(stacked), bounds))
    return [
        weighted_mean([ranked[f] for ranked in ranked_members], weights, coverage)
        for f in range(len(per_file))
    ]


def to_ranks(scores: np.ndarray) -> np.ndarray:
    """Per-class ranks of `[N, C]` scores scaled to [0, 1]; tied scores share their mean rank.

    A single window (N = 1) has no order and gets 0.5.
    """
    scores = np.asarray(scores)
    n = len(scores)
    if n <= 1:
        return np.full(scores.shape, 0.5, dtype=np.float32)
    return ((average_ranks(scores) - 1) / (n - 1)).astype(np.float32)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks along axis 0 of `[N]` or `[N, C]` values; ties share their mean rank."""
    values = np.asarray(values)
    column = values.ndim == 1
    values = values[:, None] if column else values
    n = len(values)
    order = np.argsort(values, axis=0, kind="mergesort")
    ordered = np.take_along_axis(values, order, axis=0)
    position = np.broadcast_to(np.arange(n)[:, None], ordered.shape)

    # Each sorted position learns the first and last position of its run of equal values.
    starts_run = np.ones(ordered.shape, dtype=bool)
    starts_run[1:] = ordered[1:] != ordered[:-1]
    ends_run = np.ones(ordered.shape, dtype=bool)
    ends_run[:-1] = starts_run[1:]
    run_first = np.maximum.accumulate(np.where(starts_run, position, 0), axis=0)
    run_last = np.minimum.accumulate(np.where(ends_run, position, n - 1)[::-1], axis=0)[::-1]

    ranks = np.empty(ordered.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, (run_first + run_last) / 2.0 + 1.0, axis=0)
    return ranks[:, 0] if column else ranks
