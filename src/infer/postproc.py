"""Post-processing of blended window scores `[W, C]` of one file, applied in a fixed order.

1. Temporal smoothing: calls of frogs, insects and many birds last longer than one 5 s window,
   so each window borrows from its neighbours.
2. Genus mirroring: congeners (several *Leptodactylus* or *Scinax* frogs, say) share call
   structure and are confused by the CNNs; a class borrows a damped share of its strongest
   congener's score, which keeps a true congener from ranking at the bottom.
3. Teacher gating: where a teacher (BirdNET, Perch) can see a class, its opinion scales the CNN
   score, so a confident CNN false positive that the teacher rejects is damped. Classes the
   teacher cannot see are left alone.

Every step maps [0, 1] into [0, 1], is a public function that can be called on its own, and is
switched off by a zero strength. The defaults are moderate starting points for the held-out-site
harness to tune, not tuned values; `tuned_on` records the blend mode they assume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from infer.blend import BLEND_MODES, to_ranks

GATE_MODES = ("score", "rank")


@dataclass
class PostprocConfig:
    """Post-processing parameters.

    Attributes:
        smoothing: Weight of each neighbouring window, in [0, 0.5). 0.2 keeps 60 % of the
            window's own score, enough to fill one-window gaps in a chorus without letting a
            single loud call spread far.
        genus_mirror: Damping in [0, 1] of the strongest congener's score a class may borrow.
            0.1 lifts an unseen congener above the background without competing with the
            congener itself.
        teacher_gate: Strength in [0, 1] of teacher gating; 0.3 lets a teacher that hears
            nothing cut a CNN score by at most 30 %.
        teacher_gate_mode: "score" gates by the teacher's probability, "rank" by the per-class
            percentile of the teacher's score among the file's windows.
        tuned_on: The blend mode these values were chosen for ("probability" or "rank"); the
            checklist rejects a bundle whose blend differs.
    """

    smoothing: float = 0.2
    genus_mirror: float = 0.1
    teacher_gate: float = 0.3
    teacher_gate_mode: str = "score"
    tuned_on: str = "probability"

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.smoothing < 0.5:
            problems.append(f"smoothing={self.smoothing} must be in [0, 0.5)")
        if not 0 <= self.genus_mirror <= 1:
            problems.append(f"genus_mirror={self.genus_mirror} must be in [0, 1]")
        if not 0 <= self.teacher_gate <= 1:
            problems.append(f"teacher_gate={self.teacher_gate} must be in [0, 1]")
        if self.teacher_gate_mode not in GATE_MODES:
            problems.append(f"teacher_gate_mode={self.teacher_gate_mode!r} is not one of {GATE_MODES}")
        if self.tuned_on not in BLEND_MODES:
            problems.append(f"tuned_on={self.tuned_on!r} is not one of {BLEND_MODES}")
        if problems:
            raise ValueError("invalid post-processing: " + "; ".join(problems))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> PostprocConfig:
        """Build from a manifest section, rejecting unknown keys so a typo is not silently ignored."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown post-processing keys {unknown}; known keys are {sorted(names)}")
        return cls(**values)


def compatibility_problem(blend_mode: str, config: PostprocConfig | None) -> str | None:
    """Why post-processing `config` does not fit a `blend_mode` blend, or None when it does."""
    if config is None or config.tuned_on == blend_mode:
        return None
    return (
        f"blend mode {blend_mode!r} feeds post-processing tuned on {config.tuned_on!r} scores "
        f"(postproc.tuned_on={config.tuned_on!r}): the smoothing, genus and teacher-gate strengths "
        f"were chosen for {config.tuned_on} values, not for {blend_mode} values. Set the blend mode to "
        f"{config.tuned_on!r}, or tune the post-processing on {blend_mode} blends and record "
        f"tuned_on={blend_mode!r}"
    )


def smooth_in_time(scores: np.ndarray, weight: float) -> np.ndarray:
    """Blend each window with its neighbours: `(1 - 2w) * s[t] + w * (s[t-1] + s[t+1])`.

    At the first and last window the missing neighbour's weight stays with the window itself.
    """
    if weight == 0 or len(scores) < 2:
        return scores.copy()
    previous = np.vstack([scores[:1], scores[:-1]])
    following = np.vstack([scores[1:], scores[-1:]])
    return ((1 - 2 * weight) * scores + weight * (previous + following)).astype(scores.dtype)


def genus_groups(genera: list[str | None]) -> list[np.ndarray]:
    """Class indices of every genus with two or more classes."""
    members: dict[str, list[int]] = {}
    for index, genus in enumerate(genera):
        if genus is not None:
            members.setdefault(genus, []).append(index)
    return [np.array(indices) for indices in members.values() if len(indices) > 1]


def mirror_genus(scores: np.ndarray, groups: list[np.ndarray], damping: float) -> np.ndarray:
    """Raise each class to at least `damping` times its strongest congener's score."""
    out = scores.copy()
    if damping == 0:
        return out
    for indices in groups:
        block = scores[:, indices]  # [W, G]
        # Strongest congener of each member: the block max, or the runner-up for the max itself.
        order = np.sort(block, axis=1)
        top, second = order[:, -1:], order[:, -2:-1]
        strongest_other = np.where(block == top, second, top)
        out[:, indices] = np.maximum(block, damping * strongest_other)
    return out


def gate_by_teacher(
    scores: np.ndarray, teacher: np.ndarray, visible: np.ndarray, strength: float, mode: str = "score"
) -> np.ndarray:
    """Scale scores by `1 - strength + strength * g`, with g the teacher's score or rank.

    Args:
        scores: Blended scores `[W, C]`.
        teacher: Teacher scores mapped to the taxonomy `[W, C]` (values of invisible classes unused).
        visible: Boolean `[C]`, classes the teacher can score.
        strength: Gate strength in [0, 1].
        mode: "score" or "rank" (per-class percentile among these windows).
    """
    out = scores.copy()
    if strength == 0 or not visible.any():
        return out
    gate_input = teacher[:, visible]
    if mode == "rank":
        gate_input = to_ranks(gate_input)
    out[:, visible] = scores[:, visible] * (1 - strength + strength * gate_input)
    return out


def postprocess(
    scores: np.ndarray,
    config: PostprocConfig,
    groups: list[np.ndarray],
    teacher: np.ndarray | None = None,
    teacher_visible: np.ndarray | None = None,
) -> np.ndarray:
    """Apply smoothing, genus mirroring and teacher gating to one file's `[W, C]` scores."""
    out = smooth_in_time(scores, config.smoothing)
    out = mirror_genus(out, groups, config.genus_mirror)
    if teacher is not None and teacher_visible is not None:
        out = gate_by_teacher(out, teacher, teacher_visible, config.teacher_gate, config.teacher_gate_mode)
    return np.clip(out, 0.0, 1.0)
