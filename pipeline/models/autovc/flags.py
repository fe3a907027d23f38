"""AutoVC's command-line flags: its own (``--freq``, and ``--trainable`` with the ``trainable/``
folder it adds) and those of its input batch (``--mel``, ``--wav``, ...), keyed as
:func:`~pipeline.models.autovc.inputs.build_inputs` reads them. Imports neither torch nor TF:
``--help`` lists them."""

from __future__ import annotations

from pathlib import Path

from pipeline.models import LoadedModel
from pipeline.models.flags import ExtraStage, ModelFlag

DEFAULT_FREQ = 32
"""The code down-sampling factor of the authors' checkpoint (``--freq``)."""
DEFAULT_MAX_FRAMES = 8192  # about 131 s of audio at 16 kHz, hop 256


def _write_trainable(model: LoadedModel, directory: Path) -> None:
    """The generator as a trainable SavedModel (variables named after the PyTorch parameters and
    buffers) into ``directory``. Its export traces CPU tensors: a generator on the GPU is copied
    to the CPU, the one the parity stage runs stays where it is."""
    import copy

    from pipeline.training import write_trainable

    generator = model.module.generator
    on_cpu = all(p.device.type == "cpu" for p in [*generator.parameters(), *generator.buffers()])
    write_trainable(generator if on_cpu else copy.deepcopy(generator).cpu(), directory)


FREQ = ModelFlag("--freq", f"code down-sampling factor of the checkpoint (default {DEFAULT_FREQ})", DEFAULT_FREQ, {"type": int})
TRAINABLE = ModelFlag(
    "--trainable",
    "also write trainable/: a TF SavedModel to fine-tune, variables named after the PyTorch parameters, "
    "with train_forward, loss and inference (about 30 s and 115 MB more)",
    False, {"action": "store_true"}, stage=ExtraStage("write trainable", "trainable", _write_trainable),
)

MEL = ModelFlag("--mel", "mel-spectrogram (T, 80) float32; repeat for a batch of several lengths", [],
                {"type": Path, "action": "append", "metavar": "FILE.npy"}, dest="mel_files")
WAV = ModelFlag("--wav", "audio run through the AutoVC front-end (any rate, mono or stereo); repeatable", [],
                {"type": Path, "action": "append", "metavar": "FILE.wav"}, dest="wav_files")
EMB_SRC = ModelFlag("--emb-src", "source speaker embedding(s) (dim_emb,) or (B, dim_emb)", None,
                    {"type": Path, "metavar": "FILE.npy"})
EMB_TRG = ModelFlag("--emb-trg", "target speaker embedding(s); default: the source embedding (reconstruction)", None,
                    {"type": Path, "metavar": "FILE.npy"})
SPEAKER_ENCODER = ModelFlag("--speaker-encoder",
                            "compute source embeddings from each input with the AutoVC speaker encoder (model_b)", None,
                            {"type": Path, "metavar": "CKPT"})
MAX_FRAMES = ModelFlag("--max-frames", f"refuse inputs longer than this many frames (default {DEFAULT_MAX_FRAMES})",
                       DEFAULT_MAX_FRAMES, {"type": int})
INPUT_FLAGS = (MEL, WAV, EMB_SRC, EMB_TRG, SPEAKER_ENCODER, MAX_FRAMES)
