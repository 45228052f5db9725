"""Tests for exresearch.moderators against metafor (tests/r/psychometric.R) and hand cases."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exresearch import ParameterError, moderators
from exresearch.moderators import (
    merge_groups,
    meta_regression,
    moderator_error_rates,
    moderator_tests,
)

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "psychometric_reference.json").read_text())
CLIENTS = pd.read_csv(DATA / "psychometric_clients.csv").assign(
    log_revenue=lambda d: np.log(d["revenue"]))
TOL = 1e-6


def test_doctests():
    res = doctest.testmod(moderators, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 0


@pytest.mark.parametrize("method", ["REML", "DL"])
def test_continuous_meta_regression_matches_metafor(method):
    res = meta_regression(CLIENTS, continuous=["log_revenue", "units"], method=method,
                          permutations=0)
    ref = REF[f"metareg_{method}"]
    assert res["term"].tolist() == ["intercept", "log_revenue", "units"]
    for col in ("estimate", "se", "z", "p_val"):
        assert res[col].to_numpy() == pytest.approx(np.asarray(ref[col]), abs=TOL), col
    for col in ("tau2", "qm", "qm_p", "qe", "qe_p", "r2"):
        assert res[col].iloc[0] == pytest.approx(ref[col], abs=TOL), col
    assert res["n_perm"].iloc[0] == 0 and np.isnan(res["p_perm"]).all()


@pytest.mark.parametrize("method", ["REML", "DL"])
def test_exact_permutation_test_matches_permutest(method):
    res = meta_regression(CLIENTS.iloc[:6], continuous=["log_revenue"], method=method,
                          permutations=1000, seed=1)
    ref = REF[f"permutest6_{method}"]
    assert res["exact"].all() and res["n_perm"].iloc[0] == 720
    assert res["estimate"].to_numpy() == pytest.approx(np.asarray(ref["estimate"]), abs=TOL)
    assert res["qm"].iloc[0] == pytest.approx(ref["qm"], abs=TOL)
    assert res["p_perm"].to_numpy() == pytest.approx(np.asarray(ref["p_perm"]), abs=1e-12)
    assert res["qm_p_perm"].iloc[0] == pytest.approx(ref["qm_p_perm"], abs=1e-12)


def test_exact_permutation_test_with_ties_matches_permutest():
    d = CLIENTS.assign(grp=["a", "a", "b", "a", "b", "a", "a", "b", "a", "b"])
    res = meta_regression(d, categorical="grp", permutations=1000, seed=1)
    ref = REF["permutest_groups_REML"]
    assert res["exact"].all() and res["n_perm"].iloc[0] == ref["n_perm"] == 210
    assert res["estimate"].to_numpy() == pytest.approx(np.asarray(ref["estimate"]), abs=TOL)
    assert res["p_perm"].to_numpy() == pytest.approx(np.asarray(ref["p_perm"]), abs=1e-12)
    assert res["qm_p_perm"].iloc[0] == pytest.approx(ref["qm_p_perm"], abs=1e-12)


def test_random_permutations_are_seeded():
    a = meta_regression(CLIENTS, continuous=["units"], permutations=200, seed=3)
    b = meta_regression(CLIENTS, continuous=["units"], permutations=200, seed=3)
    assert not a["exact"].iloc[0] and a["n_perm"].iloc[0] == 200
    assert a["qm_p_perm"].iloc[0] == b["qm_p_perm"].iloc[0]
    assert 0 < a["qm_p_perm"].iloc[0] <= 1


def test_merge_groups_reaches_minimum():
    d = pd.DataFrame({"industry": ["bank"] * 2 + ["retail"] * 2 + ["hotel"] * 2
                      + ["telco"] * 2 + ["care"] * 2})
    m = merge_groups(d, min_clients=3)
    sizes = m.drop_duplicates("merged")["merged_clients"]
    assert (sizes >= 3).all() and sizes.sum() == 10
    assert m["merged"].nunique() == 2  # 5 x 2 -> two groups a between-group test can use
    merged = dict(zip(m["group"], m["merged"], strict=True))
    # smallest first, ties by name: bank + care, hotel + retail, then telco joins bank + care
    assert merged["bank"] == merged["telco"] == "bank + care + telco"
    assert merged["hotel"] == "hotel + retail"
    one = merge_groups(pd.DataFrame({"industry": ["a", "b"]}), min_clients=3)
    assert one["merged"].nunique() == 1


def test_merge_groups_counts_clients_not_rows():
    d = pd.DataFrame({"client": ["A", "A", "B", "C", "C"], "industry": ["x", "x", "x", "y", "y"]})
    m = merge_groups(d, client="client", min_clients=2)
    assert m.set_index("group")["clients"].to_dict() == {"x": 2, "y": 1}
    assert m["merged"].nunique() == 1


def test_moderator_tests_say_when_k_is_too_small():
    res = moderator_tests(CLIENTS.iloc[:6], continuous=["units"], seed=1)
    assert not res["tested"].iloc[0]
    assert res["verdict"].iloc[0] == "Not tested: 6 clients, and a moderator test needs at least 10."
    res = moderator_tests(CLIENTS, continuous=["units", "log_revenue"], seed=1, permutations=200)
    assert res["tested"].all() and res["k"].tolist() == [10, 10]
    assert res["verdict"].str.startswith(("No clear difference", "The link differs")).all()


def test_one_group_is_not_tested():
    d = CLIENTS.assign(group="all")
    res = moderator_tests(d, categorical="group")
    assert res["verdict"].iloc[0].startswith("Not tested: after merging")


def test_errors_name_the_value():
    with pytest.raises(ParameterError, match="at least one moderator"):
        meta_regression(CLIENTS)
    with pytest.raises(ParameterError, match="`permutations` must be a non-negative integer, but -1"):
        meta_regression(CLIENTS, continuous=["units"], permutations=-1)
    with pytest.raises(ParameterError, match="'const' does not vary"):
        meta_regression(CLIENTS.assign(const=1.0), continuous=["const"])
    with pytest.raises(ParameterError, match="`min_clients` must be a positive integer, but 0"):
        merge_groups(CLIENTS.assign(industry="a"), min_clients=0)


def test_error_rates_null_and_effect():
    """Small-size check of the verdict's error rates (full sizes in docs/methods.md)."""
    res = moderator_error_rates(n_clients=12, n_units=40, slope=[0.0, 0.3], n_sims=40,
                                permutations=100, seed=7)
    null, eff = res.iloc[0], res.iloc[1]
    assert null["rate_perm"] <= 0.2  # nominal 0.05; 40 simulations
    assert eff["rate_perm"] > null["rate_perm"]


def test_permutation_p_equals_one_wald_fit_per_permutation():
    """The batched permutation test (no k x k matrix) gives the p-values of fitting each
    permuted design on its own (:func:`moderators._wald`, as metafor's permutest)."""
    from exresearch.moderators import _design, _permutations, _wald

    rng = np.random.default_rng(11)
    k = 40
    d = pd.DataFrame({"r": np.tanh(0.3 + rng.normal(0, 0.2, k)),
                      "n": rng.integers(8, 50, k).astype(float),
                      "size": rng.normal(size=k), "grp": rng.choice(["a", "b", "c"], k)})
    for method in ("REML", "DL", "FE"):
        for kw in ({"continuous": ["size"]}, {"categorical": "grp"}):
            res = meta_regression(d, method=method, permutations=150, seed=5, **kw)
            X, _ = _design(d, kw.get("continuous", []), kw.get("categorical"))
            yi, vi = np.arctanh(d["r"].to_numpy()), 1.0 / (d["n"].to_numpy() - 3.0)
            _, _, _, z, qm = _wald(yi, vi, X, method)
            perms, exact = _permutations(k, X, 150, np.random.default_rng(5))
            assert not exact and len(perms) == 150
            zs, qms = [], []
            for p in perms:
                _, _, _, zp, qp = _wald(yi, vi, np.column_stack([X[:, 0], X[p, 1:]]), method)
                zs.append(zp)
                qms.append(qp)
            zs, qms = np.array(zs), np.array(qms)
            comptol = moderators._COMPTOL
            want = np.mean(np.abs(zs) >= np.abs(z) - comptol, axis=0)
            assert res["p_perm"].tolist() == want.tolist(), (method, kw)
            assert res["qm_p_perm"].iloc[0] == np.mean(qms >= qm - comptol), (method, kw)
            assert 0 < res["qm_p_perm"].iloc[0] < 1
