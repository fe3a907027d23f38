"""A bidirectional 2-layer GRU encoder with a Linear projection (the GRU-based content and
speaker encoders of VC systems): mel frames [B, T, n_mels] -> codes [B, T, n_out]."""

from __future__ import annotations

import torch
from torch import nn

N_MELS = 20


class GruEncoder(nn.Module):
    def __init__(self, n_mels: int = N_MELS, hidden: int = 24, n_out: int = 16) -> None:
        super().__init__()
        self.gru = nn.GRU(n_mels, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.proj = nn.Linear(2 * hidden, n_out)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(mel)
        return self.proj(states)


def example_inputs(batch: int, time: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, time, N_MELS, generator=generator),)


DYNAMIC_AXES = {"x0": {0: "batch", 1: "time"}, "y": {0: "batch", 1: "time"}}
