"""The progress bar: counts, ETA, and log lines that do not collide with it."""

import io
import logging

from infer.progress import Progress


def test_progress_counts_files_and_windows():
    stream = io.StringIO()
    progress = Progress(total_files=2, total_windows=4, window_samples=100, stream=stream, enabled=True)
    progress.start_file("a.wav")
    progress.add_samples(150)
    assert "0/2" in progress.line()
    assert "2/4" in progress.line()  # 1.5 windows decoded, shown rounded
    progress.finish_file(2)
    line = progress.line()
    assert "1/2" in line
    assert "2/4" in line
    assert "?" not in line  # an ETA once something is done
    assert stream.getvalue().startswith("\r\x1b[K[")


def test_progress_is_silent_off_a_terminal():
    stream = io.StringIO()
    progress = Progress(total_files=1, total_windows=1, window_samples=100, stream=stream)
    progress.start_file("a.wav")
    progress.finish_file(1)
    assert stream.getvalue() == ""


def test_log_records_clear_the_bar_first():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with Progress(1, 1, 100, stream=stream, enabled=True) as progress:
            progress.start_file("a.wav")
            logging.getLogger("infer.test").warning("a message")
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert "\r\x1b[Ka message" in text
    assert handler.filters == []
