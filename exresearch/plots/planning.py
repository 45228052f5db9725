"""Figures of study planning: power against design size, with the target power."""

from __future__ import annotations

from ._base import _axes, _need


def plot_power(grid, *, x, by=None, target=0.8, current=None, xlabel=None, title="",
               ax=None):
    """Power against one design quantity, one line per value of another.

    Parameters
    ----------
    grid : pandas.DataFrame
        :func:`exresearch.power.power_grid` (column ``power``).
    x : str
        Column on the horizontal axis (``n_clients``, ``r``, ``respondents_per_unit``).
    by : str, optional
        Column with one line per value (``n_units``); one line when omitted.
    target : float, default 0.8
        Target power: a dashed line.
    current : tuple of (x, power), optional
        The current study, circled.
    xlabel, title : str, optional
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"n_clients": [5, 10, 5, 10], "n_units": [10, 10, 20, 20],
    ...                   "power": [0.3, 0.5, 0.5, 0.8]})
    >>> ax = plot_power(g, x="n_clients", by="n_units", current=(10, 0.5))
    >>> [line.get_label() for line in ax.get_lines()][:2]
    ['10 units per client', '20 units per client']
    """
    _need(grid, "grid", [x, "power", *([by] if by else [])])
    ax = _axes(ax, (7.5, 4.2))
    groups = grid.groupby(by) if by else [(None, grid)]
    for value, g in groups:
        ax.plot(g[x], g["power"], marker="o",
                **({"label": f"{value} units per client"} if by else {}))
    ax.axhline(target, color="0.4", ls="--", lw=1)
    if current is not None:
        ax.scatter([current[0]], [current[1]], s=120, facecolors="none", edgecolors="k",
                   zorder=5, label="current study")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel("power")
    ax.set_ylim(0, 1.02)
    if by or current is not None:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax
