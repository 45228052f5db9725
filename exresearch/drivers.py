"""Key drivers within one client: which parts of the experience matter for an outcome.

Engagement versus the specific experience drivers (hierarchical regression, delta
R^2), Johnson's (2000) relative weights with unit-bootstrap intervals, and driver
priorities (impact x performance). Relative weights are written by hand: neither
pingouin nor statsmodels provides them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import as_columns as _as_list
from ._checks import check_columns as _check_columns
from ._checks import check_frame as _check_frame
from ._checks import check_n_boot as _check_n_boot
from ._checks import check_seed
from ._stats import (
    _boot_weights,
    _percentile_ci,
    _unit_codes,
    _warn,
)
from .exceptions import ParameterError

__all__ = [
    "incremental_validity",
    "relative_weights",
    "driver_priorities",
]


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
    >>> from exresearch.drivers import incremental_validity
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


def _check_model_args(data, y, drivers):
    """One outcome column and at least two other numeric driver columns; the drivers list."""
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
    return drivers


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
    >>> from exresearch.drivers import relative_weights
    >>> rng = np.random.default_rng(8)
    >>> d = pd.DataFrame(rng.normal(size=(30, 3)), columns=["manager", "tools", "growth"])
    >>> d["cx"] = 0.6 * d.manager + 0.2 * d.tools + rng.normal(size=30)
    >>> rw = relative_weights(d, y="cx", drivers=["manager", "tools", "growth"], seed=1)
    >>> bool(np.isclose(rw.weight.sum(), rw.r2.iloc[0]))
    True
    >>> rw.sort_values("rank").driver.iloc[0]
    'manager'
    """
    drivers = _check_model_args(data, y, drivers)
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
    rng = np.random.default_rng(check_seed(seed))
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
        impact_low, impact_high, performance, quadrant, priority, beats_random,
        delta_cx, p_first, contender, act_first, rank``:
        ``impact`` the % of R^2 (relative weight) with its bootstrap CI,
        ``performance`` the score, ``quadrant`` one of ``"priority"`` (high
        impact, low score), ``"strength"`` (high impact, high score),
        ``"monitor"`` (low impact, low score), ``"maintain"`` (low impact,
        high score), ``priority`` True for the first quadrant; from
        :func:`exresearch.value.driver_model` (same data, ``n_boot`` and
        ``seed``): ``beats_random`` (the weight beats a random variable),
        ``delta_cx`` (gain in ``y`` of closing the driver's gap to the top
        quarter of units, joint regression), ``p_first`` (share of bootstrap
        samples in which the driver is the best investment), ``contender``
        (cannot be separated from the best), ``act_first`` (True for the one
        driver a report names "act first", False everywhere when none is
        credibly first) and ``rank`` (1 = best investment, by ``delta_cx``).

    Notes
    -----
    The quadrant is descriptive: impact is high when strictly above the median
    impact of the drivers; performance is low when strictly below the median
    score. A driver at a median counts as low impact or high score (so it is
    not flagged). Where to act first is decided by the driver model, which
    weighs both what a driver is worth (joint regression) and its room to
    improve (the gap of lagging units), with their uncertainty.

    References
    ----------
    Martilla, J. A., & James, J. C. (1977). Importance-performance analysis.
    *Journal of Marketing*, 41(1), 77-79.

    Johnson, J. W. (2000). *Multivariate Behavioral Research*, 35(1), 1-19.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.drivers import driver_priorities
    >>> rng = np.random.default_rng(9)
    >>> d = pd.DataFrame(rng.normal(3.5, 0.4, size=(30, 4)), columns=list("abcd"))
    >>> d["cx"] = d.a + 0.1 * d.b + rng.normal(0, 0.3, size=30)
    >>> pr = driver_priorities(d, y="cx", drivers=list("abcd"),
    ...                        scores={"a": 3.0, "b": 4.0, "c": 3.2, "d": 4.1}, seed=1)
    >>> pr.loc[pr.driver == "a", "quadrant"].item()
    'priority'
    >>> pr[["driver", "act_first"]].values.tolist()[0]
    ['a', True]
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
    # rank, rank probability and act_first from the one driver model of the client
    from .value import driver_model  # value imports this module

    model = driver_model(data, y=y, drivers=drivers, n_boot=n_boot, seed=seed, unit=unit)
    m = model.set_index("driver")
    for col in ["rank", "beats_random", "delta_cx", "p_first", "contender", "act_first"]:
        out[col] = out["driver"].map(m[col])
    out = out.sort_values("rank", kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    for col in ["beats_random", "contender", "act_first"]:
        out[col] = out[col].astype(bool)
    return out.reset_index(drop=True)[
        ["driver", "impact", "impact_low", "impact_high", "performance", "quadrant", "priority",
         "beats_random", "delta_cx", "p_first", "contender", "act_first", "rank"]]
