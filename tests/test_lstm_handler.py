"""What only the LSTM handler (``custom_ops/handlers/lstm.py``) has: batch and time left dynamic
through a SavedModel and onnx-tf's ``export_graph`` (which the built-in handler fails), and TF's
fused ``BlockLSTM`` kernel in graph mode only. The tests it shares with the GRU and RNN handlers
are in ``test_recurrent_handlers.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from recurrent_models import OPS, node_model, random_inputs, reference_outputs, two_layer_model

from custom_ops.lowering import lowering
from pipeline.stages.tf_convert import OnnxGraphModule

LSTM = OPS["LSTM"]


def test_dynamic_shapes_survive_saved_model(tmp_path: Path) -> None:
    """Batch and time unknown when traced; the SavedModel and onnx-tf's ``export_graph``
    (which the built-in handler fails with dynamic dims) run at several shapes."""
    from onnx_tf.backend import prepare

    rng = np.random.default_rng(6)
    features, hidden = 4, 3
    weights = random_inputs(LSTM, rng, ("W", "R", "B"), 1, 1, features, hidden, dirs=2)
    attrs = {"hidden_size": hidden, "direction": "bidirectional", "layout": 1}
    example = {"X": np.zeros((2, 3, features), np.float32), **weights, "sequence_lens": np.array([3, 3], np.int32)}
    rep = prepare(node_model(LSTM, example, attrs))
    module = rep.tf_module

    class Serving(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, features], tf.float32), tf.TensorSpec([None], tf.int32)])
        def serve(self, x: tf.Tensor, lengths: tf.Tensor) -> dict[str, tf.Tensor]:
            return module(X=x, sequence_lens=lengths, **weights)

    serving = Serving()
    serving.module = module
    tf.saved_model.save(serving, str(tmp_path / "serving"))
    rep.export_graph(str(tmp_path / "export_graph"))
    loaded = tf.saved_model.load(str(tmp_path / "serving"))
    exported = tf.saved_model.load(str(tmp_path / "export_graph")).signatures["serving_default"]
    for batch, steps in [(1, 1), (4, 9), (2, 30)]:
        x = rng.normal(size=(batch, steps, features)).astype(np.float32)
        lengths = rng.integers(1, steps + 1, batch).astype(np.int32)
        expected = reference_outputs(LSTM, {"X": x, **weights, "sequence_lens": lengths}, attrs)
        for outputs in (
            serving.serve(x, lengths),
            loaded.serve(x, lengths),
            exported(X=tf.constant(x), sequence_lens=tf.constant(lengths), **weights),
        ):
            for name, want in expected.items():
                np.testing.assert_allclose(outputs[name].numpy(), want, atol=1e-6, rtol=0, err_msg=name)


def test_xla_lowering_has_no_block_lstm() -> None:
    """Graph mode keeps the fused BlockLSTM for small layers; XLA has no kernel for it."""
    rng = np.random.default_rng(11)
    layers = [random_inputs(LSTM, rng, ("W", "R", "B"), 1, 1, features, 5, dirs=2) for features in (4, 10)]
    module = OnnxGraphModule(two_layer_model(LSTM, layers, ({}, {}), 5))
    ops = {}
    for target in ("graph", "xla"):
        with lowering(target):
            graph = module.node_outputs_function().graph
        ops[target] = {op.type for op in graph.get_operations()}
    assert "BlockLSTM" in ops["graph"]
    assert "BlockLSTM" not in ops["xla"] and ops["xla"] & {"While", "StatelessWhile"}
