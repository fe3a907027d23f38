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
