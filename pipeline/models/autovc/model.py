"""AutoVC (Qian et al., 2019) in PyTorch, written for ONNX export.

Layers, sizes, activations and state-dict keys are those of the authors' ``model_vc.py``, so
their ``autovc.ckpt`` loads with ``strict=True``. The forward pass is vectorised: codes are
down-sampled by strided slicing and up-sampled by repeat + reshape, so a traced graph is valid
for every batch size and every number of frames.

Shapes differ from the original on purpose: mel outputs are ``(B, T, 80)`` and codes are
``(B, T // freq, 2 * dim_neck)`` (the original adds a channel axis to the mels and concatenates
the codes into one flat vector).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

N_MELS = 80
KERNEL_SIZE = 5
# Layer widths the original hard-codes (encoder and postnet convolutions, decoder's second LSTM).
# They are constructor arguments so that small models can be built for tests.
CONV_CHANNELS = 512
DECODER_LSTM_SIZE = 1024


class LinearNorm(nn.Module):
    """``nn.Linear`` under the attribute name ``linear_layer``, Xavier-initialised."""

    def __init__(self, in_dim: int, out_dim: int, w_init_gain: str = "linear") -> None:
        super().__init__()
        self.linear_layer = nn.Linear(in_dim, out_dim)
        nn.init.xavier_uniform_(self.linear_layer.weight, gain=nn.init.calculate_gain(w_init_gain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(x)


class ConvNorm(nn.Module):
    """``nn.Conv1d`` (kernel 5, 'same' padding) under the attribute name ``conv``."""

    def __init__(self, in_channels: int, out_channels: int, w_init_gain: str) -> None:
        super().__init__()
        self.conv = nn.Conv1d(
            in_channels, out_channels, kernel_size=KERNEL_SIZE, padding=(KERNEL_SIZE - 1) // 2
        )
        nn.init.xavier_uniform_(self.conv.weight, gain=nn.init.calculate_gain(w_init_gain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def conv_bn(in_channels: int, out_channels: int, w_init_gain: str) -> nn.Sequential:
    """Conv1d followed by BatchNorm1d; state-dict keys ``0.conv.*`` and ``1.*``."""
    return nn.Sequential(
        ConvNorm(in_channels, out_channels, w_init_gain), nn.BatchNorm1d(out_channels)
    )


class Encoder(nn.Module):
    """Content encoder: mel + source embedding -> bottleneck codes, one per ``freq`` frames."""

    def __init__(
        self, dim_neck: int, dim_emb: int, freq: int, conv_channels: int = CONV_CHANNELS
    ) -> None:
        super().__init__()
        self.dim_neck = dim_neck
        self.freq = freq
        self.convolutions = nn.ModuleList(
            [
                conv_bn(N_MELS + dim_emb if i == 0 else conv_channels, conv_channels, "relu")
                for i in range(3)
            ]
        )
        self.lstm = nn.LSTM(conv_channels, dim_neck, 2, batch_first=True, bidirectional=True)

    def forward(self, mel: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """``mel`` (B, T, 80) with T a multiple of ``freq``, ``emb`` (B, dim_emb)
        -> codes (B, T / freq, 2 * dim_neck)."""
        x = mel.transpose(1, 2)
        x = torch.cat((x, emb.unsqueeze(-1).repeat(1, 1, x.shape[-1])), dim=1)
        for block in self.convolutions:
            x = F.relu(block(x))
        outputs, _ = self.lstm(x.transpose(1, 2))
        # Forward direction: last frame of each segment; backward direction: first frame.
        forward_codes = outputs[:, self.freq - 1 :: self.freq, : self.dim_neck]
        backward_codes = outputs[:, :: self.freq, self.dim_neck :]
        return torch.cat((forward_codes, backward_codes), dim=-1)


class Decoder(nn.Module):
    """Up-sampled codes + target embedding -> mel (B, T, 80)."""

    def __init__(
        self, dim_neck: int, dim_emb: int, dim_pre: int, lstm_size: int = DECODER_LSTM_SIZE
    ) -> None:
        super().__init__()
        self.lstm1 = nn.LSTM(dim_neck * 2 + dim_emb, dim_pre, 1, batch_first=True)
        self.convolutions = nn.ModuleList([conv_bn(dim_pre, dim_pre, "relu") for _ in range(3)])
        self.lstm2 = nn.LSTM(dim_pre, lstm_size, 2, batch_first=True)
        self.linear_projection = LinearNorm(lstm_size, N_MELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm1(x)
        x = x.transpose(1, 2)
        for block in self.convolutions:
            x = F.relu(block(x))
        x, _ = self.lstm2(x.transpose(1, 2))
        return self.linear_projection(x)


class Postnet(nn.Module):
    """Five conv + BatchNorm blocks, tanh after all but the last: (B, 80, T) -> (B, 80, T)."""

    def __init__(self, conv_channels: int = CONV_CHANNELS) -> None:
        super().__init__()
        channels = [N_MELS] + [conv_channels] * 4 + [N_MELS]
        gains = ["tanh"] * 4 + ["linear"]
        self.convolutions = nn.ModuleList(
            [conv_bn(channels[i], channels[i + 1], gains[i]) for i in range(5)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.convolutions[:-1]:
            x = torch.tanh(block(x))
        return self.convolutions[-1](x)


class Generator(nn.Module):
    """The AutoVC generator. ``forward`` needs T to be a multiple of ``freq``; :class:`AutoVC`
    wraps it for any T. ``conv_channels`` and ``decoder_lstm_size`` keep the original's widths
    unless given."""

    def __init__(
        self,
        dim_neck: int,
        dim_emb: int,
        dim_pre: int,
        freq: int,
        *,
        conv_channels: int = CONV_CHANNELS,
        decoder_lstm_size: int = DECODER_LSTM_SIZE,
    ) -> None:
        super().__init__()
        self.hyperparameters = {
            "dim_neck": dim_neck,
            "dim_emb": dim_emb,
            "dim_pre": dim_pre,
            "freq": freq,
            "conv_channels": conv_channels,
            "decoder_lstm_size": decoder_lstm_size,
        }
        self.dim_emb = dim_emb
        self.freq = freq
        self.encoder = Encoder(dim_neck, dim_emb, freq, conv_channels)
        self.decoder = Decoder(dim_neck, dim_emb, dim_pre, decoder_lstm_size)
        self.postnet = Postnet(conv_channels)

    def forward(
        self, mel: torch.Tensor, emb_src: torch.Tensor, emb_trg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``mel`` (B, T, 80), embeddings (B, dim_emb) -> (mel, mel_postnet, codes)."""
        if not torch.jit.is_tracing() and mel.shape[1] % self.freq != 0:
            raise ValueError(f"Generator needs T a multiple of {self.freq}, got {mel.shape[1]}")
        codes = self.encoder(mel, emb_src)
        frames = mel.shape[1]
        codes_upsampled = codes.unsqueeze(2).repeat(1, 1, self.freq, 1).flatten(1, 2)
        decoder_input = torch.cat(
            (codes_upsampled, emb_trg.unsqueeze(1).repeat(1, frames, 1)), dim=-1
        )
        mel_out = self.decoder(decoder_input)
        mel_postnet = mel_out + self.postnet(mel_out.transpose(1, 2)).transpose(1, 2)
        return mel_out, mel_postnet, codes


class AutoVC(nn.Module):
    """:class:`Generator` for any T >= 1: zero-pads the end of ``mel`` to a multiple of ``freq``
    (as the authors' ``pad_seq`` does) and crops the mel outputs back to T.

    The pad length is arithmetic on the input's shape, which the tracer records as graph
    operations (Shape, Neg, Mod), so an exported graph pads correctly for every T.
    ``codes`` has ceil(T / freq) rows.
    """

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(
        self, mel: torch.Tensor, emb_src: torch.Tensor, emb_trg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames = mel.shape[1]
        pad_frames = (-frames) % self.generator.freq
        padding = mel.new_zeros(mel.shape[0], pad_frames, mel.shape[2])
        mel_out, mel_postnet, codes = self.generator(
            torch.cat((mel, padding), dim=1), emb_src, emb_trg
        )
        return mel_out[:, :frames], mel_postnet[:, :frames], codes
