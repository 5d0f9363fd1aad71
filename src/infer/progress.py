"""A one-line progress bar with an ETA over files and windows, drawn only on a terminal.

The window count of the whole batch is estimated from the durations the headers declare; the
ETA extrapolates the windows per second measured so far. Log records clear the line before they
print, so messages and the bar never share a line.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from typing import TextIO

from infer.i18n import _

# Redraw at most this often; a 24-hour file yields thousands of decode blocks.
_REDRAW_S = 0.2


class Progress:
    """Progress over `total_files` files holding about `total_windows` windows.

    Args:
        total_files: Files to process.
        total_windows: Estimated windows in them.
        window_samples: Samples per window at the decode rate (for progress inside a file).
        stream: Where to draw; standard error by default.
        enabled: Draw at all; None draws when `stream` is a terminal.
    """

    def __init__(
        self, total_files: int, total_windows: int, window_samples: int,
        stream: TextIO | None = None, enabled: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total_files = total_files
        self.total_windows = max(total_windows, 1)
        self.window_samples = window_samples
        self.files_done = 0
        self.windows_done = 0.0
        self._file_samples = 0
        self._name = ""
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False
        self._filter = _ClearLineFilter(self)

    def __enter__(self) -> Progress:
        if self.enabled:
            for handler in logging.getLogger().handlers:
                handler.addFilter(self._filter)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.clear()
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self._filter)

    def start_file(self, name: str) -> None:
        self._name = name
        self._file_samples = 0
        self._draw(force=True)

    def add_samples(self, count: int) -> None:
        """Count decoded samples of the current file (called per block)."""
        self._file_samples += count
        self._draw()

    def finish_file(self, windows: int) -> None:
        self.files_done += 1
        self.windows_done += windows
        self._file_samples = 0
        self._draw(force=True)

    def clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def line(self) -> str:
        """Render the progress text, without terminal control codes."""
        done = min(self.windows_done + self._file_samples / self.window_samples, self.total_windows)
        elapsed = time.monotonic() - self._started
        eta = elapsed / done * (self.total_windows - done) if done > 0 else None
        filled = int(20 * done / self.total_windows)
        return "[{}{}] {}/{} {} | {:.0f}/{} {} | {} {}".format(
            "#" * filled, "-" * (20 - filled), self.files_done, self.total_files, _("files"),
            done, self.total_windows, _("windows"), _("ETA"), _clock(eta) if eta is not None else "?",
        )

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < _REDRAW_S:
            return
        self._last_draw = now
        width = shutil.get_terminal_size((100, 20)).columns
        text = f"{self.line()} | {self._name}"
        self.stream.write("\r\x1b[K" + text[: max(width - 1, 20)])
        self.stream.flush()
        self._drawn = True


class _ClearLineFilter(logging.Filter):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def filter(self, record: logging.LogRecord) -> bool:
        self.progress.clear()
        return True


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}"
