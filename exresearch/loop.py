"""The EX <-> CX loop: calibrated verdicts, a tested trend, pooling across clients.

A verdict is a test with a false-positive rate and a power, measured on simulated
studies with known truth (:mod:`exresearch.validity`, ``validity/results.md``). The
rules, applied by :func:`exresearch.direction.classify_loop`:

- a label that names a direction ("EX leads", "CX leads", a reciprocal loop) needs that
  direction's within-unit path (:func:`exresearch.riclpm.riclpm`) to be positive and
  significant;
- "and not the other way round" needs the difference of the two paths to be
  significant; otherwise the reason says the reverse path was *not detected* and gives
  the power to detect one as large as the forward path;
- "virtuous cycle" / "doom loop" need a reciprocal loop *and* a significant trend
  (:func:`trend_test`);
- the verb "drives", and money without "if the link is causal", follow only such a
  verdict (:func:`verdict_words`).

Across clients the within-unit paths are pooled by random-effects meta-analysis
(:func:`pool_loop`, :func:`exresearch.meta.pool_estimates`), and so is the trend; the
pooled verdict follows the same rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import check_columns as _check_columns
from ._checks import check_frame as _check_frame
from .exceptions import ParameterError

__all__ = ["trend_test", "pool_loop", "verdict_words", "project_within", "reverse_power",
           "CALIBRATED_METHODS", "RICLPM_ALPHA"]

#: Significance level of every test behind a client's RI-CLPM verdict. Until the
#: RI-CLPM's tests were calibrated it was 0.01: the Wald z of the paths was too wide at
#: typical sizes (a nominal 5% test named a direction for 12% of null-world 30-unit
#: clients). :func:`exresearch.riclpm.riclpm` now constrains the innovations equal over
#: periods, takes per path the larger of the observed-information and sandwich SEs and
#: refers its Wald tests to a t with units - 13 (covariance-structure parameters)
#: degrees of freedom, a rule chosen on simulated clients at 30 and 100 units and 4, 6
#: and 8 periods and confirmed on fresh ones (validity/calibrate_riclpm.md). Its error
#: rates at 0.05 (a direction named where none exists, power) are in
#: validity/results.md and docs/methods.md.
RICLPM_ALPHA = 0.05

#: ``method`` values of a loop verdict whose error rates were measured and pass the
#: targets in validity/results.md; only these may turn "is associated with" into "drives".
CALIBRATED_METHODS = ("riclpm", "riclpm pooled")

#: Labels that name the direction EX -> CX.
_EX_TO_CX = ("reciprocal loop — virtuous cycle", "reciprocal loop — doom loop",
             "reciprocal loop", "EX leads")


def reverse_power(forward, se_reverse, *, alpha=0.05, df=None):
    """Power of the two-sided Wald test to detect a reverse path as large as ``forward``.

    Parameters
    ----------
    forward : float
        The forward path's estimate (its size is the effect to detect).
    se_reverse : float
        Standard error of the reverse path.
    alpha : float
    df : float, optional
        Degrees of freedom of a t-referenced test (:func:`exresearch.riclpm.riclpm`'s
        ``attrs["df"]``); None or infinite for a z test.

    Returns
    -------
    float
        z test: :math:`\\Phi(d - z_{1-\\alpha/2}) + \\Phi(-d - z_{1-\\alpha/2})`,
        :math:`d = |b|/s`; t test: the same tails of the noncentral t with ``df``
        degrees of freedom and noncentrality d beyond :math:`\\pm t_{1-\\alpha/2}`
        (scipy.stats.nct). NaN when undefined.

    Examples
    --------
    >>> round(reverse_power(0.2, 0.1), 3)
    0.516
    >>> round(reverse_power(0.2, 0.1, df=9), 3)
    0.431
    """
    if not (np.isfinite(forward) and np.isfinite(se_reverse) and se_reverse > 0):
        return float("nan")
    d = abs(forward) / se_reverse
    if df is not None and np.isfinite(df):
        if df <= 0:
            return float("nan")
        q = stats.t.ppf(1 - alpha / 2, df)
        return float(stats.nct.sf(q, df, d) + stats.nct.cdf(-q, df, d))
    z = stats.norm.ppf(1 - alpha / 2)
    return float(stats.norm.cdf(d - z) + stats.norm.cdf(-d - z))


def trend_test(data, *, x, unit="unit_id", period="period", periods=None):
    """Is the client's EX going up or down? Slope over periods with unit-clustered SE.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel, one row per unit x period.
    x : str
        EX column.
    unit, period, periods
        As in :func:`exresearch.direction.cross_lagged`.

    Returns
    -------
    dict
        ``trend_sd`` (OLS slope of x on the period's position, divided by the SD of x
        over all unit-periods: SD per period), ``se`` (its CR1 standard error clustered
        by unit, on the same scale), ``p_val`` (t with G - 1 df, G units), ``n_units``.

    Notes
    -----
    Clustering by unit makes the test respect that a unit is seen in every period; the
    SD of x is treated as known. statsmodels OLS with ``cov_type="cluster"``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> p = pd.DataFrame({"unit_id": np.repeat(np.arange(40), 4),
    ...                   "period": np.tile([1, 2, 3, 4], 40)})
    >>> p["ex"] = rng.normal(size=160) + 0.5 * p["period"]
    >>> res = trend_test(p, x="ex")
    >>> res["p_val"] < 0.001, res["trend_sd"] > 0
    (True, True)
    """
    from statsmodels.regression.linear_model import OLS
    from statsmodels.tools.tools import add_constant

    from .direction import _panel_periods

    _check_frame(data)
    _check_columns(data, "x", [x])
    periods, t_index = _panel_periods(data, unit, period, periods, "trend_test")
    d = pd.DataFrame({"u": data[unit].to_numpy(), "t": t_index.to_numpy(dtype=float),
                      "x": data[x].to_numpy(dtype=float)}).dropna()
    g = d["u"].nunique()
    out = {"trend_sd": np.nan, "se": np.nan, "p_val": np.nan, "n_units": int(g)}
    sd = float(d["x"].std(ddof=1)) if len(d) > 1 else np.nan
    if d["t"].nunique() < 2 or g < 3 or not np.isfinite(sd) or sd <= 0:
        return out
    fit = OLS(d["x"].to_numpy(), add_constant(d["t"].to_numpy())).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(d["u"])[0]}, use_t=True)
    out.update(trend_sd=float(fit.params[1]) / sd, se=float(fit.bse[1]) / sd,
               p_val=float(fit.pvalues[1]))
    return out


def pool_loop(by_client, *, method="REML", alpha=0.05, trend_tol=0.05):
    """Pool the within-unit paths and the trend over clients, and name the pooled loop.

    Parameters
    ----------
    by_client : pandas.DataFrame
        Stacked :func:`exresearch.riclpm.riclpm` results with a ``client_id`` column,
        and optionally ``trend_sd`` and ``trend_se`` (from :func:`trend_test`, the same
        on every row of a client).
    method : {"REML", "DL", "FE"}
        Random-effects estimator of :func:`exresearch.meta.pool_estimates`.
    alpha, trend_tol : float
        As in :func:`exresearch.direction.classify_loop`.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        ``paths``: one row per path (``path, source, target, kind`` and the fields of
        :func:`exresearch.meta.pool_estimates`; ``p_val`` is the pooled Wald p), in the
        order of :func:`exresearch.riclpm.riclpm` (cross-lagged, autoregressive,
        difference); ``verdict``: the row of
        :func:`exresearch.direction.classify_loop` on the pooled paths with the pooled
        trend (``method`` "riclpm pooled"), plus ``trend_sd``, ``trend_p``, ``k``.

    Notes
    -----
    The pooled difference of the paths is the meta-analysis of each client's
    difference (with its own SE, which includes the covariance of the two paths), so
    "not the other way round" is tested across clients the same way as within one.
    The trend is pooled the same way: a "virtuous cycle" across clients needs the
    pooled trend to be significant, not an average of per-client trends.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = []
    >>> for c, b in enumerate([0.20, 0.25, 0.15]):
    ...     rows += [{"client_id": c, "path": "ex[t] -> cx[t+1]", "source": "ex",
    ...               "target": "cx", "kind": "cross-lagged", "estimate": b, "se": 0.08},
    ...              {"client_id": c, "path": "cx[t] -> ex[t+1]", "source": "cx",
    ...               "target": "ex", "kind": "cross-lagged", "estimate": 0.0, "se": 0.08},
    ...              {"client_id": c, "path": "(ex -> cx) - (cx -> ex)", "source": "ex",
    ...               "target": "cx", "kind": "difference", "estimate": b, "se": 0.1}]
    >>> paths, verdict = pool_loop(pd.DataFrame(rows))
    >>> verdict.loc[0, "label"], bool(verdict.loc[0, "directional"])
    ('EX leads', True)
    """
    from .direction import classify_loop
    from .meta import pool_estimates

    _check_frame(by_client, "by_client")
    need = {"path", "source", "target", "kind", "estimate", "se"}
    if not need <= set(by_client.columns):
        raise ParameterError(
            f"`by_client` must be stacked riclpm() results with columns {sorted(need)}, "
            f"but it has {list(by_client.columns)}")
    rows = []
    keep = by_client[by_client["kind"].isin(["cross-lagged", "autoregressive", "difference"])]
    for (path, source, target, kind), g in keep.groupby(["path", "source", "target", "kind"],
                                                        sort=False):
        rows.append({"path": path, "source": source, "target": target, "kind": kind,
                     **pool_estimates(g, method=method).to_dict()})
    paths = pd.DataFrame(rows)
    trend, trend_p, k = np.nan, None, int(by_client.get("client_id", pd.Series([0])).nunique())
    if {"trend_sd", "trend_se"} <= set(by_client.columns):
        per = by_client.groupby("client_id")[["trend_sd", "trend_se"]].first()
        pooled = pool_estimates(per, estimate="trend_sd", se="trend_se", method=method)
        trend, trend_p = float(pooled["estimate"]), float(pooled["p_val"])
    verdict = classify_loop(paths, trend=trend, trend_p=trend_p, alpha=alpha,
                            trend_tol=trend_tol)
    verdict["trend_sd"] = trend
    verdict["k"] = k
    verdict["method"] = "riclpm pooled"
    return paths, verdict


def verdict_words(loop) -> dict:
    """The words a report may use for the EX -> outcome link, given a loop verdict.

    Parameters
    ----------
    loop : pandas.DataFrame or pandas.Series or str
        A row of :func:`exresearch.direction.loop_direction` or :func:`pool_loop`
        (``label``, ``method``), or a bare label (then taken as not calibrated).

    Returns
    -------
    dict
        ``verb``: "drives" only when the verdict names EX -> CX *and* comes from a
        calibrated method (:data:`CALIBRATED_METHODS`), otherwise "is associated with";
        ``causal``: the same condition, under which money may be stated without "if
        the link is causal"; ``label``.

    Examples
    --------
    >>> import pandas as pd
    >>> verdict_words(pd.Series({"label": "EX leads", "method": "riclpm"}))["verb"]
    'drives'
    >>> verdict_words(pd.Series({"label": "EX leads", "method": "clpm"}))["verb"]
    'is associated with'
    >>> verdict_words("EX leads")["causal"]
    False
    """
    if isinstance(loop, pd.DataFrame):
        loop = loop.iloc[0] if len(loop) else pd.Series({"label": "no evidence"})
    if isinstance(loop, str):
        label, method = loop, None
    else:
        label, method = str(loop.get("label", "no evidence")), loop.get("method")
    causal = bool(label in _EX_TO_CX and method in CALIBRATED_METHODS)
    return {"verb": "drives" if causal else "is associated with", "causal": causal,
            "label": label}


def project_within(paths, *, shock_ex=1.0, periods=8, draws=1000, seed=None, level=0.90):
    """Project an EX shock forward with the within-unit paths and their uncertainty.

    Parameters
    ----------
    paths : pandas.DataFrame
        :func:`exresearch.riclpm.riclpm` (one client, standardised) or the ``paths`` of
        :func:`pool_loop`.
    shock_ex, periods, draws, seed, level
        As in :func:`exresearch.economics.project_loop`.

    Returns
    -------
    pandas.DataFrame
        :func:`exresearch.economics.project_loop` on the within-unit paths (in
        within-unit SD units), empty when a path is undefined.

    Notes
    -----
    The plain cross-lagged paths mix stable differences between units into the
    autoregressions and are attenuated, so a projection from them fades too fast; the
    within-unit paths are what a one-off change in a unit's EX sets in motion.
    """
    from .economics import project_loop

    cross = paths[paths["kind"] == "cross-lagged"]
    auto = paths[paths["kind"] == "autoregressive"]
    if len(cross) != 2 or len(auto) != 2:
        return pd.DataFrame()
    x = cross["source"].iloc[0]

    def pick(frame, source):
        row = frame[frame["source"] == source].iloc[0]
        return float(row["estimate"]), float(row["se"])

    coefs = {"ex_to_cx": pick(cross, x), "cx_to_ex": pick(cross, cross["target"].iloc[0]),
             "ex_ar": pick(auto, x), "cx_ar": pick(auto, cross["target"].iloc[0])}
    if not all(np.isfinite(v).all() for v in coefs.values()):
        return pd.DataFrame()
    return project_loop(**coefs, shock_ex=shock_ex, periods=periods, draws=draws, seed=seed,
                        level=level)
