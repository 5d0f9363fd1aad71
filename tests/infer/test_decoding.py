"""Honest decoding: declared versus decoded length, broken headers, odd samples, streamed blocks."""

import os

import numpy as np
import pytest
import soundfile as sf

from infer import audio
from infer.audio import (
    AudioDecodeError,
    AudioStream,
    declared_length_error,
    decode_mono,
    decoded_length_error,
    length_difference_note,
    probe,
)
from infer.wavheader import declared_frames, read_declared_length
from tests.conftest import TOAD_44K
from tests.infer.field_files import GIB, pcm16, rf64_header, tone, w64_header, write, write_aac

RATE = 32000


@pytest.mark.parametrize("header", [rf64_header, w64_header], ids=["rf64", "w64"])
def test_header_over_4gib_is_read_in_64_bits(tmp_path, header):
    path = tmp_path / "big.wav"
    path.write_bytes(header(5 * GIB, RATE) + pcm16(tone(1.0, RATE)))
    assert declared_frames(path) == 5 * GIB // 2
    error = declared_length_error(probe(path))
    assert error is not None and error.code == "truncated"
    assert str(5 * GIB // 2) in error.cause


def test_sparse_rf64_over_4gib_probes_complete(tmp_path):
    path = tmp_path / "sparse.wav"
    header = rf64_header(5 * GIB, 8000)
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + 5 * GIB)
    if os.stat(path).st_blocks * 512 > GIB:
        path.unlink()
        pytest.skip("this filesystem does not store sparse files")
    info = probe(path)
    assert info.declared_frames == info.readable_frames == 5 * GIB // 2
    assert declared_length_error(info) is None


def test_aiff_header_length_is_parsed(tmp_path):
    path = write(tmp_path / "tone.aif", tone(2.0, 44100), 44100, format="AIFF", subtype="PCM_24")
    assert declared_frames(path) == 88200
    path.write_bytes(path.read_bytes()[:40000])
    error = declared_length_error(probe(path))
    assert error is not None and error.code == "truncated"


def test_riff_placeholder_size_means_unknown_length(tmp_path):
    path = write(tmp_path / "streaming.wav", tone(1.0, RATE), RATE)
    data = bytearray(path.read_bytes())
    data[40:44] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    assert read_declared_length(path).frames is None
    stream = AudioStream(path, RATE)
    assert sum(len(block) for block in stream.blocks()) == RATE
    assert decoded_length_error(stream.info, stream.report) is None


def test_unfinished_header_is_a_named_error(tmp_path):
    path = write(tmp_path / "unfinished.wav", tone(1.0, RATE), RATE)
    data = bytearray(path.read_bytes())
    data[40:44] = b"\x00\x00\x00\x00"
    path.write_bytes(bytes(data))
    with pytest.raises(AudioDecodeError) as error:
        probe(path)
    assert error.value.code == "unfinished"
    assert "64000 bytes" in error.value.cause


def test_header_only_and_garbage_are_named_errors(tmp_path):
    whole = write(tmp_path / "whole.wav", tone(1.0, RATE), RATE).read_bytes()
    header_only = tmp_path / "header_only.wav"
    header_only.write_bytes(whole[:44])
    assert declared_length_error(probe(header_only)).code == "no_audio"
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(AudioDecodeError) as error:
        probe(garbage)
    assert error.value.code == "unreadable"
    assert "not a readable audio file" in error.value.cause


def test_truncated_flac_names_where_decoding_failed(tmp_path):
    path = write(tmp_path / "tone.flac", tone(6.0, RATE), RATE)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    stream = AudioStream(path, RATE)
    with pytest.raises(AudioDecodeError) as error:
        list(stream.blocks())
    assert error.value.code == "decode_failed"
    assert "decoding failed after" in error.value.cause


def test_truncated_mp3_is_found_after_decoding(tmp_path):
    path = write(tmp_path / "tone.mp3", tone(4.0, RATE), RATE, format="MP3")
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 6 // 10])
    stream = AudioStream(path, RATE)
    assert declared_length_error(stream.info) is None
    list(stream.blocks())
    assert decoded_length_error(stream.info, stream.report).code == "truncated"
    note = length_difference_note(stream.info, stream.report)
    shortfall = stream.info.declared_frames - stream.report.decoded_frames
    assert f"(-{shortfall} samples, " in note, note


def test_m4a_decodes_through_pyav(tmp_path):
    stream = AudioStream(write_aac(tmp_path / "tone.m4a", 2.0), RATE)
    decoded = np.concatenate(list(stream.blocks()))
    assert stream.info.backend == "av"
    assert abs(len(decoded) - 2 * RATE) < 0.1 * RATE
    assert decoded_length_error(stream.info, stream.report) is None


def test_nonfinite_samples_are_zeroed_and_located(tmp_path):
    samples = tone(7.0, RATE)
    samples[1000:1010] = np.nan
    samples[5 * RATE + 7] = -np.inf
    stream = AudioStream(write(tmp_path / "nan.wav", samples, RATE, subtype="FLOAT"), RATE)
    decoded = np.concatenate(list(stream.blocks()))
    assert np.isfinite(decoded).all()
    assert not decoded[1000:1010].any()
    assert stream.report.nonfinite_samples == 11
    assert stream.report.nonfinite_seconds == [0, 5]


def test_channel_of_six_channel_extensible_wav(tmp_path):
    data = tone(1.0, 48000, channels=6)
    path = write(tmp_path / "wavex.wav", data, 48000, format="WAVEX", subtype="FLOAT")
    assert sf.info(path).format == "WAVEX"
    last = decode_mono(path, 48000, channel=5)
    np.testing.assert_allclose(last, data[:, 5], atol=1e-6)
    np.testing.assert_allclose(decode_mono(path, 48000), data.mean(axis=1), atol=1e-6)


def test_streamed_resampling_equals_one_block(monkeypatch):
    whole = decode_mono(TOAD_44K, RATE)
    monkeypatch.setattr(audio, "_BLOCK_BYTES", 4 * 7919)
    stream = AudioStream(TOAD_44K, RATE)
    blocks = list(stream.blocks())
    assert len(blocks) > 100
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


@pytest.mark.parametrize("rate", [8000, 384000])
def test_extreme_rates_resample_to_model_rate(tmp_path, rate):
    path = write(tmp_path / f"r{rate}.wav", tone(1.5, rate), rate, subtype="PCM_16")
    assert abs(len(decode_mono(path, RATE)) - int(1.5 * RATE)) <= 1


def test_text_renamed_mp3_not_called_missing(tmp_path):
    fake = tmp_path / "notes.mp3"
    fake.write_text("field notes, not a recording\n" * 20)
    with pytest.raises(AudioDecodeError) as error:
        probe(fake)
    assert error.value.code == "unreadable"
    assert "does not exist" not in error.value.cause
