"""Our overlay on onnx-tf 1.10.0: handlers that make ONNX -> TensorFlow exact for AutoVC.

Call :func:`register` once before ``onnx_tf.backend.prepare``. onnx-tf rebuilds its handler
table at every ``prepare()`` from the *direct* subclasses of ``BackendHandler`` in creation
order, and the last class registered for an op name wins. Our handler modules are therefore
imported after onnx-tf's own, and each handler derives directly from ``BackendHandler``.
"""

from __future__ import annotations

import importlib
import pkgutil

_registered = False


def register() -> None:
    """Make onnx-tf importable on TF 2.21 and install our handlers (idempotent)."""
    global _registered
    if _registered:
        return
    from . import compat

    compat.install()
    import onnx_tf.backend  # noqa: F401  (imports onnx-tf's own handlers first)

    from . import handlers

    for module in pkgutil.iter_modules(handlers.__path__):
        importlib.import_module(f"{handlers.__name__}.{module.name}")
    _registered = True
