"""Data version: the directory hash DVC records for a dataset folder.

DVC hashes a folder as the md5 of a JSON listing of `{"md5": <file md5>, "relpath": <path>}`
entries sorted by path, plus the suffix ".dir". `dvc.lock` stores the same value for a stage that
depends on the folder, so a run's data version can be compared with the pipeline's. File hashes
are cached by (size, mtime), as DVC's own state database does, so rehashing a large unchanged
dataset costs only a `stat` per file.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from infer.atomic import atomic_write_text


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def directory_md5(root: Path | str, cache_file: Path | str | None = None) -> str:
    """DVC-compatible `<md5>.dir` hash of every file under `root`."""
    root = Path(root)
    cache: dict[str, list] = {}
    if cache_file and Path(cache_file).is_file():
        cache = json.loads(Path(cache_file).read_text())
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relpath = path.relative_to(root).as_posix()
        stat = path.stat()
        key = str(path.resolve())
        cached = cache.get(key)
        if cached and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
            md5 = cached[2]
        else:
            md5 = file_md5(path)
            cache[key] = [stat.st_size, stat.st_mtime_ns, md5]
        entries.append({"md5": md5, "relpath": relpath})
    if cache_file:
        Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache_file, json.dumps(cache))
    # DVC serialises the listing with sort_keys and default separators.
    listing = json.dumps(entries, sort_keys=True)
    return hashlib.md5(listing.encode()).hexdigest() + ".dir"


def git_commit(repo: Path | str) -> str:
    """HEAD of the checkout at `repo`, with "-dirty" when tracked files changed; "unknown" outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


