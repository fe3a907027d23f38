"""A SpeechSplit-style encoder (Qian et al., 2020), channels reduced, structure kept: three
5-tap Conv1d + GroupNorm + ReLU layers, a 2-layer bidirectional LSTM bottleneck and a Linear:
[B, n_mels, T] -> [B, T, n_out]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

N_MELS = 20


class SpeechSplitEncoder(nn.Module):
    def __init__(self, n_mels: int = N_MELS, channels: int = 32, groups: int = 4, neck: int = 8,
                 n_out: int = 12) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(n_mels if i == 0 else channels, channels, 5, padding=2) for i in range(3)
        )
        self.norms = nn.ModuleList(nn.GroupNorm(groups, channels) for _ in range(3))
        self.lstm = nn.LSTM(channels, neck, num_layers=2, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * neck, n_out)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)))
        codes, _ = self.lstm(x.transpose(1, 2))
        return self.proj(codes)


def example_inputs(batch: int, time: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, N_MELS, time, generator=generator),)


DYNAMIC_AXES = {"x0": {0: "batch", 2: "time"}, "y": {0: "batch", 1: "time"}}
