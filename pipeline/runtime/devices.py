"""Choose the device each backend (torch, onnxruntime, TensorFlow) runs on.

``resolve_devices("auto" | "cpu" | "cuda")`` probes each installed library for a usable
GPU and returns a :class:`DevicePlan`. Probing (:func:`probe_backends`) asks the real
libraries; the decision (:func:`plan_devices`) is a pure function of the probe answers.
Heavy libraries are imported only when a probe runs, never for ``cpu``.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.runtime.errors import PipelineError, UsageError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
BACKENDS = ("torch", "onnxruntime", "tensorflow")
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"


@dataclass(frozen=True)
class GpuProbe:
    """One backend's answer: can it run on a GPU, and why (not)."""

    available: bool
    detail: str  # a GPU's description, or a phrase naming what is missing


@dataclass(frozen=True)
class BackendChoice:
    """What one backend was asked for, what it got, and why."""

    backend: str
    requested: str
    used: str  # "cuda" or "cpu"
    device: str | list[str]  # torch device, ORT provider list or TF device
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "used": self.used,
            "device": self.device,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DevicePlan:
    """The devices the three backends run on, with the reason for each choice."""

    requested: str
    torch_device: str
    ort_providers: list[str]
    tf_device: str
    choices: tuple[BackendChoice, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``devices`` section of report.json."""
        return {
            "requested": self.requested,
            "backends": {c.backend: c.to_json() for c in self.choices},
        }

    def describe(self) -> str:
        """One line per backend for the terminal."""
        width = max(len(c.backend) for c in self.choices)
        lines = []
        for c in self.choices:
            device = ",".join(c.device) if isinstance(c.device, list) else c.device
            lines.append(f"{c.backend:<{width}}  {device}  ({c.reason})")
        return "\n".join(lines)


def resolve_devices(requested: str) -> DevicePlan:
    """Probe the installed libraries (except for ``cpu``) and plan the devices."""
    _check_choice(requested)
    probes = {} if requested == "cpu" else probe_backends()
    return plan_devices(requested, probes)


def plan_devices(requested: str, probes: Mapping[str, GpuProbe]) -> DevicePlan:
    """Turn probe answers into a plan; ``cuda`` raises one line naming every backend without a GPU."""
    _check_choice(requested)
    if requested == "cuda":
        missing = [probes[b].detail for b in BACKENDS if not probes[b].available]
        if missing:
            raise PipelineError("--device cuda: " + "; ".join(missing))

    def gpu(backend: str) -> bool:
        return requested != "cpu" and probes[backend].available

    def reason(backend: str) -> str:
        if requested == "cpu":
            return "CPU requested"
        probe = probes[backend]
        return f"GPU: {probe.detail}" if probe.available else f"CPU fallback: {probe.detail}"

    torch_device = "cuda:0" if gpu("torch") else "cpu"
    ort_providers = [CUDA_EP, CPU_EP] if gpu("onnxruntime") else [CPU_EP]
    tf_device = "/GPU:0" if gpu("tensorflow") else "/CPU:0"
    devices: dict[str, str | list[str]] = {
        "torch": torch_device,
        "onnxruntime": ort_providers,
        "tensorflow": tf_device,
    }
    choices = tuple(
        BackendChoice(b, requested, "cuda" if gpu(b) else "cpu", devices[b], reason(b)) for b in BACKENDS
    )
    return DevicePlan(requested, torch_device, ort_providers, tf_device, choices)


def _check_choice(requested: str) -> None:
    if requested not in DEVICE_CHOICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, not {requested!r}")


def placement_problem(backend: str, description: Mapping[str, Any]) -> str | None:
    """Why a backend did not run on the GPU, from its ``describe()`` after its first call (None:
    it did). torch: the device of its parameters (``device``); onnxruntime: the providers the
    session registered (``providers_used``, CUDA first); TensorFlow and any other backend: the
    device of its outputs (``device_used``)."""
    if "providers_used" in description:
        used = list(description["providers_used"])
        if used[:1] != [CUDA_EP]:
            return f"{backend} session runs on {', '.join(used) or 'no provider'}, not {CUDA_EP}"
        return None
    if backend == "torch" and "device" in description:
        device = str(description["device"])
        return None if device.startswith("cuda") else f"torch module is on {device}, not a CUDA device"
    device_used = description.get("device_used")
    if device_used is None:
        return f"{backend} recorded no device after its first call"
    if ":GPU:" not in str(device_used).upper():
        return f"{backend} ran on {device_used}, not a GPU"
    return None


def verify_placement(backends: Sequence[Any]) -> None:
    """With ``--device cuda``: raise one line naming every backend (anything with ``name`` and
    ``describe()``, checked after its first call) that runs on the CPU. onnxruntime falls back
    to the CPU with a log line only, and TensorFlow places an op without a GPU kernel on the
    CPU silently: the device plan alone does not prove where the run happened."""
    problems = [p for b in backends if (p := placement_problem(b.name, b.describe())) is not None]
    if problems:
        raise PipelineError("--device cuda: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------
# Probing: each function asks the real library.


def probe_backends() -> dict[str, GpuProbe]:
    """Ask torch, onnxruntime and TensorFlow, in that order, whether each has a usable GPU."""
    return {"torch": probe_torch(), "onnxruntime": probe_onnxruntime(), "tensorflow": probe_tensorflow()}


def probe_torch() -> GpuProbe:
    """``torch.cuda.is_available()`` and one small operation on the device."""
    import torch

    if torch.cuda.is_available():
        name = f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
        try:
            (torch.ones(4, device="cuda:0") * 2).sum().item()
        except RuntimeError as exc:  # e.g. no kernel image for this GPU's architecture
            return GpuProbe(False, f"torch cannot compute on {name}: {_shorten(str(exc))}")
        return GpuProbe(True, name)
    if torch.version.cuda is None:
        return GpuProbe(False, f"torch has no CUDA device (CPU build {torch.__version__})")
    return GpuProbe(False, f"torch has no CUDA device (build {torch.__version__}; {_driver_note()})")


def probe_onnxruntime() -> GpuProbe:
    """Create and run a one-node session on the CUDA provider, and check that it was really used."""
    import numpy as np
    import onnxruntime as ort

    name = f"onnxruntime {ort.__version__}"
    if CUDA_EP not in ort.get_available_providers():
        return GpuProbe(False, f"{name} is the CPU build (install the 'gpu' extra)")
    # Loads the CUDA and cuDNN libraries of the nvidia-* wheels: the CUDA provider has no
    # search path of its own (onnxruntime-gpu >= 1.21).
    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    options = ort.SessionOptions()
    options.log_severity_level = 2  # warnings and errors: the failure we want to quote
    log: list[str] = []
    try:
        with _captured_stderr(log):
            # enable_fallback=0: a provider that fails raises instead of printing and retrying on CPU.
            session = ort.InferenceSession(
                tiny_onnx_model(), options, providers=[CUDA_EP, CPU_EP], enable_fallback=0
            )
    except (RuntimeError, ValueError) as exc:
        return GpuProbe(False, f"{name} could not create a CUDA session ({_ort_failure(str(exc))})")
    if CUDA_EP not in session.get_providers():
        why = _ort_failure("".join(log)) or _driver_note()
        return GpuProbe(False, f"{name} could not create a CUDA session ({why})")
    try:
        session.run(None, {"x": np.ones((1, 4), np.float32)})
    except Exception as exc:  # noqa: BLE001  onnxruntime's own exception classes derive from Exception only
        return GpuProbe(False, f"{name} could not run on CUDA ({_ort_failure(str(exc)) or _shorten(str(exc))})")
    return GpuProbe(True, f"CUDAExecutionProvider (onnxruntime-gpu {ort.__version__})")


def probe_tensorflow() -> GpuProbe:
    """``tf.config.list_physical_devices('GPU')`` and one small operation on the first GPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = f"{details.get('device_name', gpus[0].name)} (TensorFlow {tf.__version__})"
        try:
            with tf.device("/GPU:0"):
                tf.reduce_sum(tf.ones([4]) * 2).numpy()
        except (tf.errors.OpError, RuntimeError) as exc:  # e.g. PTX the driver cannot compile
            return GpuProbe(False, f"TensorFlow cannot compute on {name}: {_shorten(str(exc))}")
        return GpuProbe(True, name)
    info = tf.sysconfig.get_build_info()
    if not info.get("is_cuda_build"):
        return GpuProbe(False, f"TensorFlow sees no GPU (CPU-only build {tf.__version__})")
    cuda_major = str(info.get("cuda_version", "12")).split(".")[0]
    cudnn_wheel = f"nvidia-cudnn-cu{cuda_major}"
    if not _installed(cudnn_wheel):
        return GpuProbe(False, f"TensorFlow sees no GPU (no {cudnn_wheel}: install the 'gpu' extra)")
    return GpuProbe(False, f"TensorFlow sees no GPU ({_driver_note()})")


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _driver_note() -> str:
    """Why a CUDA build sees no GPU, as far as the driver library tells."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no NVIDIA driver: libcuda.so.1 not found"
    return "NVIDIA driver present but no usable device"


def tiny_onnx_model() -> bytes:
    """A one-node model (y = x + x) at an opset every supported onnxruntime reads."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    return model.SerializeToString()


@contextmanager
def _captured_stderr(sink: list[str]) -> Iterator[None]:
    """Append what is written to file descriptor 2 (onnxruntime's C++ logger) to ``sink``."""
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            sink.append(capture.read().decode("utf-8", "replace"))


_ORT_FAILURES = (
    re.compile(r"CUDA failure \d+: [^;\n]+"),  # e.g. no CUDA-capable device is detected
    re.compile(r"(?<=with error: )[^\n]+"),  # e.g. libcublasLt.so.12: cannot open shared object file
)


def _ort_failure(text: str) -> str:
    """The gist of an onnxruntime error message or log."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    for pattern in _ORT_FAILURES:
        match = pattern.search(text)
        if match:
            return _shorten(match.group(0))
    errors = [line for line in text.splitlines() if "[E:" in line or "[W:" in line]
    return _shorten(re.sub(r"^.*?\] ", "", errors[0])) if errors else ""


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
