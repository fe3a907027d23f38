"""Which runtime the handlers build a graph for, read by a handler while it is traced.

``"graph"`` (the default) is TensorFlow's graph executor: any TF op with a CPU/GPU kernel, the
fastest choice per op (e.g. the fused ``BlockLSTM`` kernel). ``"xla"`` is a function compiled
with ``tf.function(jit_compile=True)``: only ops with XLA kernels, shapes XLA can infer.
``"tflite"`` is the LiteRT converter with builtin ops only: no TensorArray/TensorList, no
Flex ops. A handler that builds the same graph for every target never reads this.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Literal

Target = Literal["graph", "xla", "tflite"]
TARGETS: tuple[Target, ...] = ("graph", "xla", "tflite")

_current: contextvars.ContextVar[Target] = contextvars.ContextVar("lowering_target", default="graph")


def target() -> Target:
    """The runtime the graph being traced is for."""
    return _current.get()


@contextlib.contextmanager
def lowering(for_target: Target) -> Iterator[None]:
    """Trace handlers for ``for_target`` inside this block."""
    if for_target not in TARGETS:
        raise ValueError(f"unknown lowering target {for_target!r}; known: {', '.join(TARGETS)}")
    token = _current.set(for_target)
    try:
        yield
    finally:
        _current.reset(token)
