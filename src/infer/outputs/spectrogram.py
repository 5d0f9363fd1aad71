"""Spectrogram images for the HTML report, built from streamed audio in bounded memory.

The builder receives each decoded block once (it rides on the scorer's decode) and keeps only a
fixed-size grid: `max_columns` columns of `n_mels` mel bands. Each column averages the log-mel
energies of a few FFT frames spread over its time span, so a 24-hour file costs a few thousand
FFTs, not millions. When a file runs longer than its header promised, neighbouring columns are
merged in pairs, which keeps the grid bounded whatever the real length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from infer.frontend import FrontendSpec, NumpyFrontend
from infer.outputs.png import encode_indexed_png

# Mel energies more than this far below the loudest column are drawn black.
_DYNAMIC_RANGE_DB = 80.0


@dataclass(frozen=True)
class Spectrogram:
    """A rendered spectrogram.

    Attributes:
        png: The image, low frequencies at the bottom.
        seconds_per_column: Time span of one image column.
        columns: Image width in pixels.
        fmax: Frequency of the top row in Hz.
    """

    png: bytes
    seconds_per_column: float
    columns: int
    fmax: float


class SpectrogramBuilder:
    """Accumulate a bounded mel spectrogram of one file, block by block.

    Args:
        sample_rate: Rate of the blocks in Hz.
        expected_seconds: Declared duration, used to choose the time resolution; None when
            unknown (the grid then starts fine and coarsens as the file goes on).
        max_columns: Image width limit.
        n_mels: Image height (mel bands from 0 Hz to the Nyquist frequency).
        n_fft: FFT size of each frame.
        frames_per_column: FFT frames averaged into one column.
    """

    def __init__(
        self,
        sample_rate: int,
        expected_seconds: float | None,
        max_columns: int = 1200,
        n_mels: int = 80,
        n_fft: int = 1024,
        frames_per_column: int = 2,
    ) -> None:
        self.sample_rate = sample_rate
        self.max_columns = max_columns
        self.n_mels = n_mels
        self.n_fft = n_fft
        self.frames_per_column = frames_per_column
        # 20 columns per second for short files; long files share the width limit.
        target = max(4, min(max_columns, math.ceil((expected_seconds or 0) * 20)))
        per_column = max(n_fft // 2, math.ceil((expected_seconds or 0) * sample_rate / target))
        self._set_hop(max(1, per_column // frames_per_column))
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_start = 0  # file sample index of `_pending[0]`
        self._next_frame = 0  # file sample index where the next frame starts
        self._sums = np.zeros((n_mels, 0), dtype=np.float64)  # [n_mels, columns] summed dB
        self._counts = np.zeros(0, dtype=np.int64)  # [columns] frames per column

    @property
    def samples_per_column(self) -> int:
        return self.hop * self.frames_per_column

    @property
    def seconds_per_column(self) -> float:
        return self.samples_per_column / self.sample_rate

    def add(self, block: np.ndarray) -> None:
        """Take the next mono block of the file."""
        self._pending = np.concatenate([self._pending, np.asarray(block, dtype=np.float32)])
        first = self._next_frame - self._pending_start
        available = len(self._pending) - first
        if available >= self.n_fft:
            n_frames = 1 + (available - self.n_fft) // self.hop
            signal = self._pending[first : first + (n_frames - 1) * self.hop + self.n_fft]
            self._accumulate(self.frontend.log_mel_frames(signal))
        # Samples before the next frame start are never needed again.
        drop = min(len(self._pending), self._next_frame - self._pending_start)
        self._pending = self._pending[drop:]
        self._pending_start += drop

    def finish(self) -> Spectrogram:
        """Render what was added; a tail shorter than one FFT frame is zero-padded to one."""
        first = self._next_frame - self._pending_start
        tail = self._pending[first:]
        if len(self._counts) == 0 or len(tail) >= self.hop:
            padded = np.zeros(self.n_fft, dtype=np.float32)
            padded[: min(self.n_fft, len(tail))] = tail[: self.n_fft]
            self._accumulate(self.frontend.log_mel_frames(padded)[:1])
        self._pending = np.zeros(0, dtype=np.float32)
        db = self._sums / np.maximum(self._counts, 1)  # [n_mels, columns]
        pixels = _to_pixels(db[::-1])
        return Spectrogram(
            png=encode_indexed_png(pixels, PALETTE),
            seconds_per_column=self.seconds_per_column,
            columns=pixels.shape[1],
            fmax=self.frontend.spec.fmax,
        )

    def _set_hop(self, hop: int) -> None:
        self.hop = hop
        self.frontend = NumpyFrontend(FrontendSpec(
            sample_rate=self.sample_rate, window_samples=self.n_fft, n_fft=self.n_fft, hop_length=hop,
            n_mels=self.n_mels, fmin=0.0, fmax=self.sample_rate / 2,
        ))

    def _accumulate(self, frames: np.ndarray) -> None:
        # frames: [n, n_mels] log-mel energies in dB, the first starting at `_next_frame`
        starts = self._next_frame + self.hop * np.arange(len(frames))
        self._next_frame += self.hop * len(frames)
        columns = starts // self.samples_per_column
        needed = int(columns[-1]) + 1
        if needed > len(self._counts):
            grow = needed - len(self._counts)
            self._sums = np.pad(self._sums, ((0, 0), (0, grow)))
            self._counts = np.pad(self._counts, (0, grow))
        np.add.at(self._sums.T, columns, frames)
        np.add.at(self._counts, columns, 1)
        while len(self._counts) > self.max_columns:
            self._coarsen()

    def _coarsen(self) -> None:
        # Halve the time resolution: columns (0, 1), (2, 3), ... merge, and later frames are
        # spaced twice as far apart, so the FFT count per column stays the same.
        if len(self._counts) % 2:
            self._sums = np.pad(self._sums, ((0, 0), (0, 1)))
            self._counts = np.pad(self._counts, (0, 1))
        self._sums = self._sums[:, 0::2] + self._sums[:, 1::2]
        self._counts = self._counts[0::2] + self._counts[1::2]
        self._set_hop(self.hop * 2)


def _to_pixels(db: np.ndarray) -> np.ndarray:
    # Digital silence gives a constant image; the range floor keeps the division finite.
    high = float(np.max(db))
    low = max(float(np.percentile(db, 2)), high - _DYNAMIC_RANGE_DB)
    scaled = (db - low) / max(high - low, 1e-6)
    return np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)


def _palette() -> np.ndarray:
    # A dark-to-bright ramp (black, purple, orange, pale yellow) that stays readable in greyscale.
    anchors = np.array([[0, 0, 4], [60, 15, 110], [150, 40, 120], [230, 90, 60], [250, 190, 40], [252, 250, 190]])
    positions = np.linspace(0, 255, len(anchors))
    levels = np.arange(256)
    return np.stack([np.interp(levels, positions, anchors[:, c]) for c in range(3)], axis=1).astype(np.uint8)


PALETTE = _palette()
