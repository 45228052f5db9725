"""Tests for exresearch.synthesis and exresearch.plots.synthesis (the synthesis' sections)."""

from __future__ import annotations

import doctest
import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from exresearch import ParameterError, synthesis
from exresearch.meta import meta_analysis, pool_estimates
from exresearch.plots import synthesis as plots_meta
from exresearch.power import power_analytic


@pytest.fixture(scope="module")
def small(small_study):
    from exresearch import report
    from exresearch.study import load_study

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = load_study(small_study)
        roles = report.measure_roles(study.config)
        panels = {c: report.client_panel(study, c, roles) for c in study.clients}
        means = report.all_unit_means(study, roles, panels=panels)
    names = report.display_names(study)
    return study, roles, panels, means, names


@pytest.mark.parametrize("module", [synthesis, plots_meta])
def test_doctests(module):
    res = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 0
    plt.close("all")


def test_study_characteristics_merges_small_industries(small):
    study, roles, panels, _, _ = small
    t1 = synthesis.study_characteristics(study, panels=panels, roles=roles)
    total = t1.iloc[-1]
    groups = t1.iloc[:-1]
    assert total["industry"] == "All organisations" and total["organisations"] == 5
    assert (groups["organisations"] >= 3).all()  # 5 clients in 5 industries -> one group
    assert groups["organisations"].sum() == 5
    shown = sum(int((~p["suppressed"]).sum()) for p in panels.values())
    assert total["unit_periods"] == shown
    assert total["respondents"] == sum(int(p.loc[~p["suppressed"], "n_respondents"].sum())
                                       for p in panels.values())
    named = synthesis.study_characteristics(study, panels=panels, roles=roles, publish_names=True)
    assert len(named) == 1 + len({study.config.client(c).industry for c in study.clients})


def test_inclusion_account_adds_up(small):
    _, roles, panels, means, names = small
    acc = synthesis.inclusion_account(panels, roles=roles, names=names)
    assert acc.iloc[0].to_dict()["level"] == "clients"
    body = acc.iloc[1:]
    assert (body["available"] == body["suppressed"] + body["excluded"] + body["included"]).all()
    units = body[body["level"] == "units"].set_index("client")["included"]
    corr_n = means.dropna(subset=[roles.ex, roles.primary_cx]).groupby("client_id").size()
    assert units.tolist() == [int(corr_n[c]) for c in panels]
    up = body[body["level"] == "unit-periods"]
    assert (up["suppressed"] > 0).any()
    assert up.loc[up["suppressed"] > 0, "reason"].str.contains(
        "below the minimum group size|without survey answers").all()


def test_composite_is_mean_of_signed_z():
    m = pd.DataFrame({"client_id": ["a"] * 4 + ["b"] * 4,
                      "nps": [1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 20.0, 20.0],
                      "turnover": [4.0, 3.0, 2.0, np.nan, 5.0, 6.0, 5.0, 6.0]})
    out = synthesis.add_composite(m, outcomes=["nps", "turnover"],
                                  higher_is_better={"turnover": False})
    a = out[out["client_id"] == "a"]
    z_nps = (a["nps"] - 2.5) / a["nps"].std()
    z_to = -(a["turnover"] - 3.0) / 1.0
    assert out.loc[0, "composite"] == pytest.approx((z_nps.iloc[0] + z_to.iloc[0]) / 2)
    assert out.loc[3, "composite"] == pytest.approx(z_nps.iloc[3])  # one of two outcomes
    strict = synthesis.add_composite(m, outcomes=["nps", "turnover"],
                                     higher_is_better={"turnover": False}, min_share=1.0)
    assert np.isnan(strict.loc[3, "composite"])


def test_reliabilities_and_icc2(small):
    study, roles, panels, _, names = small
    rel = synthesis.reliabilities(study, panels=panels, roles=roles, names=names)
    ex = rel[(rel["side"] == "ex") & (rel["measure"] == roles.ex)]
    assert len(ex) == 5 and ex["reliability"].between(0, 1).all()
    out = rel[rel["side"] == "outcome"]
    assert set(out["measure"]) == {*roles.outcomes, synthesis.COMPOSITE}
    nps = out[out["measure"] == "nps"]
    assert nps["source"].str.startswith("test-retest, 2 period pair").all()
    icc2 = synthesis.icc2_table(study, panels=panels, roles=roles, names=names)
    merged = icc2.set_index("client")["icc2_all_periods"]
    assert merged.to_numpy() == pytest.approx(ex.set_index("client")["reliability"].to_numpy())
    # the mean over all periods rests on more answers than one period's mean
    assert (icc2["icc2_all_periods"] >= icc2["icc2_period_min"]).all()
    assert (icc2["respondents_per_unit"] > icc2["respondents_per_unit_period"]).all()


def test_reliability_from_study_yml_wins(small):
    import dataclasses

    study, roles, panels, _, names = small
    cfg = study.config
    outs = dict(cfg.outcomes)
    outs["nps"] = dataclasses.replace(outs["nps"], reliability=0.6)
    fake = type("S", (), {})()
    fake.config = dataclasses.replace(cfg, outcomes=outs, reference_sd={roles.ex: 0.01})
    fake.survey = study.survey
    rel = synthesis.reliabilities(fake, panels=panels, roles=roles, names=names)
    nps = rel[rel["measure"] == "nps"]
    assert (nps["reliability"] == 0.6).all() and (nps["source"] == "study.yml").all()
    ex = rel[rel["measure"] == roles.ex]
    assert (ex["ux"] == 1.0).all()  # capped: the clients spread more than the reference


def test_psychometric_table_every_pair_and_side_by_side():
    rng = np.random.default_rng(4)
    rows, rel = [], []
    for i in range(6):
        for x in ("ex", "eng"):
            for y in ("nps", "growth"):
                rows.append({"client": f"C{i}", "x": x, "y": y, "n": 30 + i,
                             "r": float(np.tanh(0.3 + rng.normal(0, 0.1)))})
        rel += [{"client": f"C{i}", "measure": m, "reliability": v, "ux": np.nan}
                for m, v in (("ex", 0.8), ("eng", 0.7), ("nps", 0.9), ("growth", 0.6))]
    pc = pd.DataFrame(rows)
    tab = synthesis.psychometric_table(pc, reliab=pd.DataFrame(rel))
    assert len(tab) == 4 and tab["k"].eq(6).all()
    row = tab[(tab["x"] == "eng") & (tab["y"] == "growth")].iloc[0]
    assert row["mean_rho"] == pytest.approx(row["mean_r"] / math.sqrt(0.7 * 0.6), rel=1e-9)
    assert row["corrected_for"] == "unreliability of eng, unreliability of growth"
    re = meta_analysis(pc[(pc["x"] == "eng") & (pc["y"] == "growth")])
    assert row["re_estimate"] == pytest.approx(re["estimate"])
    assert row["re_pi_low"] == pytest.approx(re["pi_low"])
    named = synthesis.psychometric_table(pc, reliab=pd.DataFrame(rel), labels={"eng": "Engagement"})
    assert named["corrected_for"].iloc[2] == "unreliability of Engagement, unreliability of nps"
    bare = synthesis.psychometric_table(pc)
    assert (bare["mean_rho"] == bare["mean_r"]).all() and (bare["corrected_for"] == "nothing").all()
    side = synthesis.pooling_comparison(row, method="REML")
    assert side["mean"].tolist() == [row["mean_r"], row["mean_rho"], row["re_estimate"]]
    assert side.loc[2, "spread"] == pytest.approx(math.sqrt(row["re_tau2"]))
    text = synthesis.describe_hs_vs_reml(row)
    assert "80% credibility interval" in text and "95% prediction interval" in text
    assert "With 6 clients it is also too narrow" in text  # measured: validity/psychometric.py
    assert "too narrow" not in synthesis.describe_hs_vs_reml({**row.to_dict(), "k": 40.0})


def test_pool_paths_is_meta_analysis_not_vote_count():
    d = pd.DataFrame({"path": ["a"] * 4 + ["b"] * 4, "source": ["x"] * 4 + ["y"] * 4,
                      "estimate": [0.2, 0.1, 0.3, 0.15, 0.0, 0.05, -0.02, 0.01],
                      "se": [0.1, 0.12, 0.09, 0.11, 0.05, 0.06, 0.05, 0.07]})
    res = synthesis.pool_paths(d, method="REML")
    assert res["path"].tolist() == ["a", "b"] and res["k"].tolist() == [4, 4]
    ref = pool_estimates(d[d["path"] == "a"], method="REML")
    for col in ("estimate", "se", "tau2", "i2", "pi_low", "pi_high"):
        assert res.loc[0, col] == pytest.approx(ref[col])
    assert res.loc[0, "tau"] == pytest.approx(math.sqrt(ref["tau2"]))
    with pytest.raises(ParameterError, match="`keys` must name columns"):
        synthesis.pool_paths(d.drop(columns=["path", "source"]))


def test_within_paths_by_client(small):
    study, roles, panels, _, names = small
    res = synthesis.within_paths_by_client(panels, x=roles.ex, y=roles.primary_cx,
                                           periods=study.config.periods, names=names)
    assert set(res["client"]) == set(names.values())
    assert {"cross-lagged", "autoregressive"} <= set(res["kind"])


def test_study_utility_matches_hand_values():
    rng = np.random.default_rng(9)
    frames = []
    for c in "abcd":
        e = rng.normal(size=40)
        frames.append(pd.DataFrame({"client_id": c, "ex": e, "y": 5 * e + rng.normal(0, 5, 40)}))
    means = pd.concat(frames, ignore_index=True)
    res = synthesis.study_utility(means, x="ex", outcomes=["y"], method="FE").set_index("measure")
    est, ses = [], []
    for _, g in means.groupby("client_id"):
        r = np.corrcoef(g["ex"], g["y"])[0, 1]
        sd = g["y"].std()
        est.append(r * sd)
        ses.append(sd * (1 - r**2) / math.sqrt(len(g) - 1))
    w = 1 / np.square(ses)
    assert res.loc["bcg_per_sd", "estimate"] == pytest.approx(np.sum(w * est) / w.sum())
    assert res.loc["quartile_diff", "estimate"] > 0
    assert res.loc["odds_above_median", "estimate"] > 1
    assert (res["k"] == 4).all()


def test_minimum_detectable_r_has_the_power():
    r = synthesis.minimum_detectable_r(n_clients=8, n_units=25, tau=0.1)
    assert power_analytic(r=r, n_clients=8, n_units=25, tau=0.1) == pytest.approx(0.8, abs=1e-8)
    assert synthesis.minimum_detectable_r(n_clients=20, n_units=25) < r
    with pytest.raises(ParameterError, match="`power` must lie in \\(0, 1\\), but 80"):
        synthesis.minimum_detectable_r(n_clients=8, n_units=25, power=80)


def test_forest_table_draws_weights_and_numbers():
    d = pd.DataFrame({"client": list("abcd"), "r": [0.1, 0.5, 0.3, 0.2], "n": [20, 200, 50, 80]})
    ax = plots_meta.plot_forest_table(d, method="REML")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[1:] == ["b", "c", "d", "a"]  # sorted by r
    squares = next(c for c in ax.collections if c.get_gid() == "square")
    rows = plots_meta.forest_rows(d, method="REML")
    assert squares.get_sizes() == pytest.approx(220 * rows["weight"] / rows["weight"].max())
    texts = [t.get_text() for t in ax.texts]
    assert {"r", "95% CI", "Units", "Weight"} <= set(texts)
    assert f"{rows['weight'].iloc[0]:.1f}%" in texts and "350" in texts
    assert any(t.startswith("95% prediction interval") for t in texts)
    assert rows["weight"].sum() == pytest.approx(100)
    plt.close("all")
    with pytest.raises(ParameterError, match="at least 2 clients, but 1"):
        plots_meta.plot_forest_table(d.iloc[:1])


def test_forest_panels_title_is_laid_out_with_the_panels():
    pc = pd.DataFrame({"client": list("abc") * 2, "x": "ex", "y": ["nps"] * 3 + ["growth"] * 3,
                       "r": [0.2, 0.4, 0.3, 0.1, 0.0, 0.2], "n": [50, 30, 100] * 2})
    fig = plots_meta.plot_forest_panels(pc, x="ex", ys=["nps", "growth"],
                                        title="Engagement and each outcome")
    assert fig._suptitle.get_text() == "Engagement and each outcome"
    # laid out once, with the title: the same layout as a second tight_layout gives
    params = fig.subplotpars.top, fig.subplotpars.left, fig.subplotpars.hspace
    fig.tight_layout()
    assert (fig.subplotpars.top, fig.subplotpars.left, fig.subplotpars.hspace) == \
        pytest.approx(params)
    untitled = plots_meta.plot_forest_panels(pc, x="ex", ys=["nps", "growth"])
    assert untitled._suptitle is None
    assert untitled.subplotpars.top > fig.subplotpars.top  # the title took room
    plt.close("all")


def test_client_characteristics_for_moderators(small):
    from exresearch.moderators import client_characteristics

    study, roles, panels, _, names = small
    ch = client_characteristics(study, panels=panels, names=names)
    assert list(ch.columns) == ["client", "industry_group", "revenue", "headcount", "units",
                                "log_revenue", "log_headcount"]
    assert "industry" not in ch.columns  # the original industry could single out a client
    assert ch.groupby("industry_group").size().min() >= 3
    cid = study.clients[0]
    p = panels[cid]
    last = p[p["period"] == study.config.periods[-1]]
    expected = float(last["headcount"].sum()) if "headcount" in p.columns \
        else float(last["n_respondents"].sum())
    assert ch.loc[0, "headcount"] == expected
    assert ch.loc[0, "log_revenue"] == pytest.approx(math.log(study.config.client(cid).revenue))
    assert ch.loc[0, "units"] == p.loc[~p["suppressed"], "unit_id"].nunique()


def _many_clients(k, *, seed=7):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"client": [f"Client {i:03d}" for i in range(k)],
                         "r": np.clip(rng.normal(0.3, 0.15, k), -0.9, 0.9),
                         "n": rng.integers(12, 60, k)})


def test_forest_table_is_a_caterpillar_beyond_max_rows():
    d = _many_clients(plots_meta.FOREST_MAX_ROWS + 1)
    res = meta_analysis(d, method="REML")
    ax = plots_meta.plot_forest_table(d, method="REML", title="EX and NPS")
    # compact: no name and no numbers per client, one collection each for intervals and dots
    assert [t.get_text() for t in ax.get_yticklabels()] == []
    assert len(ax.texts) == 0
    assert ax.get_ylabel() == f"{len(d)} clients, sorted by estimate"
    gids = {c.get_gid(): c for c in ax.collections}
    rows = plots_meta.forest_rows(d, result=res)
    dots = np.asarray(gids["estimates"].get_offsets())
    assert dots[:, 0].tolist() == pytest.approx(np.sort(d["r"].to_numpy()).tolist())  # sorted
    assert dots[:, 1].tolist() == list(range(1, len(d) + 1))
    segs = gids["intervals"].get_segments()
    lows = sorted(s[0][0] for s in segs)
    assert lows == pytest.approx(sorted(rows["ci_low"]))
    # the pooled estimate, its CI and prediction interval, with their values
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"95% prediction interval {res['pi_low']:.2f} to {res['pi_high']:.2f}",
                      f"95% CI {res['ci_low']:.2f} to {res['ci_high']:.2f}",
                      f"pooled {res['estimate']:.2f}"]
    line = next(ln for ln in ax.lines if ln.get_label().startswith("pooled"))
    assert line.get_xdata()[0] == pytest.approx(res["estimate"])
    # the figure does not grow with the number of clients
    big = plots_meta.plot_forest_table(_many_clients(300), method="REML")
    assert tuple(big.figure.get_size_inches()) == tuple(ax.figure.get_size_inches())
    plt.close("all")


def test_forest_table_row_by_row_up_to_max_rows():
    d = _many_clients(plots_meta.FOREST_MAX_ROWS)
    ax = plots_meta.plot_forest_table(d, method="REML")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "Pooled (REML)" and len(labels) == len(d) + 1
    assert "Weight" in [t.get_text() for t in ax.texts]
    assert {c.get_gid() for c in ax.collections} >= {"square"}
    # the threshold is a parameter: 41 clients row by row when asked, 5 compact
    many = _many_clients(41)
    ax = plots_meta.plot_forest_table(many, method="REML", max_rows=41)
    assert len(ax.get_yticklabels()) == 42
    ax = plots_meta.plot_forest_table(many.iloc[:5], method="REML", max_rows=4)
    assert [t.get_text() for t in ax.get_yticklabels()] == []
    plt.close("all")
    for bad in (0, 2.5, "40", True):
        with pytest.raises(ParameterError, match=f"`max_rows` must be a whole number of at "
                           f"least 1 .*but {bad!r} was passed"):
            plots_meta.plot_forest_table(d, max_rows=bad)


def test_forest_panels_compact_and_pooled_once():
    from exresearch.meta import pool_correlations

    frames = [_many_clients(60, seed=s).assign(x="ex", y=y)
              for s, y in enumerate(["nps", "growth"])]
    pc = pd.concat([*frames, frames[0].iloc[:5].assign(y="few")], ignore_index=True)
    pooled = pool_correlations(pc, by=["x", "y"]).set_index(["x", "y"])
    results = {y: pooled.loc[("ex", y)] for y in ["nps", "growth", "few"]}
    fig = plots_meta.plot_forest_panels(pc, x="ex", ys=["nps", "growth", "few"],
                                        results=results, ncols=3)
    nps, growth, few = fig.axes
    for ax, y in ((nps, "nps"), (growth, "growth")):  # 60 clients: compact panels
        assert [t.get_text() for t in ax.get_yticklabels()] == []
        assert ax.get_ylabel() == f"60 clients, sorted; pooled r = {results[y]['estimate']:.2f}"
        line = next(ln for ln in ax.lines if ln.get_label().startswith("pooled"))
        assert line.get_xdata()[0] == pytest.approx(results[y]["estimate"])
    # 5 clients: row by row, the same pooled value as pooling here would give
    labels = [t.get_text() for t in few.get_yticklabels()]
    own = meta_analysis(frames[0].iloc[:5])
    assert labels[0] == f"Pooled r = {own['estimate']:.2f}" and len(labels) == 6
    assert results["few"]["estimate"] == pytest.approx(own["estimate"])
    # a caterpillar panel keeps a fixed height
    assert fig.get_size_inches()[1] == pytest.approx(3.4)
    plt.close("all")


def test_caterpillar_without_pool_and_with_bad_columns():
    d = pd.DataFrame({"diff": [3.0, -1.0, 2.0], "lo": [1.0, -2.0, 0.5], "hi": [5.0, 0.0, 3.5]})
    ax = plots_meta.plot_caterpillar(d, value="diff", low="lo", high="hi",
                                     what="organisations")
    assert ax.get_legend() is None and ax.get_ylabel() == "3 organisations, sorted by estimate"
    assert np.asarray(ax.collections[1].get_offsets())[:, 0].tolist() == [-1.0, 2.0, 3.0]
    plt.close("all")
    with pytest.raises(ParameterError, match="diff_ci_low"):
        plots_meta.plot_caterpillar(d, value="diff", low="diff_ci_low", high="hi")


def _study_utility_terms_pandas(means, *, x, y, client, hib, min_units=8):
    """Per-client utility terms with pandas, one group at a time: the reference the
    numpy version of study_utility must match (the implementation it replaced)."""
    per = {"bcg_per_sd": [], "quartile_diff": [], "odds_above_median": []}
    for _, g in means.groupby(client, sort=False):
        u = g[[x, y]].dropna()
        if len(u) < min_units or u[x].std() == 0 or u[y].std() == 0:
            continue
        n, r, sdy = len(u), float(np.corrcoef(u[x], u[y])[0, 1]), float(u[y].std())
        per["bcg_per_sd"].append((r * sdy, sdy * (1 - r**2) / math.sqrt(n - 1)))
        q1, q3 = u[x].quantile([0.25, 0.75])
        top, bot = u.loc[u[x] >= q3, y], u.loc[u[x] <= q1, y]
        if len(top) >= 2 and len(bot) >= 2:
            per["quartile_diff"].append((float(top.mean() - bot.mean()),
                                         math.sqrt(top.var() / len(top) + bot.var() / len(bot))))
            med, sign = u[y].median(), 1.0 if hib else -1.0
            tb, bb = (sign * (top - med)) > 0, (sign * (bot - med)) > 0
            a, b = tb.sum() + 0.5, (~tb).sum() + 0.5
            c, d = bb.sum() + 0.5, (~bb).sum() + 0.5
            per["odds_above_median"].append((math.log(a * d / (b * c)),
                                             math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)))
    return per


def test_study_utility_per_client_terms_match_pandas_reference(rng):
    frames = []
    for i in range(40):
        n = 5 if i == 3 else 30  # client 3: too few units
        e = rng.normal(size=n)
        frames.append(pd.DataFrame({"client_id": f"c{i:02d}",
                                    "ex": np.zeros(n) if i == 5 else e,  # client 5: constant
                                    "nps": 10 * e + rng.normal(0, 10, n),
                                    "turnover": -2 * e + rng.normal(0, 3, n)}))
    means = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=1)
    means.loc[means.index[:25], "nps"] = np.nan  # missing outcomes here and there
    hib = {"nps": True, "turnover": False}
    res = synthesis.study_utility(means, x="ex", outcomes=["nps", "turnover"], method="REML",
                                  higher_is_better=hib)
    for y in ("nps", "turnover"):
        ref = _study_utility_terms_pandas(means, x="ex", y=y, client="client_id", hib=hib[y])
        for measure, vals in ref.items():
            pooled = pool_estimates(pd.DataFrame(vals, columns=["estimate", "se"]),
                                    method="REML")
            row = res[(res["y"] == y) & (res["measure"] == measure)].iloc[0]
            expect = pooled["estimate"]
            if measure == "odds_above_median":
                expect = math.exp(expect)
            assert row["k"] == len(vals) == 38  # clients 3 and 5 left out
            assert row["estimate"] == pytest.approx(expect, rel=1e-12)
            assert row["i2"] == pytest.approx(pooled["i2"], rel=1e-9, abs=1e-12)


# ---- the per-client loops of Table 1, the inclusion account and the psychometric table,
# against the pandas code they replaced (kept here as the reference)

def _study_characteristics_pandas(study, *, panels, roles, min_clients=3):
    from exresearch.moderators import merge_groups

    cfg = study.config
    ind = pd.DataFrame({"client": list(panels),
                        "industry": [cfg.client(c).industry for c in panels]})
    m = merge_groups(ind, group="industry", min_clients=min_clients)
    ind["group"] = ind["industry"].fillna("unknown").map(dict(zip(m["group"], m["merged"],
                                                                  strict=True)))

    def summarise(label, clients):
        units = respondents = unit_periods = 0
        periods, outs = set(), {o: 0 for o in roles.outcomes}
        for c in clients:
            p = panels[c]
            shown = p[~p["suppressed"].astype(bool)]
            units += shown["unit_id"].nunique()
            respondents += int(shown["n_respondents"].sum())
            unit_periods += len(shown)
            periods |= set(shown["period"].astype(str))
            for o in roles.outcomes:
                if o in p.columns and p[o].notna().any():
                    outs[o] += 1
        return {"industry": label, "organisations": len(clients), "units": units,
                "respondents": respondents, "unit_periods": unit_periods,
                "periods": len(periods),
                "outcomes": "; ".join(f"{roles.label(o)} ({k})" for o, k in outs.items() if k)}

    rows = [summarise(g, sub["client"].tolist()) for g, sub in ind.groupby("group", sort=True)]
    rows.append(summarise("All organisations", ind["client"].tolist()))
    return pd.DataFrame(rows)


def _inclusion_account_pandas(panels, *, roles, names, min_units=4):
    x, y = roles.ex, roles.primary_cx
    rows, n_excluded_clients, reasons = [], 0, []
    for c, p in panels.items():
        sup = p["suppressed"].astype(bool)
        has_x = p[x].notna() if x in p.columns else pd.Series(False, index=p.index)
        has_y = p[y].notna() if y in p.columns else pd.Series(False, index=p.index)
        no_survey = sup & (p["n_respondents"] == 0)
        excl = ~sup & ~(has_x & has_y)
        inc = ~sup & has_x & has_y
        why = []
        if no_survey.any():
            why.append(f"{int(no_survey.sum())} without survey answers")
        if (sup & ~no_survey).any():
            why.append(f"{int((sup & ~no_survey).sum())} below the minimum group size")
        if (~sup & ~has_y).any():
            why.append(f"{int((~sup & ~has_y).sum())} without {roles.label(y)}")
        if (~sup & has_y & ~has_x).any():
            why.append(f"{int((~sup & has_y & ~has_x).sum())} without a {roles.label(x)} score")
        rows.append({"client": names.get(c, c), "level": "unit-periods", "available": len(p),
                     "suppressed": int(sup.sum()), "excluded": int(excl.sum()),
                     "included": int(inc.sum()), "reason": "; ".join(why)})
        g = pd.DataFrame({"unit": p["unit_id"], "sup": sup, "inc": inc}).groupby("unit")
        all_sup, any_inc = g["sup"].all(), g["inc"].any()
        n_inc = int(any_inc.sum())
        rows.append({"client": names.get(c, c), "level": "units", "available": len(all_sup),
                     "suppressed": int(all_sup.sum()),
                     "excluded": int((~all_sup & ~any_inc).sum()), "included": n_inc,
                     "reason": ("every period suppressed or without both measures"
                                if (~any_inc).any() else "")})
        if n_inc < min_units:
            n_excluded_clients += 1
            reasons.append(f"{names.get(c, c)}: {n_inc} units with both measures "
                           f"(at least {min_units} needed)")
    rows.insert(0, {"client": "All", "level": "clients", "available": len(panels),
                    "suppressed": 0, "excluded": n_excluded_clients,
                    "included": len(panels) - n_excluded_clients, "reason": "; ".join(reasons)})
    return pd.DataFrame(rows, columns=["client", "level", "available", "suppressed",
                                       "excluded", "included", "reason"])


def _odd_panels(panels, roles):
    """The small study's panels plus the cases the per-client code must get right: a unit
    id missing, every unit-period suppressed, unit-periods without answers, an outcome
    column absent, the EX index missing where the outcome is there, one unit only."""
    first = next(iter(panels.values()))
    out = dict(panels)
    p = first.copy()
    p.loc[p.index[:3], "unit_id"] = np.nan
    p.loc[p.index[3:6], "suppressed"] = True
    p.loc[p.index[3:5], "n_respondents"] = 0
    p.loc[p.index[6:9], roles.ex] = np.nan
    out["odd-a"] = p
    q = first.copy()
    q["suppressed"] = True
    q["n_respondents"] = 0
    out["odd-b"] = q.drop(columns=[roles.primary_cx])
    out["odd-c"] = first[first["unit_id"] == first["unit_id"].iloc[0]].copy()
    return out


def test_study_characteristics_and_inclusion_account_as_the_pandas_loops(small):
    study, roles, panels, _, names = small
    odd = _odd_panels(panels, roles)
    names = {**names, "odd-a": "Odd A", "odd-b": "Odd B", "odd-c": "Odd C"}

    class Cfg:  # the study's config with the three odd clients in an industry of their own
        def __getattr__(self, k):
            return getattr(study.config, k)

        def client(self, c):
            if c.startswith("odd-"):
                return type("C", (), {"industry": "mining"})()
            return study.config.client(c)

    odd_study = type("S", (), {"config": Cfg()})()
    for ps, st in ((panels, study), (odd, odd_study)):
        got = synthesis.study_characteristics(st, panels=ps, roles=roles)
        pd.testing.assert_frame_equal(got, _study_characteristics_pandas(st, panels=ps,
                                                                         roles=roles))
        got = synthesis.inclusion_account(ps, roles=roles, names=names)
        want = _inclusion_account_pandas(ps, roles=roles, names=names)
        pd.testing.assert_frame_equal(got, want)
        assert got.to_csv() == want.to_csv()
    acc = synthesis.inclusion_account(odd, roles=roles, names=names).set_index(["client", "level"])
    assert acc.loc[("Odd B", "units"), "suppressed"] == acc.loc[("Odd B", "units"), "available"]
    assert acc.loc[("Odd C", "units"), "available"] == 1


def test_psychometric_table_lookup_as_the_multiindex_one():
    """Reliabilities looked up per measure give the table the MultiIndex lookup gave,
    including clients and measures without a reliability."""
    rng = np.random.default_rng(11)
    clients = [f"c{i}" for i in range(12)]
    pc = pd.DataFrame([{"client": c, "x": x, "y": y, "n": int(rng.integers(6, 40)),
                        "r": float(rng.uniform(-0.2, 0.7))}
                       for c in clients for x in ("ex", "tools") for y in ("nps", "churn")])
    rel = pd.DataFrame([{"client": c, "measure": m, "reliability": float(rng.uniform(0.5, 0.95)),
                         "ux": float(rng.uniform(0.6, 1.0)) if m == "ex" else np.nan}
                        for c in clients[1:] for m in ("ex", "nps", "tools")])
    got = synthesis.psychometric_table(pc, reliab=rel)  # no "churn" reliability, nor c0's
    keys = pd.MultiIndex.from_frame(pc[["client", "x"]].rename(columns={"x": "measure"}))
    indexed = rel.set_index(["client", "measure"])
    ref = pc.assign(rxx=indexed["reliability"].reindex(keys).to_numpy())
    row = got.set_index(["x", "y"]).loc[("ex", "nps")]
    assert row["k"] == 12 and "unreliability of ex" in row["corrected_for"]
    assert "unreliability of churn" not in got.set_index(["x", "y"]).loc[("ex", "churn"),
                                                                        "corrected_for"]
    assert ref["rxx"].isna().sum() == 4  # c0 for both x, both y
    # the same table through the element-by-element lookup (taken when a key repeats: two
    # rows of a client not in the study), the reference for the vectorised one
    extra = pd.DataFrame([{"client": "zz", "measure": "ex", "reliability": 0.7, "ux": 0.9}] * 2)
    slow = synthesis.psychometric_table(pc, reliab=pd.concat([rel, extra], ignore_index=True))
    pd.testing.assert_frame_equal(got, slow)
    assert got.to_csv() == slow.to_csv()


@pytest.mark.parametrize("n_clients", [12, 60])
def test_forest_panels_draw_only_the_ex_measures_rows(n_clients):
    """Only x's rows are drawn: another EX measure's rows (the same clients, other
    correlations) change no pixel, row by row and compact."""
    from exresearch import style

    frames = [_many_clients(n_clients, seed=s).assign(x="ex", y=y)
              for s, y in enumerate(["nps", "growth", "turnover", "csat"])]
    pc = pd.concat(frames, ignore_index=True)
    other = pd.concat([pc.assign(x="other", r=-pc["r"]), pc], ignore_index=True)
    ys = ["nps", "growth", "turnover", "csat"]
    with style.theme():
        got = style.figure_pixels(plots_meta.plot_forest_panels(other, x="ex", ys=ys, ncols=3))
        expected = style.figure_pixels(plots_meta.plot_forest_panels(pc, x="ex", ys=ys,
                                                                     ncols=3))
        fig = plots_meta.plot_forest_panels(other, x="ex", ys=ys, ncols=3)
    plt.close("all")
    assert np.array_equal(got, expected)
    labels = [ax.get_ylabel() for ax in fig.axes]
    if n_clients > plots_meta.FOREST_MAX_ROWS:
        assert labels == [f"{n_clients} clients, sorted; pooled r = "
                          f"{meta_analysis(f)['estimate']:.2f}" for f in frames]


# ------------------------------------- the caterpillar's intervals and the panels' axes
def _pixels(fig):
    from exresearch.style import figure_pixels

    return figure_pixels(fig)


def test_hlines_helper_is_axes_hlines():
    """_hlines draws what ax.hlines draws (segments, data limits, pixels), a row with a
    NaN or infinite end included (hlines masks the whole row), on axes where nothing
    else sets the limits."""
    rng = np.random.default_rng(5)
    y = np.arange(1.0, 61.0)
    lo = rng.uniform(-0.5, 0.2, 60)
    hi = lo + rng.uniform(0.05, 0.6, 60)
    lo[3], hi[7], lo[11] = np.nan, np.inf, -np.inf
    figs = []
    for draw in ("hlines", "helper"):
        fig, ax = plt.subplots(figsize=(3, 3))
        if draw == "hlines":
            lines = ax.hlines(y, lo, hi, color="0.6", lw=0.8)
        else:
            lines = plots_meta._hlines(ax, y, lo, hi, color="0.6", lw=0.8)
        figs.append((fig, ax, lines))
    (_, a, la), (_, b, lb) = figs
    assert np.array_equal(np.asarray(a.dataLim.get_points()), np.asarray(b.dataLim.get_points()))
    assert a.get_xlim() == b.get_xlim() and a.get_ylim() == b.get_ylim()
    assert la.get_label() == lb.get_label() and la.get_linewidth() == lb.get_linewidth()
    for sa, sb in zip(la.get_segments(), lb.get_segments(), strict=True):
        assert np.array_equal(np.asarray(sa, float), np.asarray(sb, float), equal_nan=True)
    assert np.isnan(lb.get_segments()[7]).all()  # the whole row, not only its infinite end
    assert np.array_equal(_pixels(figs[0][0]), _pixels(figs[1][0]))
    # no interval: an empty collection, limits untouched
    _, ax = plt.subplots()
    assert len(plots_meta._hlines(ax, np.array([]), np.array([]), np.array([]),
                                  color="0.6", lw=0.5).get_segments()) == 0
    assert ax.get_xlim() == (0.0, 1.0)
    plt.close("all")


@pytest.mark.parametrize(("n", "ncols"), [(5, 3), (4, 2), (3, 3), (1, 2), (7, 3)])
def test_shared_x_panels_are_subplots_without_the_spare_axes(n, ncols):
    """The panels _shared_x_panels makes are those of fig.subplots(sharex=True) once
    the spare axes of the last row are removed: positions, shared x, tick labels and
    offset text shown, and pixels (with data only in the first panel, so that the
    shared x limits come from it)."""
    nrows = -(-n // ncols)
    made = []
    for how in ("subplots", "helper"):
        fig = plt.figure(figsize=(3 * ncols, 2 * nrows))
        if how == "subplots":
            grid = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
            for ax in list(grid.flat)[n:]:
                ax.remove()
            axes = list(grid.flat)[:n]
        else:
            axes = plots_meta._shared_x_panels(fig, nrows, ncols, n)
        axes[0].plot([-0.4, 0.7], [0, 1])
        for i, ax in enumerate(axes):
            ax.set_title(f"panel {i}", loc="left")
        fig.tight_layout()
        made.append((fig, axes))
    (fa, a), (fb, b) = made
    assert len(fb.axes) == n
    for x, y in zip(a, b, strict=True):
        assert np.allclose(x.get_position().get_points(), y.get_position().get_points())
        assert x.get_xlim() == y.get_xlim()
        assert x.xaxis.offsetText.get_visible() == y.xaxis.offsetText.get_visible()
        assert x.xaxis.get_major_ticks()[0].label1.get_visible() == \
            y.xaxis.get_major_ticks()[0].label1.get_visible()
    assert all(ax.get_shared_x_axes().joined(b[0], ax) for ax in b[1:])
    assert np.array_equal(_pixels(fa), _pixels(fb))
    plt.close("all")


@pytest.mark.parametrize("k", [5, 41, 300])
def test_forest_panels_pixels_do_not_depend_on_a_spare_panel(k):
    """Five outcomes on a 2 x 3 grid, compact or row by row: the same pixels as the
    same figure drawn on a grid with the spare axes made and removed (what the function
    did before), whose panels matplotlib's own calls drew."""
    frames = [_many_clients(k, seed=s).assign(x="ex", y=f"out{s}") for s in range(5)]
    pc = pd.concat(frames, ignore_index=True)
    ys = [f"out{s}" for s in range(5)]
    fig = plots_meta.plot_forest_panels(pc, x="ex", ys=ys, ncols=3, title="EX")
    assert len(fig.axes) == 5
    ref = plt.figure(figsize=tuple(fig.get_size_inches()))
    grid = ref.subplots(2, 3, squeeze=False, sharex=True)
    for ax in list(grid.flat)[5:]:
        ax.remove()
    for ax, y in zip(grid.flat, ys, strict=False):  # the panels as the figure draws them
        ax.set_title(y, loc="left", fontsize=9)
        d = pc[pc["y"] == y]
        res = meta_analysis(d, method="REML")
        rows = plots_meta.forest_rows(d, result=res)
        if k > plots_meta.FOREST_MAX_ROWS:
            r = rows.sort_values("r", kind="mergesort")
            yy = np.arange(1, k + 1, dtype=float)
            ax.hlines(yy, r["ci_low"], r["ci_high"], color="0.6", lw=0.5 if k > 150 else 0.8)
            ax.scatter(r["r"], yy, s=4, color="0.1", zorder=3, linewidths=0)
            ax.axvspan(res["pi_low"], res["pi_high"], color="C0", alpha=0.12, lw=0, zorder=0)
            ax.axvspan(res["ci_low"], res["ci_high"], color="C0", alpha=0.35, lw=0, zorder=1)
            ax.axvline(res["estimate"], color="C0", lw=1.6, zorder=2)
            ax.axvline(0.0, color="0.4", ls=":", lw=0.8)
            ax.set_yticks([])
            ax.set_ylim(0, k + 1)
            ax.set_ylabel(f"{k} clients, sorted; pooled r = {res['estimate']:.2f}", fontsize=7)
        else:
            yy = np.arange(k, 0, -1) + 1.0
            ax.hlines(yy, rows["ci_low"], rows["ci_high"], color="0.3", lw=0.9)
            ax.scatter(rows["r"], yy, s=_MAX_AREA_PANEL * rows["weight"] / rows["weight"].max(),
                       marker="s", color="0.15", zorder=3)
            ax.hlines(0.0, res["pi_low"], res["pi_high"], color="C0", lw=1.8)
            from matplotlib.patches import Polygon

            ax.add_patch(Polygon([(res["ci_low"], 0), (res["estimate"], 0.35),
                                  (res["ci_high"], 0), (res["estimate"], -0.35)],
                                 closed=True, color="C0", zorder=4))
            ax.axvline(0.0, color="0.5", ls=":", lw=0.8)
            ax.set_yticks([0.0, *yy], [f"Pooled r = {res['estimate']:.2f}", *rows["label"]],
                          fontsize=7)
            ax.set_ylim(-1, k + 1.8)
    for ax in ref.axes:
        ax.tick_params(labelbottom=True, labelsize=7)
        ax.set_xlabel("r with 95% CI", fontsize=8)
    ref.suptitle("EX", x=0.01, ha="left", fontsize=10)
    ref.tight_layout()
    assert np.array_equal(_pixels(fig), _pixels(ref))
    plt.close("all")


_MAX_AREA_PANEL = 220.0 * 0.6


def test_caterpillar_order_ties_and_missing_as_before():
    """Rows sorted as pandas' stable mergesort sorted them (equal estimates in the table's
    order), a row without an estimate left out, one without an interval end kept as a
    dot: the intervals and dots of the previous implementation, row for row."""
    d = pd.DataFrame({"r": [0.3, 0.1, 0.3, np.nan, 0.2, 0.1],
                      "ci_low": [0.1, -0.1, 0.2, 0.0, np.nan, 0.0],
                      "ci_high": [0.5, 0.3, 0.4, 0.1, 0.4, 0.2]})
    ax = plots_meta.plot_caterpillar(d)
    ref = d.dropna(subset=["r"]).sort_values("r", kind="mergesort").reset_index(drop=True)
    gids = {c.get_gid(): c for c in ax.collections}
    dots = np.asarray(gids["estimates"].get_offsets())
    assert dots[:, 0].tolist() == ref["r"].tolist()
    # a row with a missing end has no segment drawn (get_segments drops NaN vertices)
    lows = [float(s[0][0]) if len(s) else None for s in gids["intervals"].get_segments()]
    assert lows == [None if np.isnan(lo) or np.isnan(hi) else lo
                    for lo, hi in zip(ref["ci_low"], ref["ci_high"], strict=True)]
    assert lows == [-0.1, 0.0, None, 0.1, 0.2]  # ties: 0.1 (row 1) before 0.1 (row 5)
    plt.close("all")
