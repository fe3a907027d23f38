"""Formatting shared by the parity and train-parity reports: escaped HTML text, numbers in
scientific notation, figures as inline PNG, and strict-JSON values."""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any


def escape_html(text: Any) -> str:
    """``text`` as HTML text or attribute value."""
    return html.escape(str(text), quote=True)


def scientific(value: float | None) -> str:
    """``1.234e-05``; ``n/a`` for a missing value."""
    return "n/a" if value is None else f"{value:.3e}"


def png_img(fig: Any, alt: str) -> str:
    """A matplotlib figure as a self-contained ``<img>`` (base64 PNG at 90 dpi); closes the figure."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{escape_html(alt)}" src="data:image/png;base64,{data}">'


def finite_or_null(value: Any) -> Any:
    """``value`` with every non-finite float (in nested dicts, lists and tuples) as None, so that
    it serialises as strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value
