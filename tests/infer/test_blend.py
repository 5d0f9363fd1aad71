"""Blending: weights, class coverage, rank mode over a file set."""

import numpy as np
import pytest

from infer.blend import BlendConfig, average_ranks, blend_file_set, to_ranks, weighted_mean


def test_weighted_mean_uses_weights():
    a = np.array([[0.2, 0.4]], np.float32)
    b = np.array([[0.6, 0.0]], np.float32)
    blended = weighted_mean([a, b], [1.0, 3.0], [None, None])
    np.testing.assert_allclose(blended, [[0.25 * 0.2 + 0.75 * 0.6, 0.25 * 0.4]], rtol=1e-6)


def test_weighted_mean_renormalises_over_coverage():
    cnn = np.array([[0.2, 0.4, 0.6]], np.float32)
    teacher = np.array([[1.0, 0.0, 0.9]], np.float32)  # it scores classes 0 and 2 only
    visible = np.array([True, False, True])
    blended = weighted_mean([cnn, teacher], [1.0, 1.0], [None, visible])
    np.testing.assert_allclose(blended, [[0.6, 0.4, 0.75]], rtol=1e-6)


def test_weighted_mean_class_without_weight_is_zero():
    a = np.array([[0.5, 0.5]], np.float32)
    blended = weighted_mean([a], [1.0], [np.array([True, False])])
    assert blended[0, 1] == 0.0
    assert blended[0, 0] == pytest.approx(0.5)


def test_weighted_mean_rejects_inconsistent_inputs():
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="one of each per member"):
        weighted_mean([a, a], [1.0], [None, None])
    with pytest.raises(ValueError, match="differ in shape"):
        weighted_mean([a, np.zeros((3, 3))], [1.0, 1.0], [None, None])
    with pytest.raises(ValueError, match="nothing to blend"):
        weighted_mean([], [], [])


def test_blend_config_validates():
    with pytest.raises(ValueError, match="not one of"):
        BlendConfig(mode="geometric")
    with pytest.raises(ValueError, match="finite and >= 0"):
        BlendConfig(weights={"a": -1.0})
    with pytest.raises(ValueError, match="finite and >= 0"):
        BlendConfig(weights={"a": float("nan")})
    config = BlendConfig.from_dict({"mode": "rank", "weights": {"a": 2}})
    assert config.weight("a") == 2.0
    assert config.weight("unnamed") == 1.0
    assert BlendConfig.from_dict(config.to_dict()) == config


def test_average_ranks_share_ties():
    values = np.array([0.3, 0.1, 0.3, 0.9])
    np.testing.assert_array_equal(average_ranks(values), [2.5, 1.0, 2.5, 4.0])
    table = np.stack([values, -values], axis=1)
    np.testing.assert_array_equal(average_ranks(table)[:, 1], [2.5, 4.0, 2.5, 1.0])


def test_to_ranks_scaled_and_single_row():
    ranks = to_ranks(np.array([[0.1], [0.5], [0.9]]))
    np.testing.assert_allclose(ranks[:, 0], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(to_ranks(np.array([[0.3, 0.7]])), [[0.5, 0.5]])


def test_probability_blend_is_per_file():
    files = [[np.full((2, 1), 0.2, np.float32)], [np.full((3, 1), 0.8, np.float32)]]
    blended = blend_file_set(files, [1.0], [None], "probability")
    assert [b.shape for b in blended] == [(2, 1), (3, 1)]
    np.testing.assert_allclose(blended[1], 0.8)


def test_rank_blend_ranks_over_the_file_set():
    quiet = np.array([[0.1], [0.2]], np.float32)
    loud = np.array([[0.8], [0.9]], np.float32)
    together = blend_file_set([[quiet], [loud]], [1.0], [None], "rank")
    # Over the set, the quiet file gets the two lowest of four ranks.
    np.testing.assert_allclose(together[0][:, 0], [0.0, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(together[1][:, 0], [2 / 3, 1.0], rtol=1e-6)
    alone = blend_file_set([[quiet]], [1.0], [None], "rank")
    np.testing.assert_allclose(alone[0][:, 0], [0.0, 1.0])


def test_rank_blend_weights_members():
    a = np.array([[0.1], [0.9]], np.float32)  # ranks 0, 1
    b = np.array([[0.9], [0.1]], np.float32)  # ranks 1, 0
    blended = blend_file_set([[a, b]], [3.0, 1.0], [None, None], "rank")[0]
    np.testing.assert_allclose(blended[:, 0], [0.25, 0.75])
