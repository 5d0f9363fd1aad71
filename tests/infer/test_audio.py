"""Decoding real and generated files to mono 32 kHz, and windowing them."""

import numpy as np
import pytest
import soundfile as sf

from infer.audio import AudioDecodeError, AudioStream, decode_mono
from infer.windows import Windower, row_id, window_bounds
from tests.conftest import S22_SOUNDSCAPE, SHORT_CLIP, TOAD_44K, write_tone

RATE = 32000


def test_short_focal_clip_decodes():
    audio = decode_mono(SHORT_CLIP, RATE)
    assert len(audio) == 9216  # 0.29 s at 32 kHz
    assert audio.dtype == np.float32


def test_44k_file_is_resampled():
    info = sf.info(TOAD_44K)
    audio = decode_mono(TOAD_44K, RATE)
    assert info.samplerate == 44100
    assert abs(len(audio) - round(info.frames * RATE / 44100)) <= 1


def test_stereo_is_downmixed(tmp_path):
    path = write_tone(tmp_path / "stereo.wav", 1.0, channels=2)
    data, _ = sf.read(path, dtype="float32")
    audio = decode_mono(path, RATE)
    np.testing.assert_allclose(audio, data.mean(axis=1), atol=1e-6)


def test_channel_selection(tmp_path):
    path = write_tone(tmp_path / "stereo.wav", 1.0, channels=2)
    data, _ = sf.read(path, dtype="float32")
    np.testing.assert_allclose(decode_mono(path, RATE, channel=1), data[:, 1], atol=1e-6)
    with pytest.raises(AudioDecodeError, match="channel 3"):
        AudioStream(path, RATE, channel=2)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_sample_formats(tmp_path, subtype):
    path = write_tone(tmp_path / f"{subtype}.wav", 0.5, rate=RATE, subtype=subtype)
    audio = decode_mono(path, RATE)
    reference = decode_mono(write_tone(tmp_path / "ref.wav", 0.5, rate=RATE, subtype="FLOAT"), RATE)
    assert len(audio) == len(reference)
    tolerance = 1.0 / 64 if subtype == "PCM_U8" else 1e-3
    assert np.abs(audio - reference).max() < tolerance


def test_missing_and_empty_files_raise_named_errors(tmp_path):
    with pytest.raises(AudioDecodeError, match="not found"):
        AudioStream(tmp_path / "absent.wav", RATE)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty") as error:
        AudioStream(empty, RATE)
    assert error.value.path == empty


def test_windower_pads_the_last_window():
    audio = np.arange(12_500, dtype=np.float32)
    windower = Windower(window_samples=5000, margin=0, windows_per_chunk=2)
    chunks = list(windower.chunks([audio[:7000], audio[7000:]]))
    windows = np.concatenate([c.windows() for c in chunks])
    assert windower.n_windows == 3
    assert windows.shape == (3, 5000)
    np.testing.assert_array_equal(windows[2, :2500], audio[10000:])
    assert not windows[2, 2500:].any()


def test_windower_short_input_gives_one_row():
    windower = Windower(window_samples=5000, margin=100)
    chunks = list(windower.chunks([np.ones(300, np.float32)]))
    assert windower.n_windows == 1
    assert chunks[0].windows().shape == (1, 5000)


def test_windower_margins_hold_neighbouring_audio():
    audio = np.arange(20_000, dtype=np.float32)
    windower = Windower(window_samples=5000, margin=500, windows_per_chunk=1)
    chunks = list(windower.chunks([audio]))
    shifted = chunks[1].windows(shift_samples=-500)[0]
    np.testing.assert_array_equal(shifted, audio[4500:9500])
    first_early = chunks[0].windows(shift_samples=-500)[0]
    assert not first_early[:500].any()  # before the file start: padded, not dropped
    np.testing.assert_array_equal(first_early[500:], audio[:4500])


def test_streamed_windows_equal_whole_file_windows():
    stream = AudioStream(S22_SOUNDSCAPE, RATE)
    blocks = list(stream.blocks())
    whole = np.concatenate(blocks)
    small_blocks = [whole[i : i + 7919] for i in range(0, len(whole), 7919)]
    a = np.concatenate([c.windows(0) for c in Windower(160000, 16000, 5).chunks(small_blocks)])
    b = np.concatenate([c.windows(0) for c in Windower(160000, 16000, 12).chunks([whole])])
    np.testing.assert_array_equal(a, b)
    assert len(a) == 12


def test_row_ids_and_bounds():
    assert row_id("BC2026_Train_0039_S22_20211231_201500", 0, 5.0) == "BC2026_Train_0039_S22_20211231_201500_5"
    assert row_id("x", 11, 5.0) == "x_60"
    starts, ends = window_bounds(3, 12.5, 5.0)
    np.testing.assert_array_equal(starts, [0, 5, 10])
    np.testing.assert_array_equal(ends, [5, 10, 12.5])
