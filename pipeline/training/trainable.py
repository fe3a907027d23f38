"""A trainable TensorFlow module built from ONNX graphs exported by PyTorch.

Export (:func:`export_onnx`, through :func:`pipeline.stages.onnx_export.export_to_bytes`): the legacy
TorchScript exporter with ``training=TrainingMode.TRAINING`` and ``do_constant_folding=False``.
Then

* every PyTorch parameter and buffer the forward reads stays an ONNX initializer named after
  it (``encoder.lstm.weight_ih_l0``, with the wrapper's attribute as prefix), and the gate
  re-ordering and concatenation that turn PyTorch's LSTM weights into ONNX's ``W``, ``R``,
  ``B`` stay ONNX ops (Slice, Concat, Unsqueeze) in the graph. The TF variables therefore
  have PyTorch's shapes and names, and gradients flow back through those ops to them;
* each BatchNorm becomes ``BatchNormalization(training_mode=1)`` with ONNX momentum
  ``1 - torch momentum`` and the outputs ``Y, running_mean, running_var``, which the exporter
  leaves unconnected. :class:`TrainableGraph` connects them: a later node that reads the same
  running statistics reads the updated ones (AutoVC's encoder runs twice per training step,
  as in PyTorch), and the last values are assigned to the buffer variables. PyTorch's running
  variance uses the unbiased batch variance, selected with the handler's
  :func:`~custom_ops.handlers.batch_normalization.running_var_estimator`.
  ``num_batches_tracked`` (not in the graph) grows by one per BatchNorm node run.

The inference graph is the same module exported in eval mode with BatchNorm kept
(``TrainingMode.PRESERVE``), reading the same variables.

Tracing in training mode runs the module's forward, which would update PyTorch's BatchNorm
buffers; the export therefore traces a deep copy.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import tensorflow as tf
import torch
from torch import nn

import custom_ops
from custom_ops.support import check_supported
from pipeline.models.autovc.model import N_MELS, AutoVC, Generator
from pipeline.models.autovc.spec import DYNAMIC_AXES, INPUT_NAMES, OUTPUT_NAMES
from pipeline.stages.onnx_export import export_to_bytes
from pipeline.stages.onnx_io import real_inputs
from pipeline.stages.signatures import SIGNATURE_KEY
from pipeline.stages.tf_convert import graph_inputs, tf_name, translate_graph

from .losses import LossTerms, autovc_loss

OPSET = 17
NUM_BATCHES_TRACKED = "num_batches_tracked"
RUNNING_MEAN = "running_mean"
GENERATOR_PREFIX = "generator."
"""The wrappers below hold the Generator as ``generator``: ONNX names carry this prefix."""
TRAIN_OUTPUTS = (*OUTPUT_NAMES, "codes_reconst")
INFERENCE_OUTPUTS = OUTPUT_NAMES


def export_onnx(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
    *,
    training: bool,
) -> onnx.ModelProto:
    """``module`` (a deep copy, so its buffers stay untouched) as an ONNX graph whose
    initializers keep the PyTorch names: train mode (``training``) or eval mode with BatchNorm
    nodes kept."""
    module = copy.deepcopy(module).train(training)
    with warnings.catch_warnings():
        _ignore_expected_export_warnings()
        exported = export_to_bytes(
            module,
            example,
            opset=OPSET,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            training=torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.PRESERVE,
            do_constant_folding=False,
        )
    model = onnx.load_from_string(exported)
    onnx.checker.check_model(model, full_check=True)
    return model


def _ignore_expected_export_warnings() -> None:
    """Silence what this export always says, and nothing else."""
    # The legacy exporter and its ``training`` option are deprecated; using them is deliberate.
    warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX")
    warnings.filterwarnings("ignore", message="Setting `training` to something other than default")
    warnings.filterwarnings("ignore", message="The feature will be removed", module=r"torch\.onnx")
    # The num_batches_tracked increment is dropped from the graph; TrainableGraph counts instead.
    warnings.filterwarnings("ignore", message="ONNX Preprocess - Removing mutation from node aten::add_")
    # No initial LSTM states are exported, so every batch size works.
    warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size")
    # Shape checks of nn.LSTM and of training-mode batch_norm, read in Python while tracing.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.nn\.(modules\.rnn|functional)")


@dataclass(frozen=True)
class TrainingExport:
    """What a :class:`TrainableGraph` is built from.

    ``state``: the PyTorch state dict as numpy arrays, keys without ``prefix``;
    ``parameters``: which of its keys are parameters (trainable); ``prefix``: what the ONNX
    initializer names add in front of the state-dict keys.
    """

    train: onnx.ModelProto
    inference: onnx.ModelProto
    state: dict[str, np.ndarray]
    parameters: tuple[str, ...]
    prefix: str = ""


def numpy_state(module: nn.Module) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """``module``'s state dict as numpy copies, and the names of its parameters."""
    state = {name: value.detach().cpu().numpy().copy() for name, value in module.state_dict().items()}
    return state, tuple(name for name, _ in module.named_parameters())


class TrainableGraph(tf.Module):
    """ONNX training and inference graphs over one set of ``tf.Variable``s named after the
    PyTorch state dict.

    ``parameters`` (trainable) and ``buffers`` (BatchNorm running statistics and
    ``num_batches_tracked``, not trainable) map PyTorch names to variables; each variable's
    ``name`` is the PyTorch name too. ``train_forward`` runs the training graph (BatchNorm on
    batch statistics) and assigns the updated running statistics; ``inference`` runs the
    eval-mode graph. Both take the graphs' inputs positionally, in graph order, and return the
    outputs by name. Every input axis the export declared dynamic stays dynamic.

    ``trainable_variables`` is stored as an attribute (the parameters, in state-dict order) so
    that it survives ``tf.saved_model.load``, whose objects are not ``tf.Module``s.
    """

    trainable_variables: tuple[tf.Variable, ...] = ()  # replaces tf.Module's property

    def __init__(self, export: TrainingExport, name: str = "trainable_graph") -> None:
        super().__init__(name=name)
        custom_ops.register()
        for model in (export.train, export.inference):
            check_supported(model)
            _check_initializers(model, export)
        self._prefix = export.prefix
        self._train_graph = export.train.graph
        self._train_opset = list(export.train.opset_import)
        self._inference_graph = export.inference.graph
        self._inference_opset = list(export.inference.opset_import)
        parameter_names = set(export.parameters)
        self.parameters = {
            key: tf.Variable(value, name=key, trainable=True)
            for key, value in export.state.items()
            if key in parameter_names
        }
        self.buffers = {
            key: tf.Variable(value, name=key, trainable=False)
            for key, value in export.state.items()
            if key not in parameter_names
        }
        self.trainable_variables = tuple(self.parameters.values())
        self.train_forward = tf.function(
            self._train_forward,
            input_signature=[i.spec() for i in graph_inputs(export.train)],
            autograph=False,
        )
        self.inference = tf.function(
            self._inference,
            input_signature=[i.spec() for i in graph_inputs(export.inference)],
            autograph=False,
        )

    def batchnorm_cancelled_biases(self) -> tuple[str, ...]:
        """Parameters the training loss cannot depend on: the bias of a Conv or Gemm whose output
        feeds only training-mode BatchNorm nodes, which subtract the batch mean and with it any
        per-channel constant. Their exact gradient is 0; float32 gives rounding noise instead."""
        consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self._train_graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node)
        found = []
        for node in self._train_graph.node:
            if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3:
                continue
            key = node.input[2][len(self._prefix) :]
            users = consumers.get(node.output[0], [])
            if key in self.parameters and users and all(
                _updates_running_stats(user) and user.input[0] == node.output[0] for user in users
            ):
                found.append(key)
        return tuple(dict.fromkeys(found))

    def _values(self) -> dict[str, tf.Tensor | tf.Variable]:
        return {self._prefix + key: var for key, var in {**self.parameters, **self.buffers}.items()}

    def _run(
        self, graph: onnx.GraphProto, opset: list, inputs: Sequence[tf.Tensor], values: dict
    ) -> dict[str, tf.Tensor]:
        """Translate ``graph`` node by node into ``values``; after a BatchNorm node that
        outputs running statistics, its statistics' names are rebound to the updated values."""
        values.update(zip((value.name for value in real_inputs(graph)), inputs))
        translate_graph(graph, opset, values, _rebind_running_stats)
        return {tf_name(o.name): tf.identity(values[o.name], name=tf_name(o.name)) for o in graph.output}

    def _train_forward(self, *inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        from custom_ops.handlers.batch_normalization import running_var_estimator

        values = self._values()
        with running_var_estimator("unbiased"):
            outputs = self._run(self._train_graph, self._train_opset, inputs, values)
        updates = []
        for node in self._train_graph.node:
            if _updates_running_stats(node):
                key = node.input[3][len(self._prefix) :]
                tracked = key[: -len(RUNNING_MEAN)] + NUM_BATCHES_TRACKED
                if tracked in self.buffers:
                    updates.append(self.buffers[tracked].assign_add(tf.ones([], tf.int64)))
        for key, var in self.buffers.items():
            value = values[self._prefix + key]
            if value is not var:
                updates.append(var.assign(value))
        with tf.control_dependencies(updates):
            return {name: tf.identity(value) for name, value in outputs.items()}

    def _inference(self, *inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._run(self._inference_graph, self._inference_opset, inputs, self._values())


def _updates_running_stats(node: onnx.NodeProto) -> bool:
    """A training-mode BatchNormalization node that outputs running mean and variance."""
    return node.op_type == "BatchNormalization" and len(node.output) >= 3 and all(node.output[1:3])


def _rebind_running_stats(node: onnx.NodeProto, results: list, values: dict) -> None:
    """After such a node, its statistics' input names hold the updated values."""
    if _updates_running_stats(node):
        values[node.input[3]] = results[1]
        values[node.input[4]] = results[2]


def _check_initializers(model: onnx.ModelProto, export: TrainingExport) -> None:
    """Every initializer must be a state-dict entry: otherwise a weight would be frozen."""
    unknown = [
        init.name
        for init in model.graph.initializer
        if not init.name.startswith(export.prefix) or init.name[len(export.prefix) :] not in export.state
    ]
    if unknown:
        raise ValueError(f"ONNX initializers that are not PyTorch state entries: {unknown[:5]}")


class _ReconstructionStep(nn.Module):
    """The forward of one AutoVC training step (the authors' ``solver_encoder.py``): the
    self-reconstruction ``G(x, emb, emb)`` and the re-encoding of its postnet output."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(
        self, mel: torch.Tensor, emb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mel_decoder, mel_postnet, codes = self.generator(mel, emb, emb)
        return mel_decoder, mel_postnet, codes, self.generator.encoder(mel_postnet, emb)


def export_autovc_training(generator: Generator) -> TrainingExport:
    """The training graph (inputs ``mel`` (B, T, 80) with T a multiple of ``freq`` and ``emb``;
    outputs :data:`TRAIN_OUTPUTS`) and the inference graph (:class:`AutoVC`, any T; inputs
    ``mel``, ``emb_src``, ``emb_trg``; outputs :data:`INFERENCE_OUTPUTS`) of ``generator``."""
    batch, frames = 2, 2 * generator.freq
    mel = torch.zeros(batch, frames, N_MELS)
    emb = torch.zeros(batch, generator.dim_emb)
    train = export_onnx(
        _ReconstructionStep(generator),
        (mel, emb),
        ("mel", "emb"),
        TRAIN_OUTPUTS,
        {"mel": DYNAMIC_AXES["mel"], "emb": DYNAMIC_AXES["emb_src"]},
        training=True,
    )
    inference = export_onnx(
        AutoVC(generator).eval(),
        (mel, emb, emb),
        INPUT_NAMES,
        INFERENCE_OUTPUTS,
        {name: DYNAMIC_AXES[name] for name in INPUT_NAMES},
        training=False,
    )
    state, parameters = numpy_state(generator)
    return TrainingExport(train, inference, state, parameters, GENERATOR_PREFIX)


class TrainableAutoVC(TrainableGraph):
    """AutoVC's Generator as a trainable TF module.

    * ``train_forward(mel, emb)`` -> ``mel_decoder``, ``mel_postnet``, ``codes``,
      ``codes_reconst`` (BatchNorm on batch statistics; running statistics updated).
      T must be a multiple of ``freq``.
    * ``loss(mel, emb)`` -> the AutoVC objective's terms (:func:`~.losses.autovc_loss`), after
      ``train_forward``; differentiate ``loss(...)["loss"]`` w.r.t. ``trainable_variables``.
    * ``inference(mel, emb_src, emb_trg)`` -> ``mel_decoder``, ``mel_postnet``, ``codes``
      (eval mode, any T), also the ``serving_default`` signature of the SavedModel.
    """

    def __init__(self, generator: Generator) -> None:
        super().__init__(export_autovc_training(generator), name="trainable_autovc")
        self.freq = generator.freq
        self.loss = tf.function(
            self._loss, input_signature=self.train_forward.input_signature, autograph=False
        )

    def _loss(self, mel: tf.Tensor, emb: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = self.train_forward(mel, emb)
        terms: LossTerms = autovc_loss(mel, *(outputs[name] for name in TRAIN_OUTPUTS))
        return terms.as_dict()


def write_trainable(generator: Generator, out_dir: Path) -> TrainableAutoVC:
    """Write ``generator`` as a trainable SavedModel into ``out_dir`` (must not exist).

    Loaded with ``tf.saved_model.load``: ``train_forward``, ``loss``, ``inference`` and the
    ``serving_default`` signature (= ``inference``); ``parameters`` and ``buffers`` map PyTorch
    names to the variables; ``trainable_variables`` are the parameters.
    """
    module = TrainableAutoVC(generator)
    serving = module.inference.get_concrete_function()
    tf.saved_model.save(module, str(out_dir), signatures={SIGNATURE_KEY: serving})
    return module
