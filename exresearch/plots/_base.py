"""Helpers shared by the figure functions: the axes to draw on, input checks, stars."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import ParameterError


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _need(frame, name, cols):
    if not isinstance(frame, pd.DataFrame):
        raise ParameterError(f"`{name}` must be a pandas DataFrame, but {type(frame).__name__} was passed")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ParameterError(
            f"`{name}` lacks column(s) {missing}; it should be the output of the matching "
            f"exresearch.linkage function (columns found: {list(frame.columns)})"
        )


def _stars(p):
    if not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""
