"""Trainable TensorFlow export of AutoVC and the proof that it trains as PyTorch does.

* :func:`write_trainable` / :class:`TrainableAutoVC`: the Generator as a ``tf.Module`` whose
  variables carry the PyTorch names, with a training forward (BatchNorm on batch statistics,
  running statistics updated as PyTorch updates them), the AutoVC loss and an inference forward.
* :mod:`.losses`: PyTorch's ``mse_loss``/``l1_loss`` reductions and the AutoVC objective.
* :class:`TorchAdam`: ``torch.optim.Adam``'s update rule in TensorFlow.
* :func:`write_checkpoint`: the fine-tuned variables back to an ``autovc.ckpt``.
* :func:`train_parity`: PyTorch vs TF training, step by step, with a report.
"""

from .adam import AdamConfig, TorchAdam, torch_adam_state
from .batch import (
    TrainingBatch,
    default_training_batch,
    read_training_batch,
    training_batch,
)
from .losses import (
    LAMBDA_CD,
    LossTerms,
    autovc_loss,
    l1_loss,
    mse_loss,
    torch_autovc_loss,
)
from .results import TensorCheck, TrainParityResult
from .train_parity import train_parity
from .trainable import (
    TrainableAutoVC,
    TrainableGraph,
    TrainingExport,
    export_onnx,
    write_trainable,
)
from .weights import assign_state, tf_state_dict, write_checkpoint

__all__ = [
    "LAMBDA_CD",
    "AdamConfig",
    "LossTerms",
    "TensorCheck",
    "TorchAdam",
    "TrainParityResult",
    "TrainableAutoVC",
    "TrainableGraph",
    "TrainingBatch",
    "TrainingExport",
    "assign_state",
    "autovc_loss",
    "default_training_batch",
    "export_onnx",
    "l1_loss",
    "mse_loss",
    "read_training_batch",
    "tf_state_dict",
    "torch_adam_state",
    "torch_autovc_loss",
    "train_parity",
    "training_batch",
    "write_checkpoint",
    "write_trainable",
]
