import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "autovc"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real AutoVC inputs that lie beside the checkout (``../shared/data/autovc``)."""
    if not (SHARED_DATA / "metadata.npz").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op thread for torch in tests: on a small shared CPU, OpenMP workers spinning for
    cores cost far more than they bring (a small export: 8-12 s with 2 threads, 1.4 s with 1)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
