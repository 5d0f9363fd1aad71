"""Decode any recorder's file to mono float32 at the model's sample rate, in bounded memory.

`AudioStream` yields resampled blocks, so a 24-hour file never sits in memory whole. libsndfile
(through soundfile) reads WAV/RF64/W64/FLAC/OGG/Opus/MP3/AIFF; anything it cannot open (m4a/AAC,
Opus on an older libsndfile) goes through FFmpeg inside the PyAV wheel. Resampling is soxr's
streaming resampler, which gives bit-identical output whatever the block size, so windows cut from
streamed blocks equal those of a whole-file decode.

The stream keeps an honest record (`DecodeReport`): the length the header declared, the length
actually decoded, and where non-finite samples were zeroed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from infer.wavheader import declared_frames

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aif", ".aiff", ".w64", ".rf64")

# Source frames read per block are sized so that one block of any channel count and rate stays
# near this many bytes of float32.
_BLOCK_BYTES = 8 * 1024 * 1024


class AudioDecodeError(Exception):
    """A file could not be decoded; `cause` says why in words a field user can act on."""

    def __init__(self, path: Path | str, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = Path(path)
        self.cause = cause


@dataclass
class AudioInfo:
    """What a file's header says about it.

    Attributes:
        path: The file.
        sample_rate: Source rate in Hz.
        channels: Source channel count.
        declared_frames: Frames per channel the header declares; None where the format has no
            reliable count (some MP3 and streamed containers).
        format: Container, e.g. "WAV", "OGG", "mov,mp4,m4a".
        subtype: Sample encoding, e.g. "PCM_24", "VORBIS", "aac".
        backend: "soundfile" or "av".
    """

    path: Path
    sample_rate: int
    channels: int
    declared_frames: int | None
    format: str
    subtype: str
    backend: str

    @property
    def declared_seconds(self) -> float | None:
        if self.declared_frames is None:
            return None
        return self.declared_frames / self.sample_rate


@dataclass
class DecodeReport:
    """What decoding found, filled in while the stream is read.

    Attributes:
        decoded_frames: Source frames per channel actually decoded.
        nonfinite_samples: NaN or Inf samples that were replaced by zeros.
        nonfinite_seconds: Start time in seconds of each source block where that happened.
    """

    decoded_frames: int = 0
    nonfinite_samples: int = 0
    nonfinite_seconds: list[float] = field(default_factory=list)

    def length_mismatch(self, info: AudioInfo) -> int | None:
        """Declared minus decoded frames, or None when the header declares no length."""
        if info.declared_frames is None:
            return None
        return info.declared_frames - self.decoded_frames


class AudioStream:
    """Mono float32 blocks of one file, resampled to `sample_rate`.

    Args:
        path: Audio file.
        sample_rate: Output rate in Hz.
        channel: 0-based channel to keep; None averages all channels.

    Raises:
        AudioDecodeError: The file is missing, empty, unreadable, or `channel` does not exist.
    """

    def __init__(self, path: Path | str, sample_rate: int, channel: int | None = None) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.channel = channel
        self.report = DecodeReport()
        self.info = probe(self.path)
        if channel is not None and not 0 <= channel < self.info.channels:
            raise AudioDecodeError(
                self.path,
                f"channel {channel + 1} requested but the file has {self.info.channels} channel(s)",
            )

    def blocks(self) -> Iterator[np.ndarray]:
        """Yield mono float32 blocks at `sample_rate`; the last block flushes the resampler."""
        resampler = None
        if self.info.sample_rate != self.sample_rate:
            resampler = soxr.ResampleStream(
                self.info.sample_rate, self.sample_rate, 1, dtype="float32", quality="HQ"
            )
        source = _read_soundfile if self.info.backend == "soundfile" else _read_av
        pending = None
        for raw in source(self.info):
            mono = self._to_mono(raw)
            if pending is not None:
                yield _resample(resampler, pending, last=False)
            pending = mono
        if pending is None:
            pending = np.zeros(0, dtype=np.float32)
        yield _resample(resampler, pending, last=True)

    def _to_mono(self, raw: np.ndarray) -> np.ndarray:
        # raw: [frames, channels] float32
        start_seconds = self.report.decoded_frames / self.info.sample_rate
        self.report.decoded_frames += len(raw)
        mono = raw[:, self.channel] if self.channel is not None else raw.mean(axis=1)
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        bad = ~np.isfinite(mono)
        if bad.any():
            count = int(bad.sum())
            self.report.nonfinite_samples += count
            self.report.nonfinite_seconds.append(start_seconds)
            log.warning("%s: %d NaN/Inf samples near %.1f s replaced by zeros", self.path, count, start_seconds)
            mono[bad] = 0.0
        return mono


def decode_mono(path: Path | str, sample_rate: int, channel: int | None = None) -> np.ndarray:
    """Decode a whole file to one mono float32 array at `sample_rate` (for short files and tests)."""
    stream = AudioStream(path, sample_rate, channel)
    return np.concatenate(list(stream.blocks()))


def probe(path: Path) -> AudioInfo:
    """Read a file's header with libsndfile, falling back to PyAV for what libsndfile cannot open."""
    if not path.exists():
        raise AudioDecodeError(path, "file not found")
    if path.stat().st_size == 0:
        raise AudioDecodeError(path, "file is empty (0 bytes)")
    try:
        with sf.SoundFile(path) as handle:
            header = declared_frames(path)
            return AudioInfo(
                path=path,
                sample_rate=handle.samplerate,
                channels=handle.channels,
                declared_frames=header if header is not None else handle.frames,
                format=handle.format,
                subtype=handle.subtype,
                backend="soundfile",
            )
    except (sf.LibsndfileError, RuntimeError) as exc:
        soundfile_error = str(exc)
    return _probe_av(path, soundfile_error)


def _probe_av(path: Path, soundfile_error: str) -> AudioInfo:
    try:
        import av
    except ImportError as exc:
        raise AudioDecodeError(
            path,
            f"libsndfile cannot read it ({soundfile_error}) and PyAV is not installed; "
            "install the decoders extra: pip install 'pantanal[decoders]'",
        ) from exc
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioDecodeError(path, "the file contains no audio stream")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate or stream.rate
            channels = stream.codec_context.channels
            frames = None
            if stream.duration is not None and stream.time_base is not None:
                frames = int(round(float(stream.duration * stream.time_base) * rate))
            elif container.duration is not None:
                frames = int(round(container.duration / av.time_base * rate))
            return AudioInfo(
                path=path,
                sample_rate=int(rate),
                channels=int(channels),
                declared_frames=frames,
                format=container.format.name,
                subtype=stream.codec_context.name,
                backend="av",
            )
    except av.FFmpegError as exc:
        raise AudioDecodeError(
            path, f"not a readable audio file (libsndfile: {soundfile_error}; FFmpeg: {exc})"
        ) from exc


def _read_soundfile(info: AudioInfo) -> Iterator[np.ndarray]:
    block_frames = max(4096, _BLOCK_BYTES // (4 * info.channels))
    try:
        with sf.SoundFile(info.path) as handle:
            while True:
                block = handle.read(block_frames, dtype="float32", always_2d=True)
                if len(block) == 0:
                    return
                yield block
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioDecodeError(info.path, f"decoding failed part-way: {exc}") from exc


def _read_av(info: AudioInfo) -> Iterator[np.ndarray]:
    import av

    try:
        with av.open(str(info.path)) as container:
            stream = container.streams.audio[0]
            # Packed float32 keeps the channel layout, so downmixing stays ours.
            resampler = av.AudioResampler(format="flt", layout=stream.layout, rate=info.sample_rate)
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    yield converted.to_ndarray().reshape(-1, info.channels)
            for converted in resampler.resample(None):
                yield converted.to_ndarray().reshape(-1, info.channels)
    except av.FFmpegError as exc:
        raise AudioDecodeError(info.path, f"decoding failed part-way: {exc}") from exc


def _resample(resampler: soxr.ResampleStream | None, block: np.ndarray, last: bool) -> np.ndarray:
    if resampler is None:
        return block
    return resampler.resample_chunk(block, last=last)
