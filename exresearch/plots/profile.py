"""Figures of one client's profile: EX over periods, and where it stands among the others."""

from __future__ import annotations

import numpy as np

from ._base import _axes, _need


def plot_trend(trend, *, scales, labels=None, points=(1, 5), ax=None):
    """Average over units of some EX scales, period by period.

    Parameters
    ----------
    trend : pandas.DataFrame
        :func:`exresearch.report.ex_trend`.
    scales : list of str
        Scales to draw, one line each.
    labels : dict, optional
        Scale -> reader's label (legend).
    points : tuple, default (1, 5)
        The answer range (axis label).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        One line per scale; the y axis spans at least one point around the middle of the
        values shown.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"scale": ["a", "a", "b", "b"], "period": ["q1", "q2"] * 2,
    ...                   "mean": [3.0, 3.2, 4.0, 3.9]})
    >>> ax = plot_trend(t, scales=["a", "b"], labels={"a": "A"})
    >>> [line.get_label() for line in ax.get_lines()], tuple(map(float, ax.get_ylim()))
    (['A', 'b'], (3.0, 4.0))
    """
    _need(trend, "trend", ["scale", "period", "mean"])
    labels = labels or {}
    ax = _axes(ax, (5, 4))
    for scale in scales:
        t = trend[trend["scale"] == scale]
        ax.plot(t["period"], t["mean"], marker="o", label=labels.get(scale, scale))
    low, high = trend.loc[trend["scale"].isin(scales), "mean"].agg(["min", "max"])
    ax.set_ylim(min(low, (low + high) / 2 - 0.5), max(high, (low + high) / 2 + 0.5))
    ax.set_title("Average over units, by period")
    ax.set_ylabel(f"score ({points[0]}-{points[1]})")
    ax.legend(fontsize=8)
    return ax


def plot_benchmark(benchmark, *, ax=None):
    """The share of the other organisations a client does better than, per measure.

    Parameters
    ----------
    benchmark : pandas.DataFrame
        Measures not withheld, with ``label`` and ``better_than_pct``
        (:func:`exresearch.report.benchmark_table` with :func:`exresearch.report.better_than`).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        One bar per measure (first at the top), green at or above 50%, orange below; a
        dashed line at 50%.

    Examples
    --------
    >>> import pandas as pd
    >>> b = pd.DataFrame({"label": ["EX", "NPS"], "better_than_pct": [70.0, 20.0]})
    >>> ax = plot_benchmark(b)
    >>> [t.get_text() for t in ax.get_yticklabels()], tuple(map(float, ax.get_xlim()))
    (['NPS', 'EX'], (0.0, 100.0))
    """
    _need(benchmark, "benchmark", ["label", "better_than_pct"])
    ax = _axes(ax, (7, 0.35 * len(benchmark) + 1.2))
    d = benchmark.iloc[::-1]
    from ..style import BAD, GOOD

    ax.barh(d["label"], d["better_than_pct"],
            color=np.where(d["better_than_pct"] >= 50, GOOD, BAD))
    zero = d["better_than_pct"].to_numpy(float) == 0
    if zero.any():  # a bar of length 0 would be invisible: mark it and say so
        ax.scatter(np.zeros(zero.sum()), np.flatnonzero(zero), marker="|", s=200,
                   color=BAD, zorder=3, clip_on=False)
        for y in np.flatnonzero(zero):
            ax.text(1, y, "0%: better than none", va="center", fontsize=9, color="#333333")
    ax.axvline(50, color="0.4", ls="--", lw=1)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the other organisations you do better than "
                  "(lower turnover counts as better)")
    ax.figure.tight_layout()
    return ax
