"""What a better employee experience is worth, in the client's own units and money.

- :func:`quartile_utility` - Gallup-style utility: outcome in the top vs bottom EX quartile
  of units;
- :func:`chained_effect` - an improvement in an EX driver -> change in CX (slope a) ->
  change in a business outcome (slope b), and in money;
- :func:`investment_table` - drivers ranked by the return of closing the gap to the top
  quartile;
- :func:`project_loop` and :func:`plot_projection` - forward projection of the EX <-> CX
  loop from cross-lagged estimates (virtuous cycle, fading, or doom loop).

All bootstraps resample units (``seed=`` -> ``np.random.default_rng(seed)``). Inputs are
unit panels (one row per unit x period); units with several periods are averaged over
periods first, so each unit counts once (filter ``period`` beforehand to use one period).
These are associations: a chained or projected effect is what the estimated slopes imply
if they were causal, and the reports must say so.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from ._checks import check_column_args as _check_columns
from ._checks import check_n_boot, check_seed
from .exceptions import ParameterError

__all__ = [
    "quartile_utility",
    "chained_effect",
    "investment_table",
    "project_loop",
    "plot_projection",
]

_IMPROVEMENTS = ("1sd", "1point", "top_quartile")


# --------------------------------------------------------------------------- helpers
def _as_list(x):
    return [x] if isinstance(x, str) else list(x)


def _check_boot(n_boot):
    return check_n_boot(n_boot, allow_zero=True)  # 0: point estimates, no intervals


def _unit_means(data, unit, cols):
    """One row per unit: the mean of each column over the unit's periods, complete cases."""
    cols = list(dict.fromkeys(cols))
    d = data[[unit, *cols]].copy()
    for c in cols:
        d[c] = pd.to_numeric(d[c], errors="coerce").astype(float)
    return d.groupby(unit, sort=True)[cols].mean().dropna()


def _pct_ci(boot, level=0.95):
    boot = np.asarray(boot, dtype=float)
    boot = boot[np.isfinite(boot)]
    if len(boot) == 0:
        return np.nan, np.nan
    a = (1 - level) / 2
    return float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a))


def _slopes(x, y):
    """OLS slopes of y on x along the last axis (x, y: (..., n))."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    sxx = np.sum(xc * xc, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(xc * yc, axis=-1) / sxx


# --------------------------------------------------------------------------- utility
def _quartile_means_boot(xv, yv, n_boot, rng):
    """Mean y of the top and of the bottom x quartile in n_boot unit resamples (the cut
    points recomputed in each)."""
    idx = rng.integers(0, len(xv), size=(n_boot, len(xv)))
    xb, yb = xv[idx], yv[idx]
    qb = np.quantile(xb, [0.25, 0.75], axis=1)
    tb, bb = xb >= qb[1][:, None], xb <= qb[0][:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(yb * tb, axis=1) / tb.sum(axis=1), np.sum(yb * bb, axis=1) / bb.sum(axis=1)


def quartile_utility(data, *, x, y, n_boot=1000, seed=None, unit="unit_id"):
    """Gallup-style utility: mean outcome in the top vs the bottom EX quartile of units.

    The published form (Brogden-Cronbach-Gleser utility, % only on a meaningful base,
    binomial effect size display) is :func:`exresearch.value.utility_table`; ``pct_diff``
    here is a raw percentage of the bottom mean, meaningless for outcomes near zero.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel: ``unit`` plus numeric columns (one row per unit x period; averaged
        per unit).
    x : str or list of str
        EX scale(s) defining the quartiles.
    y : str or list of str
        Outcome(s) compared between the quartiles.
    n_boot : int, default 1000
        Bootstrap replicates (units resampled with replacement); 0 skips the CIs.
    seed : int or None
        Seed of ``np.random.default_rng``.
    unit : str, default "unit_id"
        Column identifying units.

    Returns
    -------
    pandas.DataFrame
        One row per (x, y): ``x, y, n_units, n_top, n_bottom, mean_top, mean_bottom,
        diff, diff_ci_low, diff_ci_high, pct_diff, pct_ci_low, pct_ci_high``. A pair with
        fewer than 8 complete units is a NaN row (with ``n_units``) and a warning.

    Notes
    -----
    With :math:`Q_1, Q_3` the 25th and 75th percentiles of x over units (linear
    interpolation), the top quartile is :math:`\\{x \\ge Q_3\\}` and the bottom
    :math:`\\{x \\le Q_1\\}`. ``diff`` :math:`= \\bar y_{top} - \\bar y_{bottom}` and
    ``pct_diff`` :math:`= 100\\,(\\bar y_{top} - \\bar y_{bottom}) / |\\bar y_{bottom}|`.
    CIs are bootstrap percentiles; each replicate resamples units and recomputes the
    quartile cut points.

    References
    ----------
    .. [1] Harter, J. K., Schmidt, F. L., & Hayes, T. L. (2002). Business-unit-level
       relationship between employee satisfaction, employee engagement, and business
       outcomes: A meta-analysis. Journal of Applied Psychology, 87, 268-279.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.economics import quartile_utility
    >>> rng = np.random.default_rng(1)
    >>> ex = rng.normal(3.8, 0.4, 40)
    >>> panel = pd.DataFrame({"unit_id": [f"u{i}" for i in range(40)], "engagement": ex,
    ...                       "sales": 100 + 10 * (ex - 3.8) + rng.normal(0, 2, 40)})
    >>> res = quartile_utility(panel, x="engagement", y="sales", n_boot=200, seed=1)
    >>> bool(res.loc[0, "diff"] > 0), int(res.loc[0, "n_top"]), int(res.loc[0, "n_bottom"])
    (True, 10, 10)
    """
    _check_columns(data, unit=unit, x=x, y=y)
    _check_boot(n_boot)
    rng = np.random.default_rng(check_seed(seed))
    rows = []
    for xc in _as_list(x):
        for yc in _as_list(y):
            u = _unit_means(data, unit, [xc, yc])
            row = {"x": xc, "y": yc, "n_units": len(u)}
            keys = ["n_top", "n_bottom", "mean_top", "mean_bottom", "diff", "diff_ci_low",
                    "diff_ci_high", "pct_diff", "pct_ci_low", "pct_ci_high"]
            row.update(dict.fromkeys(keys, np.nan))
            if len(u) < 8:
                warnings.warn(f"quartile_utility({xc!r}, {yc!r}): {len(u)} complete units, "
                              "at least 8 are needed; returning NaN", stacklevel=2)
                rows.append(row)
                continue
            xv, yv = u[xc].to_numpy(), u[yc].to_numpy()
            q1, q3 = np.quantile(xv, [0.25, 0.75])
            top, bot = xv >= q3, xv <= q1
            mt, mb = yv[top].mean(), yv[bot].mean()
            row.update(n_top=int(top.sum()), n_bottom=int(bot.sum()), mean_top=mt,
                       mean_bottom=mb, diff=mt - mb)
            if mb == 0:
                warnings.warn(f"quartile_utility({xc!r}, {yc!r}): the bottom-quartile mean "
                              "is 0, so the % difference is undefined", stacklevel=2)
            else:
                row["pct_diff"] = 100 * (mt - mb) / abs(mb)
            if n_boot:
                mtb, mbb = _quartile_means_boot(xv, yv, n_boot, rng)
                with np.errstate(invalid="ignore", divide="ignore"):
                    pb = 100 * (mtb - mbb) / np.abs(mbb)
                row["diff_ci_low"], row["diff_ci_high"] = _pct_ci(mtb - mbb)
                if mb != 0:
                    row["pct_ci_low"], row["pct_ci_high"] = _pct_ci(pb)
            rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- chained effect
def _improvement_size(xv, improvement):
    """Per-unit-average improvement of the driver under the stated rule (vectorised)."""
    if isinstance(improvement, str):
        if improvement == "1sd":
            return np.std(xv, axis=-1, ddof=1)
        if improvement == "1point":
            return np.ones(xv.shape[:-1]) if xv.ndim > 1 else 1.0
        q3 = np.quantile(xv, 0.75, axis=-1)
        q3 = q3[..., None] if xv.ndim > 1 else q3
        return np.mean(np.maximum(0.0, q3 - xv), axis=-1)
    return np.full(xv.shape[:-1], float(improvement)) if xv.ndim > 1 else float(improvement)


def _check_improvement(improvement):
    ok = (isinstance(improvement, str) and improvement in _IMPROVEMENTS) or (
        isinstance(improvement, (int, float, np.floating)) and not isinstance(improvement, bool)
        and math.isfinite(improvement))
    if not ok:
        raise ParameterError(
            f"The value for `improvement` must be one of {list(_IMPROVEMENTS)} or a number of "
            f"scale points, but {improvement!r} was passed")


def chained_effect(data, *, driver, cx, business, improvement="1sd", revenue=None,
                   n_boot=1000, seed=None, unit="unit_id", level=0.95):
    """What an improvement in an EX driver is worth through CX, in outcome units and money.

    The client reports use :func:`exresearch.value.value_chain` instead: one joint model
    of all drivers, and the business slope with EX held constant. This function keeps the
    simple slopes of one driver at a time (its values for several drivers do not add up,
    and its ``b`` also carries any direct EX -> business path).

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel (averaged per unit over periods).
    driver : str
        EX driver (scale score).
    cx : str
        CX outcome (e.g. NPS, satisfaction).
    business : str
        Business outcome (e.g. revenue growth in %, retention in %).
    improvement : {"1sd", "1point", "top_quartile"} or float, default "1sd"
        Size of the driver improvement: one between-unit SD of the driver; one scale
        point; closing the gap to the top quartile (every unit below the driver's 75th
        percentile raised to it; the average rise over all units); or that many points.
    revenue : float, optional
        The client's annual revenue (``ClientSpec.revenue`` from study.yml). When given,
        ``business`` must be revenue growth in percentage points and the money value is
        ``revenue * delta_business / 100``.
    n_boot : int, default 1000
        Bootstrap replicates resampling units; 0 skips the CIs.
    seed : int or None
        Seed of ``np.random.default_rng``.
    unit : str, default "unit_id"
    level : float, default 0.95
        Coverage of the percentile bootstrap CIs.

    Returns
    -------
    pandas.DataFrame
        One row per quantity, columns ``driver, cx, business, improvement, n_units,
        quantity, estimate, ci_low, ci_high, units``, with ``quantity`` in order:
        ``improvement`` (driver points), ``a`` (CX per driver point), ``b`` (business per
        CX point), ``delta_cx`` (CX points), ``delta_business`` (business units) and, when
        ``revenue`` is given, ``money`` (currency units of ``revenue``).

    Notes
    -----
    With unit-level OLS slopes :math:`a` (CX on driver) and :math:`b` (business on CX,
    a simple regression, i.e. the chain assumes the driver acts on the business outcome
    only through CX):

    .. math::

        \\Delta CX = \\delta a, \\quad \\Delta B = \\delta a b, \\quad
        \\text{money} = R\\,\\Delta B / 100,

    with :math:`\\delta` the improvement and :math:`R` the revenue. For "1sd" and
    "top_quartile" :math:`\\delta` is recomputed in each bootstrap replicate. These are
    the values implied if the slopes were causal.

    References
    ----------
    .. [1] Heskett, J. L., Jones, T. O., Loveman, G. W., Sasser, W. E., & Schlesinger,
       L. A. (1994). Putting the service-profit chain to work. Harvard Business Review,
       72(2), 164-174.
    .. [2] Efron, B., & Tibshirani, R. J. (1993). An introduction to the bootstrap.
       Chapman & Hall.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.economics import chained_effect
    >>> rng = np.random.default_rng(2)
    >>> ex = rng.normal(3.8, 0.4, 60)
    >>> nps = 20 + 15 * (ex - 3.8) + rng.normal(0, 3, 60)
    >>> growth = 2 + 0.1 * (nps - 20) + rng.normal(0, 0.5, 60)
    >>> panel = pd.DataFrame({"unit_id": range(60), "recognition": ex, "nps": nps,
    ...                       "growth": growth})
    >>> res = chained_effect(panel, driver="recognition", cx="nps", business="growth",
    ...                      improvement="1point", revenue=5e6, n_boot=200, seed=3)
    >>> res["quantity"].tolist()
    ['improvement', 'a', 'b', 'delta_cx', 'delta_business', 'money']
    """
    _check_columns(data, unit=unit, driver=driver, cx=cx, business=business)
    _check_improvement(improvement)
    _check_boot(n_boot)
    if revenue is not None and not (isinstance(revenue, (int, float)) and revenue > 0):
        raise ParameterError(
            f"`revenue` must be a positive number or None, but {revenue!r} was passed")
    u = _unit_means(data, unit, [driver, cx, business])
    n_units = len(u)
    quantities = ["improvement", "a", "b", "delta_cx", "delta_business"]
    units = [f"{driver} points", f"{cx} per {driver} point", f"{business} per {cx} point",
             f"{cx} points", f"{business} units"]
    if revenue is not None:
        quantities.append("money")
        units.append("currency of revenue")
    est = dict.fromkeys(quantities, np.nan)
    cis = {q: (np.nan, np.nan) for q in quantities}
    if n_units < 3 or u[driver].std() == 0 or u[cx].std() == 0:
        warnings.warn(f"chained_effect({driver!r} -> {cx!r} -> {business!r}): {n_units} "
                      "complete units or a constant column; returning NaN", stacklevel=2)
    else:
        xv, cv, bv = (u[c].to_numpy() for c in (driver, cx, business))

        def _chain(xs, cs, bs):
            delta = _improvement_size(xs, improvement)
            a, b = _slopes(xs, cs), _slopes(cs, bs)
            out = {"improvement": delta, "a": a, "b": b, "delta_cx": delta * a,
                   "delta_business": delta * a * b}
            if revenue is not None:
                out["money"] = revenue * out["delta_business"] / 100.0
            return out

        est = {k: float(v) for k, v in _chain(xv, cv, bv).items()}
        if n_boot:
            rng = np.random.default_rng(check_seed(seed))
            idx = rng.integers(0, n_units, size=(n_boot, n_units))
            boot = _chain(xv[idx], cv[idx], bv[idx])
            cis = {q: _pct_ci(np.broadcast_to(boot[q], (n_boot,)), level) for q in quantities}
    imp_label = improvement if isinstance(improvement, str) else f"{float(improvement):g} points"
    rows = [{"driver": driver, "cx": cx, "business": business, "improvement": imp_label,
             "n_units": n_units, "quantity": q, "estimate": est[q], "ci_low": cis[q][0],
             "ci_high": cis[q][1], "units": un} for q, un in zip(quantities, units, strict=True)]
    return pd.DataFrame(rows)


def investment_table(data, *, drivers, cx, business, improvement="top_quartile",
                     revenue=None, n_boot=1000, seed=None, unit="unit_id", level=0.95):
    """Rank EX drivers by the return of a feasible improvement (default: close the gap to
    the top quartile).

    Superseded in the client reports by :func:`exresearch.value.value_chain`, which ranks
    the drivers with the same joint model as :func:`exresearch.driver_priorities`.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel.
    drivers : list of str
        EX drivers to compare.
    cx, business, improvement, revenue, n_boot, seed, unit, level
        As in :func:`chained_effect` (every driver is bootstrapped with the same ``seed``,
        i.e. on the same resamples of units, so their differences are less noisy).

    Returns
    -------
    pandas.DataFrame
        One row per driver, best first: ``rank, driver, n_units, improvement, a, b,
        delta_cx, delta_cx_ci_low, delta_cx_ci_high, delta_business,
        delta_business_ci_low, delta_business_ci_high`` and, when ``revenue`` is given,
        ``money, money_ci_low, money_ci_high``. Ranked by ``delta_business`` (descending;
        NaN last).

    Notes
    -----
    A driver's return is :math:`\\delta_j a_j b` (see :func:`chained_effect`): a driver
    ranks high when it is both linked to CX (large :math:`a_j`) and has room to improve
    (large gap :math:`\\delta_j` to the top quartile) - the impact x performance logic.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.economics import investment_table
    >>> rng = np.random.default_rng(4)
    >>> d = pd.DataFrame({"unit_id": range(80), "pay": rng.normal(3.5, 0.5, 80),
    ...                   "tools": rng.normal(3.5, 0.5, 80)})
    >>> d["nps"] = 10 * d["tools"] + 2 * d["pay"] + rng.normal(0, 2, 80)
    >>> d["growth"] = 0.2 * d["nps"] + rng.normal(0, 1, 80)
    >>> tab = investment_table(d, drivers=["pay", "tools"], cx="nps", business="growth",
    ...                        n_boot=100, seed=5)
    >>> tab["driver"].tolist()
    ['tools', 'pay']
    """
    drivers = _as_list(drivers)
    if not drivers:
        raise ParameterError("`drivers` must name at least one column, but [] was passed")
    rows = []
    for drv in drivers:
        ce = chained_effect(data, driver=drv, cx=cx, business=business,
                            improvement=improvement, revenue=revenue, n_boot=n_boot,
                            seed=seed, unit=unit, level=level).set_index("quantity")
        row = {"driver": drv, "n_units": int(ce["n_units"].iloc[0]),
               "improvement": ce.loc["improvement", "estimate"],
               "a": ce.loc["a", "estimate"], "b": ce.loc["b", "estimate"]}
        for q in ["delta_cx", "delta_business"] + (["money"] if revenue is not None else []):
            row[q] = ce.loc[q, "estimate"]
            row[f"{q}_ci_low"] = ce.loc[q, "ci_low"]
            row[f"{q}_ci_high"] = ce.loc[q, "ci_high"]
        rows.append(row)
    tab = pd.DataFrame(rows).sort_values("delta_business", ascending=False,
                                         na_position="last", kind="stable")
    tab.insert(0, "rank", np.arange(1, len(tab) + 1))
    return tab.reset_index(drop=True)


# --------------------------------------------------------------------------- projection
_COEFS = ("ex_to_cx", "cx_to_ex", "ex_ar", "cx_ar")


def _coef(name, value):
    if isinstance(value, (tuple, list)) and len(value) == 2:
        est, se = float(value[0]), float(value[1])
    elif isinstance(value, (int, float, np.floating)) and not isinstance(value, bool):
        est, se = float(value), 0.0
    else:
        raise ParameterError(
            f"`{name}` must be a number or an (estimate, standard error) pair, but "
            f"{value!r} was passed")
    if not (math.isfinite(est) and math.isfinite(se) and se >= 0):
        raise ParameterError(
            f"`{name}` must have a finite estimate and a non-negative standard error, but "
            f"{value!r} was passed")
    return est, se


def _iterate(A, s0, periods):
    """States s_0..s_periods of s_{t+1} = A s_t; A: (..., 2, 2), s0: (2,)."""
    A = np.asarray(A, dtype=float)
    s = np.broadcast_to(np.asarray(s0, dtype=float), A.shape[:-1]).copy()
    path = [s]
    for _ in range(periods):
        s = np.einsum("...ij,...j->...i", A, s)
        path.append(s)
    return np.stack(path, axis=-2)  # (..., periods + 1, 2)


def project_loop(*, ex_to_cx, cx_to_ex, ex_ar, cx_ar, shock_ex=1.0, shock_cx=0.0,
                 periods=8, draws=None, seed=None, level=0.90):
    """Project the standardized EX <-> CX loop forward after a shock to EX.

    Parameters
    ----------
    ex_to_cx, cx_to_ex, ex_ar, cx_ar : float or (float, float)
        Standardized cross-lagged estimates, each a number or an ``(estimate, se)`` pair:
        ``ex_to_cx`` (EX_t -> CX_t+1 given CX_t), ``cx_to_ex`` (CX_t -> EX_t+1 given
        EX_t), and the stabilities ``ex_ar`` (EX_t -> EX_t+1) and ``cx_ar``.
    shock_ex : float, default 1.0
        Initial rise in EX in SD units (an intervention), positive; the "decline" scenario
        applies ``-shock_ex``.
    shock_cx : float, default 0.0
        Initial change in CX (the decline scenario negates it too).
    periods : int, default 8
        Number of periods projected after the shock.
    draws : int, optional
        Coefficient draws for the uncertainty band (independent normals with the given
        SEs). Default 1000 when any SE is positive, otherwise no band.
    seed : int or None
        Seed of ``np.random.default_rng`` for the draws.
    level : float, default 0.90
        Coverage of the band (percentiles of the drawn paths).

    Returns
    -------
    pandas.DataFrame
        Columns ``scenario`` ("intervention", "decline"), ``period`` (0..periods),
        ``variable`` ("ex", "cx"), ``value``, ``low``, ``high`` (band; NaN without draws),
        and per scenario ``multiplier`` (EX at the horizon divided by the initial EX
        shock), ``p_amplified`` (share of draws with multiplier > 1; NaN without draws),
        ``spectral_radius`` (largest absolute eigenvalue of the transition matrix) and
        ``label``: "amplified" (virtuous cycle; "amplified (doom loop)" for the decline)
        when the multiplier exceeds 1, otherwise "fades".

    Notes
    -----
    The standardized deviations :math:`s_t = (EX_t, CX_t)'` follow the VAR(1)-style
    recursion of the cross-lagged panel model,

    .. math::

        s_{t+1} = A s_t, \\quad
        A = \\begin{pmatrix} \\beta_{EX,EX} & \\beta_{CX\\to EX} \\\\
                             \\beta_{EX\\to CX} & \\beta_{CX,CX} \\end{pmatrix},
        \\quad s_0 = (\\text{shock}_{EX}, \\text{shock}_{CX})'.

    The multiplier is :math:`EX_T / \\text{shock}_{EX}` at the horizon :math:`T`: above 1
    the loop has more than replaced what decays (the intervention is amplified); a
    spectral radius of 1 or more means the loop sustains itself indefinitely, below 1
    every one-off shock eventually fades. The model is linear, so the decline path is the
    mirror image of the intervention: a reinforcing loop (both cross paths positive) also
    amplifies a decline (Schlesinger & Heskett's "cycle of failure"). The band reflects
    coefficient uncertainty only, ignoring their covariances.

    References
    ----------
    .. [1] Schneider, B., White, S. S., & Paul, M. C. (1998). Linking service climate and
       customer perceptions of service quality. Journal of Applied Psychology, 83,
       150-163.
    .. [2] Schlesinger, L. A., & Heskett, J. L. (1991). Breaking the cycle of failure in
       services. Sloan Management Review, 32(3), 17-28.

    Examples
    --------
    >>> from exresearch.economics import project_loop
    >>> p = project_loop(ex_to_cx=0.2, cx_to_ex=0.2, ex_ar=0.6, cx_ar=0.5, periods=4)
    >>> p.loc[(p.scenario == "intervention") & (p.variable == "ex"), "value"].round(3).tolist()
    [1.0, 0.6, 0.4, 0.284, 0.208]
    >>> p["label"].unique().tolist(), round(float(p["spectral_radius"].iloc[0]), 3)
    (['fades'], 0.756)
    >>> strong = project_loop(ex_to_cx=0.3, cx_to_ex=0.3, ex_ar=0.85, cx_ar=0.85)
    >>> strong.groupby("scenario", sort=False)["label"].first().tolist()
    ['amplified', 'amplified (doom loop)']
    """
    coefs = {name: _coef(name, val) for name, val in
             zip(_COEFS, (ex_to_cx, cx_to_ex, ex_ar, cx_ar), strict=True)}
    if not isinstance(periods, (int, np.integer)) or periods < 1:
        raise ParameterError(f"`periods` must be a positive integer, but {periods!r} was passed")
    for name, val in (("shock_ex", shock_ex), ("shock_cx", shock_cx)):
        if not isinstance(val, (int, float)) or not math.isfinite(val):
            raise ParameterError(f"`{name}` must be a finite number, but {val!r} was passed")
    if shock_ex <= 0:
        raise ParameterError(
            "`shock_ex` must be positive (an improvement; the decline scenario is its mirror "
            f"image), but {shock_ex!r} was passed")
    any_se = any(se > 0 for _, se in coefs.values())
    if draws is None:
        draws = 1000 if any_se else 0
    if not isinstance(draws, (int, np.integer)) or draws < 0:
        raise ParameterError(f"`draws` must be a non-negative integer, but {draws!r} was passed")

    def _matrix(c):
        return np.array([[c["ex_ar"], c["cx_to_ex"]], [c["ex_to_cx"], c["cx_ar"]]])

    A = _matrix({k: v[0] for k, v in coefs.items()})
    radius = float(np.max(np.abs(np.linalg.eigvals(A))))
    A_draws = None
    if draws:
        rng = np.random.default_rng(check_seed(seed))
        drawn = {k: rng.normal(est, se, size=draws) for k, (est, se) in coefs.items()}
        A_draws = np.stack([np.stack([drawn["ex_ar"], drawn["cx_to_ex"]], -1),
                            np.stack([drawn["ex_to_cx"], drawn["cx_ar"]], -1)], -2)
    a = (1 - level) / 2
    frames = []
    for scenario, sign in (("intervention", 1.0), ("decline", -1.0)):
        # the decline scenario is the intervention's mirror image, EX falling
        s0 = sign * np.array([shock_ex, shock_cx], dtype=float)
        path = _iterate(A, s0, periods)
        mult = float(path[-1, 0] / s0[0])
        low = high = np.full_like(path, np.nan)
        p_amp = np.nan
        if A_draws is not None:
            dpaths = _iterate(A_draws, s0, periods)
            low, high = np.quantile(dpaths, [a, 1 - a], axis=0)
            p_amp = float(np.mean(dpaths[:, -1, 0] / s0[0] > 1))
        if mult > 1:
            label = "amplified" if scenario == "intervention" else "amplified (doom loop)"
        else:
            label = "fades"
        for j, var in enumerate(("ex", "cx")):
            frames.append(pd.DataFrame({
                "scenario": scenario, "period": np.arange(periods + 1), "variable": var,
                "value": path[:, j], "low": low[:, j], "high": high[:, j],
                "multiplier": mult, "p_amplified": p_amp, "spectral_radius": radius,
                "label": label}))
    return pd.concat(frames, ignore_index=True)


def plot_projection(projection, *, ax=None):
    """Plot a loop projection: moved to :func:`exresearch.plots.plot_projection`.

    Kept under this name; the arguments are passed on unchanged.

    Examples
    --------
    >>> from exresearch.economics import project_loop, plot_projection
    >>> p = project_loop(ex_to_cx=(0.3, 0.05), cx_to_ex=(0.3, 0.05), ex_ar=0.8, cx_ar=0.7,
    ...                  seed=1)
    >>> len(plot_projection(p).get_lines()) >= 4
    True
    """
    from .plots import plot_projection as _plot_projection

    return _plot_projection(projection, ax=ax)
