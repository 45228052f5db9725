"""Unit aggregation, suppression, unit panel and agreement (exresearch.aggregate).

Reference values come from R (multilevel::ICC1/ICC2/rwg.j/rwg, psych::alpha) on
the published multilevel::bh1996, lq2002 and bhr2000 data, produced by
``tests/r/measurement.R`` into ``tests/data/measurement_reference.json``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import exresearch
from exresearch.aggregate import (
    aggregate_units,
    agreement,
    icc,
    rwg_j,
    unit_error_variances,
    unit_panel,
)
from exresearch.exceptions import ParameterError

DATA = Path(__file__).resolve().parent / "data"
STUDIES = Path(__file__).resolve().parent / "studies"
REF = json.loads((DATA / "measurement_reference.json").read_text())
TOL = 1e-6
AGG_COLUMNS = [
    "unit_id", "period", "scale", "n", "mean", "sd", "pct_favourable", "suppressed", "reason",
]


@pytest.fixture(scope="module")
def lq():
    return pd.read_csv(DATA / "measurement_lq2002.csv")


def _lq_scales():
    return {s: REF["lq2002"][s]["alpha"]["items"] for s in ("lead", "tsig", "hostil")}


LQ_POINTS = {"lead": (1, 5), "tsig": (1, 5), "hostil": (0, 4)}


# ----------------------------------------------------------------------------- R references
def test_icc_bh1996_matches_multilevel():
    bh = pd.read_csv(DATA / "measurement_bh1996.csv")
    for var in ("HRS", "COHES", "LEAD", "WBEING"):
        icc1, icc2 = icc(bh, unit="GRP", value=var)
        assert icc1 == pytest.approx(REF["bh1996"][var]["icc1"], abs=TOL)
        assert icc2 == pytest.approx(REF["bh1996"][var]["icc2"], abs=TOL)
    # the values published with the data (Bliese 2000; METHODS.md): HRS .133 and .920
    icc1, icc2 = icc(bh, unit="GRP", value="HRS")
    assert (round(icc1, 3), round(icc2, 3)) == (0.133, 0.920)


def test_agreement_lq2002_matches_psych_and_multilevel(lq):
    out = agreement(lq, unit="COMPID", scales=_lq_scales(), points=LQ_POINTS)
    assert list(out.columns) == [
        "n_respondents", "n_units", "alpha", "icc1", "icc2", "rwg_j_mean", "rwg_j_median",
    ]
    assert out.index.name == "scale" and list(out.index) == ["lead", "tsig", "hostil"]
    for scale, row in out.iterrows():
        ref = REF["lq2002"][scale]
        assert row["n_respondents"] == ref["icc"]["n"] == 2042
        assert row["n_units"] == ref["icc"]["n_units"]
        assert row["alpha"] == pytest.approx(ref["alpha"]["alpha"], abs=TOL)
        assert row["icc1"] == pytest.approx(ref["icc"]["icc1"], abs=TOL)
        assert row["icc2"] == pytest.approx(ref["icc"]["icc2"], abs=TOL)
        assert row["rwg_j_mean"] == pytest.approx(ref["rwg_j"]["mean"], abs=TOL)
        assert row["rwg_j_median"] == pytest.approx(ref["rwg_j"]["median"], abs=TOL)


def test_rwg_j_per_unit_matches_multilevel(lq):
    for scale, items in _lq_scales().items():
        ref = REF["lq2002"][scale]["rwg_j"]
        out = rwg_j(lq, unit="COMPID", items=items, points=LQ_POINTS[scale])
        assert list(out.columns) == ["COMPID", "n", "rwg_j"]
        assert [str(u) for u in out["COMPID"]] == ref["unit"]
        np.testing.assert_array_equal(out["n"], ref["n"])
        np.testing.assert_allclose(out["rwg_j"], ref["rwg_j"], atol=TOL)
    # some units exceed the null variance and are capped at 0 in R too
    assert min(REF["lq2002"]["hostil"]["rwg_j"]["rwg_j"]) == 0


def test_single_item_matches_multilevel_rwg(lq):
    ref = REF["lq2002"]["tsig01"]
    out = rwg_j(lq, unit="COMPID", items=["TSIG01"], points=(1, 5))
    np.testing.assert_allclose(out["rwg_j"], ref["rwg_j"]["rwg_j"], atol=TOL)
    row = agreement(lq, unit="COMPID", scales={"tsig01": ["TSIG01"]}, points=(1, 5)).iloc[0]
    assert np.isnan(row["alpha"])
    assert row["icc1"] == pytest.approx(ref["icc"]["icc1"], abs=TOL)
    assert row["icc2"] == pytest.approx(ref["icc"]["icc2"], abs=TOL)
    assert row["rwg_j_mean"] == pytest.approx(ref["rwg_j"]["mean"], abs=TOL)
    assert row["rwg_j_median"] == pytest.approx(ref["rwg_j"]["median"], abs=TOL)


def test_agreement_bhr2000_matches_multilevel():
    bhr = pd.read_csv(DATA / "measurement_bhr2000.csv")
    ref = REF["bhr2000"]["climate"]
    row = agreement(bhr, unit="GRP", scales={"climate": ref["alpha"]["items"]}, points=(1, 5))
    row = row.loc["climate"]
    assert row["n_units"] == 99 and row["n_respondents"] == 5400
    for col, value in [
        ("alpha", ref["alpha"]["alpha"]), ("icc1", ref["icc"]["icc1"]),
        ("icc2", ref["icc"]["icc2"]), ("rwg_j_mean", ref["rwg_j"]["mean"]),
        ("rwg_j_median", ref["rwg_j"]["median"]),
    ]:
        assert row[col] == pytest.approx(value, abs=TOL), col


def test_agreement_listwise_with_missing_answers(lq, rng):
    # knocking out answers = dropping those respondents from that scale (as rwg.j does)
    holes = lq.copy()
    items = _lq_scales()["tsig"]
    mask = rng.random((len(holes), len(items))) < 0.05
    holes[items] = holes[items].mask(mask)
    complete = holes.dropna(subset=items)
    a = agreement(holes, unit="COMPID", scales={"tsig": items}, points=(1, 5))
    b = agreement(complete, unit="COMPID", scales={"tsig": items}, points=(1, 5))
    assert a["n_respondents"].iloc[0] == len(complete) < len(lq)
    pd.testing.assert_frame_equal(a, b)
    # and alpha / ICC on those respondents are what a direct computation gives
    score = complete[items].mean(axis=1)
    assert a["icc1"].iloc[0] == pytest.approx(
        icc(complete.assign(s=score), unit="COMPID", value="s")[0]
    )


# ----------------------------------------------------------------------------- hand cases
def test_icc_and_rwg_hand_computed():
    # unit a: 1,2,3 (mean 2) ; unit b: 3,4,5 (mean 4) ; grand mean 3
    # SSB = 3 (2-3)^2 + 3 (4-3)^2 = 6, MSB = 6 / 1 ; SSW = 2 + 2, MSW = 4 / 4 = 1 ; k = 6/2 = 3
    # ICC(1) = (6 - 1) / (6 + 2 * 1) = 0.625 ; ICC(2) = 5 / 6
    d = pd.DataFrame({"unit": list("aaabbb"), "x": [1, 2, 3, 3, 4, 5.0]})
    assert icc(d, unit="unit", value="x") == pytest.approx((0.625, 5 / 6))
    # unequal sizes: k = N / J = 5 / 2 ; a: 1,3 (mean 2), b: 4,5,6 (mean 5), grand 19/5
    # SSB = 2 (2-3.8)^2 + 3 (5-3.8)^2 = 10.8 ; SSW = 2 + 2 = 4, MSW = 4/3
    d2 = pd.DataFrame({"unit": list("aabbb"), "x": [1, 3, 4, 5, 6.0]})
    msb, msw, k = 10.8, 4 / 3, 2.5
    assert icc(d2, unit="unit", value="x") == pytest.approx(
        ((msb - msw) / (msb + (k - 1) * msw), (msb - msw) / msb)
    )
    # rwg(j), 2 items on 1-5 (null variance (25 - 1)/12 = 2):
    # a: var(4,4,5) = 1/3, var(4,5,5) = 1/3 -> s = 1/3, s/2 = 1/6, 2 (5/6) / (2 (5/6) + 1/6) = 10/11
    # b: var(1,3,5) = 4, var(2,3,5) = 7/3 -> s = 19/6 > 2 -> capped -> 0
    d3 = pd.DataFrame(
        {"unit": list("aaabbb"), "q1": [4, 4, 5, 1, 3, 5.0], "q2": [4, 5, 5, 2, 3, 5.0]}
    )
    out = rwg_j(d3, unit="unit", items=["q1", "q2"], points=(1, 5))
    assert out["unit"].tolist() == ["a", "b"] and out["n"].tolist() == [3, 3]
    np.testing.assert_allclose(out["rwg_j"], [10 / 11, 0.0])


def test_aggregate_units_two_units_three_respondents_by_hand():
    survey = pd.DataFrame(
        {
            "unit_id": ["u1", "u1", "u1", "u2", "u2", "u2"],
            "period": ["2025"] * 6,
            "respondent_id": list("abcdef"),
            "q1": [5, 4, 2, 1, 2, 3.0],
            "q2": [5, 2, 2, 1, np.nan, 3.0],
            "e": [10, 9, 0, 7, 8, np.nan],
        }
    )
    scales = {"team": ["q1", "q2"], "enps": {"items": ["e"], "kind": "nps"}}
    out = aggregate_units(survey, scales=scales, min_group_size=3)
    assert list(out.columns) == AGG_COLUMNS
    assert out[["unit_id", "scale"]].values.tolist() == [
        ["u1", "team"], ["u1", "enps"], ["u2", "team"], ["u2", "enps"],
    ]
    # u1 team scores 5, 3, 2: mean 10/3, sd sqrt(((5/3)^2 + (1/3)^2 + (4/3)^2) / 2) = sqrt(7/3),
    #   favourable (>= 4): 1 of 3
    # u2 team scores 1, 2 (q2 missing, 1 of 2 items is half), 3: mean 2, sd 1, favourable 0
    # u1 eNPS: 10, 9 promoters, 0 detractor: 100 (2 - 1) / 3 ; % favourable = promoters 2/3
    # u2 eNPS: 7, 8 passives, one missing: n = 2 < 3 -> suppressed
    team = out[out["scale"] == "team"]
    np.testing.assert_allclose(team["mean"], [10 / 3, 2.0])
    np.testing.assert_allclose(team["sd"], [np.sqrt(7 / 3), 1.0])
    np.testing.assert_allclose(team["pct_favourable"], [100 / 3, 0.0])
    assert team["n"].tolist() == [3, 3] and not team["suppressed"].any()
    assert team["reason"].tolist() == ["", ""]
    e = out[out["scale"] == "enps"]
    assert e["mean"].iloc[0] == pytest.approx(100 / 3)
    assert e["pct_favourable"].iloc[0] == pytest.approx(200 / 3)
    assert e["sd"].iloc[0] == pytest.approx(np.std([10, 9, 0], ddof=1))
    assert e["n"].tolist() == [3, 2]
    assert e["suppressed"].tolist() == [False, True]
    assert e["reason"].iloc[1] == "fewer than 3 respondents answered this scale"
    assert np.isnan(e[["mean", "sd", "pct_favourable"]].iloc[1].astype(float)).all()


def _survey_with_small_unit(rng, small=4):
    """Unit 'big' with 8 respondents and unit 'small' with `small`, whose answers are all 1."""
    n_big = 8
    survey = pd.DataFrame(
        {
            "unit_id": ["big"] * n_big + ["small"] * small,
            "period": "2025Q1",
            "respondent_id": [f"r{i}" for i in range(n_big + small)],
            "q1": np.r_[rng.integers(3, 6, n_big), np.ones(small)].astype(float),
            "q2": np.r_[rng.integers(3, 6, n_big), np.ones(small)].astype(float),
            "e": np.r_[rng.integers(7, 11, n_big), np.zeros(small)].astype(float),
        }
    )
    scales = {"team": ["q1", "q2"], "enps": {"items": ["e"], "kind": "nps"}}
    return survey, scales


def test_suppression_unit_of_four(rng):
    survey, scales = _survey_with_small_unit(rng, small=4)
    out = aggregate_units(survey, scales=scales, min_group_size=5)
    small = out[out["unit_id"] == "small"]
    assert small["suppressed"].all()
    assert (small["reason"] == "fewer than 5 respondents").all()
    assert small[["mean", "sd", "pct_favourable"]].isna().all().all()
    assert small["n"].tolist() == [4, 4]  # counts are kept (documented)
    # none of the small unit's values (mean 1, eNPS -100, 0 % favourable) appears anywhere
    values = out[["mean", "sd", "pct_favourable"]].to_numpy(dtype=float)
    assert not np.isin(values, [1.0, -100.0, 0.0]).any()
    big = out[out["unit_id"] == "big"]
    assert not big["suppressed"].any() and big["mean"].notna().all()
    # threshold 4: the same unit is shown
    shown = aggregate_units(survey, scales=scales, min_group_size=4)
    small = shown[shown["unit_id"] == "small"]
    assert not small["suppressed"].any()
    assert small["mean"].tolist() == [1.0, -100.0]
    assert small["pct_favourable"].tolist() == [0.0, 0.0]


def test_suppression_when_too_few_answer_the_scale():
    # 5 respondents, but only 4 answered q1 (the scale's only item): suppressed for that scale
    survey = pd.DataFrame(
        {"unit_id": "u", "period": "p", "q1": [1, 2, 3, 4, np.nan], "q2": [1, 2, 3, 4, 5.0]}
    )
    out = aggregate_units(survey, scales={"a": ["q1"], "b": ["q2"]}, min_group_size=5)
    assert out["suppressed"].tolist() == [True, False]
    assert out["reason"].tolist() == ["fewer than 5 respondents answered this scale", ""]
    assert np.isnan(out["mean"].iloc[0]) and out["mean"].iloc[1] == 3.0


def test_aggregate_units_custom_columns_and_order():
    survey = pd.DataFrame(
        {"store": ["s2", "s1", "s2", "s1"], "wave": ["w2", "w1", "w1", "w2"], "q": [1, 2, 3, 4.0]}
    )
    out = aggregate_units(survey, scales={"q": ["q"]}, min_group_size=3, unit="store",
                          period="wave")
    assert list(out.columns[:2]) == ["store", "wave"]
    assert out[["store", "wave"]].values.tolist() == [
        ["s1", "w1"], ["s1", "w2"], ["s2", "w1"], ["s2", "w2"],
    ]
    assert out["n"].tolist() == [1, 1, 1, 1] and out["suppressed"].all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_group_size": 2}, "`min_group_size` must be an integer >= 3, but 2 was passed"),
        ({"min_group_size": 5.5}, "but 5.5 was passed"),
        ({"min_group_size": True}, "but True was passed"),
        ({"unit": "store"}, "`unit` must name a column of `data`"),
        ({"period": "wave"}, "but 'wave' was passed"),
    ],
)
def test_aggregate_units_errors(kwargs, message):
    survey = pd.DataFrame({"unit_id": ["a"], "period": ["p"], "q": [1.0]})
    with pytest.raises(ParameterError) as err:
        aggregate_units(survey, scales={"q": ["q"]}, **kwargs)
    assert message in str(err.value)


def test_aggregate_units_missing_unit_id_is_an_error():
    survey = pd.DataFrame({"unit_id": ["a", None], "period": ["p", "p"], "q": [1.0, 2.0]})
    with pytest.raises(ParameterError, match=r"column 'unit_id' must have no missing values, but it is missing in 1 row\(s\)"):
        aggregate_units(survey, scales={"q": ["q"]})


# ----------------------------------------------------------------------------- edge cases
def test_constant_item_and_constant_scale():
    d = pd.DataFrame(
        {"unit": list("aaabbb"), "q1": [1, 2, 3, 3, 4, 5.0], "c": [3.0] * 6, "c2": [3.0] * 6}
    )
    # a constant item next to a varying one: everything defined, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = agreement(d, unit="unit", scales={"s": ["q1", "c"]}, points=(1, 5))
    # scale mean = (q1 + 3)/2: ICC is scale-free -> same as for q1 (0.625, 5/6)
    assert out.loc["s", ["icc1", "icc2"]].tolist() == pytest.approx([0.625, 5 / 6])
    # alpha: C = [[var q1, 0], [0, 0]] -> 2 (1 - v / v) = 0
    assert out.loc["s", "alpha"] == pytest.approx(0.0)
    # rwg: a: vars (1, 0) -> s = 0.5, s/2 = 1/4 -> 2 (3/4) / (2 (3/4) + 1/4) = 6/7 ; b the same
    assert out.loc["s", "rwg_j_mean"] == pytest.approx(6 / 7)
    # a scale where everybody answers the same: rwg = 1, alpha and ICC undefined -> NaN + warning
    with pytest.warns(UserWarning) as record:
        flat = agreement(d, unit="unit", scales={"flat": ["c", "c2"]}, points=(1, 5))
    messages = " | ".join(str(w.message) for w in record)
    assert "alpha of scale 'flat' is undefined" in messages
    assert "ICC of scale 'flat' is undefined: the values have no variance" in messages
    assert flat.loc["flat", "rwg_j_mean"] == 1.0
    assert np.isnan(flat.loc["flat", ["alpha", "icc1", "icc2"]].astype(float)).all()


def test_single_unit_client():
    d = pd.DataFrame({"unit": ["only"] * 4, "q1": [1, 2, 3, 4.0], "q2": [2, 2, 3, 5.0]})
    with pytest.warns(UserWarning, match="needs at least 2 units, but the data have 1"):
        out = agreement(d, unit="unit", scales={"s": ["q1", "q2"]}, points=(1, 5))
    assert out.loc["s", "n_units"] == 1 and out.loc["s", "n_respondents"] == 4
    assert np.isnan(out.loc["s", ["icc1", "icc2"]].astype(float)).all()
    assert np.isfinite(out.loc["s", ["alpha", "rwg_j_mean"]].astype(float)).all()
    with pytest.warns(UserWarning, match="needs at least 2 units"):
        assert np.isnan(icc(d, unit="unit", value="q1")).all()


def test_icc_undefined_with_singleton_units_and_rwg_nan_for_single_respondent():
    d = pd.DataFrame({"unit": ["a", "b", "c", "c"], "x": [1.0, 2.0, 3.0, 4.0]})
    with pytest.warns(UserWarning, match="fewer than 2 complete respondents"):
        out = rwg_j(d, unit="unit", items=["x"], points=(1, 5))
    assert out["n"].tolist() == [1, 1, 2]
    # c: var(3, 4) = 0.5 -> 1 - 0.5 / 2 = 0.75 ; a, b undefined
    np.testing.assert_allclose(out["rwg_j"], [np.nan, np.nan, 0.75])
    with pytest.warns(UserWarning, match="every unit has a single respondent"):
        assert np.isnan(icc(d.iloc[:3], unit="unit", value="x")).all()


def test_agreement_errors():
    d = pd.DataFrame({"unit": ["a", "b"], "q": [1.0, 2.0]})
    with pytest.raises(ParameterError, match="`unit` must name a column of `data`"):
        agreement(d, unit="team", scales={"s": ["q"]}, points=(1, 5))
    with pytest.raises(ParameterError, match="no entry for scale 's'"):
        agreement(d, unit="unit", scales={"s": ["q"]}, points={"t": (1, 5)})
    with pytest.raises(ParameterError, match=r"within points=\(1, 5\).*'q' \(1 answers, e.g. 9\)"):
        agreement(d.assign(q=[1.0, 9.0]), unit="unit", scales={"s": ["q"]}, points=(1, 5))
    with pytest.raises(ParameterError, match="`value` must name a column"):
        icc(d, unit="unit", value="z")


# ----------------------------------------------------------------------------- unit_panel
def _fake_study(survey, outcomes, *, min_group_size=5):
    scales = {
        "team": SimpleNamespace(items=("q1", "q2"), reverse=("q2",), points=(1, 5), kind="likert"),
        "enps": SimpleNamespace(items=("e",), reverse=(), points=(0, 10), kind="nps"),
    }
    config = SimpleNamespace(
        scales=scales,
        outcomes={"csat": object(), "sales": object()},
        covariates=("headcount",),
        min_group_size=min_group_size,
        points=(1, 5),
        periods=["2025Q4", "2026Q1"],
    )
    return SimpleNamespace(
        config=config,
        survey=lambda cid: survey.copy(),
        outcomes=lambda cid: outcomes.copy(),
    )


def test_unit_panel_with_fake_study(rng):
    survey, _ = _survey_with_small_unit(rng, small=4)
    survey = pd.concat([survey, survey.assign(period="2025Q4")], ignore_index=True)
    outcomes = pd.DataFrame(
        {
            "unit_id": ["small", "big", "big", "small", "gone"],
            "period": ["2025Q4", "2025Q4", "2025Q1", "2025Q1", "2025Q1"],
            "csat": [80.0, 70.0, 71.0, 81.0, 50.0],
            "sales": [1.0, 2.0, 3.0, 4.0, 5.0],
            "headcount": [4.0, 8.0, 8.0, 4.0, 3.0],
        }
    )
    study = _fake_study(survey, outcomes)
    study.config.periods = ["2025Q4", "2025Q1"]  # time order is not alphabetical here
    panel = unit_panel(study, "acme")
    assert list(panel.columns) == [
        "unit_id", "period", "n_respondents", "suppressed", "team", "enps", "csat", "sales",
        "headcount",
    ]
    assert panel[["unit_id", "period"]].values.tolist() == [
        ["big", "2025Q4"], ["big", "2025Q1"], ["gone", "2025Q1"],
        ["small", "2025Q4"], ["small", "2025Q1"],
    ]
    assert panel["n_respondents"].tolist() == [8, 8, 0, 4, 4]
    assert panel["suppressed"].tolist() == [False, False, True, True, True]
    small = panel[panel["unit_id"] == "small"]
    assert small[["team", "enps"]].isna().all().all()
    assert small["csat"].tolist() == [80.0, 81.0]  # outcomes are kept
    big = survey[(survey["unit_id"] == "big") & (survey["period"] == "2025Q1")]
    expected_team = ((big["q1"] + 6 - big["q2"]) / 2).mean()
    expected_enps = 100 * ((big["e"] >= 9).mean() - (big["e"] <= 6).mean())
    row = panel.iloc[1]
    assert row["team"] == pytest.approx(expected_team)
    assert row["enps"] == pytest.approx(expected_enps)
    # with threshold 4 the small unit is shown
    study.config.min_group_size = 4
    shown = unit_panel(study, "acme")
    assert not shown.loc[shown["unit_id"] == "small", "suppressed"].any()
    assert shown.loc[shown["unit_id"] == "small", "team"].tolist() == [3.0, 3.0]  # (1 + 6-1)/2


def test_unit_panel_rejects_name_clash():
    survey = pd.DataFrame({"unit_id": ["a"], "period": ["2025Q4"], "q1": [1.0], "q2": [1.0],
                           "e": [5.0]})
    study = _fake_study(survey, survey[["unit_id", "period"]])
    study.config.covariates = ("team",)
    with pytest.raises(ParameterError, match=r"\['team'\] are both"):
        unit_panel(study, "acme")


def test_unit_panel_on_the_valid_corpus_study():
    study = exresearch.load_study(STUDIES / "valid")
    cid = study.clients[0]
    panel = unit_panel(study, cid)
    cfg = study.config
    assert list(panel.columns) == (
        ["unit_id", "period", "n_respondents", "suppressed"]
        + list(cfg.scales) + list(cfg.outcomes) + list(cfg.covariates)
    )
    survey = study.survey(cid)
    assert panel["n_respondents"].sum() == len(survey)
    agg = aggregate_units(survey, scales=cfg.scales, min_group_size=cfg.min_group_size,
                          points=cfg.points)
    for scale in cfg.scales:
        part = agg[agg["scale"] == scale].set_index(["unit_id", "period"])["mean"]
        got = panel.set_index(["unit_id", "period"])[scale]
        pd.testing.assert_series_equal(got.loc[part.index], part, check_names=False)


# ----------------------------------------------------------------------------- error variances
def _error_survey(rng):
    """Units a (9 respondents, one without a 'lead' score) and b (6) in two periods, c (2)."""
    rows = []
    for unit, n in (("a", 9), ("b", 6), ("c", 2)):
        for period in ("p1", "p2"):
            for _ in range(n):
                rows.append({"unit_id": unit, "period": period,
                             "q1": rng.integers(1, 6), "q2": rng.integers(1, 6),
                             "q3": rng.integers(1, 6), "e": rng.integers(0, 11)})
    survey = pd.DataFrame(rows).astype({c: float for c in ("q1", "q2", "q3", "e")})
    survey.loc[0, "q3"] = np.nan  # unit a, p1: one respondent without a 'lead' score
    scales = {"team": {"items": ["q1", "q2"], "reverse": ["q2"]}, "lead": ["q3"],
              "enps": {"items": ["e"], "kind": "nps", "points": (0, 10)}}
    return survey, scales


def test_unit_error_variances_by_hand(rng):
    survey, scales = _error_survey(rng)
    out = unit_error_variances(survey, scales=scales, composites={"ex": ["team", "lead"]},
                               min_group_size=5)
    assert list(out.columns) == ["unit_id", "period", "team_error_var", "lead_error_var",
                                 "enps_error_var", "ex_error_var"]
    assert out[["unit_id", "period"]].values.tolist() == [
        ["a", "p1"], ["a", "p2"], ["b", "p1"], ["b", "p2"], ["c", "p1"], ["c", "p2"]]
    s = survey.assign(team=(survey["q1"] + 6 - survey["q2"]) / 2, lead=survey["q3"],
                      enps=100.0 * (survey["e"] >= 9) - 100.0 * (survey["e"] <= 6))
    s["ex"] = s[["team", "lead"]].mean(axis=1, skipna=False)
    g = s.groupby(["unit_id", "period"])
    for col in ("team", "lead", "enps", "ex"):
        expected = (g[col].var(ddof=1) / g[col].count()).to_numpy()
        got = out[f"{col}_error_var"].to_numpy()
        np.testing.assert_allclose(got[:4], expected[:4], rtol=1e-12, err_msg=col)
        assert np.isnan(got[4:]).all(), col  # unit c (2 respondents) is suppressed
    # unit a, p1: 'lead' and the composite rest on the 8 respondents with a lead score
    a1 = s[(s["unit_id"] == "a") & (s["period"] == "p1")]
    assert out.loc[0, "ex_error_var"] == pytest.approx(a1["ex"].dropna().var() / 8, rel=1e-12)
    assert out.loc[0, "team_error_var"] == pytest.approx(a1["team"].var() / 9, rel=1e-12)
    with pytest.raises(ParameterError, match=r"`composites\['ex'\]` must list scales among "
                       r"\['team', 'lead', 'enps'\], but \['team', 'nope'\] was passed"):
        unit_error_variances(survey, scales=scales, composites={"ex": ["team", "nope"]})


def test_unit_panel_with_error_variances(rng):
    survey, scales = _error_survey(rng)
    outcomes = pd.DataFrame({"unit_id": ["a", "a", "b", "b", "c", "c"],
                             "period": ["p1", "p2"] * 3,
                             "csat": [80.0, 70.0, 71.0, np.nan, 60.0, 65.0],
                             "sales": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                             "headcount": 10.0})
    study = _fake_study(survey, outcomes)
    study.config.scales = {
        "team": SimpleNamespace(items=("q1", "q2"), reverse=("q2",), points=(1, 5),
                                kind="likert"),
        "lead": SimpleNamespace(items=("q3",), reverse=(), points=(1, 5), kind="likert"),
        "enps": SimpleNamespace(items=("e",), reverse=(), points=(0, 10), kind="nps"),
    }
    study.config.periods = ["p1", "p2"]
    study.config.outcomes = {"csat": SimpleNamespace(reliability=0.8), "sales": object()}
    plain = unit_panel(study, "acme")
    panel = unit_panel(study, "acme", errors=True, composites={"ex": ["team", "lead"]})
    assert list(panel.columns) == list(plain.columns) + [
        "team_error_var", "lead_error_var", "enps_error_var", "ex_error_var",
        "csat_error_var", "sales_error_var"]
    pd.testing.assert_frame_equal(panel[plain.columns], plain)
    direct = unit_error_variances(survey, scales=study.config.scales,
                                  composites={"ex": ["team", "lead"]})
    np.testing.assert_array_equal(panel["ex_error_var"].to_numpy(),
                                  direct["ex_error_var"].to_numpy())
    assert panel.loc[panel["suppressed"], ["team_error_var", "ex_error_var"]].isna().all().all()
    assert panel["ex_error_var"].notna().sum() == 4
    # csat declares reliability 0.8: 0.2 x its variance over the client's unit-periods
    csat_var = outcomes["csat"].var(ddof=1)
    assert panel["csat_error_var"].tolist()[:3] == pytest.approx([0.2 * csat_var] * 3)
    assert np.isnan(panel.loc[3, "csat_error_var"])  # no value, no error
    assert panel["sales_error_var"].tolist() == [0.0] * 6  # no reliability: taken as exact
    with pytest.raises(ParameterError, match="`composites` is only used with errors=True"):
        unit_panel(study, "acme", composites={"ex": ["team"]})


# ----------------------------------------------------------------------------- scale
def test_vectorised_on_a_large_survey(rng):
    # 200,000 respondents x 10 items in 2 scales x 2,000 units. How fast it is, is measured
    # by the bench (B3, `make bench`: 1,000,000 respondents against a per-unit loop), not here.
    n, units = 200_000, 2_000
    items = {f"q{i}": rng.integers(1, 6, n).astype(float) for i in range(10)}
    survey = pd.DataFrame(
        {"unit_id": rng.integers(0, units, n).astype(str), "period": "p", **items}
    )
    scales = {"a": [f"q{i}" for i in range(5)], "b": [f"q{i}" for i in range(5, 10)]}
    out = aggregate_units(survey, scales=scales)
    ag = agreement(survey, unit="unit_id", scales=scales, points=(1, 5))
    assert len(out) == 2 * units and ag["n_units"].tolist() == [units, units]
    # random answers: no between-unit variance, and rwg(j) well below 1
    assert abs(ag["icc1"]).max() < 0.01


def test_public_names_are_exported():
    for name in ("aggregate_units", "unit_panel", "unit_error_variances", "agreement", "icc",
                 "rwg_j"):
        assert getattr(exresearch, name) is getattr(exresearch.aggregate, name)


# ----------------------------------------------------------------------------- simulated study
@pytest.mark.filterwarnings("ignore:rwg\\(j\\) of scale .* is undefined for:UserWarning")
def test_unit_panel_on_small_simulated_study(small_study):
    study = exresearch.load_study(small_study)
    cfg = study.config
    m = cfg.min_group_size
    scales = list(cfg.scales)
    seen_small = 0
    for cid in study.clients:
        survey = study.survey(cid)
        panel = unit_panel(study, cid)
        agg = aggregate_units(survey, scales=cfg.scales, min_group_size=m, points=cfg.points)
        size = survey.groupby(["unit_id", "period"]).size()
        small = size[size < m].index
        seen_small += len(small)
        # no value of a small unit-period anywhere: long frame and wide panel
        long_small = agg.set_index(["unit_id", "period"]).loc[small]
        assert long_small["suppressed"].all()
        assert long_small[["mean", "sd", "pct_favourable"]].isna().all().all()
        wide = panel.set_index(["unit_id", "period"])
        assert wide.loc[small, "suppressed"].all()
        assert wide.loc[small, scales].isna().all().all()
        assert (wide.loc[small, "n_respondents"] < m).all()
        if len(small):  # they keep their outcomes
            assert wide.loc[small, list(cfg.outcomes)].notna().any(axis=None)
        # shown unit-periods equal an independent pandas computation of the unit means
        scores = exresearch.score_scales(survey, scales=cfg.scales)
        likert = [s for s in scales if cfg.scales[s].kind == "likert"]
        means = scores.groupby(["unit_id", "period"])[likert].mean()
        shown = wide.index[~wide["suppressed"].to_numpy()]
        counts = scores.groupby(["unit_id", "period"])[likert].count().loc[shown]
        expected = means.loc[shown].where(counts >= m)
        pd.testing.assert_frame_equal(wide.loc[shown, likert], expected, check_names=False)
        # agreement per period: defined, and rwg(j) within [0, 1]
        first = survey[survey["period"] == cfg.periods[0]]
        ag = agreement(first, unit="unit_id", scales=cfg.scales, points=cfg.points)
        assert list(ag.index) == scales
        assert ag[["icc1", "icc2", "rwg_j_mean"]].notna().all().all()
        assert ((ag["rwg_j_mean"] >= 0) & (ag["rwg_j_mean"] <= 1)).all()
    assert seen_small > 0  # the simulated study does contain groups below the threshold
