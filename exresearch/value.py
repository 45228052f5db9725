"""One driver model per client: where to act first, and what it is worth.

Every section of a client report that names a driver or puts a value on one uses the
same model, fitted once on the client's units:

- :func:`driver_model` - the customer outcome on all EX drivers jointly: Johnson's (2000)
  relative weights for importance, each tested against a random-variable benchmark
  (Tonidandel, LeBreton & Johnson 2009), the joint regression for what a change is worth,
  the gain of closing each driver's gap to the top quarter of units, the share of
  bootstrap samples in which each driver is the best investment (rank probability), and
  ``act_first``: the one driver the report may name, or none;
- :func:`weight_differences` - pairwise differences between the drivers' weights, with
  bootstrap CIs (Tonidandel & LeBreton 2011);
- :func:`value_chain` - driver change -> CX (joint model) -> business outcome (slope of
  CX with EX held constant) -> money over a horizon, with costs, net value and
  break-even; the drivers' rows add up to the "all drivers" row, which is the joint
  model's prediction for closing every gap at once;
- :func:`unit_actions` - which of a client's reported units have the most to gain on the
  first-priority drivers, and how much;
- :func:`utility_table` - quartile utility in its published form (Brogden-Cronbach-Gleser
  utility from the corrected correlation and the outcome's SD; top vs bottom quartile in
  % only on a meaningful base, otherwise in points; the binomial effect size display and
  the odds of above-median performance);
- :func:`format_money` - an amount rounded to two significant figures with its currency.

All bootstraps resample units (clusters) with one ``seed``; the functions that share a
model (:func:`driver_model`, :func:`value_chain`) draw the same resamples for the same
data and seed, so their ranks and ``act_first`` agree row for row. Relative weights,
the random-variable test and rank probabilities are written by hand: neither pingouin
nor statsmodels provides them. The joint regression is ordinary least squares (checked
against R's ``lm`` in ``tests/r/value.R``). These are associations: a value is what the
estimated slopes imply if they were causal, and the reports say so.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import as_columns, check_columns, check_frame, check_n_boot, check_seed
from ._stats import _boot_weights, _warn
from .drivers import _check_model_args, _rw_from_corr
from .exceptions import ParameterError

__all__ = [
    "RANK_THRESHOLD",
    "CONTENDER_SHARE",
    "CI_METHODS",
    "driver_model",
    "weight_differences",
    "value_chain",
    "unit_actions",
    "utility_table",
    "format_money",
    "describe_priorities",
    "describe_value",
]

#: A driver is named "act first" only when it is the best investment in at least this
#: share of bootstrap samples (and its weight beats the random-variable benchmark).
#: Chosen on simulated clients (``validity/drivers.py``, docs/methods.md): with it a
#: driver of zero true weight is named in at most 5% of clients.
RANK_THRESHOLD = 0.7
#: When no driver is named, the drivers that cannot be separated are the fewest that are
#: together the best investment in at least this share of bootstrap samples.
CONTENDER_SHARE = 0.9
#: Bootstrap interval methods: percentile, or bias-corrected percentile (Efron 1981).
CI_METHODS = ("percentile", "bc")

_MODEL_COLUMNS = [
    "rank", "driver", "weight", "weight_low", "weight_high", "pct_r2", "pct_low", "pct_high",
    "rv_low", "rv_high", "beats_random", "coef", "coef_low", "coef_high", "coef_se", "p_val",
    "score", "target", "gap", "delta_cx", "delta_cx_low", "delta_cx_high", "p_first",
    "contender", "act_first", "r2", "n", "note",
]


# --------------------------------------------------------------------------- checks
def _check_level(level):
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ParameterError(f"`level` must be a number between 0 and 1, but {level!r} was passed")
    return float(level)


def _check_ci(ci):
    if ci not in CI_METHODS:
        raise ParameterError(f"The value for `ci` must be one of {list(CI_METHODS)}, but "
                             f"{ci!r} was passed")
    return ci


def _check_share(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ParameterError(f"`{name}` must be a number in (0, 1], but {value!r} was passed")
    return float(value)


# --------------------------------------------------------------------------- helpers
def _interval(boot, est, level, ci):
    """Bootstrap CI along axis 0 of ``boot`` (NaN replicates dropped), per column.

    ``ci="bc"`` is the bias-corrected percentile interval: with
    :math:`z_0 = \\Phi^{-1}(\\#\\{\\theta^* < \\hat\\theta\\} / B)` the bounds are the
    :math:`\\Phi(2 z_0 \\pm z_{1-\\alpha/2})` quantiles (Efron & Tibshirani 1993, 14.3).
    """
    boot = np.asarray(boot, dtype=float)
    est = np.broadcast_to(np.asarray(est, dtype=float), boot.shape[1:])
    a = (1 - level) / 2
    lo = np.full(boot.shape[1:], np.nan)
    hi = np.full(boot.shape[1:], np.nan)
    for j in np.ndindex(*boot.shape[1:]):
        b = boot[(slice(None), *j)]
        b = b[np.isfinite(b)]
        if len(b) < 2 or not np.isfinite(est[j]):
            continue
        qa, qb = a, 1 - a
        if ci == "bc":
            share = (np.sum(b < est[j]) + 0.5 * np.sum(b == est[j])) / len(b)
            share = min(max(share, 0.5 / len(b)), 1 - 0.5 / len(b))
            z0 = stats.norm.ppf(share)
            za = stats.norm.ppf(a)
            qa, qb = stats.norm.cdf(2 * z0 + za), stats.norm.cdf(2 * z0 - za)
        lo[j], hi[j] = np.quantile(b, [qa, qb])
    return lo, hi


def _wmoments(w, z):
    """Weighted means and covariance matrices: w (B, n), z (n, k) or (B, n, k)."""
    tot = w.sum(axis=1)
    with np.errstate(all="ignore"):
        mean = np.einsum("bn,bnk->bk" if z.ndim == 3 else "bn,nk->bk", w, z) / tot[:, None]
        d = (z if z.ndim == 3 else z[None]) - mean[:, None, :]
        cov = np.matmul(np.swapaxes(d * w[:, :, None], 1, 2), d) / tot[:, None, None]
    return mean, cov


def _corr(cov):
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    with np.errstate(all="ignore"):
        return cov / sd[..., :, None] / sd[..., None, :]


def _slopes_from_cov(cov, k):
    """Regression slopes of the last variable on the first k (cov: (..., k + 1, k + 1))."""
    sxx, sxy = cov[..., :k, :k], cov[..., :k, k]
    out = np.full(sxy.shape, np.nan)
    ok = np.isfinite(sxx).all(axis=(-1, -2)) & np.isfinite(sxy).all(axis=-1)
    if sxx.ndim == 2:
        if ok:
            try:
                return np.linalg.solve(sxx, sxy)
            except np.linalg.LinAlgError:
                return out
        return out
    idx = np.flatnonzero(ok)
    if len(idx):
        good = np.abs(np.linalg.det(sxx[idx])) > 1e-12 * np.prod(
            np.diagonal(sxx[idx], axis1=-2, axis2=-1), axis=-1)
        idx = idx[good]
        if len(idx):
            out[idx] = np.linalg.solve(sxx[idx], sxy[idx][..., None])[..., 0]
    return out


def _wquantile(x, w, q):
    """Type-1 (inverse empirical CDF) quantile of each column of x under weights.

    x (n, k); w (n,) or (B, n). Returns (k,) or (B, k): the smallest value with at least
    a share q of the (weighted) units at or below it.
    """
    order = np.argsort(x, axis=0, kind="stable")
    xs = np.take_along_axis(x, order, axis=0)  # (n, k)
    w2 = np.atleast_2d(w)
    out = np.empty((w2.shape[0], x.shape[1]))
    for j in range(x.shape[1]):
        cw = np.cumsum(w2[:, order[:, j]], axis=1)
        cw = cw / cw[:, -1:]
        pos = np.argmax(cw >= q - 1e-12, axis=1)
        out[:, j] = xs[pos, j]
    return out[0] if np.ndim(w) == 1 else out


def _ols(y, x):
    """OLS of y on [1, x]: slopes, their classical SEs and two-sided p-values, R^2."""
    n, k = x.shape
    exog = np.column_stack([np.ones(n), x])
    beta, *_ = np.linalg.lstsq(exog, y, rcond=None)
    resid = y - exog @ beta
    df = n - k - 1
    sigma2 = resid @ resid / df
    cov = sigma2 * np.linalg.inv(exog.T @ exog)
    se = np.sqrt(np.diag(cov))[1:]
    t = beta[1:] / se
    p = 2 * stats.t.sf(np.abs(t), df)
    r2 = 1 - resid @ resid / np.sum((y - y.mean()) ** 2)
    return beta[1:], se, p, float(r2)


class _Fit:
    """The joint driver model of one client and its unit bootstrap (shared engine)."""

    def __init__(self, data, *, y, drivers, n_boot, seed, unit, level, ci,
                 business=None, hold=(), rv=True):
        drivers = _check_model_args(data, y, drivers)
        self.n_boot = check_n_boot(n_boot)
        self.level, self.ci_method = _check_level(level), _check_ci(ci)
        self.y, self.drivers, self.p = y, drivers, len(drivers)
        use_unit = unit if (unit is not None and unit in data.columns) else None
        self.unit = use_unit
        if use_unit is not None:
            codes, uniques = pd.factorize(data[use_unit])
            if (codes < 0).any():
                raise ParameterError(f"`unit` column {use_unit!r} has missing values")
            n_clusters = len(uniques)
        else:
            codes, n_clusters = np.arange(len(data)), len(data)
        rng = np.random.default_rng(check_seed(seed))
        w_all = _boot_weights(n_clusters, self.n_boot, rng)[:, codes].astype(float)
        cols = [*drivers, y]
        keep = data[cols].notna().all(axis=1).to_numpy()
        self.rows = data.loc[keep]
        z = data[cols].to_numpy(dtype=float)[keep]
        self.z, self.n = z, len(z)
        self.w = w_all[:, keep]
        self.note = ""
        p = self.p
        if self.n - p - 1 < 2:
            self.note = f"too few units: n={self.n} for {p} drivers (need at least {p + 3})"
        else:
            const = [c for j, c in enumerate(cols) if np.ptp(z[:, j]) == 0]
            if const:
                self.note = (f"{const[0]!r} is constant across the {self.n} units, so the "
                             "model is undefined")
        if not self.note:
            eps = _rw_from_corr(np.corrcoef(z, rowvar=False))
            if not np.isfinite(eps).all():
                self.note = ("the drivers are collinear (singular correlation matrix), so "
                             "the model is undefined")
        # random-variable draws come after the resamples, so the resamples depend on the
        # seed only (value_chain and driver_model share them)
        self.rv_full = rng.standard_normal(self.n)
        self.rv_boot = rng.standard_normal((self.n_boot, self.n)) if rv else None
        self.business = None
        if business is not None:
            bcols = [y, *hold, business]
            bkeep = data[bcols].notna().all(axis=1).to_numpy()
            self.business = business
            self.hold = list(hold)
            self.zb = data[bcols].to_numpy(dtype=float)[bkeep]
            self.wb = w_all[:, bkeep]
        if not self.note:
            self._fit()

    # ------------------------------------------------------------------ estimates
    def _fit(self):
        z, w, p = self.z, self.w, self.p
        self.eps = _rw_from_corr(np.corrcoef(z, rowvar=False))
        self.r2 = float(self.eps.sum())
        _, cov_b = _wmoments(w, z)
        self.cov_b = cov_b
        self.eps_b = np.full((self.n_boot, p), np.nan)
        corr_b = _corr(cov_b)
        okb = np.isfinite(corr_b).all(axis=(1, 2))
        if okb.any():
            self.eps_b[okb] = _rw_from_corr(corr_b[okb])
        self._benchmark()
        self._regression()

    def _benchmark(self):
        # random-variable benchmark: the weight of a fresh N(0, 1) variable entered with the
        # drivers, per resample; each driver's weight minus it (Tonidandel et al. 2009)
        z, w, p = self.z, self.w, self.p
        x = z[:, :p]
        self.rv_est = np.full(p, np.nan)
        self.rv_b = np.full((self.n_boot, p), np.nan)
        if self.rv_boot is None:
            return
        zr = np.column_stack([x, self.rv_full, z[:, p]])
        eps_r = _rw_from_corr(np.corrcoef(zr, rowvar=False))
        self.rv_est = eps_r[:p] - eps_r[p]
        zr_b = np.concatenate([np.broadcast_to(x, (self.n_boot, *x.shape)),
                               self.rv_boot[:, :, None],
                               np.broadcast_to(z[:, p:], (self.n_boot, self.n, 1))], axis=2)
        _, cov_rb = _wmoments(w, zr_b)
        corr_rb = _corr(cov_rb)
        okr = np.isfinite(corr_rb).all(axis=(1, 2))
        if okr.any():
            er = _rw_from_corr(corr_rb[okr])
            self.rv_b[okr] = er[:, :p] - er[:, p:]

    def _regression(self):
        z, w, p = self.z, self.w, self.p
        x = z[:, :p]
        cov_b = self.cov_b
        # joint regression: CX per driver point, all drivers held constant
        self.coef, self.coef_se, self.p_val, _ = _ols(z[:, p], x)
        self.coef_b = _slopes_from_cov(cov_b, p)
        # closing the gap to the top quarter: every unit below the 75th percentile of a
        # driver raised to it; the average rise over all units
        self.score = x.mean(axis=0)
        self.target = _wquantile(x, np.ones(self.n), 0.75)
        self.gap = np.maximum(0.0, self.target[None, :] - x).mean(axis=0)
        tgt_b = _wquantile(x, w, 0.75)  # (B, p)
        with np.errstate(all="ignore"):
            self.gap_b = np.einsum("bn,bnj->bj", w, np.maximum(0.0, tgt_b[:, None, :] - x[None])) \
                / w.sum(axis=1)[:, None]
        self.delta = self.coef * self.gap
        self.delta_b = self.coef_b * self.gap_b
        ok = np.isfinite(self.delta_b).all(axis=1)
        first = np.argmax(np.where(ok[:, None], self.delta_b, -np.inf), axis=1)
        self.p_first = (np.bincount(first[ok], minlength=p) / max(ok.sum(), 1)
                        if ok.any() else np.full(p, np.nan))
        if self.business is not None:
            k = 1 + len(self.hold)
            zb = self.zb
            if len(zb) - k - 1 < 2:
                self.gamma, self.gamma_b = np.nan, np.full(self.n_boot, np.nan)
            else:
                self.gamma = float(_ols(zb[:, -1], zb[:, :-1])[0][0])
                _, cov_bb = _wmoments(self.wb, zb)
                self.gamma_b = _slopes_from_cov(cov_bb, k)[:, 0]

    def ci(self, boot, est):
        return _interval(boot, est, self.level, self.ci_method)


#: The last few driver-model fits by their inputs. A client report asks for the same
#: model of the same units several times (priorities, weight differences, unit actions),
#: each a full unit bootstrap; with a fixed integer seed the answer is the same, so it is
#: fitted once. Written by hand (functools.lru_cache cannot key on a DataFrame's content).
_FITS: OrderedDict = OrderedDict()
_FITS_MAX = 4


def _fit_key(data, *, y, drivers, n_boot, seed, unit, level, ci, business=None, hold=()):
    """The inputs of a fit as a hashable key, or None when it must not be reused (a seed
    that is None or a Generator gives other resamples at every call)."""
    if not (isinstance(seed, int | np.integer) and not isinstance(seed, bool)) \
            or not isinstance(data, pd.DataFrame) or isinstance(drivers, str):
        return None
    try:
        drivers = tuple(drivers)
        cols = list(dict.fromkeys([*drivers, y, *(c for c in [unit, business, *hold]
                                                   if c is not None)]))
        cols = [c for c in cols if c in data.columns]
        frame = data[cols]
        digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy()
                                .tobytes())
        digest.update(repr([(c, str(frame[c].dtype)) for c in cols]).encode())
    except (TypeError, ValueError, KeyError):  # unhashable values: fit without the cache
        return None
    return (digest.hexdigest(), len(frame), y, drivers, n_boot, int(seed), unit, level, ci,
            business, tuple(hold))


def _fit(data, *, rv=True, **kw):
    """A :class:`_Fit` of these inputs, reused from :data:`_FITS` when it was fitted
    before. A fit with the random-variable benchmark (``rv=True``) also serves a request
    without it: the benchmark's draws come after the resamples, so the rest is the same."""
    key = _fit_key(data, **kw)
    if key is None:
        return _Fit(data, rv=rv, **kw)
    hit = _FITS.get(key)
    if hit is not None and (hit.rv_boot is not None or not rv):
        _FITS.move_to_end(key)
        return hit
    fit = _Fit(data, rv=rv, **kw)
    _FITS[key] = fit
    while len(_FITS) > _FITS_MAX:
        _FITS.popitem(last=False)
    return fit


def _decide(tab, *, threshold, contender_share):
    """rank (by the gain of closing the gap), contender and act_first columns."""
    order = np.argsort(-np.nan_to_num(tab["delta_cx"].to_numpy(), nan=-np.inf), kind="stable")
    tab = tab.iloc[order].reset_index(drop=True)
    tab["rank"] = np.arange(1, len(tab) + 1)
    pf = tab["p_first"].to_numpy(dtype=float)
    contender = np.zeros(len(tab), dtype=bool)
    if np.isfinite(pf).all():
        by = np.argsort(-pf, kind="stable")
        cum = np.cumsum(pf[by])
        m = int(np.searchsorted(cum, contender_share - 1e-12) + 1)
        contender[by[:m]] = True
    tab["contender"] = contender
    first = tab.iloc[0]
    act = (bool(first["beats_random"]) and np.isfinite(first["p_first"])
           and float(first["p_first"]) >= threshold and float(first["delta_cx"]) > 0)
    tab["act_first"] = False
    if act:
        tab.loc[0, "act_first"] = True
    return tab


def _model_table(fit, threshold, contender_share):
    p = fit.p
    out = pd.DataFrame({"driver": fit.drivers})
    if fit.note:
        _warn("driver_model", f"{fit.y}: {fit.note}; returning NaN")
        for c in _MODEL_COLUMNS:
            if c not in ("driver", "note", "n"):
                out[c] = np.nan
        out["beats_random"] = out["contender"] = out["act_first"] = False
        out["rank"] = np.arange(1, p + 1)
        out["n"], out["note"] = fit.n, fit.note
        return out[_MODEL_COLUMNS]
    with np.errstate(all="ignore"):
        pct_b = 100.0 * fit.eps_b / fit.eps_b.sum(axis=1, keepdims=True)
    out["weight"] = fit.eps
    out["weight_low"], out["weight_high"] = fit.ci(fit.eps_b, fit.eps)
    out["pct_r2"] = 100.0 * fit.eps / fit.r2
    out["pct_low"], out["pct_high"] = fit.ci(pct_b, out["pct_r2"].to_numpy())
    out["rv_low"], out["rv_high"] = fit.ci(fit.rv_b, fit.rv_est)
    out["beats_random"] = out["rv_low"].to_numpy() > 0
    out["coef"], out["coef_se"], out["p_val"] = fit.coef, fit.coef_se, fit.p_val
    out["coef_low"], out["coef_high"] = fit.ci(fit.coef_b, fit.coef)
    out["score"], out["target"], out["gap"] = fit.score, fit.target, fit.gap
    out["delta_cx"] = fit.delta
    out["delta_cx_low"], out["delta_cx_high"] = fit.ci(fit.delta_b, fit.delta)
    out["p_first"] = fit.p_first
    out["r2"], out["n"], out["note"] = fit.r2, fit.n, ""
    out = _decide(out, threshold=threshold, contender_share=contender_share)
    return out[_MODEL_COLUMNS]


# --------------------------------------------------------------------------- public
def driver_model(data, *, y, drivers, n_boot=1000, seed=None, unit="unit_id", level=0.95,
                 ci="percentile", threshold=RANK_THRESHOLD, contender_share=CONTENDER_SHARE):
    """The joint driver model of one client: importance, worth, rank probability, act first.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit table: one row per unit (for example each unit's mean over periods), the
        drivers and ``y`` numeric; rows with a missing value in them are left out.
    y : str
        Customer outcome (e.g. NPS).
    drivers : list of str
        EX driver columns (at least 2).
    n_boot : int, default 1000
        Bootstrap resamples of units.
    seed : int or numpy.random.Generator, optional
        Seed of ``np.random.default_rng``.
    unit : str or None, default "unit_id"
        Resampling cluster; rows are resampled when the column is absent or ``None``.
    level : float, default 0.95
        Coverage of every interval.
    ci : {"percentile", "bc"}, default "percentile"
        Bootstrap interval: percentile, or bias-corrected percentile. The default was
        chosen on simulated clients (docs/methods.md, "Where to act first").
    threshold : float, default :data:`RANK_THRESHOLD`
        Rank probability a driver needs to be named "act first".
    contender_share : float, default :data:`CONTENDER_SHARE`
        Share of bootstrap samples that the contenders (drivers that cannot be separated)
        cover together.

    Returns
    -------
    pandas.DataFrame
        One row per driver, best investment first, columns ``rank, driver, weight,
        weight_low, weight_high, pct_r2, pct_low, pct_high, rv_low, rv_high,
        beats_random, coef, coef_low, coef_high, coef_se, p_val, score, target, gap,
        delta_cx, delta_cx_low, delta_cx_high, p_first, contender, act_first, r2, n,
        note``:

        - ``weight`` Johnson's raw relative weight (they sum to ``r2``), ``pct_r2`` its
          share of R^2 in %, each with a bootstrap CI;
        - ``rv_low, rv_high`` the CI of the weight minus the weight of a random variable
          entered with the drivers; ``beats_random`` when ``rv_low > 0``;
        - ``coef`` the joint regression slope (``y`` points per driver point, the other
          drivers held constant) with its bootstrap CI, classical ``coef_se`` and
          ``p_val``;
        - ``score`` the driver's mean, ``target`` its 75th percentile over units,
          ``gap`` the average rise if every unit below the target reached it;
        - ``delta_cx`` = ``coef * gap``, the gain in ``y`` of closing that gap, with CI;
          ``rank`` orders the drivers by it (1 = best investment);
        - ``p_first`` the share of bootstrap samples in which the driver has the largest
          ``delta_cx`` (rank probability);
        - ``contender`` the fewest drivers that are first together in at least
          ``contender_share`` of the samples (they cannot be separated);
        - ``act_first`` True for the rank-1 driver when its weight beats the random
          variable, ``p_first >= threshold`` and ``delta_cx > 0``; False everywhere
          otherwise;
        - ``n`` complete units, ``note`` why a table is NaN.

    Notes
    -----
    Relative weights (Johnson 2000) share the explained variance among correlated
    drivers, so a driver with no effect of its own can carry weight; what a change is
    worth comes from the joint regression :math:`y = b_0 + \\sum_j b_j x_j + e`. The
    gain of driver j is :math:`\\Delta_j = b_j \\bar\\delta_j` with
    :math:`\\bar\\delta_j = \\frac{1}{n}\\sum_i \\max(0, Q_{3j} - x_{ij})`,
    :math:`Q_{3j}` the type-1 75th percentile (the smallest score with at least 75% of
    units at or below it). Because the model is linear, closing every gap together is
    worth :math:`\\sum_j \\Delta_j`. Each bootstrap sample resamples units, refits
    everything (including :math:`Q_{3j}`), and draws a fresh standard normal random
    variable for the benchmark test. Written by hand: no library computes relative
    weights, their random-variable test or rank probabilities.

    References
    ----------
    Johnson, J. W. (2000). A heuristic method for estimating the relative weight of
    predictor variables in multiple regression. *Multivariate Behavioral Research*,
    35(1), 1-19.

    Tonidandel, S., LeBreton, J. M., & Johnson, J. W. (2009). Determining the
    statistical significance of relative weights. *Psychological Methods*, 14(4),
    387-399.

    Tonidandel, S., & LeBreton, J. M. (2011). Relative importance analysis: a useful
    supplement to regression analysis. *Journal of Business and Psychology*, 26, 1-9.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.value import driver_model
    >>> rng = np.random.default_rng(3)
    >>> d = pd.DataFrame(rng.normal(3.5, 0.5, size=(120, 3)), columns=["tools", "leader", "pay"])
    >>> d["nps"] = 30 + 20 * d.leader + 2 * d.tools + rng.normal(0, 5, 120)
    >>> m = driver_model(d, y="nps", drivers=["tools", "leader", "pay"], n_boot=300, seed=1)
    >>> m[["rank", "driver", "act_first"]].values.tolist()[0]
    [1, 'leader', True]
    >>> bool(m["act_first"].sum() <= 1)
    True
    """
    threshold = _check_share("threshold", threshold)
    contender_share = _check_share("contender_share", contender_share)
    fit = _fit(data, y=y, drivers=drivers, n_boot=n_boot, seed=seed, unit=unit, level=level,
               ci=ci)
    return _model_table(fit, threshold, contender_share)


def weight_differences(data, *, y, drivers, n_boot=1000, seed=None, unit="unit_id",
                       level=0.95, ci="percentile"):
    """Pairwise differences between the drivers' relative weights, with bootstrap CIs.

    Parameters
    ----------
    data, y, drivers, n_boot, seed, unit, level, ci
        As in :func:`driver_model` (the same seed gives the same resamples).

    Returns
    -------
    pandas.DataFrame
        One row per pair (``driver_a`` before ``driver_b`` in the given order), columns
        ``driver_a, driver_b, diff, ci_low, ci_high, separable``: ``diff`` the weight of
        a minus the weight of b, ``separable`` True when the CI excludes 0.

    References
    ----------
    Tonidandel, S., & LeBreton, J. M. (2011). *Journal of Business and Psychology*, 26,
    1-9 (RWA-Web's tests of the differences between weights).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.value import weight_differences
    >>> rng = np.random.default_rng(3)
    >>> d = pd.DataFrame(rng.normal(size=(150, 3)), columns=["a", "b", "c"])
    >>> d["y"] = d.a + 0.1 * d.b + rng.normal(size=150)
    >>> wd = weight_differences(d, y="y", drivers=["a", "b", "c"], n_boot=300, seed=1)
    >>> wd[["driver_a", "driver_b", "separable"]].values.tolist()[0]
    ['a', 'b', True]
    """
    fit = _fit(data, y=y, drivers=drivers, n_boot=n_boot, seed=seed, unit=unit, level=level,
               ci=ci, rv=False)
    rows = []
    for i in range(fit.p):
        for j in range(i + 1, fit.p):
            row = {"driver_a": fit.drivers[i], "driver_b": fit.drivers[j]}
            if fit.note:
                row.update(diff=np.nan, ci_low=np.nan, ci_high=np.nan, separable=False)
            else:
                est = fit.eps[i] - fit.eps[j]
                lo, hi = fit.ci((fit.eps_b[:, i] - fit.eps_b[:, j])[:, None], np.array([est]))
                row.update(diff=est, ci_low=float(lo[0]), ci_high=float(hi[0]),
                           separable=bool(lo[0] > 0 or hi[0] < 0))
            rows.append(row)
    if fit.note:
        _warn("weight_differences", f"{fit.y}: {fit.note}; returning NaN")
    return pd.DataFrame(rows, columns=["driver_a", "driver_b", "diff", "ci_low", "ci_high",
                                       "separable"])


_VALUE_COLUMNS = [
    "rank", "driver", "act_first", "beats_random", "p_first", "gap", "coef", "delta_cx", "delta_cx_low",
    "delta_cx_high", "business_slope", "business_slope_low", "business_slope_high",
    "delta_business", "delta_business_low", "delta_business_high", "money", "money_low",
    "money_high", "cost", "net", "net_low", "net_high", "break_even_years", "currency",
    "horizon_years", "n",
]


def value_chain(data, *, drivers, cx, business, ex=None, revenue=None, currency=None,
                horizon_years=1.0, costs=None, n_boot=1000, seed=None, unit="unit_id",
                level=0.95, ci="percentile", threshold=RANK_THRESHOLD,
                contender_share=CONTENDER_SHARE):
    """What closing each driver's gap to the top quarter is worth, through one chain.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit table (one row per unit).
    drivers : list of str
        EX drivers (at least 2).
    cx : str
        Customer outcome of the driver model (e.g. NPS).
    business : str
        Business outcome (e.g. revenue growth in percentage points per year).
    ex : str or list of str, optional
        EX measure held constant in the slope of ``business`` on ``cx`` (the EX index,
        as in the mediation analysis). Default: the drivers themselves.
    revenue : float, optional
        Annual revenue. When given, ``business`` must be revenue growth in percentage
        points, and money = ``revenue * delta_business / 100`` per year.
    currency : str, optional
        ISO 4217 code carried into the table (``study.yml`` ``currency``).
    horizon_years : float, default 1
        Years over which money is added up (no compounding, no discounting).
    costs : mapping driver -> float, optional
        Cost of raising the client's average score on a driver by one point
        (``study.yml`` scale ``cost``). With it: ``cost = costs[driver] * gap``, net value
        and break-even.
    n_boot, seed, unit, level, ci, threshold, contender_share
        As in :func:`driver_model`; the same seed gives the same resamples, so ``rank``,
        ``p_first`` and ``act_first`` equal the driver model's.

    Returns
    -------
    pandas.DataFrame
        One row per driver in the driver model's order, then an ``"all drivers"`` row,
        columns ``rank, driver, act_first, beats_random, p_first, gap, coef, delta_cx, delta_cx_low,
        delta_cx_high, business_slope, business_slope_low, business_slope_high,
        delta_business, delta_business_low, delta_business_high, money, money_low,
        money_high, cost, net, net_low, net_high, break_even_years, currency,
        horizon_years, n``. Money columns are NaN without ``revenue``; cost columns
        are NaN without a cost for that driver. ``break_even_years`` is the cost divided
        by the yearly money (NaN when the money is not positive).

    Notes
    -----
    .. math::

        \\Delta CX_j = b_j \\bar\\delta_j, \\quad
        \\Delta B_j = \\gamma\\, \\Delta CX_j, \\quad
        \\text{money}_j = R\\, \\Delta B_j / 100 \\times H,

    with :math:`b_j` the joint regression slope of CX on driver j (all drivers held
    constant), :math:`\\bar\\delta_j` the average gap to the top quarter,
    :math:`\\gamma` the slope of the business outcome on CX with EX held constant (the
    *b* path of the mediation analysis, so the chain is its indirect effect and not the
    simple slope, which would also carry EX's direct path), :math:`R` the revenue and
    :math:`H` the horizon. The chain is linear, so the drivers' rows add up to the
    "all drivers" row, the joint model's prediction for closing every gap at once. Each
    bootstrap sample refits every step on the same resampled units.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.value import value_chain
    >>> rng = np.random.default_rng(5)
    >>> d = pd.DataFrame(rng.normal(3.5, 0.5, size=(100, 2)), columns=["tools", "leader"])
    >>> d["nps"] = 20 * d.leader + 5 * d.tools + rng.normal(0, 5, 100)
    >>> d["growth"] = 0.1 * d.nps + rng.normal(0, 1, 100)
    >>> v = value_chain(d, drivers=["tools", "leader"], cx="nps", business="growth",
    ...                 revenue=2e7, currency="EUR", n_boot=200, seed=1)
    >>> v["driver"].tolist()
    ['leader', 'tools', 'all drivers']
    >>> bool(np.isclose(v.money.iloc[:2].sum(), v.money.iloc[2]))
    True
    """
    if not isinstance(business, str):
        raise ParameterError(f"`business` must be one column name, but {business!r} was passed")
    check_frame(data)
    check_columns(data, "business", [business])
    hold = as_columns("ex", ex) if ex is not None else as_columns("drivers", drivers)
    check_columns(data, "ex", hold)
    if business == cx or business in hold or cx in hold:
        raise ParameterError(f"`cx` ({cx!r}), `business` ({business!r}) and `ex` ({hold}) must "
                             "be different columns")
    if revenue is not None and (isinstance(revenue, bool) or not isinstance(revenue, (int, float))
                                or not math.isfinite(revenue) or revenue <= 0):
        raise ParameterError(f"`revenue` must be a positive number or None, but {revenue!r} "
                             "was passed")
    if currency is not None and (not isinstance(currency, str) or len(currency) != 3
                                 or not currency.isalpha() or not currency.isupper()):
        raise ParameterError(f"`currency` must be a three-letter ISO 4217 code such as 'EUR', "
                             f"but {currency!r} was passed")
    if (isinstance(horizon_years, bool) or not isinstance(horizon_years, (int, float))
            or not math.isfinite(horizon_years) or horizon_years <= 0):
        raise ParameterError(f"`horizon_years` must be a positive number, but {horizon_years!r} "
                             "was passed")
    drivers = as_columns("drivers", drivers)
    costs = dict(costs or {})
    if not isinstance(costs, Mapping):
        raise ParameterError(f"`costs` must be a mapping driver -> cost, but {costs!r} was passed")
    bad = {k: v for k, v in costs.items() if k not in drivers or (v is not None and (
        isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0))}
    costs = {k: v for k, v in costs.items() if v is not None}
    if bad:
        raise ParameterError(f"`costs` must map drivers {drivers} to non-negative numbers, but "
                             f"{bad} was passed")
    threshold = _check_share("threshold", threshold)
    contender_share = _check_share("contender_share", contender_share)
    fit = _fit(data, y=cx, drivers=drivers, n_boot=n_boot, seed=seed, unit=unit, level=level,
               ci=ci, business=business, hold=hold)
    return _value_table(fit, revenue=revenue, currency=currency, horizon=float(horizon_years),
                        costs=costs, threshold=threshold, contender_share=contender_share)


def _value_table(fit, *, revenue, currency, horizon, costs, threshold, contender_share):
    """The value chain table from a fitted model (value_chain and validity/drivers.py)."""
    model = _model_table(fit, threshold, contender_share)
    rows = []
    labels = [*model["driver"], "all drivers"]
    if fit.note:
        est = np.full(fit.p + 1, np.nan)
        boot = np.full((fit.n_boot, fit.p + 1), np.nan)
        gamma, gamma_b = np.nan, np.full(fit.n_boot, np.nan)
        order = np.arange(fit.p)
    else:
        order = np.array([fit.drivers.index(d) for d in model["driver"]])
        est = np.append(fit.delta[order], fit.delta.sum())
        boot = np.column_stack([fit.delta_b[:, order], fit.delta_b.sum(axis=1)])
        gamma, gamma_b = fit.gamma, fit.gamma_b
    dcx_lo, dcx_hi = fit.ci(boot, est)
    g_lo, g_hi = fit.ci(gamma_b[:, None], np.array([gamma]))
    db, db_b = est * gamma, boot * gamma_b[:, None]
    db_lo, db_hi = fit.ci(db_b, db)
    scale = revenue / 100.0 * horizon if revenue is not None else np.nan
    money, money_b = db * scale, db_b * scale
    m_lo, m_hi = fit.ci(money_b, money) if revenue is not None else (np.full(len(est), np.nan),) * 2
    gaps = np.append(model["gap"].to_numpy(dtype=float), np.nan)
    gaps_b = (np.column_stack([fit.gap_b[:, order], np.full(fit.n_boot, np.nan)])
              if not fit.note else np.full((fit.n_boot, fit.p + 1), np.nan))
    unit_cost = np.array([costs.get(d, np.nan) for d in model["driver"]] + [np.nan], dtype=float)
    cost = unit_cost * gaps
    cost_b = unit_cost[None, :] * gaps_b
    all_costed = bool(np.isfinite(unit_cost[:-1]).all())
    if all_costed:
        cost[-1] = np.nansum(cost[:-1])
        cost_b[:, -1] = cost_b[:, :-1].sum(axis=1)
    net, net_b = money - cost, money_b - cost_b
    n_lo, n_hi = fit.ci(net_b, net) if revenue is not None else (np.full(len(est), np.nan),) * 2
    with np.errstate(all="ignore"):
        yearly = money / horizon
        be = np.where(yearly > 0, cost / yearly, np.nan)
    for k, name in enumerate(labels):
        is_total = k == fit.p
        rows.append({
            "rank": np.nan if is_total else int(model["rank"].iloc[k]),
            "driver": name,
            "act_first": False if is_total else bool(model["act_first"].iloc[k]),
            "beats_random": False if is_total else bool(model["beats_random"].iloc[k]),
            "p_first": np.nan if is_total else float(model["p_first"].iloc[k]),
            "gap": gaps[k], "coef": np.nan if is_total else float(model["coef"].iloc[k]),
            "delta_cx": est[k], "delta_cx_low": dcx_lo[k], "delta_cx_high": dcx_hi[k],
            "business_slope": gamma, "business_slope_low": float(g_lo[0]),
            "business_slope_high": float(g_hi[0]),
            "delta_business": db[k], "delta_business_low": db_lo[k],
            "delta_business_high": db_hi[k],
            "money": money[k], "money_low": m_lo[k], "money_high": m_hi[k],
            "cost": cost[k], "net": net[k], "net_low": n_lo[k] if np.isfinite(cost[k]) else np.nan,
            "net_high": n_hi[k] if np.isfinite(cost[k]) else np.nan,
            "break_even_years": be[k], "currency": currency, "horizon_years": horizon,
            "n": fit.n,
        })
    out = pd.DataFrame(rows, columns=_VALUE_COLUMNS)
    out["rank"] = out["rank"].astype("Int64")
    return out


# --------------------------------------------------------------------------- unit view
def unit_actions(data, *, model, drivers=None, unit="unit_id", size=None, min_group_size=5,
                 top=None):
    """Which units have the most to gain on the first-priority drivers, and how much.

    Parameters
    ----------
    data : pandas.DataFrame
        The client's unit table (one row per reported unit), with ``unit`` and the
        drivers.
    model : pandas.DataFrame
        :func:`driver_model` of the same units (its ``target`` and ``coef`` columns).
    drivers : list of str, optional
        Drivers to act on. Default: the ``act_first`` driver, or the contenders when no
        driver is named.
    unit : str, default "unit_id"
    size : str, optional
        Column of respondents per unit; units below ``min_group_size`` are left out.
    min_group_size : int, default 5
        Reporting threshold (``study.yml``).
    top : int, optional
        Keep only the ``top`` units with the largest total gain.

    Returns
    -------
    pandas.DataFrame
        One row per unit x driver, units by total gain (largest first), columns
        ``unit_id`` (named as ``unit``), ``driver, score, target, gap, gain, gain_low,
        gain_high, total_gain, unit_rank``: ``gap = max(0, target - score)``, ``gain =
        coef * gap`` in CX points with the CI of ``coef``, ``total_gain`` the unit's sum
        over the drivers shown, ``unit_rank`` 1 = most to gain.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.value import driver_model, unit_actions
    >>> rng = np.random.default_rng(3)
    >>> d = pd.DataFrame(rng.normal(3.5, 0.5, size=(60, 2)), columns=["tools", "leader"])
    >>> d["unit_id"] = [f"u{i:02d}" for i in range(60)]
    >>> d["nps"] = 20 * d.leader + rng.normal(0, 5, 60)
    >>> m = driver_model(d, y="nps", drivers=["tools", "leader"], n_boot=200, seed=1)
    >>> ua = unit_actions(d, model=m, drivers=["leader"], top=3)
    >>> ua["unit_rank"].tolist(), bool((ua["gain"] > 0).all())
    ([1, 2, 3], True)
    """
    check_frame(data)
    need = {"driver", "coef", "coef_low", "coef_high", "target", "act_first", "contender"}
    if not isinstance(model, pd.DataFrame) or not need <= set(model.columns):
        raise ParameterError(f"`model` must be the DataFrame returned by driver_model (columns "
                             f"{sorted(need)}), but {type(model).__name__} was passed")
    m = model.set_index("driver")
    if drivers is None:
        drivers = list(m.index[m["act_first"].astype(bool)]) or list(
            m.index[m["contender"].astype(bool)])
    drivers = as_columns("drivers", drivers, allow_none=True)
    unknown = [d for d in drivers if d not in m.index]
    if unknown:
        raise ParameterError(f"`drivers` {unknown} are not in `model` ({list(m.index)})")
    check_columns(data, "unit", [unit], numeric=False)
    check_columns(data, "drivers", drivers)
    d = data
    if size is not None:
        check_columns(data, "size", [size])
        d = d[d[size] >= min_group_size]
    cols = [unit, "driver", "score", "target", "gap", "gain", "gain_low", "gain_high",
            "total_gain", "unit_rank"]
    if not drivers or d.empty:
        return pd.DataFrame(columns=cols)
    long = d[[unit, *drivers]].melt(id_vars=unit, var_name="driver", value_name="score")
    long = long.dropna(subset=["score"])
    long["target"] = long["driver"].map(m["target"])
    long["gap"] = np.maximum(0.0, long["target"] - long["score"])
    for c, src in (("gain", "coef"), ("gain_low", "coef_low"), ("gain_high", "coef_high")):
        long[c] = long["driver"].map(m[src]) * long["gap"]
    long["total_gain"] = long.groupby(unit)["gain"].transform("sum")
    order = (long[[unit, "total_gain"]].drop_duplicates(unit)
             .sort_values(["total_gain", unit], ascending=[False, True], kind="stable"))
    rank = pd.Series(np.arange(1, len(order) + 1), index=order[unit].to_numpy())
    long["unit_rank"] = long[unit].map(rank).astype(int)
    if top is not None:
        long = long[long["unit_rank"] <= int(top)]
    long["_d"] = long["driver"].map({dv: i for i, dv in enumerate(drivers)})
    long = long.sort_values(["unit_rank", "_d"], kind="stable").drop(columns="_d")
    return long[cols].reset_index(drop=True)


# --------------------------------------------------------------------------- utility
#: Mean standard normal score of the top quarter minus that of the bottom quarter:
#: 2 * phi(z_0.75) / 0.25.
_TOP_BOTTOM_SD = 2 * stats.norm.pdf(stats.norm.ppf(0.75)) / 0.25
_BASES = ("auto", "percent", "points")


def utility_table(data, *, x, y, reliability_x=None, reliability_y=None, base="auto",
                  n_boot=1000, seed=None, unit="unit_id", level=0.95):
    """Quartile utility in the published form (Harter et al.; Brogden-Cronbach-Gleser).

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel (averaged per unit over periods).
    x : str
        EX measure defining the quartiles.
    y : str or list of str
        Outcomes.
    reliability_x : float, optional
        Reliability of the unit-level EX measure (e.g. its ICC(2)); default 1.
    reliability_y : mapping outcome -> float or float, optional
        Reliability of each outcome (e.g. its test-retest correlation across periods);
        default 1.
    base : {"auto", "percent", "points"}, default "auto"
        How the top vs bottom difference is expressed. "auto": in % of the bottom
        quartile's mean only when every unit's value is positive and the bottom mean is
        at least two outcome SDs above zero (a meaningful base, such as sales or
        satisfaction %); otherwise in points (NPS, growth rates).
    n_boot, seed, unit, level
        Unit bootstrap for the CIs of the top vs bottom difference.

    Returns
    -------
    pandas.DataFrame
        One row per outcome, columns ``x, y, n_units, r, rho, sd_y, bcg_per_sd,
        bcg_top_vs_bottom, mean_top, mean_bottom, diff, diff_low, diff_high, base,
        pct_diff, pct_low, pct_high, besd_top, besd_bottom, above_median_top,
        above_median_bottom, odds_ratio``.

    Notes
    -----
    ``rho`` :math:`= r / \\sqrt{r_{xx} r_{yy}}` (capped to [-1, 1]) is the correlation
    corrected for unreliability; Brogden-Cronbach-Gleser utility is
    :math:`\\Delta y = \\rho\\, SD_y` per SD of EX (``bcg_per_sd``), and
    :math:`\\rho\\, SD_y \\times 2.54` for moving a unit from the bottom to the top
    quartile (the mean normal scores of the quartiles differ by
    :math:`2\\varphi(z_{.75})/0.25 = 2.54`). The binomial effect size display
    (Rosenthal & Rubin 1982) gives ``besd_top`` :math:`= 0.5 + \\rho/2` and
    ``besd_bottom`` :math:`= 0.5 - \\rho/2`, the rates of above-median outcomes implied
    by :math:`\\rho`; ``above_median_top/bottom`` are the observed shares of top and
    bottom quartile units above the outcome's median, and ``odds_ratio`` their odds
    ratio (0.5 added to each cell when one is empty).

    References
    ----------
    Harter, J. K., Schmidt, F. L., & Hayes, T. L. (2002). *Journal of Applied
    Psychology*, 87, 268-279. Cascio, W. F., & Boudreau, J. W. (2011). *Investing in
    People* (2nd ed.), ch. 11 (the Brogden-Cronbach-Gleser model). Rosenthal, R., &
    Rubin, D. B. (1982). *Journal of Educational Psychology*, 74, 166-169.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.value import utility_table
    >>> rng = np.random.default_rng(1)
    >>> ex = rng.normal(3.8, 0.4, 80)
    >>> d = pd.DataFrame({"unit_id": range(80), "engagement": ex,
    ...                   "nps": 10 + 20 * (ex - 3.8) + rng.normal(0, 8, 80),
    ...                   "sales": 100 + 10 * (ex - 3.8) + rng.normal(0, 4, 80)})
    >>> u = utility_table(d, x="engagement", y=["nps", "sales"], n_boot=200, seed=1)
    >>> u["base"].tolist()
    ['points', 'percent']
    """
    from .economics import _quartile_means_boot, _unit_means

    check_frame(data)
    if not isinstance(x, str):
        raise ParameterError(f"`x` must be one column name, but {x!r} was passed")
    ys = as_columns("y", y)
    check_columns(data, "unit", [unit], numeric=False)
    check_columns(data, "x", [x])
    check_columns(data, "y", ys)
    if base not in _BASES:
        raise ParameterError(f"The value for `base` must be one of {list(_BASES)}, but "
                             f"{base!r} was passed")
    level = _check_level(level)
    n_boot = check_n_boot(n_boot, allow_zero=True)
    rxx = 1.0 if reliability_x is None else _check_share("reliability_x", reliability_x)
    if isinstance(reliability_y, Mapping):
        ryy = {k: _check_share(f"reliability_y[{k!r}]", v) for k, v in reliability_y.items()}
    else:
        one = 1.0 if reliability_y is None else _check_share("reliability_y", reliability_y)
        ryy = dict.fromkeys(ys, one)
    rng = np.random.default_rng(check_seed(seed))
    rows = []
    for yc in ys:
        u = _unit_means(data, unit, [x, yc])
        row = {"x": x, "y": yc, "n_units": len(u)}
        if len(u) < 8 or u[x].std() == 0 or u[yc].std() == 0:
            _warn("utility_table", f"{x!r} -> {yc!r}: {len(u)} complete units or a constant "
                  "column (at least 8 varying units are needed); returning NaN")
            rows.append(row)
            continue
        xv, yv = u[x].to_numpy(), u[yc].to_numpy()
        r = float(np.corrcoef(xv, yv)[0, 1])
        rho = float(np.clip(r / math.sqrt(rxx * ryy.get(yc, 1.0)), -1, 1))
        sd = float(yv.std(ddof=1))
        q1, q3 = np.quantile(xv, [0.25, 0.75])
        top, bot = xv >= q3, xv <= q1
        mt, mb = float(yv[top].mean()), float(yv[bot].mean())
        med = np.median(yv)
        at, ab = float(np.mean(yv[top] > med)), float(np.mean(yv[bot] > med))
        ct = np.array([[np.sum(yv[top] > med), np.sum(yv[top] <= med)],
                       [np.sum(yv[bot] > med), np.sum(yv[bot] <= med)]], dtype=float)
        if (ct == 0).any():
            ct = ct + 0.5
        use_pct = (base == "percent") or (base == "auto" and (yv > 0).all() and mb >= 2 * sd)
        if base == "percent" and mb == 0:
            raise ParameterError(f"`base='percent'` needs a non-zero bottom-quartile mean of "
                                 f"{yc!r}, but it is 0")
        row.update(r=r, rho=rho, sd_y=sd, bcg_per_sd=rho * sd,
                   bcg_top_vs_bottom=rho * sd * _TOP_BOTTOM_SD, mean_top=mt, mean_bottom=mb,
                   diff=mt - mb, base="percent" if use_pct else "points",
                   pct_diff=100 * (mt - mb) / abs(mb) if use_pct else np.nan,
                   besd_top=0.5 + rho / 2, besd_bottom=0.5 - rho / 2,
                   above_median_top=at, above_median_bottom=ab,
                   odds_ratio=float(ct[0, 0] * ct[1, 1] / (ct[0, 1] * ct[1, 0])))
        if n_boot:
            mtb, mbb = _quartile_means_boot(xv, yv, n_boot, rng)
            lo, hi = _interval((mtb - mbb)[:, None], np.array([mt - mb]), level, "percentile")
            row.update(diff_low=float(lo[0]), diff_high=float(hi[0]))
            if use_pct:
                with np.errstate(invalid="ignore", divide="ignore"):
                    pb = 100 * (mtb - mbb) / np.abs(mbb)
                lo, hi = _interval(pb[:, None], np.array([row["pct_diff"]]), level, "percentile")
                row.update(pct_low=float(lo[0]), pct_high=float(hi[0]))
        rows.append(row)
    cols = ["x", "y", "n_units", "r", "rho", "sd_y", "bcg_per_sd", "bcg_top_vs_bottom",
            "mean_top", "mean_bottom", "diff", "diff_low", "diff_high", "base", "pct_diff",
            "pct_low", "pct_high", "besd_top", "besd_bottom", "above_median_top",
            "above_median_bottom", "odds_ratio"]
    return pd.DataFrame(rows).reindex(columns=cols)


# --------------------------------------------------------------------------- money
def format_money(value, *, currency=None, digits=2):
    """An amount rounded to ``digits`` significant figures, with its currency.

    Parameters
    ----------
    value : float
        Amount.
    currency : str, optional
        ISO 4217 code; without it the amount reads "... currency units".
    digits : int, default 2
        Significant figures.

    Returns
    -------
    str
        ``"EUR 440,000"``, ``"EUR 1.2 million"``, ``"USD -12,000"``; ``"n/a"`` for NaN.

    Examples
    --------
    >>> from exresearch.value import format_money
    >>> format_money(443_007, currency="EUR"), format_money(1_234_567, currency="USD")
    ('EUR 440,000', 'USD 1.2 million')
    >>> format_money(-12_345), format_money(0.0, currency="GBP"), format_money(2.5e9, currency="EUR")
    ('-12,000 currency units', 'GBP 0', 'EUR 2.5 billion')
    """
    if value is None or not np.isfinite(value):
        return "n/a"
    v = float(value)
    if v != 0:
        v = float(f"{v:.{int(digits)}g}")
    a = abs(v)
    if a >= 1e9:
        text = f"{v / 1e9:.{int(digits)}g} billion"
    elif a >= 1e6:
        text = f"{v / 1e6:.{int(digits)}g} million"
    elif a >= 1:
        text = f"{v:,.0f}"
    else:
        text = f"{v:.{int(digits)}g}"
    return f"{currency} {text}" if currency else f"{text} currency units"


# --------------------------------------------------------------------------- sentences
def _pct(p):
    return f"{100 * p:.0f}%"


def _horizon(h):
    return "a year" if h == 1 else f"over {h:g} years"


def _series(names):
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def describe_priorities(priorities, *, cx_label, label=None):
    """The executive summary's "where to act" sentence from the driver model.

    Parameters
    ----------
    priorities : pandas.DataFrame
        :func:`exresearch.drivers.driver_priorities` or :func:`driver_model` (columns
        ``driver, rank, act_first, contender, p_first, delta_cx``; ``impact`` or
        ``pct_r2`` for the share of explained differences).
    cx_label : str
        Name of the customer outcome in the sentence.
    label : callable, optional
        Driver name -> label.

    Returns
    -------
    dict or None
        ``text``, ``driver`` (the driver the sentence is about: the act-first driver,
        or the first row when none is named), ``column`` and ``value`` (the headline
        number); None when the model is undefined.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.value import describe_priorities
    >>> pr = pd.DataFrame({"driver": ["leader", "tools"], "rank": [1, 2], "act_first": [False, False],
    ...                    "contender": [True, True], "p_first": [0.55, 0.45], "delta_cx": [3.1, 2.9],
    ...                    "impact": [40.0, 35.0]})
    >>> describe_priorities(pr, cx_label="NPS")["text"]
    'No single driver can be named first for NPS: leader and tools cannot be separated (each is the best investment in 55% and 45% of resamples of the units), so treat them as one priority.'
    """
    label = label or str
    if priorities is None or not len(priorities) or not np.isfinite(
            priorities["delta_cx"].astype(float)).any():
        return None
    pr = priorities.sort_values("rank", kind="stable")
    imp_col = "impact" if "impact" in pr.columns else "pct_r2"
    named = pr[pr["act_first"].astype(bool)]
    if len(named):
        top = named.iloc[0]
        d = label(top["driver"])
        text = (f"Act first on {d}: it is the best investment for {cx_label} in "
                f"{_pct(float(top['p_first']))} of resamples of the units, and it accounts for "
                f"{float(top[imp_col]):.0f}% of the explained differences in {cx_label} "
                "between units.")
        return {"text": text, "driver": top["driver"], "column": "p_first",
                "value": float(top["p_first"])}
    cont = pr[pr["contender"].astype(bool)].sort_values("p_first", ascending=False,
                                                        kind="stable")
    top = pr.iloc[0]
    if len(cont) >= 2:
        names = _series(label(x) for x in cont["driver"])
        shares = _series(_pct(float(p)) for p in cont["p_first"])
        text = (f"No single driver can be named first for {cx_label}: {names} cannot be "
                f"separated (each is the best investment in {shares} of resamples of the "
                "units), so treat them as one priority.")
    else:
        text = (f"No single driver can be named first for {cx_label}: {label(top['driver'])} "
                f"comes out first in {_pct(float(top['p_first']))} of resamples of the units, "
                "but its weight cannot be told apart from that of a random variable.")
    return {"text": text, "driver": top["driver"], "column": "p_first",
            "value": float(top["p_first"])}


def describe_value(value, *, cx_label, business_label, label=None, causal=False):
    """The executive summary's "what it is worth" sentence from :func:`value_chain`.

    It puts a value on the act-first driver when there is one, otherwise on closing the
    gaps on all drivers together (never on a driver the priorities do not name).

    Parameters
    ----------
    value : pandas.DataFrame
        :func:`value_chain` output.
    cx_label, business_label : str
        Names of the customer and business outcomes in the sentence.
    label : callable, optional
        Driver name -> label.
    causal : bool, default False
        Whether the direction over time is supported; otherwise the sentence adds "if
        the link is causal".

    Returns
    -------
    dict or None
        ``text``, ``driver`` (a driver or ``"all drivers"``), ``column`` (``money`` or
        ``delta_business``) and ``value``; None when nothing can be valued.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.value import describe_value
    >>> v = pd.DataFrame({"driver": ["leader", "all drivers"], "act_first": [True, False],
    ...     "gap": [0.3, float("nan")], "delta_cx": [4.2, 6.0], "delta_business": [0.4, 0.6],
    ...     "delta_business_low": [0.1, 0.2], "delta_business_high": [0.7, 1.0],
    ...     "money": [443007.0, 6e5], "money_low": [-12000.0, 1e5], "money_high": [902000.0, 1e6],
    ...     "cost": [float("nan")] * 2, "net": [float("nan")] * 2, "net_low": [float("nan")] * 2,
    ...     "net_high": [float("nan")] * 2, "break_even_years": [float("nan")] * 2,
    ...     "currency": ["EUR"] * 2, "horizon_years": [1.0] * 2})
    >>> describe_value(v, cx_label="NPS", business_label="revenue growth")["text"]
    'Bringing every unit below the top quarter on leader up to the top-quarter level (+0.30 points on average) would be worth +4.2 NPS points and about EUR 440,000 in revenue a year (95% CI EUR -12,000 to EUR 900,000) if the link is causal. The range includes no gain, so the value is uncertain.'
    """
    label = label or str
    if value is None or not len(value):
        return None
    named = value[value["act_first"].astype(bool)]
    row = named.iloc[0] if len(named) else value[value["driver"] == "all drivers"].iloc[0]
    has_money = np.isfinite(float(row["money"]))
    col = "money" if has_money else "delta_business"
    val = float(row[col])
    if not np.isfinite(val):
        return None
    lo, hi = float(row[f"{col}_low"]), float(row[f"{col}_high"])
    cur = row["currency"] if isinstance(row["currency"], str) else None
    h = float(row["horizon_years"])
    if has_money:
        amount = (f"about {format_money(val, currency=cur)} in revenue {_horizon(h)} (95% CI "
                  f"{format_money(lo, currency=cur)} to {format_money(hi, currency=cur)})")
    else:
        amount = (f"{val:+.2f} on {business_label} (95% CI {lo:.2f} to {hi:.2f})")
    cond = "" if causal else " if the link is causal"
    if row["driver"] == "all drivers":
        what = ("Bringing every unit below the top quarter up to the top-quarter level on all "
                "drivers together (no single driver can be separated)")
    else:
        what = (f"Bringing every unit below the top quarter on {label(row['driver'])} up to the "
                f"top-quarter level (+{float(row['gap']):.2f} points on average)")
    text = (f"{what} would be worth {float(row['delta_cx']):+.1f} {cx_label} points and "
            f"{amount}{cond}.")
    if lo <= 0 <= hi:
        text += " The range includes no gain, so the value is uncertain."
    if has_money and np.isfinite(float(row["cost"])):
        net = float(row["net"])
        text += (f" At a cost of {format_money(float(row['cost']), currency=cur)}, the net value "
                 f"is {format_money(net, currency=cur)} (95% CI "
                 f"{format_money(float(row['net_low']), currency=cur)} to "
                 f"{format_money(float(row['net_high']), currency=cur)})")
        be = float(row["break_even_years"])
        text += (f"; it breaks even after {be:.1f} years." if np.isfinite(be)
                 else "; it does not break even.")
    return {"text": text, "driver": row["driver"], "column": col, "value": val}
