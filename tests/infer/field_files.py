"""Generate a folder of the files field recorders produce, healthy and broken, with expectations.

Every format, sample rate, bit depth and breakage `pantanal infer` must handle is written here
from synthetic tones, so the tests need no fixtures on disk beyond the real recordings.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

GIB = 1 << 30
_W64_RIFF = bytes.fromhex("726966662e91cf11a5d628db04c10000")
_W64_WAVE = bytes.fromhex("77617665f3acd3118cd100c04f8edb8a")
_W64_FMT = bytes.fromhex("666d7420f3acd3118cd100c04f8edb8a")
_W64_DATA = bytes.fromhex("64617461f3acd3118cd100c04f8edb8a")


@dataclass(frozen=True)
class Expected:
    """What `pantanal infer` must do with one generated file.

    Attributes:
        error: The error code in errors.csv, or None for a healthy file.
        cause: A word the cause must contain (failed files only).
        note: A word one of the file's notes must contain (healthy files only).
    """

    error: str | None = None
    cause: str = ""
    note: str = ""


def tone(seconds: float, rate: int, channels: int = 1, frequency: float = 1500.0) -> np.ndarray:
    """A tone with a little noise, float32 `[frames]` or `[frames, channels]`."""
    t = np.arange(int(round(seconds * rate))) / rate
    mono = 0.3 * np.sin(2 * np.pi * min(frequency, rate / 4) * t)
    mono += 0.01 * np.random.default_rng(int(seconds * 1000) + rate).standard_normal(len(t))
    if channels == 1:
        return mono.astype(np.float32)
    return np.stack([mono * (1 - 0.1 * c) for c in range(channels)], axis=1).astype(np.float32)


def write(path: Path, data: np.ndarray, rate: int, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, **kwargs)
    return path


def write_aac(path: Path, seconds: float, rate: int = 44100) -> Path:
    """An AAC file in an MP4 (m4a) container, encoded by FFmpeg inside PyAV."""
    import av

    samples = tone(seconds, rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024].copy(), format="fltp", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def rf64_header(data_bytes: int, rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """An RF64 header whose ds64 chunk declares `data_bytes` of 16-bit PCM (any size, >4 GiB too)."""
    block_align = channels * bits // 8
    ds64 = struct.pack("<QQQI", data_bytes + 72, data_bytes, data_bytes // block_align, 0)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block_align, block_align, bits)
    return (b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"ds64" + struct.pack("<I", len(ds64)) + ds64
            + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0xFFFFFFFF))


def w64_header(data_bytes: int, rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A Sony Wave64 header declaring `data_bytes` of 16-bit PCM; sizes are 64-bit and count the 24-byte chunk header."""
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block_align, block_align, bits)
    total = 16 + 8 + 16 + (24 + len(fmt)) + 24 + data_bytes
    return (_W64_RIFF + struct.pack("<Q", total) + _W64_WAVE + _W64_FMT + struct.pack("<Q", 24 + len(fmt)) + fmt
            + _W64_DATA + struct.pack("<Q", 24 + data_bytes))


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def make_field_folder(root: Path) -> dict[Path, Expected]:
    """Write the healthy and broken files under `root`; return what is expected of each."""
    expected: dict[Path, Expected] = {}
    expected.update(_containers(root / "formats"))
    expected.update(_rates_and_depths(root / "rates_depths"))
    expected.update(_odd_but_healthy(root / "odd"))
    expected.update(_broken(root / "broken"))
    return expected


def _containers(folder: Path) -> dict[Path, Expected]:
    rate = 32000
    files = {
        write(folder / "pcm16.wav", tone(7.0, rate), rate, subtype="PCM_16"): Expected(),
        write(folder / "UPPER CASE.WAV", tone(2.0, rate), rate, subtype="PCM_16"): Expected(),
        write(folder / "tone.flac", tone(6.0, 48000), 48000, subtype="PCM_24"): Expected(),
        write(folder / "tone.ogg", tone(3.0, rate), rate, format="OGG", subtype="VORBIS"): Expected(),
        write(folder / "tone.opus", tone(3.0, 48000), 48000, format="OGG", subtype="OPUS"): Expected(),
        write(folder / "tone.mp3", tone(3.0, 44100), 44100, format="MP3", subtype="MPEG_LAYER_III"): Expected(),
        write(folder / "tone.aif", tone(2.0, 44100), 44100, format="AIFF", subtype="PCM_16"): Expected(),
        write(folder / "tone.w64", tone(2.0, rate), rate, format="W64", subtype="PCM_16"): Expected(),
        write(folder / "rf64.wav", tone(2.0, rate), rate, format="RF64", subtype="PCM_16"): Expected(),
        write_aac(folder / "tone.m4a", 3.0): Expected(),
    }
    return files


def _rates_and_depths(folder: Path) -> dict[Path, Expected]:
    files = {}
    for rate in (8000, 22050, 44100, 96000, 192000, 384000):
        files[write(folder / f"rate_{rate}.wav", tone(1.5, rate), rate, subtype="PCM_16")] = Expected()
    for subtype in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        files[write(folder / f"depth_{subtype.lower()}.wav", tone(1.2, 32000), 32000, subtype=subtype)] = Expected()
    extensible = write(folder / "extensible_6ch.wav", tone(2.0, 48000, channels=6), 48000, format="WAVEX", subtype="PCM_24")
    files[extensible] = Expected()
    files[write(folder / "stereo.wav", tone(2.0, 32000, channels=2), 32000, subtype="PCM_16")] = Expected()
    return files


def _odd_but_healthy(folder: Path) -> dict[Path, Expected]:
    rate = 32000
    with_nan = tone(6.0, rate, channels=1)
    with_nan[1000:1010] = np.nan
    with_nan[rate * 5 + 7] = np.inf
    files = {
        write(folder / "gravação de campo ç.wav", tone(2.0, rate), rate): Expected(),
        write(folder / "鳥の歌 2024.flac", tone(2.0, rate), rate): Expected(),
        write(folder / "nan_inf.wav", with_nan, rate, subtype="FLOAT"): Expected(note="NaN"),
        write(folder / "digital_silence.wav", np.zeros(rate * 6, np.float32), rate): Expected(),
        write(folder / "dc_offset.wav", 0.9 + 0.01 * tone(6.0, rate), rate, subtype="FLOAT"): Expected(),
        write(folder / "short_0.2s.wav", tone(0.2, rate), rate): Expected(),
        write(folder / "site_a" / "rec.wav", tone(2.0, rate), rate): Expected(),
        write(folder / "site_b" / "rec.wav", tone(3.0, rate, frequency=4000), rate): Expected(),
    }
    streaming = folder / "size_placeholder.wav"
    data = bytearray(write(streaming, tone(2.0, rate), rate).read_bytes())
    marker = data.find(b"data")
    data[4:8] = data[marker + 4 : marker + 8] = struct.pack("<I", 0xFFFFFFFF)
    streaming.write_bytes(bytes(data))
    files[streaming] = Expected()
    return files


def _broken(folder: Path) -> dict[Path, Expected]:
    folder.mkdir(parents=True, exist_ok=True)
    rate = 32000
    files = {}
    (folder / "zero_bytes.wav").write_bytes(b"")
    files[folder / "zero_bytes.wav"] = Expected("empty", "0 bytes")

    # WAV cut after its header, cut in the middle, and with a data size never filled in
    whole = write(folder / "whole.wav", tone(4.0, rate), rate).read_bytes()
    (folder / "whole.wav").unlink()
    (folder / "header_only.wav").write_bytes(whole[:44])
    files[folder / "header_only.wav"] = Expected("no_audio", "header")
    (folder / "truncated.wav").write_bytes(whole[: len(whole) * 6 // 10])
    files[folder / "truncated.wav"] = Expected("truncated", "truncated")
    unfinished = bytearray(whole)
    unfinished[40:44] = struct.pack("<I", 0)
    (folder / "unfinished.wav").write_bytes(bytes(unfinished))
    files[folder / "unfinished.wav"] = Expected("unfinished", "not closed")

    # other containers cut at 60 %
    for name, code, word in (("flac", "decode_failed", "truncated"), ("mp3", "truncated", "truncated"),
                             ("aif", "truncated", "truncated"), ("m4a", "unreadable", "readable")):
        source = folder / f"whole.{name}"
        if name == "m4a":
            write_aac(source, 4.0)
        else:
            write(source, tone(4.0, rate), rate, format={"flac": "FLAC", "mp3": "MP3", "aif": "AIFF"}[name])
        data = source.read_bytes()
        source.unlink()
        (folder / f"truncated.{name}").write_bytes(data[: len(data) * 6 // 10])
        files[folder / f"truncated.{name}"] = Expected(code, word)

    (folder / "garbage.ogg").write_bytes(np.random.default_rng(7).bytes(6000))
    files[folder / "garbage.ogg"] = Expected("unreadable", "readable")
    # Headers that declare more than 4 GiB of audio over one second of samples.
    (folder / "rf64_5gib.wav").write_bytes(rf64_header(5 * GIB, rate) + pcm16(tone(1.0, rate)))
    files[folder / "rf64_5gib.wav"] = Expected("truncated", "truncated")
    (folder / "w64_5gib.w64").write_bytes(w64_header(5 * GIB, rate) + pcm16(tone(1.0, rate)))
    files[folder / "w64_5gib.w64"] = Expected("truncated", "truncated")
    return files
