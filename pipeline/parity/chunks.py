"""Batch chunks: a parity run feeds the backends a batch in pieces whose size in frames stays
within a budget, so that a batch of many long utterances does not exhaust memory.

The batch is split along axis 0 (the batch axis of every input and output) only, never along
time: the LSTMs carry state across time, so a cut in time would change the result. A chunk
holds as many rows as fit ``rows x frames_per_row <= frames_budget``, and at least one: a
single utterance longer than the budget is a chunk of its own. ``frames_per_row`` is the
length of axis 1 (time) of the longest input of rank 3 or more (AutoVC's mel (B, T, 80): the
padded T), or 1 when every input has rank 2 or less.

Each chunk's outputs are compared and dropped; the metrics are running totals
(:class:`pipeline.parity.metrics.ComparisonTotals`), so the numbers of a chunked run are those
of the whole batch compared at once on the same outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_CHUNK_FRAMES = 16384
"""Frames (batch rows x padded time steps) per chunk: 2 utterances at the default
``--max-frames`` of 8192, about 6.5 GiB of backend memory at 0.4 MiB per frame."""

RULE = (
    "the batch is split along axis 0 into chunks of at most frames_budget // frames_per_row rows "
    "(at least 1), never along time; metrics are running totals over the chunks"
)


@dataclass(frozen=True)
class ChunkPlan:
    """How one input case is split: ``rows`` batch rows, ``rows_per_chunk`` at a time."""

    rows: int
    frames_per_row: int
    rows_per_chunk: int
    not_split_because: str | None = None

    @property
    def count(self) -> int:
        return max(1, -(-self.rows // self.rows_per_chunk)) if self.rows else 1

    def slices(self) -> list[slice]:
        """The row ranges of the chunks, in batch order (one full slice when not split)."""
        if self.count == 1:
            return [slice(None)]
        return [slice(start, min(start + self.rows_per_chunk, self.rows)) for start in range(0, self.rows, self.rows_per_chunk)]

    def rows_of(self, chunk: slice) -> tuple[int, int]:
        """``(start, stop)`` batch rows of a slice from :meth:`slices`."""
        start, stop, _ = chunk.indices(self.rows)
        return start, stop

    def to_json(self) -> dict[str, Any]:
        return {
            "chunks": self.count,
            "rows": self.rows,
            "rows_per_chunk": self.rows_per_chunk,
            "frames_per_row": self.frames_per_row,
            "not_split_because": self.not_split_because,
        }


def plan_chunks(
    arrays: Mapping[str, np.ndarray], frames_budget: int | None, static_batch_inputs: list[str] | None = None
) -> ChunkPlan:
    """The chunks of one case under ``frames_budget`` (None or 0: never split).

    ``static_batch_inputs``: ONNX inputs whose axis 0 has a fixed size; such a model cannot be
    fed part of a batch, so it is not split.
    """
    values = [np.asarray(a) for a in arrays.values()]
    leading = {a.shape[0] for a in values if a.ndim >= 1}
    rows = leading.pop() if len(leading) == 1 and all(a.ndim >= 1 for a in values) else 0
    frames_per_row = max([int(a.shape[1]) for a in values if a.ndim >= 3] or [1])
    reason = None
    if not frames_budget:
        reason = "chunking is off (frames budget 0)"
    elif not rows:
        reason = "the inputs do not share a batch axis 0"
    elif static_batch_inputs:
        reason = f"the model's batch axis is fixed for input(s) {', '.join(static_batch_inputs)}"
    if reason is not None:
        return ChunkPlan(rows, frames_per_row, max(rows, 1), reason)
    return ChunkPlan(rows, frames_per_row, max(1, min(rows, frames_budget // frames_per_row)))


def take(arrays: Mapping[str, np.ndarray], chunk: slice) -> dict[str, np.ndarray]:
    """The rows ``chunk`` of every input (views, no copy)."""
    return {name: value[chunk] for name, value in arrays.items()}
