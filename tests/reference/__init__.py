"""Independent numpy reference implementations of ONNX ops, written from the ONNX spec with
plain loops. They are the test oracles for the TensorFlow handlers in ``custom_ops`` and share
no code with them."""
