"""Tests of exresearch.power: closed form, simulation, grid and errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from exresearch import ParameterError
from exresearch.power import (
    POWER_COLUMNS,
    _dl_test,
    power_analytic,
    power_grid,
    power_simulation,
)


def test_analytic_matches_hand_computation():
    # lambda = atanh(0.2) / sqrt((1/27) / 10) = 3.3312; power = Phi(3.3307 - 1.96) + Phi(-5.29)
    lam = math.atanh(0.2) / math.sqrt(1 / 27 / 10)
    assert lam == pytest.approx(3.331236, abs=1e-6)
    c = stats.norm.ppf(0.975)
    expected = stats.norm.cdf(lam - c) + stats.norm.cdf(-lam - c)
    assert power_analytic(r=0.2, n_clients=10, n_units=30) == pytest.approx(expected, abs=1e-9)
    assert power_analytic(r=0.2, n_clients=10, n_units=30) == pytest.approx(0.91485, abs=1e-5)
    # tau enters as v + tau^2: with tau^2 = 1/27 the variance doubles
    lam2 = math.atanh(0.2) / math.sqrt(2 / 27 / 10)
    assert power_analytic(r=0.2, n_clients=10, n_units=30, tau=math.sqrt(1 / 27)) == \
        pytest.approx(stats.norm.cdf(lam2 - c) + stats.norm.cdf(-lam2 - c))
    # symmetric in the sign of r
    assert power_analytic(r=-0.2, n_clients=10, n_units=30) == pytest.approx(expected)


@pytest.mark.parametrize("alpha", [0.05, 0.10, 0.01])
def test_analytic_power_at_zero_is_alpha(alpha):
    assert power_analytic(r=0.0, n_clients=7, n_units=25, tau=0.1, alpha=alpha) == \
        pytest.approx(alpha, abs=1e-12)


def test_analytic_attenuation_by_respondents():
    icc, m = 0.15, 10
    rel = m * icc / (1 + (m - 1) * icc)
    attenuated = power_analytic(r=0.3, n_clients=6, n_units=20, respondents_per_unit=m, icc=icc)
    assert attenuated == pytest.approx(
        power_analytic(r=0.3 * math.sqrt(rel), n_clients=6, n_units=20))
    assert attenuated < power_analytic(r=0.3, n_clients=6, n_units=20)
    more = power_analytic(r=0.3, n_clients=6, n_units=20, respondents_per_unit=30, icc=icc)
    assert attenuated < more


def test_power_increases_with_clients_and_units():
    by_clients = [power_analytic(r=0.15, n_clients=k, n_units=30, tau=0.05)
                  for k in (2, 5, 10, 20, 40)]
    assert np.all(np.diff(by_clients) > 0)
    by_units = [power_analytic(r=0.15, n_clients=5, n_units=n) for n in (10, 20, 50, 100)]
    assert np.all(np.diff(by_units) > 0)
    sims = [power_simulation(r=0.15, n_clients=k, n_units=30, respondents_per_unit=None,
                             tau=0.05, n_sims=1000, seed=3, progress=False)["power"].iloc[0]
            for k in (3, 10, 30)]
    assert sims[0] + 0.1 < sims[1] < sims[2] - 0.05


# Settings where tau^2 is not small next to the within-client variance and there are
# many clients: there the known-tau closed form and the DL simulation agree (checked
# with 20,000 replicates: differences 0.008 and -0.002, within MC error of the 10,000 here).
@pytest.mark.parametrize("args", [
    {"r": 0.1, "n_clients": 25, "n_units": 40, "tau": 0.15, "respondents_per_unit": None},
    {"r": 0.15, "n_clients": 30, "n_units": 40, "tau": 0.1, "respondents_per_unit": 10},
])
def test_analytic_agrees_with_simulation(args):
    res = power_simulation(**args, n_sims=10_000, seed=2026, progress=False)
    p = res["power"].iloc[0]
    analytic = power_analytic(**args)
    mc_se = math.sqrt(analytic * (1 - analytic) / 10_000)
    assert abs(p - analytic) < 3 * mc_se


def test_simulated_power_at_zero_is_about_alpha():
    res = power_simulation(r=0.0, n_clients=20, n_units=30, respondents_per_unit=10, tau=0.05,
                           n_sims=4000, seed=11, progress=False)
    assert res["power"].iloc[0] == pytest.approx(0.05, abs=0.012)
    # with no heterogeneity DerSimonian-Laird over-estimates tau^2 on average: conservative
    res0 = power_simulation(r=0.0, n_clients=10, n_units=30, respondents_per_unit=None,
                            tau=0.0, n_sims=4000, seed=12, progress=False)
    assert 0.02 < res0["power"].iloc[0] < 0.05


def test_simulation_frame_and_determinism(capsys):
    kwargs = {"r": 0.2, "n_clients": 5, "n_units": 15, "respondents_per_unit": 8, "tau": 0.1,
              "n_sims": 120, "seed": 9}
    a = power_simulation(**kwargs, progress=False)
    b = power_simulation(**kwargs, progress=False)
    assert capsys.readouterr().err == ""
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == list(POWER_COLUMNS)
    row = a.iloc[0]
    assert (row["n_clients"], row["n_units"], row["respondents_per_unit"], row["n_sims"]) == \
        (5, 15, 8.0, 120)
    assert row["ci_low"] <= row["power"] <= row["ci_high"]
    hits = round(row["power"] * 120)
    assert row["ci_low"] == pytest.approx(stats.beta.ppf(0.025, hits, 120 - hits + 1))
    c = power_simulation(**{**kwargs, "seed": 10}, progress=False)
    assert c["power"].iloc[0] != a["power"].iloc[0] or c["ci_low"].iloc[0] == a["ci_low"].iloc[0]


def test_progress_bar_can_be_shown(capsys):
    power_simulation(r=0.2, n_clients=3, n_units=10, respondents_per_unit=None, tau=0.0,
                     n_sims=60, seed=1, progress=True)
    assert "power simulation" in capsys.readouterr().err


def test_private_dl_matches_meta_module():
    meta = pytest.importorskip("exresearch.meta")
    rng = np.random.default_rng(4)
    for _ in range(5):
        k = int(rng.integers(3, 12))
        n = rng.integers(8, 60, k).astype(float)
        r = np.tanh(0.2 + 0.2 * rng.standard_normal(k))
        ref = meta.meta_analysis(pd.DataFrame({"r": r, "n": n}), method="DL")
        _rej, mu, se = _dl_test(np.arctanh(r)[None, :], (1 / (n - 3))[None, :], 0.05)
        assert math.tanh(mu[0]) == pytest.approx(ref["estimate"], abs=1e-10)
        assert math.tanh(mu[0] - 1.959964 * se[0]) == pytest.approx(ref["ci_low"], abs=1e-6)
        assert math.tanh(mu[0] + 1.959964 * se[0]) == pytest.approx(ref["ci_high"], abs=1e-6)


def test_reml_pooling_through_meta_module():
    pytest.importorskip("exresearch.meta")
    kwargs = {"r": 0.15, "n_clients": 10, "n_units": 30, "respondents_per_unit": None,
              "tau": 0.1, "n_sims": 300, "seed": 5, "progress": False}
    reml = power_simulation(**kwargs, method="REML")["power"].iloc[0]
    dl = power_simulation(**kwargs, method="DL")["power"].iloc[0]
    # same replicates (same seed), different tau^2 estimator: close but not identical
    assert abs(reml - dl) < 0.06


def test_grid_analytic_rows():
    grid = power_grid(r=[0.1, 0.2], n_clients=[5, 10], n_units=30, tau=0.05)
    assert list(grid.columns) == [*POWER_COLUMNS, "method"]
    assert len(grid) == 4
    assert grid[["n_clients", "r"]].to_numpy().tolist() == [[5, 0.1], [5, 0.2], [10, 0.1],
                                                            [10, 0.2]]
    assert grid["method"].eq("analytic").all() and grid["n_sims"].eq(0).all()
    assert grid["ci_low"].isna().all() and grid["respondents_per_unit"].isna().all()
    assert grid["power"].iloc[3] == pytest.approx(
        power_analytic(r=0.2, n_clients=10, n_units=30, tau=0.05))


def test_grid_simulation_rows_are_reproducible():
    kwargs = {"r": 0.2, "n_clients": [4, 8], "n_units": 20, "respondents_per_unit": [5, 20],
              "tau": 0.0, "method": "simulation", "n_sims": 100, "seed": 1, "progress": False}
    a = power_grid(**kwargs)
    pd.testing.assert_frame_equal(a, power_grid(**kwargs))
    assert len(a) == 4 and a["n_sims"].eq(100).all()
    assert a["respondents_per_unit"].tolist() == [5.0, 20.0, 5.0, 20.0]
    assert a["method"].eq("simulation").all()


@pytest.mark.parametrize(("func", "kwargs", "message"), [
    (power_analytic, {"r": 1.0, "n_clients": 5, "n_units": 10},
     "`r` must be in (-1, 1), but 1.0 was passed"),
    (power_analytic, {"r": 0.2, "n_clients": 1, "n_units": 10},
     "`n_clients` must be an integer >= 2, but 1 was passed"),
    (power_analytic, {"r": 0.2, "n_clients": 5, "n_units": 3},
     "`n_units` must be an integer >= 4, but 3 was passed"),
    (power_analytic, {"r": 0.2, "n_clients": 5, "n_units": 10, "tau": -0.1},
     "`tau` must be in [0, 2), but -0.1 was passed"),
    (power_analytic, {"r": 0.2, "n_clients": 5, "n_units": 10, "alpha": 1.5},
     "`alpha` must be in (0, 1), but 1.5 was passed"),
    (power_analytic, {"r": "big", "n_clients": 5, "n_units": 10},
     "`r` must be a number, but 'big' was passed"),
    (power_simulation, {"r": 0.2, "n_clients": 5, "n_units": 10, "respondents_per_unit": 0,
                        "tau": 0.0}, "`respondents_per_unit` must be an integer >= 1, but 0"),
    (power_simulation, {"r": 0.2, "n_clients": 5, "n_units": 10, "respondents_per_unit": 5,
                        "tau": 0.0, "n_sims": 0}, "`n_sims` must be an integer >= 1, but 0"),
    (power_simulation, {"r": 0.2, "n_clients": 5, "n_units": 10, "respondents_per_unit": 5,
                        "tau": 0.0, "method": "ML"},
     "`method` must be one of ['DL', 'REML', 'FE'], but 'ML' was passed"),
    (power_grid, {"r": 0.2, "n_clients": 5, "n_units": 10, "method": "exact"},
     "`method` must be one of ['analytic', 'simulation'], but 'exact' was passed"),
    (power_grid, {"r": [], "n_clients": 5, "n_units": 10},
     "`r` must not be empty, but [] was passed"),
])
def test_errors_name_parameter_and_value(func, kwargs, message):
    with pytest.raises(ParameterError) as info:
        func(**kwargs)
    assert message in str(info.value)


def test_lazy_public_names():
    import exresearch

    assert exresearch.power_analytic is power_analytic
    assert exresearch.power_grid is power_grid
    assert exresearch.power_simulation is power_simulation
