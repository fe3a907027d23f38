import os
import subprocess
import sys
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


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in a child process, as a user runs it."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=cwd, env=env,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def exported_autovc(tmp_path_factory) -> tuple[Path, str]:
    """One real ``python -m pipeline export`` (default model and input) shared by the tests that
    read its artefacts: the output folder and the command's stderr."""
    out = tmp_path_factory.mktemp("export") / "autovc"
    result = run_cli("export", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stderr
