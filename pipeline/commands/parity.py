"""``python -m pipeline parity``: compare an ONNX model and its SavedModel (and the PyTorch
AutoVC they came from, when it can be rebuilt) and write the report.

PyTorch joins the comparison when ``--checkpoint`` is given, or when the ONNX metadata says the
model was exported from seeded random weights (the same seed rebuilds the same module). Any other
ONNX model is compared two ways, onnxruntime against TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx

from pipeline.commands.flags import common, device, key_value, parity_chunks
from pipeline.models import DEFAULT_MODEL, MODELS, model_spec
from pipeline.models.autovc.flags import DEFAULT_FREQ, FREQ, INPUT_FLAGS
from pipeline.models.autovc.inputs import build_inputs, load_npy
from pipeline.models.autovc.spec import INPUT_NAMES as AUTOVC_INPUTS
from pipeline.models.flags import values
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
    freq: int = DEFAULT_FREQ
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
        flags = values(spec.flags, {FREQ.key: options.freq})
        loaded = spec.load(SimpleNamespace(checkpoint=options.checkpoint, seed=0, model_flags=flags))
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
    dim_emb = _static_dim(model, AUTOVC_INPUTS[1], 1)
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


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "parity",
        help="compare PyTorch, onnxruntime and TensorFlow on the same inputs; write report.json/html",
        description=(
            "Run the same inputs through onnxruntime (--onnx), the TF SavedModel (--saved-model) and, "
            "when the PyTorch AutoVC is known (--checkpoint, or random weights recorded in the ONNX "
            "metadata), PyTorch; compare every pair per output and per ONNX node. Exit 1 when a pair "
            "breaks the tolerance: |candidate - reference| <= atol + rtol * |reference| per element."
        ),
    )
    p.add_argument("--onnx", type=Path, required=True, help="the ONNX model")
    p.add_argument("--saved-model", type=Path, required=True, help="the TF SavedModel folder")
    p.add_argument("--report", type=Path, required=True,
                   help="folder for report.json, report.html, summary.txt (and manifest.json)")
    p.add_argument("--tflite", type=Path, metavar="FILE",
                   help="a LiteRT model of the same graph (e.g. export's model.tflite): adds the LiteRT backend")
    p.add_argument("--checkpoint", type=Path,
                   help="checkpoint the ONNX was exported from, of the model its metadata names (AutoVC when none; adds PyTorch)")
    FREQ.add_to(p)
    p.add_argument("--sweep", type=Path, metavar="PATH",
                   help="many inputs: a metadata.npz, or a folder with metadata.npz, .wav and mel .npy files")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                   help="an input by ONNX name, for models that are not AutoVC (default: seeded random)")
    p.add_argument("--atol", type=float, default=DEFAULT_TOLERANCE.atol, help=f"default {DEFAULT_TOLERANCE.atol:g}")
    p.add_argument("--rtol", type=float, default=DEFAULT_TOLERANCE.rtol, help=f"default {DEFAULT_TOLERANCE.rtol:g}")
    p.add_argument("--tolerance", action="append", default=[], metavar="OUTPUT=ATOL,RTOL",
                   help="tolerance for one output, e.g. codes=1e-6,0")
    p.add_argument("--no-per-layer", action="store_true", help="skip the per-node comparison")
    device(p)
    inputs = p.add_argument_group("inputs (default: the embedded synthetic utterance)")
    for flag in INPUT_FLAGS:
        flag.add_to(inputs)
    parity_chunks(p)
    common(p)
    p.set_defaults(command=run_args)


def run_args(args: argparse.Namespace) -> int:
    options = ParityOptions(
        onnx=args.onnx, saved_model=args.saved_model, report=args.report, checkpoint=args.checkpoint,
        freq=args.freq, device=args.device, sweep=args.sweep,
        named_inputs=dict(key_value(item, "--input", Path) for item in args.input),
        inputs=values(INPUT_FLAGS, vars(args)), atol=args.atol, rtol=args.rtol,
        per_output={name: Tolerance(*value) for name, value in
                    (key_value(item, "--tolerance", _atol_rtol) for item in args.tolerance)},
        per_layer=not args.no_per_layer, chunk_frames=args.parity_chunk_frames, force=args.force,
        tflite=args.tflite,
    )
    return run_parity_command(options)


def _atol_rtol(text: str) -> tuple[float, float]:
    atol, sep, rtol = text.partition(",")
    if not sep:
        raise ValueError("expected ATOL,RTOL")
    return float(atol), float(rtol)
