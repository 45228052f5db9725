"""Figures of the synthesis across clients: the forest plot of one EX measure and outcome."""

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
