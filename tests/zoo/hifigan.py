"""A HiFi-GAN-V1-style generator (Kong et al., 2020), channels and upsampling reduced, structure
kept: a 7-tap input Conv1d; per stage a LeakyReLU(0.1) and a ConvTranspose1d (kernel 2u, stride
u) upsampling by u, then the multi-receptive-field fusion: the mean of residual blocks with
kernels 3, 7, 11, each three dilated (1, 3, 5) LeakyReLU-Conv1d-LeakyReLU-Conv1d residual units;
finally LeakyReLU (0.01), a 7-tap Conv1d to one channel and tanh. [B, n_mels, T] -> [B, 1, T * 16]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

N_MELS = 20
SLOPE = 0.1


def same_padding(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) // 2


class ResBlock(nn.Module):
    """Dilated residual units of one kernel size: x + conv(lrelu(conv_d(lrelu(x)))) per dilation d."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...] = (1, 3, 5)) -> None:
        super().__init__()
        self.dilated = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=same_padding(kernel, d)) for d in dilations
        )
        self.plain = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=same_padding(kernel, 1)) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.dilated, self.plain):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, SLOPE)), SLOPE))
        return x


class HifiGanGenerator(nn.Module):
    def __init__(self, n_mels: int = N_MELS, channels: int = 32, rates: tuple[int, ...] = (4, 4),
                 kernels: tuple[int, ...] = (3, 7, 11)) -> None:
        super().__init__()
        self.pre = nn.Conv1d(n_mels, channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.mrf = nn.ModuleList()
        for rate in rates:
            self.ups.append(nn.ConvTranspose1d(channels, channels // 2, 2 * rate, stride=rate, padding=rate // 2))
            channels //= 2
            self.mrf.append(nn.ModuleList(ResBlock(channels, k) for k in kernels))
        self.post = nn.Conv1d(channels, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.pre(mel)
        for up, blocks in zip(self.ups, self.mrf):
            x = up(F.leaky_relu(x, SLOPE))
            x = sum(block(x) for block in blocks) / len(blocks)
        return torch.tanh(self.post(F.leaky_relu(x)))


def example_inputs(batch: int, time: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, N_MELS, time, generator=generator),)


DYNAMIC_AXES = {"x0": {0: "batch", 2: "time"}, "y": {0: "batch", 2: "samples"}}
