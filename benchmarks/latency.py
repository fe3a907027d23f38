"""Inference latency of the whole AutoVC model: torch eager, onnxruntime, the TF SavedModel and,
when the artefact has a ``model.tflite`` (``export --tflite``), LiteRT, interleaved in one process.

Every backend runs the export artefact's weights (``model.onnx`` and ``saved_model/`` of
``python -m pipeline export``; torch rebuilds the same Generator from the manifest). Outputs are
brought to numpy inside the timed call, so asynchronous execution cannot hide work.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.onnx_export import INPUT_NAMES, OUTPUT_NAMES

from .common import Stats, interleaved, load_average, ort_session_options, paired_ratio

TORCH, ORT, TF, LITERT = "torch", "onnxruntime", "tf_savedmodel", "litert"
BACKEND_LABELS = {TORCH: "torch eager", ORT: "onnxruntime", TF: "TF SavedModel", LITERT: "LiteRT"}


@dataclass(frozen=True)
class Shape:
    """One input size and how many interleaved rounds to time it."""

    batch: int
    frames: int
    repeats: int


Backend = Callable[[dict[str, np.ndarray]], Callable[[], dict[str, np.ndarray]]]
"""Given the inputs, a call that runs the model once on them and returns numpy outputs."""


def torch_backend(artifact: Path) -> Backend:
    """The artefact's Generator in PyTorch, rebuilt from its manifest (seeded or checkpoint)."""
    import torch

    from pipeline.autovc import AutoVC, load_generator, random_generator

    manifest = json.loads((artifact / "manifest.json").read_text())
    weights, sizes = manifest["weights"], manifest["hyperparameters"]
    if weights["kind"] == "random":
        generator, _ = random_generator(weights["seed"], **sizes)
    else:
        generator, _ = load_generator(Path(weights["path"]), freq=sizes["freq"])
    module = AutoVC(generator).eval()

    def bind(inputs: dict[str, np.ndarray]) -> Callable[[], dict[str, np.ndarray]]:
        args = [torch.from_numpy(inputs[name]) for name in INPUT_NAMES]

        def call() -> dict[str, np.ndarray]:
            with torch.inference_mode():
                outputs = module(*args)
            return {name: value.numpy() for name, value in zip(OUTPUT_NAMES, outputs)}

        return call

    return bind


def ort_backend(artifact: Path, threads: int) -> Backend:
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(artifact / "model.onnx"), ort_session_options(threads), providers=["CPUExecutionProvider"]
    )

    def bind(inputs: dict[str, np.ndarray]) -> Callable[[], dict[str, np.ndarray]]:
        return lambda: dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), inputs)))

    return bind


def tf_backend(artifact: Path) -> tuple[Backend, Any]:
    """The SavedModel's ``serving_default`` signature, and the loaded object, which must
    outlive its signature."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(artifact / "saved_model"))
    signature = loaded.signatures["serving_default"]

    def bind(inputs: dict[str, np.ndarray]) -> Callable[[], dict[str, np.ndarray]]:
        feeds = {name: tf.constant(value) for name, value in inputs.items()}
        return lambda: {name: value.numpy() for name, value in signature(**feeds).items()}

    return bind, loaded


def litert_backend(model: Path, threads: int) -> Backend:
    """The ``.tflite`` model's signature runner in the LiteRT interpreter (XNNPACK on, as users
    get it), with ``threads`` threads; each shape is resized to once, when it is bound."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(model), num_threads=threads).get_signature_runner()

    def bind(inputs: dict[str, np.ndarray]) -> Callable[[], dict[str, np.ndarray]]:
        return lambda: {name: np.array(value) for name, value in runner(**inputs).items()}

    return bind


def model_inputs(batch: int, frames: int, dim_emb: int = 256) -> dict[str, np.ndarray]:
    """A mel in [0, 1) like the AutoVC front-end's and small speaker embeddings, seeded by shape."""
    rng = np.random.default_rng(batch * 100_000 + frames)
    return {
        "mel": rng.uniform(0.0, 1.0, (batch, frames, 80)).astype(np.float32),
        "emb_src": rng.normal(0.0, 0.05, (batch, dim_emb)).astype(np.float32),
        "emb_trg": rng.normal(0.0, 0.05, (batch, dim_emb)).astype(np.float32),
    }


def run(artifact: Path, shapes: Sequence[Shape], threads: int) -> dict[str, Any]:
    """Time every backend on every shape; each backend's first call on a shape (TF: graph
    optimisation) is timed apart and not part of the statistics."""
    tf_call, _loaded = tf_backend(artifact)  # _loaded: alive while its signature runs
    backends = {TORCH: torch_backend(artifact), ORT: ort_backend(artifact, threads), TF: tf_call}
    tflite = artifact / "model.tflite"
    if tflite.is_file():
        backends[LITERT] = litert_backend(tflite, threads)
    results = []
    for shape in shapes:
        inputs = model_inputs(shape.batch, shape.frames)
        calls = {name: bind(inputs) for name, bind in backends.items()}
        first_call_s, outputs = {}, {}
        for name, call in calls.items():
            start = time.perf_counter()
            outputs[name] = call()
            first_call_s[name] = round(time.perf_counter() - start, 3)
        times = interleaved(calls, shape.repeats, warmup=0)  # the first calls above warmed up
        reference = outputs[TORCH]
        row = {
            "batch": shape.batch,
            "frames": shape.frames,
            "load_average": load_average(),
            "first_call_s": first_call_s,
            "stats_ms": {name: Stats.of(t).to_json() for name, t in times.items()},
            "times_s": {name: [round(x, 5) for x in t] for name, t in times.items()},
            "ratio_tf_over_ort": paired_ratio(times[TF], times[ORT]),
            "ratio_tf_over_torch": paired_ratio(times[TF], times[TORCH]),
            **({"ratio_litert_over_ort": paired_ratio(times[LITERT], times[ORT])} if LITERT in times else {}),
            "max_abs_vs_torch": {
                name: max(float(np.max(np.abs(out[k] - reference[k]))) for k in OUTPUT_NAMES)
                for name, out in outputs.items()
                if name != TORCH
            },
        }
        results.append(row)
        medians = ", ".join(f"{n} {row['stats_ms'][n]['median']:.0f} ms" for n in times)
        print(
            f"[latency] B={shape.batch} T={shape.frames}: {medians}; TF/ORT "
            f"{row['ratio_tf_over_ort']:.2f}, TF/torch {row['ratio_tf_over_torch']:.2f}",
            file=sys.stderr,
            flush=True,
        )
    model_bytes = {TF: sum(f.stat().st_size for f in (artifact / "saved_model").rglob("*") if f.is_file()),
                   ORT: (artifact / "model.onnx").stat().st_size}
    if tflite.is_file():
        model_bytes[LITERT] = tflite.stat().st_size
    return {"artifact": str(artifact), "backends": list(backends), "model_bytes": model_bytes, "shapes": results}
