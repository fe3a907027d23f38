"""Three-way parity: PyTorch, onnxruntime and the TensorFlow SavedModel on the same inputs,
every output and pair compared, per-layer localisation of the first diverging ONNX node, and
the reports (report.json, report.html, summary.txt). The report schema is in SCHEMA.md.

Typical use::

    result = run_parity(onnx_path, saved_model_dir, inputs, torch_module=model,
                        ort_providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    write_report(result, out / "report")  # refuses a folder it did not write unless force=True
    print(summary_table(result), file=sys.stderr)
    exit_code = 0 if result.passed else 1
"""

from .cases import InputCase, metadata_sweep_cases, pad_batch
from .chunks import DEFAULT_CHUNK_FRAMES, ChunkPlan, plan_chunks
from .layers import LayerReport, NodeComparison, localise, torch_module_for_node
from .metrics import (
    DEFAULT_TOLERANCE,
    REL_ERR_FLOOR,
    ArrayComparison,
    ComparisonTotals,
    Tolerance,
    compare_arrays,
)
from .report import write_report, write_report_files
from .run import PairComparison, ParityResult, run_parity, run_sweep
from .terminal import summary_table

__all__ = [
    "DEFAULT_CHUNK_FRAMES",
    "DEFAULT_TOLERANCE",
    "REL_ERR_FLOOR",
    "ArrayComparison",
    "ChunkPlan",
    "ComparisonTotals",
    "InputCase",
    "LayerReport",
    "NodeComparison",
    "PairComparison",
    "ParityResult",
    "Tolerance",
    "compare_arrays",
    "localise",
    "metadata_sweep_cases",
    "pad_batch",
    "plan_chunks",
    "run_parity",
    "run_sweep",
    "summary_table",
    "torch_module_for_node",
    "write_report",
    "write_report_files",
]
