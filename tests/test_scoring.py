"""Scale scoring, eNPS, % favourable and reliability (exresearch.scoring).

Reference values come from R (psych::alpha) on the published psych::bfi and
multilevel::lq2002 / bhr2000 data, produced by ``tests/r/measurement.R`` into
``tests/data/measurement_reference.json``; the R session is not needed here.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pingouin as pg
import pytest

import exresearch
from exresearch.exceptions import ParameterError
from exresearch.scoring import enps, item_total, pct_favourable, reliability, score_scales

DATA = Path(__file__).resolve().parent / "data"
REF = json.loads((DATA / "measurement_reference.json").read_text())
TOL = 1e-6


@pytest.fixture(scope="module")
def bfi():
    return pd.read_csv(DATA / "measurement_bfi.csv")


def _bfi_scales():
    return {
        name: {"items": r["items"], "reverse": r["reverse"]} for name, r in REF["bfi"].items()
    }


# ----------------------------------------------------------------------------- score_scales
def test_score_scales_reverse_coding_and_half_rule_by_hand():
    survey = pd.DataFrame(
        {
            "unit_id": ["u1", "u1", "u2", "u2"],
            "period": ["p"] * 4,
            "respondent_id": ["a", "b", "c", "d"],
            "x": ["junk"] * 4,  # not an item: must not reach the output
            "q1": [5.0, 4.0, np.nan, 2.0],
            "q2": [1.0, np.nan, np.nan, 3.0],
            "q3": [4.0, np.nan, 3.0, np.nan],
            "r1": [2.0, 5.0, np.nan, 1.0],
        }
    )
    scales = {
        # three items, q2 reversed on 1-5: 6 - x
        "three": {"items": ["q1", "q2", "q3"], "reverse": ["q2"]},
        # four items: 2 of 4 answered is enough
        "four": ["q1", "q2", "q3", "r1"],
    }
    out = score_scales(survey, scales=scales)
    assert list(out.columns) == ["unit_id", "period", "respondent_id", "three", "four"]
    assert out.index.equals(survey.index)
    # a: (5 + (6-1) + 4) / 3 = 14/3 ; b: only q1 of 3 answered -> NaN (1 < 1.5)
    # c: only q3 -> NaN ; d: (2 + (6-3)) / 2 = 2.5
    np.testing.assert_allclose(out["three"], [14 / 3, np.nan, np.nan, 2.5])
    # four (no reverse): a (5+1+4+2)/4 = 3 ; b (4+5)/2 = 4.5 ; c 1 of 4 -> NaN ; d (2+3+1)/3 = 2
    np.testing.assert_allclose(out["four"], [3.0, 4.5, np.nan, 2.0])


def test_score_scales_half_rule_edges():
    # J = 1: the one item ; J = 2: one answer suffices ; J = 5: 3 needed
    survey = pd.DataFrame(
        {
            "a": [3.0, np.nan],
            "b1": [2.0, np.nan], "b2": [np.nan, np.nan],
            "c1": [1.0, 1.0], "c2": [2.0, 2.0], "c3": [3.0, np.nan],
            "c4": [np.nan, np.nan], "c5": [np.nan, np.nan],
        }
    )
    out = score_scales(
        survey,
        scales={"one": ["a"], "two": ["b1", "b2"], "five": ["c1", "c2", "c3", "c4", "c5"]},
    )
    np.testing.assert_allclose(out["one"], [3.0, np.nan])
    np.testing.assert_allclose(out["two"], [2.0, np.nan])
    np.testing.assert_allclose(out["five"], [2.0, np.nan])  # 3 of 5, then 2 of 5


def test_score_scales_nps_raw_and_points_forms():
    survey = pd.DataFrame({"e": [0.0, 10.0, np.nan], "h1": [0.0, 4.0, 2.0], "h2": [4.0, 4.0, 1.0]})
    spec = SimpleNamespace(items=("h1", "h2"), reverse=("h2",), points=(0, 4), kind="likert")
    out = score_scales(survey, scales={"enps": {"items": ["e"], "kind": "nps"}, "hostility": spec})
    np.testing.assert_allclose(out["enps"], [0.0, 10.0, np.nan])
    # 0-4 reversed: 4 - x ; (0 + 0)/2, (4 + 0)/2, (2 + 3)/2
    np.testing.assert_allclose(out["hostility"], [0.0, 2.0, 2.5])
    # the same through a points dict and a plain list
    out2 = score_scales(survey, scales={"h": ["h1", "h2"]}, points={"h": (0, 4)})
    np.testing.assert_allclose(out2["h"], [2.0, 4.0, 1.5])


def test_score_scales_accepts_study_scalespec():
    from exresearch.study import ScaleSpec

    survey = pd.DataFrame({"q1": [1.0, 5.0], "q2": [5.0, 1.0]})
    spec = ScaleSpec(name="s", items=("q1", "q2"), reverse=("q2",), points=(1, 5))
    np.testing.assert_allclose(score_scales(survey, scales={"s": spec})["s"], [1.0, 5.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scales": {}}, "`scales` must be a non-empty dict"),
        ({"scales": {"s": ["q1", "nope"]}}, "'nope' (scale 's')"),
        ({"scales": {"s": "q1"}}, "not the string 'q1'"),
        ({"scales": {"s": ["q1"]}, "points": (5, 1)}, "min < max, but (5, 1) was passed"),
        ({"scales": {"s": ["q1"]}, "points": "1-5"}, "(min, max) pair of numbers, but '1-5'"),
        ({"scales": {"s": ["q1"]}, "points": {"t": (1, 5)}}, "no entry for scale 's'"),
        ({"scales": {"s": {"items": ["q1"], "kind": "stars"}}}, "['likert', 'nps'], but 'stars'"),
        ({"scales": {"s": {"items": ["q1", "q2"], "kind": "nps"}}}, "exactly one 0-10 item"),
        ({"scales": {"s": {"items": ["q1"], "reverse": ["q2"]}}}, "but ['q2'] were passed"),
        ({"scales": {"s": ["q1", "q1"]}}, "lists an item twice"),
        ({"scales": {"s": ["q2"]}, "points": (1, 5)}, "'q2' (1 answers, e.g. 7)"),
    ],
)
def test_score_scales_errors_name_the_parameter(kwargs, message):
    survey = pd.DataFrame({"q1": [1.0, 2.0], "q2": [7.0, 3.0]})
    with pytest.raises(ParameterError) as err:
        score_scales(survey, **kwargs)
    assert message in str(err.value)


def test_score_scales_rejects_text_items():
    survey = pd.DataFrame({"q1": ["agree", "disagree"]})
    with pytest.raises(ParameterError, match="item 'q1' of scale 's' must be numeric, but it has"):
        score_scales(survey, scales={"s": ["q1"]})


def test_score_scales_nullable_floats():
    survey = pd.DataFrame({"q1": pd.array([1.0, None, 4.0], dtype="Float64")})
    np.testing.assert_allclose(score_scales(survey, scales={"s": ["q1"]})["s"], [1, np.nan, 4])


def test_score_scales_rejects_non_frame():
    with pytest.raises(ParameterError, match="`survey` must be a pandas DataFrame, but list"):
        score_scales([[1, 2]], scales={"s": ["q1"]})


# ----------------------------------------------------------------------------- eNPS, % fav
def test_enps_by_hand():
    # 3 promoters (9, 10, 10), 2 passives (7, 8), 3 detractors (0, 5, 6), 1 missing
    # -> 100 * (3 - 3) / 8 = 0
    assert enps([9, 10, 10, 7, 8, 0, 5, 6, np.nan]) == 0.0
    # 2 promoters, 1 detractor of 4 -> 25
    assert enps(pd.Series([10, 9, 6, 8])) == pytest.approx(25.0)
    assert enps([6, 6]) == -100.0
    assert enps([9]) == 100.0


def test_enps_empty_and_out_of_range():
    with pytest.warns(UserWarning, match="eNPS is undefined without answers"):
        assert np.isnan(enps([np.nan]))
    with pytest.raises(ParameterError, match="within 0-10, but 11 was passed"):
        enps([5, 11])


def test_pct_favourable_items_and_scale_means():
    assert pct_favourable([1, 2, 3, 4, 5, np.nan]) == pytest.approx(40.0)
    # on scale means: >= max - 1 = 4 counts ; 3.99 does not
    assert pct_favourable([3.99, 4.0, 4.5, 2.0]) == pytest.approx(50.0)
    assert pct_favourable([5, 6, 7], points=(1, 7)) == pytest.approx(200 / 3)
    with pytest.warns(UserWarning, match="% favourable is undefined"):
        assert np.isnan(pct_favourable([np.nan, np.nan]))


# ----------------------------------------------------------------------------- reliability
def test_reliability_bfi_matches_psych(bfi):
    out = reliability(bfi, scales=_bfi_scales(), points=(1, 6))
    assert list(out.columns) == ["scale", "n", "n_items", "alpha", "ci_low", "ci_high"]
    assert list(out["scale"]) == list(REF["bfi"])
    for row in out.itertuples():
        ref = REF["bfi"][row.scale]["alpha"]
        assert row.n == ref["n"] and row.n_items == ref["n_items"] == 5
        assert row.alpha == pytest.approx(ref["alpha"], abs=TOL)
        assert row.ci_low == pytest.approx(ref["ci_low"], abs=TOL)
        assert row.ci_high == pytest.approx(ref["ci_high"], abs=TOL)
    # the published values (psych::alpha on bfi, complete cases): A .70, O .60
    agree = out.set_index("scale").loc["agreeableness"]
    assert round(agree["alpha"], 2) == 0.70 and agree["n"] == 2709


def test_reliability_lq2002_and_bhr2000_match_psych():
    lq = pd.read_csv(DATA / "measurement_lq2002.csv")
    scales = {s: REF["lq2002"][s]["alpha"]["items"] for s in ("lead", "tsig", "hostil")}
    out = reliability(lq, scales=scales, points={"lead": (1, 5), "tsig": (1, 5), "hostil": (0, 4)})
    for row in out.itertuples():
        ref = REF["lq2002"][row.scale]["alpha"]
        assert (row.n, row.n_items) == (ref["n"], ref["n_items"])
        assert row.alpha == pytest.approx(ref["alpha"], abs=TOL)
        assert (row.ci_low, row.ci_high) == pytest.approx((ref["ci_low"], ref["ci_high"]), abs=TOL)
    bhr = pd.read_csv(DATA / "measurement_bhr2000.csv")
    ref = REF["bhr2000"]["climate"]["alpha"]
    out = reliability(bhr, scales={"climate": ref["items"]})
    assert out.loc[0, "alpha"] == pytest.approx(ref["alpha"], abs=TOL)


def test_reliability_equals_pingouin_listwise(bfi):
    items = REF["bfi"]["neuroticism"]["items"]
    complete = bfi[items].dropna()
    alpha, ci = pg.cronbach_alpha(complete, nan_policy="listwise")
    out = reliability(bfi, scales={"n": items}, points=(1, 6))
    assert out.loc[0, "alpha"] == pytest.approx(alpha, abs=1e-12)
    # pingouin rounds its interval to 3 decimals (and uses the rows before deletion for n)
    np.testing.assert_allclose(out.loc[0, ["ci_low", "ci_high"]].astype(float), ci, atol=5e-4)


def test_reliability_hand_case_constant_item_and_single_item():
    # q1 = q2 - 1 (var 1, cov 1), q3 constant: C = [[1,1,0],[1,1,0],[0,0,0]]
    # alpha = 3/2 * (1 - trace 2 / sum 4) = 0.75 ; a constant item does not make it undefined
    survey = pd.DataFrame(
        {"q1": [1.0, 2.0, 3.0], "q2": [2.0, 3.0, 4.0], "q3": [3.0, 3.0, 3.0], "e": [9.0, 0, 10]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = reliability(
            survey,
            scales={"s": ["q1", "q2", "q3"], "enps": {"items": ["e"], "kind": "nps"}},
        )
    assert out.loc[0, "alpha"] == pytest.approx(0.75)
    assert out.loc[0, "n"] == 3
    assert np.isnan(out.loc[1, "alpha"]) and out.loc[1, "n_items"] == 1


def test_reliability_undefined_gives_nan_and_warning():
    survey = pd.DataFrame({"q1": [3.0, 3.0, 3.0], "q2": [3.0, 3.0, 3.0], "q3": [1.0, np.nan, 2.0]})
    with pytest.warns(UserWarning, match="total score has no variance"):
        out = reliability(survey, scales={"flat": ["q1", "q2"]})
    assert np.isnan(out.loc[0, ["alpha", "ci_low", "ci_high"]].astype(float)).all()
    with pytest.warns(UserWarning, match=r"1 respondent\(s\) answered every item"):
        out = reliability(survey.iloc[:2], scales={"s": ["q1", "q3"]})
    assert out.loc[0, "n"] == 1 and np.isnan(out.loc[0, "alpha"])


def test_reliability_listwise_within_scale():
    # missing answers drop the respondent from that scale only
    survey = pd.DataFrame(
        {"q1": [1.0, 2, 3, 4, np.nan], "q2": [2.0, 2, 4, 5, 1], "z1": [1.0, 2, 3, 4, 5],
         "z2": [1.0, 3, 3, 5, 5]}
    )
    out = reliability(survey, scales={"q": ["q1", "q2"], "z": ["z1", "z2"]}).set_index("scale")
    assert out.loc["q", "n"] == 4 and out.loc["z", "n"] == 5
    expected = pg.cronbach_alpha(survey[["q1", "q2"]].dropna())[0]
    assert out.loc["q", "alpha"] == pytest.approx(expected)


def test_reliability_ci_parameter():
    survey = pd.DataFrame({"q1": [1.0, 2, 3], "q2": [1.0, 3, 3]})
    with pytest.raises(ParameterError, match="`ci` must be a number between 0 and 1, but 95"):
        reliability(survey, scales={"s": ["q1", "q2"]}, ci=95)


# ----------------------------------------------------------------------------- item_total
def test_item_total_bfi_matches_psych(bfi):
    out = item_total(bfi, scales=_bfi_scales(), points=(1, 6))
    assert list(out.columns) == [
        "scale", "item", "reversed", "n", "n_missing", "mean", "sd", "r_drop", "alpha_if_deleted",
    ]
    assert len(out) == 25
    for name, ref in REF["bfi"].items():
        part = out[out["scale"] == name]
        assert list(part["item"]) == ref["items"]
        assert list(part.loc[part["reversed"], "item"]) == ref["reverse"]
        np.testing.assert_allclose(part["r_drop"], ref["alpha"]["r_drop"], atol=TOL)
        np.testing.assert_allclose(part["alpha_if_deleted"], ref["alpha"]["alpha_if_deleted"], atol=TOL)
        np.testing.assert_allclose(part["mean"], ref["item_mean"], atol=TOL)
        np.testing.assert_allclose(part["sd"], ref["item_sd"], atol=TOL)
        np.testing.assert_array_equal(part["n"], ref["item_n"])
        np.testing.assert_array_equal(part["n"] + part["n_missing"], len(bfi))


def test_item_total_hand_case_and_constant_item():
    # q3 constant: its corrected r is undefined (NaN + warning); q1 vs q2 (+q3) r = 1
    survey = pd.DataFrame({"q1": [1.0, 2.0, 3.0], "q2": [2.0, 3.0, 4.0], "q3": [3.0, 3.0, 3.0]})
    with pytest.warns(UserWarning, match=r"items \['q3'\] of scale 's' have no variance"):
        out = item_total(survey, scales={"s": ["q1", "q2", "q3"]})
    np.testing.assert_allclose(out["r_drop"], [1.0, 1.0, np.nan])
    # alpha without q1: items q2, q3 -> C = [[1,0],[0,0]] -> 2 * (1 - 1/1) = 0
    # alpha without q3: q1, q2 perfectly correlated -> 2 * (1 - 2/4) = 1
    np.testing.assert_allclose(out["alpha_if_deleted"], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(out["mean"], [2.0, 3.0, 3.0])
    np.testing.assert_allclose(out["sd"], [1.0, 1.0, 0.0])


def test_item_total_two_item_and_single_item_scales():
    survey = pd.DataFrame({"q1": [1.0, 2, 3, 4], "q2": [1.0, 3, 2, 4], "e": [10.0, 9, np.nan, 3]})
    out = item_total(survey, scales={"s": ["q1", "q2"], "e": {"items": ["e"], "kind": "nps"}})
    assert out["alpha_if_deleted"].isna().all()
    r = np.corrcoef(survey["q1"], survey["q2"])[0, 1]
    np.testing.assert_allclose(out["r_drop"].iloc[:2], [r, r])
    assert np.isnan(out["r_drop"].iloc[2])
    assert out["n"].tolist() == [4, 4, 3] and out["n_missing"].tolist() == [0, 0, 1]


def test_public_names_are_exported():
    for name in ("score_scales", "reliability", "item_total", "enps", "pct_favourable"):
        assert getattr(exresearch, name) is getattr(exresearch.scoring, name)
