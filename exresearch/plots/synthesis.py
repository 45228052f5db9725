"""Figures of the synthesis drawn as published meta-analyses draw them.

Figures take tables (computing stays in :mod:`exresearch.meta`,
:mod:`exresearch.psychometric` and :mod:`exresearch.synthesis`):

- :func:`plot_forest_table` - a forest plot with numeric columns (r, 95% CI, units,
  weight %), rows sorted by effect, squares whose *area* is proportional to the
  random-effects weight, the pooled diamond and the prediction interval;
- :func:`plot_forest_panels` - small multiples of compact forest plots, one per outcome;
- :func:`plot_caterpillar` - the compact form beyond :data:`FOREST_MAX_ROWS` clients:
  estimates sorted with their intervals, no text per row, the pooled estimate, its CI and
  prediction interval marked; every client's numbers go to a table instead;
- :func:`plot_rho_heatmap` - EX measure x outcome heat map of the corrected correlation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._checks import check_column_args as _check_columns
from ..exceptions import ParameterError

__all__ = ["FOREST_MAX_ROWS", "forest_rows", "plot_forest_table", "plot_forest_panels",
           "plot_caterpillar", "plot_rho_heatmap"]

_Z975 = 1.959963984540054
#: Marker area (points^2) of the heaviest client's square.
_MAX_AREA = 220.0
#: Most clients a forest plot shows row by row (with names and numbers); beyond it the
#: plot is a caterpillar (:func:`plot_caterpillar`): at 300 clients a row per client is
#: a figure 100 inches tall that no reader can use and that costs seconds to draw.
FOREST_MAX_ROWS = 40


def _check_max_rows(max_rows) -> None:
    if isinstance(max_rows, bool) or not isinstance(max_rows, int | np.integer) \
            or max_rows < 1:
        raise ParameterError(f"`max_rows` must be a whole number of at least 1 (clients "
                             f"drawn row by row), but {max_rows!r} was passed")


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
                      sort=True, title=None, xlabel="Correlation (r)", ax=None,
                      max_rows=FOREST_MAX_ROWS):
    """Forest plot with the numbers beside it, as a published meta-analysis shows it.

    Beyond ``max_rows`` clients the plot is a caterpillar (:func:`plot_caterpillar`)
    instead: the same estimates, intervals and pooled result, without a row of text per
    client (show :func:`forest_rows` as a table beside it).

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
    max_rows : int, default :data:`FOREST_MAX_ROWS`
        Most clients drawn row by row; more are drawn as a caterpillar.

    Returns
    -------
    matplotlib.axes.Axes
        Up to ``max_rows`` clients, one row per client: a horizontal 95% CI, a square
        whose area is proportional to the client's weight (gid ``"square"``); the pooled diamond (a ``Polygon``
        labelled ``"pooled"``) and the prediction interval (a line labelled
        ``"prediction interval"``); columns of text: r, 95% CI, units, weight %.
        Beyond ``max_rows``, :func:`plot_caterpillar`'s axes.

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
    _check_max_rows(max_rows)
    rows = forest_rows(data, r=r, n=n, label=label, result=result, sort=sort)
    k = len(rows)
    if k > max_rows:
        return plot_caterpillar(rows, pooled=result, title=title, xlabel=xlabel, ax=ax,
                                what="clients")
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
                       ncols=2, title=None, fig=None, results=None,
                       max_rows=FOREST_MAX_ROWS):
    """Small multiples: one compact forest plot per outcome, on a shared r axis.

    A panel of more than ``max_rows`` clients is a caterpillar (as
    :func:`plot_caterpillar`: no client names, the pooled value in the panel's label).

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
    results : dict, optional
        Outcome -> its pooled result (:func:`exresearch.meta.meta_analysis` or a row of
        :func:`exresearch.meta.pool_correlations` of the same rows), so that what was
        pooled once is not pooled again per figure; outcomes not in it are pooled here
        with ``method``.
    max_rows : int, default :data:`FOREST_MAX_ROWS`
        Most clients a panel draws row by row with their names.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per outcome (clients sorted by r, squares sized by weight, diamond and
        prediction interval; beyond ``max_rows``, a caterpillar); an outcome with fewer
        than 2 clients is an empty panel saying so.

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
    _check_max_rows(max_rows)
    labels, results = labels or {}, results or {}
    nrows = int(np.ceil(len(ys) / ncols))
    k_max = int(per_client[per_client["x"] == x].groupby("y").size().max() or 1)
    if fig is None:
        # a caterpillar panel has a fixed height, whatever the number of clients
        fig = plt.figure(figsize=(5.2 * ncols, nrows * (
            0.24 * k_max + 1.6 if k_max <= max_rows else 3.4)))
    axes = _shared_x_panels(fig, nrows, ncols, len(ys))
    for ax, y in zip(axes, ys, strict=True):
        d = per_client[(per_client["x"] == x) & (per_client["y"] == y)].dropna(subset=["r", "n"])
        d = d[d["n"] > 3]
        ax.set_title(str(labels.get(y, y)), loc="left", fontsize=9)
        if len(d) < 2:
            ax.text(0.5, 0.5, "fewer than 2 clients with a correlation", ha="center",
                    va="center", transform=ax.transAxes, fontsize=8)
            ax.set_yticks([])
            continue
        res = results[y] if y in results else meta_analysis(d, method=method)
        rows = forest_rows(d, label=label, result=res)
        k = len(rows)
        if k > max_rows:
            _draw_caterpillar(ax, rows, value="r", low="ci_low", high="ci_high", pooled=res,
                              small=True)
            ax.set_ylabel(f"{k} clients, sorted; pooled r = {res['estimate']:.2f}",
                          fontsize=7)
            continue
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
    for ax in fig.axes:
        ax.tick_params(labelbottom=True, labelsize=7)
        ax.set_xlabel("r with 95% CI", fontsize=8)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    fig.tight_layout()
    return fig


def _shared_x_panels(fig, nrows, ncols, n):
    """The first ``n`` axes of ``fig.subplots(nrows, ncols, sharex=True)``, row by row,
    without creating the others (an axes and its ticks cost 10 ms to make and remove).

    As ``subplots`` leaves them: one x axis shared by all, and above the bottom row no x
    tick labels and no offset text (matplotlib's ``_label_outer_xaxis``).
    """
    gs = fig.add_gridspec(nrows, ncols)
    axes = []
    for i in range(n):
        axes.append(fig.add_subplot(gs[i // ncols, i % ncols],
                                    sharex=axes[0] if axes else None))
    for ax in axes:
        ss = ax.get_subplotspec()
        if not ss.is_first_row():
            ax.xaxis.set_tick_params(which="both", labeltop=False)
            if ax.xaxis.offsetText.get_position()[1] == 1:
                ax.xaxis.offsetText.set_visible(False)
        if not ss.is_last_row():
            ax.xaxis.set_tick_params(which="both", labelbottom=False)
            if ax.xaxis.offsetText.get_position()[1] == 0:
                ax.xaxis.offsetText.set_visible(False)
    return axes


def _hlines(ax, y, xmin, xmax, **kwargs):
    """``ax.hlines(y, xmin, xmax, **kwargs)`` on a rectilinear axes, for float arrays of one
    length: the same LineCollection, data limits and pixels, at a fifth of its CPU.

    ``Axes.hlines`` builds its segments as one masked array, and ``LineCollection``
    turns each segment (a masked array of its own, ~20 us to index) into a path: 8 ms
    for 300 intervals, 45 panels in a 300-client synthesis. Here the segments are a
    plain array; a segment with a NaN or infinite end is all NaN, as hlines masks it.
    """
    from matplotlib.collections import LineCollection

    verts = np.empty((len(y), 2, 2))
    verts[:, 0, 0], verts[:, 0, 1] = xmin, y
    verts[:, 1, 0], verts[:, 1, 1] = xmax, y
    verts[~np.isfinite(verts).all(axis=(1, 2))] = np.nan
    # hlines' own steps, in its order (matplotlib 3.11 Axes.hlines)
    lines = LineCollection(verts, colors=None, linestyles="solid", label="")
    ax.add_collection(lines, autolim=False)
    lines.set(**kwargs)
    if len(y):
        lim = lines.get_datalim(ax.transData)
        ax.update_datalim(((np.nanmin(lim.xmin), np.nanmin(lim.ymin)),
                           (np.nanmax(lim.xmax), np.nanmax(lim.ymax))))
        ax._request_autoscale_view()  # what hlines does: the limits follow the data
    return lines


def _draw_caterpillar(ax, d, *, value, low, high, pooled, small=False):
    """Draw sorted estimates with intervals on ``ax`` (largest at the top), the pooled
    estimate as a vertical line over a band of its CI and a lighter band of its
    prediction interval; no text per row. ``pooled`` may be None."""
    cols = d[[value, low, high]].astype(float).to_numpy()
    cols = cols[~np.isnan(cols[:, 0])]
    # a stable sort, as pandas' mergesort: equal estimates keep the table's order
    values, lows, highs = cols[np.argsort(cols[:, 0], kind="stable")].T  # largest on top
    k = len(values)
    y = np.arange(1, k + 1, dtype=float)
    # one LineCollection and one PathCollection whatever the number of clients
    lines = _hlines(ax, y, lows, highs, color="0.6", lw=0.5 if k > 150 else 0.8)
    lines.set_gid("intervals")
    dots = ax.scatter(values, y, s=4 if small or k > 150 else 9, color="0.1", zorder=3,
                      linewidths=0)
    dots.set_gid("estimates")
    if pooled is not None and np.isfinite(pooled.get("estimate", np.nan)):
        est = float(pooled["estimate"])
        pi_lo, pi_hi = pooled.get("pi_low", np.nan), pooled.get("pi_high", np.nan)
        if np.isfinite(pi_lo) and np.isfinite(pi_hi):
            ax.axvspan(pi_lo, pi_hi, color="C0", alpha=0.12, lw=0, zorder=0,
                       label=f"95% prediction interval {pi_lo:.2f} to {pi_hi:.2f}")
        ax.axvspan(pooled["ci_low"], pooled["ci_high"], color="C0", alpha=0.35, lw=0,
                   zorder=1, label=f"95% CI {pooled['ci_low']:.2f} to {pooled['ci_high']:.2f}")
        ax.axvline(est, color="C0", lw=1.6, zorder=2, label=f"pooled {est:.2f}")
    ax.axvline(0.0, color="0.4", ls=":", lw=0.8)
    ax.set_yticks([])
    ax.set_ylim(0, k + 1)
    return k


def plot_caterpillar(data, *, value="r", low="ci_low", high="ci_high", pooled=None,
                     title=None, xlabel="Correlation (r) with 95% CI", what="clients",
                     ax=None):
    """Caterpillar plot: many clients' estimates sorted, with intervals, the pool marked.

    The compact form of a forest plot for many clients (:data:`FOREST_MAX_ROWS`): one
    thin line (the interval) and a dot (the estimate) per client, sorted so that the
    largest is at the top, without a name or numbers per row; the pooled estimate is a
    vertical line over a band of its 95% CI and a lighter band of its 95% prediction
    interval, their values in the legend. Its size does not grow with the number of
    clients. Show every client's numbers in a table beside it (the notebooks do).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client (e.g. :func:`forest_rows`).
    value, low, high : str
        Columns of the estimate and its interval.
    pooled : pandas.Series or dict, optional
        ``estimate, ci_low, ci_high`` and, when known, ``pi_low, pi_high``
        (:func:`exresearch.meta.meta_analysis`, a row of
        :func:`exresearch.meta.pool_correlations` or of
        :func:`exresearch.synthesis.study_utility`). None: no pooled marks.
    title : str, optional
    xlabel : str
    what : str, default "clients"
        What a row is, for the y-axis label ("300 clients, sorted by estimate").
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        The intervals as one line collection (gid ``"intervals"``), the estimates as one
        scatter (gid ``"estimates"``), no y tick labels; with ``pooled``, a line labelled
        ``"pooled ..."`` and bands labelled ``"95% CI ..."`` and ``"95% prediction
        interval ..."``, in a legend under the plot.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"r": [0.1, 0.3, 0.2], "ci_low": [0.0, 0.1, 0.1],
    ...                   "ci_high": [0.2, 0.5, 0.3]})
    >>> ax = plot_caterpillar(d, pooled={"estimate": 0.2, "ci_low": 0.15, "ci_high": 0.25,
    ...                                  "pi_low": 0.05, "pi_high": 0.35})
    >>> [float(v) for v in ax.collections[1].get_offsets()[:, 0]]  # sorted, largest on top
    [0.1, 0.2, 0.3]
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['95% prediction interval 0.05 to 0.35', '95% CI 0.15 to 0.25', 'pooled 0.20']
    """
    import matplotlib.pyplot as plt

    _check_columns(data, value=value, low=low, high=high)
    if ax is None:
        # a fixed size: 300 clients take no more room than 40
        _, ax = plt.subplots(figsize=(4.2, 4.4))  # fits a phone (about 380 px at 90 dpi)
    k = _draw_caterpillar(ax, data, value=value, low=low, high=high, pooled=pooled)
    ax.set_ylabel(f"{k} {what}, sorted by estimate")
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, loc="left", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        # under the plot, so it never covers a client (and no search for a free corner)
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), ncol=1, fontsize=8,
                  frameon=False)
    return ax


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
