"""The budget guard: projection after the sample, warn or stop, early projection, ETA."""

import pytest

from infer.budget import BudgetExceeded, BudgetGuard, format_eta


def test_projection_after_the_sample_files():
    guard = BudgetGuard(total_files=100, budget_minutes=90, sample_files=5)
    assert guard.after_file(4, 8.0) is None
    check = guard.after_file(5, 10.0)
    assert check.projected_s == pytest.approx(200.0)
    assert check.files_per_minute == pytest.approx(30.0)
    assert check.within_budget
    assert guard.after_file(6, 12.0) is None  # the guard projects once


def test_stop_raises_and_warn_returns():
    with pytest.raises(BudgetExceeded, match="exceeds the 1 min budget"):
        BudgetGuard(100, budget_minutes=1, sample_files=2, action="stop").after_file(2, 10.0)
    check = BudgetGuard(100, budget_minutes=1, sample_files=2, action="warn").after_file(2, 10.0)
    assert not check.within_budget


def test_startup_counts_once():
    check = BudgetGuard(10, budget_minutes=90, sample_files=1, startup_s=30.0).after_file(1, 6.0)
    assert check.projected_s == pytest.approx(30.0 + 60.0)


def test_projects_early_when_the_budget_is_already_spent():
    guard = BudgetGuard(1000, budget_minutes=1, sample_files=50, action="warn")
    check = guard.after_file(3, 61.0)
    assert check is not None
    assert check.files_done == 3


def test_empty_input_and_invalid_arguments():
    assert BudgetGuard(0).after_file(0, 0.0) is None
    with pytest.raises(ValueError, match="budget action"):
        BudgetGuard(1, action="pause")
    with pytest.raises(ValueError, match="budget_minutes > 0"):
        BudgetGuard(1, budget_minutes=0)


def test_eta_for_the_progress_bar():
    guard = BudgetGuard(10)
    assert guard.eta_s(0, 0.0) is None
    assert guard.eta_s(4, 20.0) == pytest.approx(30.0)
    assert format_eta(None) == "?"
    assert format_eta(75) == "1:15"
    assert format_eta(3725) == "1:02:05"
