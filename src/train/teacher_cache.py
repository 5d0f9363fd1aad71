"""Teacher embeddings and scores for every training window, cached on disk.

One `.npz` per (teacher, audio file, window length) under
`<teacher_cache_dir>/<teacher id>/<audio sha256>_w<window samples>.npz`, holding the window starts,
embeddings `[N, D]` (float32) and logits `[N, K]` (float16). The teacher id hashes the teacher's
name, input rate and window and its model file, so a different teacher or model file, changed
audio, or another window length each land in a new entry. Windows missing from an entry are
computed and merged in, so new manifests reuse what was computed before.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from infer.atomic import atomic_open, atomic_write_text
from infer.member import file_sha256
from infer.taxonomy import Taxonomy
from infer.teacher import Teacher, TeacherSpec, map_to_taxonomy, spec_from_dict
from train.config import frontend_spec
from train.data import read_window

log = logging.getLogger(__name__)


def teacher_spec(cfg: DictConfig) -> TeacherSpec:
    return spec_from_dict(OmegaConf.to_container(cfg.teacher, resolve=True))


class TeacherCache:
    """Reads and fills the embedding cache of one teacher.

    Args:
        root: Cache folder shared by all experiments.
        spec: The teacher.
        sample_rate: Rate of the training windows in Hz.
        window_samples: Training window length in samples.
    """

    def __init__(self, root: Path, spec: TeacherSpec, sample_rate: int, window_samples: int) -> None:
        self.spec = spec
        self.teacher_id = spec.teacher_id()
        self.folder = Path(root) / self.teacher_id
        self.sample_rate = sample_rate
        self.window_samples = window_samples
        self._teacher: Teacher | None = None
        self._audio_hashes: dict[tuple, str] = {}

    def _audio_hash(self, path: str) -> str:
        stat = Path(path).stat()
        key = (path, stat.st_size, stat.st_mtime_ns)
        if key not in self._audio_hashes:
            self._audio_hashes[key] = file_sha256(path)
        return self._audio_hashes[key]

    def entry_path(self, audio_path: str) -> Path:
        return self.folder / f"{self._audio_hash(audio_path)}_w{self.window_samples}.npz"

    def read(self, audio_path: str) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """Start (seconds) to (embedding, logits) for the windows cached for `audio_path`."""
        path = self.entry_path(audio_path)
        if not path.is_file():
            return {}
        with np.load(path) as data:
            return {round(float(s), 3): (e, l) for s, e, l in zip(data["starts"], data["embeddings"], data["logits"])}

    def fill(self, audio_path: str, starts: list[float], batch: int = 16) -> int:
        """Compute the windows of `audio_path` not cached yet; return how many were computed."""
        cached = self.read(audio_path)
        todo = sorted({round(float(s), 3) for s in starts} - set(cached))
        if not todo:
            return 0
        if self._teacher is None:
            self._teacher = Teacher(self.spec)
        for begin in range(0, len(todo), batch):
            chunk = todo[begin : begin + batch]
            windows = np.stack([read_window(audio_path, s, self.sample_rate, self.window_samples) for s in chunk])
            logits, embeddings = self._teacher.score_windows(windows, self.sample_rate, want_embedding=True)
            for start, embedding, logit in zip(chunk, embeddings, logits):
                cached[start] = (embedding.astype(np.float32), logit.astype(np.float16))
        self._write(audio_path, cached)
        return len(todo)

    def _write(self, audio_path: str, entries: dict[float, tuple[np.ndarray, np.ndarray]]) -> None:
        starts = sorted(entries)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_open(self.entry_path(audio_path), "wb") as handle:
            np.savez(handle, starts=np.array(starts, dtype=np.float64),
                     embeddings=np.stack([entries[s][0] for s in starts]),
                     logits=np.stack([entries[s][1] for s in starts]))


def cache_for(cfg: DictConfig) -> TeacherCache:
    spec = frontend_spec(cfg)
    return TeacherCache(Path(cfg.paths.teacher_cache_dir), teacher_spec(cfg), spec.sample_rate, spec.window_samples)


def embed_manifests(cfg: DictConfig, manifests: dict[str, pd.DataFrame], progress=None) -> dict:
    """Fill the cache for every training window (focal, labelled and unlabelled soundscape).

    Effects:
        Writes cache entries and `<experiment>/teacher/mapping.json` (matched and unmatched classes).
    """
    cache = cache_for(cfg)
    windows = pd.concat([manifests[n] for n in ("focal", "soundscape_labelled", "unlabelled")], ignore_index=True)
    computed = 0
    groups = list(windows.groupby("path")["start_s"])
    for path, starts in (progress(groups) if progress else groups):
        computed += cache.fill(path, list(starts))
    taxonomy = Taxonomy.from_csv(Path(cfg.data.root) / "taxonomy.csv")
    teacher = cache._teacher or Teacher(cache.spec)
    mapping = map_to_taxonomy(teacher.labels, taxonomy)
    summary = {
        "teacher": cache.spec.name,
        "teacher_id": cache.teacher_id,
        "licence": cache.spec.licence,
        "windows": len(windows),
        "computed": computed,
        "reused": len(windows) - computed,
        "mapping": mapping.report(taxonomy),
    }
    out = Path(cfg.paths.experiment_dir) / "teacher"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "mapping.json", json.dumps(summary, indent=2))
    log.info("teacher %s: %d windows, %d computed, %d reused from %s; %d of %d classes mapped",
             cache.spec.name, len(windows), computed, len(windows) - computed, cache.folder,
             summary["mapping"]["matched"], len(taxonomy))
    return summary


def load_teacher_embeddings(cfg: DictConfig, manifest: pd.DataFrame) -> tuple[dict[str, np.ndarray], int]:
    """window_id to cached embedding for the windows of `manifest`, and the embedding size.

    Raises:
        FileNotFoundError: The cache lacks windows; `pantanal teacher embed` fills it.
    """
    cache = cache_for(cfg)
    embeddings: dict[str, np.ndarray] = {}
    missing = []
    for path, group in manifest.groupby("path"):
        entries = cache.read(path)
        for window_id, start in zip(group["window_id"], group["start_s"]):
            entry = entries.get(round(float(start), 3))
            if entry is None:
                missing.append(window_id)
            else:
                embeddings[window_id] = entry[0]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} training windows have no cached {cache.spec.name} embedding (e.g. {missing[:3]}); "
            f"run `pantanal teacher embed experiment={cfg.experiment_name}` first"
        )
    dim = len(next(iter(embeddings.values()))) if embeddings else 0
    return embeddings, dim


def teacher_logits_for(cfg: DictConfig, manifest: pd.DataFrame) -> np.ndarray | None:
    """Cached teacher logits `[N, K]` for the rows of `manifest`, or None when any is missing."""
    cache = cache_for(cfg)
    rows = []
    entries_by_path = {path: cache.read(path) for path in manifest["path"].unique()}
    for path, start in zip(manifest["path"], manifest["start_s"]):
        entry = entries_by_path[path].get(round(float(start), 3))
        if entry is None:
            return None
        rows.append(entry[1].astype(np.float32))
    return np.stack(rows) if rows else None

