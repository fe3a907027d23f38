"""End to end on AutoVC (seeded random weights, reduced widths, the real layer structure):
export to ONNX, convert to a SavedModel, and check three-way parity on the default input and
on every mel x speaker-pair of the real AutoVC data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
import pytest

from pipeline.models.autovc import AutoVC, random_generator
from pipeline.models.autovc.default_input import default_batch
from pipeline.parity import metadata_sweep_cases, run_parity, run_sweep, write_report
from pipeline.stages.onnx_export import export_onnx
from pipeline.stages.tf_convert import OnnxGraphModule, write_saved_model

pytestmark = pytest.mark.slow

SIZES = {"dim_neck": 16, "dim_emb": 256, "dim_pre": 128, "freq": 32}


@dataclass
class Converted:
    module: AutoVC
    label: str
    onnx_path: Path
    saved_model: Path


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Converted:
    folder = tmp_path_factory.mktemp("autovc")
    generator, info = random_generator(seed=0, **SIZES, conv_channels=128, decoder_lstm_size=256)
    module = AutoVC(generator).eval()
    export_onnx(module, folder / "model.onnx")
    write_saved_model(OnnxGraphModule(onnx.load(folder / "model.onnx")), folder / "saved_model")
    return Converted(module, info["label"], folder / "model.onnx", folder / "saved_model")


def test_autovc_default_input_passes_with_every_node_compared(converted: Converted, tmp_path: Path) -> None:
    result = run_parity(
        converted.onnx_path, converted.saved_model, default_batch(SIZES["dim_emb"]),
        torch_module=converted.module, weights_origin=converted.label,
    )
    assert result.passed, result.failures()
    layers = result.per_layer
    assert layers is not None and layers.first_divergence is None
    modules = {name for name, _ in converted.module.named_modules()}
    lstm_nodes = [n for n in layers.nodes if n.op_type == "LSTM"]
    # One LSTM node per layer: the encoder's and lstm2 have two layers each.
    assert [n.torch_module for n in lstm_nodes] == [
        "generator.encoder.lstm", "generator.encoder.lstm", "generator.decoder.lstm1",
        "generator.decoder.lstm2", "generator.decoder.lstm2",
    ]
    batchnorm = [n.torch_module for n in layers.nodes if n.op_type == "BatchNormalization"]
    assert "generator.postnet.convolutions.2.1" in batchnorm
    assert all(n.torch_module in modules for n in layers.nodes if n.torch_module is not None)
    write_report(result, tmp_path / "report")
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000


def test_autovc_sweep_over_the_real_data(converted: Converted, shared_data: Path) -> None:
    cases = metadata_sweep_cases(shared_data / "metadata.npz")
    result = run_sweep(converted.onnx_path, converted.saved_model, cases,
                       torch_module=converted.module, per_layer=False)
    assert result.passed, result.failures()
    assert len(result.cases) == len(cases) == 16
    assert {c.output for c in result.comparisons} == {"mel_decoder", "mel_postnet", "codes"}
