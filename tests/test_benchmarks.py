"""The benchmark machinery (``python -m benchmarks``) on tiny real inputs: timing order,
statistics, stage attribution of the conversion benchmark, and one small LSTM run rendered
to markdown. The numbers themselves belong to the benchmark, not to these tests."""

from __future__ import annotations

import pytest

from benchmarks import conv, conversion, lstm, report
from benchmarks.common import Stats, interleaved, machine, paired_ratio


def test_interleaved_rotates_the_order_and_times_every_round() -> None:
    calls: list[str] = []
    functions = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = interleaved(functions, repeats=3, warmup=1)
    assert calls == list("abc" + "abc" + "bca" + "cab")
    assert {name: len(t) for name, t in times.items()} == {"a": 3, "b": 3, "c": 3}


def test_stats_and_paired_ratio() -> None:
    stats = Stats.of([0.001, 0.002, 0.003, 0.004, 0.100])
    assert (stats.median, stats.minimum, stats.runs) == (3.0, 1.0, 5)
    assert stats.p10 < stats.median < stats.p90
    assert paired_ratio([2.0, 4.0, 9.0], [1.0, 2.0, 3.0]) == 2.0


def test_machine_names_the_cpu_generation_and_vector_unit() -> None:
    """"AMD EPYC" alone does not say which CPU the ratios were measured on."""
    import re
    from pathlib import Path

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists() or "model name" not in cpuinfo.read_text():
        pytest.skip("no /proc/cpuinfo with a model name here")
    cpu = machine()["cpu"]
    assert re.search(r" \(family \d+, model \d+, (AVX512F|AVX2|AVX|no AVX)\)$", cpu), cpu


def test_conversion_stages_get_their_time_and_peak_memory() -> None:
    lines = [
        (1.0, "[load model] ..."), (1.5, "[load model] done in 0.5 s"),
        (2.0, "[parity] ..."), (2.1, "[parity: per-layer] ..."), (3.0, "[parity: per-layer] done in 0.9 s"),
        (4.0, "[parity] done in 2.0 s"), (4.1, "parity PASS"),
    ]  # fmt: skip
    samples = [(1.2, 100), (1.4, 150), (2.5, 400), (3.5, 300), (4.5, 200)]
    timings = {"load model": 0.5, "parity": 2.0}
    parity_timings = {"parity: per-layer": 0.9, "parity: run tf": 0.4, "parity: total": 1.5}
    rows = {r["stage"]: r for r in conversion._stages(lines, samples, (0.0, 5.0), timings, parity_timings)}
    assert rows["load model"] == {"stage": "load model", "seconds": 0.5, "peak_rss_bytes": 150}
    assert rows["parity"]["peak_rss_bytes"] == rows["parity: per-layer"]["peak_rss_bytes"] == 400
    assert rows["parity: run tf"]["seconds"] == 0.4
    assert rows["parity: write report"]["seconds"] == 0.5
    assert rows["(start-up: interpreter, imports)"]["seconds"] == 1.0
    assert rows["(after the last stage: manifest, rename, exit)"] == {
        "stage": "(after the last stage: manifest, rename, exit)", "seconds": 1.0, "peak_rss_bytes": 200,
    }


def test_a_small_lstm_run_is_exact_and_renders() -> None:
    layer = lstm.Layer("tiny", 6, 4, True)
    result = lstm.run([layer], batches=[2], steps=5, repeats=1, threads=1)
    (row,) = result["rows"]
    assert row["handler_choice"] == lstm.TF_FUSED
    assert set(row["stats_ms"]) == set(lstm.BACKEND_LABELS)
    assert max(row["max_abs_vs_torch"].values()) <= 1e-5
    results = {"command": "python -m benchmarks --only lstm", "created_utc": "now", "quick": True,
               "machine": machine(), "lstm": [{"threads": {"tensorflow_intra_op": 1}, **result}]}
    markdown = report.render(results)
    assert "## One LSTM layer, T=5, 1 thread(s)" in markdown
    assert "| tiny | 6 | 4 | 2 | 2 |" in markdown


def test_a_small_conv_block_run_is_exact_and_renders() -> None:
    result = conv.run(batches=[2], steps=9, repeats=1, threads=1, channels=6, kernel=5)
    (row,) = result["rows"]
    assert set(row["stats_ms"]) == set(conv.BACKEND_LABELS)
    assert max(row["max_abs_vs_torch"].values()) <= 1e-5  # every way of running it computes the block
    results = {"command": "python -m benchmarks --only conv", "created_utc": "now", "quick": True,
               "machine": machine(), "conv": [{"threads": {"tensorflow_intra_op": 1}, **result}]}
    markdown = report.render(results)
    assert "## One convolution block (Conv1d + BatchNorm + ReLU), T=9, 1 thread(s)" in markdown
    assert "| 6 | 5 | 2 |" in markdown


def test_profile_of_a_real_export_attributes_time_to_op_types(exported_autovc) -> None:
    from benchmarks import profile

    out, _ = exported_autovc
    result = profile.run(out, batch=1, frames=64, threads=1)
    tf_, ort = result["tf"], result["onnxruntime"]
    # The LSTM handler's recurrent matmuls run inside while loops; onnxruntime has LSTM nodes.
    assert tf_["calls"]["MatMul"] >= 64 and tf_["by_place_ms"]["inside while loops"] > 0
    assert ort["calls"]["LSTM"] == 5
    for backend in (tf_, ort):  # (kernels may overlap, and sum past the wall time, on several threads)
        assert backend["kernels_ms"] > 0 and backend["wall_ms"] > 0
    results = {"command": "python -m benchmarks --only profile", "created_utc": "now", "quick": True,
               "machine": machine(), "profile": [{"threads": {"tensorflow_intra_op": 1}, "shapes": [result]}]}
    markdown = report.render(results)
    assert "## Where the time goes: B=1, T=64, 1 thread(s)" in markdown
    assert "| MatMul | " in markdown and "| LSTM | 5 | " in markdown


def test_latency_and_mixed_lengths_run_both_signatures_of_a_real_export(exported_autovc) -> None:
    from benchmarks import latency

    out, _ = exported_autovc
    result = latency.run(out, [latency.Shape(1, 40, 1)], threads=1)
    (row,) = result["shapes"]
    assert result["backends"] == [latency.TORCH, latency.ORT, latency.TF, latency.TF_XLA]
    assert max(row["max_abs_vs_torch"].values()) <= 1e-5
    assert set(row["ratio_over_ort"]) == {latency.TORCH, latency.TF, latency.TF_XLA}
    mixed = latency.mixed_lengths(out, threads=1, count=3, frames=(20, 70))
    assert len(set(mixed["lengths"])) == 3 and all(20 <= n <= 70 for n in mixed["lengths"])
    assert mixed["length_buckets"] == len({-(-n // 32) for n in mixed["lengths"]})
    assert set(mixed["passes"]) == set(result["backends"])
    results = {"command": "python -m benchmarks --only latency,mixed", "created_utc": "now", "quick": True,
               "machine": machine(), "latency": [{"threads": {"tensorflow_intra_op": 1}, **result}],
               "mixed": [{"threads": {"tensorflow_intra_op": 1}, **mixed}]}
    markdown = report.render(results)
    assert "TF serving_xla/ORT" in markdown and "TF serving_xla first call s" in markdown
    assert "## Mixed lengths: 3 utterances of distinct lengths, B=1, 1 thread(s)" in markdown
    assert "| TF serving_xla | " in markdown
