"""Coverage of ONNX's official node-test suite: ``python -m benchmarks.node_suite``.

Every ``onnx/backend/test/data/node/test_*`` folder of the installed onnx (1,450 in onnx 1.18) is
run two ways, each in its own worker process (the two run side by side):

- **ours**: the path ``convert`` takes: :class:`pipeline.stages.tf_convert.OnnxGraphModule` (its
  up-front op check, then the traced serving function) with our handlers registered;
- **stock**: onnx-tf 1.10's own ``prepare(model).run(inputs)`` without our handlers (only the
  import shims of :mod:`custom_ops.compat`).

Each test's outputs are compared with its ``test_data_set_*`` outputs as onnx's backend runner
does: same shape and dtype, floats within ``rtol=1e-3, atol=1e-7`` (NaN equal to NaN), other
types exactly. Every test gets one status: ``pass``, ``wrong`` (it ran, outputs differ),
``unsupported`` (the up-front check or onnx-tf found no handler for an op version, or a graph
input or output has a type TensorFlow lacks: float8, float4, int4) or ``error``
(anything else: an exception while translating or running, a test whose data cannot be loaded,
a timeout). The onnx package's own ``onnx.backend.test`` runner is not used: it counts "not
implemented" as passed.

Writes ``benchmarks/results/node_suite.json`` (totals, per-op counts, every test's status and
first error line, the tests stock onnx-tf passes and ours does not) and ``node_suite.md`` (the
summary tables). Options: ``--only PREFIX`` (tests whose name starts with it, repeatable),
``--timeout`` (seconds per test), ``--out`` (results folder). A full run takes about 20 minutes
on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import queue
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from pipeline.stages.onnx_io import real_inputs

from .common import machine

HERE = Path(__file__).resolve().parent
NODE_TEST_ROOT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"
STATUSES = ("pass", "wrong", "unsupported", "error")
RTOL, ATOL = 1e-3, 1e-7
RESULT_PREFIX = "@@node-suite "
# element types TensorFlow has no dtype for: a graph input or output of one cannot be served
NO_TF_TYPE = {
    onnx.TensorProto.FLOAT8E4M3FN, onnx.TensorProto.FLOAT8E4M3FNUZ, onnx.TensorProto.FLOAT8E5M2,
    onnx.TensorProto.FLOAT8E5M2FNUZ, onnx.TensorProto.UINT4, onnx.TensorProto.INT4,
    onnx.TensorProto.FLOAT4E2M1,
}  # fmt: skip
RESTART_EVERY = 250  # tests per worker process (bounds the memory TF's caches grow to)


def run_graph_module(model: onnx.ModelProto, inputs: dict[str, Any]) -> dict[str, Any]:
    """``model`` run once the way `convert` builds it: :class:`OnnxGraphModule`'s serving
    function, its outputs keyed by ONNX name as onnxruntime gives them (see
    :func:`pipeline.stages.signature_values.decode_outputs`)."""
    from pipeline.stages.signature_values import decode_outputs, signature_feeds
    from pipeline.stages.tf_convert import OnnxGraphModule, tf_name

    module = OnnxGraphModule(model)
    serving = module.serving_function()
    outputs = decode_outputs(serving(**signature_feeds(inputs, module.input_signature())))
    return {name: outputs[tf_name(name)] for name in module.output_names}


def load_test(folder: Path) -> tuple[onnx.ModelProto, list[tuple[dict, dict]]]:
    """The model and its ``(inputs, expected outputs)`` data sets, keyed by graph value names;
    sequences load as lists and optionals as their value or None."""
    model = onnx.load(folder / "model.onnx")
    inputs = real_inputs(model.graph)
    cases = []
    for data_set in sorted(folder.glob("test_data_set_*")):
        feeds = {v.name: _read(data_set / f"input_{i}.pb", v.type) for i, v in enumerate(inputs)}
        expected = {
            v.name: _read(data_set / f"output_{i}.pb", v.type)
            for i, v in enumerate(model.graph.output)
        }
        cases.append((feeds, expected))
    return model, cases


def _read(path: Path, value_type: onnx.TypeProto) -> Any:
    data = path.read_bytes()
    kind = value_type.WhichOneof("value")
    if kind == "sequence_type":
        proto = onnx.SequenceProto()
        proto.ParseFromString(data)
        return numpy_helper.to_list(proto)
    if kind == "optional_type":
        proto = onnx.OptionalProto()
        proto.ParseFromString(data)
        return numpy_helper.to_optional(proto)
    proto = onnx.TensorProto()
    proto.ParseFromString(data)
    array = numpy_helper.to_array(proto)
    bfloat16 = value_type.tensor_type.elem_type == onnx.TensorProto.BFLOAT16
    if bfloat16 and array.dtype == np.uint16:  # the data sets store bfloat16 as uint16 bits
        import ml_dtypes  # onnx stores bfloat16 as its bits; TensorFlow takes ml_dtypes' type

        array = array.view(ml_dtypes.bfloat16)
    return array


def compare(expected: dict[str, Any], actual: dict[str, Any]) -> str | None:
    """None if every expected output matches, else what differs first."""
    for name, want in expected.items():
        if name not in actual:
            return f"output {name!r} missing"
        got = actual[name]
        if isinstance(want, list) or want is None:
            if isinstance(got, np.ndarray) or (want is None) != (got is None):
                return f"output {name!r}: {type(got).__name__} for {type(want).__name__}"
            pairs = [] if want is None else list(zip(want, got))
            if want is not None and len(want) != len(got):
                return f"output {name!r}: {len(got)} elements, expected {len(want)}"
            for index, (w, g) in enumerate(pairs):
                problem = _compare_arrays(np.asarray(w), np.asarray(g))
                if problem:
                    return f"output {name!r}[{index}]: {problem}"
            continue
        problem = _compare_arrays(np.asarray(want), np.asarray(got))
        if problem:
            return f"output {name!r}: {problem}"
    return None


def _compare_arrays(want: np.ndarray, got: np.ndarray) -> str | None:
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}"
    if got.dtype != want.dtype:
        return f"dtype {got.dtype}, expected {want.dtype}"
    if want.dtype.name == "bfloat16":
        got, want = got.astype(np.float32), want.astype(np.float32)
    if want.dtype.kind in "fc":
        if not np.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True):
            worst = float(np.nanmax(np.abs(got.astype(np.float64) - want.astype(np.float64))))
            return f"max abs difference {worst:.3g}"
        return None
    if want.dtype.kind == "O":
        got, want = got.astype(str), want.astype(str)
    return None if np.array_equal(got, want) else "values differ"


# --- one worker process runs one path --------------------------------------------------------


def _run_one(path: str, folder: Path) -> tuple[str, str]:
    """``(status, detail)`` of one test through ``path`` ("ours" or "stock")."""
    try:
        model, cases = load_test(folder)
    except Exception as error:  # noqa: BLE001  (a test whose data this onnx cannot read)
        return "error", f"loading the test data: {_first_line(error)}"
    for value in [*model.graph.input, *model.graph.output]:
        if value.type.tensor_type.elem_type in NO_TF_TYPE:
            name = onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type)
            return "unsupported", f"{value.name!r} is {name}: TensorFlow has no such type"
    from onnx.backend.test.runner import BackendIsNotSupposedToImplementIt

    from custom_ops.support import UnsupportedOpError

    try:
        for inputs, expected in cases:
            if path == "ours":
                actual = run_graph_module(model, inputs)
            else:
                from onnx_tf.backend import prepare

                rep = prepare(model)
                outputs = rep.run(inputs)
                actual = {name: _as_value(outputs[name]) for name in rep.outputs}
            problem = compare(expected, actual)
            if problem:
                return "wrong", problem
    except (UnsupportedOpError, BackendIsNotSupposedToImplementIt) as error:
        return "unsupported", _first_line(error)
    except Exception as error:  # noqa: BLE001  (every failure is a result here)
        if "is not implemented" in str(error) or "not supported" in str(error):
            return "unsupported", _first_line(error)
        return "error", _first_line(error)
    return "pass", ""


def _as_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [np.asarray(v) for v in value]
    return None if value is None else np.asarray(value)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = (
        lines[-1] if lines and lines[0].startswith("in user code") else (lines[0] if lines else "")
    )
    return f"{type(error).__name__}: {text}"[:300]


def worker(path: str) -> None:
    """Read test folder names from stdin, one per line; print one result line per test."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if path == "ours":
        import custom_ops

        custom_ops.register()
    else:
        from custom_ops import compat

        compat.install()
        import onnx_tf.backend  # noqa: F401
    for line in sys.stdin:
        name = line.strip()
        status, detail = _run_one(path, NODE_TEST_ROOT / name)
        print(
            RESULT_PREFIX + json.dumps({"name": name, "status": status, "detail": detail}),
            flush=True,
        )


class _Worker:
    """A worker subprocess for one path, restarted after a timeout or every RESTART_EVERY tests."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self.process: subprocess.Popen | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.done = 0

    def _start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.node_suite", "--worker", self.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=HERE.parent,
        )
        # each process gets its own queue: a killed process's pump must not reach the next one
        lines: queue.Queue[str | None] = queue.Queue()
        self.lines = lines
        stdout = self.process.stdout

        def pump() -> None:
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        self.done = 0

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def run(self, name: str) -> dict[str, str]:
        if self.process is None or self.done >= RESTART_EVERY:
            self.stop()
            self._start()
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                self.stop()
                return {"status": "error", "detail": f"timeout after {self.timeout:.0f} s"}
            if line is None:
                code = self.process.wait()
                self.process = None
                return {"status": "error", "detail": f"worker died (exit code {code})"}
            if line.startswith(RESULT_PREFIX):
                self.done += 1
                result = json.loads(line[len(RESULT_PREFIX) :])
                return {"status": result["status"], "detail": result["detail"]}


def op_of(folder: Path, op_names: dict[str, str]) -> str:
    """The op a test is about: its only node's op, else the op its name starts with (longest
    match); ``(expanded)`` marks the tests of a function op's expansion."""
    model = onnx.load(folder / "model.onnx", load_external_data=False)
    nodes = list(model.graph.node)
    expanded = "_expanded" in folder.name
    if len(nodes) == 1 and not expanded:
        node = nodes[0]
        return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
    squashed = folder.name[len("test_") :].replace("_", "").lower()
    matches = [key for key in op_names if squashed.startswith(key)]
    op = op_names[max(matches, key=len)] if matches else (nodes[0].op_type if nodes else "?")
    return f"{op} (expanded)" if expanded else op


def _all_op_names() -> dict[str, str]:
    return {schema.name.lower(): schema.name for schema in onnx.defs.get_all_schemas()}


def run(names: list[str], timeout: float) -> dict[str, Any]:
    """Run ``names`` through both paths; returns the results document."""
    started = time.monotonic()
    results: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)

    def drive(path: str) -> None:
        runner = _Worker(path, timeout)
        try:
            for index, name in enumerate(names):
                results[name][path] = runner.run(name)
                if (index + 1) % 100 == 0:
                    print(f"  {path}: {index + 1}/{len(names)}", file=sys.stderr, flush=True)
        finally:
            runner.stop()

    threads = [threading.Thread(target=drive, args=(path,)) for path in ("ours", "stock")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    op_names = _all_op_names()
    tests = {
        name: {"op": op_of(NODE_TEST_ROOT / name, op_names), **results[name]} for name in names
    }
    return {
        "onnx": onnx.__version__,
        "machine": machine(),
        "duration_s": round(time.monotonic() - started, 1),
        "tolerance": {"rtol": RTOL, "atol": ATOL},
        "totals": {
            path: _count(t[path]["status"] for t in tests.values()) for path in ("ours", "stock")
        },
        "ops": _per_op(tests),
        "regressions": sorted(
            name
            for name, t in tests.items()
            if t["stock"]["status"] == "pass" and t["ours"]["status"] != "pass"
        ),
        "tests": tests,
    }


def _count(statuses: Iterable[str]) -> dict[str, int]:
    counts = Counter(statuses)
    return {"tests": sum(counts.values()), **{status: counts[status] for status in STATUSES}}


def _per_op(tests: dict[str, dict]) -> dict[str, dict]:
    by_op: dict[str, list[dict]] = defaultdict(list)
    for test in tests.values():
        by_op[test["op"]].append(test)
    return {
        op: {path: _count(t[path]["status"] for t in group) for path in ("ours", "stock")}
        for op, group in sorted(by_op.items())
    }


def markdown(document: dict[str, Any]) -> str:
    """The totals, the ops where ours does not pass everything, and the regressions."""
    totals = document["totals"]
    cpu = document["machine"]["cpu"]
    lines = [
        f"# ONNX node-test suite (onnx {document['onnx']}): {totals['ours']['tests']} tests",
        "",
        (
            f"Measured on {cpu}, {document['machine']['cores']} cores (shared with other work), "
            f"{document['duration_s']:.0f} s. Tolerance rtol {RTOL:g}, atol {ATOL:g}."
        ),
        "",
        "| path | pass | wrong numbers | unsupported | error |",
        "|---|---|---|---|---|",
    ]
    for path, label in (("ours", "`convert` (our handlers)"), ("stock", "stock onnx-tf 1.10")):
        t = totals[path]
        lines.append(
            f"| {label} | {t['pass']} | {t['wrong']} | {t['unsupported']} | {t['error']} |"
        )
    lines += [
        "",
        "## Ops where `convert` does not pass every test",
        "",
        "| op | tests | pass | wrong | unsupported | error | stock pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for op, counts in document["ops"].items():
        ours = counts["ours"]
        if ours["pass"] < ours["tests"]:
            lines.append(
                f"| {op} | {ours['tests']} | {ours['pass']} | {ours['wrong']} | "
                f"{ours['unsupported']} | {ours['error']} | {counts['stock']['pass']} |"
            )
    lines += [
        "",
        f"## Tests stock onnx-tf passes and `convert` does not ({len(document['regressions'])})",
        "",
    ]
    for name in document["regressions"]:
        ours = document["tests"][name]["ours"]
        lines.append(f"- `{name}`: {ours['status']}: {ours['detail']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.node_suite", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PREFIX",
        help="run only the tests whose name starts with PREFIX (repeatable)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds per test (default 120)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results",
        help="folder for node_suite.json and node_suite.md (default benchmarks/results)",
    )
    parser.add_argument("--worker", choices=("ours", "stock"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    names = sorted(p.name for p in NODE_TEST_ROOT.iterdir() if p.name.startswith("test_"))
    if args.only:
        names = [n for n in names if n.startswith(tuple(args.only))]
    if not names:
        print("error: no node test matches --only", file=sys.stderr)
        return 2
    document = run(names, args.timeout)
    args.out.mkdir(parents=True, exist_ok=True)
    for suffix, text in (
        ("json", json.dumps(document, indent=1) + "\n"),
        ("md", markdown(document)),
    ):
        target = args.out / f"node_suite.{suffix}"
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(target)
    for path in ("ours", "stock"):
        t = document["totals"][path]
        print(
            f"{path}: {t['pass']}/{t['tests']} pass, {t['wrong']} wrong, "
            f"{t['unsupported']} unsupported, {t['error']} error"
        )
    print(f"{len(document['regressions'])} tests stock onnx-tf passes fail through convert")
    return 0


if __name__ == "__main__":
    sys.exit(main())
