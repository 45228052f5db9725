"""Tests for exresearch.value: the joint driver model, value chain, unit view, utility.

Reference values come from R (tests/r/value.R: lm, relative weights by hand, type-1
quantiles, predictions with every gap closed) in tests/data/value_reference.json.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from exresearch import ParameterError, value
from exresearch.drivers import driver_priorities, relative_weights
from exresearch.value import (
    RANK_THRESHOLD,
    _interval,
    driver_model,
    format_money,
    unit_actions,
    utility_table,
    value_chain,
    weight_differences,
)

DATA = __import__("pathlib").Path(__file__).parent / "data"
REF = json.loads((DATA / "value_reference.json").read_text())
DRIVERS = REF["units"]["drivers"]


@pytest.fixture(scope="module")
def units():
    d = pd.read_csv(DATA / "value_units.csv")
    d["ex_index"] = d[DRIVERS].mean(axis=1)
    return d


@pytest.fixture(scope="module")
def attitude():
    return pd.read_csv(DATA / "linkage_attitude.csv")


def _by_driver(tab, col, drivers):
    return tab.set_index("driver").loc[drivers, col].to_numpy(dtype=float)


# ------------------------------------------------------------------ the driver model vs R
@pytest.mark.parametrize("case", ["attitude", "units"])
def test_driver_model_matches_r(case, units, attitude):
    ref = REF[case]
    data, y = (attitude, "rating") if case == "attitude" else (units, "nps")
    m = driver_model(data, y=y, drivers=ref["drivers"], n_boot=50, seed=1)
    x = ref["drivers"]
    for col, key in [("weight", "weight"), ("coef", "coef"), ("coef_se", "se"), ("p_val", "p"),
                     ("target", "target"), ("gap", "gap"), ("delta_cx", "delta")]:
        np.testing.assert_allclose(_by_driver(m, col, x), ref[key], rtol=1e-8, atol=1e-12,
                                   err_msg=col)
    assert m["r2"].iloc[0] == pytest.approx(ref["r2"], rel=1e-10)
    # closing every gap together is the sum of the drivers' gains (R's predict)
    assert m["delta_cx"].sum() == pytest.approx(ref["all_closed"], rel=1e-10)
    # best investment first, ranks 1..p
    assert m["rank"].tolist() == list(range(1, len(x) + 1))
    assert (np.diff(m["delta_cx"].to_numpy()) <= 0).all()


def test_driver_model_bootstrap_is_reproducible_and_consistent(units):
    kw = dict(y="nps", drivers=DRIVERS, n_boot=200)
    a = driver_model(units, seed=4, **kw)
    value._FITS.clear()  # recomputed, not the reused fit
    b = driver_model(units, seed=4, **kw)
    c = driver_model(units, seed=5, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["p_first"], c["p_first"])
    assert a["p_first"].sum() == pytest.approx(1.0)
    assert (a["weight_low"] <= a["weight"]).all() and (a["weight"] <= a["weight_high"]).all()
    assert a["act_first"].sum() <= 1
    # the weights are the relative weights of the drivers module
    rw = relative_weights(units, y="nps", drivers=DRIVERS, n_boot=10, seed=1)
    np.testing.assert_allclose(_by_driver(a, "weight", DRIVERS), rw["weight"], rtol=1e-12)


def test_driver_model_is_fitted_once_per_units_drivers_and_seed(units, monkeypatch):
    kw = dict(y="nps", drivers=DRIVERS, n_boot=200)
    chain = dict(drivers=DRIVERS, cx="nps", business="revenue_growth", n_boot=200)
    value._FITS.clear()
    fresh = {"m": driver_model(units, seed=7, **kw),
             "wd": weight_differences(units, seed=7, **kw),
             "vc": value_chain(units, seed=7, **chain)}
    built = []
    real = value._Fit

    def counting(*a, **k):
        built.append(k.get("rv", True))
        return real(*a, **k)

    monkeypatch.setattr(value, "_Fit", counting)
    # the same units, drivers and seed: the fits above serve every call, equal answers
    pd.testing.assert_frame_equal(driver_model(units, seed=7, **kw), fresh["m"])
    pd.testing.assert_frame_equal(weight_differences(units, seed=7, **kw), fresh["wd"])
    pd.testing.assert_frame_equal(value_chain(units, seed=7, **chain), fresh["vc"])
    pr = driver_priorities(units, y="nps", drivers=DRIVERS, n_boot=200, seed=7)
    assert pr["act_first"].tolist() == fresh["m"].set_index("driver").loc[
        pr["driver"], "act_first"].tolist()
    assert built == []
    # and the reused answers are the ones a fresh fit gives
    value._FITS.clear()
    pd.testing.assert_frame_equal(weight_differences(units, seed=7, **kw), fresh["wd"])
    assert built == [False]
    # a fit without the benchmark does not serve one with it
    pd.testing.assert_frame_equal(driver_model(units, seed=7, **kw), fresh["m"])
    assert built == [False, True]
    # other units, another seed, or no fixed seed: fitted again
    changed = units.assign(nps=units["nps"] + np.arange(len(units)) % 2)
    driver_model(changed, seed=7, **kw)
    driver_model(units, seed=8, **kw)
    driver_model(units, seed=None, **kw)
    driver_model(units, seed=None, **kw)
    driver_model(units, seed=np.random.default_rng(7), **kw)
    assert built == [False, True, True, True, True, True, True]
    assert len(value._FITS) <= value._FITS_MAX


def test_percentile_and_bias_corrected_intervals_by_hand():
    rng = np.random.default_rng(2)
    boot = rng.gamma(2.0, size=(4000, 1))
    lo, hi = _interval(boot, np.array([1.5]), 0.95, "percentile")
    np.testing.assert_allclose([lo[0], hi[0]], np.quantile(boot[:, 0], [0.025, 0.975]),
                               rtol=1e-12)
    z0 = stats.norm.ppf(np.mean(boot[:, 0] < 1.5))
    qa, qb = stats.norm.cdf(2 * z0 - 1.959963984540054), stats.norm.cdf(2 * z0 + 1.959963984540054)
    blo, bhi = _interval(boot, np.array([1.5]), 0.95, "bc")
    np.testing.assert_allclose([blo[0], bhi[0]], np.quantile(boot[:, 0], [qa, qb]))
    # an estimate at the bootstrap median gives back the percentile interval
    med = np.median(boot[:, 0])
    np.testing.assert_allclose(_interval(boot, np.array([med]), 0.95, "bc"),
                               _interval(boot, np.array([med]), 0.95, "percentile"), rtol=1e-3)


def test_act_first_only_for_a_credible_leader():
    rng = np.random.default_rng(0)
    n = 200
    x = rng.normal(3.5, 0.5, size=(n, 3))
    d = pd.DataFrame(x, columns=["tools", "leader", "pay"])
    d["clear"] = 30 + 20 * d.leader + 2 * d.tools + rng.normal(0, 6, n)
    d["noise"] = rng.normal(30, 10, n)
    clear = driver_model(d, y="clear", drivers=["tools", "leader", "pay"], n_boot=300, seed=1)
    assert clear["act_first"].tolist() == [True, False, False]
    assert clear["driver"].iloc[0] == "leader" and clear["p_first"].iloc[0] >= RANK_THRESHOLD
    assert clear["beats_random"].iloc[0] and not clear.set_index("driver").loc["pay", "beats_random"]
    noise = driver_model(d, y="noise", drivers=["tools", "leader", "pay"], n_boot=300, seed=1)
    assert not noise["act_first"].any() and not noise["beats_random"].any()
    # two equally strong drivers (a sample in which neither is credibly first)
    rng = np.random.default_rng(1)
    t = pd.DataFrame(rng.normal(3.5, 0.5, size=(n, 3)), columns=["tools", "leader", "pay"])
    t["tie"] = 30 + 10 * t.leader + 10 * t.tools + rng.normal(0, 6, n)
    tie = driver_model(t, y="tie", drivers=["tools", "leader", "pay"], n_boot=300, seed=1)
    assert not tie["act_first"].any()
    assert set(tie.loc[tie["contender"], "driver"]) == {"tools", "leader"}
    # a stricter threshold can only name fewer drivers
    strict = driver_model(d, y="clear", drivers=["tools", "leader", "pay"], n_boot=300, seed=1,
                          threshold=1.0)
    assert strict["act_first"].sum() <= 1


def test_weight_differences(rng):
    d = pd.DataFrame(rng.normal(size=(150, 3)), columns=["a", "b", "c"])
    d["y"] = d.a + 0.05 * d.b + rng.normal(size=150)
    wd = weight_differences(d, y="y", drivers=["a", "b", "c"], n_boot=300, seed=1)
    assert wd[["driver_a", "driver_b"]].values.tolist() == [["a", "b"], ["a", "c"], ["b", "c"]]
    m = driver_model(d, y="y", drivers=["a", "b", "c"], n_boot=10, seed=1).set_index("driver")
    assert wd["diff"].iloc[0] == pytest.approx(m.loc["a", "weight"] - m.loc["b", "weight"])
    assert wd["separable"].tolist() == [True, True, False]


# ------------------------------------------------------------------ value chain
def test_value_chain_is_one_consistent_chain(units):
    ref = REF["units"]
    v = value_chain(units, drivers=DRIVERS, cx="nps", business="revenue_growth", ex="ex_index",
                    revenue=5e7, currency="EUR", horizon_years=3,
                    costs={"tools": 10000.0, "leader": 2e6}, n_boot=200, seed=3)
    m = driver_model(units, y="nps", drivers=DRIVERS, n_boot=200, seed=3)
    body, total = v.iloc[:-1], v.iloc[-1]
    # same model, same resamples: ranks, rank probabilities and act_first agree
    assert body["driver"].tolist() == m["driver"].tolist()
    for col in ["rank", "p_first", "act_first", "delta_cx", "delta_cx_low", "delta_cx_high"]:
        np.testing.assert_array_equal(body[col].to_numpy(dtype=float), m[col].to_numpy(dtype=float))
    # business slope with EX held constant (R lm), not the simple slope
    assert total["business_slope"] == pytest.approx(ref["business_slope"], rel=1e-10)
    assert abs(ref["business_slope"] - ref["simple_slope"]) > 0.005
    assert total["driver"] == "all drivers"
    assert total["delta_cx"] == pytest.approx(ref["all_closed"], rel=1e-10)
    for col in ["delta_cx", "delta_business", "money"]:
        assert body[col].sum() == pytest.approx(total[col], rel=1e-10)
    np.testing.assert_allclose(v["money"], 5e7 * v["delta_business"] / 100 * 3, rtol=1e-12)
    tools = v.set_index("driver").loc["tools"]
    assert tools["cost"] == pytest.approx(10000.0 * tools["gap"])
    assert tools["net"] == pytest.approx(tools["money"] - tools["cost"])
    if tools["money"] > 0:
        assert tools["break_even_years"] == pytest.approx(tools["cost"] / (tools["money"] / 3))
    assert math.isnan(v.set_index("driver").loc["training", "cost"])
    assert math.isnan(total["cost"])  # not every driver has a cost
    assert (v["currency"] == "EUR").all() and (v["horizon_years"] == 3.0).all()
    assert (v["money_low"] <= v["money_high"]).all()


def test_value_chain_without_revenue_and_default_hold(units):
    v = value_chain(units, drivers=DRIVERS[:3], cx="nps", business="revenue_growth",
                    n_boot=50, seed=1)
    assert v["money"].isna().all() and v["money_low"].isna().all()
    fit = sm.OLS(units["revenue_growth"], sm.add_constant(units[["nps", *DRIVERS[:3]]])).fit()
    assert v["business_slope"].iloc[0] == pytest.approx(fit.params["nps"], rel=1e-10)


@pytest.mark.parametrize("kwargs, message", [
    (dict(currency="euro"), r"`currency` must be a three-letter ISO 4217 code such as 'EUR', "
                            r"but 'euro' was passed"),
    (dict(horizon_years=0), r"`horizon_years` must be a positive number, but 0 was passed"),
    (dict(revenue=-1.0), r"`revenue` must be a positive number or None, but -1.0 was passed"),
    (dict(costs={"pay": 3}), r"`costs` must map drivers \['tools', 'empowerment'\] to "
                             r"non-negative numbers, but \{'pay': 3\} was passed"),
    (dict(ci="bca"), r"The value for `ci` must be one of \['percentile', 'bc'\], but 'bca'"),
    (dict(threshold=0), r"`threshold` must be a number in \(0, 1\], but 0 was passed"),
    (dict(ex="nps"), r"`cx` \('nps'\), `business` \('revenue_growth'\) and `ex` \(\['nps'\]\) "
                     r"must be different columns"),
])
def test_value_chain_errors(units, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        value_chain(units, drivers=["tools", "empowerment"], cx="nps", business="revenue_growth",
                    n_boot=10, **kwargs)


def test_degenerate_model_is_nan_with_a_note(units):
    with pytest.warns(UserWarning, match="'nps' is constant across the 80 units"):
        m = driver_model(units.assign(nps=1.0), y="nps", drivers=DRIVERS, n_boot=10, seed=1)
    assert m["weight"].isna().all() and not m["act_first"].any()
    assert (m["note"] == "'nps' is constant across the 80 units, so the model is undefined").all()
    with pytest.warns(UserWarning, match="too few units"):
        v = value_chain(units.head(5), drivers=DRIVERS, cx="nps", business="revenue_growth",
                        revenue=1e6, n_boot=10, seed=1)
    assert v["money"].isna().all() and len(v) == len(DRIVERS) + 1


# ------------------------------------------------------------------ priorities
def test_driver_priorities_act_first_agrees_with_the_model(units):
    pr = driver_priorities(units, y="nps", drivers=DRIVERS, n_boot=200, seed=2)
    m = driver_model(units, y="nps", drivers=DRIVERS, n_boot=200, seed=2)
    assert pr["act_first"].dtype == bool and pr["act_first"].sum() <= 1
    assert pr["driver"].tolist() == m["driver"].tolist()
    assert pr["act_first"].tolist() == m["act_first"].tolist()
    assert pr["rank"].tolist() == list(range(1, len(DRIVERS) + 1))


# ------------------------------------------------------------------ unit view
def test_unit_actions_by_hand_and_threshold(units):
    m = driver_model(units, y="nps", drivers=DRIVERS, n_boot=100, seed=1)
    ua = unit_actions(units, model=m, drivers=["leader", "tools"], size="respondents",
                      min_group_size=5)
    assert set(ua["unit_id"]) == set(units.loc[units["respondents"] >= 5, "unit_id"])
    mm = m.set_index("driver")
    row = ua.iloc[0]
    score = units.set_index("unit_id").loc[row["unit_id"], row["driver"]]
    assert row["gap"] == pytest.approx(max(0.0, mm.loc[row["driver"], "target"] - score))
    assert row["gain"] == pytest.approx(mm.loc[row["driver"], "coef"] * row["gap"])
    tot = ua.groupby("unit_id")["gain"].sum()
    assert ua.drop_duplicates("unit_id")["total_gain"].is_monotonic_decreasing
    np.testing.assert_allclose(ua.drop_duplicates("unit_id").set_index("unit_id")["total_gain"],
                               tot.loc[ua.drop_duplicates("unit_id")["unit_id"]])
    top = unit_actions(units, model=m, drivers=["leader"], top=3)
    assert top["unit_rank"].tolist() == [1, 2, 3]
    with pytest.raises(ParameterError, match=r"`drivers` \['pay'\] are not in `model`"):
        unit_actions(units, model=m, drivers=["pay"])


# ------------------------------------------------------------------ utility
def test_utility_table_matches_r_and_uses_points_near_zero(units):
    u = utility_table(units, x="ex_index", y=["nps", "csat"], reliability_x=0.8,
                      reliability_y={"nps": 0.5, "csat": 0.9}, n_boot=100, seed=1).set_index("y")
    for ref in REF["utility"]:
        row = u.loc[ref["y"]]
        for col in ["r", "sd_y", "mean_top", "mean_bottom", "above_median_top",
                    "above_median_bottom", "odds_ratio"]:
            assert row[col] == pytest.approx(ref[col], rel=1e-10), col
    nps, csat = u.loc["nps"], u.loc["csat"]
    assert nps["rho"] == pytest.approx(min(1.0, nps["r"] / math.sqrt(0.8 * 0.5)))
    assert nps["bcg_per_sd"] == pytest.approx(nps["rho"] * nps["sd_y"])
    assert nps["bcg_top_vs_bottom"] == pytest.approx(nps["bcg_per_sd"] * 2.5422, rel=1e-4)
    assert nps["besd_top"] - nps["besd_bottom"] == pytest.approx(nps["rho"])
    # NPS is near zero relative to its spread: points, no percentage of it
    assert nps["base"] == "points" and math.isnan(nps["pct_diff"])
    assert csat["base"] == "percent"
    assert csat["pct_diff"] == pytest.approx(100 * (csat["mean_top"] - csat["mean_bottom"])
                                             / csat["mean_bottom"])
    with pytest.raises(ParameterError, match=r"The value for `base` must be one of "
                                             r"\['auto', 'percent', 'points'\], but 'pct'"):
        utility_table(units, x="ex_index", y="nps", base="pct")


# ------------------------------------------------------------------ money
@pytest.mark.parametrize("value, currency, text", [
    (443_007, "EUR", "EUR 440,000"), (1_234_567, "USD", "USD 1.2 million"),
    (-12_345, None, "-12,000 currency units"), (0.0, "GBP", "GBP 0"),
    (2.5e9, "EUR", "EUR 2.5 billion"), (995, "EUR", "EUR 1,000"), (float("nan"), "EUR", "n/a"),
    (0.1234, "CHF", "CHF 0.12"),
])
def test_format_money(value, currency, text):
    assert format_money(value, currency=currency) == text


def test_doctests():
    import doctest

    from exresearch import value

    res = doctest.testmod(value, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 10 and res.failed == 0


def test_plot_value_marks_intervals_that_include_zero(units):
    from exresearch.plots import plot_value

    v = value_chain(units, drivers=DRIVERS, cx="nps", business="revenue_growth", ex="ex_index",
                    revenue=5e7, currency="EUR", horizon_years=2, n_boot=100, seed=3)
    ax = plot_value(v, labels={"tools": "Tools"})
    body = v.iloc[:-1].iloc[::-1]
    crosses = ((body["money_low"] <= 0) & (body["money_high"] >= 0)).tolist()
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert [t.endswith("(CI includes 0)") for t in ticks] == crosses
    assert any(crosses) and not all(crosses)
    assert [p.get_hatch() == "//" for p in ax.patches] == crosses
    assert ax.get_xlabel() == "revenue (EUR, over 2 years)"
    assert "Tools" in " ".join(ticks)


def test_summary_priorities_and_value_agree_on_simulated_clients(small_study):
    """On every client of a simulated study: the summary's driver, the priorities table's
    first row and the value table's first row agree, or the summary says why not."""
    from exresearch import report
    from exresearch.study import load_study

    study = load_study(small_study)
    roles = report.measure_roles(study.config)
    cx = roles.primary_cx
    business = roles.money or roles.business[0]
    seen = set()
    for client in study.config.client_ids:
        units = report.unit_means(report.client_panel(study, client, roles), roles)
        pr = driver_priorities(units, y=cx, drivers=roles.drivers, n_boot=200, seed=7)
        v = value_chain(units, drivers=roles.drivers, cx=cx, business=business, ex=roles.ex,
                        revenue=1e7, currency="EUR", n_boot=200, seed=7)
        assert v["driver"].iloc[:-1].tolist() == pr["driver"].tolist()
        f = report.executive_summary(correlations=pd.DataFrame(columns=["x", "y", "r"]),
                                     loop=None, priorities=pr, investment=v, roles=roles,
                                     n_units=len(units)).set_index("topic")
        drivers_text, value_text = f.loc["drivers", "text"], f.loc["value", "text"]
        if pr["act_first"].any():
            name = roles.label(pr["driver"].iloc[0])
            assert pr["act_first"].iloc[0] and v["act_first"].iloc[0]
            assert drivers_text.startswith(f"Act first on {name}: ")
            assert f"below the top quarter on {name} up to" in value_text
            assert f.loc["value", "key"] == f"driver={pr['driver'].iloc[0]}"
            seen.add("named")
        else:
            assert drivers_text.startswith(f"No single driver can be named first for "
                                           f"{roles.label(cx)}")
            assert "on all drivers together (no single driver can be separated)" in value_text
            assert f.loc["value", "key"] == "driver=all drivers"
            seen.add("none")
    assert seen  # at least one client was checked


def test_act_first_claim_is_registered_with_the_harness():
    from exresearch import validity

    listed = validity.claims().set_index("name")
    row = listed.loc["act first (one driver model)"]
    assert row["worlds"] == "null, reciprocal"
    assert row["targets"] == ("null: zero_weight_named in [0, 0.05]; "
                              "reciprocal: zero_weight_named in [0, 0.05]")
    res = validity.run(["act first (one driver model)"], worlds=["reciprocal"], n_units=30,
                       n_periods=3, n_reps=3, seed=5, batch=3)
    assert res["event"].tolist() == ["any_named", "zero_weight_named", "strongest_named"]
    assert (res["n"] == 3).all() and res["rate"].between(0, 1).all()


def test_quadrant_chart_shows_the_model_decision(units):
    from exresearch.plots import plot_driver_quadrant

    pr = driver_priorities(units, y="nps", drivers=DRIVERS, n_boot=100, seed=2)
    texts = {t.get_text() for t in plot_driver_quadrant(pr).texts}
    assert ("act first" in texts) == bool(pr["act_first"].any())
    assert ("no driver is credibly first" in texts) == (not pr["act_first"].any())
    forced = pr.assign(act_first=[True] + [False] * (len(pr) - 1))
    assert "act first" in {t.get_text() for t in plot_driver_quadrant(forced).texts}


def test_describe_value_money_costs_and_business_units(units):
    from exresearch.value import describe_value

    kw = dict(drivers=DRIVERS, cx="nps", business="revenue_growth", ex="ex_index", n_boot=100,
              seed=3)
    v = value_chain(units, revenue=5e7, currency="EUR", horizon_years=2,
                    costs={d: 1000.0 for d in DRIVERS}, **kw)
    row = v[v["act_first"]].iloc[0] if v["act_first"].any() else v.iloc[-1]
    said = describe_value(v, cx_label="NPS", business_label="revenue growth", causal=True)
    assert said["driver"] == row["driver"] and said["column"] == "money"
    assert said["value"] == pytest.approx(row["money"])
    text = said["text"]
    assert f"about {format_money(row['money'], currency='EUR')} in revenue over 2 years" in text
    assert "if the link is causal" not in text
    assert f"At a cost of {format_money(row['cost'], currency='EUR')}, the net value is " \
           f"{format_money(row['net'], currency='EUR')}" in text
    if np.isfinite(row["break_even_years"]):
        assert text.endswith(f"; it breaks even after {row['break_even_years']:.1f} years.")
    plain = value_chain(units, **kw)
    said = describe_value(plain, cx_label="NPS", business_label="revenue growth")
    prow = plain[plain["driver"] == said["driver"]].iloc[0]
    assert said["column"] == "delta_business"
    assert (f"{prow['delta_business']:+.2f} on revenue growth (95% CI "
            f"{prow['delta_business_low']:.2f} to {prow['delta_business_high']:.2f}) "
            "if the link is causal.") in said["text"]
