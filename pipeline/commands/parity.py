"""``python -m pipeline parity``: compare an ONNX model and its SavedModel (and the PyTorch
AutoVC they came from, when it can be rebuilt) and write the report.

PyTorch joins the comparison when ``--checkpoint`` is given, or when the ONNX metadata says the
model was exported from seeded random weights (the same seed rebuilds the same module). Any other
ONNX model is compared two ways, onnxruntime against TensorFlow.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx

from pipeline.models import DEFAULT_MODEL, MODELS, model_spec
from pipeline.models.autovc.inputs import build_inputs, load_npy
from pipeline.models.autovc.spec import INPUT_NAMES as AUTOVC_INPUTS
from pipeline.parity.cases import InputCase, metadata_sweep_cases
from pipeline.parity.chunks import DEFAULT_CHUNK_FRAMES
from pipeline.parity.metrics import DEFAULT_TOLERANCE, Tolerance
from pipeline.parity.report import write_report
from pipeline.parity.run import run_sweep
from pipeline.parity.terminal import summary_table
from pipeline.runtime.artifacts import AtomicOutputDir
from pipeline.runtime.errors import UsageError
from pipeline.runtime.progress import Progress
from pipeline.runtime.provenance import build_input_files
from pipeline.stages.onnx_io import load_onnx, real_inputs

GENERIC_DYNAMIC_DIM = 4


@dataclass
class ParityOptions:
    onnx: Path
    saved_model: Path
    report: Path
    checkpoint: Path | None = None
    freq: int = 32
    device: str = "auto"
    sweep: Path | None = None
    named_inputs: dict[str, Path] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)  # keyword arguments of build_inputs
    atol: float = DEFAULT_TOLERANCE.atol
    rtol: float = DEFAULT_TOLERANCE.rtol
    per_output: dict[str, Tolerance] = field(default_factory=dict)
    per_layer: bool = True
    chunk_frames: int = DEFAULT_CHUNK_FRAMES
    force: bool = False  # replace a --report folder this tool did not write
    tflite: Path | None = None  # a .tflite of the same graph: adds the LiteRT backend


def run_parity_command(options: ParityOptions) -> int:
    from pipeline.runtime.devices import resolve_devices

    progress = Progress()
    reads = [options.onnx, options.saved_model, *(path for _, path in _input_files(options))]
    AtomicOutputDir(options.report, force=options.force, reads=reads).check()  # before minutes of work
    plan = resolve_devices(options.device)
    progress.info(plan.describe())
    model = load_onnx(options.onnx)
    torch_module, weights = _torch_module(model, options)
    if torch_module is not None:
        torch_module.to(plan.torch_device)
    cases = _cases(model, options, torch_module)
    result = run_sweep(
        options.onnx, options.saved_model, cases,
        torch_module=torch_module, ort_providers=plan.ort_providers, tf_device=plan.tf_device,
        default_tolerance=Tolerance(options.atol, options.rtol), tolerances=options.per_output,
        per_layer=options.per_layer, weights_origin=weights, devices=plan.to_json(), progress=progress,
        chunk_frames=options.chunk_frames, input_files=_input_files(options),
        extra_backends=_litert(options.tflite),
    )
    write_report(result, options.report, force=options.force)
    progress.info(summary_table(result))
    progress.info(f"report: {options.report / 'report.html'}")
    print(result.summary_line(), file=sys.stderr)
    return 0 if result.passed else 1


def _litert(path: Path | None) -> list:
    """The LiteRT backend for ``--tflite``, after checking the file is there."""
    if path is None:
        return []
    if not Path(path).is_file():
        raise UsageError(f"--tflite {path}: no such file")
    from pipeline.parity.backends import LITERT, BackendSpec, LitertBackend

    return [BackendSpec(LITERT, lambda output_names: LitertBackend(path, output_names), Path(path))]


def _input_files(options: ParityOptions) -> list[tuple[str, Path | None]]:
    """Every file the inputs and the PyTorch weights were read from (the ONNX model and the
    SavedModel are added by the run)."""
    if options.named_inputs:
        files: list[tuple[str, Path | None]] = [(f"input {n}", p) for n, p in options.named_inputs.items()]
    elif options.sweep is not None:
        files = [("sweep", p) for p in _sweep_files(Path(options.sweep))]
    else:
        files = build_input_files(**options.inputs)
    return [("checkpoint", options.checkpoint), *files]


def _sweep_files(path: Path) -> list[Path]:
    """The files :func:`_sweep_cases` reads."""
    if path.is_file():
        return [path]
    found = [path / "metadata.npz"] if (path / "metadata.npz").is_file() else []
    return found + sorted(path.glob("*.wav")) + sorted(path.glob("*.npy"))


def _torch_module(model: onnx.ModelProto, options: ParityOptions) -> tuple[Any, str]:
    """The PyTorch module the ONNX came from, when known, and a label of its weights: the model
    its metadata names (written by ``export``; AutoVC when there is none), from ``--checkpoint``
    or rebuilt from the recorded seed."""
    props = {p.key: p.value for p in model.metadata_props}
    spec = model_spec(next((name for name in MODELS if f"{name}.weights_origin" in props), DEFAULT_MODEL))
    if options.checkpoint is not None:
        loaded = spec.load(SimpleNamespace(checkpoint=options.checkpoint, seed=0, freq=options.freq))
        return loaded.module, loaded.info["label"]
    try:
        origin = json.loads(props[f"{spec.name}.weights_origin"])
        hyperparameters = json.loads(props[f"{spec.name}.hyperparameters"])
    except (KeyError, ValueError):
        return None, props.get(f"{spec.name}.weights_label",
                               "unknown (no PyTorch module: onnxruntime vs TensorFlow only)")
    if origin.get("kind") != "random":
        return None, f"{props.get(f'{spec.name}.weights_label', 'checkpoint')} (pass --checkpoint to include PyTorch)"
    loaded = spec.random(origin["seed"], hyperparameters)
    return loaded.module, loaded.info["label"]


def _cases(model: onnx.ModelProto, options: ParityOptions, torch_module: Any) -> list[InputCase]:
    names = _input_names(model)
    if options.named_inputs:
        arrays = {name: _read_named(name, path, names) for name, path in options.named_inputs.items()}
        missing = sorted(set(names) - set(arrays))
        if missing:
            raise UsageError(f"--input is missing for model input(s): {', '.join(missing)}")
        return [InputCase("input", arrays, {"source": {k: str(v) for k, v in options.named_inputs.items()}})]
    if tuple(names) != AUTOVC_INPUTS:  # any other model: seeded random inputs
        return [_random_case(model)]
    dim_emb = _static_dim(model, "emb_src", 1)
    if options.sweep is not None:
        return _sweep_cases(options.sweep, dim_emb)
    batch = build_inputs(dim_emb=dim_emb, **options.inputs)
    return [InputCase("input", batch.arrays, batch.describe())]


def _sweep_cases(path: Path, dim_emb: int) -> list[InputCase]:
    """A metadata.npz (every mel with every speaker pair), or a folder: its metadata.npz plus one
    case per wav or mel .npy file in it."""
    path = Path(path)
    if path.is_file():
        return metadata_sweep_cases(path)
    if not path.is_dir():
        raise UsageError(f"--sweep {path}: no such file or folder")
    cases = metadata_sweep_cases(path / "metadata.npz") if (path / "metadata.npz").is_file() else []
    for file in sorted(path.glob("*.wav")) + sorted(path.glob("*.npy")):
        kind = "wav_files" if file.suffix == ".wav" else "mel_files"
        batch = build_inputs(dim_emb=dim_emb, **{kind: [file]})
        cases.append(InputCase(file.name, batch.arrays, batch.describe()))
    if not cases:
        raise UsageError(f"--sweep {path}: found no metadata.npz, .wav or .npy inputs")
    return cases


def _input_names(model: onnx.ModelProto) -> list[str]:
    return [value.name for value in real_inputs(model.graph)]


def _static_dim(model: onnx.ModelProto, name: str, axis: int) -> int:
    value = next(i for i in model.graph.input if i.name == name)
    return value.type.tensor_type.shape.dim[axis].dim_value


def _read_named(name: str, path: Path, names: list[str]) -> np.ndarray:
    if name not in names:
        raise UsageError(f"--input {name}: the model has no input of that name (inputs: {', '.join(names)})")
    return load_npy(path, f"input {name}")


def _random_case(model: onnx.ModelProto) -> InputCase:
    """Seeded normal inputs for a model that is not AutoVC; unknown dims get a fixed size."""
    rng = np.random.default_rng(0)
    arrays = {}
    for value in real_inputs(model.graph):
        tensor_type = value.type.tensor_type
        shape = [d.dim_value if d.dim_value > 0 else GENERIC_DYNAMIC_DIM for d in tensor_type.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        arrays[value.name] = rng.standard_normal(shape).astype(dtype)
    description = {"source": f"seeded random normal (seed 0), unknown dims = {GENERIC_DYNAMIC_DIM}"}
    return InputCase("random", arrays, description)
