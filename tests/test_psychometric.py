"""Tests for exresearch.psychometric against psychmeta's formulas written out in R
(tests/r/psychometric.R) and against hand cases."""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exresearch import ParameterError, psychometric
from exresearch.psychometric import (
    PSYCHOMETRIC_FIELDS,
    correct_correlations,
    psychometric_meta,
    retest_reliability,
)

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "psychometric_reference.json").read_text())
CLIENTS = pd.read_csv(DATA / "psychometric_clients.csv")
TOL = 1e-6

CASES = {
    "bare_bones": {},
    "no_bias_correction": {"correct_bias": False},
    "both_sides": {"rxx": "rxx", "ryy": "ryy"},
    "both_sides_range": {"rxx": "rxx", "ryy": "ryy", "ux": "ux"},
    "constant_artifacts": {"rxx": 0.8, "ryy": 0.7},
}


def test_doctests():
    res = doctest.testmod(psychometric, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 0


@pytest.mark.parametrize("case", list(CASES))
def test_matches_psychmeta_formulas(case):
    res = psychometric_meta(CLIENTS, **CASES[case])
    ref = REF[case]
    assert list(res.index) == list(PSYCHOMETRIC_FIELDS)
    for field in ("k", "n", "mean_r", "var_r", "var_e", "var_res", "sd_r", "sd_res",
                  "pct_var_e", "se_r_hs", "se_r", "cr_low", "cr_high", "mean_rho", "var_r_c",
                  "var_e_c", "var_rho", "sd_r_c", "sd_rho", "pct_var_artifacts", "se_rho_hs",
                  "se_rho", "rho_cr_low", "rho_cr_high"):
        assert res[field] == pytest.approx(ref[field], abs=TOL, rel=0), field
    z = 1.959963984540054
    assert res["rho_ci_low"] == pytest.approx(res["mean_rho"] - z * res["se_rho"], abs=1e-12)
    per = correct_correlations(CLIENTS, **CASES[case])
    for field, col in (("rho_i", "rho"), ("A", "A"), ("a", "a_rr"), ("var_e_c_i", "var_e_c")):
        assert per[col].to_numpy() == pytest.approx(np.asarray(ref[field]), abs=TOL), field


def test_corrections_raise_rho_and_shrink_artifact_variance():
    bb = psychometric_meta(CLIENTS)
    both = psychometric_meta(CLIENTS, rxx="rxx", ryy="ryy")
    rr = psychometric_meta(CLIENTS, rxx="rxx", ryy="ryy", ux="ux")
    assert bb["mean_rho"] == pytest.approx(bb["mean_r"])
    assert bb["mean_r"] < both["mean_rho"] < rr["mean_rho"]
    # bare-bones: rho equals r, and the observed r is not corrected
    assert both["mean_r"] == bb["mean_r"]
    assert both["mean_rxx"] == pytest.approx(np.average(CLIENTS["rxx"], weights=CLIENTS["n"]))


def test_se_never_below_sampling_error():
    """Correlations that agree more than sampling error predicts: HS's SD_r/sqrt(k) is too
    small (the issue's 224% case), se_r is not."""
    d = pd.DataFrame({"r": [0.30, 0.31, 0.29, 0.30, 0.305], "n": [40, 50, 45, 60, 55]})
    res = psychometric_meta(d, correct_bias=False)
    assert res["pct_var_e"] > 100
    floor = math.sqrt(np.sum(d["n"] ** 2 * (1 - res["mean_r"] ** 2) ** 2 / (d["n"] - 1))) \
        / d["n"].sum()
    assert res["se_r"] == pytest.approx(floor)
    assert res["se_r_hs"] < res["se_r"]
    assert res["sd_res"] == 0 and res["cr_low"] == res["cr_high"] == res["mean_r"]


def test_missing_artifact_is_imputed_with_warning():
    d = CLIENTS.copy()
    d.loc[0, "ryy"] = np.nan
    with pytest.warns(UserWarning, match="1 missing `ryy` value"):
        per = correct_correlations(d, rxx="rxx", ryy="ryy")
    fill = np.average(d["ryy"].iloc[1:], weights=d["n"].iloc[1:])
    assert per["ryy"].iloc[0] == pytest.approx(fill)


@pytest.mark.parametrize("kw, msg", [
    ({"rxx": 1.2}, r"`rxx` must lie in \(0, 1\], but \[1.2"),
    ({"ryy": "nope"}, "nope"),
    ({"rxx": [0.8]}, "`rxx` must be a column name, a number or None, but \\[0.8\\]"),
    ({"cred_level": 80}, "`cred_level` must be a number between 0 and 1, but 80"),
])
def test_bad_arguments(kw, msg):
    with pytest.raises(ParameterError, match=msg):
        psychometric_meta(CLIENTS, **kw)


def test_needs_two_clients():
    with pytest.raises(ParameterError, match="at least 2 correlations, but k = 1"):
        psychometric_meta(CLIENTS.iloc[:1])


def test_retest_reliability_steps_up():
    rng = np.random.default_rng(3)
    true = rng.normal(size=60)
    rows = []
    for p in ["1", "2", "3"]:
        y = true + rng.normal(0, 1.0, 60)  # one-period reliability 0.5
        rows += [{"unit_id": f"u{i}", "period": p, "y": v} for i, v in enumerate(y)]
    res = retest_reliability(pd.DataFrame(rows), y="y", periods=["1", "2", "3"])
    assert res["pairs"] == 2 and res["m"] == 3
    assert 0.3 < res["r_tt"] < 0.7
    assert res["ryy"] == pytest.approx(3 * res["r_tt"] / (1 + 2 * res["r_tt"]))
    one = retest_reliability(pd.DataFrame(rows), y="y", periods=["1"])
    assert one["pairs"] == 0 and np.isnan(one["ryy"])
