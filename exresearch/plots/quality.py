"""Figures of data quality: reported and suppressed unit-periods per client, and the
client x scale heat maps (missing answers, Cronbach's alpha)."""

from __future__ import annotations

import numpy as np

from ..exceptions import ParameterError
from ._base import _axes, _need

__all__ = ["QUALITY_MAX_ROWS", "plot_unit_counts", "plot_client_grid"]

#: Most clients a data-quality figure draws at full size (a row of 0.35-0.4 in per client,
#: each heat-map cell's value written in it); beyond it the figures are compact: 0.11 in
#: per client, 5 pt names, colours only (the values are in the tables and CSV files). At
#: 300 clients a full-size figure is 120 inches (9,300 px) tall and costs 2-4 s of CPU.
QUALITY_MAX_ROWS = 40
#: Height per client (inches) of a compact figure, and its font size of client names.
_COMPACT_ROW_IN, _COMPACT_FONT = 0.11, 5


def _check_max_rows(max_rows) -> None:
    if isinstance(max_rows, bool) or not isinstance(max_rows, int | np.integer) \
            or max_rows < 1:
        raise ParameterError(f"`max_rows` must be a whole number of at least 1 (clients "
                             f"drawn at full size), but {max_rows!r} was passed")


def plot_unit_counts(counts, *, min_group_size, ax=None, max_rows=None):
    """Reported and suppressed unit-periods per client, as stacked bars.

    Parameters
    ----------
    counts : pandas.DataFrame
        Stacked :func:`exresearch.report.response_counts` with ``client_id``.
    min_group_size : int
        Named in the legend.
    ax : matplotlib.axes.Axes, optional
    max_rows : int, optional
        Most clients drawn at full size (0.35 in per bar); with more, the figure is
        compact (0.11 in per bar, 5 pt names). Default: always full size.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> c = pd.DataFrame({"client_id": ["a", "a", "b"], "units_reported": [3, 4, 5],
    ...                   "units_suppressed": [1, 0, 2]})
    >>> ax = plot_unit_counts(c, min_group_size=5)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['b', 'a']
    >>> float(round(plot_unit_counts(c, min_group_size=5, max_rows=1).figure.get_figheight(), 2))
    1.72
    """
    _need(counts, "counts", ["client_id", "units_reported", "units_suppressed"])
    if max_rows is not None:
        _check_max_rows(max_rows)
    by_client = counts.groupby("client_id", sort=False)[["units_reported",
                                                         "units_suppressed"]].sum()
    compact = max_rows is not None and len(by_client) > max_rows
    per_row = _COMPACT_ROW_IN if compact else 0.35
    ax = _axes(ax, (8, per_row * len(by_client) + 1.5))
    if compact:  # before the bars: each client's tick is made small, not made then changed
        ax.tick_params(axis="y", labelsize=_COMPACT_FONT, length=0)
    by_client.iloc[::-1].plot.barh(stacked=True, ax=ax, color=["C0", "C3"],
                                   width=0.8 if compact else 0.5)
    if compact:
        ax.set_ylim(-0.6, len(by_client) - 0.4)
    ax.set_xlabel("unit-periods")
    ax.set_ylabel("")
    ax.legend(["reported", f"suppressed (fewer than {min_group_size} respondents)"], fontsize=8,
              ncol=2, loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)
    ax.figure.tight_layout()
    return ax


def plot_client_grid(grid, *, max_rows=QUALITY_MAX_ROWS, **kwargs):
    """A client x scale heat map: :func:`exresearch.plots.plot_heatmap`, compact beyond
    ``max_rows`` clients.

    Parameters
    ----------
    grid : pandas.DataFrame
        One row per client, one column per scale (:func:`exresearch.report.scale_grid`).
    max_rows : int, default :data:`QUALITY_MAX_ROWS`
        Most clients drawn as :func:`~exresearch.plots.plot_heatmap` draws them (the
        same figure, values written in the cells); with more, the cells are 0.11 in
        tall, without values, the client names at 5 pt, the scale names above and below.
    **kwargs
        ``fmt, cmap, vmin, vmax, cbar_label`` of :func:`~exresearch.plots.plot_heatmap`.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"a": [0.8, 0.7, 0.9]}, index=["x", "y", "z"])
    >>> len(plot_client_grid(g, fmt=".2f").texts), len(plot_client_grid(g, max_rows=2).texts)
    (3, 0)
    """
    import matplotlib.pyplot as plt

    from .linkage import plot_heatmap

    _check_max_rows(max_rows)
    if len(grid) <= max_rows:
        return plot_heatmap(grid, **kwargs)
    kwargs.pop("fmt", None)
    kwargs.pop("annot", None)
    _, ax = plt.subplots(figsize=(1.2 + 0.9 * grid.shape[1],
                                  0.8 + _COMPACT_ROW_IN * grid.shape[0]))
    # before the heat map makes a tick per client: each is made small (changing 300
    # ticks afterwards costs about as much as making them)
    ax.tick_params(axis="y", labelsize=_COMPACT_FONT)
    plot_heatmap(grid, annot=False, ax=ax, **kwargs)
    ax.tick_params(axis="x", labeltop=True)  # scale names above the first clients too
    return ax
