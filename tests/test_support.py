"""custom_ops.support: the up-front unsupported-op check and the coverage table, checked
against what onnx-tf itself does with the same models."""

from __future__ import annotations

import io
import warnings
from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from onnx.backend.test.runner import BackendIsNotSupposedToImplementIt
from onnx_tf_harness import load_node_test, official_node_tests, run_onnx_tf

import custom_ops
from custom_ops.support import UnsupportedOpError, check_supported, coverage, supported_ops


def _model(
    nodes: list[onnx.NodeProto], opset: int = 17, y_shape: tuple[int, ...] = (1, 2, 4, 4)
) -> onnx.ModelProto:
    """x (float ``[1, 2, 4, 4]``) -> nodes -> y; the last node must write y."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _roi_align(name: str, output: str) -> list[onnx.NodeProto]:
    """RoiAlign is at since-version 16 from opset 16 on; onnx-tf's handler implements 10."""
    rois = helper.make_tensor("rois", TensorProto.FLOAT, [1, 4], [0.0, 0.0, 3.0, 3.0])
    batch = helper.make_tensor("batch", TensorProto.INT64, [1], [0])
    return [
        helper.make_node("Constant", [], ["rois"], value=rois),
        helper.make_node("Constant", [], ["batch"], value=batch),
        helper.make_node("RoiAlign", ["x", "rois", "batch"], [output], name=name),
    ]


def test_a_made_up_op_is_named_with_opset_and_node() -> None:
    model = _model([helper.make_node("Foo", ["x"], ["y"], name="/enc/Foo_3")])
    with pytest.raises(UnsupportedOpError) as raised:
        check_supported(model)
    error = raised.value
    assert (error.op_type, error.version, error.node_name) == ("Foo", None, "/enc/Foo_3")
    assert str(error) == (
        "ONNX op Foo (opset 17, no ONNX schema) at node '/enc/Foo_3' has no TensorFlow handler"
    )


def test_a_missing_version_is_named_with_since_version_and_handler() -> None:
    model = _model(_roi_align("roi", "y"))
    with pytest.raises(UnsupportedOpError) as raised:
        check_supported(model)
    error = raised.value
    assert (error.op_type, error.version, error.node_name) == ("RoiAlign", 16, "roi")
    assert str(error) == (
        "ONNX op RoiAlign (opset 17, since version 16) at node 'roi' has no TensorFlow handler "
        "(onnx_tf.handlers.backend.roi_align.RoiAlign implements versions 10)"
    )


def test_every_unsupported_node_is_named_at_once() -> None:
    nodes = [
        helper.make_node("Foo", ["x"], ["a"], name="foo"),
        helper.make_node("Relu", ["a"], ["b"], name="relu"),
    ]
    nodes += _roi_align("roi", "c")
    nodes += [helper.make_node("GridSample", ["b", "c"], ["y"], name="grid")]
    with pytest.raises(UnsupportedOpError) as raised:
        check_supported(_model(nodes))
    error = raised.value
    assert [(n.op_type, n.node_name, n.since_version) for n in error.nodes] == [
        ("Foo", "foo", None),
        ("RoiAlign", "roi", 16),
        ("GridSample", "grid", 16),
    ]
    lines = str(error).splitlines()
    assert lines[0] == "3 ONNX nodes have no TensorFlow handler:"
    assert lines[3] == (
        "  ONNX op GridSample (opset 17, since version 16) at node 'grid' has no TensorFlow handler"
    )


def test_nodes_inside_subgraphs_are_checked() -> None:
    then_branch = helper.make_graph(
        [helper.make_node("Foo", ["x"], ["t"], name="inner_foo")],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)],
    )
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
        helper.make_node("Cast", ["m"], ["flag"], to=TensorProto.BOOL),
        helper.make_node("If", ["flag"], ["y"], then_branch=then_branch, else_branch=else_branch),
    ]
    with pytest.raises(UnsupportedOpError) as raised:
        check_supported(_model(nodes, opset=15))
    assert [(n.op_type, n.node_name) for n in raised.value.nodes] == [("Foo", "inner_foo")]


_GRID_SAMPLE = [
    helper.make_node(
        "Constant", [], ["grid"], value=helper.make_tensor("g", TensorProto.FLOAT, [1, 4, 4, 2], [0.0] * 32)
    ),
    helper.make_node("GridSample", ["x", "grid"], ["y"], name="sample"),
]


@pytest.mark.parametrize(
    ("nodes", "y_shape", "match"),
    [
        (_roi_align("roi", "y"), (1, 2, 1, 1), "RoiAlign version 16 is not implemented"),
        (_GRID_SAMPLE, (1, 2, 4, 4), "GridSample is not implemented"),
    ],
    ids=["missing-version", "missing-handler"],
)
def test_what_the_check_rejects_onnx_tf_cannot_run(
    nodes: list[onnx.NodeProto], y_shape: tuple[int, ...], match: str
) -> None:
    model = _model(nodes, y_shape=y_shape)
    with pytest.raises(UnsupportedOpError):
        check_supported(model)
    with pytest.raises(BackendIsNotSupposedToImplementIt, match=match):
        run_onnx_tf(model, {"x": np.zeros((1, 2, 4, 4), np.float32)})


@pytest.mark.parametrize(
    ("op_type", "opset", "package"), [("Hardmax", 13, "tensorflow_addons"), ("Bernoulli", 15, "tensorflow_probability")]
)
def test_an_onnx_tf_handler_without_its_package_is_refused_up_front(op_type: str, opset: int, package: str) -> None:
    """onnx-tf has these versions, but its handler needs a package that does not work here
    (custom_ops.compat stands in for it): the check names the node and the package, where
    onnx-tf itself fails only once it translates the node."""
    model = _model([helper.make_node(op_type, ["x"], ["y"], name="n")], opset=opset)
    with pytest.raises(UnsupportedOpError) as raised:
        check_supported(model)
    handler = f"onnx_tf.handlers.backend.{op_type.lower()}.{op_type}"
    assert str(raised.value) == (
        f"ONNX op {op_type} (opset {opset}, since version {opset}) at node 'n' has no TensorFlow handler "
        f"({handler} needs {package}, which does not work with TensorFlow 2.21 / Keras 3)"
    )
    assert [(r["op_type"], r["supported"]) for r in coverage(model)] == [(op_type, False)]
    with pytest.raises(NotImplementedError, match=f"ONNX op {op_type} is not supported"):
        run_onnx_tf(model, {"x": np.zeros((1, 2, 4, 4), np.float32)})


def test_checking_a_model_leaves_a_prepared_model_of_another_opset_alone() -> None:
    """onnx-tf keeps since-versions on the handler classes and traces lazily: a check of an
    opset-11 model must not make a prepared opset-17 Squeeze trace as Squeeze-11 (which
    ignores the axes input and squeezes every size-1 dimension)."""
    custom_ops.register()
    from onnx_tf.backend import prepare

    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [0])
    graph = helper.make_graph(
        [helper.make_node("Squeeze", ["x", "axes"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=[axes],
    )
    prepared = prepare(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    squeeze_11 = helper.make_node("Squeeze", ["x"], ["y"], axes=[0])
    check_supported(_model([squeeze_11], opset=11, y_shape=(2, 4, 4)))
    assert prepared.run({"x": np.ones((1, 1, 3), np.float32)})["y"].shape == (1, 3)


@pytest.mark.parametrize(
    "folder",
    official_node_tests("test_batchnorm", "test_squeeze", "test_unsqueeze", "test_where"),
    ids=lambda p: p.name,
)
def test_official_node_test_models_pass(folder) -> None:
    model, _ = load_node_test(folder)
    check_supported(model)
    assert all(row["source"] == "custom_ops" and row["supported"] for row in coverage(model))


# --- PyTorch-exported models --------------------------------------------------------------


class _Encoder(torch.nn.Module):
    """Conv1d + BatchNorm1d + ReLU + 2-layer bidirectional LSTM + strided slicing + upsampling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(8, 16, 5, padding=2)
        self.norm = torch.nn.BatchNorm1d(16)
        self.lstm = torch.nn.LSTM(16, 8, 2, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(torch.relu(self.norm(self.conv(x))).transpose(1, 2))
        codes = torch.cat([h[:, 3::4, :8], h[:, ::4, 8:]], dim=-1)
        return torch.tanh(codes.repeat_interleave(4, dim=1)).squeeze(0)


def _export(
    module: torch.nn.Module, x: torch.Tensor, opset: int, training: torch.onnx.TrainingMode
) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (x,), buffer, dynamo=False, opset_version=opset, training=training, input_names=["x"]
        )
    return onnx.load_from_string(buffer.getvalue())


TORCH_MODELS = {
    "lstm": (lambda: torch.nn.LSTM(4, 6, batch_first=True), (2, 7, 4), torch.onnx.TrainingMode.EVAL),
    "conv1d": (lambda: torch.nn.Conv1d(3, 4, 3, padding=1), (2, 3, 5), torch.onnx.TrainingMode.EVAL),
    "batchnorm1d-train": (lambda: torch.nn.BatchNorm1d(3), (2, 3, 5), torch.onnx.TrainingMode.TRAINING),
    "encoder": (_Encoder, (1, 8, 16), torch.onnx.TrainingMode.PRESERVE),
}


@pytest.mark.parametrize("opset", [13, 15, 17])
@pytest.mark.parametrize("name", list(TORCH_MODELS))
def test_torch_exports_pass_and_coverage_names_our_handlers(name: str, opset: int) -> None:
    make, shape, training = TORCH_MODELS[name]
    torch.manual_seed(0)
    model = _export(make(), torch.randn(*shape), opset, training)
    check_supported(model)

    rows = coverage(model)
    assert [(r["domain"], r["op_type"]) for r in rows] == sorted((r["domain"], r["op_type"]) for r in rows)
    assert {r["op_type"]: r["count"] for r in rows} == Counter(n.op_type for n in model.graph.node)
    by_op = {r["op_type"]: r for r in rows}
    assert all(r["supported"] for r in rows)
    for op_type in ("BatchNormalization", "Squeeze", "Unsqueeze"):
        if op_type in by_op:
            module = op_type.lower().replace("batchnormalization", "batch_normalization")
            assert by_op[op_type]["handler"] == f"custom_ops.handlers.{module}.{op_type}"
            assert by_op[op_type]["source"] == "custom_ops"
    if "Conv" in by_op:
        assert by_op["Conv"] == {
            "op_type": "Conv",
            "domain": "",
            "count": 1,
            "since_version": 11,
            "handler": "onnx_tf.handlers.backend.conv.Conv",
            "source": "onnx_tf",
            "supported": True,
        }
    expected_ops = {"encoder": {"BatchNormalization", "Unsqueeze"}, "lstm": {"Squeeze", "Unsqueeze"}}
    assert expected_ops.get(name, set()) <= set(by_op)


def test_supported_ops_lists_our_versions() -> None:
    rows = {(r["domain"], r["op_type"]): r for r in supported_ops()}
    assert rows[("", "Squeeze")]["versions"] == [1, 11, 13, 21, 23]
    assert rows[("", "Unsqueeze")]["versions"] == [1, 11, 13, 21, 23]
    assert rows[("", "Where")]["versions"] == [9, 16]
    assert rows[("", "BatchNormalization")]["versions"] == [1, 6, 7, 9, 14, 15]
    for op_type in ("Squeeze", "Unsqueeze", "Where", "BatchNormalization"):
        assert rows[("", op_type)]["source"] == "custom_ops"
    assert rows[("", "Conv")]["source"] == "onnx_tf"
    assert ("", "GridSample") not in rows
