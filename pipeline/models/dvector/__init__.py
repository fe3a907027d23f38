"""AutoVC's speaker encoder (the authors' ``D_VECTOR``) as a model of its own: mel -> unit-norm
speaker embedding. The module lives with AutoVC (:mod:`pipeline.models.autovc.speaker_encoder`),
which computes its input embeddings with it; this package is its export spec."""
