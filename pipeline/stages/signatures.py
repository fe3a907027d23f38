"""The names of the SavedModel signatures the ONNX -> TF stage writes (and LiteRT keeps)."""

SIGNATURE_KEY = "serving_default"
"""Graph mode: any shape, no compilation; also the LiteRT model's signature."""
XLA_SIGNATURE_KEY = "serving_xla"
"""The same graph compiled with XLA (``jit_compile``)."""
