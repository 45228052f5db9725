"""Linkage analytics within one client: EX scales against CX and business outcomes.

Every function takes a *unit panel* (a wide DataFrame with one row per business
unit, or per unit x period, and numeric columns named by the caller) and returns
a tidy DataFrame with one row per estimate. Statistics that are undefined for
one pair (too few units, a constant column, a period nobody was observed in)
come back as a NaN row that keeps ``n`` and says why in ``note`` (and in a
warning), so a report over many clients carries on.

Built on pingouin (``rm_corr``, ``mediation_analysis``, ``multicomp``) and
statsmodels (cluster-robust OLS). Written here by hand: Fisher-z intervals at
full precision (pingouin rounds its ``CI95``), the vectorised unit bootstrap,
and Johnson's (2000) relative weights, which neither pingouin nor statsmodels
provides.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .exceptions import ParameterError

__all__ = [
    "correlations",
    "correlation_table",
    "lagged_correlations",
    "repeated_measures_correlation",
    "cross_lagged",
    "classify_loop",
    "loop_direction",
    "mediation",
    "incremental_validity",
    "relative_weights",
    "driver_priorities",
    "unit_consistency",
    "standout_units",
    "MIN_PAIRS",
    "LOOP_LABELS",
]

#: Fewest complete (x, y) pairs, after removing one per covariate, for which a
#: correlation is reported. Below it the row is NaN with a note.
MIN_PAIRS = 4

#: The plain-language labels returned by :func:`classify_loop`.
LOOP_LABELS = (
    "reciprocal loop — virtuous cycle",
    "reciprocal loop — doom loop",
    "reciprocal loop",
    "EX leads",
    "CX leads",
    "no evidence",
)

_METHODS = ("pearson", "spearman")
_Z975 = stats.norm.ppf(0.975)


# --------------------------------------------------------------------------- #
# argument checking
# --------------------------------------------------------------------------- #
def _check_frame(data, name="data"):
    if not isinstance(data, pd.DataFrame):
        raise ParameterError(
            f"`{name}` must be a pandas DataFrame, but {type(data).__name__} was passed"
        )


def _as_list(param, value, *, allow_none=False):
    """Normalise a column name or a list of names to a list of str."""
    if value is None:
        if allow_none:
            return []
        raise ParameterError(f"`{param}` must be a column name or a list of column names, but None was passed")
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence | pd.Index) and all(isinstance(v, str) for v in value):
        out = list(dict.fromkeys(value))
        if not out and not allow_none:
            raise ParameterError(f"`{param}` must name at least one column, but an empty list was passed")
        return out
    raise ParameterError(
        f"`{param}` must be a column name or a list of column names, but {value!r} was passed"
    )


def _check_columns(data, param, cols, *, numeric=True):
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ParameterError(
            f"`{param}` names column(s) {missing} that are not in data; "
            f"available columns are {list(map(str, data.columns))}"
        )
    if numeric:
        bad = [c for c in cols if not pd.api.types.is_numeric_dtype(data[c])]
        if bad:
            raise ParameterError(
                f"`{param}` must name numeric columns, but {bad} "
                f"{'is' if len(bad) == 1 else 'are'} not numeric"
            )


def _check_choice(param, value, allowed):
    if value not in allowed:
        raise ParameterError(
            f"The value for `{param}` must be one of {list(allowed)}, but {value!r} was passed"
        )


def _check_n_boot(n_boot):
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ParameterError(f"`n_boot` must be a positive integer, but {n_boot!r} was passed")


def _check_alpha(alpha):
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise ParameterError(f"`alpha` must be a number between 0 and 1, but {alpha!r} was passed")


def _warn(func, note):
    warnings.warn(f"{func}: {note}", UserWarning, stacklevel=3)


def _unit_codes(data, unit):
    """Integer code per row for the resampling cluster (the unit), or per row."""
    if unit is None:
        return np.arange(len(data)), len(data)
    _check_columns(data, "unit", [unit], numeric=False)
    codes, uniques = pd.factorize(data[unit])
    if (codes < 0).any():
        raise ParameterError(f"`unit` column {unit!r} has missing values")
    return codes, len(uniques)


def _boot_weights(n_clusters, n_boot, rng):
    """(n_boot, n_clusters) matrix: how often each cluster is drawn per resample."""
    idx = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    flat = idx + (np.arange(n_boot) * n_clusters)[:, None]
    return np.bincount(flat.ravel(), minlength=n_boot * n_clusters).reshape(n_boot, n_clusters)


def _percentile_ci(samples, axis=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(samples, [2.5, 97.5], axis=axis)
    return lo, hi


def _p_adjust(pvals, method="fdr_bh"):
    """Multiple-comparison adjustment ignoring NaN (pingouin.multicomp)."""
    import pingouin as pg

    pvals = np.asarray(pvals, dtype=float)
    out = np.full(pvals.shape, np.nan)
    ok = np.isfinite(pvals)
    if ok.any():
        out[ok] = pg.multicomp(pvals[ok], method=method)[1]
    return out


# --------------------------------------------------------------------------- #
# correlations
# --------------------------------------------------------------------------- #
def _degenerate_note(frame, names, n, k, min_pairs=MIN_PAIRS):
    """Reason the statistic is undefined, or '' if it is defined."""
    if n - k < min_pairs:
        dummies = k and all(c.startswith("_period") for c in names[2:])
        what = ("period dummy", "period dummies") if dummies else ("covariate", "covariates")
        extra = f" and {k} {what[k != 1]}" if k else ""
        return (
            f"too few units: n={n} complete pairs{extra} "
            f"(need at least {min_pairs + k})"
        )
    for c in names:
        col = frame[:, names.index(c)]
        if np.ptp(col) == 0:
            return f"{c!r} is constant across the {n} units, so its correlation is undefined"
    return ""


def _r_from_matrix(z, method):
    """r (k = 0) or partial r of column 0 with column 1 given columns 2.. (pingouin.pcorr)."""
    if method == "spearman":
        z = np.column_stack([stats.rankdata(z[:, j]) for j in range(z.shape[1])])
    if z.shape[1] == 2:
        r = np.corrcoef(z[:, 0], z[:, 1])[0, 1]
    else:
        zs = (z - z.mean(0)) / z.std(0, ddof=1)
        prec = np.linalg.pinv(np.cov(zs, rowvar=False), hermitian=True)
        r = -prec[0, 1] / np.sqrt(prec[0, 0] * prec[1, 1])
    return float(np.clip(r, -1.0, 1.0))


def _r_inference(r, n, k):
    """Two-sided t-test p-value (df = n - 2 - k) and Fisher-z 95% CI (se = 1/sqrt(n - k - 3))."""
    df = n - 2 - k
    if abs(r) >= 1.0:
        return r, r, 0.0
    t = r * np.sqrt(df / (1.0 - r * r))
    p = float(2.0 * stats.t.sf(abs(t), df))
    z = np.arctanh(r)
    se = 1.0 / np.sqrt(n - k - 3)
    return float(np.tanh(z - _Z975 * se)), float(np.tanh(z + _Z975 * se)), p


def _pair_stats(data, xc, yc, covar, method):
    """One correlation: dict with n, r, ci_low, ci_high, p_val, note, and the complete rows."""
    cols = [xc, yc, *covar]
    if isinstance(data, Mapping):  # column name -> float array, converted once per call
        frame = np.column_stack([data[c] for c in cols])
    else:
        frame = data[cols].to_numpy(dtype=float)
    keep = np.isfinite(frame).all(axis=1)
    z = frame[keep]
    n, k = int(keep.sum()), len(covar)
    note = _degenerate_note(z, cols, n, k)
    out = {"n": n, "r": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_val": np.nan, "note": note}
    if note:
        return out, keep
    r = _r_from_matrix(z, method)
    if not np.isfinite(r):
        out["note"] = "correlation is undefined (collinear covariates)"
        return out, keep
    lo, hi, p = _r_inference(r, n, k)
    out.update(r=r, ci_low=lo, ci_high=hi, p_val=p)
    return out, keep


def _pairs(x, y):
    return [(a, b) for a in x for b in y if a != b]


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


def _boot_corr(z, w, method):
    """(Partial) correlation of column 0 with 1 given 2.. in each weighted resample.

    z is (n, p) complete rows, w is (B, n) row multiplicities. Resampling with
    replacement equals weighting each row by how often it was drawn, so all B
    covariance matrices come from matrix products instead of a Python loop.
    """
    w = w.astype(float)
    n_boot, (n, p) = w.shape[0], z.shape
    tot = w.sum(axis=1)
    if method == "spearman":
        # ranks change with the resample: (B, n, p) ranks, batched matmul
        d = [_weighted_ranks(z[:, j], w) for j in range(p)]
        d = [rk - (w * rk).sum(axis=1, keepdims=True) / tot[:, None] for rk in d]
        wd = [w * dj for dj in d]
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
    rng = np.random.default_rng(seed)
    wunits = _boot_weights(n_clusters, n_boot, rng)
    blocks = []
    for method in methods:
        out, keeps = _corr_rows(data, x, y, covar, method, "correlation_table")
        boot_low, boot_high, n_units = [], [], []
        for (a, b), keep, note in zip(_pairs(x, y), keeps, out["note"], strict=True):
            n_units.append(int(np.unique(codes[keep]).size))
            if note:
                boot_low.append(np.nan)
                boot_high.append(np.nan)
                continue
            z = data[[a, b, *covar]].to_numpy(dtype=float)[keep]
            rb = _boot_corr(z, wunits[:, codes[keep]], method)
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


# --------------------------------------------------------------------------- #
# direction over time
# --------------------------------------------------------------------------- #
def _panel_periods(data, unit, period, periods, func):
    """Check a unit x period panel and return the period order and a period index per row."""
    _check_columns(data, "unit", [unit], numeric=False)
    _check_columns(data, "period", [period], numeric=False)
    present = list(pd.unique(data[period].dropna()))
    if periods is None:
        try:
            periods = sorted(present)  # numbers in numeric order, labels like "2025Q1" as text
        except TypeError:  # mixed types
            periods = sorted(present, key=str)
    else:
        if isinstance(periods, str) or not isinstance(periods, Sequence | pd.Index):
            raise ParameterError(
                f"`periods` must be a list of period labels in time order, but {periods!r} was passed"
            )
        periods = list(periods)
        if len(set(periods)) != len(periods):
            raise ParameterError(f"`periods` must not repeat a period, but {periods!r} was passed")
        absent = [p for p in periods if p not in set(present)]
        if absent:
            _warn(func, f"period(s) {absent} listed in `periods` have no rows in data")
        extra = [p for p in present if p not in set(periods)]
        if extra:
            _warn(func, f"rows of period(s) {extra} are not in `periods` and are ignored")
    dup = data.duplicated([unit, period])
    if dup.any():
        first = data.loc[dup, [unit, period]].iloc[0].tolist()
        raise ParameterError(
            f"data must have one row per `unit` x `period`, but {int(dup.sum())} duplicate "
            f"row(s) were found, e.g. {first}"
        )
    order = {p: i for i, p in enumerate(periods)}
    return periods, data[period].map(order)


def _lag_join(data, left_cols, right_cols, unit, t_index, lag):
    """Rows of (unit, t): left_cols at t and right_cols at t + lag (suffix '@lag')."""
    base = pd.DataFrame({"_unit": data[unit].to_numpy(), "_t": t_index.to_numpy()})
    left = pd.concat([base, data[left_cols].reset_index(drop=True)], axis=1).dropna(subset=["_t"])
    right = pd.concat(
        [base, data[right_cols].reset_index(drop=True).add_suffix("@lag")], axis=1
    ).dropna(subset=["_t"])
    right["_t"] = right["_t"] - lag
    return left.merge(right, on=["_unit", "_t"], how="inner")


def lagged_correlations(
    data, *, x, y, lags=(0, 1, 2), unit="unit_id", period="period", periods=None,
    method="pearson", period_effects=False,
):
    """Correlate ``x`` at period t with ``y`` at period t + lag, pooled over units and periods.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel, one row per unit x period.
    x, y : str or list of str
        Leading columns (EX, at t) and lagging columns (outcomes, at t + lag).
    lags : sequence of int
        Lags in periods (0 = same period). Negative lags put ``y`` first.
    unit, period : str
        Column names of the unit and the period.
    periods : list, optional
        Period labels in time order; default the sorted unique periods.
        A lag counts positions in this list, so a period listed here with no
        data leaves a gap that is not bridged.
    method : {"pearson", "spearman"}
        Correlation method.
    period_effects : bool
        Partial out a dummy per starting period t, so only differences
        between units within the same periods count (a trend common to all
        units no longer adds to r). The df drop by the number of dummies.

    Returns
    -------
    pandas.DataFrame
        One row per (x, y, lag), columns ``x, y, lag, n, n_units, r, ci_low,
        ci_high, p_val, p_corr, note``: ``n`` the pooled unit-period pairs,
        ``n_units`` the units contributing, the rest as in
        :func:`correlations`; ``p_corr`` is Benjamini-Hochberg across all rows.

    Notes
    -----
    For lag :math:`\\ell`, the pairs are :math:`(x_{u,t}, y_{u,t+\\ell})` over
    all units :math:`u` and periods :math:`t` with both observed. The CI and
    p-value treat the pooled pairs as independent, which overstates precision
    when units contribute several pairs; read the pattern across lags, and use
    :func:`cross_lagged` (clustered SEs) for inference on direction.

    References
    ----------
    Harter, J. K., Schmidt, F. L., Asplund, J. W., Killham, E. A., & Agrawal, S.
    (2010). Causal impact of employee work perceptions on the bottom line of
    organizations. *Perspectives on Psychological Science*, 5(4), 378-389.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.linkage import lagged_correlations
    >>> rng = np.random.default_rng(3)
    >>> panel = pd.DataFrame({"unit_id": np.repeat([f"u{i}" for i in range(20)], 3),
    ...                       "period": np.tile(["2023", "2024", "2025"], 20),
    ...                       "ex": rng.normal(size=60), "cx": rng.normal(size=60)})
    >>> res = lagged_correlations(panel, x="ex", y="cx", lags=(0, 1, 2))
    >>> res[["lag", "n", "n_units"]].values.tolist()
    [[0, 60, 20], [1, 40, 20], [2, 20, 20]]
    """
    _check_frame(data)
    x, y = _as_list("x", x), _as_list("y", y)
    _check_columns(data, "x", x)
    _check_columns(data, "y", y)
    _check_choice("method", method, _METHODS)
    if isinstance(lags, int | np.integer):
        lags = (lags,)
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in lags):
        raise ParameterError(f"`lags` must be a list of integers, but {lags!r} was passed")
    periods, t_index = _panel_periods(data, unit, period, periods, "lagged_correlations")
    rows = []
    for lag in lags:
        joined = _lag_join(data, x, y, unit, t_index, int(lag))
        for a in x:
            for b in y:
                if a == b and lag == 0:
                    continue
                sub = joined[[a, b + "@lag", "_unit", "_t"]].dropna()
                dummies = []
                if period_effects:
                    levels = np.sort(sub["_t"].unique())[1:]
                    dummies = [f"_period{int(v)}" for v in levels]
                    sub = sub.assign(**{d_: (sub["_t"] == v).astype(float)
                                        for d_, v in zip(dummies, levels, strict=True)})
                res, _ = _pair_stats(sub, a, b + "@lag", dummies, method)
                n_units = int(sub["_unit"].nunique())
                if res["n"] == 0:
                    res["note"] = (
                        f"missing period: no unit is observed at two periods {int(lag)} apart "
                        f"(periods {periods})"
                    )
                else:
                    res["note"] = res["note"].replace(f"'{b}@lag'", f"'{b}' at t+{int(lag)}")
                if res["note"]:
                    _warn("lagged_correlations", f"{a} vs {b} at lag {int(lag)}: {res['note']}; returning NaN")
                rows.append({"x": a, "y": b, "lag": int(lag), "n_units": n_units, **res})
    out = pd.DataFrame(rows)
    out["p_corr"] = _p_adjust(out["p_val"].to_numpy())
    return out[["x", "y", "lag", "n", "n_units", "r", "ci_low", "ci_high", "p_val", "p_corr", "note"]]


def repeated_measures_correlation(data, *, x, y, unit="unit_id"):
    """Within-unit (repeated-measures) correlation: do units that improve on x improve on y?

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel with several periods per unit.
    x, y : str or list of str
        Columns to correlate (every ``x`` with every ``y``).
    unit : str
        Unit column (the "subject" of ``pingouin.rm_corr``).

    Returns
    -------
    pandas.DataFrame
        One row per (x, y) pair with columns ``x, y, n, n_units, r, dof,
        ci_low, ci_high, p_val, p_corr, note``: ``n`` complete unit-periods,
        ``n_units`` units among them, ``r`` the repeated-measures
        correlation, ``dof`` = n - n_units - 1, Fisher-z 95% CI, the ANCOVA
        p-value, Benjamini-Hochberg ``p_corr`` and a ``note`` for NaN rows.

    Notes
    -----
    ``pingouin.rm_corr`` fits the ANCOVA :math:`y_{ut} = \\alpha_u + \\beta x_{ut}
    + e_{ut}` and reports :math:`r_{rm} = \\operatorname{sign}(\\beta)
    \\sqrt{SS_x / (SS_x + SS_e)}`, i.e. the correlation of the unit-centred x
    and y, with :math:`N - J - 1` degrees of freedom. The CI is computed here at
    full precision with pingouin's convention (Fisher z, :math:`n = dof + 2`).
    Units seen only once add nothing. At least 3 units are needed.

    References
    ----------
    Bakdash, J. Z., & Marusich, L. R. (2017). Repeated measures correlation.
    *Frontiers in Psychology*, 8, 456.

    Bland, J. M., & Altman, D. G. (1995). Calculating correlation coefficients
    with repeated observations: Part 1. *BMJ*, 310, 446.

    Examples
    --------
    >>> import pingouin as pg
    >>> from exresearch.linkage import repeated_measures_correlation
    >>> df = pg.read_dataset("rm_corr")
    >>> res = repeated_measures_correlation(df, x="pH", y="PacO2", unit="Subject")
    >>> round(float(res.loc[0, "r"]), 3), int(res.loc[0, "dof"])
    (-0.507, 38)
    """
    import pingouin as pg

    _check_frame(data)
    x, y = _as_list("x", x), _as_list("y", y)
    _check_columns(data, "x", x)
    _check_columns(data, "y", y)
    _check_columns(data, "unit", [unit], numeric=False)
    rows = []
    for a, b in _pairs(x, y):
        sub = data[[a, b, unit]].dropna()
        n, n_units = len(sub), int(sub[unit].nunique())
        row = {"x": a, "y": b, "n": n, "n_units": n_units, "r": np.nan, "dof": np.nan,
               "ci_low": np.nan, "ci_high": np.nan, "p_val": np.nan, "note": ""}
        dof = n - n_units - 1
        if n_units < 3:
            row["note"] = f"too few units: {n_units} unit(s) with data (need at least 3)"
        elif dof < 2:
            row["note"] = (
                f"too few repeated observations: {n} unit-periods in {n_units} units "
                f"leave {dof} degree(s) of freedom (need at least 2)"
            )
        else:
            within = sub[[a, b]] - sub.groupby(unit)[[a, b]].transform("mean")
            const = [c for c in (a, b) if np.allclose(within[c].to_numpy(), 0.0)]
            if const:
                row["note"] = f"{const[0]!r} does not change within any unit, so r_rm is undefined"
        if not row["note"]:
            try:
                res = pg.rm_corr(data=sub, x=a, y=b, subject=unit)
            except (ValueError, np.linalg.LinAlgError) as exc:  # pragma: no cover - guarded above
                row["note"] = f"pingouin.rm_corr failed: {exc}"
            else:
                r = float(res["r"].iloc[0])
                d = int(res["dof"].iloc[0])
                z, se = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15)), 1.0 / np.sqrt(d - 1)
                row.update(r=r, dof=d, p_val=float(res["pval"].iloc[0]),
                           ci_low=float(np.tanh(z - _Z975 * se)),
                           ci_high=float(np.tanh(z + _Z975 * se)))
        if row["note"]:
            _warn("repeated_measures_correlation", f"{a} vs {b}: {row['note']}; returning NaN")
        rows.append(row)
    out = pd.DataFrame(rows)
    out["p_corr"] = _p_adjust(out["p_val"].to_numpy())
    return out[["x", "y", "n", "n_units", "r", "dof", "ci_low", "ci_high", "p_val", "p_corr", "note"]]


_CL_COLUMNS = ["path", "source", "target", "kind", "estimate", "se", "ci_low", "ci_high",
               "p_val", "n_obs", "n_units", "r2", "note"]


def _cross_lag_frame(data, x, y, covar, unit, period, periods, func):
    periods, t_index = _panel_periods(data, unit, period, periods, func)
    joined = _lag_join(data, [x, y, *covar], [x, y], unit, t_index, 1)
    cols = [x, y, *covar, x + "@lag", y + "@lag"]
    return joined[["_unit", "_t", *cols]].dropna(), periods


def cross_lagged(data, *, x, y, unit="unit_id", period="period", periods=None, covar=None,
                 period_effects=False):
    """Cross-lagged panel regressions: does x today predict y next period, and vice versa?

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel, one row per unit x period.
    x : str
        The EX column (e.g. an EX scale or eNPS).
    y : str
        The CX or business outcome column.
    unit, period : str
        Unit and period columns.
    periods : list, optional
        Period labels in time order (default sorted unique). Only consecutive
        periods of this list are paired; a missing period breaks the chain.
    covar : str or list of str, optional
        Time-t covariates added to both regressions (e.g. headcount).
    period_effects : bool
        Add a dummy per transition (t -> t+1) to both regressions, so that
        changes common to all units (a company-wide trend, a season) do not
        count as evidence of direction. Their coefficients are not reported.

    Returns
    -------
    pandas.DataFrame
        One row per coefficient with columns ``path, source, target, kind,
        estimate, se, ci_low, ci_high, p_val, n_obs, n_units, r2, note``:
        ``path`` like ``"ex[t] -> cx[t+1]"``, ``source``/``target`` the
        column names, ``kind`` ``"cross-lagged"`` (first the x -> y path, then
        y -> x), ``"autoregressive"`` (y -> y, x -> x) or ``"covariate"``,
        ``estimate`` the standardized coefficient, ``se`` its CR1
        cluster-robust (by unit) standard error, 95% CI and p-value from
        :math:`t_{G-1}` (G units), ``n_obs`` the unit transitions used,
        ``n_units`` G, ``r2`` the R^2 of that equation, ``note`` why a row
        is NaN.

    Notes
    -----
    With all variables z-scored over the analysis sample (complete unit
    transitions t -> t+1),

    .. math::
        y_{t+1} = b_{yy} y_t + b_{yx} x_t + \\gamma' c_t + e, \\qquad
        x_{t+1} = b_{xx} x_t + b_{xy} y_t + \\gamma' c_t + u,

    fitted by OLS (statsmodels), with transition dummies when
    ``period_effects=True``. Because both equations share their
    regressors, these are also the ML estimates of the two-wave path model
    (checked against lavaan). Standard errors are clustered by unit, CR1:
    :math:`V = \\frac{G}{G-1}\\frac{N-1}{N-K}(X'X)^{-1}\\sum_g X_g'e_g e_g'X_g
    (X'X)^{-1}`, as ``sandwich::vcovCL(type = "HC1")``, with
    :math:`t_{G-1}` inference (Stata convention). Pooling transitions assumes
    the paths are the same for every pair of consecutive periods.

    References
    ----------
    Schneider, B., White, S. S., & Paul, M. C. (1998). Linking service climate
    and customer perceptions of service quality: test of a causal model.
    *Journal of Applied Psychology*, 83(2), 150-163.

    Cameron, A. C., & Miller, D. L. (2015). A practitioner's guide to
    cluster-robust inference. *Journal of Human Resources*, 50(2), 317-372.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.linkage import cross_lagged
    >>> rng = np.random.default_rng(4)
    >>> panel = pd.DataFrame({"unit_id": np.repeat([f"u{i}" for i in range(30)], 3),
    ...                       "period": np.tile(["p1", "p2", "p3"], 30),
    ...                       "ex": rng.normal(size=90), "cx": rng.normal(size=90)})
    >>> cl = cross_lagged(panel, x="ex", y="cx")
    >>> cl.path.tolist()[:2]
    ['ex[t] -> cx[t+1]', 'cx[t] -> ex[t+1]']
    >>> int(cl.n_obs.iloc[0]), int(cl.n_units.iloc[0])
    (60, 30)
    """
    import statsmodels.api as sm

    _check_frame(data)
    if not isinstance(x, str) or not isinstance(y, str) or x == y:
        raise ParameterError(
            f"`x` and `y` must be two different column names, but x={x!r}, y={y!r} was passed"
        )
    _check_columns(data, "x", [x])
    _check_columns(data, "y", [y])
    covar = _as_list("covar", covar, allow_none=True)
    _check_columns(data, "covar", covar)
    if set(covar) & {x, y}:
        raise ParameterError(f"`covar` must not repeat `x` or `y`, but {covar} was passed")
    frame, periods = _cross_lag_frame(data, x, y, covar, unit, period, periods, "cross_lagged")
    n_obs, n_units = len(frame), int(frame["_unit"].nunique())
    specs = [
        (y, [x, y, *covar], [("cross-lagged", x), ("autoregressive", y)]),
        (x, [y, x, *covar], [("cross-lagged", y), ("autoregressive", x)]),
    ]
    note = ""
    dummies = np.empty((n_obs, 0))
    if period_effects and n_obs:
        levels = np.sort(frame["_t"].unique())
        dummies = (frame["_t"].to_numpy()[:, None] == levels[None, 1:]).astype(float)
    k = 3 + len(covar) + dummies.shape[1]
    if n_obs == 0:
        note = f"missing period: no unit is observed in two consecutive periods of {periods}"
    elif n_units < MIN_PAIRS:
        note = f"too few units: {n_units} unit(s) observed in consecutive periods (need at least {MIN_PAIRS})"
    elif n_obs <= k + 1:
        note = f"too few unit transitions: n_obs={n_obs} for {k} coefficients"
    else:
        const = [c for c in [x, y, *covar, x + "@lag", y + "@lag"] if np.ptp(frame[c].to_numpy()) == 0]
        if const:
            name = const[0].replace("@lag", "[t+1]")
            note = f"{name!r} is constant over the {n_obs} unit transitions, so the paths are undefined"
    rows = []
    groups = pd.factorize(frame["_unit"])[0]
    for target, preds, labelled in specs:
        names = [*labelled, *[("covariate", c) for c in covar]]
        fit = None
        if not note:
            z = frame[[target + "@lag", *preds]]
            z = (z - z.mean()) / z.std(ddof=1)
            exog = sm.add_constant(np.column_stack([z[preds].to_numpy(), dummies]), has_constant="add")
            fit = sm.OLS(z[target + "@lag"].to_numpy(), exog).fit(
                cov_type="cluster", cov_kwds={"groups": groups}, use_t=True
            )
        for i, (kind, source) in enumerate(names):
            row = {"path": f"{source}[t] -> {target}[t+1]", "source": source, "target": target,
                   "kind": kind, "n_obs": n_obs, "n_units": n_units, "note": note}
            if fit is not None:
                ci = fit.conf_int(0.05)[i + 1]
                row.update(estimate=float(fit.params[i + 1]), se=float(fit.bse[i + 1]),
                           ci_low=float(ci[0]), ci_high=float(ci[1]),
                           p_val=float(fit.pvalues[i + 1]), r2=float(fit.rsquared))
            rows.append(row)
    if note:
        _warn("cross_lagged", f"{x} <-> {y}: {note}; returning NaN")
    out = pd.DataFrame(rows).reindex(columns=_CL_COLUMNS)
    order = {"cross-lagged": 0, "autoregressive": 1, "covariate": 2}
    out = out.sort_values("kind", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    for c in ["estimate", "se", "ci_low", "ci_high", "p_val", "r2"]:
        out[c] = out[c].astype(float)
    return out


def _trend_word(trend, trend_tol):
    if isinstance(trend, str):
        _check_choice("trend", trend, ("up", "down", "flat"))
        return trend
    if not isinstance(trend, float | int | np.floating | np.integer) or isinstance(trend, bool):
        raise ParameterError(
            f"`trend` must be 'up', 'down', 'flat' or a number (SD per period), but {trend!r} was passed"
        )
    if not np.isfinite(trend):
        return "flat"
    return "up" if trend > trend_tol else "down" if trend < -trend_tol else "flat"


def classify_loop(cross_lagged_result, *, trend, alpha=0.05, trend_tol=0.05):
    """Name the direction of the EX <-> CX relation in plain language.

    Parameters
    ----------
    cross_lagged_result : pandas.DataFrame
        Output of :func:`cross_lagged` (x is taken as EX, y as CX).
    trend : {"up", "down", "flat"} or float
        The client's EX trend, as a word or as the change in mean x per period
        in SD units (as :func:`loop_direction` computes it).
    alpha : float
        Significance level of each cross-lagged path.
    trend_tol : float
        A numeric trend within +/- this many SD per period counts as flat.

    Returns
    -------
    pandas.DataFrame
        One row with columns ``x, y, label, reason, x_to_y, x_to_y_p, y_to_x,
        y_to_x_p, trend`` where ``label`` is one of :data:`LOOP_LABELS`,
        ``reason`` a sentence explaining it, ``x_to_y``/``y_to_x`` the two
        cross-lagged estimates with their p-values, and ``trend`` the word.

    Notes
    -----
    A path *supports* a direction when its estimate is positive and
    :math:`p < \\alpha`. Both supported: a reciprocal (reinforcing) loop,
    called a virtuous cycle when EX trends up, a doom loop when it trends down,
    and plain "reciprocal loop" when flat. Only x -> y: "EX leads"; only
    y -> x: "CX leads"; neither (or undefined): "no evidence". A significant
    negative path is reported in the reason but does not make a loop.

    References
    ----------
    Heskett, J. L., Jones, T. O., Loveman, G. W., Sasser, W. E., & Schlesinger,
    L. A. (1994). Putting the service-profit chain to work. *Harvard Business
    Review*, 72(2), 164-174.

    Schlesinger, L. A., & Heskett, J. L. (1991). Breaking the cycle of failure
    in services. *Sloan Management Review*, 32(3), 17-28.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.linkage import classify_loop
    >>> cl = pd.DataFrame({"source": ["ex", "cx"], "target": ["cx", "ex"],
    ...                    "kind": ["cross-lagged"] * 2, "estimate": [0.3, 0.2],
    ...                    "p_val": [0.001, 0.01]})
    >>> classify_loop(cl, trend="up").loc[0, "label"]
    'reciprocal loop — virtuous cycle'
    >>> classify_loop(cl, trend=-0.2).loc[0, "label"]
    'reciprocal loop — doom loop'
    """
    _check_frame(cross_lagged_result, "cross_lagged_result")
    _check_alpha(alpha)
    need = {"source", "target", "kind", "estimate", "p_val"}
    if not need <= set(cross_lagged_result.columns):
        raise ParameterError(
            f"`cross_lagged_result` must be the output of cross_lagged() with columns "
            f"{sorted(need)}, but it has {list(cross_lagged_result.columns)}"
        )
    cross = cross_lagged_result[cross_lagged_result["kind"] == "cross-lagged"]
    if len(cross) != 2:
        raise ParameterError(
            f"`cross_lagged_result` must hold exactly 2 cross-lagged rows, but {len(cross)} were found"
        )
    word = _trend_word(trend, trend_tol)
    xy, yx = cross.iloc[0], cross.iloc[1]
    x, y = xy["source"], xy["target"]
    b1, p1, b2, p2 = (float(xy["estimate"]), float(xy["p_val"]),
                      float(yx["estimate"]), float(yx["p_val"]))
    s1 = bool(np.isfinite(b1) and b1 > 0 and p1 < alpha)
    s2 = bool(np.isfinite(b2) and b2 > 0 and p2 < alpha)

    def fmt(b, p):
        return f"{b:+.2f} SD (p = {p:.3g})" if np.isfinite(b) else "undefined"

    d1 = f"{x} -> next-period {y}: {fmt(b1, p1)}"
    d2 = f"{y} -> next-period {x}: {fmt(b2, p2)}"
    if s1 and s2:
        label = {"up": LOOP_LABELS[0], "down": LOOP_LABELS[1], "flat": LOOP_LABELS[2]}[word]
        tail = {"up": f"and {x} is trending up, so the loop is reinforcing improvement",
                "down": f"and {x} is trending down, so the loop is reinforcing decline",
                "flat": f"and {x} shows no clear trend"}[word]
        reason = f"both cross-lagged paths are positive and significant ({d1}; {d2}), {tail}"
    elif s1:
        label = LOOP_LABELS[3]
        reason = f"only the {x} -> {y} path is positive and significant ({d1}; {d2})"
    elif s2:
        label = LOOP_LABELS[4]
        reason = f"only the {y} -> {x} path is positive and significant ({d2}; {d1})"
    else:
        label = LOOP_LABELS[5]
        if not (np.isfinite(b1) and np.isfinite(b2)):
            reason = "the cross-lagged paths could not be estimated"
            notes = cross_lagged_result.get("note")
            if notes is not None and str(notes.iloc[0]):
                reason += f" ({notes.iloc[0]})"
        else:
            reason = f"neither cross-lagged path is positive and significant at alpha = {alpha} ({d1}; {d2})"
            neg = [d for d, b, p in ((d1, b1, p1), (d2, b2, p2)) if b < 0 and p < alpha]
            if neg:
                reason += "; note a significant negative path: " + "; ".join(neg)
    return pd.DataFrame([{"x": x, "y": y, "label": label, "reason": reason, "x_to_y": b1,
                          "x_to_y_p": p1, "y_to_x": b2, "y_to_x_p": p2, "trend": word}])


def loop_direction(data, *, x, y, unit="unit_id", period="period", periods=None, covar=None,
                   period_effects=False, alpha=0.05, trend_tol=0.05):
    """Cross-lagged paths plus the client's EX trend, classified in plain language.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel, one row per unit x period.
    x, y : str
        EX column and CX (or business) column.
    unit, period, periods, covar, period_effects
        As in :func:`cross_lagged`.
    alpha, trend_tol : float
        As in :func:`classify_loop`.

    Returns
    -------
    pandas.DataFrame
        One row: the columns of :func:`classify_loop` plus ``trend_sd`` (the
        EX trend in SD per period), ``n_obs`` and ``n_units``.

    Notes
    -----
    The trend is the OLS slope of the per-period mean of x on the period's
    position in ``periods``, divided by the SD of x over all unit-periods.

    References
    ----------
    Schneider, B., White, S. S., & Paul, M. C. (1998). *Journal of Applied
    Psychology*, 83(2), 150-163.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.linkage import loop_direction
    >>> rng = np.random.default_rng(5)
    >>> panel = pd.DataFrame({"unit_id": np.repeat([f"u{i}" for i in range(30)], 3),
    ...                       "period": np.tile(["p1", "p2", "p3"], 30),
    ...                       "ex": rng.normal(size=90), "cx": rng.normal(size=90)})
    >>> loop_direction(panel, x="ex", y="cx").loc[0, "label"] in (
    ...     "no evidence", "EX leads", "CX leads")
    True
    """
    cl = cross_lagged(data, x=x, y=y, unit=unit, period=period, periods=periods, covar=covar,
                      period_effects=period_effects)
    periods_, t_index = _panel_periods(data, unit, period, periods, "loop_direction")
    means = data[x].groupby(t_index.to_numpy()).mean().dropna()
    sd = float(data[x].std(ddof=1))
    if len(means) >= 2 and np.isfinite(sd) and sd > 0:
        slope = float(np.polyfit(means.index.to_numpy(dtype=float), means.to_numpy(), 1)[0]) / sd
    else:
        slope = np.nan
    res = classify_loop(cl, trend=slope, alpha=alpha, trend_tol=trend_tol)
    res["trend_sd"] = slope
    res["n_obs"] = int(cl["n_obs"].iloc[0])
    res["n_units"] = int(cl["n_units"].iloc[0])
    return res


# --------------------------------------------------------------------------- #
# mediation, incremental validity
# --------------------------------------------------------------------------- #
def _int_seed(seed):
    """pingouin takes an int seed (np.random.RandomState); derive one from a Generator."""
    if seed is None or isinstance(seed, int | np.integer):
        return None if seed is None else int(seed)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**31 - 1))
    raise ParameterError(f"`seed` must be None, an int or a numpy Generator, but {seed!r} was passed")


def _pingouin_mediation(sub, x, ms, y, covar, n_boot, seed):
    """Rows of ``pingouin.mediation_analysis`` keyed by (path, mediator); b = slope in y ~ x + m."""
    import pingouin as pg
    import statsmodels.api as sm

    res = pg.mediation_analysis(data=sub, x=x, m=ms if len(ms) > 1 else ms[0], y=y,
                                covar=covar or None, n_boot=n_boot, seed=seed)
    lookup = {}
    for _, r in res.iterrows():
        name = r["path"]
        for mm in ms:
            if name == f"{mm} ~ X":
                lookup[("a", mm)] = r
            elif name == (f"Indirect {mm}" if len(ms) > 1 else "Indirect"):
                lookup[("indirect", mm)] = r
        if name == "Total":
            lookup[("total", None)] = r
        elif name == "Direct":
            lookup[("direct", None)] = r
    # pingouin's "Y ~ m" row regresses y on m without x; report the usual b path of
    # y ~ x + m (+ covar) instead, so that indirect = a * b (as pingouin computes it).
    fit = sm.OLS(sub[y].to_numpy(float),
                 sm.add_constant(sub[[x, *ms, *covar]].to_numpy(float), has_constant="add")).fit()
    ci = fit.conf_int(0.05)
    for j, mm in enumerate(ms, start=2):
        lookup[("b", mm)] = {"coef": fit.params[j], "se": fit.bse[j], "CI2.5": ci[j, 0],
                             "CI97.5": ci[j, 1], "pval": fit.pvalues[j]}
    return lookup


def _boot_slopes(z, w, targets):
    """OLS slopes in every weighted resample, from batched normal equations.

    ``z`` is (n, q) complete rows, ``w`` (B, n) row multiplicities; ``targets``
    maps a target column index to the predictor column indices. Returns
    {target: (B, len(predictors)) slopes} and a (B,) mask of resamples whose
    normal equations are well conditioned (others are NaN here).
    """
    n_boot, (n, q) = w.shape[0], z.shape
    mu0, sd0 = z.mean(axis=0), z.std(axis=0)
    zs = (z - mu0) / np.where(sd0 > 0, sd0, 1.0)  # centred, unit scale: well conditioned
    w = w.astype(float)
    tot = w.sum(axis=1)
    m1 = (w @ zs) / tot[:, None]
    m2 = (w @ (zs[:, :, None] * zs[:, None, :]).reshape(n, q * q)).reshape(n_boot, q, q)
    cov = m2 / tot[:, None, None] - m1[:, :, None] * m1[:, None, :]
    out, ok = {}, np.ones(n_boot, dtype=bool)
    for t, preds in targets.items():
        a = cov[:, preds][:, :, preds]
        rhs = cov[:, preds, t]
        cond = np.linalg.cond(a)
        good = np.isfinite(cond) & (cond < 1e10)
        beta = np.full((n_boot, len(preds)), np.nan)
        if good.any():
            beta[good] = np.linalg.solve(a[good], rhs[good][:, :, None])[:, :, 0]
        out[t] = beta * sd0[t] / np.where(sd0[preds] > 0, sd0[preds], 1.0)
        ok &= good
    return out, ok


def _mediation_ols(sub, x, ms, y, covar, n_boot, seed):
    """``pingouin.mediation_analysis`` for continuous mediators, with a vectorised bootstrap.

    Same rows as pingouin (its ``linear_regression`` for a, total and direct;
    b = slope of m in y ~ x + m (+ covar)), the same resampling indices
    (``np.random.RandomState(seed).choice``) and the same bias-corrected
    percentile CI and bootstrap p-value of the indirect effect; the a*b of each
    resample comes from batched normal equations on centred data instead of a
    Python loop of least-squares fits (equal to ~1e-13; a resample whose
    equations are ill conditioned is refitted with ``numpy.linalg.lstsq`` as
    pingouin does).
    """
    import statsmodels.api as sm
    from scipy.stats import norm

    n, k = len(sub), len(ms)
    X_val = sub[[x, *covar]].to_numpy(dtype=float)
    XM_val = sub[[x, *ms, *covar]].to_numpy(dtype=float)
    M_val = sub[ms].to_numpy(dtype=float)
    y_val = sub[y].to_numpy(dtype=float)

    def ols_row(exog, endog, j):  # what pingouin.linear_regression reports for coefficient j
        fit = sm.OLS(endog, sm.add_constant(exog, has_constant="add")).fit()
        ci = fit.conf_int(0.05)
        return {"coef": fit.params[j], "se": fit.bse[j], "CI2.5": ci[j, 0], "CI97.5": ci[j, 1],
                "pval": fit.pvalues[j]}

    lookup = {("a", mm): ols_row(X_val, M_val[:, j], 1) for j, mm in enumerate(ms)}
    lookup[("total", None)] = ols_row(X_val, y_val, 1)
    lookup[("direct", None)] = ols_row(XM_val, y_val, 1)
    for j, mm in enumerate(ms, start=2):
        lookup[("b", mm)] = ols_row(XM_val, y_val, j)

    def ab_of(idx):  # pingouin's _point_estimate for linear mediators
        one = np.ones((len(idx), 1))
        a = [np.linalg.lstsq(np.hstack([one, X_val[idx]]), M_val[idx, j], rcond=None)[0][1]
             for j in range(k)]
        b = np.linalg.lstsq(np.hstack([one, XM_val[idx]]), y_val[idx], rcond=None)[0][2:2 + k]
        return np.asarray(a) * b

    ab = ab_of(np.arange(n))
    rng = np.random.RandomState(seed)
    idx = rng.choice(np.arange(n), replace=True, size=(n_boot, n))
    w = np.bincount((idx + (np.arange(n_boot) * n)[:, None]).ravel(),
                    minlength=n_boot * n).reshape(n_boot, n)
    # columns of z: x, mediators, covariates, y
    z = np.column_stack([XM_val, y_val])
    pos_cov = list(range(1 + k, 1 + k + len(covar)))
    targets = {1 + j: [0, *pos_cov] for j in range(k)}
    targets[z.shape[1] - 1] = list(range(1 + k + len(covar)))
    slopes, ok = _boot_slopes(z, w, targets)
    est = np.column_stack([slopes[1 + j][:, 0] for j in range(k)]) * slopes[z.shape[1] - 1][:, 1:1 + k]
    for i in np.flatnonzero(~ok):
        est[i] = ab_of(idx[i])
    for j, mm in enumerate(ms):
        dist = est[:, j]
        z0 = norm.ppf(np.mean(dist < ab[j]))
        lo, hi = np.percentile(dist, q=[norm.cdf(2 * z0 + norm.ppf(0.025)) * 100,
                                        norm.cdf(2 * z0 + norm.ppf(0.975)) * 100])
        p = 1.0 if ab[j] == 0 else min(1.0, 2 * min((dist > 0).sum(), (dist < 0).sum()) / n_boot)
        lookup[("indirect", mm)] = {"coef": ab[j], "se": dist.std(ddof=1), "pval": p,
                                    "CI2.5": min(lo, hi), "CI97.5": max(lo, hi)}
    return lookup


def mediation(data, *, x, m, y, covar=None, n_boot=1000, seed=None):
    """Mediation x -> m -> y with a bootstrap CI for the indirect effect.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel (one row per unit).
    x : str
        Predictor (EX).
    m : str or list of str
        Mediator(s) (CX).
    y : str
        Outcome (business result).
    covar : str or list of str, optional
        Covariates for every regression.
    n_boot : int
        Bootstrap resamples for the indirect effect.
    seed : int or numpy.random.Generator, optional
        Passed to ``pingouin.mediation_analysis`` (an int; a Generator gives
        one).

    Returns
    -------
    pandas.DataFrame
        Rows ``a`` (m ~ x, one per mediator), ``b`` (the slope of m in the OLS
        y ~ x + m (+ covar), one per mediator; pingouin's own ``Y ~ m`` row
        omits x, so it is replaced), ``total`` (y ~ x), ``direct`` (y ~ x given m) and
        ``indirect`` (a*b, one per mediator), columns ``path, mediator,
        estimate, se, ci_low, ci_high, p_val, n, note``. For ``indirect`` the
        CI is the bootstrap CI of pingouin (bias-corrected percentile) and
        ``p_val`` its bootstrap p-value. Continuous mediators: pingouin's
        estimator and resampling indices with a vectorised bootstrap (batched
        normal equations, no loop over resamples); a binary mediator: pingouin
        itself (logistic regression).

    Notes
    -----
    :math:`m = a x + e_1`, :math:`y = c' x + b m + e_2`, :math:`y = c x + e_3`;
    indirect effect :math:`ab = c - c'` for one mediator, unstandardized.
    Cross-sectional mediation shows consistency with a chain, not that the
    chain is causal.

    References
    ----------
    Preacher, K. J., & Hayes, A. F. (2008). Asymptotic and resampling
    strategies for assessing and comparing indirect effects in multiple
    mediator models. *Behavior Research Methods*, 40(3), 879-891.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.linkage import mediation
    >>> rng = np.random.default_rng(6)
    >>> ex = rng.normal(size=40); cx = 0.6 * ex + rng.normal(size=40)
    >>> panel = pd.DataFrame({"ex": ex, "cx": cx, "sales": 0.5 * cx + rng.normal(size=40)})
    >>> res = mediation(panel, x="ex", m="cx", y="sales", n_boot=200, seed=1)
    >>> res.path.tolist()
    ['a', 'b', 'total', 'direct', 'indirect']
    """
    _check_frame(data)
    for name, v in (("x", x), ("y", y)):
        if not isinstance(v, str):
            raise ParameterError(f"`{name}` must be one column name, but {v!r} was passed")
    ms = _as_list("m", m)
    covar = _as_list("covar", covar, allow_none=True)
    for name, cols in (("x", [x]), ("m", ms), ("y", [y]), ("covar", covar)):
        _check_columns(data, name, cols)
    _check_n_boot(n_boot)
    seed = _int_seed(seed)
    sub = data[[x, *ms, y, *covar]].dropna()
    n = len(sub)
    note = ""
    k = len(ms) + len(covar) + 1
    if n - k < MIN_PAIRS + 1:
        note = f"too few units: n={n} complete rows for {k} predictors (need at least {MIN_PAIRS + 1 + k})"
    else:
        const = [c for c in sub.columns if np.ptp(sub[c].to_numpy(dtype=float)) == 0]
        if const:
            note = f"{const[0]!r} is constant across the {n} units, so the mediation is undefined"
    paths = ([("a", mm) for mm in ms] + [("b", mm) for mm in ms] + [("total", None), ("direct", None)]
             + [("indirect", mm) for mm in ms])
    if note:
        _warn("mediation", f"{x} -> {ms} -> {y}: {note}; returning NaN")
        return pd.DataFrame([{"path": p, "mediator": mm, "estimate": np.nan, "se": np.nan,
                              "ci_low": np.nan, "ci_high": np.nan, "p_val": np.nan, "n": n,
                              "note": note} for p, mm in paths])
    if (sub[ms].nunique() == 2).any():
        # a binary mediator is modelled by pingouin with a logistic regression: use it as is
        lookup = _pingouin_mediation(sub, x, ms, y, covar, n_boot, seed)
    else:
        lookup = _mediation_ols(sub, x, ms, y, covar, n_boot, seed)
    rows = []
    for p, mm in paths:
        r = lookup[(p, mm)]
        rows.append({"path": p, "mediator": mm, "estimate": float(r["coef"]), "se": float(r["se"]),
                     "ci_low": float(r["CI2.5"]), "ci_high": float(r["CI97.5"]),
                     "p_val": float(r["pval"]), "n": n, "note": ""})
    return pd.DataFrame(rows)


def _ols_r2(yv, xm):
    """R^2 of OLS of yv on [1, xm]."""
    if xm.shape[1] == 0:
        return 0.0
    exog = np.column_stack([np.ones(len(yv)), xm])
    beta, *_ = np.linalg.lstsq(exog, yv, rcond=None)
    resid = yv - exog @ beta
    sst = np.sum((yv - yv.mean()) ** 2)
    return float(1.0 - resid @ resid / sst)


def incremental_validity(data, *, y, drivers, engagement):
    """Does engagement add to the outcome beyond the EX drivers, and do the drivers add beyond it?

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel (one row per unit).
    y : str
        Outcome (e.g. a CX score).
    drivers : str or list of str
        Specific EX driver scales.
    engagement : str or list of str
        Engagement scale(s) (or eNPS).

    Returns
    -------
    pandas.DataFrame
        Four rows, two per sequence (``"engagement first"``, ``"drivers
        first"``), columns ``sequence, step, added, r2, delta_r2, f, df1, df2,
        p_val, n, note``: ``step`` 1 or 2, ``added`` the block entered at that
        step (``"engagement"`` or ``"drivers"``), ``r2`` the model R^2,
        ``delta_r2`` its gain over the previous step (step 1: over the
        intercept-only model), ``f`` the F statistic of that gain with
        ``df1``, ``df2`` degrees of freedom and ``p_val``, ``n`` complete units
        (the same for all rows), ``note`` why a row is NaN.

    Notes
    -----
    .. math::
        F = \\frac{(R^2_2 - R^2_1)/q}{(1 - R^2_2)/(n - p_2 - 1)},\\quad
        df_1 = q,\\ df_2 = n - p_2 - 1,

    where :math:`q` predictors are added to reach a model with :math:`p_2`.
    This is R's ``anova(lm1, lm2)``. All four models use the units complete in
    y, drivers and engagement.

    References
    ----------
    Cohen, J., Cohen, P., West, S. G., & Aiken, L. S. (2003). *Applied Multiple
    Regression/Correlation Analysis for the Behavioral Sciences* (3rd ed.),
    ch. 5.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.linkage import incremental_validity
    >>> rng = np.random.default_rng(7)
    >>> d = pd.DataFrame(rng.normal(size=(40, 3)), columns=["manager", "tools", "engagement"])
    >>> d["cx"] = 0.5 * d.manager + rng.normal(size=40)
    >>> res = incremental_validity(d, y="cx", drivers=["manager", "tools"], engagement="engagement")
    >>> res[["sequence", "step", "added", "df1"]].values.tolist()[:2]
    [['engagement first', 1, 'engagement', 1], ['engagement first', 2, 'drivers', 2]]
    """
    _check_frame(data)
    if not isinstance(y, str):
        raise ParameterError(f"`y` must be one column name, but {y!r} was passed")
    drivers = _as_list("drivers", drivers)
    eng = _as_list("engagement", engagement)
    for name, cols in (("y", [y]), ("drivers", drivers), ("engagement", eng)):
        _check_columns(data, name, cols)
    clash = sorted(set(drivers) & set(eng) | ({y} & (set(drivers) | set(eng))))
    if clash:
        raise ParameterError(f"`y`, `drivers` and `engagement` must not share columns, but {clash} do")
    sub = data[[y, *drivers, *eng]].dropna()
    n, p_all = len(sub), len(drivers) + len(eng)
    note = ""
    if n - p_all - 1 < 2:
        note = f"too few units: n={n} for {p_all} predictors (need at least {p_all + 3})"
    else:
        const = [c for c in sub.columns if np.ptp(sub[c].to_numpy(dtype=float)) == 0]
        if const:
            note = f"{const[0]!r} is constant across the {n} units, so R^2 is undefined"
    rows = []
    blocks = {"engagement": eng, "drivers": drivers}
    for seq, order in (("engagement first", ("engagement", "drivers")),
                       ("drivers first", ("drivers", "engagement"))):
        prev_cols, prev_r2 = [], 0.0
        for step, added in enumerate(order, start=1):
            cols = prev_cols + blocks[added]
            row = {"sequence": seq, "step": step, "added": added, "df1": len(blocks[added]),
                   "df2": n - len(cols) - 1, "n": n, "note": note}
            if not note:
                r2 = _ols_r2(sub[y].to_numpy(float), sub[cols].to_numpy(float))
                dr2 = r2 - prev_r2
                f = (dr2 / row["df1"]) / ((1.0 - r2) / row["df2"]) if r2 < 1 else np.inf
                row.update(r2=r2, delta_r2=dr2, f=f, p_val=float(stats.f.sf(f, row["df1"], row["df2"])))
                prev_r2 = r2
            rows.append(row)
            prev_cols = cols
    if note:
        _warn("incremental_validity", f"{y}: {note}; returning NaN")
    out = pd.DataFrame(rows).reindex(
        columns=["sequence", "step", "added", "r2", "delta_r2", "f", "df1", "df2", "p_val", "n", "note"]
    )
    for c in ["r2", "delta_r2", "f", "p_val"]:
        out[c] = out[c].astype(float)
    return out


# --------------------------------------------------------------------------- #
# key drivers
# --------------------------------------------------------------------------- #
def _rw_from_corr(corr):
    """Johnson's raw relative weights from a stack of correlation matrices.

    corr is (..., p + 1, p + 1) with the outcome last. Returns (..., p).
    Written by hand: neither pingouin nor statsmodels implements relative weights.
    """
    rxx = corr[..., :-1, :-1]
    rxy = corr[..., :-1, -1]
    evals, evecs = np.linalg.eigh(rxx)
    bad = (evals <= 1e-10 * np.abs(evals).max(axis=-1, keepdims=True)).any(axis=-1)
    root = np.sqrt(np.clip(evals, 1e-300, None))
    # Lambda = V diag(sqrt(l)) V' : correlations of X with its closest orthonormal Z
    lam = (evecs * root[..., None, :]) @ np.swapaxes(evecs, -1, -2)
    # beta = Lambda^-1 rxy : regression of y on Z
    lam_inv = (evecs / root[..., None, :]) @ np.swapaxes(evecs, -1, -2)
    beta = np.einsum("...ij,...j->...i", lam_inv, rxy)
    eps = np.einsum("...jk,...k->...j", lam**2, beta**2)
    eps = np.where(bad[..., None], np.nan, eps)
    return eps


def relative_weights(data, *, y, drivers, n_boot=1000, seed=None, unit="unit_id"):
    """Johnson's (2000) relative weights of EX drivers for an outcome, with bootstrap CIs.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel.
    y : str
        Outcome column.
    drivers : list of str
        Driver columns (at least 2).
    n_boot : int
        Bootstrap resamples (0 is not allowed; use a small number for speed).
    seed : int or numpy.random.Generator, optional
        Seed of ``np.random.default_rng``.
    unit : str or None
        Resampling cluster; if the column is absent or ``None`` rows are
        resampled.

    Returns
    -------
    pandas.DataFrame
        One row per driver in the given order, columns ``driver, weight,
        weight_low, weight_high, pct_r2, pct_low, pct_high, r2, n, rank,
        note``: ``weight`` the raw relative weight (they sum to ``r2``),
        ``pct_r2`` = 100 * weight / r2, each with a 95% percentile bootstrap
        CI, ``r2`` the model R^2, ``n`` complete units, ``rank`` 1 = largest
        weight, ``note`` why a row is NaN.

    Notes
    -----
    With :math:`R_{xx} = V \\Lambda V'`, let :math:`\\Lambda^* = V
    \\Lambda^{1/2} V'` (correlations of the drivers with their closest
    orthonormal counterparts Z) and :math:`\\beta^* = \\Lambda^{*-1} r_{xy}`
    (regression of y on Z). The raw weight of driver j is
    :math:`\\varepsilon_j = \\sum_k \\Lambda^{*2}_{jk} \\beta^{*2}_k`, and
    :math:`\\sum_j \\varepsilon_j = R^2` exactly. The bootstrap recomputes the
    correlation matrix from weighted unit resamples in one batch and runs a
    batched eigendecomposition (no Python loop). Written by hand: neither
    pingouin nor statsmodels implements relative weights.

    References
    ----------
    Johnson, J. W. (2000). A heuristic method for estimating the relative
    weight of predictor variables in multiple regression. *Multivariate
    Behavioral Research*, 35(1), 1-19.

    Tonidandel, S., & LeBreton, J. M. (2011). Relative importance analysis: a
    useful supplement to regression analysis. *Journal of Business and
    Psychology*, 26(1), 1-9.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.linkage import relative_weights
    >>> rng = np.random.default_rng(8)
    >>> d = pd.DataFrame(rng.normal(size=(30, 3)), columns=["manager", "tools", "growth"])
    >>> d["cx"] = 0.6 * d.manager + 0.2 * d.tools + rng.normal(size=30)
    >>> rw = relative_weights(d, y="cx", drivers=["manager", "tools", "growth"], seed=1)
    >>> bool(np.isclose(rw.weight.sum(), rw.r2.iloc[0]))
    True
    >>> rw.sort_values("rank").driver.iloc[0]
    'manager'
    """
    _check_frame(data)
    if not isinstance(y, str):
        raise ParameterError(f"`y` must be one column name, but {y!r} was passed")
    drivers = _as_list("drivers", drivers)
    _check_columns(data, "y", [y])
    _check_columns(data, "drivers", drivers)
    if y in drivers:
        raise ParameterError(f"`drivers` must not include `y` ({y!r})")
    if len(drivers) < 2:
        raise ParameterError(f"`drivers` must name at least 2 columns, but {drivers} was passed")
    _check_n_boot(n_boot)
    cols = [*drivers, y]
    keep = data[cols].notna().all(axis=1).to_numpy()
    z = data[cols].to_numpy(dtype=float)[keep]
    n, p = len(z), len(drivers)
    out = pd.DataFrame({"driver": drivers})
    note = ""
    if n - p - 1 < 2:
        note = f"too few units: n={n} for {p} drivers (need at least {p + 3})"
    else:
        const = [c for j, c in enumerate(cols) if np.ptp(z[:, j]) == 0]
        if const:
            note = f"{const[0]!r} is constant across the {n} units, so the weights are undefined"
    if not note:
        eps = _rw_from_corr(np.corrcoef(z, rowvar=False))
        if not np.isfinite(eps).all():
            note = "the drivers are collinear (singular correlation matrix), so the weights are undefined"
    if note:
        _warn("relative_weights", f"{y}: {note}; returning NaN")
        for c in ["weight", "weight_low", "weight_high", "pct_r2", "pct_low", "pct_high", "r2"]:
            out[c] = np.nan
        out["n"], out["rank"], out["note"] = n, np.nan, note
        return out
    r2 = float(eps.sum())
    use_unit = unit if (unit is not None and unit in data.columns) else None
    codes, n_clusters = _unit_codes(data.loc[keep], use_unit)
    rng = np.random.default_rng(seed)
    w = _boot_weights(n_clusters, n_boot, rng)[:, codes].astype(float)
    tot = w.sum(axis=1)
    mean = (w @ z) / tot[:, None]
    d = z[None, :, :] - mean[:, None, :]
    cov = np.einsum("bn,bni,bnj->bij", w, d, d)
    sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    with np.errstate(all="ignore"):
        corr = cov / sd[:, :, None] / sd[:, None, :]
    okb = np.isfinite(corr).all(axis=(1, 2))
    eps_b = np.full((n_boot, p), np.nan)
    if okb.any():
        eps_b[okb] = _rw_from_corr(corr[okb])
    with np.errstate(all="ignore"):
        pct_b = 100.0 * eps_b / eps_b.sum(axis=1, keepdims=True)
    wl, wh = _percentile_ci(eps_b)
    pl, ph = _percentile_ci(pct_b)
    out["weight"] = eps
    out["weight_low"], out["weight_high"] = wl, wh
    out["pct_r2"] = 100.0 * eps / r2
    out["pct_low"], out["pct_high"] = pl, ph
    out["r2"] = r2
    out["n"] = n
    out["rank"] = out["weight"].rank(ascending=False, method="min").astype(int)
    out["note"] = ""
    return out


def driver_priorities(data, *, y, drivers, scores=None, n_boot=1000, seed=None, unit="unit_id"):
    """Impact x performance table of EX drivers: where to act first.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel.
    y : str
        Outcome column.
    drivers : list of str
        Driver columns (at least 2).
    scores : mapping or pandas.Series, optional
        Performance of each driver (e.g. % favourable). Default: the mean of
        each driver column over the units in ``data``.
    n_boot, seed, unit
        Passed to :func:`relative_weights`.

    Returns
    -------
    pandas.DataFrame
        One row per driver, sorted by ``rank``, columns ``driver, impact,
        impact_low, impact_high, performance, quadrant, priority, rank``:
        ``impact`` the % of R^2 (relative weight) with its bootstrap CI,
        ``performance`` the score, ``quadrant`` one of ``"priority"`` (high
        impact, low score), ``"strength"`` (high impact, high score),
        ``"monitor"`` (low impact, low score), ``"maintain"`` (low impact,
        high score), ``priority`` True for the first quadrant, ``rank`` 1 =
        act first (priority drivers by impact, then the rest by impact).

    Notes
    -----
    Impact is high when strictly above the median impact of the drivers;
    performance is low when strictly below the median score. A driver at a
    median counts as low impact or high score (so it is not flagged).

    References
    ----------
    Martilla, J. A., & James, J. C. (1977). Importance-performance analysis.
    *Journal of Marketing*, 41(1), 77-79.

    Johnson, J. W. (2000). *Multivariate Behavioral Research*, 35(1), 1-19.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.linkage import driver_priorities
    >>> rng = np.random.default_rng(9)
    >>> d = pd.DataFrame(rng.normal(3.5, 0.4, size=(30, 4)), columns=list("abcd"))
    >>> d["cx"] = d.a + 0.1 * d.b + rng.normal(0, 0.3, size=30)
    >>> pr = driver_priorities(d, y="cx", drivers=list("abcd"),
    ...                        scores={"a": 3.0, "b": 4.0, "c": 3.2, "d": 4.1}, seed=1)
    >>> pr.loc[pr.driver == "a", "quadrant"].item()
    'priority'
    """
    drivers = _as_list("drivers", drivers)
    if scores is not None:
        if not isinstance(scores, Mapping | pd.Series):
            raise ParameterError(
                f"`scores` must be a mapping or Series driver -> score, but {type(scores).__name__} was passed"
            )
        missing = [dv for dv in drivers if dv not in scores]
        if missing:
            raise ParameterError(f"`scores` has no score for driver(s) {missing}")
        perf = pd.Series({dv: float(scores[dv]) for dv in drivers})
    rw = relative_weights(data, y=y, drivers=drivers, n_boot=n_boot, seed=seed, unit=unit)
    if scores is None:
        perf = data[drivers].mean()
    out = pd.DataFrame({
        "driver": drivers,
        "impact": rw["pct_r2"].to_numpy(),
        "impact_low": rw["pct_low"].to_numpy(),
        "impact_high": rw["pct_high"].to_numpy(),
        "performance": perf.reindex(drivers).to_numpy(dtype=float),
    })
    hi_imp = out["impact"] > out["impact"].median()
    lo_perf = out["performance"] < out["performance"].median()
    out["quadrant"] = np.select(
        [hi_imp & lo_perf, hi_imp & ~lo_perf, ~hi_imp & lo_perf],
        ["priority", "strength", "monitor"], "maintain",
    )
    out.loc[out["impact"].isna(), "quadrant"] = "undefined"
    out["priority"] = out["quadrant"] == "priority"
    out = out.sort_values(["priority", "impact"], ascending=[False, False], kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- #
# consistency across units
# --------------------------------------------------------------------------- #
def unit_consistency(data, *, scales, unit="unit_id"):
    """How much each EX scale varies between the client's units.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel for one period (several rows per unit are averaged first).
    scales : str or list of str
        Scale columns.
    unit : str
        Unit column.

    Returns
    -------
    pandas.DataFrame
        One row per scale, columns ``scale, n_units, mean, sd, min, q1,
        median, q3, iqr, range, cv, note``: statistics over unit means (sd
        with ddof=1; quartiles by linear interpolation), ``range`` = max - min,
        ``cv`` = sd / mean (NaN when the mean is not positive, e.g. eNPS),
        ``note`` why a value is NaN.

    Notes
    -----
    :math:`CV = s / \\bar{x}`, :math:`IQR = Q_3 - Q_1` of the unit means.
    Suppressed unit-periods (NaN) are left out.

    References
    ----------
    Bliese, P. D. (2000). Within-group agreement, non-independence, and
    reliability. In *Multilevel Theory, Research, and Methods in
    Organizations* (pp. 349-381). Jossey-Bass.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.linkage import unit_consistency
    >>> d = pd.DataFrame({"unit_id": list("abcd"), "wellbeing": [3.0, 3.5, 4.0, 4.5]})
    >>> res = unit_consistency(d, scales="wellbeing")
    >>> int(res.loc[0, "n_units"]), float(res.loc[0, "iqr"]), float(res.loc[0, "range"])
    (4, 0.75, 1.5)
    """
    _check_frame(data)
    scales = _as_list("scales", scales)
    _check_columns(data, "scales", scales)
    _check_columns(data, "unit", [unit], numeric=False)
    means = data.groupby(unit, sort=False)[scales].mean()
    rows = []
    for s in scales:
        v = means[s].dropna().to_numpy(dtype=float)
        row = {"scale": s, "n_units": len(v), "note": ""}
        if len(v) < 2:
            row["note"] = f"too few units: {len(v)} unit(s) with a score (need at least 2)"
            _warn("unit_consistency", f"{s}: {row['note']}; returning NaN")
        else:
            q1, med, q3 = np.percentile(v, [25, 50, 75])
            mean, sd = v.mean(), v.std(ddof=1)
            row.update(mean=mean, sd=sd, min=v.min(), q1=q1, median=med, q3=q3, iqr=q3 - q1,
                       range=np.ptp(v), cv=sd / mean if mean > 0 else np.nan)
            if not mean > 0:
                row["note"] = "cv undefined: the mean is not positive"
        rows.append(row)
    out = pd.DataFrame(rows).reindex(
        columns=["scale", "n_units", "mean", "sd", "min", "q1", "median", "q3", "iqr", "range",
                 "cv", "note"]
    )
    for c in out.columns[2:-1]:
        out[c] = out[c].astype(float)
    out["n_units"] = out["n_units"].astype(int)
    return out


def standout_units(data, *, scales, unit="unit_id", level="auto", method="holm", alpha=0.05,
                   min_group_size=5):
    """Units whose score differs from the client's mean, with multiple-comparison control.

    Parameters
    ----------
    data : pandas.DataFrame
        Either respondent scores (``score_scales`` output: several rows per
        unit, a ``respondent_id`` column) or a unit panel for one period (one
        row per unit).
    scales : str or list of str
        Scale columns.
    unit : str
        Unit column.
    level : {"auto", "respondent", "unit"}
        ``"auto"`` means respondent level if ``respondent_id`` is a column.
    method : {"holm", "fdr_bh", "bonf"}
        Adjustment across the units of each scale (pingouin.multicomp).
    alpha : float
        Level at which an adjusted p-value flags a unit.
    min_group_size : int
        Respondent level: units with fewer respondents are suppressed (NaN,
        no mean shown).

    Returns
    -------
    pandas.DataFrame
        One row per scale x unit, columns ``scale, <unit>, n, mean,
        client_mean, diff, stat, p_val, p_corr, flag, test, note``: ``n``
        respondents (or 1 at unit level), ``diff`` = mean - client_mean,
        ``stat`` the t statistic, ``p_corr`` adjusted across units,
        ``flag`` ``"high"``/``"low"`` when ``p_corr < alpha`` else
        ``"typical"`` (``""`` when untested), ``test`` the test used.

    Notes
    -----
    Respondent level: one-sample t-test of the unit's respondent scores
    against the client mean of all respondents, :math:`t = (\\bar{x}_u -
    \\bar{x}) / (s_u/\\sqrt{n_u})`, df :math:`n_u - 1`. Unit level (no
    respondent data): a leave-one-out prediction test, :math:`t =
    (m_u - \\bar{m}_{-u}) / (s_{-u}\\sqrt{1 + 1/(J-1)})`, df :math:`J - 2`,
    where :math:`\\bar{m}_{-u}`, :math:`s_{-u}` are the mean and SD of the
    other J - 1 unit means; ``client_mean`` is then :math:`\\bar{m}_{-u}`.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure.
    *Scandinavian Journal of Statistics*, 6(2), 65-70.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.linkage import standout_units
    >>> d = pd.DataFrame({"unit_id": list("abcdefgh"),
    ...                   "wellbeing": [3.4, 3.5, 3.6, 3.5, 3.45, 3.55, 3.5, 4.9]})
    >>> res = standout_units(d, scales="wellbeing")
    >>> res.loc[res.flag == "high", "unit_id"].tolist()
    ['h']
    """
    _check_frame(data)
    scales = _as_list("scales", scales)
    _check_columns(data, "scales", scales)
    _check_columns(data, "unit", [unit], numeric=False)
    _check_choice("level", level, ("auto", "respondent", "unit"))
    _check_choice("method", method, ("holm", "fdr_bh", "bonf"))
    _check_alpha(alpha)
    if level == "auto":
        level = "respondent" if "respondent_id" in data.columns else "unit"
    if level == "unit" and data[unit].duplicated().any():
        raise ParameterError(
            "`level='unit'` needs one row per unit, but some units have several rows; "
            "select one period, or pass respondent scores with level='respondent'"
        )
    rows = []
    for s in scales:
        block = []
        if level == "respondent":
            # one pass over the respondents per scale (not one t-test call per unit): the
            # one-sample t of scipy.stats.ttest_1samp, t = (mean - mu) / (sd / sqrt(n)), df n - 1
            client_mean = float(data[s].mean())
            g = data.groupby(unit, sort=False)[s]
            agg = pd.DataFrame({"n": g.count(), "mean": g.mean(), "sd": g.std(ddof=1),
                                "lo": g.min(), "hi": g.max()})
            for u, nu, mu, sd, lo, hi in agg.itertuples(name=None):
                row = {"scale": s, unit: u, "n": int(nu), "client_mean": client_mean,
                       "test": "one-sample t", "note": ""}
                if nu < min_group_size:
                    row["note"] = f"suppressed: fewer than {min_group_size} respondents"
                elif lo == hi:
                    row["note"] = "all respondents gave the same score; t is undefined"
                    row.update(mean=mu, diff=mu - client_mean)
                else:
                    t = (mu - client_mean) / (sd / np.sqrt(nu))
                    row.update(mean=mu, diff=mu - client_mean, stat=float(t),
                               p_val=float(2 * stats.t.sf(abs(t), nu - 1)))
                block.append(row)
        else:
            m = data[[unit, s]].dropna()
            vals = m[s].to_numpy(dtype=float)
            J = len(vals)
            for i, u in enumerate(m[unit]):
                row = {"scale": s, unit: u, "n": 1, "mean": vals[i], "test": "leave-one-out t",
                       "note": ""}
                others = np.delete(vals, i)
                if J < MIN_PAIRS:
                    row["note"] = f"too few units: {J} unit(s) with a score (need at least {MIN_PAIRS})"
                elif np.ptp(others) == 0:
                    row["note"] = "the other units all have the same score; t is undefined"
                else:
                    mo, so = others.mean(), others.std(ddof=1)
                    t = (vals[i] - mo) / (so * np.sqrt(1 + 1 / (J - 1)))
                    row.update(client_mean=mo, diff=vals[i] - mo, stat=float(t),
                               p_val=float(2 * stats.t.sf(abs(t), J - 2)))
                block.append(row)
        untested = [r for r in block if r["note"] and not r["note"].startswith("suppressed")]
        if untested:
            _warn("standout_units", f"{s}: {len(untested)} unit(s) untested: {untested[0]['note']}")
        p = np.array([r.get("p_val", np.nan) for r in block], dtype=float)
        pc = _p_adjust(p, method)
        for r, pcv in zip(block, pc, strict=True):
            r["p_corr"] = pcv
            if np.isfinite(pcv):
                r["flag"] = ("high" if r["diff"] > 0 else "low") if pcv < alpha else "typical"
            else:
                r["flag"] = ""
        rows.extend(block)
    cols = ["scale", unit, "n", "mean", "client_mean", "diff", "stat", "p_val", "p_corr", "flag",
            "test", "note"]
    out = pd.DataFrame(rows).reindex(columns=cols)
    for c in ["mean", "client_mean", "diff", "stat", "p_val", "p_corr"]:
        out[c] = out[c].astype(float)
    return out
