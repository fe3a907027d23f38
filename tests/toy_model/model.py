"""The toy model's torch module: (batch, 3, time) -> (batch, width, time)."""

from __future__ import annotations

import torch
from torch import nn

CHANNELS = 3


class Toy(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(CHANNELS, width, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))
