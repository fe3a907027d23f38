"""An AdaIN-VC-style model (Chou et al., 2019), channels reduced, structure kept.

- content encoder: a conv bank (kernels 1..4, reflection padded, ReLU, concatenated with its
  input), a 1x1 Conv1d, then residual blocks of reflection-padded Conv1d, ReLU and
  InstanceNorm1d without affine; two of them halve time with AvgPool1d(2, ceil_mode=True) on
  both paths;
- speaker encoder: the same kind of bank and a halving block, a mean over time, a Linear: one
  speaker code per utterance;
- decoder: residual blocks of Conv1d, InstanceNorm1d and adaptive instance norm (a scale and a
  shift per channel computed from the speaker code by a Linear), ReLU; two of them double time
  with nearest upsampling (``F.interpolate(scale_factor=2)``); a 1x1 Conv1d back to mels.

(source mel [B, n_mels, T], reference mel [B, n_mels, T_ref]) -> [B, n_mels, 4 * ceil(T / 4)].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

N_MELS = 20


def reflect_conv(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``conv`` (no padding of its own) on ``x`` reflection-padded to keep the length."""
    kernel = conv.kernel_size[0]
    return conv(F.pad(x, (kernel // 2, kernel // 2 - 1 + kernel % 2), mode="reflect"))


class ConvBank(nn.Module):
    def __init__(self, c_in: int, c_bank: int, max_kernel: int = 4) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(c_in, c_bank, k) for k in range(1, max_kernel + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(reflect_conv(conv, x)) for conv in self.convs] + [x], dim=1)


class DownBlock(nn.Module):
    def __init__(self, channels: int, halve: bool) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3)
        self.norm = nn.InstanceNorm1d(channels, affine=False)
        self.halve = halve

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(F.relu(reflect_conv(self.conv, x)))
        if self.halve:
            y = F.avg_pool1d(y, 2, ceil_mode=True)
            x = F.avg_pool1d(x, 2, ceil_mode=True)
        return x + y


class Encoder(nn.Module):
    def __init__(self, n_mels: int, channels: int, c_bank: int, halvings: tuple[bool, ...]) -> None:
        super().__init__()
        self.bank = ConvBank(n_mels, c_bank)
        self.inp = nn.Conv1d(n_mels + 4 * c_bank, channels, 1)
        self.blocks = nn.ModuleList(DownBlock(channels, h) for h in halvings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.inp(self.bank(x)))
        for block in self.blocks:
            x = block(x)
        return x


class AdaInUpBlock(nn.Module):
    def __init__(self, channels: int, speaker_dim: int, double: bool) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3)
        self.norm = nn.InstanceNorm1d(channels, affine=False)
        self.affine = nn.Linear(speaker_dim, 2 * channels)
        self.double = double

    def forward(self, x: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        scale, shift = self.affine(speaker).unsqueeze(2).chunk(2, dim=1)
        y = F.relu(self.norm(reflect_conv(self.conv, x)) * scale + shift)
        if self.double:
            y = F.interpolate(y, scale_factor=2, mode="nearest")
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return x + y


class AdaInVc(nn.Module):
    def __init__(self, n_mels: int = N_MELS, channels: int = 32, c_bank: int = 8, speaker_dim: int = 16) -> None:
        super().__init__()
        self.content = Encoder(n_mels, channels, c_bank, (False, True, True))
        self.speaker = Encoder(n_mels, channels, c_bank, (True,))
        self.speaker_out = nn.Linear(channels, speaker_dim)
        self.decoder = nn.ModuleList(AdaInUpBlock(channels, speaker_dim, d) for d in (True, True, False))
        self.out = nn.Conv1d(channels, n_mels, 1)

    def forward(self, source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        speaker = self.speaker_out(self.speaker(reference).mean(dim=2))
        x = self.content(source)
        for block in self.decoder:
            x = block(x, speaker)
        return self.out(x)


def example_inputs(batch: int, time: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A source of ``time`` frames and a reference of a different, odd length."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, N_MELS, time, generator=generator),
            torch.randn(batch, N_MELS, time + 7, generator=generator))


DYNAMIC_AXES = {
    "x0": {0: "batch", 2: "time"}, "x1": {0: "batch", 2: "ref_time"}, "y": {0: "batch", 2: "out_time"},
}
