"""Log-mel front-end: one specification, computed here in numpy for inference.

The same `FrontendSpec` drives the torch module in `train.frontend`; a parity test keeps the two
within 1e-5 on real audio. Both compute the STFT, mel projection and log in float64 and cast the
normalised result to float32, because float32 FFT rounding in near-silent bins moves the
z-scored values by about 1e-4, well above the parity bound.

Frames use `center=False`: frame `j` of a window starting at sample `s` covers samples
`[s + j * hop, s + j * hop + n_fft)`. With window starts and TTA shifts that are multiples of the
hop, every window is then a slice of one file-level spectrogram, so the STFT of a file is
computed once for all windows and shifts (`logmel_from_starts`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

NORMALIZATIONS = ("zscore", "minmax")


class FrontendSpecError(ValueError):
    """A front-end specification is incomplete or inconsistent."""


@dataclass(frozen=True)
class FrontendSpec:
    """Everything needed to turn a window of audio into the model's log-mel input.

    Attributes:
        sample_rate: Audio sample rate in Hz; decoders resample to it.
        window_samples: Samples per window (5 s at 32 kHz = 160,000).
        n_fft: FFT size and Hann window length in samples.
        hop_length: Samples between frames.
        n_mels: Mel bands.
        fmin: Lowest mel band edge in Hz.
        fmax: Highest mel band edge in Hz.
        power: Exponent applied to the STFT magnitude (2 = power spectrogram).
        log_offset: Added to the mel energies before `10 * log10`, so silence stays finite.
        normalization: "zscore" (per-window mean 0, std 1) or "minmax" (per-window [0, 1]).
        norm_eps: Added to the std (or range) so a constant window maps to zeros, not NaN.
    """

    sample_rate: int = 32000
    window_samples: int = 160000
    n_fft: int = 2048
    hop_length: int = 500
    n_mels: int = 128
    fmin: float = 40.0
    fmax: float = 16000.0
    power: float = 2.0
    log_offset: float = 1e-10
    normalization: str = "zscore"
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        problems = []
        if self.window_samples < self.n_fft:
            problems.append(f"window_samples={self.window_samples} is shorter than n_fft={self.n_fft}")
        if self.hop_length <= 0:
            problems.append(f"hop_length={self.hop_length} must be positive")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            problems.append(
                f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={self.fmax}, "
                f"sample_rate={self.sample_rate}"
            )
        if self.normalization not in NORMALIZATIONS:
            problems.append(f"normalization={self.normalization!r} is not one of {NORMALIZATIONS}")
        if problems:
            raise FrontendSpecError("invalid front-end specification: " + "; ".join(problems))

    @property
    def n_frames(self) -> int:
        """Frames per window."""
        return 1 + (self.window_samples - self.n_fft) // self.hop_length

    @property
    def window_seconds(self) -> float:
        return self.window_samples / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def fingerprint(self) -> str:
        """Short sha256 of the specification, used to share front-end work between members."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FrontendSpec:
        """Build a spec, rejecting unknown keys and listing every missing one at once."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        missing = sorted(names - set(values))
        if unknown or missing:
            raise FrontendSpecError(
                f"front-end specification has unknown keys {unknown} and is missing {missing}; "
                "a model's front-end must be stated completely, never filled in from defaults"
            )
        return cls(**values)


def hann_window(length: int) -> np.ndarray:
    """Periodic Hann window (the convention of torch.hann_window and scipy's 'hann'), float64."""
    n = np.arange(length, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    # Slaney's auditory-toolbox scale: linear below 1 kHz, logarithmic above.
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mels = hz / f_sp
    log_region = hz >= min_log_hz
    mels[log_region] = min_log_mel + np.log(hz[log_region] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    hz = f_sp * mels
    log_region = mels >= min_log_mel
    hz[log_region] = min_log_hz * np.exp(logstep * (mels[log_region] - min_log_mel))
    return hz


def mel_filterbank(spec: FrontendSpec) -> np.ndarray:
    """Slaney-normalised triangular mel filters, float64 `[n_mels, n_fft // 2 + 1]`.

    Matches `librosa.filters.mel(htk=False, norm="slaney")`; the torch front-end uses this
    same matrix, so only the STFT differs between the two implementations.
    """
    n_freqs = spec.n_fft // 2 + 1
    fft_freqs = np.linspace(0.0, spec.sample_rate / 2, n_freqs)
    mel_edges = np.linspace(
        _hz_to_mel(np.array([spec.fmin]))[0], _hz_to_mel(np.array([spec.fmax]))[0], spec.n_mels + 2
    )
    hz_edges = _mel_to_hz(mel_edges)

    widths = np.diff(hz_edges)
    ramps = hz_edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))

    # Slaney normalisation: each filter has unit area, so band energies stay comparable.
    weights *= (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    return weights


class NumpyFrontend:
    """Numpy log-mel front-end for one specification; holds the Hann window and mel filters.

    Args:
        spec: The front-end specification, usually read from a model's metadata.
        chunk_frames: Frames transformed per FFT call; bounds memory on long inputs.
    """

    def __init__(self, spec: FrontendSpec, chunk_frames: int = 1024) -> None:
        self.spec = spec
        self.chunk_frames = chunk_frames
        self._window = hann_window(spec.n_fft)
        self._mel_t = np.ascontiguousarray(mel_filterbank(spec).T)  # [n_freqs, n_mels]

    def log_mel_frames(self, signal: np.ndarray) -> np.ndarray:
        """Log-mel energies (not normalised) of every frame of `signal`, float64 `[frames, n_mels]`.

        Frame `j` starts at sample `j * hop_length`; samples after the last whole frame are unused.
        """
        spec = self.spec
        signal = np.asarray(signal, dtype=np.float64)
        n_frames = 0 if len(signal) < spec.n_fft else 1 + (len(signal) - spec.n_fft) // spec.hop_length
        out = np.empty((n_frames, spec.n_mels), dtype=np.float64)
        if n_frames == 0:
            return out
        framed = np.lib.stride_tricks.sliding_window_view(signal, spec.n_fft)[:: spec.hop_length]
        for start in range(0, n_frames, self.chunk_frames):
            block = framed[start : start + self.chunk_frames] * self._window
            magnitude = np.abs(np.fft.rfft(block, n=spec.n_fft, axis=-1))
            energies = (magnitude**spec.power) @ self._mel_t
            out[start : start + len(block)] = 10.0 * np.log10(energies + spec.log_offset)
        return out

    def normalize(self, log_mel: np.ndarray) -> np.ndarray:
        """Per-window normalisation of `[..., n_mels, frames]` log-mels, returned as float32."""
        axes = (-2, -1)
        if self.spec.normalization == "zscore":
            mean = log_mel.mean(axis=axes, keepdims=True)
            std = log_mel.std(axis=axes, keepdims=True)
            normed = (log_mel - mean) / (std + self.spec.norm_eps)
        else:
            low = log_mel.min(axis=axes, keepdims=True)
            high = log_mel.max(axis=axes, keepdims=True)
            normed = (log_mel - low) / (high - low + self.spec.norm_eps)
        return normed.astype(np.float32)

    def window_logmel(self, windows: np.ndarray) -> np.ndarray:
        """Model input for whole windows: `[B, window_samples]` audio to `[B, 1, n_mels, frames]`."""
        windows = np.atleast_2d(windows)
        if windows.shape[-1] != self.spec.window_samples:
            raise ValueError(
                f"expected windows of {self.spec.window_samples} samples, got {windows.shape[-1]}"
            )
        stacked = np.stack([self.log_mel_frames(w).T for w in windows])  # [B, n_mels, frames]
        return self.normalize(stacked)[:, None]

    def logmel_from_starts(self, signal: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Model input for windows of `signal` starting at `starts` (samples), `[B, 1, M, F]`.

        When every start is a multiple of the hop, the spectrogram of `signal` is computed once
        and each window is a slice of it; the result equals `window_logmel` on the cut windows.
        Every window must lie inside `signal`: callers pad the file edges first.
        """
        spec = self.spec
        starts = np.asarray(starts, dtype=np.int64)
        if len(starts) == 0:
            return np.empty((0, 1, spec.n_mels, spec.n_frames), dtype=np.float32)
        if starts.min() < 0 or starts.max() + spec.window_samples > len(signal):
            raise ValueError("window starts must lie inside the padded signal")
        if np.any(starts % spec.hop_length):
            cuts = np.stack([signal[s : s + spec.window_samples] for s in starts])
            return self.window_logmel(cuts)

        first, last = int(starts.min()), int(starts.max()) + spec.window_samples
        frames = self.log_mel_frames(signal[first:last])  # [frames, n_mels]
        offsets = (starts - first) // spec.hop_length
        stacked = np.stack([frames[o : o + spec.n_frames].T for o in offsets])
        return self.normalize(stacked)[:, None]
