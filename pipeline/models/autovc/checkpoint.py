"""Generator weights: from a checkpoint file (weights only, never arbitrary pickles) or the
embedded default (seeded random weights).

A checkpoint may be ``{'model': state_dict}`` (the authors' ``autovc.ckpt``), a bare state dict,
or either with ``module.``-prefixed keys (saved from ``nn.DataParallel``). ``dim_neck``,
``dim_emb``, ``dim_pre`` and the layer widths are read from tensor shapes; ``freq`` leaves no
trace in the weights and is an argument.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import nn

from pipeline.models.autovc.model import CONV_CHANNELS, DECODER_LSTM_SIZE, N_MELS, Generator
from pipeline.runtime.errors import UsageError

# The configuration of the authors' pre-trained model: Generator(32, 256, 512, 32).
DEFAULT_HYPERPARAMETERS = {
    "dim_neck": 32,
    "dim_emb": 256,
    "dim_pre": 512,
    "freq": 32,
    "conv_channels": CONV_CHANNELS,
    "decoder_lstm_size": DECODER_LSTM_SIZE,
}
DATA_PARALLEL_PREFIX = "module."
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"
_KEYS_SHOWN = 4


class ModelInfo(TypedDict):
    """Where a Generator's weights came from, for reports and ONNX metadata."""

    hyperparameters: dict[str, int]
    origin: dict[str, Any]  # {"kind": "checkpoint", "path", "sha256"} or {"kind": "random", "seed"}
    label: str


def load_generator(
    path: str | Path, freq: int = DEFAULT_HYPERPARAMETERS["freq"]
) -> tuple[Generator, ModelInfo]:
    """The Generator stored in ``path``, in eval mode, with its :class:`ModelInfo`."""
    _check_freq(freq)
    path = Path(path)
    state_dict, sha256 = read_state_dict(path, container_key="model")
    sizes = _infer_generator_sizes(state_dict, path)
    generator = Generator(**sizes, freq=freq)
    label = f"Generator({_format_sizes(sizes)})"
    load_matching(generator, state_dict, label, _suspect_hyperparameter, path)
    info = ModelInfo(
        hyperparameters=dict(generator.hyperparameters),
        origin={"kind": "checkpoint", "path": str(path), "sha256": sha256},
        label=f"checkpoint {path.name} (sha256 {sha256[:12]})",
    )
    return generator.eval(), info


def random_generator(
    seed: int = 0,
    dim_neck: int = DEFAULT_HYPERPARAMETERS["dim_neck"],
    dim_emb: int = DEFAULT_HYPERPARAMETERS["dim_emb"],
    dim_pre: int = DEFAULT_HYPERPARAMETERS["dim_pre"],
    freq: int = DEFAULT_HYPERPARAMETERS["freq"],
    *,
    conv_channels: int = CONV_CHANNELS,
    decoder_lstm_size: int = DECODER_LSTM_SIZE,
) -> tuple[Generator, ModelInfo]:
    """A Generator with seeded random weights, in eval mode; the same seed gives the same weights.

    BatchNorm running statistics and affine parameters are randomised too (mean ~ N(0, 0.1),
    var ~ U(0.5, 1.5), weight ~ U(0.5, 1.5), bias ~ N(0, 0.1)), so that inference through
    BatchNorm is not an identity and conversion errors in it show up. The global torch RNG is
    left untouched.
    """
    _check_freq(freq)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = Generator(
            dim_neck,
            dim_emb,
            dim_pre,
            freq,
            conv_channels=conv_channels,
            decoder_lstm_size=decoder_lstm_size,
        )
        with torch.no_grad():
            for module in generator.modules():
                if isinstance(module, nn.BatchNorm1d):
                    module.running_mean.normal_(0.0, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.normal_(0.0, 0.1)
    info = ModelInfo(
        hyperparameters=dict(generator.hyperparameters),
        origin={"kind": "random", "seed": seed},
        label=f"random weights, seed {seed}",
    )
    return generator.eval(), info


def read_state_dict(path: Path, container_key: str) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict in ``path`` (under ``container_key`` or bare, ``module.`` prefix removed)
    and the file's sha256. Loads with ``weights_only=True``: pickled code is refused."""
    if not path.exists():
        raise UsageError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise UsageError(f"checkpoint is not a file: {path}")
    if path.stat().st_size == 0:
        raise UsageError(f"checkpoint is empty (0 bytes): {path}")
    with path.open("rb") as f:
        head = f.read(len(_ZIP_MAGIC))
    if not head.startswith((_ZIP_MAGIC, _PICKLE_MAGIC)):
        raise UsageError(f"not a PyTorch checkpoint (neither a zip archive nor a pickle): {path}")
    if head.startswith(_ZIP_MAGIC) and not _is_torch_archive(path):
        raise UsageError(f"not a PyTorch checkpoint (a zip archive without data.pkl): {path}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any failure to parse the file is a problem with the file
        if "Weights only load failed" in str(error):
            refused_global = re.search(r"GLOBAL (\S+) was not an allowed global", str(error))
            what = f" ({refused_global.group(1)})" if refused_global else ""
            raise UsageError(
                f"checkpoint refused: it holds pickled Python objects{what}, not only weights, "
                f"and loading them could run code: {path}"
            ) from None
        raise UsageError(f"checkpoint is truncated or corrupt ({_reason(error)}): {path}") from None
    return _extract_state_dict(loaded, container_key, path), _sha256(path)


def load_matching(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    model_label: str,
    suspect: Callable[[str], str],
    path: Path,
) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` after checking keys, shapes and values,
    with one-line errors: ``suspect(key)`` names what probably differs for a shape mismatch."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_some(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_some(unexpected)})")
        raise UsageError(f"checkpoint does not match {model_label}: {'; '.join(parts)}: {path}")
    for key, tensor in state_dict.items():
        want = tuple(expected[key].shape)
        if tuple(tensor.shape) != want:
            raise UsageError(
                f"checkpoint tensor {key} has shape {tuple(tensor.shape)} but {model_label} "
                f"expects {want}; {suspect(key)} probably differs: {path}"
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise UsageError(f"checkpoint tensor {key} contains NaN or infinite values: {path}")
    model.load_state_dict(state_dict, strict=True)


def _extract_state_dict(loaded: object, container_key: str, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, Mapping) and container_key in loaded:
        loaded = loaded[container_key]
    if not isinstance(loaded, Mapping) or not loaded:
        raise UsageError(
            f"checkpoint holds no state dict (expected {{'{container_key}': state_dict}} "
            f"or a bare state dict, found {_describe(loaded)}): {path}"
        )
    not_tensors = [str(k) for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise UsageError(
            f"checkpoint holds no state dict (expected {{'{container_key}': state_dict}} or a bare "
            f"state dict; entries that are not tensors: {_some(not_tensors)}): {path}"
        )
    if all(str(k).startswith(DATA_PARALLEL_PREFIX) for k in loaded):
        return {str(k)[len(DATA_PARALLEL_PREFIX) :]: v for k, v in loaded.items()}
    return {str(k): v for k, v in loaded.items()}


# Tensors whose shapes give away each size: (key, axis, offset).
_SIZE_SOURCES = {
    "dim_neck": ("encoder.lstm.weight_hh_l0", 1, 0),
    "dim_emb": ("encoder.convolutions.0.0.conv.weight", 1, -N_MELS),
    "dim_pre": ("decoder.lstm1.weight_hh_l0", 1, 0),
    "conv_channels": ("encoder.convolutions.0.0.conv.weight", 0, 0),
    "decoder_lstm_size": ("decoder.lstm2.weight_hh_l0", 1, 0),
}


def _infer_generator_sizes(state_dict: Mapping[str, torch.Tensor], path: Path) -> dict[str, int]:
    missing = sorted({key for key, _, _ in _SIZE_SOURCES.values() if key not in state_dict})
    if missing:
        raise UsageError(
            f"checkpoint is not an AutoVC Generator: {len(missing)} missing keys "
            f"({_some(missing)}): {path}"
        )
    sizes = {}
    for name, (key, axis, offset) in _SIZE_SOURCES.items():
        shape = state_dict[key].shape
        value = shape[axis] + offset if len(shape) > axis else 0
        if value < 1:
            raise UsageError(f"cannot infer {name} from {key} of shape {tuple(shape)}: {path}")
        sizes[name] = value
    return sizes


def _suspect_hyperparameter(key: str) -> str:
    """The Generator size a tensor's shape depends on (the sizes are inferred from other
    tensors, so a mismatch means the checkpoint's layers disagree about it)."""
    if key.startswith("encoder.convolutions.0.0.conv.weight"):
        return "dim_emb or conv_channels"
    if key.startswith("encoder.lstm.weight_ih"):
        return "dim_neck or conv_channels"
    if key.startswith("encoder.lstm."):
        return "dim_neck"
    if key.startswith("decoder.lstm1.weight_ih"):
        return "dim_neck or dim_emb"
    if key.startswith(("decoder.lstm1.", "decoder.convolutions.", "decoder.lstm2.weight_ih_l0")):
        return "dim_pre"
    if key.startswith(("decoder.lstm2.", "decoder.linear_projection.")):
        return "decoder_lstm_size"
    return "conv_channels"


def _check_freq(freq: int) -> None:
    if isinstance(freq, bool) or not isinstance(freq, int) or freq < 1:
        raise UsageError(f"freq must be a positive integer, got {freq!r}")


def _is_torch_archive(path: Path) -> bool:
    """False for a readable zip archive that has no ``data.pkl`` (what ``torch.save`` writes);
    True otherwise, so that a damaged archive reaches ``torch.load`` and its own message."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return True
    return any(name == "data.pkl" or name.endswith("/data.pkl") for name in names)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _format_sizes(sizes: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items())


def _some(keys: list[str]) -> str:
    shown = ", ".join(keys[:_KEYS_SHOWN])
    return shown + (", ..." if len(keys) > _KEYS_SHOWN else "")


def _describe(value: object) -> str:
    if isinstance(value, Mapping):
        return f"a dict with keys {_some([str(k) for k in value])}" if value else "an empty dict"
    return f"a {type(value).__name__}"


def _reason(error: BaseException) -> str:
    """The first sentence of an error message, or the error's type when it has no message."""
    first_line = (str(error).strip().splitlines() or [""])[0]
    return first_line.split(". ")[0].rstrip(".") or type(error).__name__
