"""Every bad input: exit 2 (bad argument or input file), one ``error:`` line that names the
problem, no traceback, and no output folder. ``--debug`` adds the traceback.

Most cases fail in seconds, before TensorFlow is imported; they run two at a time (about two
minutes in all on two cores, hence ``slow``).
"""

from __future__ import annotations

import subprocess
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
import torch
from conftest import run_cli
from onnx import TensorProto, helper, numpy_helper

from pipeline.models.autovc import random_generator

from .helpers import assert_one_error

pytestmark = pytest.mark.slow

SMALL = {"dim_neck": 4, "dim_emb": 8, "dim_pre": 16, "conv_channels": 16, "decoder_lstm_size": 32}


@dataclass(frozen=True)
class Case:
    """``args`` with ``{d}`` for the data folder; export and convert get ``--out {d}/out-<id>``."""

    args: tuple[str, ...]
    fragments: tuple[str, ...]


CASES = {
    # checkpoints
    "checkpoint-missing": Case(("export", "--checkpoint", "{d}/missing.ckpt"), ("checkpoint not found",)),
    "checkpoint-folder": Case(("export", "--checkpoint", "{d}"), ("checkpoint is not a file",)),
    "checkpoint-empty": Case(("export", "--checkpoint", "{d}/empty.ckpt"), ("checkpoint is empty (0 bytes)",)),
    "checkpoint-truncated": Case(("export", "--checkpoint", "{d}/truncated.ckpt"),
                                 ("checkpoint is truncated or corrupt", "truncated.ckpt")),
    "checkpoint-truncated-legacy": Case(("export", "--checkpoint", "{d}/truncated-legacy.ckpt"),
                                        ("checkpoint is truncated or corrupt", "unexpected EOF")),
    "checkpoint-text": Case(("export", "--checkpoint", "{d}/notes.ckpt"),
                            ("not a PyTorch checkpoint (neither a zip archive nor a pickle)",)),
    "checkpoint-other-zip": Case(("export", "--checkpoint", "{d}/archive.ckpt"),
                                 ("not a PyTorch checkpoint (a zip archive without data.pkl)",)),
    "checkpoint-tensor": Case(("export", "--checkpoint", "{d}/tensor.ckpt"),
                              ("checkpoint holds no state dict", "found a Tensor")),
    "checkpoint-other-model": Case(("export", "--checkpoint", "{d}/linear.ckpt"),
                                   ("checkpoint is not an AutoVC Generator", "missing keys")),
    "checkpoint-shape-mismatch": Case(("export", "--checkpoint", "{d}/mismatch.ckpt", "--freq", "8"), (
        "checkpoint tensor encoder.lstm.weight_ih_l0 has shape (16, 5)", "expects (16, 16)",
        "dim_neck or conv_channels probably differs")),
    "checkpoint-nan": Case(("export", "--checkpoint", "{d}/nan.ckpt", "--freq", "8"),
                           ("checkpoint tensor decoder.lstm1.bias_ih_l0 contains NaN or infinite values",)),
    "freq-zero": Case(("export", "--freq", "0"), ("freq must be a positive integer, got 0",)),
    # mel-spectrograms
    "mel-rank": Case(("export", "--mel", "{d}/batch.npy"), ("expected shape (T, 80), got (2, 10, 80)",)),
    "mel-width": Case(("export", "--mel", "{d}/width81.npy"), ("expected 80 mel bands", "(10, 81)")),
    "mel-nan": Case(("export", "--mel", "{d}/nan.npy"), ("nan.npy: contains 2 NaN/Inf values",)),
    "mel-zero-frames": Case(("export", "--mel", "{d}/empty.npy"), ("has 0 frames",)),
    "mel-over-max-frames": Case(("export", "--mel", "{d}/mel64.npy", "--max-frames", "32"),
                                ("64 frames is over the limit of 32 (raise it with --max-frames)",)),
    "mel-over-default-limit": Case(("export", "--mel", "{d}/mel8193.npy"),
                                   ("8193 frames is over the limit of 8192",)),
    "mel-not-npy": Case(("export", "--mel", "{d}/notes.npy"), ("is not a readable .npy array",)),
    "mel-strings": Case(("export", "--mel", "{d}/strings.npy"), ("does not hold a numeric array",)),
    "max-frames-zero": Case(("export", "--mel", "{d}/mel64.npy", "--max-frames", "0"),
                            ("--max-frames must be at least 1, got 0",)),
    "max-frames-not-a-number": Case(("export", "--max-frames", "many"),
                                    ("argument --max-frames: invalid int value: 'many'",)),
    # audio
    "wav-missing": Case(("export", "--wav", "{d}/missing.wav"), ("audio file not found",)),
    "wav-empty": Case(("export", "--wav", "{d}/empty.wav"), ("audio file has no samples",)),
    "wav-silent": Case(("export", "--wav", "{d}/silent.wav"), ("audio file is silent",)),
    "wav-8-bit": Case(("export", "--wav", "{d}/8bit.wav"), ("8-bit audio is not supported", "PCM_U8")),
    "wav-not-audio": Case(("export", "--wav", "{d}/notes.wav"), ("not a readable audio file",)),
    "wav-too-short": Case(("export", "--wav", "{d}/click.wav"), ("audio too short: 100 samples",)),
    # speaker embeddings
    "embedding-size": Case(("export", "--emb-src", "{d}/emb128.npy"),
                           ("expected shape (256,) or (1, 256) for this model, got (128,)",)),
    "embedding-batch": Case(("export", "--emb-trg", "{d}/emb3x256.npy"),
                            ("expected shape (256,) or (1, 256) for this model, got (3, 256)",)),
    "embedding-inf": Case(("export", "--emb-src", "{d}/emb-inf.npy"), ("contains 1 NaN/Inf values",)),
    # ONNX models
    "onnx-missing": Case(("convert", "{d}/missing.onnx"), ("ONNX model", "not found")),
    "onnx-empty": Case(("convert", "{d}/empty.onnx"), ("is empty",)),
    "onnx-truncated": Case(("convert", "{d}/truncated.onnx"), ("is not a valid ONNX model",)),
    "onnx-not-onnx": Case(("convert", "{d}/notes.npy"), ("is not a valid ONNX model",)),
    "onnx-invalid-graph": Case(("convert", "{d}/dangling.onnx"), ("is not a valid ONNX model:", "nowhere")),
    "onnx-unknown-op": Case(("convert", "{d}/custom-op.onnx"), (
        "cannot convert", "ONNX op com.example.Frobnicate (opset 1, no ONNX schema) at node 'frob' "
        "has no TensorFlow handler")),
    "onnx-op-onnx-tf-lacks": Case(("convert", "{d}/scatternd.onnx"), (
        "ONNX op ScatterND (opset 17, since version 16) at node 'sc1' has no TensorFlow handler",
        "and 1 more node")),
    "parity-onnx-missing": Case(("parity", "--onnx", "{d}/missing.onnx", "--saved-model", "{d}/sm",
                                 "--report", "{d}/report", "--device", "cpu"), ("ONNX model", "not found")),
    # output folders
    "out-under-a-file": Case(("export", "--out", "{d}/notes.ckpt/autovc"),
                             ("cannot write to output folder", "notes.ckpt is not a folder")),
    "out-is-a-file": Case(("export", "--out", "{d}/notes.wav"), ("notes.wav exists and is not a folder",)),
    "out-not-ours": Case(("export", "--out", "{d}/photos"), (
        "photos exists and was not written by autovc-onnx-tf (no manifest.json)", "pass --force")),
    # command line
    "unknown-flag": Case(("export", "--colour"), ("unrecognized arguments: --colour",)),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bad file of each kind (and good ones they are made from)."""
    d = tmp_path_factory.mktemp("bad-inputs")
    generator, _ = random_generator(seed=1, freq=8, **SMALL)
    state = generator.state_dict()
    torch.save({"model": state}, d / "good.ckpt")
    torch.save({"model": state}, d / "good-legacy.ckpt", _use_new_zipfile_serialization=False)
    for good, bad in (("good.ckpt", "truncated.ckpt"), ("good-legacy.ckpt", "truncated-legacy.ckpt")):
        content = (d / good).read_bytes()
        (d / bad).write_bytes(content[: len(content) // 2])
    (d / "empty.ckpt").write_bytes(b"")
    (d / "notes.ckpt").write_text("weights: see the wiki\n")
    with zipfile.ZipFile(d / "archive.ckpt", "w") as archive:
        archive.writestr("readme.txt", "not weights")
    torch.save(torch.zeros(3), d / "tensor.ckpt")
    torch.save(torch.nn.Linear(2, 2).state_dict(), d / "linear.ckpt")
    torch.save({"model": {**state, "encoder.lstm.weight_ih_l0": torch.zeros(16, 5)}}, d / "mismatch.ckpt")
    bias = state["decoder.lstm1.bias_ih_l0"].clone()
    bias[0] = float("nan")
    torch.save({"model": {**state, "decoder.lstm1.bias_ih_l0": bias}}, d / "nan.ckpt")

    np.save(d / "batch.npy", np.zeros((2, 10, 80), np.float32))
    np.save(d / "width81.npy", np.zeros((10, 81), np.float32))
    mel = np.zeros((10, 80), np.float32)
    mel[3, 4], mel[5, 6] = np.nan, np.inf
    np.save(d / "nan.npy", mel)
    np.save(d / "empty.npy", np.zeros((0, 80), np.float32))
    np.save(d / "mel64.npy", np.zeros((64, 80), np.float32))
    np.save(d / "mel8193.npy", np.zeros((8193, 80), np.float32))
    (d / "notes.npy").write_text("0.1 0.2 0.3\n")
    np.save(d / "strings.npy", np.full((10, 80), "x"))

    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)
    sf.write(d / "empty.wav", np.zeros(0), 16000, subtype="PCM_16")
    sf.write(d / "silent.wav", np.zeros(16000), 16000, subtype="PCM_16")
    sf.write(d / "8bit.wav", tone, 16000, subtype="PCM_U8")
    sf.write(d / "click.wav", tone[:100], 16000, subtype="PCM_16")
    (d / "notes.wav").write_text("RIFF, but only in name\n")

    np.save(d / "emb128.npy", np.zeros(128, np.float32))
    np.save(d / "emb3x256.npy", np.zeros((3, 256), np.float32))
    emb = np.full(256, 0.05, np.float32)
    emb[7] = np.inf
    np.save(d / "emb-inf.npy", emb)

    _write_onnx_models(d)
    (d / "photos").mkdir()
    (d / "photos" / "holiday.jpg").write_text("precious")
    return d


def _write_onnx_models(d: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    opset = [helper.make_opsetid("", 17)]

    def save(name: str, nodes: list[onnx.NodeProto], initializers: Sequence[onnx.TensorProto] = (),
             opsets: Sequence[onnx.OperatorSetIdProto] = opset) -> None:
        graph = helper.make_graph(nodes, "g", [x], [y], list(initializers))
        onnx.save(helper.make_model(graph, opset_imports=opsets), str(d / name))

    save("relu.onnx", [helper.make_node("Relu", ["x"], ["y"])])
    content = (d / "relu.onnx").read_bytes()
    (d / "truncated.onnx").write_bytes(content[: len(content) // 2])
    (d / "empty.onnx").write_bytes(b"")
    save("dangling.onnx", [helper.make_node("Add", ["x", "nowhere"], ["y"])])
    save("custom-op.onnx", [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example", name="frob")],
         opsets=[*opset, helper.make_opsetid("com.example", 1)])
    indices = numpy_helper.from_array(np.zeros((1, 1), np.int64), "indices")
    updates = numpy_helper.from_array(np.ones((1, 4), np.float32), "updates")
    save("scatternd.onnx", [helper.make_node("ScatterND", ["x", "indices", "updates"], ["h"], name="sc1"),
                            helper.make_node("ScatterND", ["h", "indices", "updates"], ["y"], name="sc2")],
         [indices, updates])


def _argv(case_id: str, d: Path) -> list[str]:
    case = CASES[case_id]
    argv = [arg.replace("{d}", str(d)) for arg in case.args]
    if argv[0] in ("export", "convert") and "--out" not in argv:
        argv += ["--out", str(d / f"out-{case_id}")]
    return argv


@pytest.fixture(scope="module")
def results(data: Path) -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {case_id: pool.submit(run_cli, *_argv(case_id, data), timeout=300) for case_id in CASES}
    return {case_id: run.result() for case_id, run in runs.items()}


@pytest.mark.parametrize("case_id", CASES)
def test_bad_input_fails_with_one_clear_line(results, data, case_id):
    result = results[case_id]
    assert_one_error(result.returncode, result.stderr, 2, *CASES[case_id].fragments)
    assert not (data / f"out-{case_id}").exists()
    assert not [p for p in data.iterdir() if p.name.startswith(f".out-{case_id}.") and not p.name.endswith(".lock")]


def test_a_folder_that_is_not_ours_is_left_as_it_was(results, data):
    assert results["out-not-ours"].returncode == 2
    assert sorted(p.name for p in (data / "photos").iterdir()) == ["holiday.jpg"]
    assert (data / "photos" / "holiday.jpg").read_text() == "precious"


def test_debug_adds_the_traceback_and_keeps_the_line_and_exit_code(data):
    result = run_cli("export", "--checkpoint", str(data / "truncated.ckpt"), "--out", str(data / "out-debug"),
                     "--debug")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback (most recent call last)" in result.stderr
    assert "in read_state_dict" in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: checkpoint is truncated or corrupt")
