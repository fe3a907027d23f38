"""One module per ONNX op. Every module here is imported by :func:`custom_ops.register`."""

from custom_ops import compat

compat.install()  # onnx-tf (which these modules import) needs the stand-ins first
