"""The model zoo: small speech architectures written for this project from their papers'
descriptions (random seeded weights, channels reduced, structure kept), each exported with the
legacy torch.onnx exporter, converted as ``python -m pipeline convert`` converts, and compared
three ways (torch, onnxruntime, TF SavedModel; and the SavedModel's XLA signature).

One module per model: a ``torch.nn.Module``, ``example_inputs(batch, time, seed)`` and
``DYNAMIC_AXES``. :data:`MODELS` lists them; the helpers below are shared by ``tests/test_zoo.py``
and ``benchmarks/zoo.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import torch

# The only place the zoo names the conversion code: a rename of the modules touches these imports.
from pipeline.stages.signatures import SIGNATURE_KEY, XLA_SIGNATURE_KEY
from pipeline.stages.tf_convert import OnnxGraphModule, write_saved_model
from tests.torch_onnx import export

# The newest opset torch's legacy (TorchScript) exporter accepts.
NEWEST_OPSET = torch.onnx._constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
OPSETS = (15, 17, NEWEST_OPSET)
EXPORT_SHAPE = (2, 24)  # (batch, time) of the example the graph is exported with
CHECK_SHAPE = (3, 37)  # another batch and an odd time: the dynamic axes must really be dynamic


@dataclass(frozen=True)
class Tolerance:
    """Elementwise ``|candidate - reference| <= atol + rtol * |reference|``, as ``parity`` checks."""

    atol: float = 1e-5
    rtol: float = 0.0

    def holds(self, candidate: np.ndarray, reference: np.ndarray) -> bool:
        return bool(np.all(np.abs(candidate - reference) <= self.atol + self.rtol * np.abs(reference)))


@dataclass(frozen=True)
class ZooModel:
    """One architecture of the zoo: ``module`` is its module name in this package."""

    name: str
    family: str
    module: str
    cls: str
    tolerance: Tolerance = Tolerance()

    def code(self) -> ModuleType:
        return importlib.import_module(f"{__name__}.{self.module}")

    def build(self, seed: int = 0) -> torch.nn.Module:
        """The model with seeded random weights, in eval mode."""
        torch.manual_seed(seed)
        return getattr(self.code(), self.cls)().eval()

    def inputs(self, batch: int, time: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        return self.code().example_inputs(batch, time, seed)

    def export(self, model: torch.nn.Module, opset: int) -> onnx.ModelProto:
        """The ONNX graph (legacy exporter; inputs ``x0, x1, ...``, output ``y``; dynamic batch and
        time axes) of ``model`` traced on the :data:`EXPORT_SHAPE` example."""
        return export(model, self.inputs(*EXPORT_SHAPE), opset, dynamic_axes=self.code().DYNAMIC_AXES)


MODELS = {
    m.name: m
    for m in (
        ZooModel("gru_encoder", "GRU", "gru_encoder", "GruEncoder"),
        ZooModel("two_grus", "GRU", "two_grus", "TwoGrus"),
        ZooModel("rnn_tanh", "RNN", "rnn_tanh", "RnnTanh"),
        ZooModel("hifigan", "vocoder", "hifigan", "HifiGanGenerator"),
        ZooModel("melgan", "vocoder", "melgan", "MelGanGenerator"),
        ZooModel("adain_vc", "normalisation VC", "adain_vc", "AdaInVc"),
        ZooModel("speechsplit", "GroupNorm + LSTM", "speechsplit", "SpeechSplitEncoder"),
    )
}


def convert(model: onnx.ModelProto, directory: Path) -> None:
    """What ``python -m pipeline convert`` does after its checks: the SavedModel into ``directory``."""
    write_saved_model(OnnxGraphModule(model), directory)


def run_torch(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    with torch.no_grad():
        return model(*inputs).numpy()


def run_onnxruntime(model: onnx.ModelProto, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(["y"], {f"x{i}": x.numpy() for i, x in enumerate(inputs)})[0]


def saved_model_runners(directory: Path) -> dict[str, Callable[[tuple[torch.Tensor, ...]], np.ndarray]]:
    """The SavedModel's signatures (``tf`` = serving_default, ``tf_xla`` = serving_xla where it
    has one), each a function of the torch inputs giving output ``y``."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))
    runners = {}
    for label, key in (("tf", SIGNATURE_KEY), ("tf_xla", XLA_SIGNATURE_KEY)):
        if key in loaded.signatures:
            signature = loaded.signatures[key]

            def run(inputs: tuple[torch.Tensor, ...], signature=signature) -> np.ndarray:
                return signature(**{f"x{i}": tf.constant(x.numpy()) for i, x in enumerate(inputs)})["y"].numpy()

            runners[label] = run
    return runners


def compare(outputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Max abs difference of every pair the zoo reports: torch-ort, torch-tf, ort-tf, torch-tf_xla."""
    pairs = [("torch", "onnxruntime"), ("torch", "tf"), ("onnxruntime", "tf"), ("torch", "tf_xla")]
    return {
        f"{a}-{b}": float(np.max(np.abs(outputs[a] - outputs[b])))
        for a, b in pairs
        if a in outputs and b in outputs
    }
