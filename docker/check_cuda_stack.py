"""Fail unless torch, onnxruntime-gpu and TensorFlow were all built for the same CUDA major version.

Runs without a GPU (it reads build information only), so the GPU image build stops here when
pip picked, say, PyPI's CUDA 13 torch instead of the CUDA 12 one. Exit code 1 on a mismatch.
"""

from __future__ import annotations

import importlib.metadata
import sys


def cuda_majors() -> dict[str, str]:
    """The CUDA version each backend was built with, by backend name."""
    import onnxruntime
    import tensorflow as tf
    import torch
    from onnxruntime.capi import build_and_package_info

    return {
        f"torch {torch.__version__}": torch.version.cuda or "none (CPU build)",
        f"onnxruntime {onnxruntime.__version__}": getattr(build_and_package_info, "cuda_version", "") or "none (CPU build)",
        f"tensorflow {tf.__version__}": tf.sysconfig.get_build_info().get("cuda_version", "none (CPU build)"),
    }


def installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def main() -> int:
    if not installed("onnxruntime-gpu"):
        print("onnxruntime-gpu is not installed (the 'gpu' extra)", file=sys.stderr)
        return 1
    if installed("onnxruntime"):
        print("onnxruntime (CPU) is installed next to onnxruntime-gpu; they share one folder", file=sys.stderr)
        return 1
    versions = cuda_majors()
    for name, cuda in versions.items():
        print(f"{name}: CUDA {cuda}")
    majors = {cuda.split(".")[0] for cuda in versions.values()}
    if len(majors) != 1 or not next(iter(majors)).isdigit():
        print("the backends were built for different CUDA versions (see docs/docker.md)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
