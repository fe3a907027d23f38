"""Device selection: real probes of the installed torch, onnxruntime and TensorFlow, plus the plan logic.

The probes run once per session against the real libraries. Where a test needs a GPU answer this
machine cannot give, it feeds ``plan_devices`` a made-up availability answer; the probing code is
not involved there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.runtime.devices import (
    BACKENDS,
    CPU_EP,
    CUDA_EP,
    GpuProbe,
    _ort_failure,
    placement_problem,
    plan_devices,
    probe_backends,
    resolve_devices,
    tiny_onnx_model,
)
from pipeline.runtime.errors import PipelineError, UsageError

ALL_GPU = {b: GpuProbe(True, f"fake GPU for {b}") for b in BACKENDS}


@pytest.fixture(scope="module")
def probes() -> dict[str, GpuProbe]:
    return probe_backends()


def test_cpu_plan_imports_no_backend() -> None:
    code = (
        "import sys\n"
        "from pipeline.runtime.devices import resolve_devices\n"
        "plan = resolve_devices('cpu')\n"
        "assert plan.torch_device == 'cpu' and plan.tf_device == '/CPU:0', plan\n"
        "heavy = {'torch', 'onnxruntime', 'tensorflow'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_cpu_plan_puts_everything_on_cpu() -> None:
    plan = resolve_devices("cpu")
    assert (plan.torch_device, plan.ort_providers, plan.tf_device) == ("cpu", [CPU_EP], "/CPU:0")
    assert all(c.used == "cpu" and c.reason == "CPU requested" for c in plan.choices)


def test_real_probes_explain_each_missing_gpu(probes: dict[str, GpuProbe]) -> None:
    import onnxruntime
    import torch

    assert set(probes) == set(BACKENDS)
    if not probes["torch"].available and torch.version.cuda is None:
        assert probes["torch"].detail == f"torch has no CUDA device (CPU build {torch.__version__})"
    if CUDA_EP not in onnxruntime.get_available_providers():
        assert probes["onnxruntime"].detail == (
            f"onnxruntime {onnxruntime.__version__} is the CPU build (install the 'gpu' extra)"
        )
    if not probes["tensorflow"].available:
        assert probes["tensorflow"].detail.startswith("TensorFlow sees no GPU (")


def test_auto_falls_back_per_backend_and_records_why(probes: dict[str, GpuProbe]) -> None:
    plan = resolve_devices("auto")
    for choice in plan.choices:
        probe = probes[choice.backend]
        assert choice.requested == "auto"
        assert choice.used == ("cuda" if probe.available else "cpu")
        prefix = "GPU: " if probe.available else "CPU fallback: "
        assert choice.reason == prefix + probe.detail
    assert plan.torch_device == ("cuda:0" if probes["torch"].available else "cpu")
    assert plan.ort_providers[0] == (CUDA_EP if probes["onnxruntime"].available else CPU_EP)
    assert plan.tf_device == ("/GPU:0" if probes["tensorflow"].available else "/CPU:0")


def test_cuda_fails_with_one_line_naming_every_backend_without_gpu(probes: dict[str, GpuProbe]) -> None:
    missing = [probes[b].detail for b in BACKENDS if not probes[b].available]
    if not missing:
        pytest.skip("all three backends have a GPU here")
    with pytest.raises(PipelineError) as raised:
        resolve_devices("cuda")
    message = str(raised.value)
    assert raised.value.exit_code == 1
    assert "\n" not in message
    assert message == "--device cuda: " + "; ".join(missing)
    for backend, name in zip(BACKENDS, ("torch", "onnxruntime", "TensorFlow")):
        assert (name in message) == (not probes[backend].available)


def test_plan_json_and_description() -> None:
    plan = resolve_devices("cpu")
    document = json.loads(json.dumps(plan.to_json()))
    assert document["requested"] == "cpu"
    assert list(document["backends"]) == list(BACKENDS)
    for record in document["backends"].values():
        assert set(record) == {"requested", "used", "device", "reason"}
    assert document["backends"]["onnxruntime"]["device"] == [CPU_EP]
    lines = plan.describe().splitlines()
    assert [line.split()[0] for line in lines] == list(BACKENDS)


def test_plan_with_every_gpu_available() -> None:
    for requested in ("auto", "cuda"):
        plan = plan_devices(requested, ALL_GPU)
        assert (plan.torch_device, plan.ort_providers, plan.tf_device) == ("cuda:0", [CUDA_EP, CPU_EP], "/GPU:0")
        assert all(c.used == "cuda" and c.reason == f"GPU: fake GPU for {c.backend}" for c in plan.choices)


def test_plan_mixes_devices_in_auto_and_refuses_in_cuda() -> None:
    answers = dict(ALL_GPU, tensorflow=GpuProbe(False, "TensorFlow sees no GPU"))
    plan = plan_devices("auto", answers)
    assert (plan.torch_device, plan.tf_device) == ("cuda:0", "/CPU:0")
    with pytest.raises(PipelineError, match=r"^--device cuda: TensorFlow sees no GPU$"):
        plan_devices("cuda", answers)


def test_unknown_device_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--device must be one of auto, cpu, cuda"):
        resolve_devices("gpu")


def test_a_session_on_the_cpu_plan_runs_on_the_cpu_and_fails_a_cuda_check() -> None:
    import onnxruntime as ort

    cpu_plan = resolve_devices("cpu")
    session = ort.InferenceSession(tiny_onnx_model(), providers=cpu_plan.ort_providers)
    assert session.get_providers() == [CPU_EP]
    (y,) = session.run(None, {"x": np.ones((1, 4), np.float32)})
    assert y.tolist() == [[2.0] * 4]
    problem = placement_problem("onnxruntime", {"providers_used": session.get_providers()})
    assert problem is not None and CUDA_EP in problem


@pytest.mark.parametrize(
    ("text", "gist"),
    [
        (  # onnxruntime-gpu 1.26 without the CUDA libraries (its log line on stderr)
            (
                "\x1b[1;31m2026-11-28 11:44:48.910890866 [E:onnxruntime:Default, provider_bridge_ort.cc:2369 "
                "TryGetProviderInfo_CUDA] /onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:1962 "
                "onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : "
                "Failed to load library libonnxruntime_providers_cuda.so with error: libcublasLt.so.12: cannot "
                "open shared object file: No such file or directory\x1b[m\n"
            ),
            "libcublasLt.so.12: cannot open shared object file: No such file or directory",
        ),
        (  # onnxruntime-gpu 1.26 with the libraries but no driver (its exception)
            (
                "/onnxruntime_src/onnxruntime/core/providers/cuda/cuda_call.cc:122 ... CUDA failure 35: CUDA "
                "driver version is insufficient for CUDA runtime version ; GPU=-1 ; hostname=vm ; "
                "expr=cudaSetDevice(0);"
            ),
            "CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version",
        ),
        ("", ""),
    ],
)
def test_ort_failure_quotes_the_cause(text: str, gist: str) -> None:
    assert _ort_failure(text) == gist
