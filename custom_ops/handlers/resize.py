"""ONNX Resize -> TensorFlow, opsets 10, 11, 13, 18, 19, for inputs of any rank (onnx-tf's
handler takes 4-D inputs only and has no 18/19).

Separable: each resized axis in turn maps every output position ``x`` to an input coordinate
``x_original`` (``coordinate_transformation_mode``; length L, output length O, scale s):

- ``half_pixel`` (default): ``(x + 0.5) / s - 0.5``
- ``half_pixel_symmetric`` (19): ``half_pixel`` shifted by ``L / 2 * (1 - O / (s * L))``
- ``pytorch_half_pixel``: ``(x + 0.5) / s - 0.5`` if ``s * L > 1``, else 0
- ``align_corners``: ``x * (L - 1) / (s * L - 1)``, or 0 if ``s * L == 1``
- ``asymmetric`` (the only one of opset 10): ``x / s``
- ``tf_half_pixel_for_nn`` (11, 13): ``(x + 0.5) / s``
- ``tf_crop_and_resize``: ``roi_start * (L - 1) + x * (roi_end - roi_start) * (L - 1) / (s * L - 1)``;
  coordinates outside ``[0, L - 1]`` give ``extrapolation_value``

and interpolates there, reading past the ends as the edge value: ``nearest`` (``nearest_mode``
round_prefer_floor (default; opset 10: floor), round_prefer_ceil, floor, ceil), ``linear``
(2 taps) or ``cubic`` (4 taps, ``cubic_coeff_a`` default -0.75; ``exclude_outside`` drops the
taps outside the input and renormalises). Output sizes: ``sizes``, or ``floor(L * s)``.
Opset 18 adds ``axes`` (which axes ``scales``/``sizes``/``roi`` cover) and
``keep_aspect_ratio_policy`` (``not_larger``/``not_smaller``: one scale for every listed axis,
``O = round_half_up(s * L)``) and ``antialias``: when downsampling (s < 1), the linear or cubic
filter is stretched by ``1 / s`` and its taps renormalised.
Coordinates are computed in float32, as onnxruntime does.
"""

from __future__ import annotations

import tensorflow as tf
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from custom_ops.support import UnsupportedOptionError, checked_option

MODES = ("nearest", "linear", "cubic")
COORDINATE_MODES = (
    "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
    "tf_half_pixel_for_nn", "tf_crop_and_resize",
)  # fmt: skip
KEEP_ASPECT_RATIO_POLICIES = ("stretch", "not_larger", "not_smaller")


def _attr(node, name: str, default):
    value = node.attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else value


def _given(tensor_dict: dict, name: str) -> tf.Tensor | None:
    """An optional input: None when left out or empty."""
    if not name:
        return None
    value = tensor_dict[name]
    if value.shape.rank is not None and value.shape.num_elements() == 0:
        return None
    return value


class _Axis:
    """Coordinates of one resized axis: input length L, output length O, scale s (float32)."""

    def __init__(self, length: tf.Tensor, out: tf.Tensor, scale: tf.Tensor) -> None:
        self.length, self.out, self.scale = length, out, scale

    def original(self, mode: str, roi: tuple[tf.Tensor, tf.Tensor] | None) -> tf.Tensor:
        x = tf.range(tf.cast(self.out, tf.float32))
        length = tf.cast(self.length, tf.float32)
        resized = self.scale * length  # the unrounded output length
        if mode == "half_pixel":
            return (x + 0.5) / self.scale - 0.5
        if mode == "half_pixel_symmetric":
            offset = length / 2 * (1 - tf.cast(self.out, tf.float32) / resized)
            return offset + (x + 0.5) / self.scale - 0.5
        if mode == "pytorch_half_pixel":
            return tf.where(resized > 1, (x + 0.5) / self.scale - 0.5, tf.zeros_like(x))
        if mode == "align_corners":
            return tf.where(
                resized > 1, x * (length - 1) / tf.maximum(resized - 1, 1e-30), tf.zeros_like(x)
            )
        if mode == "asymmetric":
            return x / self.scale
        if mode == "tf_half_pixel_for_nn":
            return (x + 0.5) / self.scale
        # tf_crop_and_resize, the last of COORDINATE_MODES (Resize.check_options refuses others)
        start, end = roi
        span = (end - start) * (length - 1)
        return start * (length - 1) + tf.where(
            resized > 1,
            x * span / tf.maximum(resized - 1, 1e-30),
            tf.fill(tf.shape(x), span / 2),
        )


# nearest_mode: the input index a coordinate rounds to
NEAREST_MODES = {
    "round_prefer_floor": lambda coordinate: tf.math.ceil(coordinate - 0.5),
    "round_prefer_ceil": lambda coordinate: tf.math.floor(coordinate + 0.5),
    "floor": tf.math.floor,
    "ceil": tf.math.ceil,
}


def _kernel(mode: str, a: float) -> tuple[float, object]:
    """``(support radius, weight of a tap at distance t)`` of the linear or cubic filter."""
    if mode == "linear":
        return 1.0, lambda t: tf.maximum(1 - tf.abs(t), 0)

    def cubic(t: tf.Tensor) -> tf.Tensor:
        t = tf.abs(t)
        near = ((a + 2) * t - (a + 3)) * t * t + 1
        far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
        return tf.where(t <= 1, near, tf.where(t < 2, far, tf.zeros_like(t)))

    return 2.0, cubic


def _resize_axis(x: tf.Tensor, axis: int, axis_info: _Axis, node, roi) -> tf.Tensor:
    mode = _attr(node, "mode", "nearest")
    transform = _attr(node, "coordinate_transformation_mode", "half_pixel")
    coordinate = axis_info.original(transform, roi)
    last = tf.cast(axis_info.length, tf.int32) - 1
    rank = x.shape.rank

    def along(values: tf.Tensor) -> tf.Tensor:
        return tf.reshape(values, [1] * axis + [-1] + [1] * (rank - axis - 1))

    if mode == "nearest":
        rounding = NEAREST_MODES[_attr(node, "nearest_mode", "round_prefer_floor")]
        index = tf.cast(rounding(coordinate), tf.int32)
        y = tf.gather(x, tf.clip_by_value(index, 0, last), axis=axis)
    else:  # linear or cubic (Resize.check_options refuses any other mode)
        radius, weight = _kernel(mode, float(node.attrs.get("cubic_coeff_a", -0.75)))
        # antialias: when downsampling, the filter is stretched by 1 / scale
        stretch = tf.constant(1.0)
        if node.attrs.get("antialias", 0):
            stretch = tf.minimum(axis_info.scale, 1.0)
        start = tf.cast(tf.math.floor(-radius / stretch), tf.int32) + 1
        offsets = tf.range(start, 2 - start)  # the taps around each coordinate: [n]
        base = tf.math.floor(coordinate)
        indices = tf.cast(base, tf.int32)[:, None] + offsets[None, :]  # [O, n]
        distance = tf.cast(offsets, tf.float32)[None, :] - (coordinate - base)[:, None]
        weights = weight(distance * stretch)
        if node.attrs.get("exclude_outside", 0):
            inside = (indices >= 0) & (indices <= last)
            weights = tf.where(inside, weights, tf.zeros_like(weights))
        weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
        values = tf.gather(x, tf.clip_by_value(indices, 0, last), axis=axis)  # [.., O, n, ..]
        spread = tf.reshape(
            weights, [1] * axis + [-1, tf.shape(offsets)[0]] + [1] * (rank - axis - 1)
        )
        y = tf.reduce_sum(tf.cast(values, tf.float32) * spread, axis=axis + 1)
        y = tf.cast(tf.round(y) if x.dtype.is_integer else y, x.dtype)
    if transform == "tf_crop_and_resize":
        outside = (coordinate < 0) | (coordinate > tf.cast(last, tf.float32))
        fill = tf.cast(node.attrs.get("extrapolation_value", 0.0), y.dtype)
        y = tf.where(along(outside), tf.fill(tf.shape(y), fill), y)
    return y


def _scale_inputs(node, since_version: int) -> list[str]:
    """The names of the node's ``scales`` and ``sizes`` inputs ("" when left out; version 10
    has only ``scales``)."""
    names = list(node.inputs) + [""] * 4
    return names[1:2] if since_version == 10 else names[2:4]


def _no_scales_or_sizes(node, since_version: int) -> UnsupportedOptionError:
    names = _scale_inputs(node, since_version)
    if since_version == 10:
        return UnsupportedOptionError.of("Resize", node.name, "input scales", names[0], "a non-empty tensor")
    return UnsupportedOptionError.of("Resize", node.name, "inputs (scales, sizes)", tuple(names), "one of them, non-empty")


@onnx_op("Resize")
class Resize(BackendHandler):
    @classmethod
    def check_options(cls, node, since_version: int) -> None:
        """Every attribute value is one this handler implements, and ``scales`` or ``sizes`` is
        given (an input given as an empty tensor is only seen when translating)."""
        checked_option(node, "mode", "nearest", MODES)
        checked_option(node, "coordinate_transformation_mode", "half_pixel", COORDINATE_MODES)
        checked_option(node, "nearest_mode", "round_prefer_floor", NEAREST_MODES)
        checked_option(node, "keep_aspect_ratio_policy", "stretch", KEEP_ASPECT_RATIO_POLICIES)
        if not any(_scale_inputs(node, since_version)):
            raise _no_scales_or_sizes(node, since_version)

    @classmethod
    def _common(cls, node, **kwargs) -> list[tf.Tensor]:
        cls.check_options(node, cls.SINCE_VERSION)  # also for onnx-tf's prepare(), which does not check
        tensor_dict = kwargs["tensor_dict"]
        x = tensor_dict[node.inputs[0]]
        rank = x.shape.rank
        names = list(node.inputs) + [""] * 4
        if cls.SINCE_VERSION == 10:
            roi, scales, sizes = None, _given(tensor_dict, names[1]), None
        else:
            roi, scales, sizes = (_given(tensor_dict, n) for n in names[1:4])
        axes = [a % rank for a in node.attrs.get("axes", range(rank))]
        lengths = tf.shape(x)
        policy = _attr(node, "keep_aspect_ratio_policy", "stretch")
        if sizes is not None:
            out = tf.cast(tf.reshape(sizes, [-1]), tf.int32)
            scale = tf.cast(out, tf.float32) / tf.cast(tf.gather(lengths, axes), tf.float32)
            if policy in ("not_larger", "not_smaller"):
                pick = tf.reduce_min if policy == "not_larger" else tf.reduce_max
                scale = tf.fill(tf.shape(scale), pick(scale))
                out = tf.cast(
                    tf.floor(scale * tf.cast(tf.gather(lengths, axes), tf.float32) + 0.5), tf.int32
                )
        elif scales is not None:
            scale = tf.cast(tf.reshape(scales, [-1]), tf.float32)
            out = tf.cast(scale * tf.cast(tf.gather(lengths, axes), tf.float32), tf.int32)
        else:
            raise _no_scales_or_sizes(node, cls.SINCE_VERSION)
        if roi is not None:
            roi = tf.cast(tf.reshape(roi, [2, -1]), tf.float32)
        static_scale = tf.get_static_value(scale)
        transform = _attr(node, "coordinate_transformation_mode", "half_pixel")
        if cls.SINCE_VERSION == 10:
            node.attrs.setdefault("coordinate_transformation_mode", "asymmetric")
            node.attrs.setdefault("nearest_mode", "floor")
            transform = "asymmetric"
        y = x
        for position, axis in enumerate(axes):
            if (
                static_scale is not None
                and static_scale[position] == 1
                and transform != "tf_crop_and_resize"
            ):
                continue
            axis_roi = None if roi is None else (roi[0, position], roi[1, position])
            info = _Axis(lengths[axis], out[position], scale[position])
            y = _resize_axis(y, axis, info, node, axis_roi)
        return [y]

    @classmethod
    def version_10(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_11(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_13(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_18(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)

    @classmethod
    def version_19(cls, node, **kwargs) -> list[tf.Tensor]:
        return cls._common(node, **kwargs)
