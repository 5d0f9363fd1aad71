"""Post-processing steps on hand-made score tables, one step at a time and together."""

import numpy as np
import pytest

from infer.postproc import (
    PostprocConfig,
    compatibility_problem,
    gate_by_teacher,
    genus_groups,
    mirror_genus,
    postprocess,
    smooth_in_time,
)


def test_smoothing_spreads_a_single_window():
    scores = np.array([[0.0], [1.0], [0.0]], np.float32)
    np.testing.assert_allclose(smooth_in_time(scores, 0.2)[:, 0], [0.2, 0.6, 0.2], rtol=1e-6)


def test_smoothing_keeps_edge_weight_on_the_window():
    scores = np.array([[1.0], [0.0], [0.0]], np.float32)
    # The first window has no left neighbour: it keeps 0.6 + 0.2 of itself.
    np.testing.assert_allclose(smooth_in_time(scores, 0.2)[:, 0], [0.8, 0.2, 0.0], rtol=1e-6)


def test_smoothing_off_and_single_window_unchanged():
    scores = np.array([[0.3, 0.9], [0.1, 0.4]], np.float32)
    np.testing.assert_array_equal(smooth_in_time(scores, 0.0), scores)
    np.testing.assert_array_equal(smooth_in_time(scores[:1], 0.2), scores[:1])


def test_genus_groups_skip_sonotypes_and_singletons():
    genera = ["Scinax", None, "Scinax", "Boana", None, "Scinax"]
    groups = genus_groups(genera)
    assert [g.tolist() for g in groups] == [[0, 2, 5]]


def test_genus_mirroring_borrows_a_damped_share():
    groups = [np.array([0, 1, 2])]
    scores = np.array([[0.9, 0.01, 0.5, 0.3]], np.float32)
    out = mirror_genus(scores, groups, 0.1)
    # Class 1 rises to 0.1 x its strongest congener (0.9); the others stay above their floor.
    np.testing.assert_allclose(out[0], [0.9, 0.09, 0.5, 0.3], rtol=1e-6)


def test_genus_mirroring_strongest_uses_the_runner_up():
    groups = [np.array([0, 1])]
    scores = np.array([[0.02, 0.5]], np.float32)
    out = mirror_genus(scores, groups, 0.5)
    np.testing.assert_allclose(out[0], [0.25, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(mirror_genus(scores, groups, 0.0), scores)


def test_teacher_gating_scales_visible_classes_only():
    scores = np.array([[0.8, 0.8, 0.8]], np.float32)
    teacher = np.array([[0.0, 1.0, 0.0]], np.float32)
    visible = np.array([True, True, False])
    out = gate_by_teacher(scores, teacher, visible, 0.3)
    # A silent teacher cuts by 30 %, a confident one keeps the score, an unseen class is untouched.
    np.testing.assert_allclose(out[0], [0.56, 0.8, 0.8], rtol=1e-6)


def test_teacher_gating_rank_mode_and_off():
    scores = np.full((3, 1), 0.5, np.float32)
    teacher = np.array([[0.01], [0.02], [0.03]], np.float32)
    visible = np.array([True])
    out = gate_by_teacher(scores, teacher, visible, 1.0, mode="rank")
    np.testing.assert_allclose(out[:, 0], [0.0, 0.25, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(gate_by_teacher(scores, teacher, visible, 0.0), scores)


def test_postprocess_runs_every_step_in_order():
    scores = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]], np.float32)
    groups = [np.array([0, 1])]
    teacher = np.zeros_like(scores)
    config = PostprocConfig(smoothing=0.2, genus_mirror=0.5, teacher_gate=0.5)
    out = postprocess(scores, config, groups, teacher, np.array([True, False]))
    smoothed = np.array([0.2, 0.6, 0.2])
    np.testing.assert_allclose(out[:, 0], smoothed * 0.5, rtol=1e-6)  # gated: teacher silent
    np.testing.assert_allclose(out[:, 1], smoothed * 0.5, rtol=1e-6)  # mirrored, not gated (unseen)


def test_postprocess_without_teacher_skips_gating():
    scores = np.array([[0.4, 0.2]], np.float32)
    out = postprocess(scores, PostprocConfig(smoothing=0.0, genus_mirror=0.0, teacher_gate=1.0), [])
    np.testing.assert_array_equal(out, scores)


def test_config_lists_every_problem():
    with pytest.raises(ValueError) as error:
        PostprocConfig(smoothing=0.5, genus_mirror=2.0, teacher_gate=-1, teacher_gate_mode="max", tuned_on="logit")
    message = str(error.value)
    for key in ("smoothing", "genus_mirror", "teacher_gate=", "teacher_gate_mode", "tuned_on"):
        assert key in message


def test_config_round_trips_and_rejects_unknown_keys():
    config = PostprocConfig(smoothing=0.1, tuned_on="rank")
    assert PostprocConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown post-processing keys"):
        PostprocConfig.from_dict({"smothing": 0.1})


def test_compatibility_names_the_cause():
    assert compatibility_problem("probability", PostprocConfig()) is None
    assert compatibility_problem("rank", None) is None
    assert compatibility_problem("rank", PostprocConfig(tuned_on="rank")) is None
    message = compatibility_problem("rank", PostprocConfig())
    assert "blend mode 'rank'" in message
    assert "tuned on 'probability'" in message
