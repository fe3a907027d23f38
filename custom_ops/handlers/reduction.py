"""Shared behaviour of the ONNX Reduce* ops (ReduceSum, ReduceMean, ReduceMax, ...).

``axes`` is an attribute up to the opset where it became the optional second input (ReduceSum
at 13, the others at 18). Missing or empty axes reduce every axis, unless
``noop_with_empty_axes=1`` (input versions only), which returns the input unchanged (ReduceSumSquare:
its square, as ONNX's reference does). ``keepdims`` defaults to 1. Negative axes count from the end.

Axes read from a constant (an initializer or a Constant node) are resolved while the graph is
built; run-time axes choose between "all axes" and "these axes" in the graph (onnx-tf's mixin
used a Python ``if`` on a tensor, which needs AutoGraph, and the graph module that ``convert``
uses traces without it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf


def versions(*numbers: int) -> Callable[[type], type]:
    """Class decorator: a ``version_N`` classmethod for each N, all running ``_common`` (the
    Reduce* handlers differ only in which versions their op has)."""

    def add(cls: type) -> type:
        for number in numbers:
            setattr(cls, f"version_{number}", classmethod(lambda c, node, **kwargs: c._common(node, **kwargs)))
        return cls

    return add


class ReductionMixin:
    """A handler sets ``reduce = staticmethod(f)`` with ``f(x, axis, keepdims) -> y`` (``axis``
    None: every axis) and, where the no-op is not the identity, ``noop``."""

    reduce: Callable[[tf.Tensor, tf.Tensor | list[int] | None, bool], tf.Tensor]

    @staticmethod
    def noop(x: tf.Tensor) -> tf.Tensor:
        return x

    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        x = tensor_dict[node.inputs[0]]
        keepdims = bool(node.attrs.get("keepdims", 1))
        noop_when_empty = bool(node.attrs.get("noop_with_empty_axes", 0))
        if "axes" in node.attrs:
            axes = tf.constant(list(node.attrs["axes"]), tf.int64)
        elif len(node.inputs) > 1 and node.inputs[1]:
            given = tensor_dict[node.inputs[1]]
            # read a constant's value before reshaping it: get_static_value does not see through a
            # Reshape, and run-time axes give a result of unknown rank (a following Gemm fails)
            known = tf.get_static_value(given)
            if known is None:
                axes = tf.reshape(tf.cast(given, tf.int64), [-1])
            else:
                axes = tf.constant(np.reshape(known, [-1]).astype(np.int64))
        else:
            axes = tf.zeros([0], tf.int64)
        reduce = cls.reduce
        static = tf.get_static_value(axes)
        if static is not None or axes.shape[0] == 0:
            listed = [] if static is None else [int(a) for a in static]
            if listed:
                return [reduce(x, listed, keepdims)]
            return [cls.noop(x) if noop_when_empty else reduce(x, None, keepdims)]
        if noop_when_empty:
            return [
                tf.cond(tf.size(axes) > 0, lambda: reduce(x, axes, keepdims), lambda: cls.noop(x))
            ]
        # every axis when axes is empty: the first rank(x) of [axes, 0, 1, ...], not a tf.cond,
        # whose output XLA took as the false branch's (every axis) when it fixed the reduction
        # axes at compile time (axes computed from shapes, as in RMSNormalization's expansion)
        every_axis = tf.range(tf.cast(tf.rank(x), tf.int64))
        count = tf.size(axes)
        chosen = tf.concat([axes, every_axis], 0)[: tf.where(count > 0, count, tf.size(every_axis))]
        return [reduce(x, chosen, keepdims)]
