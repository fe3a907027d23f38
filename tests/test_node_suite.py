"""benchmarks.node_suite: its comparison, and one real run of two official node tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import node_suite


def test_compare_checks_shape_dtype_values_and_sequences() -> None:
    want = {"y": np.array([1.0, np.nan], np.float32)}
    assert node_suite.compare(want, {"y": np.array([1.0005, np.nan], np.float32)}) is None
    assert "max abs" in node_suite.compare(want, {"y": np.array([1.1, np.nan], np.float32)})
    assert "dtype" in node_suite.compare(want, {"y": np.array([1.0, np.nan], np.float64)})
    assert "shape" in node_suite.compare(want, {"y": np.array([1.0], np.float32)})
    assert "missing" in node_suite.compare(want, {})
    sequence = {"s": [np.array([1, 2]), np.array([3])]}
    assert node_suite.compare(sequence, {"s": [np.array([1, 2]), np.array([3])]}) is None
    assert "values differ" in node_suite.compare(sequence, {"s": [np.array([1, 2]), np.array([4])]})


@pytest.mark.slow
def test_a_run_writes_counts_for_both_paths(tmp_path: Path) -> None:
    prefixes = ["test_averagepool_1d_default", "test_leakyrelu_default"]
    argv = [arg for p in prefixes for arg in ("--only", p)] + ["--out", str(tmp_path)]
    assert node_suite.main(argv) == 0
    document = json.loads((tmp_path / "node_suite.json").read_text())
    names = set(document["tests"])
    assert {"test_averagepool_1d_default", "test_leakyrelu_default"} <= names
    ours = document["totals"]["ours"]
    assert ours["tests"] == len(names) and ours["pass"] == len(names)
    # stock onnx-tf has no LeakyRelu-16
    assert document["tests"]["test_leakyrelu_default"]["stock"]["status"] == "unsupported"
    assert document["ops"]["LeakyRelu"]["ours"]["pass"] == 1
    assert (
        f"| `convert` (our handlers) | {len(names)} |" in (tmp_path / "node_suite.md").read_text()
    )
