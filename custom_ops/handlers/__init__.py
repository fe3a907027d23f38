"""One module per ONNX op. Every module here is imported by :func:`custom_ops.register`."""
