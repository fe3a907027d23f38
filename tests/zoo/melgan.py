"""A MelGAN-style generator (Kumar et al., 2019), channels and upsampling reduced, structure kept:
reflection-padded 7-tap input Conv1d; per stage LeakyReLU(0.2), a ConvTranspose1d (kernel 2r,
stride r) upsampling by r and a residual stack of three units with dilations 1, 3, 9
(LeakyReLU, reflection pad, dilated 3-tap Conv1d, LeakyReLU, 1x1 Conv1d; 1x1 Conv1d shortcut);
finally LeakyReLU, a reflection-padded 7-tap Conv1d to one channel and tanh.
[B, n_mels, T] -> [B, 1, T * 16]."""

from __future__ import annotations

import torch
from torch import nn

N_MELS = 20
SLOPE = 0.2


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(SLOPE),
            nn.ReflectionPad1d(dilation),
            nn.Conv1d(channels, channels, 3, dilation=dilation),
            nn.LeakyReLU(SLOPE),
            nn.Conv1d(channels, channels, 1),
        )
        self.shortcut = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class MelGanGenerator(nn.Module):
    def __init__(self, n_mels: int = N_MELS, channels: int = 32, rates: tuple[int, ...] = (4, 4)) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad1d(3), nn.Conv1d(n_mels, channels, 7)]
        for rate in rates:
            layers += [
                nn.LeakyReLU(SLOPE),
                nn.ConvTranspose1d(channels, channels // 2, 2 * rate, stride=rate,
                                   padding=rate // 2 + rate % 2, output_padding=rate % 2),
            ]
            channels //= 2
            layers += [ResidualUnit(channels, 3**j) for j in range(3)]
        layers += [nn.LeakyReLU(SLOPE), nn.ReflectionPad1d(3), nn.Conv1d(channels, 1, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.model(mel)


def example_inputs(batch: int, time: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, N_MELS, time, generator=generator),)


DYNAMIC_AXES = {"x0": {0: "batch", 2: "time"}, "y": {0: "batch", 2: "samples"}}
