"""The deterministic checkpoint selector.

Rule: the shipped checkpoint comes from the final self-trained stage, never an earlier one,
whatever an intermediate score (an earlier stage that scores higher on one small held-out
site is far more often noise than a better model, and shipping it would silently undo the
self-training). Within the final stage: the best held-out-site score, rounded to `tie_decimals`;
ties go to the later epoch. Missing scores (a held-out set without positives) tie, so the last
epoch wins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


class SelectionError(ValueError):
    """No checkpoint of the final stage exists to select."""


@dataclass(frozen=True)
class Candidate:
    stage: str
    round: int
    epoch: int
    score: float | None
    checkpoint: str
    sha256: str


@dataclass
class Selection:
    chosen: Candidate
    final_stage: str
    rule: str
    candidates: list[Candidate]

    def to_dict(self) -> dict:
        return {
            "chosen": asdict(self.chosen),
            "final_stage": self.final_stage,
            "rule": self.rule,
            "candidates": [asdict(c) for c in self.candidates],
        }


RULE = (
    "final stage only; within it the highest held-out-site score rounded to {decimals} decimals; "
    "ties to the later epoch"
)


def _sort_key(candidate: Candidate, decimals: int) -> tuple[float, int]:
    score = candidate.score if candidate.score is not None and candidate.score >= 0 else float("-inf")
    return (round(score, decimals) if score != float("-inf") else score, candidate.epoch)


def select_checkpoint(candidates: list[Candidate], final_stage: str, tie_decimals: int = 6) -> Selection:
    """Pick the checkpoint to ship among `candidates` of every stage.

    Raises:
        SelectionError: `final_stage` has no checkpoint (the selector never falls back).
    """
    eligible = [c for c in candidates if c.stage == final_stage]
    if not eligible:
        stages = sorted({c.stage for c in candidates})
        raise SelectionError(
            f"no checkpoint of the final stage {final_stage!r} (found stages {stages}); train it first, "
            "the selector never ships an earlier stage"
        )
    chosen = max(eligible, key=lambda c: _sort_key(c, tie_decimals))
    return Selection(chosen=chosen, final_stage=final_stage, rule=RULE.format(decimals=tie_decimals), candidates=list(candidates))


def best_of_stage(candidates: list[Candidate], stage: str, tie_decimals: int = 6) -> Candidate:
    """Apply the within-stage rule alone: best score, ties to the later epoch (for pseudo-labelling)."""
    return select_checkpoint(candidates, stage, tie_decimals).chosen
