"""``python -m pipeline convert`` refuses a node option its handler lacks with exit 2 and one line
naming op, node, option and value, and leaves no output folder: up front (``check ops``) where
the node itself shows the option, else while the graph is traced (``write savedmodel``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from robustness.helpers import assert_one_error

from pipeline.cli import main

UP_FRONT, TRACING = "check ops", "write savedmodel"


@dataclass(frozen=True)
class Case:
    """One node ``op_type`` reading the float input ``x [1, 1, 4, 4]`` (and ``extra`` inputs,
    initializers named in ``init``) and writing ``y``."""

    op_type: str
    extra: tuple[str, ...]
    attrs: dict[str, Any]
    opset: int
    option: str
    value: Any
    stage: str = UP_FRONT
    init: tuple[str, ...] = field(default=())


_INITIALIZERS = {
    "scales": np.array([1, 1, 2, 2], np.float32),
    "no_scales": np.zeros([0], np.float32),
    "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
    "target": np.zeros([1, 4, 4], np.int64),
    "text": np.array(["a"], object),
    "one": np.ones([1], np.float32),
    "zero": np.zeros([1], np.float32),
}

POOL = {"kernel_shape": [2, 2]}

CASES = {
    "cast-to-float8": Case("Cast", (), {"to": TensorProto.FLOAT8E4M3FN}, 19, "to", "FLOAT8E4M3FN"),
    "cast-to-int4": Case("Cast", (), {"to": TensorProto.INT4}, 21, "to", "INT4"),
    "cast-float-to-string": Case("Cast", (), {"to": TensorProto.STRING}, 21, "input type", "float32", TRACING),
    "castlike-float-to-string": Case("CastLike", ("text",), {}, 21, "input type", "float32", TRACING, ("text",)),
    "resize-mode": Case("Resize", ("", "scales"), {"mode": "area"}, 13, "mode", "area", init=("scales",)),
    "resize-coordinates": Case("Resize", ("", "scales"), {"coordinate_transformation_mode": "edges"}, 13,
                               "coordinate_transformation_mode", "edges", init=("scales",)),
    "resize-nearest-mode": Case("Resize", ("", "scales"), {"nearest_mode": "even"}, 13, "nearest_mode", "even",
                                init=("scales",)),
    "resize-aspect-policy": Case("Resize", ("", "scales"), {"keep_aspect_ratio_policy": "fit"}, 18,
                                 "keep_aspect_ratio_policy", "fit", init=("scales",)),
    "resize-no-scales-or-sizes": Case("Resize", ("",), {}, 13, "inputs (scales, sizes)", ("", "")),
    "resize-empty-scales": Case("Resize", ("", "no_scales"), {}, 13, "inputs (scales, sizes)", ("no_scales", ""),
                                TRACING, ("no_scales",)),
    "pad-mode": Case("Pad", ("pads",), {"mode": "symmetric"}, 19, "mode", "symmetric", init=("pads",)),
    "nll-reduction": Case("NegativeLogLikelihoodLoss", ("target",), {"reduction": "max"}, 13, "reduction", "max",
                          init=("target",)),
    "softmax-ce-reduction": Case("SoftmaxCrossEntropyLoss", ("target",), {"reduction": "avg"}, 13, "reduction",
                                 "avg", init=("target",)),
    "average-pool-auto-pad": Case("AveragePool", (), {**POOL, "auto_pad": "SAME"}, 19, "auto_pad", "SAME"),
    "max-pool-auto-pad": Case("MaxPool", (), {**POOL, "auto_pad": "FULL"}, 12, "auto_pad", "FULL"),
    "lp-pool-auto-pad": Case("LpPool", (), {**POOL, "auto_pad": "SAME"}, 22, "auto_pad", "SAME"),
    "batch-norm-spatial": Case("BatchNormalization", ("one", "zero", "zero", "one"), {"spatial": 0}, 7, "spatial",
                               0, init=("one", "zero")),
}  # fmt: skip


def _output_type(case: Case) -> tuple[int, list]:
    """y's element type and shape: a loss is a scalar, the rest ``[1, 1, H, W]``."""
    if case.op_type.endswith("Loss"):
        return TensorProto.FLOAT, []
    element = {"Cast": case.attrs.get("to"), "CastLike": TensorProto.STRING}.get(case.op_type, TensorProto.FLOAT)
    return element, [1, 1, "h", "w"]


def _write_model(case: Case, path: Path) -> None:
    node = helper.make_node(case.op_type, ["x", *case.extra], ["y"], name=f"my_{case.op_type.lower()}", **case.attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", *_output_type(case))],
        [numpy_helper.from_array(_INITIALIZERS[name], name) for name in case.init],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    onnx.save(model, str(path))


@pytest.mark.parametrize("case_id", CASES)
def test_convert_refuses_the_option_in_one_line(case_id: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    case = CASES[case_id]
    model, out = tmp_path / "model.onnx", tmp_path / "out"
    _write_model(case, model)
    code = main(["convert", str(model), "--out", str(out)])
    stderr = capsys.readouterr().err
    node = f"my_{case.op_type.lower()}"
    assert_one_error(code, stderr, 2, f"cannot convert {model}: ONNX op {case.op_type} at node '{node}': "
                     f"{case.option} {case.value!r} is not supported (supported: ")
    stages = [line for line in stderr.splitlines() if line.endswith("] ...")]
    assert stages[-1] == f"[{case.stage}] ...", stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["model.onnx"]
