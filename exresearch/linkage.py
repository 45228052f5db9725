"""Unit-level correlations within one client: EX scales against CX and business outcomes.

Every function takes a *unit panel* (a wide DataFrame with one row per business
unit, or per unit x period, and numeric columns named by the caller) and returns
a tidy DataFrame with one row per estimate. Statistics that are undefined for
one pair (too few units, a constant column) come back as a NaN row that keeps
``n`` and says why in ``note`` (and in a warning), so a report over many clients
carries on.

The other within-client analyses have a module each: :mod:`exresearch.direction`
(lagged correlations, repeated-measures correlation, cross-lagged paths and the loop
verdict), :mod:`exresearch.mediation`, :mod:`exresearch.drivers` (engagement versus
drivers, relative weights, priorities) and :mod:`exresearch.consistency` (spread and
stand-out units). Their functions are still reachable as ``exresearch.linkage.<name>``.

Built on pingouin (``multicomp``). Written here by hand: Fisher-z intervals at full
precision (pingouin rounds its ``CI95``) and the vectorised unit bootstrap, which
neither pingouin nor statsmodels provides.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._checks import as_columns as _as_list
from ._checks import check_choice as _check_choice
from ._checks import check_columns as _check_columns
from ._checks import check_frame as _check_frame
from ._checks import check_n_boot as _check_n_boot
from ._checks import check_seed
from ._stats import (
    _METHODS,
    MIN_PAIRS,
    _boot_weights,
    _p_adjust,
    _pair_stats,
    _pairs,
    _percentile_ci,
    _unit_codes,
    _warn,
)
from .exceptions import ParameterError

__all__ = [
    "correlations",
    "correlation_table",
    "MIN_PAIRS",
]


def _corr_rows(data, x, y, covar, method, func):
    rows, keeps = [], []
    # one float array per column, not one DataFrame selection per pair (~1 ms each)
    arrays = {c: data[c].to_numpy(dtype=float) for c in dict.fromkeys([*x, *y, *covar])}
    for a, b in _pairs(x, y):
        res, keep = _pair_stats(arrays, a, b, covar, method)
        if res["note"]:
            _warn(func, f"{a} vs {b}: {res['note']}; returning NaN")
        rows.append({"x": a, "y": b, **res})
        keeps.append(keep)
    out = pd.DataFrame(rows, columns=["x", "y", "n", "r", "ci_low", "ci_high", "p_val", "note"])
    out["n"] = out["n"].astype(int)
    out["p_corr"] = _p_adjust(out["p_val"].to_numpy())
    return out, keeps


def _check_corr_args(data, x, y, covar, method, func_param="method"):
    _check_frame(data)
    x = _as_list("x", x)
    y = _as_list("y", y)
    covar = _as_list("covar", covar, allow_none=True)
    _check_columns(data, "x", x)
    _check_columns(data, "y", y)
    _check_columns(data, "covar", covar)
    clash = sorted(set(covar) & (set(x) | set(y)))
    if clash:
        raise ParameterError(f"`covar` must not repeat columns of `x` or `y`, but {clash} was passed")
    if isinstance(method, str):
        _check_choice(func_param, method, _METHODS)
    if not _pairs(x, y):
        raise ParameterError("`x` and `y` name the same single column; there is no pair to correlate")
    return x, y, covar


def correlations(data, *, x, y, method="pearson", covar=None):
    """Unit-level correlations of every ``x`` column with every ``y`` column.

    Stable public entry point (used by external validation): the columns and
    their meaning will not change.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel: one row per unit (or unit x period), numeric columns.
    x, y : str or list of str
        Columns to correlate, e.g. EX scales (``x``) and outcomes (``y``).
        Every ``x`` is paired with every ``y``; a column paired with itself
        is skipped.
    method : {"pearson", "spearman"}
        Pearson's r, or Spearman's rho (Pearson's r of the average ranks).
    covar : str or list of str, optional
        Covariates to partial out (e.g. unit headcount). Then ``r`` is the
        partial correlation (pingouin.partial_corr conventions).

    Returns
    -------
    pandas.DataFrame
        One row per (x, y) pair, columns in this order:

        - ``x``, ``y`` : the column names.
        - ``n`` : pairwise-complete rows (complete in x, y and every covariate).
        - ``r`` : the (partial) correlation.
        - ``ci_low``, ``ci_high`` : Fisher-z 95% confidence interval.
        - ``p_val`` : two-sided p-value of the t-test.
        - ``p_corr`` : Benjamini-Hochberg adjusted p-value across all pairs of
          this call.

        A pair with fewer than ``MIN_PAIRS + k`` complete rows or with a
        constant column is a NaN row that keeps ``n``; the reason is given in
        a ``UserWarning`` and in ``result.attrs["notes"]`` (a list aligned
        with the rows, ``""`` where nothing went wrong).

    Notes
    -----
    With :math:`k` covariates (:math:`k = 0` for a plain correlation),

    .. math::
        t = r \\sqrt{\\frac{n - 2 - k}{1 - r^2}}, \\qquad
        p = 2\\,P(T_{n-2-k} > |t|),

    .. math::
        \\mathrm{CI} = \\tanh\\left(\\operatorname{artanh}(r) \\pm
        \\frac{z_{0.975}}{\\sqrt{n - k - 3}}\\right).

    For Pearson with :math:`k = 0` this is exactly R's ``cor.test``
    (estimate, ``conf.int`` and ``p.value``). For Spearman it is R's
    ``cor.test(method = "spearman", exact = FALSE)`` p-value (the t
    approximation) with the same Fisher-z interval as pingouin. The partial
    correlation is :math:`-P_{12}/\\sqrt{P_{11} P_{22}}` where :math:`P` is the
    inverse correlation (or rank correlation) matrix of (x, y, covariates), as
    in ``pingouin.partial_corr``; its df are reduced by :math:`k`.
    Rows are treated as independent; with several periods per unit prefer
    :func:`correlation_table` (unit bootstrap) or the lagged functions.

    References
    ----------
    Fisher, R. A. (1921). On the "probable error" of a coefficient of correlation
    deduced from a small sample. *Metron*, 1, 3-32.

    Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery rate.
    *JRSS B*, 57(1), 289-300.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.linkage import correlations
    >>> rng = np.random.default_rng(1)
    >>> ex = rng.normal(size=40)
    >>> panel = pd.DataFrame({"unit_id": [f"u{i}" for i in range(40)],
    ...                       "wellbeing": ex,
    ...                       "nps": 0.5 * ex + rng.normal(size=40),
    ...                       "headcount": rng.integers(5, 50, size=40).astype(float)})
    >>> res = correlations(panel, x="wellbeing", y="nps")
    >>> list(res.columns)
    ['x', 'y', 'n', 'r', 'ci_low', 'ci_high', 'p_val', 'p_corr']
    >>> int(res.loc[0, "n"]), bool(res.loc[0, "ci_low"] < res.loc[0, "r"] < res.loc[0, "ci_high"])
    (40, True)
    >>> correlations(panel, x="wellbeing", y="nps", covar="headcount").shape
    (1, 8)
    """
    x, y, covar = _check_corr_args(data, x, y, covar, method)
    out, _ = _corr_rows(data, x, y, covar, method, "correlations")
    notes = out.pop("note").tolist()
    out = out[["x", "y", "n", "r", "ci_low", "ci_high", "p_val", "p_corr"]]
    out.attrs["notes"] = notes
    return out


def _weighted_ranks(v, w):
    """Average ranks of ``v`` in each weighted resample; w is (B, n) multiplicities."""
    uniq, inv = np.unique(v, return_inverse=True)
    onehot = np.zeros((v.size, uniq.size))
    onehot[np.arange(v.size), inv] = 1.0
    wu = w @ onehot
    cum = np.cumsum(wu, axis=1)
    rank_u = cum - wu + (wu + 1.0) / 2.0
    return rank_u[:, inv]


def _centred_ranks(v, w, tot):
    """Weighted ranks of ``v`` centred per resample, and the same times ``w``."""
    rk = _weighted_ranks(v, w)
    d = rk - (w * rk).sum(axis=1, keepdims=True) / tot[:, None]
    return d, w * d


def _boot_corr(z, w, method, ranks=None):
    """(Partial) correlation of column 0 with 1 given 2.. in each weighted resample.

    z is (n, p) complete rows, w is (B, n) row multiplicities. Resampling with
    replacement equals weighting each row by how often it was drawn, so all B
    covariance matrices come from matrix products instead of a Python loop.
    ``ranks`` (Spearman only) is None or a pair ``(cache, keys)``: a dict the caller
    keeps and one key per column of ``z``. A column's resampled ranks depend only on
    its values and the weights, so a caller that correlates one column with several
    others on the same rows and weights names that column and row set in its key;
    the ranks are then computed once per key (see :func:`correlation_table`).
    """
    w = w.astype(float)
    n_boot, (n, p) = w.shape[0], z.shape
    tot = w.sum(axis=1)
    if method == "spearman":
        # ranks change with the resample: (B, n, p) ranks, batched matmul
        if ranks is None:
            dw = [_centred_ranks(z[:, j], w, tot) for j in range(p)]
        else:
            cache, keys = ranks
            dw = []
            for j, key in enumerate(keys):
                if key not in cache:
                    cache[key] = _centred_ranks(z[:, j], w, tot)
                dw.append(cache[key])
        d = [pair[0] for pair in dw]
        wd = [pair[1] for pair in dw]
        cov = np.empty((n_boot, p, p))
        for i in range(p):  # p is 2 or 3: a few (B, n) products, no loop over resamples
            for j in range(i, p):
                cov[:, i, j] = cov[:, j, i] = (wd[i] * d[j]).sum(axis=1) / tot
    else:
        # fixed values: weighted first and second moments are two BLAS products
        zs = z - z.mean(axis=0)
        sd = zs.std(axis=0)
        zs = zs / np.where(sd > 0, sd, 1.0)
        m1 = (w @ zs) / tot[:, None]
        m2 = (w @ (zs[:, :, None] * zs[:, None, :]).reshape(n, p * p)).reshape(n_boot, p, p)
        cov = m2 / tot[:, None, None] - m1[:, :, None] * m1[:, None, :]
    var = np.diagonal(cov, axis1=1, axis2=2)
    ok = (var > 1e-10 * np.maximum(1e-300, var.max(axis=0))).all(axis=1)
    r = np.full(n_boot, np.nan)
    with np.errstate(all="ignore"):
        if p == 2:
            r[ok] = cov[ok, 0, 1] / np.sqrt(var[ok, 0] * var[ok, 1])
        elif p == 3:  # one covariate: the closed form of the first-order partial r
            c = cov[ok] / np.sqrt(var[ok][:, :, None] * var[ok][:, None, :])
            rxy, rxz, ryz = c[:, 0, 1], c[:, 0, 2], c[:, 1, 2]
            r[ok] = (rxy - rxz * ryz) / np.sqrt((1 - rxz**2) * (1 - ryz**2))
        elif ok.any():
            sdb = np.sqrt(var[ok])
            corr = cov[ok] / sdb[:, :, None] / sdb[:, None, :]
            prec = np.linalg.pinv(corr, hermitian=True)
            r[ok] = -prec[:, 0, 1] / np.sqrt(prec[:, 0, 0] * prec[:, 1, 1])
    r[~np.isfinite(r)] = np.nan
    return np.clip(r, -1.0, 1.0)


def correlation_table(
    data,
    *,
    x,
    y,
    methods=("pearson", "spearman"),
    covar=None,
    n_boot=2000,
    seed=None,
    unit="unit_id",
):
    """Correlation table with Fisher-z and unit-bootstrap confidence intervals.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel.
    x, y : str or list of str
        Columns to correlate (every ``x`` with every ``y``).
    methods : str or sequence of {"pearson", "spearman"}
        Correlation methods; one block of rows per method.
    covar : str or list of str, optional
        Covariates to partial out.
    n_boot : int
        Bootstrap resamples (of units).
    seed : int or numpy.random.Generator, optional
        Seed of ``np.random.default_rng``.
    unit : str or None
        Column identifying the resampling cluster. All rows of a drawn unit
        enter the resample together. ``None`` resamples rows.

    Returns
    -------
    pandas.DataFrame
        One row per method x (x, y) pair with columns ``x, y, method, n,
        n_units, r, ci_low, ci_high, boot_low, boot_high, p_val, p_corr,
        note``: ``n`` complete rows, ``n_units`` distinct units among them,
        ``r`` the (partial) correlation, ``ci_low``/``ci_high`` the Fisher-z
        95% CI, ``boot_low``/``boot_high`` the 2.5 and 97.5 percentiles of the
        unit-bootstrap distribution of r, ``p_val`` the t-test p-value,
        ``p_corr`` Benjamini-Hochberg across the pairs of the same method,
        ``note`` why a row is NaN (``""`` otherwise).

    Notes
    -----
    Point estimates, CIs and p-values are those of :func:`correlations`. The
    bootstrap draws ``n_boot`` samples of units with replacement; a resample is
    represented by the count :math:`w_{bj}` of unit :math:`j`, and r is the
    weighted (partial) correlation with row weights :math:`w_{b,j(i)}`, which
    equals r on the explicitly resampled rows. Spearman ranks are recomputed
    within each resample (average ranks of the weighted sample). The same
    resamples of units are used for every pair (common random numbers).

    References
    ----------
    Efron, B., & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*.
    Chapman & Hall.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.linkage import correlation_table
    >>> rng = np.random.default_rng(2)
    >>> ex = rng.normal(size=30)
    >>> panel = pd.DataFrame({"unit_id": [f"u{i}" for i in range(30)], "ex": ex,
    ...                       "cx": 0.6 * ex + rng.normal(size=30)})
    >>> tab = correlation_table(panel, x="ex", y="cx", n_boot=500, seed=1)
    >>> tab[["method", "n"]].values.tolist()
    [['pearson', 30], ['spearman', 30]]
    >>> bool((tab.boot_low < tab.r).all() and (tab.r < tab.boot_high).all())
    True
    """
    if isinstance(methods, str):
        methods = (methods,)
    methods = list(methods)
    for m in methods:
        _check_choice("methods", m, _METHODS)
    x, y, covar = _check_corr_args(data, x, y, covar, methods[0], "methods")
    _check_n_boot(n_boot)
    codes, n_clusters = _unit_codes(data, unit)
    rng = np.random.default_rng(check_seed(seed))
    wunits = _boot_weights(n_clusters, n_boot, rng)
    # one float array per column, not one DataFrame selection per pair; the same values
    frame = data[list(dict.fromkeys([*x, *y, *covar]))].to_numpy(dtype=float)
    position = {c: i for i, c in enumerate(dict.fromkeys([*x, *y, *covar]))}
    blocks = []
    for method in methods:
        out, keeps = _corr_rows(data, x, y, covar, method, "correlation_table")
        boot_low, boot_high, n_units = [], [], []
        # Spearman: a column's resampled ranks depend on its rows and the weights only,
        # so each (column, row set) is ranked once, not once per pair it is in
        ranks, row_sets = {}, {}
        for (a, b), keep, note in zip(_pairs(x, y), keeps, out["note"], strict=True):
            n_units.append(int(np.unique(codes[keep]).size))
            if note:
                boot_low.append(np.nan)
                boot_high.append(np.nan)
                continue
            cols = [a, b, *covar]
            z = frame[:, [position[c] for c in cols]][keep]
            rows = row_sets.setdefault(keep.tobytes(), len(row_sets))
            rb = _boot_corr(z, wunits[:, codes[keep]], method,
                            ranks=(ranks, [(c, rows) for c in cols]))
            lo, hi = _percentile_ci(rb)
            boot_low.append(lo)
            boot_high.append(hi)
        out["method"] = method
        out["n_units"] = n_units
        out["boot_low"] = boot_low
        out["boot_high"] = boot_high
        blocks.append(out)
    res = pd.concat(blocks, ignore_index=True)
    return res[
        ["x", "y", "method", "n", "n_units", "r", "ci_low", "ci_high", "boot_low",
         "boot_high", "p_val", "p_corr", "note"]
    ]


#: Functions that lived here before the within-client analyses were split into one
#: module per topic; ``exresearch.linkage.<name>`` keeps working for them.
_MOVED = {
    "lagged_correlations": "direction",
    "repeated_measures_correlation": "direction",
    "cross_lagged": "direction",
    "classify_loop": "direction",
    "loop_direction": "direction",
    "LOOP_LABELS": "direction",
    "mediation": "mediation",
    "incremental_validity": "drivers",
    "relative_weights": "drivers",
    "driver_priorities": "drivers",
    "unit_consistency": "consistency",
    "standout_units": "consistency",
}


def __getattr__(name):
    import importlib

    if name in _MOVED:
        return getattr(importlib.import_module(f"exresearch.{_MOVED[name]}"), name)
    for module in ("_stats", "direction", "mediation", "drivers", "consistency"):  # private helpers
        mod = importlib.import_module(f"exresearch.{module}")
        if name.startswith("_") and hasattr(mod, name):
            return getattr(mod, name)
    raise AttributeError(f"module 'exresearch.linkage' has no attribute {name!r}")
