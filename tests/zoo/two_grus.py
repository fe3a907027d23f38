"""Two different GRU layers in one graph (sizes, directions and layouts differ), so that no
state can be shared between the two nodes: [B, T, n_mels] -> [B, T, n_out]."""

from __future__ import annotations

import torch
from torch import nn

N_MELS = 20


class TwoGrus(nn.Module):
    def __init__(self, n_mels: int = N_MELS, first: int = 32, second: int = 12, n_out: int = 8) -> None:
        super().__init__()
        self.first = nn.GRU(n_mels, first, batch_first=True)
        # time-major and bidirectional: a second GRU node of another size and direction
        self.second = nn.GRU(first, second, bidirectional=True)
        self.proj = nn.Linear(2 * second, n_out)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        states, _ = self.first(mel)
        states, _ = self.second(states.transpose(0, 1))
        return self.proj(states.transpose(0, 1))


def example_inputs(batch: int, time: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, time, N_MELS, generator=generator),)


DYNAMIC_AXES = {"x0": {0: "batch", 1: "time"}, "y": {0: "batch", 1: "time"}}
