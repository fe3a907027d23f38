"""Where the time goes: one call of the whole model, TF SavedModel against onnxruntime, per op type.

TF: ``tf.profiler`` traces one call after a warm-up call; kernel times come from the trace's
compute lines, grouped by op type and by where the op runs (inside which ``while`` loop: the
recurrences of the LSTM handler, or outside). What the trace does not attribute to a kernel
(executor scheduling, loop control, ops too cheap to be traced) is the remainder of the call's
wall time (negative when kernels ran in parallel on several threads). onnxruntime: its own
profiler, per node, grouped by op type.

``serving_xla`` runs as one XLA executable: the trace has an event per executed HLO instruction
(``dot.21``, ``fusion.3``, ``while.11``, ...), grouped here by instruction kind (the number
dropped). A ``while`` event holds its body's events, so while loops are summed apart (as the
time inside loops) and not as a kind.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.runtime.devices import CPU_EP
from pipeline.stages.signatures import SIGNATURE_KEY

from .common import ort_session_options
from .latency import OUTPUT_NAMES, model_inputs

_LOOP = re.compile(r"/(while(?:_\d+)?)/body/")
_HLO = re.compile(r"^(?P<kind>[A-Za-z][\w-]*?)(?:_\d+)?(?:\.\d+)?$")
"""An HLO instruction's event name (``dot.21``, ``MatMul_4.2``) -> its kind (``dot``, ``MatMul``)."""


def run(artifact: Path, batch: int, frames: int, threads: int) -> dict[str, Any]:
    inputs = model_inputs(batch, frames)
    tf_result = _profile_tf(artifact, inputs)
    xla_result = _profile_xla(artifact, inputs)
    ort_result = _profile_ort(artifact, inputs, threads)
    print(
        f"[profile] B={batch} T={frames}: TF {tf_result['wall_ms']:.0f} ms, serving_xla "
        f"{xla_result['wall_ms']:.0f} ms, onnxruntime {ort_result['wall_ms']:.0f} ms",
        file=sys.stderr,
        flush=True,
    )
    return {"batch": batch, "frames": frames, "tf": tf_result, "tf_xla": xla_result, "onnxruntime": ort_result}


def _trace(signature: Any, inputs: dict) -> tuple[float, Any]:
    """One call of ``signature`` after a warm-up call (graph optimisation, XLA compilation),
    under ``tf.profiler``: its wall seconds and the trace (an XSpace)."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    feeds = {name: tf.constant(value) for name, value in inputs.items()}
    signature(**feeds)
    with tempfile.TemporaryDirectory(prefix="autovc-tfprof-") as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        {name: value.numpy() for name, value in signature(**feeds).items()}
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    return wall, space


def _profile_xla(artifact: Path, inputs: dict) -> dict[str, Any]:
    """``serving_xla``: time per HLO instruction kind, and inside the while loops."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(artifact / "saved_model"))
    wall, space = _trace(loaded.signatures["serving_xla"], inputs)
    by_op: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    loops = 0.0
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith(("tf_Compute", "tf_numa")):
                continue
            for event in line.events:
                match = _HLO.match(names.get(event.metadata_id, ""))
                if match is None:
                    continue
                ms = event.duration_ps / 1e9
                if match["kind"] == "while":
                    loops += ms
                    continue
                by_op[match["kind"]] += ms
                calls[match["kind"]] += 1
    return {**_summary(wall, by_op, calls), "inside_while_loops_ms": round(loops, 2)}


def _profile_tf(artifact: Path, inputs: dict) -> dict[str, Any]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(artifact / "saved_model"))
    wall, space = _trace(loaded.signatures[SIGNATURE_KEY], inputs)

    by_op: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    by_place: Counter[str] = Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" not in name or name.startswith("ExecutorState"):
                    continue
                node, _, op_type = name.rpartition(":")
                op_type = op_type.removeprefix("_Mkl").removeprefix("Native")
                loop = _LOOP.search(node)
                ms = event.duration_ps / 1e9
                by_op[op_type] += ms
                calls[op_type] += 1
                by_place["inside while loops" if loop else "outside loops"] += ms
    return {**_summary(wall, by_op, calls), "by_place_ms": {k: round(v, 2) for k, v in by_place.items()}}


def _profile_ort(artifact: Path, inputs: dict, threads: int) -> dict[str, Any]:
    import onnxruntime as ort

    options = ort_session_options(threads)
    with tempfile.TemporaryDirectory(prefix="autovc-ortprof-") as folder:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "ort")
        session = ort.InferenceSession(str(artifact / "model.onnx"), options, providers=[CPU_EP])
        session.run(list(OUTPUT_NAMES), inputs)
        start = time.perf_counter()
        session.run(list(OUTPUT_NAMES), inputs)
        wall = time.perf_counter() - start
        events = json.loads(Path(session.end_profiling()).read_text())
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    last_start = runs[-1]["ts"] if runs else 0
    by_op: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= last_start:
            op_type = event.get("args", {}).get("op_name", "?")
            by_op[op_type] += event["dur"] / 1e3
            calls[op_type] += 1
    return _summary(wall, by_op, calls)


def _summary(wall_s: float, by_op_ms: Counter[str], calls: Counter[str]) -> dict[str, Any]:
    """One backend's profile: the call's wall time, kernel time in all and per op type (most
    first), calls per op type, and what no kernel accounts for."""
    traced = sum(by_op_ms.values())
    return {
        "wall_ms": round(wall_s * 1e3, 2),
        "kernels_ms": round(traced, 2),
        "untraced_ms": round(wall_s * 1e3 - traced, 2),
        "by_op_ms": {k: round(v, 2) for k, v in by_op_ms.most_common()},
        "calls": dict(calls),
    }
