"""Figures of one client's linkage analyses: correlation heatmaps, lagged and cross-lagged
links, driver quadrants, unit spread, and any labelled heatmap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import ParameterError
from ._base import _axes, _need, _stars


def plot_correlation_heatmap(corr_table, *, method=None, ax=None, annot=True, cmap="RdBu_r",
                             higher_is_better=None):
    """Heat map of r for every (x, y) pair, marked by BH-adjusted significance.

    Parameters
    ----------
    corr_table : pandas.DataFrame
        Output of :func:`exresearch.linkage.correlations` or
        :func:`~exresearch.linkage.correlation_table` (columns ``x, y, r``
        and ``p_corr``; ``method`` if several methods).
    method : str, optional
        Which method's rows to draw when ``corr_table`` has a ``method``
        column; default the first.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    annot : bool
        Write r (2 decimals) and stars (``*`` p_corr < .05, ``**`` < .01,
        ``***`` < .001) in each cell.
    cmap : str
        Diverging colour map, centred on 0, from -1 to 1.
    higher_is_better : dict, optional
        Column (``y`` value) -> whether a higher value of that outcome is good news.
        When given, colours show the news, not the sign: blue where the link goes the
        good way for that outcome (positive for NPS, negative for turnover), vermillion
        red where it goes the bad way (``RdBu``, whatever ``cmap``); the numbers are the
        correlations themselves.

    Returns
    -------
    matplotlib.axes.Axes
        Rows are the ``x`` columns, columns the ``y`` columns, in order of
        first appearance. Undefined (NaN) cells are left blank.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.plots import plot_correlation_heatmap
    >>> tab = pd.DataFrame({"x": ["ex", "ex"], "y": ["cx", "sales"], "r": [0.4, 0.1],
    ...                     "p_corr": [0.005, 0.5]})
    >>> ax = plot_correlation_heatmap(tab)
    >>> [t.get_text() for t in ax.texts]
    ['0.40**', '0.10']
    >>> tab = pd.DataFrame({"x": ["ex", "ex"], "y": ["nps", "turnover"], "r": [0.4, -0.4]})
    >>> ax = plot_correlation_heatmap(tab, higher_is_better={"turnover": False})
    >>> ax.collections[0].get_array().tolist()  # both good news, coloured alike
    [[0.4, 0.4]]
    """
    _need(corr_table, "corr_table", ["x", "y", "r"])
    tab = corr_table
    if "method" in tab.columns:
        methods = list(pd.unique(tab["method"]))
        method = methods[0] if method is None else method
        if method not in methods:
            raise ParameterError(f"`method` must be one of {methods}, but {method!r} was passed")
        tab = tab[tab["method"] == method]
    xs, ys = list(pd.unique(tab["x"])), list(pd.unique(tab["y"]))
    r = tab.pivot_table(index="x", columns="y", values="r", aggfunc="first", dropna=False)
    r = r.reindex(index=xs, columns=ys).astype(float)
    ax = _axes(ax, (1.2 + 1.1 * len(ys), 0.8 + 0.6 * len(xs)))
    labels = None
    if annot:
        p = (tab.pivot_table(index="x", columns="y", values="p_corr", aggfunc="first", dropna=False)
             .reindex(index=xs, columns=ys).astype(float)
             if "p_corr" in tab.columns else pd.DataFrame(np.nan, index=xs, columns=ys))
        labels = np.array([[f"{r.iat[i, j]:.2f}{_stars(p.iat[i, j])}" if np.isfinite(r.iat[i, j]) else ""
                            for j in range(len(ys))] for i in range(len(xs))])
    vals, cbar_label = r.to_numpy(dtype=float), "r"
    if higher_is_better is not None:
        if not isinstance(higher_is_better, dict):
            raise ParameterError("`higher_is_better` must be a dict of column -> bool, but "
                                 f"{type(higher_is_better).__name__} was passed")
        sign = np.array([1.0 if bool(higher_is_better.get(y, True)) else -1.0 for y in ys])
        vals, cmap = vals * sign, "RdBu"
        cbar_label = "good news (blue) or bad news (red): r, sign turned where lower is better"
    _draw_matrix(ax, vals, xs, ys, labels if annot else None, cmap=cmap,
                 vmin=-1, vmax=1, cbar_label=cbar_label, linewidth=0.5)
    ax.set_xlabel("")
    ax.set_ylabel("")
    title = "Unit-level correlations"
    if method:
        title += f" ({method})"
    ax.set_title(title)
    return ax


def _draw_matrix(ax, vals, rows, cols, labels, *, cmap, vmin, vmax, cbar_label, linewidth,
                 xrotation=None):
    """What ``sns.heatmap`` draws, with plain matplotlib and without its full-figure draw
    to test tick-label overlap (~0.25 s per figure). NaN cells are blank; annotations
    are black or white, whichever contrasts more with the cell (WCAG, at least 4.5:1)."""
    from ..style import text_color_for

    mesh = ax.pcolormesh(np.ma.masked_invalid(vals), cmap=cmap, vmin=vmin, vmax=vmax,
                         edgecolors="white", linewidth=linewidth)
    ax.set_xlim(0, len(cols))
    ax.set_ylim(len(rows), 0)
    shown = [str(v) for v in cols]
    if xrotation is None:  # wrapped onto lines that fit the column, never turned sideways
        import textwrap

        fig_w = ax.figure.get_figwidth() * ax.get_position().width
        chars = max(int(fig_w / max(len(cols), 1) / 0.08), 6)  # about 0.08 in per char
        shown = [textwrap.fill(s, chars, break_long_words=False) for s in shown]
        xrotation = 0
    ax.tick_params(length=0)  # before the ticks are made: one per row, set once
    ax.set_xticks(np.arange(len(cols)) + 0.5, shown, rotation=xrotation)
    ax.set_yticks(np.arange(len(rows)) + 0.5, [str(v) for v in rows], rotation=0, va="center")
    for spine in ax.spines.values():
        spine.set_visible(False)
    cbar = ax.figure.colorbar(mesh, ax=ax, label=cbar_label)
    cbar.outline.set_linewidth(0)
    if labels is not None:
        rgba = mesh.cmap(mesh.norm(vals))[..., :3]
        for i in range(len(rows)):
            for j in range(len(cols)):
                if labels[i][j]:
                    ax.text(j + 0.5, i + 0.5, labels[i][j], ha="center", va="center",
                            color=text_color_for(rgba[i, j]))
    return mesh


def plot_heatmap(grid, *, fmt=".2f", cmap="viridis", vmin=None, vmax=None, cbar_label="",
                 annot=True, ax=None):
    """Heat map of a table of numbers (rows x columns), values written in the cells.

    A plain-matplotlib stand-in for ``sns.heatmap(grid, annot=True, fmt=fmt, ...)``
    (same cells, colours and annotations, about 0.25 s faster per figure).

    Parameters
    ----------
    grid : pandas.DataFrame
        Numbers; the index labels the rows, the columns the columns. NaN cells are blank.
    fmt : str
        Format of the annotations (``format(value, fmt)``).
    cmap : str
        Colour map.
    vmin, vmax : float, optional
        Ends of the colour scale; default the smallest and largest value.
    cbar_label : str
        Label of the colour bar.
    annot : bool
        Write the values in the cells.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.plots import plot_heatmap
    >>> grid = pd.DataFrame({"wellbeing": [1.5, 0.0], "growth": [2.25, float("nan")]},
    ...                     index=["client-01", "client-02"])
    >>> ax = plot_heatmap(grid, fmt=".1f", cmap="Oranges", vmin=0, cbar_label="% missing")
    >>> [t.get_text() for t in ax.texts]
    ['1.5', '2.2', '0.0']
    """
    if not isinstance(grid, pd.DataFrame):
        raise ParameterError(f"`grid` must be a pandas DataFrame, but {type(grid).__name__} was passed")
    vals = grid.to_numpy(dtype=float)
    ax = _axes(ax, (1.2 + 0.9 * grid.shape[1], 0.8 + 0.4 * grid.shape[0]))
    finite = vals[np.isfinite(vals)]
    lo = vmin if vmin is not None else (finite.min() if finite.size else 0.0)
    hi = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
    labels = ([[format(v, fmt) if np.isfinite(v) else "" for v in row] for row in vals]
              if annot else None)
    _draw_matrix(ax, vals, list(grid.index), list(grid.columns), labels, cmap=cmap, vmin=lo,
                 vmax=hi, cbar_label=cbar_label, linewidth=0)
    return ax


def plot_lagged(lagged, *, ax=None):
    """Correlation of EX at t with the outcome at t + lag, with 95% CIs, one line per pair.

    Parameters
    ----------
    lagged : pandas.DataFrame
        Output of :func:`exresearch.direction.lagged_correlations`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
        One error-bar line per (x, y) pair (legend ``"x → y"``), x axis the
        lags, a reference line at r = 0.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.plots import plot_lagged
    >>> lag = pd.DataFrame({"x": ["ex"] * 3, "y": ["cx"] * 3, "lag": [0, 1, 2],
    ...                     "r": [0.3, 0.25, 0.1], "ci_low": [0.1, 0.0, -0.2],
    ...                     "ci_high": [0.5, 0.45, 0.4]})
    >>> ax = plot_lagged(lag)
    >>> len(ax.containers), [t.get_text() for t in ax.get_legend().get_texts()]
    (1, ['ex → cx'])
    """
    _need(lagged, "lagged", ["x", "y", "lag", "r", "ci_low", "ci_high"])
    ax = _axes(ax, (6, 4))
    pairs = list(dict.fromkeys(zip(lagged["x"], lagged["y"], strict=True)))
    width = 0.25 / max(1, len(pairs) - 1) if len(pairs) > 1 else 0.0
    for i, (a, b) in enumerate(pairs):
        sub = lagged[(lagged["x"] == a) & (lagged["y"] == b)].sort_values("lag")
        lag = sub["lag"].to_numpy(float) + (i - (len(pairs) - 1) / 2) * width
        r = sub["r"].to_numpy(float)
        err = np.vstack([r - sub["ci_low"].to_numpy(float), sub["ci_high"].to_numpy(float) - r])
        ax.errorbar(lag, r, yerr=err, marker="o", capsize=3, label=f"{a} → {b}")
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    lags = sorted(pd.unique(lagged["lag"]))
    ax.set_xticks(lags)
    ax.set_xlabel("Lag (periods): EX at t, outcome at t + lag")
    ax.set_ylabel("r (95% CI)")
    ax.set_title("Does today's experience go with later results?")
    # below the axes, so it never covers a series
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2),
              ncol=min(len(pairs), 2))
    return ax


def plot_cross_lagged(cl, *, ax=None, alpha=0.05):
    """Path diagram of a two-wave cross-lagged model with standardized coefficients.

    Parameters
    ----------
    cl : pandas.DataFrame
        Output of :func:`exresearch.direction.cross_lagged`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    alpha : float
        Paths with ``p_val < alpha`` are drawn solid and dark, others dashed
        and grey.

    Returns
    -------
    matplotlib.axes.Axes
        Four boxes (x and y at t and t+1), four arrows (two autoregressive,
        two cross-lagged) each labelled with its coefficient (2 decimals,
        ``*`` when significant); covariates are not drawn.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.plots import plot_cross_lagged
    >>> cl = pd.DataFrame({"source": ["ex", "cx", "cx", "ex"], "target": ["cx", "ex", "cx", "ex"],
    ...                    "kind": ["cross-lagged"] * 2 + ["autoregressive"] * 2,
    ...                    "estimate": [0.3, 0.2, 0.5, 0.5], "p_val": [0.01, 0.2, 0.0, 0.0]})
    >>> ax = plot_cross_lagged(cl)
    >>> len(ax.patches)
    4
    """
    from matplotlib.patches import FancyArrowPatch

    _need(cl, "cl", ["source", "target", "kind", "estimate", "p_val"])
    cross = cl[cl["kind"] == "cross-lagged"]
    if len(cross) != 2:
        raise ParameterError(f"`cl` must hold exactly 2 cross-lagged rows, but {len(cross)} were found")
    x, y = cross["source"].iloc[0], cross["target"].iloc[0]
    ax = _axes(ax, (6, 4))
    pos = {(x, "t"): (0.15, 0.75), (y, "t"): (0.15, 0.25),
           (x, "t+1"): (0.85, 0.75), (y, "t+1"): (0.85, 0.25)}
    for (name, when), (px, py) in pos.items():
        ax.text(px, py, f"{name}\n[{when}]", ha="center", va="center", fontsize=11,
                bbox={"boxstyle": "round,pad=0.5", "fc": "white", "ec": "black"})
    for _, row in cl[cl["kind"].isin(["cross-lagged", "autoregressive"])].iterrows():
        start, end = pos[(row["source"], "t")], pos[(row["target"], "t+1")]
        b, p = float(row["estimate"]), float(row["p_val"])
        sig = np.isfinite(p) and p < alpha
        ax.add_patch(FancyArrowPatch(
            (start[0] + 0.1, start[1]), (end[0] - 0.1, end[1]), arrowstyle="-|>", mutation_scale=15,
            lw=2.0 if sig else 1.0, ls="-" if sig else "--", color="black" if sig else "grey",
        ))
        label = f"{b:.2f}{'*' if sig else ''}" if np.isfinite(b) else "n/a"
        if row["kind"] == "cross-lagged":
            # label each crossing arrow on the arrow itself, a quarter of the way along
            f = 0.25
            mx = start[0] + 0.1 + f * (end[0] - start[0] - 0.2)
            my = start[1] + f * (end[1] - start[1])
        else:
            mx, my = (start[0] + end[0]) / 2, start[1]
        ax.text(mx, my, label, ha="center", va="center", fontsize=10,
                color="black" if sig else "grey",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"})
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    ax.set_title(f"Cross-lagged paths (standardized; * p < {alpha:g})")
    return ax


def plot_driver_quadrant(priorities, *, ax=None):
    """Impact x performance matrix of EX drivers, priority drivers highlighted.

    Parameters
    ----------
    priorities : pandas.DataFrame
        Output of :func:`exresearch.drivers.driver_priorities`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
        One point per driver (x: performance, y: impact = % of R^2), labelled
        with its name, priority drivers in red; dashed lines at the median
        performance and median impact split the four quadrants (descriptive). With an
        ``act_first`` column (the one driver model), the act-first driver is circled and
        labelled "act first", or the chart says "no driver is credibly first".

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.plots import plot_driver_quadrant
    >>> pr = pd.DataFrame({"driver": list("abcd"), "impact": [40.0, 30, 20, 10],
    ...                    "performance": [3.0, 4.2, 3.1, 4.0], "priority": [True, False, False, False]})
    >>> ax = plot_driver_quadrant(pr)
    >>> len(ax.collections[0].get_offsets())
    4
    """
    _need(priorities, "priorities", ["driver", "impact", "performance", "priority"])
    ax = _axes(ax, (6, 5))
    d = priorities.dropna(subset=["impact", "performance"])
    from ..style import GOOD, OKABE_ITO

    colors = np.where(d["priority"].astype(bool), OKABE_ITO[3], GOOD)
    ax.scatter(d["performance"], d["impact"], c=list(colors), s=60, zorder=3)
    # room around the points for their labels; labels point inwards near the right edge
    xs, ys = d["performance"].to_numpy(float), d["impact"].to_numpy(float)
    if len(xs):
        xpad = max(np.ptp(xs), 1e-9) * 0.25
        ypad = max(np.ptp(ys), 1e-9) * 0.25
        ax.set_xlim(xs.min() - xpad, xs.max() + xpad)
        ax.set_ylim(ys.min() - ypad, ys.max() + ypad)
        mid = (xs.min() + xs.max()) / 2
    for _, row in d.iterrows():
        right = row["performance"] > mid
        ax.annotate(str(row["driver"]), (row["performance"], row["impact"]),
                    xytext=(-6 if right else 6, 4), textcoords="offset points", fontsize=9,
                    ha="right" if right else "left", annotation_clip=True)
    ax.axvline(d["performance"].median(), color="grey", ls="--", lw=0.8)
    ax.axhline(d["impact"].median(), color="grey", ls="--", lw=0.8)
    # quadrant names outside the plotting area (above and below), never over a point
    for tx, ty, text, ha in ((0.0, 1.01, "priority: fix first", "left"),
                             (1.0, 1.01, "strength: keep up", "right"),
                             (0.0, -0.13, "monitor", "left"),
                             (1.0, -0.13, "maintain", "right")):
        ax.text(tx, ty, text, transform=ax.transAxes, ha=ha, va="bottom" if ty > 0.5 else "top",
                fontsize=9, color="#555555", style="italic")
    if "act_first" in d.columns:  # the one driver model's decision, not the quadrant's
        named = d[d["act_first"].astype(bool)]
        for _, row in named.iterrows():
            ax.scatter([row["performance"]], [row["impact"]], s=260, facecolors="none",
                       edgecolors="black", lw=1.5, zorder=4)
            ax.annotate("act first", (row["performance"], row["impact"]), xytext=(5, -12),
                        textcoords="offset points", fontsize=9, weight="bold",
                        annotation_clip=True)
        if named.empty:
            ax.text(0.5, 0.5, "no driver is credibly first", transform=ax.transAxes,
                    ha="center", va="center", fontsize=9, color="#555555")
    ax.set_xlabel("Performance (score)")
    ax.set_ylabel("Impact (% of R²)")
    ax.set_title("Where to act: impact x performance")
    return ax


def plot_unit_spread(panel, *, scales, unit="unit_id", ax=None):
    """Distribution of unit means for each EX scale (box plot with one dot per unit).

    Parameters
    ----------
    panel : pandas.DataFrame
        Unit panel for one period (several rows per unit are averaged).
    scales : str or list of str
        Scale columns, drawn side by side (put scales on one response range
        together; eNPS is on -100..100).
    unit : str
        Unit column.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
        One box and one dot per unit for each scale, x tick labels the scale
        names.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.plots import plot_unit_spread
    >>> panel = pd.DataFrame({"unit_id": list("abcde"), "wellbeing": [3.1, 3.5, 3.9, 3.3, 4.2],
    ...                       "growth": [2.9, 3.2, 3.0, 3.8, 3.6]})
    >>> ax = plot_unit_spread(panel, scales=["wellbeing", "growth"])
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['wellbeing', 'growth']
    """
    scales = [scales] if isinstance(scales, str) else list(scales)
    _need(panel, "panel", [unit, *scales])
    means = panel.groupby(unit, sort=False)[scales].mean().reset_index()
    long = means.melt(id_vars=unit, value_vars=scales, var_name="scale", value_name="score").dropna()
    ax = _axes(ax, (1.5 + 1.2 * len(scales), 4))
    # plain matplotlib (seaborn's box and strip plots cost ~0.2 s per figure); the jitter
    # comes from a fixed seed, so the figure is the same in every build
    rng = np.random.default_rng(0)
    boxes, pos = [], []
    for i, sc in enumerate(scales):
        v = long.loc[long["scale"] == sc, "score"].to_numpy(dtype=float)
        if len(v):
            boxes.append(v)
            pos.append(i)
    if boxes:
        ax.boxplot(boxes, positions=pos, widths=0.5, showfliers=False, patch_artist=True,
                   boxprops={"facecolor": "lightgrey", "edgecolor": "0.25"},
                   medianprops={"color": "0.25"}, whiskerprops={"color": "0.25"},
                   capprops={"color": "0.25"})
    for i, v in zip(pos, boxes, strict=True):
        ax.scatter(i + rng.uniform(-0.15, 0.15, size=len(v)), v, s=16, color="#0072B2",
                   alpha=0.8, linewidths=0, zorder=3)
    ax.set_xticks(range(len(scales)), [str(sc) for sc in scales])
    ax.set_xlim(-0.5, len(scales) - 0.5)
    ax.set_xlabel("")
    ax.set_ylabel("Unit mean")
    ax.set_title("How much units differ")
    return ax
