"""Sequence and optional graph inputs and outputs through `convert`'s path: the official ONNX
node tests that carry them, each written as a SavedModel and run through its signature against
ONNX's expected outputs; a hand-built model converted with ``python -m pipeline convert`` and
compared with onnxruntime; and how a parity run compares such outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import tensorflow as tf
from onnx import TensorProto, helper

from benchmarks.node_suite import NODE_TEST_ROOT, compare, load_test, run_graph_module
from pipeline.parity.backends import TF, TF_XLA, TfSavedModelBackend
from pipeline.parity.sequences import comparable, structure_problems
from pipeline.runtime.errors import UsageError
from pipeline.stages.tf_convert import OnnxGraphModule, run_saved_model, tf_name, write_saved_model
from tests.conftest import run_cli

NODE_TESTS = [
    # stock onnx-tf 1.10 passes these: a sequence or optional graph output (and input)
    "test_identity_opt",
    "test_if_seq",
    "test_split_to_sequence_2",
    "test_split_to_sequence_nokeepdims",
    # a sequence input; SequenceInsert with a one-element position
    "test_identity_sequence",
    "test_sequence_insert_at_back",
    "test_sequence_insert_at_front",
    # OptionalGetElement-18 and OptionalHasElement-15/18 (a missing input is an empty optional)
    "test_optional_get_element_optional_sequence",
    "test_optional_get_element_optional_tensor",
    "test_optional_get_element_sequence",
    "test_optional_get_element_tensor",
    "test_optional_has_element_empty_no_input_name_optional_input",
    "test_optional_has_element_empty_no_input_name_tensor_input",
    "test_optional_has_element_empty_no_input_optional_input",
    "test_optional_has_element_empty_no_input_tensor_input",
    "test_optional_has_element_optional_input",
    "test_optional_has_element_tensor_input",
    # SequenceMap's expansions: a Loop over sequence inputs, starting from SequenceEmpty
    "test_sequence_map_add_1_sequence_1_tensor_expanded",
    "test_sequence_map_add_2_sequences_expanded",
    "test_sequence_map_identity_1_sequence_1_tensor_expanded",
    "test_sequence_map_identity_1_sequence_expanded",
    "test_sequence_map_identity_2_sequences_expanded",
]


@pytest.mark.parametrize("name", NODE_TESTS)
def test_official_node_test_through_a_saved_model(name: str, tmp_path: Path) -> None:
    model, cases = load_test(NODE_TEST_ROOT / name)
    write_saved_model(OnnxGraphModule(model), tmp_path / "saved_model")
    for inputs, expected in cases:
        outputs = run_saved_model(tmp_path / "saved_model", inputs)
        assert compare(expected, {n: outputs[tf_name(n)] for n in expected}) is None


@pytest.mark.parametrize("name", ["test_identity_opt", "test_split_to_sequence_2"])
def test_the_node_suite_runs_them_as_convert_does(name: str) -> None:
    model, [(inputs, expected)] = load_test(NODE_TEST_ROOT / name)
    assert compare(expected, run_graph_module(model, inputs)) is None


def test_an_empty_optional_input_cannot_be_fed(tmp_path: Path) -> None:
    model, [(inputs, _)] = load_test(NODE_TEST_ROOT / "test_optional_has_element_empty_optional_input")
    assert inputs == {"optional_input": None}
    write_saved_model(OnnxGraphModule(model), tmp_path / "saved_model")
    with pytest.raises(UsageError, match="'optional_input' is an empty optional"):
        run_saved_model(tmp_path / "saved_model", inputs)


def _sequences_model() -> onnx.ModelProto:
    """Outputs: a sequence of two tensors of different lengths, a tensor taken from it, a
    present and an empty optional."""
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Relu", ["b"], ["b_relu"]),
        helper.make_node("SequenceConstruct", ["a", "b_relu"], ["seq"]),
        helper.make_node("SequenceAt", ["seq", "one"], ["second"]),
        helper.make_node("Optional", ["a"], ["maybe"]),
        helper.make_node("Optional", [], ["nothing"], type=helper.make_tensor_type_proto(f, None)),
    ]
    graph = helper.make_graph(
        nodes,
        "sequences",
        [helper.make_tensor_value_info("a", f, ["n", 3]), helper.make_tensor_value_info("b", f, ["m", 3])],
        [
            helper.make_value_info("seq", helper.make_sequence_type_proto(helper.make_tensor_type_proto(f, [None, 3]))),
            helper.make_tensor_value_info("second", f, ["m", 3]),
            helper.make_value_info("maybe", helper.make_optional_type_proto(helper.make_tensor_type_proto(f, ["n", 3]))),
            helper.make_value_info("nothing", helper.make_optional_type_proto(helper.make_tensor_type_proto(f, None))),
        ],
        initializer=[helper.make_tensor("one", TensorProto.INT64, [], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model, full_check=True)
    return model


def test_converted_sequence_and_optional_outputs_match_onnxruntime(tmp_path: Path) -> None:
    import onnxruntime as ort

    onnx.save(_sequences_model(), tmp_path / "sequences.onnx")
    result = run_cli("convert", str(tmp_path / "sequences.onnx"), "--out", str(tmp_path / "saved_model"))
    assert result.returncode == 0, result.stderr[-3000:]

    signature = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
    assert set(signature.structured_outputs) == {
        "seq", "seq__lengths", "second", "maybe", "maybe__has_element", "nothing", "nothing__has_element"
    }
    session = ort.InferenceSession(str(tmp_path / "sequences.onnx"))
    names = [o.name for o in session.get_outputs()]
    backends = [TfSavedModelBackend(tmp_path / "saved_model", names, "/CPU:0", name=n) for n in (TF, TF_XLA)]
    rng = np.random.default_rng(0)
    for n, m in ((2, 5), (4, 1)):
        inputs = {"a": rng.standard_normal((n, 3), np.float32), "b": rng.standard_normal((m, 3), np.float32)}
        expected = dict(zip(names, session.run(names, inputs)))
        assert [len(expected["seq"][0]), len(expected["seq"][1])] == [n, m] and expected["nothing"] is None
        outputs = run_saved_model(tmp_path / "saved_model", inputs)
        assert compare(expected, outputs) is None
        assert np.array_equal(outputs["seq"][1], np.maximum(inputs["b"], 0))
        for backend in backends:
            assert compare(expected, backend.run(inputs)) is None, backend.name


def test_empty_sequences_and_an_empty_optional_sequence_match_onnxruntime(tmp_path: Path) -> None:
    import onnxruntime as ort

    f = TensorProto.FLOAT
    sequence = helper.make_sequence_type_proto(helper.make_tensor_type_proto(f, None))
    nodes = [
        helper.make_node("SequenceEmpty", [], ["empty"], dtype=f),
        helper.make_node("SequenceInsert", ["empty", "x"], ["one"]),
        helper.make_node("Optional", [], ["none"], type=sequence),
        helper.make_node("Identity", ["xs"], ["xs_out"]),
    ]
    graph = helper.make_graph(
        nodes, "empty_sequences",
        [helper.make_tensor_value_info("x", f, [2]), helper.make_value_info("xs", sequence)],
        [
            helper.make_value_info("empty", sequence),
            helper.make_value_info("one", sequence),
            helper.make_value_info("none", helper.make_optional_type_proto(sequence)),
            helper.make_value_info("xs_out", sequence),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    session = ort.InferenceSession(model.SerializeToString())
    write_saved_model(OnnxGraphModule(model), tmp_path / "saved_model")
    for xs in ([], [np.ones(3, np.float32), np.zeros(1, np.float32)]):
        inputs = {"x": np.array([1, 2], np.float32), "xs": xs}
        expected = dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs)))
        assert expected["empty"] == [] and expected["none"] is None
        assert compare(expected, run_saved_model(tmp_path / "saved_model", inputs)) is None


def test_names_that_would_collide_in_the_signature_are_refused() -> None:
    f = TensorProto.FLOAT
    for outputs in (["y__lengths"], ["y.z", "y_z"]):
        nodes = [helper.make_node("Relu", ["x"], [name]) for name in outputs]
        graph = helper.make_graph(
            nodes, "names", [helper.make_tensor_value_info("x", f, [2])],
            [helper.make_tensor_value_info(name, f, [2]) for name in outputs],
        )
        with pytest.raises(UsageError, match="rename"):
            OnnxGraphModule(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_parity_compares_sequences_by_structure_then_values() -> None:
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((1, 3), np.float32)
    outputs = {
        "ort": {"seq": [a, b], "opt": None, "y": a},
        "tf": {"seq": [a, b], "opt": None, "y": a},
        "tf_xla": {"seq": [a, np.ones((2, 3), np.float32)], "opt": a, "y": a},
    }
    assert structure_problems(outputs, [("ort", "tf")]) == []
    problems = structure_problems(outputs, [("ort", "tf_xla")])
    assert problems == [
        "output seq: tf_xla gives a sequence of 2 (2x3, 2x3), ort a sequence of 2 (2x3, 1x3)",
        "output opt: tf_xla gives an array, ort no element",
    ]
    np.testing.assert_array_equal(comparable([a, b]), [0, 1, 2, 3, 4, 5, 1, 1, 1])
    assert comparable(None).size == 0 and comparable(a) is a
