"""The command-line flags a model declares in its spec (:attr:`~pipeline.models.ModelSpec.flags`
and :attr:`~pipeline.models.ModelSpec.input_flags`). ``export`` adds every model's flags to its
parser, each once, and hands the values to the spec as a mapping keyed by :attr:`ModelFlag.key`;
a value other than the default, for a flag the chosen model does not declare, is refused.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ExtraStage:
    """An output a switch asks for, written after the SavedModel: ``write(model, folder)``
    writes the folder ``writes`` (e.g. ``trainable``) of the output from the ``LoadedModel``."""

    name: str
    """The stage's name in the progress lines and the manifest's timings."""
    writes: str
    write: Callable[[Any, Path], None]


@dataclass(frozen=True)
class ModelFlag:
    """One command-line flag: ``option`` (``--freq``), its ``help`` (without the models that read
    it: the command adds them), its ``default`` and any other argparse keywords (``type``,
    ``action``, ``metavar``, ...)."""

    option: str
    help: str
    default: Any = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    dest: str = ""
    """The key of its value when it is not the option's name (``--mel`` -> ``mel_files``)."""
    stage: ExtraStage | None = None
    """For a switch: the output it asks for when given."""

    @property
    def key(self) -> str:
        return self.dest or self.option.removeprefix("--").replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup, note: str = "") -> None:
        parser.add_argument(self.option, dest=self.key, default=self.default, help=self.help + note, **self.kwargs)


def values(flags: Iterable[ModelFlag], given: Mapping[str, Any]) -> dict[str, Any]:
    """The value of each of ``flags``: from ``given`` (keyed by :attr:`ModelFlag.key`), else its default."""
    return {flag.key: given.get(flag.key, flag.default) for flag in flags}


def refused(flags: Iterable[ModelFlag], declared: Mapping[str, ModelFlag], given: Mapping[str, Any]) -> list[str]:
    """The options in ``given`` that a model reading only ``flags`` must refuse: those with a
    value other than their default (``declared``: every model's flags by key; a key no model
    declares is refused whatever its value)."""
    read = {flag.key for flag in flags}
    return [
        declared[key].option if key in declared else "--" + key.replace("_", "-")
        for key, value in given.items()
        if key not in read and (key not in declared or value != declared[key].default)
    ]
