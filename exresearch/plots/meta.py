"""Figures of the synthesis across clients: forest plots (one outcome, or a grid of them)."""

from __future__ import annotations

import numpy as np


def plot_forest(data, *, r="r", n="n", label="client_id", result=None, method="REML",
                ax=None):
    """Forest plot: each client's correlation with its CI, and the pooled estimate.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client.
    r, n, label : str
        Columns of correlations, sample sizes and client labels.
    result : pandas.Series, optional
        Output of :func:`exresearch.meta.meta_analysis`; computed with ``method`` when omitted.
    method : str, default "REML"
        Used only when ``result`` is None.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is created otherwise.

    Returns
    -------
    matplotlib.axes.Axes
        One horizontal line (95% CI on Fisher's z, back-transformed) and one square per
        client, the square's area proportional to its weight :math:`1/(v_i + \\tau^2)`
        (:math:`\\tau^2 = 0` for FE and HS); a diamond (a ``Polygon`` labelled
        ``"pooled"``) spanning the pooled CI and a line (labelled
        ``"prediction interval"``) spanning the prediction (or, for HS, credibility)
        interval; a dotted line at r = 0.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.plots import plot_forest
    >>> d = pd.DataFrame({"client_id": list("abc"), "r": [0.3, 0.2, 0.25],
    ...                   "n": [80, 120, 60]})
    >>> ax = plot_forest(d)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['Pooled', 'a', 'b', 'c']
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    from .._checks import check_column_args as _check_columns
    from ..meta import _Z975, _prepare, meta_analysis

    _check_columns(data, label=label)
    d = _prepare(data, r, n)
    if result is None:
        result = meta_analysis(data, r=r, n=n, method=method)
    rr, nn = d["_r"].to_numpy(), d["_n"].to_numpy()
    z, se = np.arctanh(rr), 1.0 / np.sqrt(nn - 3.0)
    lo, hi = np.tanh(z - _Z975 * se), np.tanh(z + _Z975 * se)
    tau2 = result["tau2"] if np.isfinite(result["tau2"]) and method != "HS" else 0.0
    w = 1.0 / (se**2 + tau2)
    size = 20 + 180 * w / w.max()
    k = len(rr)
    ypos = np.arange(k, 0, -1) + 1.0  # first client at the top; pooled at y = 0
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.35 * k + 1.8))
    ax.hlines(ypos, lo, hi, color="0.3", lw=1.2)
    ax.scatter(rr, ypos, s=size, marker="s", color="0.2", zorder=3, label="clients")
    est, clo, chi = result["estimate"], result["ci_low"], result["ci_high"]
    if np.isfinite(est):
        ax.hlines(0.0, result["pi_low"], result["pi_high"], color="C0", lw=2,
                  label="prediction interval")
        ax.add_patch(Polygon([(clo, 0), (est, 0.35), (chi, 0), (est, -0.35)], closed=True,
                             color="C0", label="pooled", zorder=4))
    ax.axvline(0.0, color="0.5", ls=":", lw=1)
    ax.set_yticks([0.0, *ypos], ["Pooled", *map(str, d[label].tolist())])
    ax.set_xlabel("Correlation (r) with 95% CI")
    ax.set_ylim(-1, k + 2)
    return ax


def plot_forest_grid(per_client, *, x, ys, labels=None, label="client", method="REML",
                     ncols=2):
    """Forest plots of one EX measure with several outcomes, two per row.

    Parameters
    ----------
    per_client : pandas.DataFrame
        :func:`exresearch.report.per_client_correlations` (columns ``x, y, r, n`` and
        ``label``).
    x : str
        The EX measure.
    ys : list of str
        Outcomes, one panel each.
    labels : dict, optional
        Column -> reader's label for the panel titles.
    label : str, default "client"
        Column naming each client.
    method : str, default "REML"
        Pooling method of :func:`plot_forest`.
    ncols : int, default 2

    Returns
    -------
    matplotlib.figure.Figure
        One panel per outcome; an outcome with fewer than 2 clients with a defined
        correlation gets an empty panel that says so.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"client": list("abcab"), "x": "ex", "y": list("pppqq"),
    ...                   "r": [0.3, 0.2, 0.25, 0.1, float("nan")], "n": [80, 120, 60, 50, 40]})
    >>> fig = plot_forest_grid(d, x="ex", ys=["p", "q"])
    >>> [ax.get_title() for ax in fig.axes]
    ['ex and p', 'ex and q']
    >>> fig.axes[1].texts[0].get_text()
    'fewer than 2 clients with a defined correlation'
    """
    import matplotlib.pyplot as plt

    labels = labels or {}
    nrows = int(np.ceil(len(ys) / ncols))
    k = per_client[label].nunique()
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(12, 0.32 * k * nrows + 2.5))
    for ax, y in zip(axes.flat, ys, strict=False):
        d = per_client[(per_client["x"] == x) & (per_client["y"] == y)].dropna(subset=["r"])
        if len(d) >= 2:
            plot_forest(d, label=label, method=method, ax=ax)
            ax.set_xlabel("correlation across units (r) with 95% CI")
        else:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "fewer than 2 clients with a defined correlation", ha="center")
        ax.set_title(f"{labels.get(x, x)} and {labels.get(y, y)}")
    for ax in list(axes.flat)[len(ys):]:
        fig.delaxes(ax)
    fig.tight_layout()
    return fig
