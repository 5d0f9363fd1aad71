"""Write files atomically: a reader (or a rerun with --resume) never sees half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_open(path: Path | str, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = "") -> Iterator[IO]:
    """Open a temporary file beside `path` and rename it over `path` only if the block succeeds.

    The temporary file sits in the same folder so that `os.replace` is a same-filesystem rename,
    which POSIX and Windows both perform atomically.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file readable by its owner only. Outputs get the permissions of any
        # new file under the process umask instead, so a results folder can be shared.
        os.chmod(temporary, 0o666 & ~_current_umask())
        binary = "b" in mode
        with os.fdopen(
            descriptor, mode, encoding=None if binary else encoding, newline=None if binary else newline
        ) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _current_umask() -> int:
    # os.umask can only be read by setting it; restore it at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_open(path, "w", newline="") as handle:
        handle.write(text)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)
