"""exresearch.report: the notebooks' glue, checked by hand, against metafor, and for privacy."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exresearch import config, report
from exresearch.exceptions import ParameterError
from exresearch.study import load_study

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def study(small_study):
    return load_study(small_study)


@pytest.fixture(scope="module")
def roles(study):
    return report.measure_roles(study.config)


@pytest.fixture(scope="module")
def panel(study, roles):
    return report.client_panel(study, study.clients[0], roles)


def test_doctests():
    res = doctest.testmod(report, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted >= 15 and res.failed == 0


# ----------------------------------------------------------------------------- parameters
def test_setup_report_loads_and_creates_output(small_study, tmp_path):
    out = tmp_path / "a" / "b"
    s = report.setup_report(study_path=str(small_study), output_dir=str(out),
                            notebook="client_report", client_id="client-02")
    assert s.client_id == "client-02" and s.out == out.resolve() and out.is_dir()
    assert s.study.clients[:2] == ["client-01", "client-02"]


def test_setup_report_wrong_client_names_allowed_values(small_study, tmp_path):
    with pytest.raises(ParameterError) as exc:
        report.setup_report(study_path=small_study, output_dir=tmp_path, notebook="client_report",
                            client_id="client-99")
    msg = str(exc.value)
    assert msg.startswith("`client_id` must be one of the study's clients ['client-01', 'client-02'")
    assert "but 'client-99' was passed" in msg
    with pytest.raises(ParameterError, match="but None was passed"):
        report.setup_report(study_path=small_study, output_dir=tmp_path, notebook="client_report")
    first = report.setup_report(study_path=small_study, output_dir=tmp_path,
                                notebook="client_report", client_id="")
    assert first.client_id == "client-01"


def test_setup_report_wrong_path(tmp_path):
    with pytest.raises(ParameterError) as exc:
        report.setup_report(study_path="no/such/study", output_dir=tmp_path, notebook="synthesis")
    msg = str(exc.value)
    assert msg.startswith("`study_path` must be a folder containing study.yml, but 'no/such/study' was passed")
    assert str(config.ROOT / "no/such/study") in msg  # says where it looked
    with pytest.raises(ParameterError, match="`study_path` must be the path of a study folder"):
        report.setup_report(study_path="", output_dir=tmp_path, notebook="synthesis")


def test_setup_report_relative_path_from_repository_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository: the root is tried second
    rel = Path("tests") / "studies" / "valid"
    s = report.setup_report(study_path=str(rel), output_dir="tables", notebook="data_quality")
    assert s.study.path == (config.ROOT / rel).resolve()
    assert s.out == (tmp_path / "tables").resolve()


def test_setup_report_output_checks(small_study, tmp_path):
    f = tmp_path / "file.csv"
    f.write_text("x")
    with pytest.raises(ParameterError, match="`output_dir` must be a folder, but .* is an existing file"):
        report.setup_report(study_path=small_study, output_dir=f, notebook="synthesis")
    with pytest.raises(ParameterError, match="`output_dir` must be outside the study folder"):
        report.setup_report(study_path=small_study, output_dir=Path(small_study) / "out",
                            notebook="synthesis")
    with pytest.raises(ParameterError, match=r"`notebook` must be one of \['client_report'"):
        report.setup_report(study_path=small_study, output_dir=tmp_path, notebook="nope")


def test_check_number_and_choice_messages():
    assert report.check_number("r", 0.2, lo=0.01, hi=0.9) == 0.2
    with pytest.raises(ParameterError, match=r"`r` must be a number in \[0.01, 0.9\], but 1.5 was passed"):
        report.check_number("r", 1.5, lo=0.01, hi=0.9)
    with pytest.raises(ParameterError, match="`n` must be an integer >= 1, but 2.5 was passed"):
        report.check_number("n", 2.5, lo=1, integer=True)
    with pytest.raises(ParameterError, match="but True was passed"):
        report.check_number("n", True, lo=0, integer=True)
    with pytest.raises(ParameterError, match=r"must be one of \['A', 'B'\], but 'C' was passed"):
        report.check_choice("m", "C", ["A", "B"])


# ----------------------------------------------------------------------------- roles, panels
def test_measure_roles_demo_layout(roles):
    assert roles.drivers == ["tools", "empowerment", "training", "knowledge", "leader", "flexibility"]
    assert roles.engagement == ["engagement"] and roles.nps == ["enps"]
    assert roles.ex == "ex_index" and roles.ex_measures[1:] == roles.drivers + ["engagement", "enps"]
    assert roles.primary_cx == "nps" and roles.cx == ["nps", "csat"]
    assert roles.money == "revenue_growth"  # name contains "revenue"
    assert roles.higher_is_better["turnover"] is False
    assert roles.label("ex_index") == "EX index" and roles.label("leader") == "Leader support"


def test_measure_roles_keeps_other_answer_ranges_out_of_the_index():
    cfg = load_study(config.ROOT / "tests" / "studies" / "valid").config
    roles = report.measure_roles(cfg)
    assert roles.drivers == ["tools"] and roles.engagement == ["engagement"]
    assert roles.ex_measures == ["ex_index", "tools", "engagement", "hostility", "enps"]
    assert roles.primary_cx == "nps" and roles.money is None and roles.business == ["turnover"]


def test_client_panel_ex_index_is_driver_mean_and_nan_when_suppressed(panel, roles):
    expect = panel[roles.drivers].mean(axis=1, skipna=False)
    np.testing.assert_allclose(panel["ex_index"], expect)
    sup = panel["suppressed"].astype(bool)
    assert sup.any(), "the small study has suppressed unit-periods"
    assert panel.loc[sup, "ex_index"].isna().all()


def test_unit_means_average_reported_periods(panel, roles):
    um = report.unit_means(panel, roles)
    assert um["unit_id"].tolist() == sorted(panel["unit_id"].unique())
    u = um["unit_id"].iloc[0]
    rows = panel[panel["unit_id"] == u]
    assert um.loc[0, "ex_index"] == pytest.approx(rows["ex_index"].mean())
    # EX and outcomes over the same periods (those with a reported EX score)
    assert um.loc[0, "nps"] == pytest.approx(rows.loc[rows["ex_index"].notna(), "nps"].mean())
    assert um.loc[0, "n_periods"] == rows["ex_index"].notna().sum()
    # a unit with a suppressed period: its NPS of that period is left out
    part = panel.groupby("unit_id")["ex_index"].agg(lambda v: 0 < v.notna().sum() < len(v))
    assert part.any(), "the small study has a unit with a suppressed period"
    v = part[part].index[0]
    rows = panel[panel["unit_id"] == v]
    got = um.set_index("unit_id").loc[v, "nps"]
    assert got == pytest.approx(rows.loc[rows["ex_index"].notna(), "nps"].mean())
    assert got != pytest.approx(rows["nps"].mean())


def test_reported_survey_drops_suppressed_unit_periods(study, panel):
    cid = study.clients[0]
    survey = study.survey(cid)
    rep = report.reported_survey(study, cid, panel)
    sup = panel.loc[panel["suppressed"].astype(bool), ["unit_id", "period"]]
    keys = set(zip(rep["unit_id"], rep["period"], strict=True))
    assert not keys & set(zip(sup["unit_id"], sup["period"], strict=True))
    shown = panel.loc[~panel["suppressed"].astype(bool)]
    assert len(rep) == shown["n_respondents"].sum() < len(survey)


def test_ex_trend_and_profile_by_hand(study, panel, roles):
    cfg = study.config
    rep = report.reported_survey(study, study.clients[0], panel)
    trend = report.ex_trend(rep, scales=cfg.scales, roles=roles, periods=cfg.periods,
                            min_group_size=cfg.min_group_size)
    last = cfg.periods[-1]
    # the mean over units equals the mean of the panel's unit means
    for scale in ["leader", "ex_index", "enps"]:
        row = trend[(trend["scale"] == scale) & (trend["period"] == last)].iloc[0]
        vals = panel.loc[panel["period"] == last, scale].dropna()
        assert row["mean"] == pytest.approx(vals.mean())
        assert row["n_units"] == len(vals)
        assert row["sd_units"] == pytest.approx(vals.std(ddof=1))
    # % favourable by hand for one scale: respondents whose scale score >= 4
    from exresearch.scoring import score_scales

    sc = score_scales(rep[rep["period"] == last], scales=cfg.scales, points=cfg.points)
    fav = 100 * (sc["leader"].dropna() >= 4).mean()
    row = trend[(trend["scale"] == "leader") & (trend["period"] == last)].iloc[0]
    assert row["pct_favourable"] == pytest.approx(fav)
    prof = report.ex_profile(trend, periods=cfg.periods)
    assert prof["scale"].tolist() == [*cfg.scales, "ex_index"]
    p = prof.set_index("scale").loc["leader"]
    first = trend[(trend["scale"] == "leader") & (trend["period"] == cfg.periods[0])]["mean"].item()
    assert p["change"] == pytest.approx(row["mean"] - first) and p["period"] == last


def test_response_counts_and_suppressed_units_reveal_no_suppressed_count(panel, study):
    cfg = study.config
    counts = report.response_counts(panel, periods=cfg.periods)
    sup = report.suppressed_units(panel, min_group_size=cfg.min_group_size)
    for _, row in counts.iterrows():
        g = panel[(panel["period"] == row["period"]) & (panel["n_respondents"] > 0)]
        shown = g[~g["suppressed"]]
        assert row["respondents_reported"] == shown["n_respondents"].sum()
        assert row["units_suppressed"] == g["suppressed"].sum()
        assert row["response_rate"] == pytest.approx(
            100 * shown["n_respondents"].sum() / shown["headcount"].sum())
    assert list(sup.columns) == ["unit_id", "period", "reason"]
    assert set(sup["reason"]) <= {"fewer than 5 respondents", "no survey responses"}
    assert len(sup) == panel["suppressed"].sum()


def test_missingness_by_hand():
    s = pd.DataFrame({"a1": [1.0, np.nan, np.nan, 4.0, 2.0], "a2": [2.0, 3.0, np.nan, 5.0, 1.0],
                      "a3": [np.nan, np.nan, np.nan, 1.0, 2.0]})
    m = report.missingness(s, scales={"a": ["a1", "a2", "a3"]})
    assert m.loc[0, "pct_missing"] == pytest.approx(100 * 6 / 15)
    # fewer than half of 3 items answered: rows 2 (1 of 3) and 3 (0 of 3)
    assert m.loc[0, "pct_unscored"] == pytest.approx(40.0)


# ----------------------------------------------------------------------------- output
def test_save_table_writes_safe_csv(tmp_path):
    df = pd.DataFrame({"name": ["=cmd()", "ok"], "x": [0.123456, -1.5]})
    shown = report.save_table(df, tmp_path, "t", digits=2)
    assert (tmp_path / "t.csv").read_text() == "name,x\n'=cmd(),0.123456\nok,-1.5\n"
    assert shown["x"].tolist() == [0.12, -1.5]
    with pytest.raises(ParameterError, match="`name` must be a file stem"):
        report.save_table(df, tmp_path, "../evil")


def test_md_escape_makes_markup_inert():
    text = report.md_escape('<script>alert(1)</script> <img src=x onerror="a()"> [x](javascript:y) **b**')
    assert "<" not in text and ">" not in text
    assert "](" not in text and "**" not in text
    assert text.startswith("&lt;script&gt;alert\\(1\\)&lt;/script&gt;")


def test_styled_escapes_cells_and_headers():
    html = report.styled(pd.DataFrame({"<b>h</b>": ["<script>x</script>"], "v": [1.234]}),
                         caption="<i>c</i>").to_html()
    assert "<script>x" not in html and "&lt;script&gt;" in html
    assert "<b>h</b>" not in html and "<i>c</i>" not in html
    assert "1.23" in html


def test_formatting_helpers():
    assert report.fmt_money(443006.55) == "443,000"
    assert report.fmt_money(2_345_678) == "2.3 million"
    assert report.fmt_money(float("nan")) == "n/a"
    assert [report.ordinal(v) for v in (1, 2, 3, 4, 11, 12, 13, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "22nd", "101st", "111th"]
    assert report.evidence_verb("reciprocal loop — doom loop") == "drives"
    assert report.evidence_verb("CX leads") == "is associated with"


# ----------------------------------------------------------------------------- findings
def _findings_inputs(loop_label="no evidence", ci=(0.2, 0.7), priority=True, money=True,
                     method="riclpm", reverse_ruled_out=True):
    roles = report.Roles(
        drivers=["tools", "leader"], engagement=["engagement"], nps=[], likert=["tools", "leader"],
        ex_measures=["ex_index", "tools", "leader"], cx=["nps"], business=["growth"],
        outcomes=["nps", "growth"], primary_cx="nps", money="growth" if money else None,
        labels={"ex_index": "EX index", "tools": "Tools", "leader": "Leader support",
                "nps": "Customer NPS", "growth": "Revenue growth"},
        higher_is_better={"nps": True, "growth": True})
    corr = pd.DataFrame({"x": ["ex_index", "tools"], "y": ["nps", "nps"], "n": [30, 30],
                         "r": [0.4567, 0.3], "ci_low": [ci[0], 0.1], "ci_high": [ci[1], 0.5]})
    loop = pd.DataFrame([{"label": loop_label, "x_to_y": 0.2112, "x_to_y_p": 0.0123,
                          "y_to_x": 0.05, "y_to_x_p": 0.6, "method": method,
                          "reverse_ruled_out": reverse_ruled_out, "reverse_power": 0.31}])
    pri = pd.DataFrame({"driver": ["leader", "tools"], "impact": [61.5, 38.5],
                        "impact_low": [30.2, 10.0], "impact_high": [80.9, 60.0],
                        "performance": [3.21, 3.6], "quadrant": ["priority" if priority else "strength", "maintain"],
                        "priority": [priority, False], "rank": [1, 2]})
    inv = pd.DataFrame({"rank": [1], "driver": ["tools"], "improvement": [0.25], "delta_cx": [4.04],
                        "delta_business": [0.4], "delta_business_ci_low": [0.1],
                        "delta_business_ci_high": [0.7]})
    if money:
        inv = inv.assign(money=[443006.0], money_ci_low=[-12000.0], money_ci_high=[902000.0])
    bench = pd.DataFrame({"measure": ["ex_index"], "percentile": [72.2], "n_contributors": [4],
                          "withheld": [False]})
    return dict(correlations=corr, loop=loop, priorities=pri, investment=inv, benchmark=bench,
                roles=roles, n_units=30)


def test_executive_summary_sentences_carry_the_numbers():
    f = report.executive_summary(**_findings_inputs())
    assert list(f.columns) == list(report.FINDING_COLUMNS)
    assert f["topic"].tolist() == ["linkage", "direction", "drivers", "value", "benchmark"]
    t = f.set_index("topic")["text"]
    assert t["linkage"] == ("Units with a better employee experience have better Customer NPS: across "
                            "30 units, the EX index is associated with Customer NPS (r = 0.46, 95% CI "
                            "0.20 to 0.70), a moderate link.")
    assert "+0.21 SD (p = 0.012)" in t["direction"] and "associations" in t["direction"]
    assert t["drivers"] == (
        "Act first on Leader support: it accounts for 62% of the explained differences in "
        "Customer NPS between units (95% CI 30% to 81%) and, at 3.21, scores in the lower half "
        "of the drivers.")
    assert "about 443,000 a year in revenue (95% CI -12,000 to 902,000) if the link is causal" in t["value"]
    assert t["value"].endswith("The range includes no gain, so treat it as a rough estimate.")
    # 72nd percentile among 4 others: said as a count, not a percentile (issue 18)
    assert t["benchmark"] == ("Compared with 4 other organisations in the study, your EX index is "
                              "higher than 3 of them (above most).")
    row = f.set_index("topic").loc["value"]
    assert (row["table"], row["key"], row["column"], row["value"]) == (
        "investment", "driver=tools", "money", 443006.0)


def test_executive_summary_wording_follows_the_evidence():
    f = report.executive_summary(**_findings_inputs(loop_label="EX leads", ci=(-0.1, 0.7),
                                                    priority=False, money=False)).set_index("topic")["text"]
    assert "uncertain" in f["linkage"] and "includes no link" in f["linkage"]
    assert f["direction"].startswith("Changes in employee experience come before changes in Customer NPS")
    assert "if the link is causal" not in f["value"] and "on the business outcome" in f["value"]
    assert f["drivers"].startswith("No driver is both important for Customer NPS and weak")
    f2 = report.executive_summary(**_findings_inputs(loop_label="reciprocal loop — doom loop"))
    assert "doom loop" in f2.set_index("topic").loc["direction", "text"]
    assert " drives Customer NPS " in f2.set_index("topic").loc["linkage", "text"]
    # "not the other way round" only after the difference test; else the power is given
    assert "not the other way round" in f["direction"]
    f3 = report.executive_summary(**_findings_inputs(
        loop_label="EX leads", reverse_ruled_out=False)).set_index("topic")["text"]
    assert "not the other way round" not in f3["direction"]
    assert ("The reverse path (Customer NPS → EX index) was not detected, which does not show "
            "it is absent: these data had 31% power to detect one as large.") in f3["direction"]
    # a verdict of the plain cross-lagged model never licenses "drives" or uncaveated money
    f4 = report.executive_summary(**_findings_inputs(
        loop_label="EX leads", method="clpm")).set_index("topic")["text"]
    assert " drives " not in f4["linkage"] and "if the link is causal" in f4["value"]
    assert "read it as an association" in f4["direction"]
    # a within-unit verdict is evidence of direction, not proof: shared shocks within a
    # period can mimic it (validity/calibrate_riclpm.md), and the direction text says so
    proof = "Timing within units is evidence of direction, not proof: a shock that hits"
    assert proof in f["direction"] and proof in f3["direction"]
    assert proof in f2.set_index("topic").loc["direction", "text"]
    assert proof not in f4["direction"]
    f5 = report.executive_summary(**_findings_inputs()).set_index("topic")["text"]
    assert f5["direction"].startswith("The data do not show which comes first")
    assert proof not in f5["direction"]


def test_executive_summary_skips_missing_parts_and_fills_with_the_profile():
    args = _findings_inputs()
    args.update(priorities=None, investment=None,
                benchmark=args["benchmark"].assign(withheld=True, percentile=np.nan))
    f = report.executive_summary(**args)
    assert f["topic"].tolist() == ["linkage", "direction"]
    profile = pd.DataFrame({"scale": ["ex_index", "tools", "leader"], "period": "2025Q4",
                            "mean": [3.9, 3.456, 4.123]})
    f = report.executive_summary(**args, profile=profile)
    assert f["topic"].tolist() == ["linkage", "direction", "profile"]
    assert f["text"].iloc[2] == ("In 2025Q4, employees rate Leader support highest (4.12 on the "
                                 "1-5 scale) and Tools lowest (3.46).")
    assert (f["key"].iloc[2], f["value"].iloc[2]) == ("scale=leader", 4.123)
    # with all five others present, the profile does not make the cut
    full = report.executive_summary(**_findings_inputs(), profile=profile)
    assert len(full) == 5 and "profile" not in set(full["topic"])


# ----------------------------------------------------------------------------- several clients
def test_benchmark_table_names_only_the_focal_client(study, roles):
    means = report.all_unit_means(study, roles)
    b = report.benchmark_table(means, client_id="client-03", roles=roles)
    assert set(b["client_id"]) == {"client-03"}
    others = [c for c in study.clients if c != "client-03"]
    text = b.to_csv()
    for c in others:
        assert c not in text
        assert study.config.client(c).name not in text
    row = b.set_index("measure").loc["ex_index"]
    assert row["n_contributors"] == 4 and not row["withheld"]
    # percentile among the others, by hand (client means of unit means)
    cm = means.groupby("client_id")["ex_index"].mean()
    others_v = cm.drop("client-03").to_numpy()
    v = cm["client-03"]
    expect = 100 * ((others_v < v).sum() + 0.5 * (others_v == v).sum()) / len(others_v)
    assert row["percentile"] == pytest.approx(expect)
    assert "r_ex_index_nps" in set(b["measure"])


def test_benchmark_aggregates_once_per_study_same_table(study, roles, panel):
    """The benchmark from aggregates computed once per study equals the one computed per
    report from every client's unit means; the aggregates are computed only once."""
    from exresearch.report import clients as report_clients

    means = report.all_unit_means(study, roles)
    try:
        agg = report.benchmark_aggregates(study, roles, panels={study.clients[0]: panel})
        assert agg["client_id"].tolist() == sorted(study.clients)
        # every unit counts once: mean over its periods, then over units
        cm = means.groupby(["client_id", "unit_id"])["ex_index"].mean().groupby("client_id").mean()
        assert agg.set_index("client_id")["ex_index"].to_numpy() == pytest.approx(
            cm.sort_index().to_numpy())
        for cid in study.clients:
            old = report.benchmark_table(means, client_id=cid, roles=roles)
            new = report.benchmark_table(client_id=cid, roles=roles,
                                         aggregates=report.benchmark_aggregates(study, roles))
            pd.testing.assert_frame_equal(old, new)
        # kept for this study object: a second call does not recompute, and hands a copy
        kept = report_clients._BENCHMARK[id(study)][1]
        assert len(kept) == 1
        copy = report.benchmark_aggregates(study, roles)
        copy.loc[0, "ex_index"] = -99.0
        assert report.benchmark_aggregates(study, roles).loc[0, "ex_index"] != -99.0
    finally:
        report._forget_preloaded()
    assert id(study) not in report_clients._BENCHMARK
    with pytest.raises(ParameterError, match="needs `means` .* or `aggregates` .*neither"):
        report.benchmark_table(client_id="client-03", roles=roles)


def test_display_names_pseudonyms_unless_published(study):
    names = report.display_names(study)
    letters = ["Client A", "Client B", "Client C", "Client D", "Client E"]
    assert list(names) == list(study.clients) and sorted(names.values()) == letters
    # letters come from a shuffle seeded by the study, not from the order of the ids
    assert list(names.values()) != letters
    assert names == report.display_names(study)


def test_per_client_correlations_match_linkage(study, roles):
    from exresearch.linkage import correlations

    means = report.all_unit_means(study, roles)
    names = report.display_names(study)
    pc = report.per_client_correlations(means, x=["ex_index"], y=["nps"], names=names,
                                        industries={c: study.config.client(c).industry
                                                    for c in study.clients})
    assert "client_id" not in pc.columns and pc["client"].tolist()[0] == names[study.clients[0]]
    direct = correlations(means[means["client_id"] == "client-02"], x="ex_index", y="nps")
    assert pc.loc[1, "r"] == pytest.approx(direct.loc[0, "r"])
    assert pc.loc[1, "n"] == direct.loc[0, "n"]


@pytest.mark.parametrize("method", ["DL", "FE"])
def test_pool_estimates_matches_metafor(method):
    ref = json.loads((DATA / "report_reference.json").read_text())
    d = pd.DataFrame({"estimate": ref["data"]["yi"], "se": ref["data"]["sei"]})
    res = report.pool_estimates(d, method=method)
    for key, value in ref[method].items():
        assert res[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert res["k"] == 13


def test_pool_estimates_degenerate_and_errors():
    res = report.pool_estimates(pd.DataFrame({"estimate": [0.2, np.nan], "se": [0.1, 0.1]}))
    assert res["k"] == 1 and np.isnan(res["estimate"])
    with pytest.raises(ParameterError, match=r"`method` must be one of \['REML', 'DL', 'FE'\], "
                                             r"but 'ML'"):
        report.pool_estimates(pd.DataFrame({"estimate": [0.2], "se": [0.1]}), method="ML")


def test_report_pools_the_loop_as_loop_pool_loop():
    """The synthesis' pooling (report.pool_estimates / pool_paths) and loop.pool_loop use
    the same method by default, REML (metafor's default; tests/test_meta.py checks it
    against rma)."""
    from exresearch.meta import pool_estimates as meta_pool

    ref = json.loads((DATA / "report_reference.json").read_text())
    d = pd.DataFrame({"estimate": ref["data"]["yi"], "se": ref["data"]["sei"]})
    got = report.pool_estimates(d)
    want = meta_pool(d, method="REML")
    assert got["tau2"] == pytest.approx(want["tau2"], rel=1e-12)
    assert got["estimate"] == pytest.approx(want["estimate"], rel=1e-12)
    assert got["tau2"] != pytest.approx(report.pool_estimates(d, method="DL")["tau2"], rel=1e-3)
    rows = [{"client_id": c, "path": p, "source": s_, "target": t, "kind": k,
             "estimate": b + 0.05 * c * (p == "a"), "se": 0.05 + 0.01 * c}
            for c in range(5)
            for p, s_, t, k, b in (("a", "ex", "cx", "cross-lagged", 0.2),
                                   ("b", "cx", "ex", "cross-lagged", 0.0),
                                   ("d", "ex", "cx", "difference", 0.2))]
    by = pd.DataFrame(rows)
    from exresearch.loop import pool_loop

    lib = pool_loop(by)[0].set_index("path")
    syn = report.pool_paths(by).set_index("path")
    for col in ("estimate", "se", "tau2", "p_val"):
        assert syn.loc["a", col] == pytest.approx(lib.loc["a", col], rel=1e-12, abs=1e-15), col


def test_pool_paths_and_loop_coefficients(study, roles):
    panels = {c: report.client_panel(study, c, roles) for c in study.clients}
    # the small study's 12 units are too few for the within-unit model: pooling mechanics
    # with the plain cross-lagged paths (the RI-CLPM default is pooled in test_loop.py)
    by = report.cross_lagged_by_client(panels, x="ex_index", y="nps",
                                       periods=study.config.periods,
                                       names=report.display_names(study), method="clpm")
    paths = report.pool_paths(by)
    assert paths["kind"].tolist()[:2] == ["cross-lagged", "cross-lagged"]
    g = by[by["path"] == "ex_index[t] -> nps[t+1]"]
    expect = report.pool_estimates(g)
    row = paths.set_index("path").loc["ex_index[t] -> nps[t+1]"]
    assert row["estimate"] == pytest.approx(expect["estimate"]) and row["k"] == 5
    coefs = report.loop_coefficients(paths)
    assert coefs["ex_to_cx"] == pytest.approx((row["estimate"], row["se"]))
    assert set(coefs) == {"ex_to_cx", "cx_to_ex", "ex_ar", "cx_ar"}


def test_loop_summary_equals_loop_direction(panel, study):
    from exresearch.linkage import cross_lagged, loop_direction

    periods = study.config.periods
    cl = cross_lagged(panel, x="ex_index", y="nps", periods=periods)
    mine = report.loop_summary(panel, cl, x="ex_index", periods=periods)
    ref = loop_direction(panel, x="ex_index", y="nps", periods=periods, method="clpm")
    pd.testing.assert_frame_equal(mine[ref.columns], ref)
    labelled = report.loop_summary(panel, cl, x="ex_index", periods=periods,
                                   labels={"ex_index": "EX index", "nps": "Customer NPS"})
    assert labelled.loc[0, "x"] == "ex_index" and "Customer NPS" in labelled.loc[0, "reason"]


def test_utility_summary_respects_direction(roles):
    u = pd.DataFrame({"y": ["nps", "nps", "turnover", "turnover"], "diff": [5.0, -1.0, -3.0, -1.0],
                      "pct_diff": [10.0, -2.0, -6.0, -2.0]})
    s = report.utility_summary(u, roles=roles).set_index("y")
    assert s.loc["nps", "clients_top_better"] == 1 and s.loc["turnover", "clients_top_better"] == 2
    assert s.loc["turnover", "mean_diff"] == -2.0


def test_headline_table_columns():
    h = report.headline_table([("Pooled r", "0.51", "10 clients")])
    assert h.to_dict("records") == [{"label": "Pooled r", "value": "0.51", "note": "10 clients"}]


def test_ex_reliability_is_icc_of_respondent_ex_index(study, panel, roles):
    from exresearch.aggregate import icc
    from exresearch.scoring import score_scales

    rep = report.reported_survey(study, study.clients[0], panel)
    res = report.ex_reliability(rep, cfg=study.config, roles=roles)
    sc = score_scales(rep, scales=study.config.scales, points=study.config.points)
    sc["e"] = sc[roles.drivers].mean(axis=1, skipna=False)
    i1, i2 = icc(sc.dropna(subset=["e"]), unit="unit_id", value="e")
    assert (res["icc1"], res["icc2"]) == pytest.approx((i1, i2))
    assert 0 < res["icc1"] < res["icc2"] < 1



def test_describe_mediation_wording(roles):
    res = pd.DataFrame({"path": ["a", "b", "total", "direct", "indirect"],
                        "estimate": [20.0, 0.1, 4.0, 2.0, 2.0],
                        "ci_low": [5.0, 0.0, 1.0, -1.0, -0.2], "ci_high": [30.0, 0.2, 7.0, 5.0, 4.1],
                        "p_val": [0.01, 0.05, 0.01, 0.3, 0.08]})
    text = report.describe_mediation(res, roles=roles, x="ex_index", m="nps", y="revenue_growth")
    assert text.startswith("Units one point higher on the EX index have +4.00 higher Revenue growth (%)")
    assert "+2.00 of it (50%) goes with their higher Customer NPS (95% CI -0.20 to 4.10)" in text
    assert "the chain is not established" in text
    nan = res.assign(estimate=np.nan)
    assert "could not be estimated" in report.describe_mediation(nan, roles=roles, x="ex_index",
                                                                 m="nps", y="revenue_growth")


def test_describe_incremental_wording(roles):
    iv = pd.DataFrame({
        "sequence": ["engagement first"] * 2 + ["drivers first"] * 2, "step": [1, 2, 1, 2],
        "added": ["engagement", "drivers", "drivers", "engagement"],
        "r2": [0.10, 0.40, 0.38, 0.40], "delta_r2": [0.10, 0.30, 0.38, 0.02],
        "p_val": [0.1, 0.01, 0.001, 0.5], "note": [""] * 4})
    text = report.describe_incremental(iv, roles=roles, outcome="nps")
    assert text.startswith("On its own, engagement accounts for 10% of the differences in Customer NPS")
    assert "explains 2.0 percentage points more (p = 0.50); the drivers add 30.0 points" in text
    assert "carry information that engagement does not" in text
    both = iv.assign(p_val=[0.1, 0.01, 0.001, 0.01])
    assert report.describe_incremental(both, roles=roles, outcome="nps").endswith(
        "Both matter: each adds to the other.")
    undefined = iv.assign(delta_r2=np.nan)
    assert "could not be compared" in report.describe_incremental(undefined, roles=roles, outcome="nps")


# ------------------------------------------------ speed-ups of library calls the reports make
@pytest.mark.parametrize("ms,covar,seed", [("cx", None, 4), (["cx", "cx2"], None, 11),
                                           ("cx", "hc", 7), (["cx", "cx2"], "hc", 0)])
def test_vectorised_mediation_equals_pingouin(ms, covar, seed):
    """linkage.mediation bootstraps a*b with batched normal equations: every number of
    pingouin.mediation_analysis (same seed => same resamples) to 1e-10, one or two mediators,
    with or without a covariate; b is the x-adjusted slope (checked against lstsq)."""
    import pingouin as pg

    from exresearch import linkage

    rng = np.random.default_rng(seed)
    n = 60
    ex = rng.normal(size=n)
    cx = 0.5 * ex + rng.normal(size=n)
    d = pd.DataFrame({"ex": 7 * ex + 50, "cx": cx, "cx2": 3 * rng.normal(size=n) + 0.3 * ex + 10,
                      "hc": rng.integers(5, 60, size=n).astype(float)})
    d["sales"] = 0.5 * d.cx + 0.2 * d.cx2 + 0.01 * d.hc + rng.normal(size=n)
    res = linkage.mediation(d, x="ex", m=ms, y="sales", covar=covar, n_boot=400, seed=seed, ci="bca")  # pingouin's interval
    ref = pg.mediation_analysis(data=d, x="ex", m=ms, y="sales", covar=covar, n_boot=400, seed=seed)
    k = 1 if isinstance(ms, str) else len(ms)
    rows = [*range(k), 2 * k, 2 * k + 1, *range(2 * k + 2, 3 * k + 2)]  # a, total, direct, indirect
    for mine, theirs in [("estimate", "coef"), ("se", "se"), ("ci_low", "CI2.5"),
                         ("ci_high", "CI97.5"), ("p_val", "pval")]:
        np.testing.assert_allclose(res.loc[rows, mine].to_numpy(float),
                                   ref.loc[rows, theirs].to_numpy(float), rtol=1e-10, atol=1e-14)
    exog = np.column_stack([np.ones(n), d[["ex", *([ms] if isinstance(ms, str) else ms)]],
                            *([d[covar]] if covar else [])])
    b = np.linalg.lstsq(exog, d.sales.to_numpy(), rcond=None)[0][2:2 + k]
    np.testing.assert_allclose(res.loc[k:2 * k - 1, "estimate"], b, rtol=1e-10)


def test_cache_panels_returns_equal_independent_copies(small_study, roles):
    """The zygote's panel cache: same panels as computed fresh, and a notebook changing its
    copy does not change what the next caller gets; without cache_panels nothing is kept."""
    fresh = load_study(small_study)
    want = {c: report.client_panel(fresh, c, roles) for c in fresh.clients}
    assert "_exresearch_client_panels" not in vars(fresh)
    cached = load_study(small_study)
    assert report.cache_panels(cached, roles) == len(cached.clients)
    for c in cached.clients:
        got = report.client_panel(cached, c, roles)
        pd.testing.assert_frame_equal(got, want[c])
        got.iloc[:, 4:] = -1.0
        got["extra"] = 1
        pd.testing.assert_frame_equal(report.client_panel(cached, c, roles), want[c])


def test_plot_heatmap_draws_what_sns_heatmap_draws():
    """plots.plot_heatmap (for the data-quality notebook): one mesh cell per value, the
    same annotation texts and colour limits as sns.heatmap, NaN blank."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.collections import QuadMesh

    from exresearch import plots

    grid = pd.DataFrame({"a": [0.61, 0.93], "b": [np.nan, 0.457], "c": [0.5, 0.88]},
                        index=["client-01", "client-02"])
    fig, (left, right) = plt.subplots(1, 2)
    sns.heatmap(grid, annot=True, fmt=".2f", cmap="RdYlGn", vmin=0.5, vmax=0.9, ax=left)
    plots.plot_heatmap(grid, fmt=".2f", cmap="RdYlGn", vmin=0.5, vmax=0.9, cbar_label="alpha",
                       ax=right)
    assert [t.get_text() for t in right.texts] == [t.get_text() for t in left.texts]
    assert [t.get_text() for t in right.texts] == ["0.61", "0.50", "0.93", "0.46", "0.88"]
    mesh = [c for c in right.collections if isinstance(c, QuadMesh)][0]
    # text colours: black or white, whichever reaches WCAG AA on the cell (seaborn's rule
    # put white on light cells, at 2-2.6:1); checked cell by cell
    from exresearch.style import contrast_ratio

    cells = [c for c in mesh.cmap(mesh.norm(mesh.get_array())).reshape(-1, 4)[:, :3]]
    cells = [c for c, m in zip(cells, np.ma.getmaskarray(mesh.get_array()).ravel(), strict=True)
             if not m]
    assert [contrast_ratio(t.get_color(), c) >= 4.5
            for t, c in zip(right.texts, cells, strict=True)] == [True] * 5
    assert mesh.get_array().size == 6 and mesh.get_array().mask.sum() == 1
    assert mesh.get_clim() == (0.5, 0.9)
    assert [t.get_text() for t in right.get_yticklabels()] == ["client-01", "client-02"]
    assert [t.get_text() for t in right.get_xticklabels()] == ["a", "b", "c"]
    plt.close(fig)
    with pytest.raises(ParameterError, match="`grid` must be a pandas DataFrame, but list"):
        plots.plot_heatmap([[1.0]])


# ----------------------------------------------------------------------------- preload hook
def test_preload_study_is_reused_until_an_input_changes(tmp_path, small_study):
    import shutil

    from exresearch.study import Study

    folder = tmp_path / "study"
    shutil.copytree(small_study, folder)
    study = load_study(folder)
    try:
        report.preload_study(study)
        got = report.setup_report(study_path=folder, output_dir=str(tmp_path / "o"),
                                  notebook="synthesis").study
        assert got is study
        # panels are kept for this study only, and handed out as copies
        p1 = report.client_panel(study, study.clients[0])
        p1.iloc[0, 0] = "changed"
        assert report.client_panel(study, study.clients[0]).iloc[0, 0] != "changed"
        assert not hasattr(study, "_exresearch_client_panels")  # nothing written on the Study
        # and the benchmark of all clients, once, before any report asks for it
        from exresearch.report.clients import _BENCHMARK

        assert _BENCHMARK[id(study)][0] is study and len(_BENCHMARK[id(study)][1]) == 1
        # one changed byte in an input file: the study is read again
        f = folder / "clients" / study.clients[0] / "outcomes.csv"
        f.write_text(f.read_text() + "\n")
        again = report.setup_report(study_path=folder, output_dir=str(tmp_path / "o"),
                                    notebook="synthesis").study
        assert again is not study and isinstance(again, Study)
    finally:
        report._forget_preloaded()
