"""Tests of exresearch.loop (trend test, pooled loop, wording) and the calibrated rules of
direction.classify_loop / loop_direction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from exresearch import ParameterError
from exresearch.direction import classify_loop, loop_direction
from exresearch.loop import pool_loop, project_within, reverse_power, trend_test, verdict_words
from exresearch.meta import pool_estimates


def _paths(b1, se1, b2, se2, diff=None, diff_se=None):
    rows = [{"path": "ex[t] -> cx[t+1]", "source": "ex", "target": "cx", "kind": "cross-lagged",
             "estimate": b1, "se": se1, "p_val": 2 * stats.norm.sf(abs(b1 / se1))},
            {"path": "cx[t] -> ex[t+1]", "source": "cx", "target": "ex", "kind": "cross-lagged",
             "estimate": b2, "se": se2, "p_val": 2 * stats.norm.sf(abs(b2 / se2))}]
    if diff is not None:
        rows.append({"path": "(ex -> cx) - (cx -> ex)", "source": "ex", "target": "cx",
                     "kind": "difference", "estimate": diff, "se": diff_se, "p_val": np.nan})
    return pd.DataFrame(rows)


def test_reverse_power_formula():
    z = stats.norm.ppf(0.975)
    assert reverse_power(0.2, 0.1) == pytest.approx(stats.norm.cdf(2 - z) + stats.norm.cdf(-2 - z))
    assert reverse_power(-0.2, 0.1) == reverse_power(0.2, 0.1)
    assert np.isnan(reverse_power(0.2, 0.0)) and np.isnan(reverse_power(np.nan, 0.1))
    # t-referenced test (riclpm's default): noncentral t beyond +/- t quantile
    q = stats.t.ppf(0.975, 9)
    assert reverse_power(0.2, 0.1, df=9) == pytest.approx(
        stats.nct.sf(q, 9, 2.0) + stats.nct.cdf(-q, 9, 2.0))
    assert reverse_power(0.2, 0.1, df=9) < reverse_power(0.2, 0.1)
    assert reverse_power(0.2, 0.1, df=np.inf) == reverse_power(0.2, 0.1)
    # classify_loop takes the df from riclpm's attrs
    paths = _paths(0.4, 0.1, 0.0, 0.1)
    paths.attrs["df"] = 9.0
    row = classify_loop(paths, trend="flat").iloc[0]
    assert row["reverse_power"] == pytest.approx(reverse_power(0.4, 0.1, df=9))


def test_not_the_other_way_round_needs_the_difference_test():
    # forward significant, reverse not, and the difference significant: ruled out
    res = classify_loop(_paths(0.4, 0.1, 0.0, 0.1, diff=0.4, diff_se=0.12), trend="flat")
    row = res.iloc[0]
    assert row["label"] == "EX leads" and row["directional"] and row["reverse_ruled_out"]
    assert row["difference_p"] == pytest.approx(2 * stats.norm.sf(0.4 / 0.12))
    assert "so not the other way round" in row["reason"]
    # difference not significant: the reverse is only "not detected", with its power
    res = classify_loop(_paths(0.3, 0.1, 0.15, 0.1, diff=0.15, diff_se=0.14), trend="flat")
    row = res.iloc[0]
    assert row["label"] == "EX leads" and not row["reverse_ruled_out"]
    assert row["reverse_power"] == pytest.approx(reverse_power(0.3, 0.1))
    assert "not the other way round" not in row["reason"]
    assert "the reverse path was not detected (cx -> next-period ex" in row["reason"]
    assert "power to detect a reverse path as large as the forward one is 85%" in row["reason"]
    # CX leads, mirrored
    res = classify_loop(_paths(0.0, 0.1, 0.4, 0.1, diff=-0.4, diff_se=0.12), trend="flat")
    assert res.loc[0, "label"] == "CX leads" and res.loc[0, "reverse_ruled_out"]
    # without a difference row (plain cross-lagged) the reverse is never ruled out
    res = classify_loop(_paths(0.4, 0.1, 0.0, 0.1), trend="flat")
    assert not res.loc[0, "reverse_ruled_out"] and np.isnan(res.loc[0, "difference_p"])


def test_virtuous_cycle_needs_a_significant_trend():
    both = _paths(0.3, 0.1, 0.3, 0.1)
    assert classify_loop(both, trend=0.2, trend_p=0.01).loc[0, "label"] == (
        "reciprocal loop — virtuous cycle")
    assert classify_loop(both, trend=0.2, trend_p=0.2).loc[0, "label"] == "reciprocal loop"
    assert classify_loop(both, trend=0.2).loc[0, "label"] == "reciprocal loop"
    assert classify_loop(both, trend=0.01, trend_p=0.001).loc[0, "label"] == "reciprocal loop"
    none = classify_loop(_paths(0.05, 0.1, 0.05, 0.1), trend="up")
    assert none.loc[0, "label"] == "no evidence" and not none.loc[0, "directional"]


def test_trend_test_matches_statsmodels_cluster_ols(rng):
    import statsmodels.api as sm

    n = 25
    p = pd.DataFrame({"unit_id": np.repeat([f"u{i}" for i in range(n)], 4),
                      "period": np.tile(["2025Q1", "2025Q2", "2025Q3", "2025Q4"], n)})
    p["ex"] = np.repeat(rng.normal(size=n), 4) + 0.1 * np.tile(np.arange(4), n) + rng.normal(
        scale=0.5, size=4 * n)
    res = trend_test(p, x="ex")
    t = np.tile(np.arange(4.0), n)
    fit = sm.OLS(p["ex"].to_numpy(), sm.add_constant(t)).fit(
        cov_type="cluster", cov_kwds={"groups": np.repeat(np.arange(n), 4)}, use_t=True)
    sd = p["ex"].std(ddof=1)
    assert res["trend_sd"] == pytest.approx(fit.params[1] / sd, rel=1e-12)
    assert res["se"] == pytest.approx(fit.bse[1] / sd, rel=1e-12)
    assert res["p_val"] == pytest.approx(fit.pvalues[1], rel=1e-12)
    assert res["n_units"] == n
    one = trend_test(p[p["period"] == "2025Q1"], x="ex")
    assert np.isnan(one["trend_sd"]) and np.isnan(one["p_val"])


def test_pool_loop_pools_paths_difference_and_trend():
    rows = []
    for c, (b, trend) in enumerate([(0.20, 0.10), (0.30, 0.12), (0.25, 0.08), (0.15, 0.11)]):
        p = _paths(b, 0.08, 0.02, 0.08, diff=b - 0.02, diff_se=0.1)
        rows.append(p.assign(client_id=f"c{c}", trend_sd=trend, trend_se=0.03))
    by_client = pd.concat(rows, ignore_index=True)
    paths, verdict = pool_loop(by_client)
    xy = paths[paths["kind"] == "cross-lagged"].iloc[0]
    ref = pool_estimates(by_client[by_client["path"] == "ex[t] -> cx[t+1]"], method="REML")
    assert xy["estimate"] == pytest.approx(ref["estimate"]) and xy["k"] == 4
    assert paths["kind"].tolist() == ["cross-lagged", "cross-lagged", "difference"]
    trend = pool_estimates(by_client.groupby("client_id")[["trend_sd", "trend_se"]].first(),
                           estimate="trend_sd", se="trend_se", method="REML")
    v = verdict.iloc[0]
    assert v["trend_sd"] == pytest.approx(trend["estimate"])
    assert v["trend_p"] == pytest.approx(trend["p_val"])
    assert v["label"] == "EX leads" and v["reverse_ruled_out"] and v["k"] == 4
    assert v["method"] == "riclpm pooled"
    with pytest.raises(ParameterError, match="`by_client` must be stacked riclpm"):
        pool_loop(pd.DataFrame({"x": [1]}))


def test_verdict_words():
    assert verdict_words(pd.DataFrame([{"label": "reciprocal loop", "method": "riclpm"}])) == {
        "verb": "drives", "causal": True, "label": "reciprocal loop"}
    assert verdict_words(pd.Series({"label": "CX leads", "method": "riclpm"}))["verb"] == (
        "is associated with")
    assert not verdict_words(pd.Series({"label": "EX leads", "method": "clpm pooled"}))["causal"]
    assert verdict_words(pd.Series({"label": "EX leads", "method": "riclpm pooled"}))["causal"]


def test_loop_direction_directional_column_and_methods(rng):
    n = 60
    trait = rng.multivariate_normal([0, 0], [[1, 0.7], [0.7, 1]], size=n)
    w = rng.normal(size=(n, 4, 2))
    panel = pd.DataFrame({"unit_id": np.repeat(np.arange(n), 4),
                          "period": np.tile([1, 2, 3, 4], n),
                          "ex": (trait[:, [0]] + w[..., 0]).ravel(),
                          "cx": (trait[:, [1]] + w[..., 1]).ravel()})
    res = loop_direction(panel, x="ex", y="cx")
    assert res.loc[0, "method"] == "riclpm" and res.loc[0, "n_units"] == n
    assert res.loc[0, "n_obs"] == 4 * n
    assert res.loc[0, "directional"] == (res.loc[0, "label"] != "no evidence")
    assert res["directional"].dtype == bool
    clpm = loop_direction(panel, x="ex", y="cx", method="clpm")
    assert clpm.loc[0, "method"] == "clpm" and clpm.loc[0, "n_obs"] == 3 * n
    with pytest.raises(ParameterError, match="`covar` is only supported with method='clpm'"):
        loop_direction(panel.assign(hc=1.0), x="ex", y="cx", covar="hc")
    with pytest.raises(ParameterError, match="`method` must be one of"):
        loop_direction(panel, x="ex", y="cx", method="sem")


def test_project_within_uses_the_within_paths():
    paths = pd.concat([_paths(0.2, 0.05, 0.1, 0.05), pd.DataFrame([
        {"path": "ex[t] -> ex[t+1]", "source": "ex", "target": "ex", "kind": "autoregressive",
         "estimate": 0.6, "se": 0.05, "p_val": 0.0},
        {"path": "cx[t] -> cx[t+1]", "source": "cx", "target": "cx", "kind": "autoregressive",
         "estimate": 0.5, "se": 0.05, "p_val": 0.0}])], ignore_index=True)
    proj = project_within(paths, periods=2, seed=1)
    ex = proj[(proj["scenario"] == "intervention") & (proj["variable"] == "ex")]["value"]
    # s1 = A s0: EX 0.6, CX 0.2; s2: EX 0.6*0.6 + 0.1*0.2 = 0.38
    assert ex.round(6).tolist() == [1.0, 0.6, 0.38]
    assert proj["low"].notna().all()
    assert project_within(paths.iloc[:2]).empty


# ----------------------------------------------------------------------------- mediation CIs
def test_mediation_percentile_and_monte_carlo_intervals(rng):
    """percentile = plain 2.5/97.5 percentiles of the resampled a*b (the resamples are
    pingouin's, checked elsewhere); Monte Carlo = percentiles of a*b drawn from normals."""
    from exresearch.mediation import mediation

    n = 40
    ex = rng.normal(size=n)
    cx = 0.5 * ex + rng.normal(size=n)
    d = pd.DataFrame({"ex": ex, "cx": cx, "sales": 0.4 * cx + rng.normal(size=n)})
    pct = mediation(d, x="ex", m="cx", y="sales", n_boot=500, seed=3)  # default percentile
    bca = mediation(d, x="ex", m="cx", y="sales", n_boot=500, seed=3, ci="bca")
    # the same resamples by an explicit loop (numpy.random.RandomState as pingouin)
    idx = np.random.RandomState(3).choice(np.arange(n), replace=True, size=(500, n))
    ab = []
    for i in idx:
        a = np.polyfit(ex[i], cx[i], 1)[0]
        b = np.linalg.lstsq(np.column_stack([np.ones(n), ex[i], cx[i]]), d["sales"].to_numpy()[i],
                            rcond=None)[0][2]
        ab.append(a * b)
    lo, hi = np.percentile(ab, [2.5, 97.5])
    ind = pct[pct["path"] == "indirect"].iloc[0]
    assert (ind["ci_low"], ind["ci_high"]) == pytest.approx((lo, hi), abs=1e-10)
    assert ind["estimate"] == bca[bca["path"] == "indirect"].iloc[0]["estimate"]
    mc = mediation(d, x="ex", m="cx", y="sales", n_boot=5000, seed=5, ci="monte_carlo")
    row = {r["path"]: r for _, r in mc.iterrows()}
    draws = (np.random.default_rng(9).normal(row["a"]["estimate"], row["a"]["se"], 50000)
             * np.random.default_rng(10).normal(row["b"]["estimate"], row["b"]["se"], 50000))
    ref = np.percentile(draws, [2.5, 97.5])
    assert row["indirect"]["ci_low"] == pytest.approx(ref[0], abs=0.02)
    assert row["indirect"]["ci_high"] == pytest.approx(ref[1], abs=0.02)
    with pytest.raises(ParameterError, match=r"`ci` must be one of \['percentile', 'monte_carlo', "
                                             r"'bca'\], but 'bc' was passed"):
        mediation(d, x="ex", m="cx", y="sales", ci="bc")


def test_per_client_verdicts_keep_riclpm_t_reference(rng):
    # report.loops_by_client classifies each client from the stacked paths; the reverse
    # path's power must use riclpm's t reference (df) as loop_direction does, not the normal
    from exresearch import report

    n, t = 80, 4
    trait = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=n)
    wx, wy = np.zeros((n, t)), np.zeros((n, t))
    wx[:, 0], wy[:, 0] = rng.normal(size=n), rng.normal(size=n)
    for k in range(1, t):
        wx[:, k] = 0.4 * wx[:, k - 1] + rng.normal(size=n)
        wy[:, k] = 0.3 * wy[:, k - 1] + 0.35 * wx[:, k - 1] + rng.normal(size=n)
    panel = pd.DataFrame({"unit_id": np.repeat(np.arange(n), t),
                          "period": np.tile(np.arange(1, t + 1), n),
                          "ex": (trait[:, [0]] + wx).ravel(), "cx": (trait[:, [1]] + wy).ravel()})
    ref = loop_direction(panel, x="ex", y="cx")
    assert ref.loc[0, "label"] == "EX leads" and np.isfinite(ref.loc[0, "reverse_power"])
    by = report.cross_lagged_by_client({"c1": panel}, x="ex", y="cx", periods=[1, 2, 3, 4],
                                       names={"c1": "Client A"})
    # units - the 13 covariance-structure parameters (riclpm's default reference)
    assert by["df"].nunique() == 1 and by["df"].iloc[0] == n - 13
    got = report.loops_by_client(by)
    assert got.loc[0, "label"] == ref.loc[0, "label"]
    assert got.loc[0, "reverse_power"] == pytest.approx(ref.loc[0, "reverse_power"], rel=1e-9)
    # the normal reference gives a different (optimistic) power: the test above can fail
    fwd = by[(by["kind"] == "cross-lagged") & by["path"].str.startswith("ex")]["estimate"].iloc[0]
    se_rev = by[(by["kind"] == "cross-lagged") & by["path"].str.startswith("cx")]["se"].iloc[0]
    normal = reverse_power(float(fwd), float(se_rev))
    assert normal > got.loc[0, "reverse_power"] + 0.005
