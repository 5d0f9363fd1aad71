"""Decode any recorder's file to mono float32 at the model's sample rate, in bounded memory.

`AudioStream` yields resampled blocks, so a 24-hour file never sits in memory whole. libsndfile
(through soundfile) reads WAV/RF64/W64/FLAC/OGG/Opus/MP3/AIFF; anything it cannot open (m4a/AAC,
Opus on an older libsndfile) goes through FFmpeg inside the PyAV wheel. Resampling is soxr's
streaming resampler, which gives bit-identical output whatever the block size, so windows cut from
streamed blocks equal those of a whole-file decode.

The stream keeps an honest record (`DecodeReport`): the length the header declared, the length
actually decoded, and where non-finite samples were zeroed. `decoded_length_error` and
`declared_length_error` turn that record into a per-file error for empty, header-only and
truncated files; the messages are field-facing, so they go through gettext.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from infer.i18n import _, decimal
from infer.wavheader import read_declared_length

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aif", ".aiff", ".w64", ".rf64")

# Source frames read per block are sized so that one block of any channel count and rate stays
# near this many bytes of float32.
_BLOCK_BYTES = 8 * 1024 * 1024

# FFmpeg derives the declared length of AAC/M4A from the container duration, which counts encoder
# delay and padding differently from the decoder (1024 to 2048 samples for AAC). libsndfile's counts
# are exact, so only the PyAV path gets this tolerance before a shortfall counts as truncation.
_ESTIMATED_LENGTH_TOLERANCE_S = 0.1


class AudioDecodeError(Exception):
    """A file could not be decoded; `cause` explains why in words a field user can act on.

    Attributes:
        path: The file.
        cause: Field-facing explanation, in the active language.
        code: Stable English category for scripts: not_found, empty, unreadable, no_decoder,
            no_audio, unfinished, truncated, decode_failed or channel.
    """

    def __init__(self, path: Path | str, cause: str, code: str = "unreadable") -> None:
        super().__init__(f"{path}: {cause}")
        self.path = Path(path)
        self.cause = cause
        self.code = code


class _DecodeFailure(Exception):
    """A backend failed part-way through a file; `AudioStream.blocks` adds where."""


@dataclass
class AudioInfo:
    """What a file's header says about it.

    Attributes:
        path: The file.
        sample_rate: Source rate in Hz.
        channels: Source channel count.
        declared_frames: Frames per channel the header declares; None where the format has no
            reliable count (some MP3 and streamed containers, or a placeholder size).
        format: Container, e.g. "WAV", "OGG", "mov,mp4,m4a".
        subtype: Sample encoding, e.g. "PCM_24", "VORBIS", "aac".
        backend: "soundfile" or "av".
        readable_frames: Frames the decoder expects to read, known before decoding. For WAV, RF64,
            W64 and AIFF libsndfile derives it from the file size, so a file cut short has fewer
            readable than declared frames. None where the backend cannot tell in advance.
    """

    path: Path
    sample_rate: int
    channels: int
    declared_frames: int | None
    format: str
    subtype: str
    backend: str
    readable_frames: int | None = None

    @property
    def declared_seconds(self) -> float | None:
        if self.declared_frames is None:
            return None
        return self.declared_frames / self.sample_rate

    @property
    def length_tolerance_frames(self) -> int:
        """Shortfall below which decoded audio still counts as the declared length."""
        if self.backend == "soundfile":
            return 0
        return int(_ESTIMATED_LENGTH_TOLERANCE_S * self.sample_rate)


@dataclass
class DecodeReport:
    """What decoding found, filled in while the stream is read.

    Attributes:
        decoded_frames: Source frames per channel actually decoded.
        nonfinite_samples: NaN or Inf samples (after channel selection or downmix) that were
            replaced by zeros.
        nonfinite_seconds: Every whole second of source time (0-based, ascending) that contained
            at least one of them.
    """

    decoded_frames: int = 0
    nonfinite_samples: int = 0
    nonfinite_seconds: list[int] = field(default_factory=list)

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
                _("channel %d requested but the file has %d channel(s)") % (channel + 1, self.info.channels),
                code="channel",
            )

    def blocks(self) -> Iterator[np.ndarray]:
        """Yield mono float32 blocks at `sample_rate`; the last block flushes the resampler.

        Raises:
            AudioDecodeError: The decoder failed part-way; the cause states after how many seconds.
        """
        resampler = None
        if self.info.sample_rate != self.sample_rate:
            resampler = soxr.ResampleStream(
                self.info.sample_rate, self.sample_rate, 1, dtype="float32", quality="HQ"
            )
        source = _read_soundfile if self.info.backend == "soundfile" else _read_av
        pending = None
        try:
            for raw in source(self.info):
                mono = self._to_mono(raw)
                if pending is not None:
                    yield _resample(resampler, pending, last=False)
                pending = mono
        except _DecodeFailure as exc:
            seconds = self.report.decoded_frames / self.info.sample_rate
            raise AudioDecodeError(
                self.path,
                _("decoding failed after %s s of audio were read (%s); the file is probably truncated or damaged")
                % (decimal(seconds, 1), exc),
                code="decode_failed",
            ) from exc
        if pending is None:
            pending = np.zeros(0, dtype=np.float32)
        yield _resample(resampler, pending, last=True)

    def _to_mono(self, raw: np.ndarray) -> np.ndarray:
        # raw: [frames, channels] float32
        first_frame = self.report.decoded_frames
        self.report.decoded_frames += len(raw)
        mono = raw[:, self.channel] if self.channel is not None else raw.mean(axis=1)
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        bad = ~np.isfinite(mono)
        if bad.any():
            count = int(bad.sum())
            seconds = np.unique((first_frame + np.flatnonzero(bad)) // self.info.sample_rate).tolist()
            known = self.report.nonfinite_seconds
            if known and seconds[0] == known[-1]:
                seconds = seconds[1:]
            known.extend(int(s) for s in seconds)
            self.report.nonfinite_samples += count
            log.warning(
                "%s: %d NaN/Inf samples from %.1f s replaced by zeros",
                self.path, count, first_frame / self.info.sample_rate,
            )
            mono[bad] = 0.0
        return mono


def decode_mono(path: Path | str, sample_rate: int, channel: int | None = None) -> np.ndarray:
    """Decode a whole file to one mono float32 array at `sample_rate` (for short files and tests)."""
    stream = AudioStream(path, sample_rate, channel)
    return np.concatenate(list(stream.blocks()))


def probe(path: Path) -> AudioInfo:
    """Read a file's header with libsndfile, falling back to PyAV for what libsndfile cannot open.

    Raises:
        AudioDecodeError: The file is missing, empty, not audio, or its header declares no
            samples although data follows it.
    """
    if not path.exists():
        raise AudioDecodeError(path, _("file not found"), code="not_found")
    size = path.stat().st_size
    if size == 0:
        raise AudioDecodeError(path, _("file is empty (0 bytes)"), code="empty")
    try:
        with sf.SoundFile(path) as handle:
            info = AudioInfo(
                path=path,
                sample_rate=handle.samplerate,
                channels=handle.channels,
                declared_frames=handle.frames,
                format=handle.format,
                subtype=handle.subtype,
                backend="soundfile",
                readable_frames=handle.frames,
            )
    except sf.LibsndfileError as exc:
        return _probe_av(path, _libsndfile_cause(path, exc.error_string.rstrip(".")))
    except (RuntimeError, OSError) as exc:
        return _probe_av(path, str(exc))
    _apply_header(info, size)
    return info


def _libsndfile_cause(path: Path, message: str) -> str:
    # libsndfile's MP3 reader reports data it cannot parse as "File does not exist or is not a
    # regular file", which misleads when the file exists, so it becomes an unrecognised format.
    if message.startswith("File does not exist") and path.is_file():
        return _("format not recognised")
    return message


def _apply_header(info: AudioInfo, file_size: int) -> None:
    # Our own parse of WAV/RF64/W64/AIFF headers replaces libsndfile's size-derived count.
    header = read_declared_length(info.path)
    if header is None:
        return
    info.declared_frames = header.frames
    if header.frames == 0 and file_size > header.data_offset:
        raise AudioDecodeError(
            info.path,
            _("the header declares no samples although %d bytes of data follow it: the recording "
              "was probably not closed properly (power loss or a full card); a WAV repair tool can "
              "rebuild the header") % (file_size - header.data_offset),
            code="unfinished",
        )


def _probe_av(path: Path, soundfile_error: str) -> AudioInfo:
    try:
        import av
    except ImportError as exc:
        raise AudioDecodeError(
            path,
            _("libsndfile cannot read it (%s) and PyAV is not installed; "
              "install the decoders extra: pip install 'pantanal[decoders]'") % soundfile_error,
            code="no_decoder",
        ) from exc
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioDecodeError(path, _("the file contains no audio stream"), code="no_audio")
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
            path,
            _("not a readable audio file (libsndfile: %s; FFmpeg: %s)") % (soundfile_error, exc.strerror or exc),
            code="unreadable",
        ) from exc


def declared_length_error(info: AudioInfo) -> AudioDecodeError | None:
    """Check the header against the file size; return the error for a short file, else None.

    libsndfile sizes WAV, RF64, W64 and AIFF files from their bytes on disk, so comparing that with
    our parse of the header finds a file cut short without decoding it. Other formats are checked
    after decoding, by `decoded_length_error`.
    """
    if info.declared_frames is None or info.readable_frames is None:
        return None
    if info.readable_frames == 0 and info.declared_frames > 0:
        return AudioDecodeError(
            info.path,
            _("contains only a header: it declares %s but holds no audio data")
            % format_duration(info.declared_frames / info.sample_rate),
            code="no_audio",
        )
    if info.declared_frames - info.readable_frames > info.length_tolerance_frames:
        return _truncated(info, info.readable_frames)
    return None


def decoded_length_error(info: AudioInfo, report: DecodeReport) -> AudioDecodeError | None:
    """Check a finished decode; return the error for no audio or fewer frames than declared, else None."""
    if report.decoded_frames == 0:
        return AudioDecodeError(info.path, _("contains no audio samples (only a header)"), code="no_audio")
    missing = report.length_mismatch(info)
    if missing is not None and missing > info.length_tolerance_frames:
        return _truncated(info, report.decoded_frames)
    return None


def length_difference_note(info: AudioInfo, report: DecodeReport) -> str | None:
    """Describe any difference between the decoded and the declared length; None when they agree."""
    difference = report.length_mismatch(info)
    if not difference:
        return None
    # Differences are often a few milliseconds of encoder padding, so give them in samples and
    # seconds rather than as two durations that print alike.
    change = report.decoded_frames - info.declared_frames
    return _("decoded %d samples where the header declares %d (%+d samples, %s s)") % (
        report.decoded_frames, info.declared_frames, change, decimal(abs(change) / info.sample_rate, 3),
    )


def _truncated(info: AudioInfo, available_frames: int) -> AudioDecodeError:
    declared = info.declared_frames / info.sample_rate
    available = available_frames / info.sample_rate
    return AudioDecodeError(
        info.path,
        _("truncated: the header declares %s (%d samples) but only %s (%d samples) could be decoded; the "
          "file was probably cut short (full card, power loss or an interrupted copy)")
        % (format_duration(declared), info.declared_frames, format_duration(available), available_frames),
        code="truncated",
    )


def format_duration(seconds: float) -> str:
    """`12.5 s` below a minute, else `H:MM:SS`."""
    if seconds < 60:
        return f"{decimal(seconds, 1)} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}"


def _read_soundfile(info: AudioInfo) -> Iterator[np.ndarray]:
    # NOTE: libsndfile 1.2 decodes an Ogg Vorbis file with garbage pages in the middle to its full
    # declared length without any error, so that damage is scored unnoticed.
    block_frames = max(4096, _BLOCK_BYTES // (4 * info.channels))
    try:
        with sf.SoundFile(info.path) as handle:
            while True:
                block = handle.read(block_frames, dtype="float32", always_2d=True)
                if len(block) == 0:
                    return
                yield block
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise _DecodeFailure(str(exc)) from exc


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
        raise _DecodeFailure(str(exc)) from exc


def _resample(resampler: soxr.ResampleStream | None, block: np.ndarray, last: bool) -> np.ndarray:
    if resampler is None:
        return block
    return resampler.resample_chunk(block, last=last)
