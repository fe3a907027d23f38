"""Make onnx-tf 1.10.0 importable on TensorFlow 2.21 / Keras 3.

onnx-tf imports every handler module when it is imported. Two of them import packages that
do not work here:

- ``hardmax.py`` imports ``tensorflow_addons`` (dead; fails under Keras 3 with
  ``No module named 'keras.src.engine'``),
- ``bernoulli.py`` imports ``tensorflow_probability.distributions``.

Neither op occurs in the models we convert. We put small stand-in modules in ``sys.modules``
before onnx-tf is imported; using either op then fails with a message that names the op,
instead of the whole backend failing to import.
"""

from __future__ import annotations

import sys
import types


class _MissingDependency(types.ModuleType):
    """A module whose attributes are placeholders: onnx-tf may reference them while it is
    imported (``@tf_func(tfa.seq2seq.hardmax)``), and calling one fails with a message that
    names the ONNX op that needed the real package."""

    def __init__(self, name: str, op_name: str) -> None:
        super().__init__(name)
        self._op_name = op_name

    def __getattr__(self, attr: str) -> "_MissingDependency":
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _MissingDependency(f"{self.__name__}.{attr}", self._op_name)

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError(
            f"ONNX op {self._op_name} is not supported: onnx-tf implements it with "
            f"{self.__name__}, which does not work with TensorFlow 2.21 / Keras 3"
        )


def _install_stand_in(module_name: str, op_name: str, submodules: tuple[str, ...] = ()) -> None:
    if module_name in sys.modules:
        return
    root = _MissingDependency(module_name, op_name)
    root.__path__ = []  # a package, so `from x import sub` works
    sys.modules[module_name] = root
    for sub in submodules:
        child = _MissingDependency(f"{module_name}.{sub}", op_name)
        setattr(root, sub, child)
        sys.modules[child.__name__] = child


# the ONNX op whose onnx-tf handler needs each package, and the package's submodules it imports
_STAND_INS = {"tensorflow_addons": ("Hardmax", ()), "tensorflow_probability": ("Bernoulli", ("distributions",))}


def install() -> None:
    """Idempotent: stand-ins for the packages onnx-tf imports but cannot use here."""
    for module_name, (op_name, submodules) in _STAND_INS.items():
        _install_stand_in(module_name, op_name, submodules)


def stood_in_package(op_type: str) -> str | None:
    """The package that onnx-tf's handler of ``op_type`` (default domain) needs, when a stand-in
    replaced it (the handler then fails once it translates a node), else None."""
    for module_name, (op_name, _) in _STAND_INS.items():
        if op_name == op_type and isinstance(sys.modules.get(module_name), _MissingDependency):
            return module_name
    return None
