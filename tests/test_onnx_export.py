"""Export stage: graph validity, dynamic shapes, BatchNorm kept or folded, metadata,
determinism, and onnxruntime parity with torch."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from pipeline.models.autovc import AutoVC, random_generator
from pipeline.models.autovc.spec import INPUT_NAMES, OUTPUT_NAMES, SPEC
from pipeline.runtime.errors import PipelineError, UsageError
from pipeline.stages.onnx_export import check_onnxruntime, export_onnx

# Small widths: the dynamic-shape and padding logic does not depend on layer sizes.
SMALL = {
    "dim_neck": 4,
    "dim_emb": 8,
    "dim_pre": 16,
    "freq": 32,
    "conv_channels": 16,
    "decoder_lstm_size": 32,
}
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """One export of a small AutoVC (BatchNorm kept), and the warnings it emitted."""
    generator, info = random_generator(seed=3, **SMALL)
    module = AutoVC(generator)
    path = tmp_path_factory.mktemp("small") / "model.onnx"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = export_onnx(module, path, metadata=SPEC.metadata(info))
    return module, info, result, caught


@pytest.fixture(scope="module")
def small_folded(tmp_path_factory):
    generator, _ = random_generator(seed=3, **SMALL)
    module = AutoVC(generator)
    path = tmp_path_factory.mktemp("folded") / "model.onnx"
    result = export_onnx(module, path, keep_batchnorm=False)
    return module, result


def random_inputs(batch: int, frames: int, dim_emb: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(batch * 1000 + frames)
    return {
        "mel": rng.random((batch, frames, 80), dtype=np.float32),
        "emb_src": rng.standard_normal((batch, dim_emb), dtype=np.float32) * 0.1,
        "emb_trg": rng.standard_normal((batch, dim_emb), dtype=np.float32) * 0.1,
    }


def count_modules(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("frames", [1, 31, 32, 100, 512])
def test_onnxruntime_matches_torch(small, batch, frames):
    module, _, result, _ = small
    inputs = random_inputs(batch, frames, SMALL["dim_emb"])
    errors = check_onnxruntime(result.path, module, inputs, threads=1)
    assert set(errors) == set(OUTPUT_NAMES)
    assert max(errors.values()) <= TOLERANCE, errors


def test_graph_is_valid_with_dynamic_batch_and_time(small):
    _, _, result, _ = small
    model = onnx.load(result.path)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)

    def dims(values):
        return {
            v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in values
        }

    assert dims(model.graph.input) == {
        "mel": ["batch", "time", 80],
        "emb_src": ["batch", SMALL["dim_emb"]],
        "emb_trg": ["batch", SMALL["dim_emb"]],
    }
    assert dims(model.graph.output) == {
        "mel_decoder": ["batch", "time", 80],
        "mel_postnet": ["batch", "time", 80],
        "codes": ["batch", "segments", 2 * SMALL["dim_neck"]],
    }
    assert tuple(dims(model.graph.input)) == INPUT_NAMES
    assert tuple(dims(model.graph.output)) == OUTPUT_NAMES


def test_batchnorm_nodes_are_kept(small):
    module, _, result, _ = small
    assert result.op_counts["BatchNormalization"] == count_modules(module, nn.BatchNorm1d) == 11
    assert result.op_counts["Conv"] == count_modules(module, nn.Conv1d)


def test_batchnorm_folded_on_request(small_folded):
    module, result = small_folded
    assert "BatchNormalization" not in result.op_counts
    assert result.op_counts["Conv"] == count_modules(module, nn.Conv1d)
    inputs = random_inputs(2, 45, SMALL["dim_emb"])
    errors = check_onnxruntime(result.path, module, inputs, threads=1)
    assert max(errors.values()) <= TOLERANCE, errors
    metadata = {p.key: p.value for p in onnx.load(result.path).metadata_props}
    assert metadata["batchnorm"] == "folded"


def test_metadata_records_model_and_versions(small):
    _, info, result, _ = small
    metadata = {p.key: p.value for p in onnx.load(result.path).metadata_props}
    assert json.loads(metadata["autovc.hyperparameters"]) == info["hyperparameters"]
    assert json.loads(metadata["autovc.weights_origin"]) == {"kind": "random", "seed": 3}
    assert metadata["autovc.weights_label"] == "random weights, seed 3"
    assert metadata["torch_version"] == torch.__version__
    assert metadata["onnx_version"] == onnx.__version__
    assert metadata["opset"] == "17"
    assert metadata["batchnorm"] == "kept"
    assert onnx.load(result.path).opset_import[0].version == 17


def test_export_is_deterministic(small, tmp_path):
    _, info, result, _ = small
    generator, _ = random_generator(seed=3, **SMALL)
    again = export_onnx(AutoVC(generator), tmp_path / "again.onnx", metadata=SPEC.metadata(info))
    assert again.path.read_bytes() == result.path.read_bytes()


def test_export_emits_no_warnings(small):
    _, _, _, caught = small
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


@pytest.mark.parametrize("opset", [7, 21])
def test_unsupported_opset(small, tmp_path, opset):
    module, _, _, _ = small
    with pytest.raises(UsageError, match="opset must be an integer"):
        export_onnx(module, tmp_path / "model.onnx", opset=opset)


def test_parity_check_without_onnxruntime(small, monkeypatch):
    module, _, result, _ = small
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(PipelineError, match=r"pip install '\.\[cpu\]'"):
        check_onnxruntime(result.path, module, random_inputs(1, 8, SMALL["dim_emb"]))


def test_full_size_generator_on_real_data(tmp_path, shared_data):
    """Generator(32, 256, 512, 32) with BatchNorm kept, on three real utterances cropped to the
    shortest (75 frames, padded to 96 inside the graph) and the authors' speaker embeddings."""
    generator, info = random_generator(seed=0)
    module = AutoVC(generator)
    result = export_onnx(module, tmp_path / "model.onnx", metadata=SPEC.metadata(info))
    assert result.op_counts["BatchNormalization"] == 11
    metadata = np.load(shared_data / "metadata.npz")
    mels = [metadata[f"mel_{speaker}"] for speaker in metadata["speakers"][:3]]
    frames = min(len(mel) for mel in mels)
    embeddings = metadata["embeddings"]
    real = {
        "mel": np.stack([mel[:frames] for mel in mels]),
        "emb_src": embeddings[:3],
        "emb_trg": embeddings[[3, 0, 1]],
    }
    assert frames % 32 != 0
    errors = check_onnxruntime(result.path, module, real, threads=1)
    assert max(errors.values()) <= TOLERANCE, errors
