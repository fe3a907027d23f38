"""The three backends of a parity run, each giving ONNX-named numpy outputs for ONNX-named inputs.

- ``torch``: the PyTorch module, called with the inputs in ONNX graph-input order; its tuple of
  outputs is matched to the ONNX graph outputs in order (a dict is matched by name).
- ``ort``: an onnxruntime session with the requested providers; ``get_providers()`` records the
  ones the session really uses (onnxruntime falls back to CPU when CUDA libraries are missing).
- ``tf``: the SavedModel loaded with ``tf.saved_model.load``, called through its
  ``serving_default`` signature under ``tf.device``; the device of the returned tensors is recorded.
  Sequence and optional outputs come back as onnxruntime returns them (a list of arrays, None
  for an empty optional; see :mod:`pipeline.stages.signature_values`).
- ``tf_xla``: the same SavedModel's ``serving_xla`` signature (XLA-compiled), when it has one.
- ``litert``: a ``.tflite`` file run by the LiteRT interpreter (``ai-edge-litert``) through its
  ``serving_default`` signature runner, with the default op resolver (XNNPACK on, as users get it).

:data:`TF_SIGNATURES` lists the SavedModel signatures run as backends; :data:`REFERENCES` the
backends every other one is compared against.

Precision: by default every backend computes float32 as float32. TensorFloat-32 (on by default
for TensorFlow's matmuls and convolutions, torch's cuDNN convolutions and onnxruntime's CUDA
provider on Ampere and later GPUs) rounds inputs to 10 mantissa bits, errors far above the
float32 tolerances; :func:`float32_precision` turns it off for the run and restores it after.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.runtime.devices import CPU_EP, CUDA_EP
from pipeline.runtime.errors import PipelineError
from pipeline.stages.signatures import SIGNATURE_KEY, XLA_SIGNATURE_KEY

TORCH = "torch"
ORT = "ort"
TF = "tf"
TF_XLA = "tf_xla"
LITERT = "litert"
BACKEND_LABELS = {
    TORCH: "PyTorch",
    ORT: "onnxruntime",
    TF: "TensorFlow SavedModel",
    TF_XLA: "TensorFlow SavedModel, serving_xla (XLA)",
    LITERT: "LiteRT",
}
TF_SIGNATURES = {TF: SIGNATURE_KEY, TF_XLA: XLA_SIGNATURE_KEY}
"""Backend name -> the SavedModel signature it runs; ``tf`` is required, the others run when the
SavedModel has them (one written before ``serving_xla`` existed has only ``tf``)."""
REFERENCES = (TORCH, ORT)
"""Each pair compared has one of these as its reference: torch-ort, then every other backend
against torch and against onnxruntime (the TF signatures and LiteRT are not compared with each
other)."""
TORCH_CPU_THREADS = 1
"""torch's intra-op threads on the CPU for the parity reference and for all of ``export``.

Exactness: with two threads, a `parity` on a loaded machine once gave torch-ort 4.1e-5 on
mel_postnet (mean 1e-5; the same command otherwise gives 2.7e-6 every time, and mel_decoder and
codes stayed at 1e-7): a changed summation order, which AutoVC's five postnet layers amplify, is
the likely cause. One thread has never shown it. Speed: torch's share of an export (tracing,
forward passes on one input) is small; one thread is as fast on an idle machine and twice as
fast on a busy one, where OpenMP workers spin for cores other processes hold (torch -> onnx: 2 s
either way idle; 4.3 s with two threads, 2.1 s with one, at a load of 2.5 on 2 cores)."""


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` inside, restored after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Backend(Protocol):
    """Runs the model on ONNX-named numpy inputs and returns ONNX-named numpy outputs."""

    name: str

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class BackendSpec:
    """A backend compared beside torch, ort and tf: its name, how to load it for the ONNX output
    names, and the model file it runs (hashed into the report's provenance as ``<name>_model``)."""

    name: str
    load: Callable[[Sequence[str]], Backend]
    model_file: Path | None = None


class TorchBackend:
    """A ``torch.nn.Module`` run under ``torch.inference_mode`` on the device of its parameters."""

    name = TORCH

    def __init__(self, module: Any, input_names: Sequence[str], output_names: Sequence[str]) -> None:
        import torch

        self._torch = torch
        self.module = module
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        parameter = next(module.parameters(), None)
        self.device = parameter.device if parameter is not None else torch.device("cpu")

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode(), torch_threads(TORCH_CPU_THREADS):
            args = [torch.from_numpy(np.ascontiguousarray(inputs[n])).to(self.device) for n in self.input_names]
            outputs = self.module(*args)
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        if isinstance(outputs, dict):
            named = dict(outputs)
        elif len(outputs) == len(self.output_names):
            named = dict(zip(self.output_names, outputs))
        else:
            raise PipelineError(
                f"the PyTorch module returned {len(outputs)} outputs, the ONNX model has "
                f"{len(self.output_names)} ({', '.join(self.output_names)})"
            )
        return {name: value.detach().cpu().numpy() for name, value in named.items()}

    def describe(self) -> dict[str, Any]:
        return {
            "label": BACKEND_LABELS[TORCH],
            "device": str(self.device),
            "training_mode": bool(self.module.training),
            "threads": self._torch.get_num_threads(),
        }


class OrtBackend:
    """An onnxruntime ``InferenceSession`` on the model file."""

    name = ORT

    def __init__(self, onnx_path: Path, providers: Sequence[str] | None = None, allow_tf32: bool = False) -> None:
        import onnxruntime as ort

        self.providers_requested = list(providers) if providers else [CPU_EP]
        try:
            self.session = ort.InferenceSession(
                str(onnx_path), providers=ort_provider_options(self.providers_requested, allow_tf32)
            )
        except Exception as error:  # noqa: BLE001 (onnxruntime's Fail, InvalidGraph... derive from Exception)
            raise PipelineError(f"onnxruntime cannot load {onnx_path}: {error}") from None
        self.providers_used = self.session.get_providers()
        self.tf32 = self.session.get_provider_options().get(CUDA_EP, {}).get("use_tf32")
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, inputs)
        return dict(zip(self.output_names, values))

    def describe(self) -> dict[str, Any]:
        return {
            "label": BACKEND_LABELS[ORT],
            "providers_requested": self.providers_requested,
            "providers_used": self.providers_used,
            "device": "GPU" if self.providers_used[0] == CUDA_EP else "CPU",
            "cuda_use_tf32": self.tf32,
        }


class TfSavedModelBackend:
    """One signature of a SavedModel (``serving_default`` unless ``name`` says otherwise: see
    :data:`TF_SIGNATURES`), with ONNX names mapped to signature names. ``loaded`` reuses a
    SavedModel already loaded for another signature."""

    def __init__(
        self,
        saved_model_dir: Path,
        output_names: Sequence[str],
        device: str | None = None,
        *,
        name: str = TF,
        loaded: Any = None,
    ) -> None:
        import tensorflow as tf

        self._tf = tf
        self.name = name
        self.signature_key = TF_SIGNATURES[name]
        self.output_names = list(output_names)
        self.device_requested = device or default_tf_device()
        if loaded is None:
            loaded = load_saved_model(saved_model_dir)
        if self.signature_key not in loaded.signatures:
            raise PipelineError(f"SavedModel {saved_model_dir} has no '{self.signature_key}' signature")
        self._loaded = loaded  # the signature needs its object kept alive
        self.signature = loaded.signatures[self.signature_key]
        self.device_used: str | None = None

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        from pipeline.stages.signature_values import decode_outputs, signature_feeds, tf_name

        tf = self._tf
        try:
            with tf.device(self.device_requested):
                outputs = self.signature(**signature_feeds(inputs, self.signature.structured_input_signature[1]))
        except tf.errors.OpError as error:  # e.g. an op that XLA cannot compile in serving_xla
            raise PipelineError(f"the SavedModel's {self.signature_key} signature failed: {_reason(error)}") from None
        self.device_used = next(iter(outputs.values())).device
        decoded = decode_outputs(outputs)
        return {name: decoded[tf_name(name)] for name in self.output_names if tf_name(name) in decoded}

    def describe(self) -> dict[str, Any]:
        return {
            "label": BACKEND_LABELS[self.name],
            "signature": self.signature_key,
            "device_requested": self.device_requested,
            "device_used": self.device_used,
        }


def _reason(error: Any) -> str:
    """The informative line of a TF runtime error (e.g. XLA's "Detected unsupported operations
    ... AsString ..."), without TF's preamble lines."""
    message = error.message or str(error)
    skip = ("Graph execution error", "Detected at node", "<stack traces")
    lines = [line.strip() for line in message.splitlines() if line.strip() and not line.strip().startswith(skip)]
    return lines[0] if lines else message.strip()


def load_saved_model(saved_model_dir: Path) -> Any:
    """``tf.saved_model.load``, with a clear error for a folder that is not a SavedModel."""
    import tensorflow as tf

    if not (Path(saved_model_dir) / "saved_model.pb").is_file():
        raise PipelineError(f"{saved_model_dir} is not a SavedModel (no saved_model.pb)")
    return tf.saved_model.load(str(saved_model_dir))


def tf_backends(saved_model_dir: Path, output_names: Sequence[str], device: str | None = None) -> list[TfSavedModelBackend]:
    """A backend per signature of :data:`TF_SIGNATURES` that the SavedModel has (``tf`` always)."""
    loaded = load_saved_model(saved_model_dir)
    return [
        TfSavedModelBackend(saved_model_dir, output_names, device, name=name, loaded=loaded)
        for name, key in TF_SIGNATURES.items()
        if name == TF or key in loaded.signatures
    ]


def reference_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """The (reference, candidate) pairs to compare among backends ``names`` (in run order)."""
    return [(a, b) for i, a in enumerate(names) if a in REFERENCES for b in names[i + 1 :]]
class LitertBackend:
    """A ``.tflite`` model's ``serving_default`` signature in the LiteRT interpreter; the runner
    resizes the inputs to each call's shapes (dynamic batch and length)."""

    name = LITERT

    def __init__(self, model_path: Path, output_names: Sequence[str]) -> None:
        interpreter_class = litert_interpreter()
        self.model_path = Path(model_path)
        self.output_names = list(output_names)
        try:
            self.interpreter = interpreter_class(model_path=str(self.model_path))
            self.runner = self.interpreter.get_signature_runner(SIGNATURE_KEY)
        except (ValueError, RuntimeError) as error:
            raise PipelineError(f"LiteRT cannot load {self.model_path}: {error}") from None

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        from pipeline.stages.signature_values import decode_outputs, tf_name

        outputs = self.runner(**{tf_name(n): np.ascontiguousarray(v) for n, v in inputs.items()})
        outputs = decode_outputs({key: np.array(value) for key, value in outputs.items()})
        return {name: outputs[tf_name(name)] for name in self.output_names if tf_name(name) in outputs}

    def describe(self) -> dict[str, Any]:
        from importlib import metadata

        return {
            "label": BACKEND_LABELS[LITERT],
            "runtime": f"ai-edge-litert {metadata.version('ai-edge-litert')}",
            "op_resolver": "BUILTIN (default: XNNPACK delegate applied)",
        }


def litert_interpreter() -> type:
    """``ai_edge_litert.interpreter.Interpreter``, or a :class:`PipelineError` saying how to install it."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise PipelineError(
            "running a .tflite model needs the LiteRT interpreter: pip install 'autovc-onnx-tf[litert]' "
            "(or pip install ai-edge-litert)"
        ) from None
    return Interpreter


def default_tf_device() -> str:
    """The first GPU TensorFlow sees, else the CPU."""
    import tensorflow as tf

    return "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"


def ort_provider_options(providers: Sequence[str], allow_tf32: bool) -> list[str | tuple[str, dict[str, str]]]:
    """The providers for ``InferenceSession``, the CUDA one with TensorFloat-32 set as asked."""
    return [(p, {"use_tf32": "1" if allow_tf32 else "0"}) if p == CUDA_EP else p for p in providers]


@contextmanager
def float32_precision(allow_tf32: bool) -> Iterator[dict[str, Any]]:
    """TensorFloat-32 on or off in TensorFlow and torch (matmul and cuDNN; only if torch is
    imported) while inside; the previous settings are restored on exit. Yields what was set."""
    import tensorflow as tf

    torch = sys.modules.get("torch")
    previous_tf = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(allow_tf32)
    applied = ["tensorflow", "onnxruntime CUDA provider"]
    if torch is not None:
        previous_torch = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow_tf32
        applied.append("torch matmul and cuDNN")
    try:
        yield {"allow_tf32": allow_tf32, "applied_to": applied}
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(previous_tf)
        if torch is not None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous_torch
