"""The deterministic selector ships the final stage only; within it, best score, ties to the later epoch."""

import pytest

from train.selector import Candidate, SelectionError, select_checkpoint


def candidate(stage, epoch, score):
    round_index = 0 if stage == "supervised" else int(stage[2:])
    return Candidate(stage, round_index, epoch, score, f"{stage}/epoch={epoch:03d}.ckpt", f"sha-{stage}-{epoch}")


def test_earlier_stage_is_never_shipped_even_when_it_scores_higher():
    candidates = [candidate("supervised", 3, 0.99), candidate("ns1", 1, 0.95), candidate("ns2", 0, 0.61), candidate("ns2", 1, 0.60)]
    selection = select_checkpoint(candidates, "ns2")
    assert selection.chosen.stage == "ns2"
    assert selection.chosen.epoch == 0
    assert "final stage only" in selection.rule
    assert len(selection.to_dict()["candidates"]) == 4


def test_ties_go_to_the_later_epoch():
    candidates = [candidate("ns2", 0, 0.7000000001), candidate("ns2", 1, 0.7), candidate("ns2", 2, 0.5)]
    assert select_checkpoint(candidates, "ns2", tie_decimals=6).chosen.epoch == 1


def test_missing_scores_tie_and_the_last_epoch_wins():
    candidates = [candidate("ns2", 0, None), candidate("ns2", 1, -1.0), candidate("ns2", 2, None)]
    assert select_checkpoint(candidates, "ns2").chosen.epoch == 2


def test_no_fallback_when_the_final_stage_is_missing():
    with pytest.raises(SelectionError, match="never ships an earlier stage"):
        select_checkpoint([candidate("supervised", 0, 0.9), candidate("ns1", 0, 0.8)], "ns2")


def test_selection_is_deterministic():
    candidates = [candidate("ns2", e, s) for e, s in enumerate([0.5, 0.8, 0.8, 0.3])]
    picks = {select_checkpoint(list(reversed(candidates)), "ns2").chosen.epoch for _ in range(5)}
    assert picks == {2}
