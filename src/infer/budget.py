"""Time budget guard: project the run time from the first files and warn or stop early.

Kaggle scores a submission only if it finishes within the limit (90 minutes of CPU for BirdCLEF),
and a field laptop has a battery. After `sample_files` files the guard extrapolates the measured
rate to the whole input and acts once: "warn" logs the projection, "stop" raises
`BudgetExceeded` so no time is wasted on a run that cannot finish. A run whose elapsed time passes
the budget before the sample is complete is projected at that moment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from infer.i18n import _, decimal

log = logging.getLogger(__name__)

BUDGET_ACTIONS = ("warn", "stop")


class BudgetExceeded(RuntimeError):
    """The projected run time exceeds the budget and the guard is set to stop."""


@dataclass(frozen=True)
class BudgetCheck:
    """A projection made after the sample files.

    Attributes:
        files_done: Files measured.
        elapsed_s: Seconds they took (after start-up).
        projected_s: Projected seconds for all files, start-up included.
        budget_s: The budget in seconds.
        startup_s: Seconds spent before the first file (loading models), counted once.
    """

    files_done: int
    elapsed_s: float
    projected_s: float
    budget_s: float
    startup_s: float = 0.0

    @property
    def files_per_minute(self) -> float:
        return 60.0 * self.files_done / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    @property
    def within_budget(self) -> bool:
        return self.projected_s <= self.budget_s


class BudgetGuard:
    """Check once, after `sample_files` files, whether `total_files` fit in `budget_minutes`.

    Args:
        total_files: Files in the whole input.
        budget_minutes: Allowed wall-clock minutes for the whole input.
        sample_files: Files measured before projecting.
        action: "warn" or "stop".
        startup_s: Seconds already spent before the first file (model loading), added to every
            projection; `elapsed_s` passed to `after_file` counts from the first file.
    """

    def __init__(
        self, total_files: int, budget_minutes: float = 90.0, sample_files: int = 5, action: str = "warn",
        startup_s: float = 0.0,
    ) -> None:
        if action not in BUDGET_ACTIONS:
            raise ValueError(f"budget action {action!r} is not one of {BUDGET_ACTIONS}")
        if budget_minutes <= 0 or sample_files < 1 or total_files < 0 or startup_s < 0:
            raise ValueError(
                f"expected budget_minutes > 0, sample_files >= 1, total_files >= 0 and startup_s >= 0; got "
                f"{budget_minutes}, {sample_files}, {total_files} and {startup_s}"
            )
        self.total_files = total_files
        self.budget_s = budget_minutes * 60.0
        self.sample_files = sample_files
        self.action = action
        self.startup_s = startup_s
        self.check: BudgetCheck | None = None

    def projected_s(self, files_done: int, elapsed_s: float) -> float:
        """Project the seconds for the whole input at the rate of the files done so far."""
        if files_done <= 0:
            return self.startup_s + elapsed_s
        return self.startup_s + elapsed_s / files_done * self.total_files

    def eta_s(self, files_done: int, elapsed_s: float) -> float | None:
        """Estimate the seconds left at the rate so far, for a progress bar; None before the first file."""
        if files_done <= 0:
            return None
        return max(0.0, elapsed_s / files_done * (self.total_files - files_done))

    def after_file(self, files_done: int, elapsed_s: float) -> BudgetCheck | None:
        """Record progress; return the projection when it is made (once), else None.

        Raises:
            BudgetExceeded: The projection exceeds the budget and the action is "stop".
        """
        over_already = self.startup_s + elapsed_s > self.budget_s
        sampled = files_done >= min(self.sample_files, self.total_files)
        if self.check is not None or files_done <= 0 or not (sampled or over_already):
            return None
        projected = self.projected_s(files_done, elapsed_s)
        self.check = BudgetCheck(files_done, elapsed_s, projected, self.budget_s, self.startup_s)
        if self.check.within_budget:
            log.info(_("projected time %s min for %d files (%s files/min), within the %.0f min budget"),
                     decimal(projected / 60, 1), self.total_files, decimal(self.check.files_per_minute, 1),
                     self.budget_s / 60)
            return self.check
        message = _("projected time %s min for %d files (%s files/min) exceeds the %.0f min budget") % (
            decimal(projected / 60, 1), self.total_files, decimal(self.check.files_per_minute, 1), self.budget_s / 60)
        if self.action == "stop":
            raise BudgetExceeded(message + _("; stopping (use --budget-action warn to continue anyway)"))
        log.warning(message)
        return self.check


def format_eta(seconds: float | None) -> str:
    """Format seconds as `h:mm:ss` (or `m:ss`) for a progress bar; "?" when unknown."""
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
