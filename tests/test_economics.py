"""Tests for exresearch.economics: values by hand (numpy.polyfit), bootstrap, projection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exresearch import ParameterError
from exresearch.economics import (
    chained_effect,
    investment_table,
    plot_projection,
    project_loop,
    quartile_utility,
)


@pytest.fixture
def panel(rng):
    """40 units x 2 periods with a planted chain driver -> nps -> growth."""
    n = 40
    ex = rng.normal(3.8, 0.4, n)
    tools = rng.normal(3.4, 0.6, n)
    nps = 20 + 12 * (ex - 3.8) + 3 * (tools - 3.4) + rng.normal(0, 3, n)
    growth = 2 + 0.08 * (nps - 20) + rng.normal(0, 0.4, n)
    base = pd.DataFrame({"unit_id": [f"u{i:02d}" for i in range(n)], "recognition": ex,
                         "tools": tools, "nps": nps, "growth": growth})
    # two periods whose mean is the base values (+/- a constant), so unit means = base
    p1 = base.assign(period="2024", nps=base["nps"] + 1.0)
    p2 = base.assign(period="2025", nps=base["nps"] - 1.0)
    return pd.concat([p1, p2], ignore_index=True), base


# ------------------------------------------------------------------ quartile utility
def test_quartile_utility_by_hand(panel):
    data, base = panel
    res = quartile_utility(data, x="recognition", y=["nps", "growth"], n_boot=0)
    assert res["y"].tolist() == ["nps", "growth"]
    x = base["recognition"].to_numpy()
    q1, q3 = np.quantile(x, [0.25, 0.75])
    for _, row in res.iterrows():
        y = base[row["y"]].to_numpy()
        top, bot = y[x >= q3].mean(), y[x <= q1].mean()
        assert row["n_units"] == 40 and row["n_top"] == 10 and row["n_bottom"] == 10
        assert row["mean_top"] == pytest.approx(top)
        assert row["mean_bottom"] == pytest.approx(bot)
        assert row["diff"] == pytest.approx(top - bot)
        assert row["pct_diff"] == pytest.approx(100 * (top - bot) / abs(bot))
        assert np.isnan(row["diff_ci_low"])  # n_boot=0


def test_quartile_utility_bootstrap_resamples_units(panel):
    data, base = panel
    res = quartile_utility(data, x="recognition", y="growth", n_boot=300, seed=7).iloc[0]
    again = quartile_utility(data, x="recognition", y="growth", n_boot=300, seed=7).iloc[0]
    other = quartile_utility(data, x="recognition", y="growth", n_boot=300, seed=8).iloc[0]
    assert res["diff_ci_low"] == again["diff_ci_low"] and res["pct_ci_high"] == again["pct_ci_high"]
    assert res["diff_ci_low"] != other["diff_ci_low"]
    # replicate by hand: units (sorted by id) resampled with the same generator
    rng = np.random.default_rng(7)
    b = base.sort_values("unit_id")
    x, y = b["recognition"].to_numpy(), b["growth"].to_numpy()
    idx = rng.integers(0, 40, size=(300, 40))
    diffs = []
    for i in idx:
        xb, yb = x[i], y[i]
        q1, q3 = np.quantile(xb, [0.25, 0.75])
        diffs.append(yb[xb >= q3].mean() - yb[xb <= q1].mean())
    assert res["diff_ci_low"] == pytest.approx(np.quantile(diffs, 0.025))
    assert res["diff_ci_high"] == pytest.approx(np.quantile(diffs, 0.975))
    assert res["diff_ci_low"] < res["diff"] < res["diff_ci_high"]


def test_quartile_utility_too_few_units_nan_row():
    d = pd.DataFrame({"unit_id": list("abcdefg"), "x": np.arange(7.0), "y": np.arange(7.0)})
    with pytest.warns(UserWarning, match=r"7 complete units, at least 8 are needed"):
        res = quartile_utility(d, x="x", y="y", seed=1)
    assert res.loc[0, "n_units"] == 7 and np.isnan(res.loc[0, "diff"])


# ------------------------------------------------------------------ chained effect
@pytest.mark.parametrize("improvement", ["1sd", "1point", "top_quartile", 0.25])
def test_chained_effect_follows_regressions_by_hand(panel, improvement):
    data, base = panel
    revenue = 12_500_000.0
    res = chained_effect(data, driver="recognition", cx="nps", business="growth",
                         improvement=improvement, revenue=revenue, n_boot=0)
    est = res.set_index("quantity")["estimate"]
    x, c, g = (base[k].to_numpy() for k in ("recognition", "nps", "growth"))
    a = np.polyfit(x, c, 1)[0]
    b = np.polyfit(c, g, 1)[0]
    delta = {"1sd": np.std(x, ddof=1), "1point": 1.0,
             "top_quartile": np.mean(np.maximum(0, np.quantile(x, 0.75) - x)),
             0.25: 0.25}[improvement]
    assert est["a"] == pytest.approx(a, rel=1e-10)
    assert est["b"] == pytest.approx(b, rel=1e-10)
    assert est["improvement"] == pytest.approx(delta)
    assert est["delta_cx"] == pytest.approx(delta * a)
    assert est["delta_business"] == pytest.approx(delta * a * b)
    assert est["money"] == pytest.approx(revenue * delta * a * b / 100)
    assert res["quantity"].tolist() == ["improvement", "a", "b", "delta_cx",
                                        "delta_business", "money"]
    assert set(res["n_units"]) == {40}


def test_chained_effect_small_case_exact():
    """Three units on a line: a = 2, b = 0.5; +1 point -> +2 NPS -> +1 pp growth."""
    d = pd.DataFrame({"unit_id": ["a", "b", "c"], "ex": [3.0, 4.0, 5.0],
                      "nps": [10.0, 12.0, 14.0], "growth": [1.0, 2.0, 3.0]})
    res = chained_effect(d, driver="ex", cx="nps", business="growth", improvement="1point",
                         revenue=1_000_000, n_boot=0).set_index("quantity")["estimate"]
    assert res["a"] == pytest.approx(2.0) and res["b"] == pytest.approx(0.5)
    assert res["delta_business"] == pytest.approx(1.0)
    assert res["money"] == pytest.approx(10_000.0)  # 1 pp of 1,000,000


def test_chained_effect_bootstrap_reproducible_and_by_hand(panel):
    data, base = panel
    kw = dict(driver="recognition", cx="nps", business="growth", improvement="1sd",
              revenue=1e6, n_boot=200)
    r1 = chained_effect(data, seed=11, **kw)
    r2 = chained_effect(data, seed=11, **kw)
    r3 = chained_effect(data, seed=12, **kw)
    pd.testing.assert_frame_equal(r1, r2)
    assert not np.allclose(r1["ci_low"], r3["ci_low"])
    b = base.sort_values("unit_id")
    x, c, g = (b[k].to_numpy() for k in ("recognition", "nps", "growth"))
    idx = np.random.default_rng(11).integers(0, 40, size=(200, 40))
    money = [1e6 * np.std(x[i], ddof=1) * np.polyfit(x[i], c[i], 1)[0]
             * np.polyfit(c[i], g[i], 1)[0] / 100 for i in idx]
    row = r1.set_index("quantity").loc["money"]
    assert row["ci_low"] == pytest.approx(np.quantile(money, 0.025))
    assert row["ci_high"] == pytest.approx(np.quantile(money, 0.975))
    assert row["ci_low"] < row["estimate"] < row["ci_high"]


def test_chained_effect_errors(panel):
    data, _ = panel
    with pytest.raises(ParameterError, match=r"`improvement` must be one of \['1sd', '1point', "
                                             r"'top_quartile'\] or a number .* but '2sd' was"):
        chained_effect(data, driver="recognition", cx="nps", business="growth",
                       improvement="2sd")
    with pytest.raises(ParameterError, match=r"`revenue` must be a positive number or None, "
                                             r"but -5 was passed"):
        chained_effect(data, driver="recognition", cx="nps", business="growth", revenue=-5)
    with pytest.raises(ParameterError, match=r"column for `cx` must be one of .* but 'csat'"):
        chained_effect(data, driver="recognition", cx="csat", business="growth")
    with pytest.raises(ParameterError, match=r"`n_boot` must be a non-negative integer, but "
                                             r"-1 was passed"):
        chained_effect(data, driver="recognition", cx="nps", business="growth", n_boot=-1)


# ------------------------------------------------------------------ investment table
def test_investment_table_ranks_drivers(panel):
    data, _ = panel
    tab = investment_table(data, drivers=["tools", "recognition"], cx="nps",
                           business="growth", revenue=2e6, n_boot=100, seed=3)
    assert tab["rank"].tolist() == [1, 2]
    assert tab["delta_business"].is_monotonic_decreasing
    for _, row in tab.iterrows():
        ce = chained_effect(data, driver=row["driver"], cx="nps", business="growth",
                            improvement="top_quartile", revenue=2e6, n_boot=100,
                            seed=3).set_index("quantity")
        assert row["money"] == pytest.approx(ce.loc["money", "estimate"])
        assert row["money_ci_low"] == pytest.approx(ce.loc["money", "ci_low"])
        assert row["improvement"] == pytest.approx(ce.loc["improvement", "estimate"])
    assert list(tab.columns)[:3] == ["rank", "driver", "n_units"]


# ------------------------------------------------------------------ projection
def _hand_iterate(ex_to_cx, cx_to_ex, ex_ar, cx_ar, ex, cx, periods):
    path = [(ex, cx)]
    for _ in range(periods):
        ex, cx = ex_ar * ex + cx_to_ex * cx, ex_to_cx * ex + cx_ar * cx
        path.append((ex, cx))
    return np.array(path)


def test_project_loop_matches_hand_recursion():
    coefs = dict(ex_to_cx=0.25, cx_to_ex=0.15, ex_ar=0.7, cx_ar=0.6)
    p = project_loop(**coefs, shock_ex=0.5, shock_cx=0.2, periods=8)
    hand = _hand_iterate(**coefs, ex=0.5, cx=0.2, periods=8)
    inter = p[p["scenario"] == "intervention"]
    np.testing.assert_allclose(inter.loc[inter.variable == "ex", "value"], hand[:, 0])
    np.testing.assert_allclose(inter.loc[inter.variable == "cx", "value"], hand[:, 1])
    dec = p[p["scenario"] == "decline"]
    np.testing.assert_allclose(dec.loc[dec.variable == "ex", "value"], -hand[:, 0])
    assert p["period"].max() == 8 and len(p) == 2 * 2 * 9
    np.testing.assert_allclose(p["multiplier"], hand[-1, 0] / 0.5)
    assert set(p["label"]) == {"fades"}
    assert p["low"].isna().all()  # no SEs -> no band
    A = np.array([[0.7, 0.15], [0.25, 0.6]])
    assert p["spectral_radius"].iloc[0] == pytest.approx(max(abs(np.linalg.eigvals(A))))


def test_project_loop_amplified_and_doom_loop():
    p = project_loop(ex_to_cx=0.3, cx_to_ex=0.3, ex_ar=0.85, cx_ar=0.85, periods=6)
    labels = p.groupby("scenario", sort=False)["label"].first()
    assert labels["intervention"] == "amplified"
    assert labels["decline"] == "amplified (doom loop)"
    dec_ex = p[(p.scenario == "decline") & (p.variable == "ex")]["value"]
    assert dec_ex.iloc[-1] < -1.0


def test_project_loop_band_from_seeded_draws():
    kw = dict(ex_to_cx=(0.25, 0.05), cx_to_ex=(0.15, 0.05), ex_ar=(0.7, 0.03),
              cx_ar=(0.6, 0.03), periods=5, draws=500)
    p1 = project_loop(**kw, seed=1)
    p2 = project_loop(**kw, seed=1)
    p3 = project_loop(**kw, seed=2)
    pd.testing.assert_frame_equal(p1, p2)
    assert not np.allclose(p1["low"].iloc[1:6], p3["low"].iloc[1:6])
    # by hand: the same draws, iterated, then percentiles
    rng = np.random.default_rng(1)
    draws = {k: rng.normal(v[0], v[1], 500) for k, v in
             (("ex_to_cx", kw["ex_to_cx"]), ("cx_to_ex", kw["cx_to_ex"]),
              ("ex_ar", kw["ex_ar"]), ("cx_ar", kw["cx_ar"]))}
    ends = np.array([_hand_iterate(draws["ex_to_cx"][i], draws["cx_to_ex"][i],
                                   draws["ex_ar"][i], draws["cx_ar"][i], 1.0, 0.0, 5)[-1, 0]
                     for i in range(500)])
    last = p1[(p1.scenario == "intervention") & (p1.variable == "ex")].iloc[-1]
    assert last["low"] == pytest.approx(np.quantile(ends, 0.05))
    assert last["high"] == pytest.approx(np.quantile(ends, 0.95))
    assert last["p_amplified"] == pytest.approx(np.mean(ends > 1))
    assert (p1["low"] <= p1["value"] + 1e-12).all() and (p1["value"] <= p1["high"] + 1e-12).all()


def test_project_loop_errors():
    with pytest.raises(ParameterError, match=r"`ex_ar` must be a number or an \(estimate, "
                                             r"standard error\) pair, but 'high' was passed"):
        project_loop(ex_to_cx=0.2, cx_to_ex=0.2, ex_ar="high", cx_ar=0.5)
    with pytest.raises(ParameterError, match=r"`periods` must be a positive integer, but 0"):
        project_loop(ex_to_cx=0.2, cx_to_ex=0.2, ex_ar=0.5, cx_ar=0.5, periods=0)
    with pytest.raises(ParameterError, match=r"`shock_ex` must be positive .* but -1.0 was"):
        project_loop(ex_to_cx=0.2, cx_to_ex=0.2, ex_ar=0.5, cx_ar=0.5, shock_ex=-1.0)


def test_plot_projection_artists():
    import matplotlib.pyplot as plt

    p = project_loop(ex_to_cx=(0.25, 0.05), cx_to_ex=(0.15, 0.05), ex_ar=0.7, cx_ar=0.6,
                     seed=3, draws=200)
    ax = plot_projection(p)
    lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    assert sorted(lines) == ["decline: CX", "decline: EX", "intervention: CX",
                             "intervention: EX"]
    ex = p[(p.scenario == "intervention") & (p.variable == "ex")]
    np.testing.assert_allclose(lines["intervention: EX"].get_ydata(), ex["value"])
    assert len(ax.collections) == 4  # one band per line
    # the title says what is shown; what each scenario does is in the legend
    assert ax.get_title() == "After a one-off change of 1 SD in employee experience"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["a rise (fades): EX", "a rise (fades): CX", "a fall (fades): EX",
                      "a fall (fades): CX"]
    plt.close(ax.figure)
    with pytest.raises(ParameterError, match="`projection` must be the DataFrame returned"):
        plot_projection(pd.DataFrame({"a": [1]}))
