"""Tests for exresearch.meta against R's metafor (values from tests/r/meta.R)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exresearch import ParameterError
from exresearch.meta import (
    META_FIELDS,
    hunter_schmidt,
    leave_one_out,
    meta_analysis,
    meta_regression,
    plot_forest,
    pool_correlations,
)

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "meta_reference.json").read_text())
SETS = ["molloy2014", "mcdaniel1994", "cohen1981"]
TOL = 1e-6


def _load(name):
    return pd.read_csv(DATA / f"meta_{name}.csv")


# ------------------------------------------------------------------ metafor: rma + predict
@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("method", ["FE", "DL", "REML"])
def test_meta_analysis_matches_metafor(name, method):
    res = meta_analysis(_load(name), method=method)
    ref = REF[name][method]
    assert list(res.index) == list(META_FIELDS)
    for field in META_FIELDS:
        assert res[field] == pytest.approx(ref[field], abs=TOL, rel=0), field
    # the pooled Fisher z is tanh^-1 of the estimate
    assert math.atanh(res["estimate"]) == pytest.approx(ref["z"], abs=TOL)


def test_molloy2014_printed_values():
    """metafor's documented example: REML z = 0.1499, tau^2 = 0.0081, I^2 = 61.73%."""
    res = meta_analysis(_load("molloy2014"), r="r", n="n", method="REML")
    assert round(math.atanh(res["estimate"]), 4) == 0.1499
    assert round(res["tau2"], 4) == 0.0081
    assert round(100 * res["i2"], 2) == 61.73
    assert round(res["q"], 4) == 38.1595
    fe = meta_analysis(_load("molloy2014"), method="FE")
    assert round(100 * fe["i2"], 2) == 60.69  # metafor's FE I^2 = (Q - df) / Q
    assert (fe["pi_low"], fe["pi_high"]) == (fe["ci_low"], fe["ci_high"])
    assert fe["tau2"] == 0.0


@pytest.mark.parametrize("name", SETS)
def test_dl_matches_statsmodels(name):
    # statsmodels has DL (and Paule-Mandel) but no REML, hence the hand-written REML.
    from statsmodels.stats.meta_analysis import combine_effects

    d = _load(name)
    yi = np.arctanh(d["r"].to_numpy())
    vi = 1.0 / (d["n"].to_numpy() - 3.0)
    sm = combine_effects(yi, vi, method_re="dl")
    res = meta_analysis(d, method="DL")
    assert math.atanh(res["estimate"]) == pytest.approx(sm.mean_effect_re, abs=1e-10)
    assert res["tau2"] == pytest.approx(sm.tau2, abs=1e-10)
    assert res["q"] == pytest.approx(sm.q, abs=1e-8)


# ------------------------------------------------------------------ Hunter-Schmidt
@pytest.mark.parametrize("name", SETS)
def test_hs_series_matches_by_hand_r(name):
    res = meta_analysis(_load(name), method="HS")
    h = REF[name]["HS"]
    assert res["estimate"] == pytest.approx(h["rbar"], abs=1e-12)
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((h["ci_low"], h["ci_high"]), abs=1e-12)
    assert (res["pi_low"], res["pi_high"]) == pytest.approx((h["cr_low"], h["cr_high"]), abs=1e-12)
    assert res["tau2"] == pytest.approx(h["var_res"], abs=1e-12)
    assert res["i2"] == pytest.approx(1 - h["pct_explained"] / 100, abs=1e-10)
    assert res["q"] == pytest.approx(h["q"], rel=1e-10)
    assert res["q_p"] == pytest.approx(h["q_p"], rel=1e-8)


@pytest.mark.parametrize("name", SETS)
def test_hunter_schmidt_corrections_match_by_hand_r(name):
    res = hunter_schmidt(_load(name), rxx=0.8, ryy=0.7)
    ref = REF[name]["HS_corrected"]
    for key, val in ref.items():
        assert res[key] == pytest.approx(val, abs=1e-12), key
    assert res["rho"] == pytest.approx(res["rbar"] / math.sqrt(0.8 * 0.7))


def test_hunter_schmidt_artifact_distribution_by_hand():
    d = pd.DataFrame({"r": [0.30, 0.20, 0.25, 0.10, 0.35],
                      "n": [80, 120, 60, 100, 50],
                      "alpha": [0.81, 0.64, 0.90, np.nan, 0.72]})
    res = hunter_schmidt(d, rxx="alpha", ryy=0.6)
    r, n = d["r"].to_numpy(), d["n"].to_numpy()
    N = n.sum()
    rbar = (n * r).sum() / N
    var_obs = (n * (r - rbar) ** 2).sum() / N
    var_e = (1 - rbar**2) ** 2 / (N / 5 - 1)
    a = np.sqrt([0.81, 0.64, 0.90, 0.72])
    A = a.mean() * math.sqrt(0.6)
    V = (a.std() / a.mean()) ** 2
    var_rho = max(0.0, var_obs - var_e - rbar**2 * V) / A**2
    assert res["rbar"] == pytest.approx(rbar)
    assert res["pct_explained"] == pytest.approx(100 * var_e / var_obs)
    assert res["a_mean"] == pytest.approx(A)
    assert res["rho"] == pytest.approx(rbar / A)
    assert res["var_rho"] == pytest.approx(var_rho)
    z90 = 1.2815515655446004
    assert res["rho_cr_low"] == pytest.approx(rbar / A - z90 * math.sqrt(var_rho))


def test_hunter_schmidt_bad_reliability_message():
    d = pd.DataFrame({"r": [0.3, 0.2], "n": [50, 60]})
    with pytest.raises(ParameterError, match=r"`rxx` must hold reliabilities in \(0, 1\], but 1.5"):
        hunter_schmidt(d, rxx=1.5)


# ------------------------------------------------------------------ meta-regression
@pytest.mark.parametrize("mod", ["type", "struct"])
@pytest.mark.parametrize("method", ["REML", "DL", "FE"])
def test_meta_regression_matches_metafor(mod, method):
    d = _load("mcdaniel1994")
    with pytest.warns(UserWarning, match="left out"):  # rows with a missing moderator
        res = meta_regression(d, moderator=mod, method=method)
    ref = REF[f"metareg_mcdaniel1994_{mod}_{method}"]
    assert len(res) == len(ref["term"])
    assert res["term"].iloc[0] == "intercept"
    assert res["k"].iloc[0] == ref["k"]
    for col in ("estimate", "se", "ci_low", "ci_high", "p_val"):
        np.testing.assert_allclose(res[col], ref[col], atol=TOL, rtol=0, err_msg=col)
    for col in ("tau2", "qm", "qm_p", "qe", "i2"):
        assert res[col].iloc[0] == pytest.approx(ref[col], abs=TOL), col
    assert res["qm_df"].iloc[0] == ref["qm_df"]
    # each level's pooled r is tanh(intercept + coefficient)
    b = res["estimate"].to_numpy()
    expect = np.tanh(np.r_[b[0], b[0] + b[1:]])
    np.testing.assert_allclose(res["level_r"], expect)


def test_meta_regression_needs_two_levels():
    d = pd.DataFrame({"r": [0.3, 0.2, 0.1], "n": [50, 60, 70], "industry": ["retail"] * 3})
    with pytest.raises(ParameterError, match=r"`moderator` \('industry'\) needs at least 2"):
        meta_regression(d, moderator="industry")


# ------------------------------------------------------------------ leave-one-out
@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("method", ["REML", "DL"])
def test_leave_one_out_matches_metafor(name, method):
    d = _load(name)
    res = leave_one_out(d, label="study", method=method)
    ref = REF[name][f"leave1out_{method}"]
    assert res["omitted"].tolist() == d["study"].tolist()
    for col, val in ref.items():
        np.testing.assert_allclose(res[col], val, atol=TOL, rtol=0, err_msg=col)
    full = meta_analysis(d, method=method)["estimate"]
    np.testing.assert_allclose(res["delta"], res["estimate"] - full)


# ------------------------------------------------------------------ pooling many pairs
def test_pool_correlations_groups_and_nan_row():
    d = _load("molloy2014")
    pc = pd.concat([d.assign(x="engagement", y="nps"),
                    d.assign(x="wellbeing", y="nps", r=d["r"] / 2),
                    d.head(1).assign(x="pay", y="nps")])
    with pytest.warns(UserWarning, match=r"\{'x': 'pay', 'y': 'nps'\}: meta-analysis needs at least 2"):
        res = pool_correlations(pc, by=("x", "y"), method="REML")
    assert list(res.columns) == ["x", "y", "method", *META_FIELDS]
    assert res["x"].tolist() == ["engagement", "pay", "wellbeing"]
    ref = REF["molloy2014"]["REML"]
    eng = res.set_index("x").loc["engagement"]
    assert eng["estimate"] == pytest.approx(ref["estimate"], abs=TOL)
    half = meta_analysis(d.assign(r=d["r"] / 2))
    assert res.set_index("x").loc["wellbeing", "tau2"] == pytest.approx(half["tau2"])
    pay = res.set_index("x").loc["pay"]
    assert pay["k"] == 1 and pay["n"] == d["n"].iloc[0] and np.isnan(pay["estimate"])


# ------------------------------------------------------------------ errors and NaN handling
def test_bad_method_message():
    with pytest.raises(ParameterError, match=r"`method` must be one of \['FE', 'DL', 'REML', "
                                             r"'HS'\], but 'reml' was passed"):
        meta_analysis(_load("molloy2014"), method="reml")


def test_missing_column_message():
    with pytest.raises(ParameterError, match=r"column for `r` must be one of \['study', "
                                             r"'r', 'n'\], but 'ri' was passed"):
        meta_analysis(_load("molloy2014"), r="ri")


def test_out_of_range_values_messages():
    d = pd.DataFrame({"r": [0.3, 1.0], "n": [50, 60]})
    with pytest.raises(ParameterError, match=r"strictly between -1 and 1, but \[1.0\]"):
        meta_analysis(d)
    d = pd.DataFrame({"r": [0.3, 0.2], "n": [50, 3]})
    with pytest.raises(ParameterError, match=r"greater than 3 .* but \[3\]"):
        meta_analysis(d)


def test_missing_rows_dropped_with_warning():
    d = _load("molloy2014")
    d2 = pd.concat([d, pd.DataFrame({"study": ["x"], "r": [np.nan], "n": [100]})])
    with pytest.warns(UserWarning, match="1 row"):
        res = meta_analysis(d2)
    assert res["k"] == 16
    assert res["estimate"] == pytest.approx(REF["molloy2014"]["REML"]["estimate"], abs=TOL)


def test_single_study_is_nan_row_with_warning():
    with pytest.warns(UserWarning, match="at least 2 correlations, but k = 1"):
        res = meta_analysis(pd.DataFrame({"r": [0.3], "n": [50]}))
    assert res["k"] == 1 and res["n"] == 50
    assert res.drop(["k", "n"]).isna().all()


def test_reml_tau2_zero_when_homogeneous():
    d = pd.DataFrame({"r": [0.20, 0.21, 0.19, 0.20], "n": [100, 120, 90, 110]})
    res = meta_analysis(d, method="REML")
    assert res["tau2"] == 0.0 and res["i2"] == 0.0
    fe = meta_analysis(d, method="FE")
    assert res["estimate"] == pytest.approx(fe["estimate"])


# ------------------------------------------------------------------ forest plot
def test_plot_forest_artists():
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    d = _load("molloy2014")
    res = meta_analysis(d)
    ax = plot_forest(d, label="study", result=res)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "Pooled" and labels[1:] == d["study"].tolist()
    squares = ax.collections[1]  # hlines first, then the scatter of squares
    offsets = squares.get_offsets()
    np.testing.assert_allclose(offsets[:, 0], d["r"])
    sizes = squares.get_sizes()
    w = 1 / (1 / (d["n"] - 3) + res["tau2"])
    assert np.argmax(sizes) == np.argmax(w) and sizes.max() == pytest.approx(200)
    diamond = [p for p in ax.patches if isinstance(p, Polygon)][0]
    xs = diamond.get_xy()[:, 0]
    assert xs.min() == pytest.approx(res["ci_low"]) and xs.max() == pytest.approx(res["ci_high"])
    pi_line = [c for c in ax.collections if c.get_label() == "prediction interval"][0]
    seg = pi_line.get_segments()[0]
    assert seg[:, 0].tolist() == pytest.approx([res["pi_low"], res["pi_high"]])
    plt.close(ax.figure)


# ------------------------------------------------------------------ recovery from simulation
def _simulate_clients(seed, *, k=20, rho=0.30, tau=0.10):
    """Per-client unit-level correlations with a planted mean z and between-client SD tau."""
    rng = np.random.default_rng(seed)
    z_mu = np.arctanh(rho)
    rows = []
    for i in range(k):
        n_units = int(rng.integers(30, 150))
        rho_i = np.tanh(rng.normal(z_mu, tau))
        x, e = rng.standard_normal((2, n_units))
        y = rho_i * x + math.sqrt(1 - rho_i**2) * e
        rows.append({"client_id": f"c{i}", "r": np.corrcoef(x, y)[0, 1], "n": n_units})
    return pd.DataFrame(rows)


def test_reml_recovers_planted_effect_and_tau():
    rho, tau = 0.30, 0.10
    covered, tau2s, ests = 0, [], []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence warnings expected
        for seed in range(200):
            res = meta_analysis(_simulate_clients(seed, rho=rho, tau=tau), method="REML")
            covered += res["ci_low"] <= rho <= res["ci_high"]
            tau2s.append(res["tau2"])
            ests.append(math.atanh(res["estimate"]))
    coverage = covered / 200
    assert 0.90 <= coverage <= 0.99, coverage
    assert np.mean(ests) == pytest.approx(math.atanh(rho), abs=0.01)
    assert np.mean(tau2s) == pytest.approx(tau**2, abs=0.003)


# ------------------------------------------------------------------ simulated study (end to end)
def _pooled_from_study(path, scales, *, period=None):
    """Per-client unit-level r (scale x nps) from a simulated study, pooled by REML."""
    from exresearch.aggregate import unit_panel
    from exresearch.linkage import correlations
    from exresearch.study import load_study

    study = load_study(path)
    rows = []
    for client in study.clients:
        panel = unit_panel(study, client)
        if period is not None:
            panel = panel[panel["period"] == panel["period"].sort_values().iloc[period]]
        rows.append(correlations(panel, x=scales, y=["nps"]).assign(client_id=client))
    per_client = pd.concat(rows, ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return per_client, pool_correlations(per_client, by=("x", "y"), method="REML")


@pytest.fixture(scope="module")
def classic_small_study(tmp_path_factory):
    """The shared small study as it was before stable unit traits (preset "classic" draws
    the same files as the generator did then), the data this single-seed check was set up
    on; pooled-CI coverage in the default world is measured in tests/test_simulate.py."""
    from conftest import SMALL_STUDY_ARGS

    from exresearch.simulate import simulate_study

    return simulate_study(tmp_path_factory.mktemp("classic") / "study", **SMALL_STUDY_ARGS,
                          preset="classic")


def test_pool_small_study_against_truth(classic_small_study):
    small_study = classic_small_study
    scales = ["tools", "leader", "engagement"]
    per_client, pooled = _pooled_from_study(small_study, scales, period=-1)
    truth = json.loads((Path(small_study) / "truth.json").read_text())
    assert set(per_client["client_id"]) == {c["client_id"] for c in truth["clients"]}
    assert pooled["x"].tolist() == sorted(scales)
    for _, row in pooled.iterrows():
        assert row["k"] == len(truth["clients"])
        z_true = truth["pooled"]["observed"][row["x"]]["z_mean"]
        # 5 clients x ~10 units: the 95% CI is wide but must cover the planted mean
        assert math.atanh(row["ci_low"]) <= z_true <= math.atanh(row["ci_high"]), row["x"]


@pytest.mark.slow
def test_pool_simulated_study_recovers_planted_mean(tmp_path):
    from exresearch.simulate import simulate_study

    path = simulate_study(tmp_path / "study", n_clients=30, n_units=60, n_periods=1, seed=5)
    scales = ["tools", "engagement", "enps"]
    _, pooled = _pooled_from_study(path, scales)
    truth = json.loads((Path(path) / "truth.json").read_text())
    for _, row in pooled.iterrows():
        z_hat = math.atanh(row["estimate"])
        z_true = truth["pooled"]["observed"][row["x"]]["z_mean"]
        z_sample = truth["pooled"]["sample_z_mean"][row["x"]]
        assert row["k"] == 30
        assert math.atanh(row["ci_low"]) <= z_sample <= math.atanh(row["ci_high"]), row["x"]
        assert abs(z_hat - z_true) < 0.06, (row["x"], z_hat, z_true)


def test_reml_boundary_is_exactly_zero():
    # the REML score at tau^2 = 0 is negative: the maximum is on the boundary
    d = pd.DataFrame({"r": [-0.15, 0.39, -0.11, 0.66, 0.29], "n": [10, 10, 12, 9, 12]})
    res = meta_analysis(d, method="REML")
    assert res["tau2"] == 0.0 and res["i2"] == 0.0
    assert (res["pi_low"], res["pi_high"]) == (res["ci_low"], res["ci_high"])


# ----------------------------------------------------------------------------- one pooling routine
@pytest.mark.parametrize("method", ["REML", "DL", "FE"])
def test_pool_estimates_matches_metafor_with_prediction_interval(method):
    from exresearch.meta import pool_estimates

    ref = json.loads((Path(__file__).parent / "data" / "report_reference.json").read_text())
    d = pd.DataFrame({"estimate": ref["data"]["yi"], "se": ref["data"]["sei"]})
    res = pool_estimates(d, method=method)
    for key, value in ref[method].items():
        assert res[key] == pytest.approx(value, rel=1e-8, abs=1e-10), key
    assert res["k"] == 13


def test_meta_analysis_pools_fisher_z_with_pool_estimates():
    from exresearch.meta import meta_analysis, pool_estimates

    d = pd.DataFrame({"r": [0.21, 0.35, 0.12, 0.44, 0.30], "n": [40, 25, 60, 33, 51]})
    for method in ("REML", "DL", "FE"):
        ma = meta_analysis(d, method=method)
        z = pd.DataFrame({"estimate": np.arctanh(d["r"]), "se": 1 / np.sqrt(d["n"] - 3)})
        pe = pool_estimates(z, method=method)
        assert ma["estimate"] == pytest.approx(np.tanh(pe["estimate"]), abs=1e-12)
        assert ma["ci_low"] == pytest.approx(np.tanh(pe["ci_low"]), abs=1e-12)
        assert ma["pi_high"] == pytest.approx(np.tanh(pe["pi_high"]), abs=1e-12)
        assert ma["tau2"] == pytest.approx(pe["tau2"], abs=1e-14)


def test_power_fast_dl_path_equals_pool_estimates(rng):
    from exresearch.meta import pool_estimates
    from exresearch.power import _dl_test

    z = rng.normal(0.2, 0.1, size=(5, 8))
    v = 1 / (rng.integers(20, 80, size=(5, 8)) - 3.0)
    rej, mu, se = _dl_test(z, v, 0.05)
    for i in range(5):
        pe = pool_estimates(pd.DataFrame({"estimate": z[i], "se": np.sqrt(v[i])}), method="DL")
        assert mu[i] == pytest.approx(pe["estimate"], abs=1e-12)
        assert se[i] == pytest.approx(pe["se"], abs=1e-12)
        assert bool(rej[i]) == bool(pe["p_val"] < 0.05)


def test_pool_estimates_errors_name_the_value():
    from exresearch.meta import pool_estimates

    with pytest.raises(ParameterError, match=r"`method` must be one of \['REML', 'DL', 'FE'\], but 'HS'"):
        pool_estimates(pd.DataFrame({"estimate": [0.1], "se": [0.1]}), method="HS")
    with pytest.raises(ParameterError, match=r"column for `se` must be one of"):
        pool_estimates(pd.DataFrame({"estimate": [0.1]}))
    res = pool_estimates(pd.DataFrame({"estimate": [0.1, np.nan], "se": [0.1, 0.2]}))
    assert res["k"] == 1 and np.isnan(res["estimate"])


# ------------------------------------------------------------------ batched fits (issue 20)
def _loo_by_loop(d, method):
    """Leave-one-out as it was computed before the batched form: one _pool per client."""
    from exresearch.meta import _pool

    r, n = d["r"].to_numpy(float), d["n"].to_numpy(float)
    rows = []
    for i in range(len(r)):
        keep = np.arange(len(r)) != i
        rows.append(_pool(r[keep], n[keep], method).to_numpy())
    return np.array(rows)


def _loo_cases():
    rng = np.random.default_rng(20261202)
    cases = {name: _load(name).rename(columns={"study": "client"}) for name in SETS}
    for k, tau in [(3, 0.0), (5, 0.3), (40, 0.1), (100, 0.08)]:
        r = np.tanh(0.3 + rng.normal(0, tau, k) + rng.normal(0, 0.18, k))
        cases[f"sim{k}"] = pd.DataFrame({"client": [f"c{i}" for i in range(k)], "r": r,
                                         "n": rng.integers(6, 60, k).astype(float)})
    # homogeneous: REML on the boundary tau^2 = 0 for most reduced models
    cases["flat"] = pd.DataFrame({"client": list("abcdef"), "r": [0.30, 0.31, 0.29, 0.30,
                                                                    0.305, 0.295],
                                  "n": [40.0, 50, 60, 45, 55, 35]})
    return cases


@pytest.mark.parametrize("method", ["REML", "DL", "FE"])
@pytest.mark.parametrize("name", list(_loo_cases()))
def test_leave_one_out_batched_equals_one_fit_per_client(name, method):
    d = _loo_cases()[name]
    if "client" not in d.columns:
        d = d.assign(client=[f"s{i}" for i in range(len(d))])
    res = leave_one_out(d, label="client", method=method)
    want = _loo_by_loop(d, method)
    assert res["omitted"].tolist() == d["client"].tolist()
    assert list(res.columns) == ["omitted", *META_FIELDS, "delta"]
    np.testing.assert_allclose(res[list(META_FIELDS)].to_numpy(float), want, rtol=1e-10,
                               atol=1e-12)
    if name == "flat" and method == "REML":
        assert (res["tau2"] == 0).sum() >= 3 and (want[:, 7] == 0).sum() >= 3


def test_fit_rma_batch_equals_fit_rma_per_model():
    from exresearch.meta import _fit_rma, _fit_rma_batch

    rng = np.random.default_rng(7)
    k = 25
    yi = np.arctanh(np.tanh(0.3 + rng.normal(0, 0.25, k)))
    vi = 1.0 / (rng.integers(8, 60, k) - 3.0)
    Xs = np.concatenate([np.ones((6, k, 1)), rng.normal(size=(6, k, 2))], axis=2)
    mask = (rng.random((6, k)) > 0.2).astype(float)
    for method in ("FE", "DL", "REML"):
        got = _fit_rma_batch(yi, vi, Xs, method, mask=mask)
        for b in range(6):
            keep = mask[b] == 1
            want = _fit_rma(yi[keep], vi[keep], Xs[b][keep], method)
            for key in ("tau2", "qe", "qe_p", "i2", "vt"):
                assert got[key][b] == pytest.approx(want[key], rel=1e-10, abs=1e-12), key
            np.testing.assert_allclose(got["beta"][b], want["beta"], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(got["vb"][b], want["vb"], rtol=1e-10, atol=1e-14)
            assert got["k"][b] == keep.sum()
