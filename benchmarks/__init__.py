"""Benchmarks of the AutoVC PyTorch -> ONNX -> TensorFlow conversion: ``python -m benchmarks``.

- ``conversion``: wall time and peak RSS of ``python -m pipeline export``, per stage.
- ``latency``: the whole model in torch eager, onnxruntime and the TF SavedModel.
- ``profile``: where one call's time goes, per op type, TF against onnxruntime.
- ``lstm``: one LSTM layer at AutoVC's sizes, our handler against onnxruntime and torch.

Backends are timed interleaved in one process, so their ratios hold on a busy machine; every
backend gets the same thread count. Results: ``benchmarks/results/latest.json`` and
``benchmarks/RESULTS.md``.
"""
