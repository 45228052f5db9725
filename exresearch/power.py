"""Study planning: the power of a pooled EX-CX correlation across clients.

How many clients, units per client and respondents per unit does a study need to detect
a given unit-level correlation between an EX scale and a CX outcome when the per-client
correlations are pooled by a random-effects meta-analysis on Fisher's z?

- :func:`power_analytic` - the closed form of Hedges & Pigott (2001);
- :func:`power_simulation` - Monte Carlo from a light unit-level path of the generator in
  :mod:`exresearch.simulate` (normal unit latents, respondents averaged within units),
  pooled by DerSimonian-Laird (vectorised here) or by :func:`exresearch.meta.meta_analysis`;
- :func:`power_grid` - one row per combination of sizes, either way.

The effect ``r`` is the *true* unit-level correlation between the latent unit EX and
the outcome; ``tau`` is the SD of the clients' true Fisher z around ``atanh(r)``. With
``respondents_per_unit`` given, unit EX scores are means of that many respondents whose
scores have intraclass correlation ``icc``, which attenuates the correlation that the
data can show (by the square root of the reliability of a unit mean, ICC(2)).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from ._checks import as_numbers as _as_numbers
from ._checks import check_float as _check_float
from ._checks import check_int as _check_int
from ._checks import check_seed
from .exceptions import ParameterError

__all__ = ["power_analytic", "power_simulation", "power_grid", "POWER_COLUMNS"]

#: Columns of :func:`power_simulation` and :func:`power_grid`, in order.
POWER_COLUMNS = ("n_clients", "n_units", "respondents_per_unit", "r", "tau", "power",
                 "ci_low", "ci_high", "n_sims")

_DEFAULT_ICC = 0.15
_BATCH = 50


# --------------------------------------------------------------------------- checks


def _check_common(r, n_clients, n_units, tau, alpha, respondents_per_unit, icc):
    r = _check_float("r", r, -1, 1)
    n_clients = _check_int("n_clients", n_clients, 2)
    n_units = _check_int("n_units", n_units, 4)
    tau = _check_float("tau", tau, 0, 2, open_lo=False)
    alpha = _check_float("alpha", alpha, 0, 1)
    if respondents_per_unit is not None:
        respondents_per_unit = _check_int("respondents_per_unit", respondents_per_unit, 1)
    icc = _check_float("icc", icc, 0, 1, open_hi=False)
    return r, n_clients, n_units, tau, alpha, respondents_per_unit, icc


def _unit_reliability(m, icc):
    """Reliability of a unit mean of m respondents, ICC(2) by Spearman-Brown."""
    if m is None:
        return 1.0
    return m * icc / (1 + (m - 1) * icc)


# --------------------------------------------------------------------------- analytic


def power_analytic(*, r, n_clients, n_units, tau=0.0, alpha=0.05,
                   respondents_per_unit=None, icc=_DEFAULT_ICC) -> float:
    """Power of the random-effects test of a pooled correlation, in closed form.

    Parameters
    ----------
    r : float
        True unit-level correlation between EX and the outcome, in (-1, 1).
    n_clients : int
        Clients pooled (k >= 2).
    n_units : int
        Reported units per client (n >= 4), each client's correlation being over them.
    tau : float, default 0.0
        Between-client SD of the true Fisher z.
    alpha : float, default 0.05
        Two-sided significance level.
    respondents_per_unit : int, optional
        Respondents averaged into each unit's EX score. ``None`` (default) treats unit
        scores as measured without error.
    icc : float, default 0.15
        ICC(1) of respondent scores, used only with ``respondents_per_unit``.

    Returns
    -------
    float
        The probability that the two-sided z test of the pooled Fisher z rejects 0.

    Notes
    -----
    Each client's Fisher z has sampling variance :math:`v = 1/(n - 3)`; under random
    effects its total variance is :math:`v + \\tau^2`, so the pooled mean of k clients
    has variance :math:`V = (v + \\tau^2)/k` and, with
    :math:`\\lambda = \\operatorname{artanh}(\\rho)/\\sqrt{V}` and
    :math:`c = \\Phi^{-1}(1 - \\alpha/2)`,

    .. math:: \\text{power} = 1 - \\Phi(c - \\lambda) + \\Phi(-c - \\lambda)

    (Hedges & Pigott 2001, eq. 19-20 for the random-effects mean, with :math:`\\tau^2`
    known). With ``respondents_per_unit = m`` the correlation is attenuated to
    :math:`\\rho = r\\sqrt{R}`, :math:`R = m\\,ICC / (1 + (m-1) ICC)` (the reliability of
    a unit mean, ICC(2); Bliese 2000), and ``tau`` is carried to the attenuated z scale by
    the delta method, :math:`\\tau\\sqrt{R}(1 - r^2)/(1 - R r^2)`. The formula ignores the
    estimation error of :math:`\\tau^2`, so with few clients the DL test actually used
    rejects a little more often than this under the null and power is slightly
    overstated when ``tau`` > 0.

    References
    ----------
    .. [1] Hedges, L. V., & Pigott, T. D. (2001). The power of statistical tests in
       meta-analysis. Psychological Methods, 6(3), 203-217.
    .. [2] Bliese, P. D. (2000). Within-group agreement, non-independence, and reliability:
       Implications for data aggregation and analysis. In K. J. Klein & S. W. J. Kozlowski
       (Eds.), Multilevel theory, research, and methods in organizations (pp. 349-381).

    Examples
    --------
    >>> round(power_analytic(r=0.2, n_clients=10, n_units=30), 3)
    0.915
    >>> round(power_analytic(r=0.0, n_clients=10, n_units=30), 3)
    0.05
    """
    r, k, n, tau, alpha, m, icc = _check_common(r, n_clients, n_units, tau, alpha,
                                                respondents_per_unit, icc)
    rel = _unit_reliability(m, icc)
    rho = r * math.sqrt(rel)
    tau_obs = tau * math.sqrt(rel) * (1 - r**2) / (1 - rel * r**2)
    v = 1.0 / (n - 3)
    se = math.sqrt((v + tau_obs**2) / k)
    lam = math.atanh(rho) / se
    c = stats.norm.ppf(1 - alpha / 2)
    return float(stats.norm.sf(c - lam) + stats.norm.cdf(-c - lam))


# --------------------------------------------------------------------------- simulation


def _dl_test(z, v, alpha):
    """DerSimonian-Laird random-effects z test, vectorised over the rows of z.

    A private copy of the DL pooling of :func:`exresearch.meta.meta_analysis`
    (``method="DL"``), kept here so thousands of replicates run as array operations; the
    tests check that the two agree. Returns (rejects, pooled z, SE) per row.
    """
    w = 1.0 / v
    sw = w.sum(axis=1)
    mu_fe = (w * z).sum(axis=1) / sw
    q = (w * (z - mu_fe[:, None]) ** 2).sum(axis=1)
    k = z.shape[1]
    c = sw - (w**2).sum(axis=1) / sw
    tau2 = np.maximum(0.0, (q - (k - 1)) / c)
    wr = 1.0 / (v + tau2[:, None])
    mu = (wr * z).sum(axis=1) / wr.sum(axis=1)
    se = 1.0 / np.sqrt(wr.sum(axis=1))
    crit = stats.norm.ppf(1 - alpha / 2)
    return np.abs(mu / se) > crit, mu, se


def _simulate_z(rng, b, r, k, n, tau, m, icc):
    """Per-client Fisher z of observed unit-level correlations, shape (b, k)."""
    z_true = math.atanh(r) + tau * rng.standard_normal((b, k))
    rho = np.tanh(z_true)[..., None]
    x = rng.standard_normal((b, k, n))
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((b, k, n))
    if m is not None:  # unit mean of m respondents: between part + averaged within part
        x = math.sqrt(icc) * x + math.sqrt((1 - icc) / m) * rng.standard_normal((b, k, n))
    x = x - x.mean(axis=2, keepdims=True)
    y = y - y.mean(axis=2, keepdims=True)
    rc = (x * y).sum(axis=2) / np.sqrt((x**2).sum(axis=2) * (y**2).sum(axis=2))
    return np.arctanh(np.clip(rc, -0.999999, 0.999999))


def _clopper_pearson(hits, total, level=0.95):
    a = (1 - level) / 2
    lo = 0.0 if hits == 0 else float(stats.beta.ppf(a, hits, total - hits + 1))
    hi = 1.0 if hits == total else float(stats.beta.ppf(1 - a, hits + 1, total - hits))
    return lo, hi


def power_simulation(*, r, n_clients, n_units, respondents_per_unit, tau, n_sims=200,
                     seed=None, alpha=0.05, icc=_DEFAULT_ICC, method="DL",
                     progress=True) -> pd.DataFrame:
    """Power of the pooled EX-CX correlation by Monte Carlo simulation.

    Each replicate draws, for every client, a true Fisher z from
    ``N(atanh(r), tau^2)``; ``n_units`` units with latent EX and outcome correlated by
    ``tanh(z)``; each unit's observed EX score as the mean of ``respondents_per_unit``
    respondents (intraclass correlation ``icc``); the client's unit-level Pearson r;
    then pools the clients' r on Fisher's z with a random-effects model and tests the
    pooled value against 0 (two-sided, level ``alpha``).

    Parameters
    ----------
    r, n_clients, n_units, tau, alpha, icc
        As in :func:`power_analytic`.
    respondents_per_unit : int or None
        Respondents averaged into each unit score; ``None`` for error-free unit scores.
    n_sims : int, default 200
        Replicates.
    seed : int, optional
        Seed of ``np.random.default_rng``.
    method : {"DL", "REML", "FE"}, default "DL"
        Pooling. ``"DL"`` uses a vectorised DerSimonian-Laird (fast); ``"REML"`` and
        ``"FE"`` call :func:`exresearch.meta.meta_analysis` once per replicate.
    progress : bool, default True
        Show a tqdm progress bar.

    Returns
    -------
    pandas.DataFrame
        One row with the columns :data:`POWER_COLUMNS`: ``n_clients, n_units,
        respondents_per_unit, r, tau, power, ci_low, ci_high, n_sims``, where ``power``
        is the share of replicates that reject and ``ci_low``/``ci_high`` its 95%
        Clopper-Pearson interval.

    Examples
    --------
    >>> res = power_simulation(r=0.3, n_clients=8, n_units=25, respondents_per_unit=10,
    ...                        tau=0.05, n_sims=100, seed=1, progress=False)
    >>> list(res.columns)[:6]
    ['n_clients', 'n_units', 'respondents_per_unit', 'r', 'tau', 'power']
    >>> bool(res["power"].iloc[0] > 0.8)
    True
    """
    r, k, n, tau, alpha, m, icc = _check_common(r, n_clients, n_units, tau, alpha,
                                                respondents_per_unit, icc)
    n_sims = _check_int("n_sims", n_sims, 1)
    if method not in ("DL", "REML", "FE"):
        raise ParameterError(
            f"`method` must be one of ['DL', 'REML', 'FE'], but {method!r} was passed")
    rng = np.random.default_rng(check_seed(seed))
    v = np.full((1, k), 1.0 / (n - 3))
    hits = 0
    with tqdm(total=n_sims, disable=not progress, desc="power simulation",
              unit="sim", leave=False) as bar:
        done = 0
        while done < n_sims:
            b = min(_BATCH, n_sims - done)
            z = _simulate_z(rng, b, r, k, n, tau, m, icc)
            if method == "DL":
                rejects, _mu, _se = _dl_test(z, np.broadcast_to(v, z.shape), alpha)
                hits += int(rejects.sum())
            else:
                hits += sum(_meta_rejects(row, n, method, alpha) for row in z)
            done += b
            bar.update(b)
    lo, hi = _clopper_pearson(hits, n_sims)
    row = {"n_clients": k, "n_units": n,
           "respondents_per_unit": np.nan if m is None else float(m), "r": r, "tau": tau,
           "power": hits / n_sims, "ci_low": lo, "ci_high": hi, "n_sims": n_sims}
    return pd.DataFrame([row], columns=list(POWER_COLUMNS))


def _meta_rejects(z_row, n, method, alpha) -> bool:
    from .meta import meta_analysis

    res = meta_analysis(pd.DataFrame({"r": np.tanh(z_row), "n": float(n)}), method=method)
    z975 = stats.norm.ppf(0.975)
    lo, hi = math.atanh(res["ci_low"]), math.atanh(res["ci_high"])
    se = (hi - lo) / (2 * z975)
    return abs((hi + lo) / 2) / se > stats.norm.ppf(1 - alpha / 2)


# --------------------------------------------------------------------------- grid


def power_grid(*, r, n_clients, n_units, respondents_per_unit=None, tau=0.0, alpha=0.05,
               method="analytic", n_sims=200, seed=None, icc=_DEFAULT_ICC,
               progress=True) -> pd.DataFrame:
    """Power over every combination of effect sizes and study sizes.

    Parameters
    ----------
    r, n_clients, n_units, respondents_per_unit, tau : scalar or list
        Values to cross; a scalar is one value.
    alpha, icc
        As in :func:`power_analytic`.
    method : {"analytic", "simulation"}, default "analytic"
        :func:`power_analytic` or :func:`power_simulation` (DL pooling) for each row.
    n_sims, seed
        Replicates and seed for ``method="simulation"``; each combination gets its own
        stream spawned from ``seed`` (``np.random.SeedSequence(seed).spawn``).
    progress : bool, default True
        Show a tqdm progress bar over the combinations (simulation only).

    Returns
    -------
    pandas.DataFrame
        One row per combination, in the order of :func:`itertools.product` over
        ``n_clients, n_units, respondents_per_unit, r, tau``, with the columns
        :data:`POWER_COLUMNS` then ``method``. For ``"analytic"``, ``ci_low`` and
        ``ci_high`` are NaN and ``n_sims`` is 0.

    Examples
    --------
    >>> grid = power_grid(r=0.2, n_clients=[3, 5, 10], n_units=20)
    >>> grid["power"].round(2).tolist()
    [0.3, 0.46, 0.75]
    """
    if method not in ("analytic", "simulation"):
        raise ParameterError(f"`method` must be one of ['analytic', 'simulation'], "
                             f"but {method!r} was passed")
    combos = list(itertools.product(
        _as_numbers("n_clients", n_clients), _as_numbers("n_units", n_units),
        _as_numbers("respondents_per_unit", respondents_per_unit), _as_numbers("r", r),
        _as_numbers("tau", tau)))
    rows = []
    if method == "analytic":
        for k, n, m, rr, t in combos:
            p = power_analytic(r=rr, n_clients=k, n_units=n, tau=t, alpha=alpha,
                               respondents_per_unit=m, icc=icc)
            rows.append({"n_clients": k, "n_units": n,
                         "respondents_per_unit": np.nan if m is None else float(m),
                         "r": float(rr), "tau": float(t), "power": p, "ci_low": np.nan,
                         "ci_high": np.nan, "n_sims": 0})
        out = pd.DataFrame(rows, columns=list(POWER_COLUMNS))
    else:
        seeds = np.random.SeedSequence(seed).spawn(len(combos))
        frames = []
        for (k, n, m, rr, t), ss in zip(tqdm(combos, disable=not progress,
                                             desc="power grid"), seeds, strict=True):
            frames.append(power_simulation(
                r=rr, n_clients=k, n_units=n, respondents_per_unit=m, tau=t, n_sims=n_sims,
                seed=ss, alpha=alpha, icc=icc, progress=False))
        out = pd.concat(frames, ignore_index=True)
    out["respondents_per_unit"] = out["respondents_per_unit"].astype(float)
    out["method"] = method
    return out
