"""How each ONNX graph input and output crosses a SavedModel signature.

A signature takes and returns tensors keyed by name. TF 2.21 can return a ``tf.RaggedTensor``
from one (the SignatureDef records it as a composite tensor that ``tf.saved_model.load``
rebuilds), but it takes a ragged *input* as two tensors with made-up names (``x`` and ``x_1``),
nothing in a signature can be absent, and TF Serving, the C API and LiteRT read plain named
tensors only. So every value is carried as plain tensors named after it (:func:`tf_name` of its
ONNX name):

- a tensor ``x``: ``x``;
- a sequence ``s`` (onnx-tf holds one as a ``tf.RaggedTensor`` whose rows are the elements):
  ``s``, its elements concatenated along their first axis, and ``s__lengths`` (int64, one per
  element), each element's size on that axis. Element ``i`` is
  ``s[sum(lengths[:i]):sum(lengths[:i + 1])]``; in TensorFlow
  ``tf.RaggedTensor.from_row_lengths(s, s__lengths)`` is the sequence. The elements must be at
  least 1-D and agree on every other axis (what such a RaggedTensor holds);
- an optional output ``o``: its element as above (``o``, and ``o__lengths`` for a sequence) and
  ``o__has_element`` (bool scalar); an empty one carries a zero-size ``o``. onnx-tf decides
  whether an optional is empty when it traces the graph (an empty one is Python ``None``), so
  an optional *input* is always present: the signature takes its element alone, and an empty
  optional cannot be fed.

The suffixes make a signature self-describing: ``s__lengths`` marks ``s`` as a sequence and
``o__has_element`` marks ``o`` as optional, so :func:`decode_outputs` needs the signature's
outputs alone. :func:`check_names` refuses a graph whose values would collide on these names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import tensorflow as tf

from pipeline.runtime.errors import UsageError

LENGTHS = "__lengths"
"""Suffix of a sequence's element lengths."""
HAS_ELEMENT = "__has_element"
"""Suffix of an optional output's presence flag."""


def tf_name(onnx_name: str) -> str:
    """A SavedModel signature needs identifier-like names; ONNX allows ``input.1`` or ``a:0``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", onnx_name)
    return name if name[:1].isalpha() else f"t_{name}"


@dataclass(frozen=True)
class Carried:
    """What a signature carries for one graph value: its tensor type (a sequence's or an
    optional's element type), and whether it is a sequence of such tensors, an optional, or both."""

    name: str
    tensor: onnx.TypeProto.Tensor
    sequence: bool = False
    optional: bool = False

    @classmethod
    def of(cls, value: onnx.ValueInfoProto) -> Carried:
        """Raises :class:`UsageError` for a type a signature cannot carry (a map, a sparse tensor,
        a sequence of sequences)."""
        kind = value.type
        optional = kind.HasField("optional_type")
        if optional:
            kind = kind.optional_type.elem_type
        sequence = kind.HasField("sequence_type")
        if sequence:
            kind = kind.sequence_type.elem_type
        if not kind.HasField("tensor_type"):
            raise UsageError(
                f"graph value '{value.name}' is {onnx.helper.printable_type(value.type)}: a SavedModel "
                "signature carries tensors, sequences of tensors and optionals of those only"
            )
        return cls(value.name, kind.tensor_type, sequence, optional)

    @property
    def key(self) -> str:
        """The signature name of the value (of its elements, for a sequence)."""
        return tf_name(self.name)

    def keys(self, output: bool) -> list[str]:
        """Every signature name of the value, as a graph ``output`` or input."""
        return [
            self.key,
            *([self.key + LENGTHS] if self.sequence else []),
            *([self.key + HAS_ELEMENT] if self.optional and output else []),
        ]

    def element_shape(self) -> tuple[int | None, ...] | None:
        """The (element) tensor's shape, None where a dim is unknown; None when the rank is."""
        if not self.tensor.HasField("shape"):
            return None
        return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in self.tensor.shape.dim)

    def dtype(self) -> tf.DType:
        from onnx_tf.common.data_type import onnx2tf

        return onnx2tf(self.tensor.elem_type)


def check_names(inputs: Iterable[Carried], outputs: Iterable[Carried]) -> None:
    """Raise :class:`UsageError` when two signature names of the graph's values coincide, or a
    value's own name ends in one of the suffixes (reserved, so that a signature describes itself)."""
    inputs, outputs = list(inputs), list(outputs)
    for value in [*inputs, *outputs]:
        if value.key.endswith((LENGTHS, HAS_ELEMENT)):
            raise UsageError(
                f"graph value '{value.name}': signature names ending in {LENGTHS} or {HAS_ELEMENT} "
                "are reserved for the parts of sequences and optionals; rename it"
            )
    for side, values, output in (("input", inputs, False), ("output", outputs, True)):
        counts = Counter(key for value in values for key in value.keys(output))
        clashes = sorted(key for key, count in counts.items() if count > 1)
        if clashes:
            raise UsageError(f"graph {side}s share the signature name(s) {', '.join(clashes)}; rename them")


# --- inside the traced graph ------------------------------------------------------------------


def sequence_value(values: tf.Tensor, lengths: tf.Tensor) -> tf.RaggedTensor:
    """The sequence a signature's ``s`` and ``s__lengths`` carry, as onnx-tf's handlers hold one."""
    return tf.RaggedTensor.from_row_lengths(values, lengths)


def output_tensors(value: Carried, result: Any) -> dict[str, tf.Tensor]:
    """Graph output ``value``'s tensors under their signature names, from onnx-tf's ``result``: a
    tensor, a sequence (a RaggedTensor, or a list of tensors) or, for an empty optional, None."""
    tensors: dict[str, tf.Tensor] = {}
    if value.optional:
        tensors[value.key + HAS_ELEMENT] = tf.constant(result is not None)
        if result is None:
            rank = max(len(value.element_shape() or ()), 1)  # at least 1-D, so that it can be empty
            result = [] if value.sequence else tf.zeros([0] * rank, value.dtype())
    if value.sequence:
        tensors[value.key], tensors[value.key + LENGTHS] = _sequence_tensors(value, result)
    else:
        tensors[value.key] = result
    return {key: tf.identity(tensor, name=key) for key, tensor in sorted(tensors.items())}


def _sequence_tensors(value: Carried, result: Any) -> tuple[tf.Tensor, tf.Tensor]:
    """A sequence's elements concatenated along axis 0, and their lengths on it."""
    if isinstance(result, tf.RaggedTensor):
        if isinstance(result.values, tf.RaggedTensor):
            raise UsageError(f"graph output '{value.name}': elements that differ beyond their first axis are not supported")
        return result.values, result.row_lengths()
    if not result:
        shape = value.element_shape()
        inner = [0 if d is None else d for d in shape[1:]] if shape else []
        return tf.zeros([0, *inner], value.dtype()), tf.zeros([0], tf.int64)
    lengths = tf.stack([tf.shape(element, out_type=tf.int64)[0] for element in result])
    return tf.concat(list(result), axis=0), lengths


# --- numpy values in and out ------------------------------------------------------------------


def signature_feeds(inputs: Mapping[str, Any], specs: Mapping[str, tf.TensorSpec]) -> dict[str, tf.Tensor]:
    """ONNX-named input values (an array; a list of arrays for a sequence) as the signature's
    tensors, of the dtypes of its input ``specs``."""
    arrays: dict[str, Any] = {}
    for name, value in inputs.items():
        key = tf_name(name)
        if key not in specs:
            raise UsageError(f"'{name}' is not an input of the signature (its inputs: {', '.join(sorted(specs))})")
        if value is None:
            raise UsageError(f"input '{name}' is an empty optional: a signature takes an optional input's element, "
                             "so an empty one is not supported")
        if isinstance(value, (list, tuple)):
            arrays[key], arrays[key + LENGTHS] = _sequence_arrays(name, value, specs[key].dtype.as_numpy_dtype)
        else:
            arrays[key] = value
    return {key: tf.constant(array, dtype=specs[key].dtype) for key, array in arrays.items()}


def _sequence_arrays(name: str, elements: list | tuple, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    elements = [np.asarray(element) for element in elements]
    if not elements:
        return np.zeros([0], dtype), np.zeros([0], np.int64)
    if any(element.ndim == 0 for element in elements) or len({element.shape[1:] for element in elements}) > 1:
        raise UsageError(f"sequence input '{name}': elements of shapes {[list(e.shape) for e in elements]} are not "
                         "supported (a signature carries elements of rank >= 1 that agree on every axis but the first)")
    return np.concatenate(elements), np.array([len(element) for element in elements], np.int64)


def decode_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """A signature's outputs (tensors or arrays) as ONNX values keyed by signature name: an
    array for a tensor, a list of arrays for a sequence, None for an empty optional."""
    arrays = {key: np.asarray(value) for key, value in outputs.items()}
    decoded: dict[str, Any] = {}
    for key, array in arrays.items():
        if any(key.endswith(suffix) and key.removesuffix(suffix) in arrays for suffix in (LENGTHS, HAS_ELEMENT)):
            continue
        if key + HAS_ELEMENT in arrays and not arrays[key + HAS_ELEMENT]:
            decoded[key] = None
        elif key + LENGTHS in arrays:
            ends = np.cumsum(arrays[key + LENGTHS])
            decoded[key] = [array[end - length:end] for end, length in zip(ends, arrays[key + LENGTHS])]
        else:
            decoded[key] = array
    return decoded
