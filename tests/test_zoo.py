"""The model zoo (tests/zoo/) end to end: each architecture exported by torch's legacy exporter
with dynamic batch and time at opsets 15, 17 and the newest the exporter offers, converted to a
SavedModel (through the real ``python -m pipeline convert`` for one model per family at opset 17,
in process by the same code for the rest), then run at a batch and a length that differ from the
export example by torch, onnxruntime, the SavedModel's ``serving_default`` and its ``serving_xla``
signature. Every pair agrees within 1e-5 max abs."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.zoo import (
    CHECK_SHAPE,
    MODELS,
    NEWEST_OPSET,
    OPSETS,
    compare,
    convert,
    run_onnxruntime,
    run_torch,
    saved_model_runners,
)

# one model per family goes through the CLI at opset 17
CLI_CONVERTED = {"gru_encoder", "rnn_tanh", "hifigan", "adain_vc", "speechsplit"}
# the slowest cases (10-20 s each on 2 loaded cores: many convolutions traced twice and compiled
# by XLA) at the opsets beside 17; the whole file takes about 3.5 minutes there
SLOW = {"adain_vc", "hifigan", "melgan"}


def cases() -> list:
    params = []
    for name, zoo_model in MODELS.items():
        for opset in OPSETS:
            marks = [pytest.mark.slow] if name in SLOW and opset != 17 else []
            params.append(pytest.param(zoo_model, opset, id=f"{name}-opset{opset}", marks=marks))
    return params


def test_newest_opset_is_beyond_17() -> None:
    assert NEWEST_OPSET > 17, NEWEST_OPSET


@pytest.mark.parametrize(("zoo_model", "opset"), cases())
def test_zoo_model_agrees_three_ways(zoo_model, opset, tmp_path) -> None:
    model = zoo_model.build()
    graph = zoo_model.export(model, opset)
    saved = tmp_path / "saved_model"
    if opset == 17 and zoo_model.name in CLI_CONVERTED:
        onnx_path = tmp_path / "model.onnx"
        onnx_path.write_bytes(graph.SerializeToString())
        result = run_cli("convert", str(onnx_path), "--out", str(saved))
        assert result.returncode == 0, result.stderr[-3000:]
    else:
        convert(graph, saved)

    inputs = zoo_model.inputs(*CHECK_SHAPE, seed=1)
    outputs = {"torch": run_torch(model, inputs), "onnxruntime": run_onnxruntime(graph, inputs)}
    runners = saved_model_runners(saved)
    assert set(runners) == {"tf", "tf_xla"}
    outputs.update({label: run(inputs) for label, run in runners.items()})

    reference = outputs["torch"]
    assert reference.shape[0] == CHECK_SHAPE[0]
    for label, value in outputs.items():
        assert value.shape == reference.shape, (label, value.shape, reference.shape)
    errors = compare(outputs)
    assert set(errors) == {"torch-onnxruntime", "torch-tf", "onnxruntime-tf", "torch-tf_xla"}
    for pair, error in errors.items():
        candidate, ref = pair.split("-")[1], pair.split("-")[0]
        assert zoo_model.tolerance.holds(outputs[candidate], outputs[ref]), (pair, error, zoo_model.tolerance)
