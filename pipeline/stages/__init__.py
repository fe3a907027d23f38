"""The conversion stages: torch -> ONNX, ONNX -> TF SavedModel (the only place that drives onnx-tf), TF -> LiteRT."""
