"""Three-way parity on a small torch model exported to ONNX and converted to a SavedModel:
a clean conversion passes, a conversion made with a deliberately perturbed Tanh handler fails
on exactly the TF pairs, and per-layer localisation points at the perturbed node and module.
The reports are checked as files, as strict JSON and as a page rendered by headless Chromium."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from pipeline.parity import (
    InputCase,
    ParityResult,
    localise,
    pad_batch,
    run_parity,
    run_sweep,
    summary_table,
    write_report,
)
from pipeline.parity.report_html import FAIL_COLOUR
from pipeline.parity.report_json import SCHEMA_VERSION
from pipeline.runtime.errors import UsageError

PERTURBED_NODE = "/blocks.1/blocks.1.0/act/Tanh"
PERTURBED_MODULE = "blocks.1.0.act"
PERTURBATION = 1e-3
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT_SIZE = (1280, 2400)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(8, 8, 3, padding=1)
        self.act = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class SmallNet(nn.Module):
    """Conv/ReLU encoder, two conv+tanh blocks, a linear head; two outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv1d(4, 8, 3, padding=1), nn.ReLU())
        self.blocks = nn.ModuleList([nn.Sequential(Block(), nn.ReLU()) for _ in range(2)])
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x.transpose(1, 2))
        for block in self.blocks:
            h = block(h)
        out = self.head(h.transpose(1, 2))
        return out, out.sum(-1) + y


@dataclass
class Artifacts:
    module: SmallNet
    onnx_path: Path
    saved_model: Path
    broken_saved_model: Path
    inputs: dict[str, np.ndarray]


def random_inputs(batch: int, frames: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((batch, frames, 4)).astype(np.float32),
        "y": rng.standard_normal((batch, frames)).astype(np.float32),
    }


def write_saved_model(onnx_path: Path, directory: Path) -> None:
    from pipeline.stages.tf_convert import OnnxGraphModule
    from pipeline.stages.tf_convert import write_saved_model as write

    write(OnnxGraphModule(onnx.load(onnx_path)), directory)


def tanh_handler() -> type:
    import custom_ops

    custom_ops.register()
    from onnx_tf.common.handler_helper import get_all_backend_handlers

    return get_all_backend_handlers({"": 17})[""]["Tanh"]


@contextmanager
def perturbed_tanh(node_name: str, delta: float) -> Iterator[None]:
    """While active, onnx-tf translates the Tanh node ``node_name`` as tanh(x) + delta.

    onnx-tf uses the last direct ``BackendHandler`` subclass defined for an op; the class lives
    only in this frame, so once it is deleted and collected the original handler is last again.
    """
    import tensorflow as tf
    from onnx_tf.handlers.backend_handler import BackendHandler
    from onnx_tf.handlers.handler import onnx_op

    original = tanh_handler()

    @onnx_op("Tanh")
    class PerturbedTanh(BackendHandler):
        @classmethod
        def version_13(cls, node, **kwargs):
            result = tf.tanh(kwargs["tensor_dict"][node.inputs[0]])
            return [result + delta if node.name == node_name else result]

        version_1 = version_6 = version_13

    assert tanh_handler() is PerturbedTanh
    try:
        yield
    finally:
        del PerturbedTanh
        gc.collect()
        assert tanh_handler() is original, "the perturbed Tanh handler is still registered"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    folder = tmp_path_factory.mktemp("parity")
    torch.manual_seed(0)
    module = SmallNet().eval()
    onnx_path = folder / "small.onnx"
    example = tuple(torch.from_numpy(a) for a in random_inputs(2, 10, seed=1).values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, example, str(onnx_path), input_names=["x", "y"], output_names=["out", "total"],
            dynamic_axes={"x": {0: "B", 1: "T"}, "y": {0: "B", 1: "T"}, "out": {0: "B", 1: "T"},
                          "total": {0: "B", 1: "T"}},
            opset_version=17, dynamo=False,
        )
    write_saved_model(onnx_path, folder / "saved_model")
    with perturbed_tanh(PERTURBED_NODE, PERTURBATION):
        write_saved_model(onnx_path, folder / "broken_saved_model")
    return Artifacts(module, onnx_path, folder / "saved_model", folder / "broken_saved_model",
                     random_inputs(3, 17, seed=2))


@pytest.fixture(scope="module")
def clean(artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory) -> tuple[ParityResult, Path]:
    result = run_parity(
        artifacts.onnx_path, artifacts.saved_model, artifacts.inputs, torch_module=artifacts.module,
        weights_origin="seeded random (torch.manual_seed(0))", input_description={"source": "seeded normal"},
        devices={"requested": "cpu"},
    )
    report = tmp_path_factory.mktemp("clean") / "report"
    write_report(result, report)
    return result, report


@pytest.fixture(scope="module")
def broken(artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory) -> tuple[ParityResult, Path]:
    """The broken SavedModel, localised while the perturbed handler is registered."""
    with perturbed_tanh(PERTURBED_NODE, PERTURBATION):
        result = run_parity(
            artifacts.onnx_path, artifacts.broken_saved_model, artifacts.inputs, torch_module=artifacts.module,
        )
    report = tmp_path_factory.mktemp("broken") / "report"
    write_report(result, report)
    return result, report


def test_clean_conversion_passes_every_pair(clean: tuple[ParityResult, Path], artifacts: Artifacts) -> None:
    result, _ = clean
    assert result.passed, result.failures()
    assert result.pairs == [("torch", "ort"), ("torch", "tf"), ("torch", "tf_xla"), ("ort", "tf"), ("ort", "tf_xla")]
    assert [(c.output, c.pair) for c in result.comparisons] == [
        (o, p) for o in ("out", "total") for p in ("torch-ort", "torch-tf", "torch-tf_xla", "ort-tf", "ort-tf_xla")
    ]
    assert result.per_layer is not None and result.per_layer.first_divergence is None
    assert result.backends["ort"]["providers_used"] == ["CPUExecutionProvider"]
    assert result.backends["tf"]["device_used"].endswith("CPU:0")
    assert result.backends["tf_xla"]["signature"] == "serving_xla"
    assert result.summary_line().startswith("parity PASS")

    # The torch-ort metrics agree with outputs computed here, outside the parity code.
    with torch.inference_mode():
        expected = artifacts.module(*(torch.from_numpy(a) for a in artifacts.inputs.values()))
    session = ort.InferenceSession(str(artifacts.onnx_path), providers=["CPUExecutionProvider"])
    actual = session.run(["out", "total"], artifacts.inputs)
    for name, want, got in zip(("out", "total"), expected, actual):
        comparison = next(c.comparison for c in result.comparisons if c.output == name and c.pair == "torch-ort")
        assert comparison.max_abs == np.abs(got.astype(np.float64) - want.numpy().astype(np.float64)).max()
        assert comparison.shape_reference == tuple(want.shape)


def test_perturbed_handler_fails_the_tf_pairs_and_is_localised(broken: tuple[ParityResult, Path]) -> None:
    result, report = broken
    assert not result.passed
    failing = {(c.output, c.pair) for c in result.comparisons if not c.passed}
    assert failing == {(o, p) for o in ("out", "total") for p in ("torch-tf", "torch-tf_xla", "ort-tf", "ort-tf_xla")}
    assert all(c.passed for c in result.comparisons if c.pair == "torch-ort")

    layers = result.per_layer
    assert layers is not None
    first = layers.first_divergence
    assert first is not None
    assert (first.onnx_node, first.op_type, first.torch_module) == (PERTURBED_NODE, "Tanh", PERTURBED_MODULE)
    assert first.max_abs == pytest.approx(PERTURBATION, rel=1e-3)
    before = [n for n in layers.nodes if n.index < first.index]
    assert before and all(n.passed for n in before)
    assert PERTURBED_NODE in result.summary_line() and "FAIL" in result.summary_line()
    named = {tuple(line.split(":")[0].split()) for line in result.failures()}
    assert named == failing

    data = json.loads((report / "report.json").read_text())
    assert data["passed"] is False
    assert data["first_divergence"] == {
        "kind": "node", "onnx_node": PERTURBED_NODE, "op_type": "Tanh", "torch_module": PERTURBED_MODULE,
        "output": first.output, "max_abs": first.max_abs, "index": first.index,
    }
    assert data["top_k_layers"][0]["passed"] is False


def test_translation_is_clean_again_once_the_perturbed_handler_is_removed(broken: tuple[ParityResult, Path], artifacts: Artifacts) -> None:
    layers = localise(onnx.load(artifacts.onnx_path), artifacts.inputs, tolerance=broken[0].per_layer.tolerance)
    assert layers.first_divergence is None
    assert len(layers.nodes) == len(broken[0].per_layer.nodes)


def test_per_output_tolerance_overrides_the_default(artifacts: Artifacts) -> None:
    result = run_parity(
        artifacts.onnx_path, artifacts.broken_saved_model, artifacts.inputs, torch_module=artifacts.module,
        tolerances={"out": (0.1, 0.0)}, per_layer=False,
    )
    assert not result.passed and result.per_layer is None
    assert {(c.output, c.pair) for c in result.comparisons if not c.passed} == {
        ("total", p) for p in ("torch-tf", "torch-tf_xla", "ort-tf", "ort-tf_xla")
    }
    assert all(c.comparison.tolerance.atol == 0.1 for c in result.comparisons if c.output == "out")
    assert result.tolerances["total"] == result.default_tolerance


def test_onnxruntime_records_the_providers_it_really_used(artifacts: Artifacts) -> None:
    requested = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    result = run_parity(artifacts.onnx_path, artifacts.saved_model, artifacts.inputs,
                        ort_providers=requested, per_layer=False)
    assert result.passed and result.pairs == [("ort", "tf"), ("ort", "tf_xla")]
    expected = ort.InferenceSession(str(artifacts.onnx_path), providers=requested).get_providers()
    assert result.backends["ort"]["providers_requested"] == requested
    assert result.backends["ort"]["providers_used"] == expected
    assert ("CUDAExecutionProvider" in expected) == ("CUDAExecutionProvider" in ort.get_available_providers())


def test_tensor_float_32_is_off_during_the_run_and_restored_after() -> None:
    import tensorflow as tf

    from pipeline.parity.backends import float32_precision

    before = (tf.config.experimental.tensor_float_32_execution_enabled(), torch.backends.cudnn.allow_tf32)
    for allow in (False, True):
        with float32_precision(allow) as precision:
            assert tf.config.experimental.tensor_float_32_execution_enabled() is allow
            assert torch.backends.cudnn.allow_tf32 is allow and torch.backends.cuda.matmul.allow_tf32 is allow
            assert precision["allow_tf32"] is allow
        assert (tf.config.experimental.tensor_float_32_execution_enabled(), torch.backends.cudnn.allow_tf32) == before


def test_report_json_is_strict_and_complete(clean: tuple[ParityResult, Path]) -> None:
    result, report = clean
    assert sorted(p.name for p in report.iterdir()) == ["manifest.json", "report.html", "report.json", "summary.txt"]

    def reject(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    data = json.loads((report / "report.json").read_text(), parse_constant=reject)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["passed"] is True and data["failures"] == [] and data["first_divergence"] is None
    for package in ("torch", "onnx", "onnxruntime", "tensorflow", "onnx_tf", "numpy"):
        assert data["versions"][package], package
    assert data["weights_origin"] == "seeded random (torch.manual_seed(0))"
    assert data["devices"] == {"requested": "cpu"}
    assert data["precision"]["allow_tf32"] is False
    assert data["backends"]["ort"]["providers_requested"] == ["CPUExecutionProvider"]
    assert data["inputs"]["cases"][0]["source"] == "seeded normal"
    assert data["inputs"]["cases"][0]["tensors"]["x"]["shape"] == [3, 17, 4]
    assert data["tolerances"]["default"] == {"atol": 1e-5, "rtol": 1e-4}
    assert len(data["comparisons"]) == 2 * 5  # outputs x pairs
    comparison = data["comparisons"][0]
    for key in ("max_abs", "mean_abs", "rmse", "max_rel", "cosine", "within_tolerance", "shape", "dtype",
                "nan", "inf", "max_abs_at", "passed", "tolerance"):
        assert key in comparison, key
    assert set(comparison["max_abs_at"]["named"]) == {"batch", "time", "channel"}
    assert len(data["top_k_layers"]) == min(10, data["per_layer"]["nodes_compared"])
    assert data["per_layer"]["weight_mismatches"] == [] and data["per_layer"]["weights_compared"] > 0
    assert data["timings_s"]["parity: total"] > 0
    assert (report / "summary.txt").read_text() == summary_table(result)


def test_summary_table_is_aligned(broken: tuple[ParityResult, Path]) -> None:
    lines = summary_table(broken[0]).splitlines()
    _header, rule, *rows = lines[1:9]
    columns = [i for i, ch in enumerate(rule) if ch == "-" and (i == 0 or rule[i - 1] == " ")]
    assert len(columns) == 10
    for row in rows:
        assert row[columns[1] - 2 : columns[1]] == "  "  # output column ends before the pair column
    assert sum("FAIL" in row for row in rows) == 4
    assert any(line.startswith("first divergence: node " + PERTURBED_NODE) for line in lines)


def test_sweep_keeps_the_worst_case_per_output_and_pair(artifacts: Artifacts) -> None:
    rng = np.random.default_rng(3)
    cases = []
    for number, lengths in enumerate(([5, 9], [12], [3, 8, 6])):
        x, frames = pad_batch([rng.standard_normal((n, 4)).astype(np.float32) for n in lengths])
        y = rng.standard_normal(x.shape[:2]).astype(np.float32)
        cases.append(InputCase(f"case{number}", {"x": x, "y": y}, {"lengths": frames}))
    result = run_sweep(artifacts.onnx_path, artifacts.saved_model, cases, torch_module=artifacts.module, per_layer=False)
    assert result.passed
    assert [c.name for c in result.cases] == ["case0", "case1", "case2"]
    for c in result.comparisons:
        ratios = {case.name: case.tolerance_ratio[c.output][c.pair] for case in result.cases}
        assert ratios[c.case] == max(ratios.values())
        kept = next(case for case in result.cases if case.name == c.case)
        assert kept.max_abs[c.output][c.pair] == c.comparison.max_abs
    assert result.inputs["cases"][2]["lengths"] == [3, 8, 6]
    assert "sweep: 3 cases, 0 failing" in summary_table(result)


def test_bad_inputs_and_tolerances_are_usage_errors(artifacts: Artifacts) -> None:
    inputs = artifacts.inputs
    with pytest.raises(UsageError, match="needs"):
        run_parity(artifacts.onnx_path, artifacts.saved_model, {"x": inputs["x"]}, per_layer=False)
    with pytest.raises(UsageError, match="float32"):
        run_parity(artifacts.onnx_path, artifacts.saved_model, {**inputs, "y": inputs["y"].astype(np.float64)})
    with pytest.raises(UsageError, match="unknown outputs"):
        run_parity(artifacts.onnx_path, artifacts.saved_model, inputs, tolerances={"nope": (0, 0)})


def test_write_report_replaces_its_own_folder_whole_and_no_other(clean: tuple[ParityResult, Path], tmp_path: Path) -> None:
    result, _ = clean
    report = tmp_path / "report"
    report.mkdir()
    (report / "holiday.jpg").write_text("not ours")
    with pytest.raises(UsageError, match="not written by"):
        write_report(result, report)
    assert [p.name for p in report.iterdir()] == ["holiday.jpg"]
    write_report(result, report, force=True)
    write_report(result, report)  # ours now: replaced without force
    assert sorted(p.name for p in report.iterdir()) == ["manifest.json", "report.html", "report.json", "summary.txt"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["report"]


def test_html_is_self_contained_and_renders_in_chromium(broken: tuple[ParityResult, Path], tmp_path: Path) -> None:
    page = (broken[1] / "report.html").read_text()
    assert "<script" not in page and "<link" not in page
    assert "http://" not in page and "https://" not in page
    # One spectrogram figure (the rank-3 output), the histograms and the per-layer curve.
    assert page.count('src="data:image/png;base64,') == 3
    assert PERTURBED_NODE in page

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}",
         f"--window-size={SCREENSHOT_SIZE[0]},{SCREENSHOT_SIZE[1]}", (broken[1] / "report.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    from matplotlib.image import imread

    pixels = imread(screenshot)[..., :3]
    assert pixels.shape[:2] == (SCREENSHOT_SIZE[1], SCREENSHOT_SIZE[0])
    assert pixels.std() > 0.1, "the screenshot is (nearly) blank"
    red = np.array([int(FAIL_COLOUR[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    band = np.all(np.abs(pixels[:40] - red) < 3 / 255, axis=-1)
    assert band.mean() > 0.5, "no FAIL colour band at the top of the page"
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def test_a_saved_model_without_serving_xla_is_compared_on_serving_default(artifacts: Artifacts, tmp_path: Path) -> None:
    """A SavedModel written before ``serving_xla`` existed still runs: no tf_xla backend."""
    import tensorflow as tf

    from pipeline.stages.tf_convert import OnnxGraphModule

    module = OnnxGraphModule(onnx.load(artifacts.onnx_path))
    tf.saved_model.save(module, str(tmp_path / "old"), signatures={"serving_default": module.serving_function()})
    result = run_parity(artifacts.onnx_path, tmp_path / "old", artifacts.inputs, per_layer=False)
    assert result.passed and result.pairs == [("ort", "tf")] and "tf_xla" not in result.backends


def test_a_signature_xla_cannot_compile_fails_with_one_clear_line(tmp_path: Path) -> None:
    """A serving_xla with an op XLA has no kernel for: a PipelineError naming the op, no traceback."""
    import tensorflow as tf

    from pipeline.parity.backends import tf_backends
    from pipeline.runtime.errors import PipelineError

    spec = tf.TensorSpec([None], tf.float32, name="x")

    def through_strings(x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": tf.strings.to_number(tf.strings.as_string(x))}

    signatures = {
        "serving_default": tf.function(through_strings, input_signature=[spec]).get_concrete_function(),
        "serving_xla": tf.function(tf.function(through_strings, jit_compile=True), input_signature=[spec]).get_concrete_function(),
    }
    tf.saved_model.save(tf.Module(), str(tmp_path / "sm"), signatures=signatures)
    graph_mode, xla = tf_backends(tmp_path / "sm", ["y"])
    x = np.array([1.5, 2.0], np.float32)
    np.testing.assert_array_equal(graph_mode.run({"x": x})["y"], x)
    with pytest.raises(PipelineError, match="serving_xla signature failed: .*AsString") as raised:
        xla.run({"x": x})
    assert "\n" not in str(raised.value)


def test_per_layer_inference_and_onnxruntime_without_the_weights_match_the_whole_model() -> None:
    """The per-layer check hands large initializers to type inference and to onnxruntime as
    data-less placeholders (the weights go to onnxruntime in memory); small ones (shape constants
    that inference reads) keep their data. Types, shapes and onnxruntime's node outputs agree
    with the whole model."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from pipeline.parity.layers import _inferred_elem_types, _weights_apart, ort_node_outputs

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), "weight")  # 4,096 values
    shape = numpy_helper.from_array(np.array([-1, 32, 2], np.int64), "shape")  # read by Reshape: kept
    words = numpy_helper.from_array(np.array(["w"] * 2000, dtype=object), "words")  # strings: kept
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["words"], ["same_words"]),
            helper.make_node("MatMul", ["x", "weight"], ["projected"]),
            helper.make_node("Reshape", ["projected", "shape"], ["folded"]),
            helper.make_node("Cast", ["folded"], ["as_int"], to=TensorProto.INT64),
            helper.make_node("Shape", ["folded"], ["folded_shape"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 64])],
        [helper.make_tensor_value_info("as_int", TensorProto.INT64, None)],
        [weight, shape, words],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    light, weights = _weights_apart(model)
    assert list(weights) == ["weight"] and weights["weight"].raw_data == weight.raw_data
    placeholder = next(t for t in light.graph.initializer if t.name == "weight")
    assert placeholder.data_location == TensorProto.EXTERNAL and not placeholder.raw_data
    assert list(placeholder.dims) == [64, 64]
    assert next(t for t in light.graph.initializer if t.name == "shape").raw_data == shape.raw_data
    assert model.graph.initializer[0].raw_data == weight.raw_data  # the caller's model is left as it was

    full = onnx.shape_inference.infer_shapes(model).graph
    expected = {v.name: v.type.tensor_type.elem_type for v in [*full.value_info, *full.output]}
    types = _inferred_elem_types(light)
    assert {name: types[name] for name in expected} == expected
    assert expected["folded"] == TensorProto.FLOAT and expected["folded_shape"] == TensorProto.INT64
    inferred_light = onnx.shape_inference.infer_shapes(light).graph
    folded = next(v for v in inferred_light.value_info if v.name == "folded")
    assert [d.dim_value for d in folded.type.tensor_type.shape.dim][1:] == [32, 2]

    x = rng.standard_normal((3, 64)).astype(np.float32)
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    exposed.graph.output.extend([onnx.ValueInfoProto(name="projected"), onnx.ValueInfoProto(name="folded")])
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # as the per-layer session
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    whole = dict(zip(["projected", "folded"], session.run(["projected", "folded"], {"x": x})))
    per_layer = ort_node_outputs(model, {"x": x}, None)
    assert set(per_layer) == {"projected", "folded"}
    for name, value in whole.items():
        np.testing.assert_array_equal(per_layer[name], value)
