"""report.json: the machine-readable parity report. Its schema is documented in SCHEMA.md
beside this module; bump SCHEMA_VERSION on any change that is not a pure addition."""

from __future__ import annotations

import json
from typing import Any

from pipeline.runtime.report_format import finite_or_null

from .backends import BACKEND_LABELS
from .layers import first_divergence_json
from .metrics import REL_ERR_FLOOR
from .run import ParityResult

SCHEMA_VERSION = 1
TOLERANCE_RULE = "|candidate - reference| <= atol + rtol * |reference|, elementwise"
RELATIVE_ERROR = f"|candidate - reference| / max(|reference|, {REL_ERR_FLOOR:g})"
PADDING_POLICY = "padding frames are compared like every other frame"


def report_dict(result: ParityResult) -> dict[str, Any]:
    """The report as plain JSON types (non-finite floats become null)."""
    report = {
        "schema_version": SCHEMA_VERSION,
        "created_utc": result.created_utc,
        "passed": result.passed,
        "summary": result.summary_line(),
        "failures": result.failures(),
        "versions": result.versions,
        "provenance": result.provenance,
        "weights_origin": result.weights_origin,
        "devices": result.devices,
        "precision": result.precision,
        "model": result.model,
        "backends": {
            name: {"label": BACKEND_LABELS[name], **info} for name, info in result.backends.items()
        },
        "pairs": [
            {"name": f"{reference}-{candidate}", "reference": reference, "candidate": candidate}
            for reference, candidate in result.pairs
        ],
        "inputs": {**result.inputs, "padding": PADDING_POLICY, "shown_case": result.shown_case},
        "tolerances": {
            "rule": TOLERANCE_RULE,
            "relative_error": RELATIVE_ERROR,
            "relative_error_floor": REL_ERR_FLOOR,
            "default": result.default_tolerance.to_json(),
            "per_output": {name: tol.to_json() for name, tol in result.tolerances.items()},
            "layer": result.per_layer.tolerance.to_json() if result.per_layer else None,
        },
        "comparisons": [
            {
                "output": c.output,
                "pair": c.pair,
                "reference": c.reference,
                "candidate": c.candidate,
                "case": c.case,
                **c.comparison.to_json(),
            }
            for c in result.comparisons
        ],
        "cases": [
            {
                "name": case.name,
                "passed": case.passed,
                "max_abs": case.max_abs,
                "tolerance_ratio": case.tolerance_ratio,
                "seconds": case.seconds,
                "chunks": None if case.chunks is None else case.chunks.to_json(),
            }
            for case in result.cases
        ],
        "first_divergence": first_divergence_json(result.per_layer, result.passed) if result.per_layer else None,
        "top_k_layers": [node.to_json() for node in result.per_layer.worst()] if result.per_layer else [],
        "per_layer": result.per_layer.to_json() if result.per_layer else None,
        "chunking": result.chunking,
        "timings_s": result.timings,
        **({"tflite": result.tflite} if result.tflite is not None else {}),
    }
    return finite_or_null(report)


def dumps(result: ParityResult) -> str:
    """report.json's text: strict JSON, indented, keys in a fixed order."""
    return json.dumps(report_dict(result), indent=2, allow_nan=False) + "\n"
