"""The Lightning data module of one stage: weighted training sampler and held-out validation."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from train.data import WindowDataset, WindowTable


class SEDDataModule(L.LightningDataModule):
    """Train and held-out-site validation loaders for one stage.

    Args:
        train: Training windows (focal + labelled soundscape + pseudo-labelled).
        heldout: Held-out-site windows (validation; never trained on).
        batch_size: Batch size.
        sample_rate: Audio rate.
        window_samples: Window length.
        augment: The stage's augment config.
        teacher_embeddings: window_id to teacher embedding, for distillation.
        background: Soundscape windows for background mixing.
        num_workers: DataLoader workers.
        seed: Seeds the sampler, so epochs are reproducible.
    """

    def __init__(self, train: WindowTable, heldout: WindowTable | None, batch_size: int, sample_rate: int,
                 window_samples: int, augment: dict | None, teacher_embeddings: dict[str, np.ndarray] | None = None,
                 teacher_dim: int = 0, background: WindowTable | None = None, num_workers: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.train_set = WindowDataset(train, sample_rate, window_samples, augment, teacher_embeddings, teacher_dim, background)
        self.val_set = WindowDataset(heldout, sample_rate, window_samples) if heldout is not None and len(heldout) else None
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        weights = torch.as_tensor(self.train_set.table.sample_weights, dtype=torch.double)
        generator = torch.Generator().manual_seed(self.seed)
        sampler = WeightedRandomSampler(weights, num_samples=len(weights), replacement=True, generator=generator)
        return DataLoader(self.train_set, batch_size=self.batch_size, sampler=sampler,
                          num_workers=self.num_workers, drop_last=len(weights) > self.batch_size)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers)
