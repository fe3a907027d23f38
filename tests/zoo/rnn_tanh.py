"""An Elman ``nn.RNN`` (tanh), two layers, with a Linear read-out: [B, T, n_mels] -> [B, T, n_out]."""

from __future__ import annotations

import torch
from torch import nn

N_MELS = 20


class RnnTanh(nn.Module):
    def __init__(self, n_mels: int = N_MELS, hidden: int = 24, n_out: int = 10) -> None:
        super().__init__()
        self.rnn = nn.RNN(n_mels, hidden, num_layers=2, nonlinearity="tanh", batch_first=True)
        self.proj = nn.Linear(hidden, n_out)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(mel)
        return self.proj(states)


def example_inputs(batch: int, time: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, time, N_MELS, generator=generator),)


DYNAMIC_AXES = {"x0": {0: "batch", 1: "time"}, "y": {0: "batch", 1: "time"}}
