"""Statistical primitives shared by the within-client analysis modules (private).

Fisher-z inference for a correlation, the unit-cluster bootstrap weights and
percentile intervals, multiple-comparison adjustment (pingouin.multicomp) and the
reason a statistic is undefined. Used by :mod:`exresearch.linkage`,
:mod:`exresearch.direction`, :mod:`exresearch.mediation`, :mod:`exresearch.drivers`
and :mod:`exresearch.consistency`, so each computes them the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import check_columns as _check_columns
from .exceptions import ParameterError

__all__ = []  # private: imported by name from the analysis modules

#: Fewest complete (x, y) pairs, after removing one per covariate, for which a
#: correlation is reported. Below it the row is NaN with a note.
MIN_PAIRS = 4


_METHODS = ("pearson", "spearman")


_Z975 = stats.norm.ppf(0.975)


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
