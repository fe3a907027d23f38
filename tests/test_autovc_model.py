"""The vectorised AutoVC against a literal transcription of the authors' model_vc.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.autovc import AutoVC, Generator, random_generator

# --- Transcription of the original model_vc.py: list-based loops, hard-coded widths. ---


class OriginalLinearNorm(nn.Module):
    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.linear_layer = nn.Linear(in_dim, out_dim)

    def forward(self, x):
        return self.linear_layer(x)


class OriginalConvNorm(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=5, stride=1, padding=2)

    def forward(self, signal):
        return self.conv(signal)


def original_block(in_channels, out_channels):
    return nn.Sequential(OriginalConvNorm(in_channels, out_channels), nn.BatchNorm1d(out_channels))


class OriginalEncoder(nn.Module):
    def __init__(self, dim_neck, dim_emb, freq):
        super().__init__()
        self.dim_neck = dim_neck
        self.freq = freq
        convolutions = []
        for i in range(3):
            convolutions.append(original_block(80 + dim_emb if i == 0 else 512, 512))
        self.convolutions = nn.ModuleList(convolutions)
        self.lstm = nn.LSTM(512, dim_neck, 2, batch_first=True, bidirectional=True)

    def forward(self, x, c_org):
        x = x.squeeze(1).transpose(2, 1)
        c_org = c_org.unsqueeze(-1).expand(-1, -1, x.size(-1))
        x = torch.cat((x, c_org), dim=1)
        for conv in self.convolutions:
            x = F.relu(conv(x))
        x = x.transpose(1, 2)
        outputs, _ = self.lstm(x)
        out_forward = outputs[:, :, : self.dim_neck]
        out_backward = outputs[:, :, self.dim_neck :]
        codes = []
        for i in range(0, outputs.size(1), self.freq):
            codes.append(
                torch.cat((out_forward[:, i + self.freq - 1, :], out_backward[:, i, :]), dim=-1)
            )
        return codes


class OriginalDecoder(nn.Module):
    def __init__(self, dim_neck, dim_emb, dim_pre):
        super().__init__()
        self.lstm1 = nn.LSTM(dim_neck * 2 + dim_emb, dim_pre, 1, batch_first=True)
        convolutions = []
        for _ in range(3):
            convolutions.append(original_block(dim_pre, dim_pre))
        self.convolutions = nn.ModuleList(convolutions)
        self.lstm2 = nn.LSTM(dim_pre, 1024, 2, batch_first=True)
        self.linear_projection = OriginalLinearNorm(1024, 80)

    def forward(self, x):
        x, _ = self.lstm1(x)
        x = x.transpose(1, 2)
        for conv in self.convolutions:
            x = F.relu(conv(x))
        x = x.transpose(1, 2)
        outputs, _ = self.lstm2(x)
        return self.linear_projection(outputs)


class OriginalPostnet(nn.Module):
    def __init__(self):
        super().__init__()
        self.convolutions = nn.ModuleList()
        self.convolutions.append(original_block(80, 512))
        for _ in range(1, 5 - 1):
            self.convolutions.append(original_block(512, 512))
        self.convolutions.append(original_block(512, 80))

    def forward(self, x):
        for i in range(len(self.convolutions) - 1):
            x = torch.tanh(self.convolutions[i](x))
        return self.convolutions[-1](x)


class OriginalGenerator(nn.Module):
    def __init__(self, dim_neck, dim_emb, dim_pre, freq):
        super().__init__()
        self.encoder = OriginalEncoder(dim_neck, dim_emb, freq)
        self.decoder = OriginalDecoder(dim_neck, dim_emb, dim_pre)
        self.postnet = OriginalPostnet()

    def forward(self, x, c_org, c_trg):
        codes = self.encoder(x, c_org)
        tmp = []
        for code in codes:
            tmp.append(code.unsqueeze(1).expand(-1, int(x.size(1) / len(codes)), -1))
        code_exp = torch.cat(tmp, dim=1)
        c_trg_exp = c_trg.unsqueeze(1).expand(-1, x.size(1), -1)
        encoder_outputs = torch.cat((code_exp, c_trg_exp), dim=-1)
        mel_outputs = self.decoder(encoder_outputs)
        mel_outputs_postnet = self.postnet(mel_outputs.transpose(2, 1))
        mel_outputs_postnet = mel_outputs + mel_outputs_postnet.transpose(2, 1)
        return mel_outputs.unsqueeze(1), mel_outputs_postnet.unsqueeze(1), torch.cat(codes, dim=-1)


# --- Tests ---


def random_inputs(batch: int, frames: int, dim_emb: int, seed: int = 0):
    rng = torch.Generator().manual_seed(seed)
    mel = torch.rand(batch, frames, 80, generator=rng)
    emb_src = torch.randn(batch, dim_emb, generator=rng) * 0.1
    emb_trg = torch.randn(batch, dim_emb, generator=rng) * 0.1
    return mel, emb_src, emb_trg


def test_state_dict_keys_and_shapes_match_the_original():
    with torch.device("meta"):
        ours = Generator(32, 256, 512, 32).state_dict()
        original = OriginalGenerator(32, 256, 512, 32).state_dict()
    assert list(ours) == list(original)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {
        k: tuple(v.shape) for k, v in original.items()
    }
    for key in (
        "encoder.convolutions.0.0.conv.weight",
        "encoder.lstm.weight_ih_l0_reverse",
        "decoder.lstm2.weight_hh_l1",
        "decoder.linear_projection.linear_layer.weight",
        "postnet.convolutions.4.1.running_var",
    ):
        assert key in ours


@pytest.mark.parametrize(
    ("dims", "batch", "frames"),
    [((32, 256, 512, 32), 2, 64), ((16, 64, 128, 8), 1, 24)],
)
def test_forward_matches_original_transcription(dims, batch, frames):
    dim_neck, dim_emb, dim_pre, freq = dims
    ours, _ = random_generator(1, dim_neck, dim_emb, dim_pre, freq)
    original = OriginalGenerator(*dims)
    original.load_state_dict(ours.state_dict(), strict=True)
    original.eval()
    inputs = random_inputs(batch, frames, dim_emb)
    with torch.no_grad():
        mel, mel_postnet, codes = ours(*inputs)
        ref_mel, ref_mel_postnet, ref_codes = original(*inputs)
    segments = frames // freq
    assert codes.shape == (batch, segments, 2 * dim_neck)
    assert mel.shape == mel_postnet.shape == (batch, frames, 80)
    assert (mel - ref_mel[:, 0]).abs().max() <= 1e-6
    assert (mel_postnet - ref_mel_postnet[:, 0]).abs().max() <= 1e-6
    assert (codes - ref_codes.reshape(batch, segments, 2 * dim_neck)).abs().max() <= 1e-6


def test_generator_refuses_a_length_that_is_not_a_multiple_of_freq():
    generator, _ = random_generator(0, 4, 8, 16, 4, conv_channels=16, decoder_lstm_size=32)
    with pytest.raises(ValueError, match="multiple of 4"):
        generator(*random_inputs(1, 6, 8))


def pad_seq(x: np.ndarray, base: int) -> tuple[np.ndarray, int]:
    """The authors' conversion.ipynb padding, rewritten."""
    len_out = int(base * math.ceil(float(x.shape[0]) / base))
    len_pad = len_out - x.shape[0]
    return np.pad(x, ((0, len_pad), (0, 0)), "constant"), len_pad


def test_autovc_pads_and_crops_like_the_conversion_notebook(shared_data):
    metadata = np.load(shared_data / "metadata.npz")
    mel = metadata["mel_p225"]  # T = 90, not a multiple of 32
    embeddings = torch.from_numpy(metadata["embeddings"])
    emb_src, emb_trg = embeddings[[0]], embeddings[[3]]
    generator, _ = random_generator(seed=0)
    padded, len_pad = pad_seq(mel, generator.freq)
    assert len_pad > 0
    with torch.no_grad():
        mel_out, mel_postnet, codes = AutoVC(generator)(
            torch.from_numpy(mel)[None], emb_src, emb_trg
        )
        ref_mel, ref_postnet, ref_codes = generator(
            torch.from_numpy(padded)[None], emb_src, emb_trg
        )
    assert mel_out.shape == mel_postnet.shape == (1, mel.shape[0], 80)
    assert torch.equal(mel_out, ref_mel[:, : mel.shape[0]])
    assert torch.equal(mel_postnet, ref_postnet[:, : mel.shape[0]])
    assert torch.equal(codes, ref_codes)
    assert torch.isfinite(mel_postnet).all()


@pytest.mark.parametrize("frames", [1, 7, 8, 9, 17])
def test_autovc_output_shapes_for_any_length(frames):
    generator, _ = random_generator(0, 4, 8, 16, 8, conv_channels=16, decoder_lstm_size=32)
    with torch.no_grad():
        mel, mel_postnet, codes = AutoVC(generator)(*random_inputs(3, frames, 8))
    assert mel.shape == mel_postnet.shape == (3, frames, 80)
    assert codes.shape == (3, math.ceil(frames / 8), 8)
