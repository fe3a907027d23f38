"""ONNX Slice -> TensorFlow (opsets 1, 10, 11, 13) with constant bounds as a plain strided slice.

onnx-tf's Slice builds its begin/end tensors from the input's dynamic shape through
``SparseToDense`` and ``SelectV2``. Graph mode computes them correctly, but XLA evaluates them
wrongly at compile time: the initial-state ``Slice`` of a 2-layer bidirectional ``nn.LSTM``
(``zeros[0:2]`` of a ``[4, B, H]`` tensor) came out whole inside AutoVC's compiled function,
and the LSTM's reshape of it failed. When ``starts``, ``ends``, ``axes`` and ``steps`` are known
at trace time (torch always exports them as constants) this handler writes Python slice
semantics, which ONNX's clamping rules are: ``x[start:end:step]`` per axis, constant begin/end/
strides with masks for open ends, so no bound depends on the input's shape. When only the axes
and (positive) steps are known and the starts/ends are computed in the graph (torch's ``chunk``
exports ends as ``(size + 1) / 2`` from the input's ``Shape``), :func:`dynamic_slice` clamps the
bounds with plain arithmetic, which XLA folds correctly (through onnx-tf's implementation the
first half of a 64-channel ``chunk(2)`` came out whole under XLA). Otherwise it uses onnx-tf's
implementation.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from onnx_tf.handlers.backend.slice import Slice as OnnxTfSlice
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

_LIMIT = 2**31 - 1  # bounds beyond int32 mean "to the end" (ONNX models use INT64_MAX/MIN)


def _bound(value: int, step: int, is_start: bool) -> int | None:
    """One ONNX start/end as a Python slice bound: None for an open end, else clamped to int32."""
    if value >= _LIMIT:
        return None if (step < 0) == is_start else _LIMIT
    if value <= -_LIMIT:
        return None if (step > 0) == is_start else -_LIMIT
    return value


def static_slice(
    x: tf.Tensor, starts: np.ndarray, ends: np.ndarray, axes: np.ndarray | None, steps: np.ndarray | None
) -> tf.Tensor:
    """``x`` sliced with constant ONNX bounds (Python slicing semantics, per axis)."""
    rank = x.shape.rank
    axes = range(len(starts)) if axes is None else [int(a) % rank for a in axes]
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    index = [slice(None)] * rank
    for axis, start, end, step in zip(axes, starts, ends, steps):
        index[axis] = slice(_bound(int(start), step, True), _bound(int(end), step, False), step)
    return x[tuple(index)]


def dynamic_slice(x: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor, axes: np.ndarray | None,
                  steps: np.ndarray | None) -> tf.Tensor:
    """``x`` sliced with ONNX bounds computed at run time, constant axes and positive steps: each
    bound is made non-negative (``+ size`` when negative) and clamped to ``[0, size]``."""
    rank = x.shape.rank
    axes = range(starts.shape[0]) if axes is None else [int(a) % rank for a in axes]
    steps = [1] * len(axes) if steps is None else [int(s) for s in steps]
    shape = tf.shape(x, out_type=tf.int64)
    begin, end, strides = [tf.zeros([], tf.int64)] * rank, [shape[i] for i in range(rank)], [1] * rank
    starts, ends = tf.cast(starts, tf.int64), tf.cast(ends, tf.int64)
    for k, (axis, step) in enumerate(zip(axes, steps)):
        size = shape[axis]
        begin[axis], end[axis] = (
            tf.clip_by_value(tf.where(bound < 0, bound + size, bound), 0, size) for bound in (starts[k], ends[k])
        )
        strides[axis] = step
    return tf.strided_slice(x, tf.stack(begin), tf.stack(end), tf.constant(strides, tf.int64))


@onnx_op("Slice")
class Slice(BackendHandler):
    """Slice 1 (bounds as attributes), 10, 11 and 13 (bounds as inputs)."""

    @classmethod
    def version_1(cls, node, **kwargs) -> list[tf.Tensor]:
        x = kwargs["tensor_dict"][node.inputs[0]]
        if x.shape.rank is None:
            return OnnxTfSlice.version_1(node, **kwargs)
        attrs = node.attrs
        return [static_slice(x, np.array(attrs["starts"]), np.array(attrs["ends"]), attrs.get("axes"), None)]

    @classmethod
    def version_10(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        x = tensor_dict[node.inputs[0]]
        names = list(node.inputs[1:5]) + [""] * (5 - len(node.inputs))  # starts, ends, axes, steps
        bounds = [tf.get_static_value(tensor_dict[name]) if name else None for name in names]
        if x.shape.rank is None:
            return OnnxTfSlice.version_10(node, **kwargs)
        if any(name and b is None for name, b in zip(names, bounds)):
            axes, steps = bounds[2:]
            known = tensor_dict[names[0]].shape.rank == 1 and tensor_dict[names[0]].shape[0] is not None
            known = known and all(not name or b is not None for name, b in zip(names[2:], (axes, steps)))
            if known and (steps is None or all(steps > 0)):
                return [dynamic_slice(x, tensor_dict[names[0]], tensor_dict[names[1]], axes, steps)]
            return OnnxTfSlice.version_10(node, **kwargs)
        return [static_slice(x, *bounds)]

    @classmethod
    def version_11(cls, node, **kwargs) -> list[tf.Tensor]:
        """Adds negative axes (handled in :func:`static_slice`)."""
        return cls.version_10(node, **kwargs)

    @classmethod
    def version_13(cls, node, **kwargs) -> list[tf.Tensor]:
        """Adds bfloat16."""
        return cls.version_10(node, **kwargs)
