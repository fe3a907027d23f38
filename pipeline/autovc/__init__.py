"""AutoVC in PyTorch: the generator, its weights, and the authors' speaker encoder."""

from .checkpoint import DEFAULT_HYPERPARAMETERS, ModelInfo, load_generator, random_generator
from .model import AutoVC, Decoder, Encoder, Generator, Postnet
from .speaker_encoder import D_VECTOR, load_speaker_encoder, speaker_embedding

__all__ = [
    "DEFAULT_HYPERPARAMETERS",
    "D_VECTOR",
    "AutoVC",
    "Decoder",
    "Encoder",
    "Generator",
    "ModelInfo",
    "Postnet",
    "load_generator",
    "load_speaker_encoder",
    "random_generator",
    "speaker_embedding",
]
