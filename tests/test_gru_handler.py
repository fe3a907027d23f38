"""What only the GRU handler (``custom_ops/handlers/gru.py``) is tested with: the ``convert`` path
on a torch-exported GRU encoder. The tests it shares with the LSTM and RNN handlers are in
``test_recurrent_handlers.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from recurrent_models import export_torch

from pipeline.stages.tf_convert import OnnxGraphModule, run_saved_model, write_saved_model


class _GruEncoder(torch.nn.Module):
    """A 2-layer bidirectional ``nn.GRU`` and a Linear on its output."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(20, 24, 2, batch_first=True, bidirectional=True)
        self.linear = torch.nn.Linear(48, 8)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.linear(self.gru(mel)[0])


def test_saved_model_of_exported_gru_encoder(tmp_path: Path) -> None:
    """The ``convert`` path (graph module -> SavedModel -> loaded and run) on a torch-exported
    GRU encoder with dynamic batch and time: torch to 1e-5 at two other shapes."""
    torch.manual_seed(12)
    module = _GruEncoder().eval()
    model = export_torch(module, (torch.randn(2, 5, 20),), ["x"], batch_first=True, output_names=["output"])
    write_saved_model(OnnxGraphModule(model), tmp_path / "saved_model")
    for batch, steps in [(1, 3), (3, 60)]:
        x = torch.randn(batch, steps, 20)
        with torch.no_grad():
            want = module(x).numpy()
        got = run_saved_model(tmp_path / "saved_model", {"x": x.numpy()})["output"]
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
