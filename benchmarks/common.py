"""What every benchmark shares: the machine description, one thread count for every backend,
interleaved timing checked against a reference, and order statistics."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, load average now, and the library versions measured."""
    cpu = platform.processor() or "unknown"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        cpuinfo = ""
    fields = dict(line.split(":", 1) for line in cpuinfo.split("\n\n")[0].splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    if "model name" in fields:
        # Vendors' names can be as short as "AMD EPYC": family and model tell the generation, and
        # the widest vector unit decides which kernels TensorFlow and onnxruntime pick.
        cpu = fields["model name"]
        flags = set(fields.get("flags", "").split())
        vector = next((name for name in ("avx512f", "avx2", "avx") if name in flags), "no AVX")
        cpu += f" (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}, {vector.upper()})"
    versions = {}
    for package in ("torch", "onnx", "onnxruntime", "tensorflow", "onnx-tf", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "versions": versions,
        "load_average": load_average(),
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (other processes compete for the same cores)."""
    return [round(x, 2) for x in os.getloadavg()]


def set_threads(threads: int) -> dict[str, int]:
    """One intra-op thread count for torch and TensorFlow (inter-op: TF as many as intra, since
    a bidirectional LSTM's two directions are independent ops; torch runs ops one by one).
    Must run before TensorFlow executes anything. onnxruntime sessions take theirs from
    :func:`ort_session_options`."""
    import tensorflow as tf
    import torch

    torch.set_num_threads(threads)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return {
        "torch_intra_op": torch.get_num_threads(),
        "onnxruntime_intra_op": threads,
        "onnxruntime_inter_op": 1,
        "tensorflow_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "tensorflow_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def ort_session_options(threads: int) -> Any:
    """Sequential execution with ``threads`` intra-op threads, all graph optimisations on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


@dataclass
class Stats:
    """Order statistics of repeated wall times, in milliseconds."""

    median: float
    p10: float
    p90: float
    minimum: float
    runs: int

    @classmethod
    def of(cls, seconds: list[float]) -> Stats:
        ms = np.asarray(seconds) * 1e3
        return cls(
            median=float(np.median(ms)),
            p10=float(np.percentile(ms, 10)),
            p90=float(np.percentile(ms, 90)),
            minimum=float(ms.min()),
            runs=len(ms),
        )

    def to_json(self) -> dict[str, float | int]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def interleaved(
    functions: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Wall seconds of ``repeats`` calls of each function, round-robin: in every round each
    function runs once, starting one later than in the round before, so a change in machine
    load hits every function alike. ``warmup`` untimed rounds come first."""
    names = list(functions)
    for _ in range(warmup):
        for name in names:
            functions[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of numerator / denominator: robust to load changing between rounds."""
    return float(np.median(np.asarray(numerator) / np.asarray(denominator)))


Call = Callable[[np.ndarray], Callable[[], np.ndarray]]
"""Given an input array, a call without arguments that runs one backend on it (the binding step
converts the input once, outside the timed call) and returns the output as a numpy array."""


def torch_call(module: Any, pick: Callable[[Any], Any] = lambda output: output) -> Call:
    """``module`` in inference mode; ``pick`` takes the tensor to return from its output."""
    import torch

    def bind(x: np.ndarray) -> Callable[[], np.ndarray]:
        x_torch = torch.from_numpy(x)

        def call() -> np.ndarray:
            with torch.inference_mode():
                return pick(module(x_torch)).numpy()

        return call

    return bind


def timed_and_checked(
    calls: Mapping[str, Call], x: np.ndarray, repeats: int, reference: str
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Every call bound to ``x``: its max abs difference from ``reference``'s output, then
    ``repeats`` interleaved timings (after one warm-up round)."""
    bound = {name: make(x) for name, make in calls.items()}
    expected = bound[reference]()
    errors = {name: float(np.max(np.abs(call() - expected))) for name, call in bound.items() if name != reference}
    return interleaved(bound, repeats, warmup=1), errors


def print_medians(section: str, case: str, stats_ms: Mapping[str, Mapping[str, float]]) -> None:
    """One progress line: ``[section] case: backend median ms, ...``."""
    medians = ", ".join(f"{name} {stats['median']:.1f} ms" for name, stats in stats_ms.items())
    print(f"[{section}] {case}: {medians}", file=sys.stderr, flush=True)
