"""The scorer: TTA at file edges, probability-space averaging, file sets, prefetching, failures."""

import threading

import numpy as np
import pytest

from infer.audio import AudioDecodeError, decode_mono
from infer.blend import BlendConfig
from infer.frontend import NumpyFrontend
from infer.member import OnnxMember, sigmoid
from infer.pipeline import Scorer, ScoringConfig
from infer.taxonomy import Taxonomy
from infer.windows import Windower
from tests.conftest import MINI, write_tone
from tests.fake_models import write_fake_member


@pytest.fixture(scope="module")
def taxonomy():
    return Taxonomy.from_csv(MINI / "taxonomy.csv")


@pytest.fixture(scope="module")
def members(tmp_path_factory, taxonomy):
    folder = tmp_path_factory.mktemp("fake_members")
    return [OnnxMember(write_fake_member(folder / f"m{seed}.onnx", taxonomy, seed=seed)) for seed in (0, 1)]


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    return {
        "twelve": write_tone(folder / "twelve.wav", 12.0, frequency=1500),
        "seven": write_tone(folder / "seven.wav", 7.0, frequency=3000, amplitude=0.1),
    }


def test_shifted_windows_are_padded_at_file_edges():
    ramp = np.arange(1, 25, dtype=np.float32)  # 24 samples = 3 windows of 8
    chunk = next(Windower(8, margin=2, windows_per_chunk=3).chunks([ramp]))
    left, right = chunk.windows(-2), chunk.windows(2)
    assert left.shape == right.shape == (3, 8)
    np.testing.assert_array_equal(left[0], [0, 0, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(right[-1], [19, 20, 21, 22, 23, 24, 0, 0])
    np.testing.assert_array_equal(left[1], ramp[6:14])


def test_tta_keeps_every_window_of_a_partial_file(members, taxonomy, audio):
    scorer = Scorer(members[:1], taxonomy, ScoringConfig(postproc=None))
    scores = scorer.score_file(audio["seven"])
    assert scores.row_ids == ["seven_5", "seven_10"]
    np.testing.assert_allclose(scores.ends, [5.0, 7.0])
    assert np.isfinite(scores.scores).all()


def test_tta_averages_probabilities_of_padded_shifts(members, taxonomy, audio):
    member = members[0]
    scorer = Scorer([member], taxonomy, ScoringConfig(postproc=None))
    result = scorer.score_file(audio["twelve"])

    # Recompute by hand: pad the file by 0.5 s on both sides and cut each shifted window.
    signal = decode_mono(audio["twelve"], 32000)
    width, shift = 160000, 16000
    padded = np.concatenate([np.zeros(shift), signal, np.zeros(3 * width - len(signal) + shift)]).astype(np.float32)
    frontend = NumpyFrontend(member.frontend)
    logits = []
    for w in range(3):
        cuts = np.stack([padded[shift + w * width + s : shift + w * width + s + width] for s in (-shift, 0, shift)])
        logits.append(member.logits(frontend.window_logmel(cuts)))
    logits = np.stack(logits, axis=1)  # [shifts, windows, C]
    np.testing.assert_allclose(result.member_scores[member.name], sigmoid(logits).mean(axis=0), atol=1e-5)
    # Probability space, not logit space.
    assert not np.allclose(result.member_scores[member.name], sigmoid(logits.mean(axis=0)), atol=1e-5)


def test_tta_changes_the_scores(members, taxonomy, audio):
    plain = Scorer(members[:1], taxonomy, ScoringConfig(tta_shifts=(0.0,), postproc=None)).score_file(audio["twelve"])
    tta = Scorer(members[:1], taxonomy, ScoringConfig(postproc=None)).score_file(audio["twelve"])
    assert plain.scores.shape == tta.scores.shape
    assert not np.allclose(plain.scores, tta.scores)


def test_blend_weights_reach_the_scores(members, taxonomy, audio):
    config = ScoringConfig(postproc=None, blend=BlendConfig(weights={members[0].name: 3.0, members[1].name: 1.0}))
    result = Scorer(members, taxonomy, config).score_file(audio["twelve"])
    a, b = (result.member_scores[m.name] for m in members)
    np.testing.assert_allclose(result.scores, 0.75 * a + 0.25 * b, rtol=1e-5)


def test_score_files_equals_score_file(members, taxonomy, audio):
    scorer = Scorer(members, taxonomy)
    paths = [audio["twelve"], audio["seven"]]
    streamed = list(scorer.score_files(paths))
    for path, result in zip(paths, streamed):
        single = scorer.score_file(path)
        assert result.row_ids == single.row_ids
        np.testing.assert_array_equal(result.scores, single.scores)
    assert all(seconds > 0 for seconds in scorer.compute_seconds.values())


def test_inline_and_prefetched_scoring_agree(members, taxonomy, audio):
    inline = Scorer(members, taxonomy, ScoringConfig(prefetch_chunks=0, windows_per_chunk=1))
    prefetched = Scorer(members, taxonomy, ScoringConfig(prefetch_chunks=2, windows_per_chunk=1))
    a = inline.score_file(audio["twelve"])
    b = prefetched.score_file(audio["twelve"])
    np.testing.assert_array_equal(a.scores, b.scores)


def test_undecodable_file_is_reported_and_skipped(members, taxonomy, audio, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    scorer = Scorer(members, taxonomy)
    failures = []
    results = list(scorer.score_files([audio["seven"], broken, audio["twelve"]], on_error=failures.append))
    assert [r.path.name for r in results] == ["seven.wav", "twelve.wav"]
    assert [f.path.name for f in failures] == ["broken.wav"]
    with pytest.raises(AudioDecodeError):
        list(scorer.score_files([broken]))


def test_rank_mode_ranks_over_the_file_set(members, taxonomy, audio):
    scorer = Scorer(members, taxonomy, ScoringConfig(postproc=None, blend=BlendConfig(mode="rank")))
    together = list(scorer.score_files([audio["twelve"], audio["seven"]]))
    assert [r.n_windows for r in together] == [3, 2]
    stacked = np.concatenate([r.scores for r in together])
    assert stacked.min() == 0.0
    assert stacked.max() == 1.0
    alone = scorer.score_file(audio["seven"])
    assert not np.allclose(alone.scores, together[1].scores)


def test_stopping_early_ends_the_prefetch_thread(members, taxonomy, audio):
    scorer = Scorer(members, taxonomy)
    outputs = scorer.iter_member_outputs([audio["twelve"]] * 5)
    next(outputs)
    outputs.close()
    assert not any(t.name == "pantanal-prefetch" for t in threading.enumerate())


def test_config_round_trips_and_validates():
    config = ScoringConfig(tta_shifts=(0.0,), teacher_weight=0.5, teacher_sub_windows="centre")
    again = ScoringConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    with pytest.raises(ValueError, match="unknown scoring keys"):
        ScoringConfig.from_dict({"tta": [0.0]})
    with pytest.raises(ValueError) as error:
        ScoringConfig(tta_shifts=(), teacher_weight=-1, teacher_sub_windows="edges", windows_per_chunk=0)
    for key in ("tta_shifts", "teacher_weight", "teacher_sub_windows", "windows_per_chunk"):
        assert key in str(error.value)


def test_duplicate_member_names_are_rejected(members, taxonomy):
    with pytest.raises(ValueError, match="unique"):
        Scorer([members[0], members[0]], taxonomy)
