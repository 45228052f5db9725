"""Figures of the synthesis drawn as published meta-analyses draw them.

Figures take tables (computing stays in :mod:`exresearch.meta`,
:mod:`exresearch.psychometric` and :mod:`exresearch.synthesis`):

- :func:`plot_forest_table` - a forest plot with numeric columns (r, 95% CI, units,
  weight %), rows sorted by effect, squares whose *area* is proportional to the
  random-effects weight, the pooled diamond and the prediction interval;
- :func:`plot_forest_panels` - small multiples of compact forest plots, one per outcome;
- :func:`plot_rho_heatmap` - EX measure x outcome heat map of the corrected correlation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._checks import check_column_args as _check_columns
from ..exceptions import ParameterError

__all__ = ["forest_rows", "plot_forest_table", "plot_forest_panels", "plot_rho_heatmap"]

_Z975 = 1.959963984540054
#: Marker area (points^2) of the heaviest client's square.
_MAX_AREA = 220.0


def forest_rows(data, *, r="r", n="n", label="client", result=None, method="REML",
                sort=True) -> pd.DataFrame:
    """The rows of a forest plot: each client's r, CI, units and weight.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client.
    r, n, label : str
        Columns.
    result : pandas.Series, optional
        :func:`exresearch.meta.meta_analysis` of ``data`` (computed with ``method`` if
        None).
    method : {"REML", "DL", "FE"}
    sort : bool, default True
        Sort by r, largest first.

    Returns
    -------
    pandas.DataFrame
        ``label, r, ci_low, ci_high, n, weight`` (random-effects weight
        :math:`1/(v_i + \\tau^2)` on Fisher's z, in percent of the total).

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"client": list("abc"), "r": [0.2, 0.4, 0.3], "n": [50, 30, 100]})
    >>> forest_rows(d, method="FE")[["label", "weight"]].round(1).values.tolist()
    [['b', 15.8], ['c', 56.7], ['a', 27.5]]
    """
    from ..meta import meta_analysis

    _check_columns(data, r=r, n=n, label=label)
    d = data[[label, r, n]].dropna().copy()
    d = d[(d[n] > 3) & (d[r].abs() < 1)]
    if result is None:
        result = meta_analysis(d, r=r, n=n, method=method)
    z, v = np.arctanh(d[r].to_numpy(float)), 1.0 / (d[n].to_numpy(float) - 3.0)
    tau2 = result["tau2"] if np.isfinite(result["tau2"]) else 0.0
    w = 1.0 / (v + tau2)
    out = pd.DataFrame({"label": d[label].astype(str).to_numpy(), "r": d[r].to_numpy(float),
                        "ci_low": np.tanh(z - _Z975 * np.sqrt(v)),
                        "ci_high": np.tanh(z + _Z975 * np.sqrt(v)),
                        "n": d[n].to_numpy(float), "weight": 100.0 * w / w.sum()})
    if sort:
        out = out.sort_values(["r", "label"], ascending=[False, True])
    return out.reset_index(drop=True)


def plot_forest_table(data, *, r="r", n="n", label="client", result=None, method="REML",
                      sort=True, title=None, xlabel="Correlation (r)", ax=None):
    """Forest plot with the numbers beside it, as a published meta-analysis shows it.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client.
    r, n, label : str
        Columns of correlations, units and client names.
    result : pandas.Series, optional
        :func:`exresearch.meta.meta_analysis` of ``data``.
    method : {"REML", "DL", "FE"}
        Used when ``result`` is None.
    sort : bool, default True
        Clients sorted by r, largest at the top.
    title : str, optional
    xlabel : str
    ax : matplotlib.axes.Axes, optional
        Axes for the plot panel; the numeric columns are written to its right (in axes
        coordinates), so leave room (the default figure does).

    Returns
    -------
    matplotlib.axes.Axes
        One row per client: a horizontal 95% CI, a square whose area is proportional
        to the client's weight (gid ``"square"``); the pooled diamond (a ``Polygon``
        labelled ``"pooled"``) and the prediction interval (a line labelled
        ``"prediction interval"``); columns of text: r, 95% CI, units, weight %.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"client": list("abc"), "r": [0.2, 0.4, 0.3], "n": [50, 30, 100]})
    >>> ax = plot_forest_table(d, method="FE")
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['Pooled (FE)', 'b', 'c', 'a']
    >>> "Weight" in [t.get_text() for t in ax.texts]
    True
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    from ..meta import meta_analysis

    rows_df = data[[label, r, n]].dropna() if all(c in data.columns for c in (label, r, n)) \
        else data
    if result is None:
        result = meta_analysis(rows_df, r=r, n=n, method=method) if len(rows_df) >= 2 else None
    if result is None:
        raise ParameterError(f"a forest plot needs at least 2 clients, but {len(rows_df)} "
                             "were passed")
    rows = forest_rows(data, r=r, n=n, label=label, result=result, sort=sort)
    k = len(rows)
    if ax is None:
        _, ax = plt.subplots(figsize=(9.5, 0.32 * k + 1.9))
        ax.figure.subplots_adjust(left=0.16, right=0.56)
    y = np.arange(k, 0, -1) + 1.0
    ax.hlines(y, rows["ci_low"], rows["ci_high"], color="0.25", lw=1.1)
    area = _MAX_AREA * rows["weight"] / rows["weight"].max()
    sc = ax.scatter(rows["r"], y, s=area, marker="s", color="0.15", zorder=3)
    sc.set_gid("square")
    est, lo, hi = result["estimate"], result["ci_low"], result["ci_high"]
    ax.hlines(0.0, result["pi_low"], result["pi_high"], color="C0", lw=2,
              label="prediction interval")
    ax.add_patch(Polygon([(lo, 0), (est, 0.35), (hi, 0), (est, -0.35)], closed=True,
                         color="C0", label="pooled", zorder=4))
    ax.axvline(0.0, color="0.5", ls=":", lw=1)
    ax.axvline(est, color="C0", ls="--", lw=0.8)
    ax.set_yticks([0.0, *y], [f"Pooled ({method if result is not None else ''})",
                              *rows["label"].tolist()])
    ax.set_ylim(-1, k + 2.2)
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, loc="left", fontsize=10)
    # numeric columns to the right of the plot panel, in axes x / data y coordinates
    trans = ax.get_yaxis_transform()
    cols = [(1.04, "r"), (1.22, "95% CI"), (1.58, "Units"), (1.78, "Weight")]
    for xpos, head in cols:
        ax.text(xpos, k + 1.6, head, transform=trans, fontsize=8, fontweight="bold",
                va="center")
    for yi, row in zip(y, rows.itertuples(index=False), strict=True):
        vals = [f"{row.r:.2f}", f"{row.ci_low:.2f} to {row.ci_high:.2f}", f"{row.n:.0f}",
                f"{row.weight:.1f}%"]
        for (xpos, _), v in zip(cols, vals, strict=True):
            ax.text(xpos, yi, v, transform=trans, fontsize=8, va="center")
    pooled = [f"{est:.2f}", f"{lo:.2f} to {hi:.2f}", f"{rows['n'].sum():.0f}", "100%"]
    for (xpos, _), v in zip(cols, pooled, strict=True):
        ax.text(xpos, 0.0, v, transform=trans, fontsize=8, va="center", fontweight="bold")
    ax.text(1.04, -0.75, f"95% prediction interval {result['pi_low']:.2f} to "
            f"{result['pi_high']:.2f}", transform=trans, fontsize=7, va="center",
            color="C0")
    return ax


def plot_forest_panels(per_client, *, x, ys, label="client", method="REML", labels=None,
                     ncols=2, title=None, fig=None):
    """Small multiples: one compact forest plot per outcome, on a shared r axis.

    Parameters
    ----------
    per_client : pandas.DataFrame
        ``client, x, y, n, r`` (:func:`exresearch.report.per_client_correlations`).
    x : str
        The EX measure.
    ys : list of str
        Outcomes, one panel each.
    label : str, default "client"
    method : {"REML", "DL", "FE"}
    labels : dict, optional
        Column -> reader's label, for titles.
    ncols : int, default 2
    title : str, optional
        The figure's title, top left (10 pt), set before the layout: the figure is
        laid out once (a title added afterwards needs another ``tight_layout``, which
        costs as much as drawing the figure).
    fig : matplotlib.figure.Figure, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axes per outcome (clients sorted by r, squares sized by weight, diamond and
        prediction interval); an outcome with fewer than 2 clients is an empty panel
        saying so.

    Examples
    --------
    >>> import pandas as pd
    >>> pc = pd.DataFrame({"client": list("abcabc"), "x": "ex", "y": ["nps"] * 3 + ["growth"] * 3,
    ...                    "r": [0.2, 0.4, 0.3, 0.1, 0.0, 0.2], "n": [50, 30, 100] * 2})
    >>> fig = plot_forest_panels(pc, x="ex", ys=["nps", "growth"])
    >>> [a.get_title(loc="left") for a in fig.axes]
    ['nps', 'growth']
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    from ..meta import meta_analysis

    _check_columns(per_client, label=label, x="x", y="y", r="r", n="n")
    labels = labels or {}
    nrows = int(np.ceil(len(ys) / ncols))
    k_max = int(per_client[per_client["x"] == x].groupby("y").size().max() or 1)
    if fig is None:
        fig = plt.figure(figsize=(5.2 * ncols, nrows * (0.24 * k_max + 1.6)))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
    for ax, y in zip(axes.flat, ys, strict=False):
        d = per_client[(per_client["x"] == x) & (per_client["y"] == y)].dropna(subset=["r", "n"])
        d = d[d["n"] > 3]
        ax.set_title(str(labels.get(y, y)), loc="left", fontsize=9)
        if len(d) < 2:
            ax.text(0.5, 0.5, "fewer than 2 clients with a correlation", ha="center",
                    va="center", transform=ax.transAxes, fontsize=8)
            ax.set_yticks([])
            continue
        res = meta_analysis(d, method=method)
        rows = forest_rows(d, label=label, result=res)
        k = len(rows)
        yy = np.arange(k, 0, -1) + 1.0
        ax.hlines(yy, rows["ci_low"], rows["ci_high"], color="0.3", lw=0.9)
        sc = ax.scatter(rows["r"], yy, s=_MAX_AREA * 0.6 * rows["weight"] / rows["weight"].max(),
                        marker="s", color="0.15", zorder=3)
        sc.set_gid("square")
        ax.hlines(0.0, res["pi_low"], res["pi_high"], color="C0", lw=1.8,
                  label="prediction interval")
        ax.add_patch(Polygon([(res["ci_low"], 0), (res["estimate"], 0.35), (res["ci_high"], 0),
                              (res["estimate"], -0.35)], closed=True, color="C0",
                             label="pooled", zorder=4))
        ax.axvline(0.0, color="0.5", ls=":", lw=0.8)
        ax.set_yticks([0.0, *yy], [f"Pooled r = {res['estimate']:.2f}", *rows["label"]],
                      fontsize=7)
        ax.set_ylim(-1, k + 1.8)
    for ax in list(axes.flat)[len(ys):]:
        ax.remove()
    for ax in fig.axes:
        ax.tick_params(labelbottom=True, labelsize=7)
        ax.set_xlabel("r with 95% CI", fontsize=8)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    fig.tight_layout()
    return fig


def plot_rho_heatmap(table, *, value="mean_rho", x="x", y="y", labels=None, ax=None):
    """Heat map of the corrected correlations: EX measures (rows) x outcomes (columns).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`exresearch.synthesis.psychometric_table` (or any ``x, y, value``).
    value : str, default "mean_rho"
    x, y : str
        Row and column keys.
    labels : dict, optional
        Column -> reader's label.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        :func:`exresearch.plots.plot_heatmap` on a diverging scale centred at 0.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"x": ["ex", "ex"], "y": ["nps", "growth"], "mean_rho": [0.3, -0.1]})
    >>> ax = plot_rho_heatmap(t)
    >>> sorted(t.get_text() for t in ax.texts)
    ['-0.10', '0.30']
    """
    from .linkage import plot_heatmap

    _check_columns(table, x=x, y=y, value=value)
    labels = labels or {}
    grid = table.pivot(index=x, columns=y, values=value)
    grid = grid.reindex(index=list(dict.fromkeys(table[x])), columns=list(dict.fromkeys(table[y])))
    grid.index = [str(labels.get(i, i)) for i in grid.index]
    grid.columns = [str(labels.get(c, c)) for c in grid.columns]
    lim = float(np.nanmax(np.abs(grid.to_numpy(float)))) if grid.notna().any().any() else 1.0
    return plot_heatmap(grid, fmt=".2f", cmap="RdBu_r", vmin=-lim, vmax=lim,
                        cbar_label="corrected r (rho)", ax=ax)
