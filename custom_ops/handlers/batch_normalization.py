"""ONNX BatchNormalization -> TensorFlow: inference and training mode, channels first (axis 1).

Layout: X is ``[N, C, D1, ..., Dk]`` (rank 2-5 in practice); scale, bias, mean and var are
``[C]``. Statistics are taken over every axis but 1.

Momentum and epsilon conventions (all frameworks use the *biased* batch variance to normalise):

============  ===========================================  =======  ======================
framework     running update                                epsilon  running_var uses
============  ===========================================  =======  ======================
ONNX          ``m * running + (1 - m) * batch``, m = 0.9    1e-5     biased batch variance
PyTorch       ``(1 - p) * running + p * batch``, p = 0.1    1e-5     unbiased, ``n / (n-1)``
Keras         ``m * running + (1 - m) * batch``, m = 0.99   1e-3     biased batch variance
============  ===========================================  =======  ======================

so ONNX momentum = 1 - PyTorch momentum (torch.onnx writes 0.9 for torch's 0.1), and Keras'
momentum has ONNX's meaning with a different default.

Training mode is ``training_mode=1`` from opset 14 on; at opset 9 (what torch.onnx emits for
opsets 9-13) it is a node that declares the optional outputs ``mean, var, saved_mean,
saved_var``. Y is normalised with the batch mean and the biased batch variance; the node
also returns ``running_mean = momentum * mean + (1 - momentum) * batch_mean`` and the
corresponding running_var. ``saved_mean`` is the batch mean and ``saved_var`` the inverse
standard deviation ``1 / sqrt(batch_var + epsilon)``, as onnxruntime and PyTorch's
``native_batch_norm`` return it.

Which batch variance enters running_var: the ONNX spec, its official node tests
(``test_batchnorm_*_training_mode``) and onnxruntime use the biased one; PyTorch's
``BatchNorm*d.train()`` updates its buffer with the unbiased one. The two are reconciled by
how torch.onnx exports a training-mode BatchNorm (legacy exporter,
``training=TrainingMode.TRAINING``): it writes the node with ``momentum = 1 - p`` and leaves
the running-stat outputs unconnected; they are neither graph outputs nor read by any node,
so torch's buffer update is not part of the exported graph. Every output such a graph does
have is identical under both conventions. The default is therefore the ONNX one, and
:func:`running_var_estimator` selects PyTorch's for callers that want the running-stat
outputs to reproduce torch's buffers (for example to continue training in TensorFlow).

Opsets 1, 6 and 7 (``is_test``/``spatial``) are served by onnx-tf's own implementation.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Literal

import tensorflow as tf
from onnx_tf.handlers.backend import batch_normalization as onnx_tf_batch_normalization
from onnx_tf.handlers.backend_handler import BackendHandler
from onnx_tf.handlers.handler import onnx_op

from custom_ops.support import UnsupportedOptionError

RunningVarEstimator = Literal["biased", "unbiased"]

_running_var_estimator: RunningVarEstimator = "biased"


@contextlib.contextmanager
def running_var_estimator(estimator: RunningVarEstimator) -> Iterator[None]:
    """Within this block, training-mode nodes update running_var with ``estimator``.

    ``"biased"`` (default) is the ONNX spec; ``"unbiased"`` reproduces PyTorch's buffers.
    The choice is read when onnx-tf traces the graph, i.e. at the first ``run()`` or
    ``export_graph()`` for an input signature, not at ``prepare()``.
    """
    global _running_var_estimator
    if estimator not in ("biased", "unbiased"):
        raise ValueError(f"estimator must be 'biased' or 'unbiased', not {estimator!r}")
    previous = _running_var_estimator
    _running_var_estimator = estimator
    try:
        yield
    finally:
        _running_var_estimator = previous


def _per_channel(param: tf.Tensor, rank: int, dtype: tf.DType) -> tf.Tensor:
    """``[C]`` -> ``[C, 1, ..., 1]``, which broadcasts against ``[N, C, D1, ...]``."""
    return tf.reshape(tf.cast(param, dtype), [-1] + [1] * (rank - 2))


def _rank(x: tf.Tensor) -> int:
    rank = x.shape.rank
    if rank is None or rank < 2:
        raise ValueError(f"BatchNormalization needs an input of known rank >= 2, not {x.shape}")
    return rank


def batch_norm_inference(
    x: tf.Tensor, scale: tf.Tensor, bias: tf.Tensor, mean: tf.Tensor, var: tf.Tensor, epsilon: float
) -> tf.Tensor:
    """``scale * (x - mean) / sqrt(var + epsilon) + bias`` per channel (axis 1)."""
    rank = _rank(x)
    inv_std = tf.math.rsqrt(tf.cast(var, x.dtype) + tf.cast(epsilon, x.dtype))
    multiplier = _per_channel(inv_std * tf.cast(scale, x.dtype), rank, x.dtype)
    return (x - _per_channel(mean, rank, x.dtype)) * multiplier + _per_channel(bias, rank, x.dtype)


def batch_norm_training(
    x: tf.Tensor,
    scale: tf.Tensor,
    bias: tf.Tensor,
    mean: tf.Tensor,
    var: tf.Tensor,
    momentum: float,
    epsilon: float,
    unbiased_running_var: bool,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Normalise ``x`` with its batch statistics.

    Returns ``(y, running_mean, running_var, batch_mean, batch_inv_std)``; the running
    statistics have the dtype of ``mean``/``var``, the others that of ``x``. Differentiable
    in every input. With ``unbiased_running_var`` the batch variance entering running_var is
    multiplied by ``n / (n - 1)``, n being the number of values per channel.
    """
    rank = _rank(x)
    axes = [0] + list(range(2, rank))
    batch_mean, batch_var = tf.nn.moments(x, axes)
    inv_std = tf.math.rsqrt(batch_var + tf.cast(epsilon, x.dtype))
    multiplier = _per_channel(inv_std * tf.cast(scale, x.dtype), rank, x.dtype)
    y = (x - _per_channel(batch_mean, rank, x.dtype)) * multiplier + _per_channel(bias, rank, x.dtype)

    running_var_update = tf.cast(batch_var, var.dtype)
    if unbiased_running_var:
        n = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), var.dtype)
        running_var_update = running_var_update * n / (n - 1)
    running_mean = momentum * mean + (1 - momentum) * tf.cast(batch_mean, mean.dtype)
    running_var = momentum * var + (1 - momentum) * running_var_update
    return y, running_mean, running_var, batch_mean, inv_std


@onnx_op("BatchNormalization")
class BatchNormalization(BackendHandler):
    """BatchNormalization 9, 14, 15 (inference and training mode); 1, 6, 7 via onnx-tf."""

    @classmethod
    def check_options(cls, node, since_version: int) -> None:
        """Versions 1-7 go through onnx-tf's handler, which implements only ``spatial=1``
        (per-channel statistics) and, before version 7, only ``is_test=1``."""
        if since_version < 9 and node.attrs.get("spatial", 1) != 1:
            raise UnsupportedOptionError.of("BatchNormalization", node.name, "spatial", node.attrs["spatial"], "1")
        if since_version < 7 and node.attrs.get("is_test", 0) != 1:
            raise UnsupportedOptionError.of(
                "BatchNormalization", node.name, "is_test", node.attrs.get("is_test", 0),
                "1 (training mode needs BatchNormalization 9 or later)",
            )

    @classmethod
    def _common(cls, node, training: bool, **kwargs) -> list[tf.Tensor]:
        tensor_dict = kwargs["tensor_dict"]
        x, scale, bias, mean, var = (tensor_dict[name] for name in node.inputs[:5])
        epsilon = node.attrs.get("epsilon", 1e-5)
        if not training:
            return [batch_norm_inference(x, scale, bias, mean, var, epsilon)]
        return list(
            batch_norm_training(
                x,
                scale,
                bias,
                mean,
                var,
                momentum=node.attrs.get("momentum", 0.9),
                epsilon=epsilon,
                unbiased_running_var=_running_var_estimator == "unbiased",
            )
        )

    @classmethod
    def version_1(cls, node, **kwargs) -> list[tf.Tensor]:
        return onnx_tf_batch_normalization.BatchNormalization.version_1(node, **kwargs)

    @classmethod
    def version_6(cls, node, **kwargs) -> list[tf.Tensor]:
        return onnx_tf_batch_normalization.BatchNormalization.version_6(node, **kwargs)

    @classmethod
    def version_7(cls, node, **kwargs) -> list[tf.Tensor]:
        return onnx_tf_batch_normalization.BatchNormalization.version_7(node, **kwargs)

    @classmethod
    def version_9(cls, node, **kwargs) -> list[tf.Tensor]:
        """Training mode iff the node declares the optional outputs (case #1 of the spec)."""
        return cls._common(node, training=len(node.outputs) > 1, **kwargs)

    @classmethod
    def version_14(cls, node, **kwargs) -> list[tf.Tensor]:
        """Outputs ``Y[, running_mean, running_var]``."""
        return cls._common(node, training=node.attrs.get("training_mode", 0) == 1, **kwargs)[:3]

    @classmethod
    def version_15(cls, node, **kwargs) -> list[tf.Tensor]:
        """As 14; scale/bias (T1) and mean/var (T2) may differ in dtype from X."""
        return cls._common(node, training=node.attrs.get("training_mode", 0) == 1, **kwargs)[:3]
