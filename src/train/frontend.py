"""Torch log-mel front-end for training: the same `FrontendSpec` as `infer.frontend`, on the GPU.

The STFT, mel projection and log run in float64 (as in the numpy implementation) and autocast is
disabled inside, so the model gets the same input in training as in the field. A parity test on
real audio keeps the two within 1e-5.
"""

from __future__ import annotations

import torch
from torch import nn

from train.models.precision import float32_region

from infer.frontend import FrontendSpec, mel_filterbank


class TorchFrontend(nn.Module):
    """Waveforms `[B, window_samples]` to normalised log-mels `[B, 1, n_mels, frames]` float32."""

    def __init__(self, spec: FrontendSpec) -> None:
        super().__init__()
        self.spec = spec
        self.register_buffer("window", torch.hann_window(spec.n_fft, periodic=True, dtype=torch.float64), persistent=False)
        mel = torch.from_numpy(mel_filterbank(spec))  # [n_mels, n_freqs] float64
        self.register_buffer("mel_basis", mel, persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        with float32_region(waveform.device.type):
            return self._logmel(waveform)

    def _logmel(self, waveform: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        stft = torch.stft(
            waveform.to(torch.float64),
            n_fft=spec.n_fft,
            hop_length=spec.hop_length,
            win_length=spec.n_fft,
            window=self.window,
            center=False,
            return_complex=True,
        )  # [B, n_freqs, frames]
        energies = torch.matmul(self.mel_basis, stft.abs() ** spec.power)  # [B, n_mels, frames]
        log_mel = 10.0 * torch.log10(energies + spec.log_offset)
        if spec.normalization == "zscore":
            mean = log_mel.mean(dim=(-2, -1), keepdim=True)
            std = log_mel.std(dim=(-2, -1), keepdim=True, unbiased=False)
            normed = (log_mel - mean) / (std + spec.norm_eps)
        else:
            low = log_mel.amin(dim=(-2, -1), keepdim=True)
            high = log_mel.amax(dim=(-2, -1), keepdim=True)
            normed = (log_mel - low) / (high - low + spec.norm_eps)
        return normed.to(torch.float32).unsqueeze(1)
