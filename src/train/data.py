"""Training data: window manifests to batches of waveforms and targets.

Samples are raw 5 s waveforms; the log-mel front-end runs inside the LightningModule (on the GPU
when there is one). Each sample has a kind, which decides how it may be mixed:

- focal: a focal-clip window with hard labels (primary 1, secondary `secondary_label_weight`);
- soundscape: a labelled soundscape window with hard labels;
- pseudo: an unlabelled soundscape window with capped soft pseudo-labels (Noisy Student).

A pseudo-labelled window is never mixed into a sample with a hard soundscape label, in either
direction, so no sample carries both kinds of soundscape target.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from harness.manifests import read_manifest
from infer.audio import decode_mono
from infer.taxonomy import Taxonomy

log = logging.getLogger(__name__)

KIND_FOCAL, KIND_SOUNDSCAPE, KIND_PSEUDO = 0, 1, 2
KIND_CODES = {"focal": KIND_FOCAL, "soundscape": KIND_SOUNDSCAPE, "pseudo": KIND_PSEUDO}


@functools.lru_cache(maxsize=256)
def _decoded(path: str, sample_rate: int, size: int, mtime_ns: int) -> np.ndarray:
    # Size and mtime are part of the key so that a file rewritten in place is decoded again.
    # TODO: for the full dataset, cache decoded float16 arrays on disk; decoding OGG on every epoch
    # costs more CPU than a B0 forward pass.
    return decode_mono(path, sample_rate)


def read_window(path: str, start_s: float, sample_rate: int, window_samples: int) -> np.ndarray:
    """Read `window_samples` of `path` from `start_s` at `sample_rate`, zero-padded past either end."""
    stat = Path(path).stat()
    audio = _decoded(path, sample_rate, stat.st_size, stat.st_mtime_ns)
    start = int(round(start_s * sample_rate))
    out = np.zeros(window_samples, dtype=np.float32)
    lo, hi = max(start, 0), min(start + window_samples, len(audio))
    if hi > lo:
        out[lo - start : hi - start] = audio[lo:hi]
    return out


def hard_targets(manifest: pd.DataFrame, taxonomy: Taxonomy, secondary_weight: float) -> np.ndarray:
    """Targets `[N, C]` from the `labels` (1.0) and `secondary` (`secondary_weight`) columns."""
    index = taxonomy.index()
    targets = np.zeros((len(manifest), len(taxonomy)), dtype=np.float32)
    for row, (labels, secondary) in enumerate(zip(manifest["labels"], manifest["secondary"])):
        for label in filter(None, str(secondary).split(";")):
            targets[row, index[label]] = max(targets[row, index[label]], secondary_weight)
        for label in filter(None, str(labels).split(";")):
            targets[row, index[label]] = 1.0
    return targets


@dataclass
class WindowTable:
    """Windows with their targets, ready for a Dataset.

    Attributes:
        manifest: Rows of the window manifests (path, start_s, window_id, ...).
        targets: `[N, C]` float32.
        kinds: `[N]` kind codes.
        loss_weights: `[N]` per-sample loss weight.
        sample_weights: `[N]` sampling weight (pseudo windows: their confidence).
    """

    manifest: pd.DataFrame
    targets: np.ndarray
    kinds: np.ndarray
    loss_weights: np.ndarray
    sample_weights: np.ndarray

    def __len__(self) -> int:
        return len(self.manifest)

    @staticmethod
    def concat(tables: list[WindowTable]) -> WindowTable:
        tables = [t for t in tables if len(t)]
        if not tables:
            raise ValueError("no training windows: check the manifests and data.root")
        return WindowTable(
            manifest=pd.concat([t.manifest for t in tables], ignore_index=True),
            targets=np.concatenate([t.targets for t in tables]),
            kinds=np.concatenate([t.kinds for t in tables]),
            loss_weights=np.concatenate([t.loss_weights for t in tables]),
            sample_weights=np.concatenate([t.sample_weights for t in tables]),
        )


def hard_table(manifest: pd.DataFrame, taxonomy: Taxonomy, secondary_weight: float) -> WindowTable:
    n = len(manifest)
    kinds = np.array([KIND_CODES[k] for k in manifest["kind"]], dtype=np.int64) if n else np.zeros(0, np.int64)
    return WindowTable(manifest.reset_index(drop=True), hard_targets(manifest, taxonomy, secondary_weight),
                       kinds, np.ones(n, np.float32), np.ones(n, np.float64))


class WindowDataset(Dataset):
    """Waveform windows with targets, optional teacher embeddings and augmentation.

    Args:
        table: Windows and targets.
        sample_rate: Audio rate in Hz.
        window_samples: Samples per window.
        augment: Stage augment config (gain_db, time_shift_s, mixup_background_prob), or None.
        teacher_embeddings: window_id to teacher embedding `[D]`.
        background: Pseudo-labelled or unlabelled soundscape windows for background mixing.
    """

    def __init__(
        self,
        table: WindowTable,
        sample_rate: int,
        window_samples: int,
        augment: dict | None = None,
        teacher_embeddings: dict[str, np.ndarray] | None = None,
        teacher_dim: int = 0,
        background: WindowTable | None = None,
    ) -> None:
        self.table = table
        self.sample_rate = sample_rate
        self.window_samples = window_samples
        self.augment = augment
        self.teacher_embeddings = teacher_embeddings or {}
        self.teacher_dim = teacher_dim
        self.background = background if background is not None and len(background) else None

    def __len__(self) -> int:
        return len(self.table)

    def _load(self, table: WindowTable, index: int, jitter: bool) -> np.ndarray:
        row = table.manifest.iloc[index]
        start = float(row["start_s"])
        if jitter and self.augment and self.augment.get("time_shift_s", 0) > 0:
            shift = float(self.augment["time_shift_s"])
            start = max(0.0, start + (torch.rand(()).item() * 2 - 1) * shift)
        return read_window(row["path"], start, self.sample_rate, self.window_samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        wave = self._load(self.table, index, jitter=True)
        target = self.table.targets[index].copy()
        kind = int(self.table.kinds[index])

        if self.augment:
            wave, target = self._mix_background(wave, target, kind)
            gain_db = float(self.augment.get("gain_db", 0))
            if gain_db > 0:
                wave = wave * np.float32(10 ** ((torch.rand(()).item() * 2 - 1) * gain_db / 20))

        window_id = self.table.manifest.iloc[index]["window_id"]
        embedding = self.teacher_embeddings.get(window_id)
        return {
            "wave": torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)),
            "target": torch.from_numpy(target),
            "kind": torch.tensor(kind),
            "loss_weight": torch.tensor(float(self.table.loss_weights[index])),
            "teacher": torch.from_numpy(embedding.astype(np.float32)) if embedding is not None else torch.zeros(self.teacher_dim),
            "has_teacher": torch.tensor(embedding is not None),
        }

    def _mix_background(self, wave: np.ndarray, target: np.ndarray, kind: int) -> tuple[np.ndarray, np.ndarray]:
        # Only focal windows take soundscape background: a hard soundscape window never receives
        # pseudo-labelled audio, and a pseudo window already is soundscape audio.
        probability = float(self.augment.get("mixup_background_prob", 0))
        if self.background is None or kind != KIND_FOCAL or torch.rand(()).item() >= probability:
            return wave, target
        pick = int(torch.randint(len(self.background), ()).item())
        background = self._load(self.background, pick, jitter=False)
        weight = 0.3 + 0.4 * torch.rand(()).item()  # background at 30-70 % of the focal level
        mixed = (1 - weight) * wave + weight * background
        return mixed.astype(np.float32), np.maximum(target, self.background.targets[pick])


def load_manifests(manifest_dir: Path) -> dict[str, pd.DataFrame]:
    names = ("focal", "soundscape_labelled", "heldout", "unlabelled")
    missing = [n for n in names if not (manifest_dir / f"{n}.csv").is_file()]
    if missing:
        raise FileNotFoundError(
            f"manifests {missing} not found in {manifest_dir}; run `pantanal data prepare` with the same experiment first"
        )
    return {n: read_manifest(manifest_dir / f"{n}.csv") for n in names}
