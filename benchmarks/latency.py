"""Inference latency of the whole AutoVC model: torch eager, onnxruntime, the TF SavedModel's
two signatures (``serving_default``, graph mode; ``serving_xla``, XLA-compiled) and, when the
artefact has a ``model.tflite`` (``export --tflite``), LiteRT, interleaved in one process; and
:func:`mixed_lengths`, one pass over utterances of distinct lengths, compiles included.

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

from pipeline.models.autovc.spec import INPUT_NAMES, OUTPUT_NAMES
from pipeline.runtime.devices import CPU_EP
from pipeline.stages.signatures import SIGNATURE_KEY, XLA_SIGNATURE_KEY

from .common import Stats, interleaved, load_average, ort_session_options, paired_ratio

TORCH, ORT, TF, TF_XLA, LITERT = "torch", "onnxruntime", "tf_savedmodel", "tf_xla", "litert"
BACKEND_LABELS = {
    TORCH: "torch eager", ORT: "onnxruntime", TF: "TF serving_default", TF_XLA: "TF serving_xla", LITERT: "LiteRT",
}
TF_SIGNATURES = {TF: SIGNATURE_KEY, TF_XLA: XLA_SIGNATURE_KEY}


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

    from pipeline.models.autovc import AutoVC, load_generator, random_generator

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
        str(artifact / "model.onnx"), ort_session_options(threads), providers=[CPU_EP]
    )

    def bind(inputs: dict[str, np.ndarray]) -> Callable[[], dict[str, np.ndarray]]:
        return lambda: dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), inputs)))

    return bind


def tf_backends(artifact: Path) -> tuple[dict[str, Backend], Any]:
    """A backend per signature of :data:`TF_SIGNATURES` that the SavedModel has, and the loaded
    object, which must outlive its signatures."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(artifact / "saved_model"))

    def backend(signature: Any) -> Backend:
        def bind(inputs: dict[str, np.ndarray]) -> Callable[[], dict[str, np.ndarray]]:
            feeds = {name: tf.constant(value) for name, value in inputs.items()}
            return lambda: {name: value.numpy() for name, value in signature(**feeds).items()}

        return bind

    found = {name: backend(loaded.signatures[key]) for name, key in TF_SIGNATURES.items() if key in loaded.signatures}
    return found, loaded


def all_backends(artifact: Path, threads: int) -> tuple[dict[str, Backend], Any]:
    """torch, onnxruntime, the SavedModel's signatures and LiteRT (when the artefact has a
    ``model.tflite``), in table order; and the loaded SavedModel (keep it alive while its
    signatures run)."""
    tf_calls, loaded = tf_backends(artifact)
    backends = {TORCH: torch_backend(artifact), ORT: ort_backend(artifact, threads), **tf_calls}
    if (artifact / "model.tflite").is_file():
        backends[LITERT] = litert_backend(artifact / "model.tflite", threads)
    return backends, loaded


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
    mel, emb_src, emb_trg = INPUT_NAMES
    return {
        mel: rng.uniform(0.0, 1.0, (batch, frames, 80)).astype(np.float32),
        emb_src: rng.normal(0.0, 0.05, (batch, dim_emb)).astype(np.float32),
        emb_trg: rng.normal(0.0, 0.05, (batch, dim_emb)).astype(np.float32),
    }


def run(artifact: Path, shapes: Sequence[Shape], threads: int) -> dict[str, Any]:
    """Time every backend on every shape; each backend's first call on a shape (TF: graph
    optimisation; serving_xla: XLA compilation) is timed apart and not part of the statistics."""
    backends, _loaded = all_backends(artifact, threads)  # _loaded: alive while its signatures run
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
            "ratio_over_ort": {name: paired_ratio(times[name], times[ORT]) for name in times if name != ORT},
            "ratio_over_torch": {name: paired_ratio(times[name], times[TORCH]) for name in times if name != TORCH},
            "max_abs_vs_torch": {
                name: max(float(np.max(np.abs(out[k] - reference[k]))) for k in OUTPUT_NAMES)
                for name, out in outputs.items()
                if name != TORCH
            },
        }
        results.append(row)
        medians = ", ".join(f"{n} {row['stats_ms'][n]['median']:.0f} ms" for n in times)
        ratios = ", ".join(f"{n}/ORT {r:.2f}" for n, r in row["ratio_over_ort"].items())
        print(f"[latency] B={shape.batch} T={shape.frames}: {medians}; {ratios}", file=sys.stderr, flush=True)
    model_bytes = {TF: sum(f.stat().st_size for f in (artifact / "saved_model").rglob("*") if f.is_file()),
                   ORT: (artifact / "model.onnx").stat().st_size}
    if (artifact / "model.tflite").is_file():
        model_bytes[LITERT] = (artifact / "model.tflite").stat().st_size
    return {"artifact": str(artifact), "backends": list(backends), "model_bytes": model_bytes, "shapes": results}


MIXED_UTTERANCES, MIXED_FRAMES = 32, (40, 600)


def mixed_lengths(
    artifact: Path, threads: int, count: int = MIXED_UTTERANCES, frames: tuple[int, int] = MIXED_FRAMES, seed: int = 0
) -> dict[str, Any]:
    """``count`` utterances (B=1) of distinct lengths drawn from ``frames`` (inclusive), run once
    each by every backend in a fresh process: the total wall time a user waits, first calls
    (TF graph optimisation, XLA compilation per length bucket) included, then a second, warm
    pass. Backends run one after another (not interleaved: the cold pass is the point)."""
    rng = np.random.default_rng(seed)
    lengths = [int(n) for n in rng.choice(np.arange(frames[0], frames[1] + 1), count, replace=False)]
    freq = json.loads((artifact / "manifest.json").read_text())["hyperparameters"]["freq"]
    backends, _loaded = all_backends(artifact, threads)
    inputs = [model_inputs(1, n) for n in lengths]
    passes: dict[str, dict[str, float]] = {}
    for name, bind in backends.items():
        calls = [bind(x) for x in inputs]
        walls = []
        for _ in range(2):
            start = time.perf_counter()
            for call in calls:
                call()
            walls.append(round(time.perf_counter() - start, 3))
        passes[name] = {"cold_s": walls[0], "warm_s": walls[1]}
        print(f"[mixed] {name}: cold {walls[0]:.1f} s, warm {walls[1]:.1f} s", file=sys.stderr, flush=True)
    return {
        "lengths": lengths,
        "frames_of_audio": int(sum(lengths)),
        "length_buckets": len({-(-n // freq) for n in lengths}),
        "bucket_frames": freq,
        "load_average": load_average(),
        "passes": passes,
    }
