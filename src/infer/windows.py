"""Cut a stream of audio blocks into fixed windows, with shift margins, in bounded memory.

Window `k` covers samples `[k * W, (k + 1) * W)` of the file. Every window a file touches keeps
its row: a final partial window is zero-padded, and a file shorter than one window yields one
padded row. For time-shift TTA each window also carries `margin` samples of context on both
sides, taken from the neighbouring audio and zero-padded at the file edges, so a shifted window
is padded, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class WindowChunk:
    """Consecutive windows of one file and their context.

    Attributes:
        first_window: Index of the first window in the file.
        n_windows: Windows in this chunk.
        samples: Audio `[margin + n_windows * window_samples + margin]`, float32.
        window_samples: Samples per window.
        margin: Context samples on each side.
    """

    first_window: int
    n_windows: int
    samples: np.ndarray
    window_samples: int
    margin: int

    def starts(self, shift_samples: int = 0) -> np.ndarray:
        """Start of each window, shifted by `shift_samples`, as an index into `samples`."""
        if abs(shift_samples) > self.margin:
            raise ValueError(f"shift of {shift_samples} samples exceeds the margin of {self.margin}")
        return self.margin + shift_samples + np.arange(self.n_windows) * self.window_samples

    def windows(self, shift_samples: int = 0) -> np.ndarray:
        """Return the windows themselves, `[n_windows, window_samples]`."""
        return np.stack([self.samples[s : s + self.window_samples] for s in self.starts(shift_samples)])


class Windower:
    """Turn an iterable of mono blocks into `WindowChunk`s of up to `windows_per_chunk` windows.

    After iteration, `total_samples` is the decoded length and `n_windows` the window count.
    """

    def __init__(self, window_samples: int, margin: int = 0, windows_per_chunk: int = 36) -> None:
        if margin < 0 or windows_per_chunk < 1:
            raise ValueError("margin must be >= 0 and windows_per_chunk >= 1")
        self.window_samples = window_samples
        self.margin = margin
        self.windows_per_chunk = windows_per_chunk
        self.total_samples = 0
        self.n_windows = 0

    def chunks(self, blocks: Iterable[np.ndarray]) -> Iterator[WindowChunk]:
        width = self.window_samples
        chunk_span = self.windows_per_chunk * width
        # `buffer[0]` is sample `offset` of the padded stream (the file with `margin` zeros before it).
        buffer = np.zeros(self.margin, dtype=np.float32)
        offset = 0
        next_window = 0
        for block in blocks:
            self.total_samples += len(block)
            buffer = np.concatenate([buffer, np.asarray(block, dtype=np.float32)])
            # Emit whole chunks while the buffer contains them plus their right margin.
            while len(buffer) >= (next_window * width - offset) + chunk_span + 2 * self.margin:
                start = next_window * width - offset
                yield self._chunk(next_window, self.windows_per_chunk, buffer[start : start + chunk_span + 2 * self.margin])
                next_window += self.windows_per_chunk
                keep_from = next_window * width - offset
                buffer = buffer[keep_from:]
                offset += keep_from

        self.n_windows = max(1, math.ceil(self.total_samples / width))
        while next_window < self.n_windows:
            count = min(self.windows_per_chunk, self.n_windows - next_window)
            start = next_window * width - offset
            needed = count * width + 2 * self.margin
            piece = buffer[start : start + needed]
            if len(piece) < needed:
                piece = np.concatenate([piece, np.zeros(needed - len(piece), dtype=np.float32)])
            yield self._chunk(next_window, count, piece)
            next_window += count

    def _chunk(self, first: int, count: int, samples: np.ndarray) -> WindowChunk:
        return WindowChunk(first, count, samples.copy(), self.window_samples, self.margin)


def row_id(stem: str, window_index: int, window_seconds: float) -> str:
    """Submission row id `<file stem>_<end second>` of window `window_index`."""
    return f"{stem}_{int(round((window_index + 1) * window_seconds))}"


def window_bounds(n_windows: int, total_seconds: float, window_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Start and real end time in seconds of each window; the last may end before its full length."""
    starts = np.arange(n_windows) * window_seconds
    ends = np.minimum(starts + window_seconds, max(total_seconds, 0.0))
    return starts, ends
