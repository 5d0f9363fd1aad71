import librosa
import numpy as np
import pytest

from infer.audio import decode_mono
from infer.frontend import FrontendSpec, FrontendSpecError, NumpyFrontend, mel_filterbank
from tests.conftest import S22_SOUNDSCAPE

SPEC = FrontendSpec()


def test_spec_frames_and_window():
    assert SPEC.n_frames == 316
    assert SPEC.window_samples == 5 * SPEC.sample_rate


def test_spec_from_dict_lists_all_problems():
    values = SPEC.to_dict()
    del values["n_mels"], values["hop_length"]
    values["colour"] = "blue"
    with pytest.raises(FrontendSpecError) as error:
        FrontendSpec.from_dict(values)
    message = str(error.value)
    assert "colour" in message
    assert "n_mels" in message and "hop_length" in message


def test_spec_rejects_inconsistent_values():
    with pytest.raises(FrontendSpecError, match="fmax"):
        FrontendSpec(fmax=20000.0)
    with pytest.raises(FrontendSpecError, match="normalization"):
        FrontendSpec(normalization="loudness")


def test_mel_filterbank_matches_librosa():
    ours = mel_filterbank(SPEC)
    reference = librosa.filters.mel(sr=SPEC.sample_rate, n_fft=SPEC.n_fft, n_mels=SPEC.n_mels,
                                    fmin=SPEC.fmin, fmax=SPEC.fmax, htk=False, norm="slaney", dtype=np.float64)
    np.testing.assert_allclose(ours, reference, atol=1e-12, rtol=1e-9)


@pytest.fixture(scope="module")
def soundscape() -> np.ndarray:
    return decode_mono(S22_SOUNDSCAPE, SPEC.sample_rate)


def test_window_logmel_shape_and_zscore(soundscape):
    frontend = NumpyFrontend(SPEC)
    logmel = frontend.window_logmel(soundscape[: 2 * SPEC.window_samples].reshape(2, -1))
    assert logmel.shape == (2, 1, 128, 316)
    assert logmel.dtype == np.float32
    np.testing.assert_allclose(logmel.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(logmel.std(axis=(1, 2, 3)), 1.0, atol=1e-4)


def test_minmax_normalisation_range(soundscape):
    spec = FrontendSpec(n_mels=64, normalization="minmax")
    logmel = NumpyFrontend(spec).window_logmel(soundscape[: spec.window_samples][None])
    assert logmel.shape == (1, 1, 64, 316)
    assert logmel.min() == pytest.approx(0.0, abs=1e-6)
    assert logmel.max() == pytest.approx(1.0, abs=1e-5)


def test_silence_and_dc_stay_finite():
    frontend = NumpyFrontend(SPEC)
    silence = np.zeros((1, SPEC.window_samples), np.float32)
    dc = np.full((1, SPEC.window_samples), 0.9, np.float32)
    for window in (silence, dc):
        logmel = frontend.window_logmel(window)
        assert np.isfinite(logmel).all()
    assert np.abs(frontend.window_logmel(silence)).max() == 0.0


def test_shared_stft_equals_per_window(soundscape):
    frontend = NumpyFrontend(SPEC)
    signal = soundscape[: 3 * SPEC.window_samples + 32000]
    starts = np.array([0, 16000, SPEC.window_samples, 2 * SPEC.window_samples + 16000])
    shared = frontend.logmel_from_starts(signal, starts)
    cut = frontend.window_logmel(np.stack([signal[s : s + SPEC.window_samples] for s in starts]))
    np.testing.assert_array_equal(shared, cut)


def test_unaligned_starts_fall_back_to_per_window(soundscape):
    frontend = NumpyFrontend(SPEC)
    signal = soundscape[: 2 * SPEC.window_samples]
    starts = np.array([0, 777])
    shared = frontend.logmel_from_starts(signal, starts)
    cut = frontend.window_logmel(np.stack([signal[s : s + SPEC.window_samples] for s in starts]))
    np.testing.assert_array_equal(shared, cut)
