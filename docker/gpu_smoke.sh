#!/usr/bin/env bash
# GPU smoke test: every backend on the GPU, then one export with --device cuda and its parity verdict.
# In the GPU image:  docker run --rm --gpus all --entrypoint /app/docker/gpu_smoke.sh autovc-onnx-tf:gpu
# In a checkout:     PYTHON=.venv/bin/python docker/gpu_smoke.sh
# Exits non-zero on the first failure.
set -euo pipefail

PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.."

echo "== CUDA builds"
"$PYTHON" docker/check_cuda_stack.py

echo "== devices (torch CUDA device, onnxruntime CUDA session, TensorFlow GPU)"
"$PYTHON" - <<'PY'
import sys

from pipeline.runtime.devices import resolve_devices
from pipeline.runtime.errors import PipelineError

try:
    print(resolve_devices("cuda").describe())
except PipelineError as error:
    sys.exit(str(error))
PY

out=$(mktemp -d)
echo "== export --device cuda --out $out/export"
"$PYTHON" -m pipeline export --device cuda --out "$out/export" 2>&1 | tee "$out/export.log"

echo "== verdict"
grep -E '^parity (PASS|FAIL)' "$out/export.log" || { echo "no parity verdict line in the export output" >&2; exit 1; }
report=$(find "$out/export" -name report.json -print -quit)
[[ -n $report ]] || { echo "no report.json under $out/export" >&2; exit 1; }
"$PYTHON" - "$report" <<'PY'
import json
import sys

backends = json.load(open(sys.argv[1]))["backends"]  # fields as in pipeline/parity/SCHEMA.md
used = {
    "torch": backends["torch"]["device"],
    "onnxruntime": backends["ort"]["providers_used"][0],
    "tensorflow": backends["tf"]["device_used"],
}
print("report.json devices:", ", ".join(f"{name} {device}" for name, device in used.items()))
off_gpu = [name for name, device in used.items() if not any(k in device for k in ("cuda", "CUDA", "GPU"))]
if off_gpu:
    sys.exit(f"report.json: not on the GPU: {', '.join(off_gpu)}")
PY
grep -qE '^parity PASS' "$out/export.log"
