"""Real exports shared by the concurrency, determinism and memory tests."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import run_cli

from pipeline.models.autovc import random_generator

from .helpers import Finished, run_watched


@dataclass
class SecondExport:
    """``export --force --out OUT`` over a folder of someone else's files, with a rival
    ``export --force --out OUT`` started once the first one holds the folder."""

    out: Path
    run: Finished
    rival: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def second_export(tmp_path_factory: pytest.TempPathFactory) -> SecondExport:
    out = tmp_path_factory.mktemp("second") / "autovc"
    out.mkdir()
    (out / "notes.txt").write_text("someone else's file")
    rival: list[subprocess.CompletedProcess] = []
    run = run_watched(
        "export", "--force", "--out", str(out),
        when="[devices] ...", then=lambda _: rival.append(run_cli("export", "--force", "--out", str(out))),
    )
    assert rival, run.stderr[-3000:]
    return SecondExport(out, run, rival[0])


LONG_FRAMES = 501
"""Frames of the long input: 8 s at 44.1 kHz is 128000 samples at 16 kHz, 128000 // 256 + 1."""


@dataclass
class LongExport:
    """``export --checkpoint --wav (8 s, 44.1 kHz stereo) --max-frames 501 --device cpu`` into a
    folder that held a previous export of ours."""

    out: Path
    checkpoint: Path
    wav: Path
    run: Finished


@pytest.fixture(scope="session")
def long_export(exported_autovc, tmp_path_factory: pytest.TempPathFactory) -> LongExport:
    folder = tmp_path_factory.mktemp("long")
    wav = folder / "speech-44k-stereo.wav"
    rng = np.random.default_rng(7)
    t = np.arange(8 * 44100) / 44100
    voiced = sum(np.sin(2 * np.pi * k * (120 + 30 * np.sin(2 * np.pi * 0.5 * t)) * t) / k for k in range(1, 12))
    left = 0.2 * voiced + 0.01 * rng.standard_normal(t.size)
    right = 0.15 * np.roll(voiced, 441) + 0.01 * rng.standard_normal(t.size)
    sf.write(wav, np.stack([left, right], axis=1), 44100, subtype="PCM_16")
    checkpoint = folder / "autovc.ckpt"
    torch.save({"model": random_generator(0)[0].state_dict()}, checkpoint)
    out = folder / "autovc"
    shutil.copytree(exported_autovc[0], out)
    run = run_watched("export", "--checkpoint", str(checkpoint), "--wav", str(wav), "--max-frames",
                      str(LONG_FRAMES), "--device", "cpu", "--out", str(out))
    return LongExport(out, checkpoint, wav, run)
