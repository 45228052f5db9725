"""Tests of exresearch.riclpm: the RI-CLPM against lavaan, and its tidy wrapper.

Reference values: tests/r/riclpm.R (lavaan's RI-CLPM, Mulder & Hamaker 2021 syntax,
missing = "ml", observed information) on tests/data/riclpm_complete.csv (150 units,
4 waves) and tests/data/riclpm_missing.csv (120 units, 3 waves, 12% missing).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exresearch import ParameterError
from exresearch.riclpm import riclpm, riclpm_fit

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "riclpm_reference.json").read_text())


@pytest.mark.parametrize(("name", "n_waves", "equal"),
                         [("complete", 4, False), ("missing", 3, False),
                          ("complete", 4, True), ("missing", 3, True)])
def test_riclpm_fit_matches_lavaan(name, n_waves, equal):
    d = pd.read_csv(DATA / f"riclpm_{name}.csv")
    fit = riclpm_fit(d.to_numpy(float), n_waves=n_waves, equal_innovations=equal)
    ref = REF[name + ("_equal" if equal else "")]
    assert fit["names"].count("innov_var_x") == int(equal)
    assert fit["converged"] and fit["n_units"] == ref["n"]
    assert fit["loglik"] == pytest.approx(ref["loglik"], abs=1e-6)
    names = fit["names"]
    for key, se in ref["robust_se"].items():  # lavaan's MLR (Huber-White) standard errors
        assert fit["se_robust"][names.index(key)] == pytest.approx(se, abs=1e-4), key
    for key, value in ref.items():
        if key in ("loglik", "n", "cov_xy_yx", "robust_se"):
            continue
        est, se = value
        i = names.index(key)
        assert fit["estimate"][i] == pytest.approx(est, abs=1e-4), key
        assert fit["se"][i] == pytest.approx(se, abs=1e-4), key
    i, j = names.index("x_to_y"), names.index("y_to_x")
    assert fit["cov"][i, j] == pytest.approx(ref["cov_xy_yx"], abs=1e-5)


def _long(d, n_waves):
    rows = []
    for u, row in d.iterrows():
        for t in range(n_waves):
            rows.append({"unit_id": f"u{u:03d}", "period": f"p{t + 1}",
                         "ex": row[f"x{t + 1}"], "cx": row[f"y{t + 1}"]})
    return pd.DataFrame(rows)


def test_riclpm_tidy_rows_and_scaling():
    d = pd.read_csv(DATA / "riclpm_complete.csv")
    panel = _long(d, 4)
    raw = riclpm(panel, x="ex", y="cx", standardize=False, equal_innovations=False,
                 reference="normal")
    assert raw["path"].tolist() == [
        "ex[t] -> cx[t+1]", "cx[t] -> ex[t+1]", "ex[t] -> ex[t+1]", "cx[t] -> cx[t+1]",
        "(ex -> cx) - (cx -> ex)", "trait ex ~ trait cx"]
    assert raw["kind"].tolist() == ["cross-lagged"] * 2 + ["autoregressive"] * 2 + [
        "difference", "trait"]
    ref = REF["complete"]
    assert raw.loc[0, "estimate"] == pytest.approx(ref["x_to_y"][0], abs=1e-4)
    assert raw.loc[1, "se"] == pytest.approx(ref["y_to_x"][1], abs=1e-4)
    diff_se = np.sqrt(ref["x_to_y"][1] ** 2 + ref["y_to_x"][1] ** 2 - 2 * ref["cov_xy_yx"])
    assert raw.loc[4, "estimate"] == pytest.approx(ref["x_to_y"][0] - ref["y_to_x"][0],
                                                   abs=2e-4)
    assert raw.loc[4, "se"] == pytest.approx(diff_se, abs=2e-4)
    assert raw.loc[5, "estimate"] == pytest.approx(
        ref["ri_cov"][0] / np.sqrt(ref["ri_var_x"][0] * ref["ri_var_y"][0]), abs=1e-3)
    assert (raw["n_units"] == 150).all() and (raw["n_periods"] == 4).all()
    # p-value and CI: Wald z
    z = raw.loc[0, "estimate"] / raw.loc[0, "se"]
    from scipy import stats
    assert raw.loc[0, "p_val"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    # standardised: paths scale by the within-unit SDs, z statistics unchanged
    std = riclpm(panel, x="ex", y="cx", equal_innovations=False, reference="normal")
    sx, sy = std.attrs["scale"]
    assert std.loc[0, "estimate"] == pytest.approx(raw.loc[0, "estimate"] * sx / sy, rel=1e-3)
    assert std.loc[0, "p_val"] == pytest.approx(raw.loc[0, "p_val"], rel=1e-3, abs=1e-6)


def test_riclpm_equal_innovations_ml_se_and_t_all_reference():
    """Innovations equal over periods as lavaan with labelled innovations, its observed-
    information SEs (``se="ml"``), Wald tests and intervals on t with df = units - all
    parameters (150 - 21; the rule before the calibration of validity/calibrate_riclpm.md)."""
    d = pd.read_csv(DATA / "riclpm_complete.csv")
    res = riclpm(_long(d, 4), x="ex", y="cx", standardize=False, se="ml", reference="t_all")
    ref = REF["complete_equal"]
    assert res.attrs["df"] == 129
    for row, key in ((0, "x_to_y"), (1, "y_to_x"), (2, "x_to_x"), (3, "y_to_y")):
        est, se = ref[key]
        assert res.loc[row, "estimate"] == pytest.approx(est, abs=1e-4), key
        assert res.loc[row, "se"] == pytest.approx(se, abs=1e-4), key
    from scipy import stats
    t = res.loc[1, "estimate"] / res.loc[1, "se"]
    assert res.loc[1, "p_val"] == pytest.approx(2 * stats.t.sf(abs(t), 129), rel=1e-9)
    assert res.loc[1, "p_val"] > 2 * stats.norm.sf(abs(t))
    q = stats.t.ppf(0.975, 129)
    assert res.loc[1, "ci_high"] == pytest.approx(res.loc[1, "estimate"] + q * res.loc[1, "se"])
    diff_t = res.loc[4, "estimate"] / res.loc[4, "se"]
    assert res.loc[4, "p_val"] == pytest.approx(2 * stats.t.sf(abs(diff_t), 129), rel=1e-9)
    normal = riclpm(_long(d, 4), x="ex", y="cx", standardize=False, se="ml",
                    reference="normal")
    assert normal.attrs["df"] == np.inf
    assert normal.loc[1, "p_val"] == pytest.approx(2 * stats.norm.sf(abs(t)), rel=1e-9)
    with pytest.raises(ParameterError, match="`reference` must be one of \\['t_cov', 't_all', "
                       "'normal'\\], but 'z' was passed"):
        riclpm(_long(d, 4), x="ex", y="cx", reference="z")
    with pytest.raises(ParameterError, match="`equal_innovations` must be True or False, but "
                       "'yes' was passed"):
        riclpm(_long(d, 4), x="ex", y="cx", equal_innovations="yes")


def test_riclpm_needs_three_periods_and_ten_units(rng):
    panel = pd.DataFrame({"unit_id": np.repeat(np.arange(20), 2), "period": np.tile([1, 2], 20),
                          "ex": rng.normal(size=40), "cx": rng.normal(size=40)})
    with pytest.warns(UserWarning, match="needs at least 3 periods"):
        res = riclpm(panel, x="ex", y="cx")
    assert res["estimate"].isna().all()
    assert "but there are 2" in res.loc[0, "note"]
    small = pd.DataFrame({"unit_id": np.repeat(np.arange(19), 3), "period": np.tile([1, 2, 3], 19),
                          "ex": rng.normal(size=57), "cx": rng.normal(size=57)})
    with pytest.warns(UserWarning, match="too few units: 19 \\(the RI-CLPM needs at least 20"):
        riclpm(small, x="ex", y="cx")
    # 20 units, 4 periods: 21 parameters, so the t reference is undefined
    four = pd.DataFrame({"unit_id": np.repeat(np.arange(20), 4), "period": np.tile([1, 2, 3, 4], 20),
                         "ex": rng.normal(size=80), "cx": rng.normal(size=80)})
    with pytest.warns(UserWarning, match="too few units: 20 for the model's 21 parameters"):
        res = riclpm(four, x="ex", y="cx", reference="t_all")
    assert res["estimate"].isna().all() and np.isnan(res.attrs["df"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        normal = riclpm(four, x="ex", y="cx", reference="normal")
    assert "parameters" not in normal.loc[0, "note"] and normal.attrs["df"] == np.inf
    with pytest.raises(ParameterError, match="at least 3 periods"):
        riclpm_fit(np.zeros((10, 4)), n_waves=2)
    with pytest.raises(ParameterError, match="`x` and `y` must be two different column"):
        riclpm(panel, x="ex", y="ex")


def test_riclpm_ignores_stable_traits_that_fool_the_plain_model(rng):
    """Traits correlated 0.8 and no lagged effect: the plain cross-lagged regression finds
    a 'path'; the RI-CLPM does not."""
    from exresearch.direction import cross_lagged

    n = 400
    trait = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=n)
    w = rng.normal(size=(n, 4, 2))
    for t in range(1, 4):
        w[:, t] += 0.4 * w[:, t - 1]
    panel = pd.DataFrame({"unit_id": np.repeat(np.arange(n), 4),
                          "period": np.tile([1, 2, 3, 4], n),
                          "ex": (trait[:, [0]] + w[..., 0]).ravel(),
                          "cx": (trait[:, [1]] + w[..., 1]).ravel()})
    plain = cross_lagged(panel, x="ex", y="cx")
    assert plain.loc[0, "p_val"] < 0.001 and plain.loc[0, "estimate"] > 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = riclpm(panel, x="ex", y="cx")
    assert abs(res.loc[0, "estimate"]) < 3 * res.loc[0, "se"]
    assert abs(res.loc[1, "estimate"]) < 3 * res.loc[1, "se"]
    assert res.loc[2, "estimate"] == pytest.approx(0.4, abs=4 * res.loc[2, "se"])
    assert res.loc[5, "estimate"] == pytest.approx(0.8, abs=0.15)


# ----------------------------------------------------------------------------- known error
ERR_REF = json.loads((DATA / "riclpm_error_reference.json").read_text())


@pytest.mark.parametrize(("name", "n_waves", "equal"),
                         [("complete", 4, False), ("missing", 3, False),
                          ("complete", 4, True), ("missing", 3, True)])
def test_riclpm_fit_known_error_matches_lavaan(name, n_waves, equal):
    """Constant known error variances (by variable, and by wave in 'missing'): lavaan's
    RI-CLPM with each indicator's residual variance fixed at them (tests/r/riclpm_error.R,
    data from tests/r/riclpm_error_data.py)."""
    d = pd.read_csv(DATA / f"riclpm_error_{name}.csv").to_numpy(float)
    ref = ERR_REF[name + ("_equal" if equal else "")]
    err = np.tile(np.r_[ref["error_x"], ref["error_y"]], (len(d), 1))
    fit = riclpm_fit(d, n_waves=n_waves, equal_innovations=equal, error_var=err)
    assert fit["converged"] and fit["n_units"] == ref["n"]
    assert fit["loglik"] == pytest.approx(ref["loglik"], abs=1e-6)
    names = fit["names"]
    for key, se in ref["robust_se"].items():
        assert fit["se_robust"][names.index(key)] == pytest.approx(se, abs=1e-4), key
    checked = 0
    for key, value in ref.items():
        if key in ("loglik", "n", "cov_xy_yx", "robust_se", "error_x", "error_y"):
            continue
        est, se = value
        i = names.index(key)
        assert fit["estimate"][i] == pytest.approx(est, abs=1e-4), key
        assert fit["se"][i] == pytest.approx(se, abs=1e-4), key
        checked += 1
    assert checked >= 14
    i, j = names.index("x_to_y"), names.index("y_to_x")
    assert fit["cov"][i, j] == pytest.approx(ref["cov_xy_yx"], abs=1e-5)
    # the error is not ignored: without it the paths are those of another model
    plain = riclpm_fit(d, n_waves=n_waves, equal_innovations=equal)
    assert abs(plain["estimate"][names.index("x_to_x")] - ref["x_to_x"][0]) > 0.01


def test_riclpm_fit_without_error_is_bit_identical_to_before():
    """error_var=None (and all-0 / all-NaN error) runs exactly the code of before the
    measurement-error model: tests/data/riclpm_frozen.json holds, as hex floats, the
    results of commit bd6d9ce (exresearch/riclpm.py unchanged until then) on this
    repository's pinned numpy/scipy; a different BLAS may change the last bits, so
    conftest.py pins OpenBLAS's kernels on x86-64 (an Intel Xeon's own AVX-512 kernels
    changed the log-likelihood's last bit)."""
    frozen = json.loads((DATA / "riclpm_frozen.json").read_text())

    def unhex(v):
        return np.array([float.fromhex(s) for s in v])

    for name, t in (("complete", 4), ("missing", 3)):
        d = pd.read_csv(DATA / f"riclpm_{name}.csv").to_numpy(float)
        for equal in (False, True):
            ref = frozen[f"{name}_{'equal' if equal else 'free'}"]
            fits = [riclpm_fit(d, n_waves=t, equal_innovations=equal),
                    riclpm_fit(d, n_waves=t, equal_innovations=equal,
                               error_var=np.zeros_like(d)),
                    riclpm_fit(d, n_waves=t, equal_innovations=equal,
                               error_var=np.full_like(d, np.nan))]
            for fit in fits:
                assert float(fit["loglik"]).hex() == ref["loglik"]
                for key in ("estimate", "se", "cov", "se_robust", "cov_jackknife"):
                    np.testing.assert_array_equal(np.ravel(fit[key]), unhex(ref[key]),
                                                  err_msg=key)
    d = pd.read_csv(DATA / "riclpm_complete.csv")
    # bd6d9ce's default inference rule, by name since the calibration changed the default
    res = riclpm(_long(d, 4).rename(columns={"cx": "cy"}), x="ex", y="cy", se="ml",
                 reference="t_all")
    for col, values in frozen["tidy_default"].items():
        np.testing.assert_array_equal(res[col].to_numpy(float), unhex(values), err_msg=col)


def _error_panel(rng, n=300, waves=4, missing=0.08):
    """RI-CLPM data (tests/r/riclpm_error_data.py's model, A: x->x 0.5, y->x 0.1,
    x->y 0.25, y->y 0.4) plus measurement error whose variance differs by unit-period."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "riclpm_error_data", Path(__file__).parent / "r" / "riclpm_error_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    d = mod.simulate(rng, n, waves, 0.0, 0.0).to_numpy(float).copy()
    err = np.hstack([rng.uniform(0.2, 1.5, (n, waves)), rng.uniform(0.1, 0.8, (n, waves))])
    d += rng.normal(size=d.shape) * np.sqrt(err)
    d[rng.random(d.shape) < missing] = np.nan
    return d, err


def test_riclpm_fit_heterogeneous_error_likelihood_and_recovery(rng):
    """Error variances that differ by unit: the log-likelihood equals the sum of each
    unit's multivariate normal density with Sigma + diag(error_u) (scipy), the analytic
    gradient equals central differences of it, the unit scores sum to it, and the paths
    come back where the error-free model attenuates them."""
    from scipy import stats

    from exresearch.riclpm import _gradient, _patterns, _Spec, _unit_scores

    d, err = _error_panel(rng)
    fit = riclpm_fit(d, n_waves=4, equal_innovations=True, error_var=err)
    assert fit["converged"]
    spec = _Spec(4, True)
    sigma, mu = spec.sigma(fit["estimate"]), spec.mean(fit["estimate"])
    ll = 0.0
    for u in range(len(d)):
        o = ~np.isnan(d[u])
        if o.any():
            cov = sigma[np.ix_(o, o)] + np.diag(err[u][o])
            ll += stats.multivariate_normal(mu[o], cov).logpdf(d[u][o])
    assert fit["loglik"] == pytest.approx(ll, abs=1e-7)
    patterns = _patterns(d, np.where(np.isnan(d), 0.0, err))
    theta = fit["estimate"] + 0.01 * rng.normal(size=spec.n)
    _, grad = _gradient(spec, theta, patterns)
    h = 1e-6
    num = np.array([(_gradient(spec, theta + e, patterns)[0]
                     - _gradient(spec, theta - e, patterns)[0]) / (2 * h)
                    for e in np.eye(spec.n) * h])
    np.testing.assert_allclose(grad, num, atol=1e-4)
    assert np.abs(grad).max() > 0.1  # away from the optimum, so the check means something
    np.testing.assert_allclose(_unit_scores(spec, theta, patterns).sum(axis=0), grad,
                               atol=1e-8)
    plain = riclpm_fit(d, n_waves=4, equal_innovations=True)
    names = fit["names"]
    for key, truth in (("x_to_x", 0.5), ("y_to_x", 0.1), ("x_to_y", 0.25), ("y_to_y", 0.4)):
        i = names.index(key)
        assert fit["estimate"][i] == pytest.approx(truth, abs=3 * fit["se"][i]), key
    for key, gap in (("x_to_x", 0.1), ("x_to_y", 0.05)):  # attenuated without the error
        i = names.index(key)
        assert plain["estimate"][i] < fit["estimate"][i] - gap, key
        assert fit["se_robust"][i] > 0 and np.isfinite(fit["se_jackknife"][i])


def test_riclpm_fit_rejects_bad_error_var():
    d = np.zeros((30, 8))
    with pytest.raises(ParameterError, match=r"`error_var` must have the shape of `values` "
                       r"\(30, 8\), but its shape is \(30, 6\)"):
        riclpm_fit(d, n_waves=4, error_var=np.zeros((30, 6)))
    bad = np.zeros((30, 8))
    bad[3, 5] = -0.2
    with pytest.raises(ParameterError, match=r"non-negative finite variances \(NaN or 0 for "
                       r"none\), but -0.2 was passed \(row 3, column 5\)"):
        riclpm_fit(d, n_waves=4, error_var=bad)
    with pytest.raises(ParameterError, match="`error_var` must be an array of non-negative "
                       "numbers, but 'big' was passed"):
        riclpm_fit(d, n_waves=4, error_var="big")


def _long_error(d, err, waves):
    n = len(d)
    return pd.DataFrame({"unit_id": np.repeat(np.arange(n), waves),
                         "period": np.tile(np.arange(1, waves + 1), n),
                         "ex": d[:, :waves].ravel(), "cx": d[:, waves:].ravel(),
                         "ex_var": err[:, :waves].ravel(), "cx_var": err[:, waves:].ravel()})


def test_riclpm_tidy_with_error_columns(rng):
    """x_error / y_error columns reach riclpm_fit, scaled with the values when the paths are
    standardised (so the t statistics do not depend on the units); loop_direction passes
    them on; bad columns are named in the error."""
    from exresearch.direction import loop_direction

    d, err = _error_panel(rng, n=120)
    panel = _long_error(d, err, 4)
    raw = riclpm(panel, x="ex", y="cx", standardize=False, x_error="ex_var", y_error="cx_var")
    fit = riclpm_fit(d, n_waves=4, equal_innovations=True, error_var=err)
    assert raw.loc[0, "estimate"] == pytest.approx(fit["estimate"][fit["names"].index("x_to_y")],
                                                   abs=1e-8)
    assert raw.loc[1, "se"] == pytest.approx(fit["se"][fit["names"].index("y_to_x")], rel=1e-6)
    std = riclpm(panel, x="ex", y="cx", x_error="ex_var", y_error="cx_var")
    sx, sy = std.attrs["scale"]
    assert std.loc[0, "estimate"] == pytest.approx(raw.loc[0, "estimate"] * sx / sy, rel=1e-4)
    assert std.loc[0, "p_val"] == pytest.approx(raw.loc[0, "p_val"], rel=1e-3)
    only_x = riclpm(panel, x="ex", y="cx", x_error="ex_var")
    none = riclpm(panel, x="ex", y="cx")
    assert len({round(r.loc[2, "estimate"], 6) for r in (std, only_x, none)}) == 3
    # a NaN error variance means none: the same as 0
    zeroed = panel.assign(cx_var=np.nan)
    pd.testing.assert_frame_equal(riclpm(zeroed, x="ex", y="cx", x_error="ex_var",
                                         y_error="cx_var"), only_x)
    loop = loop_direction(panel, x="ex", y="cx", x_error="ex_var", y_error="cx_var")
    assert loop.loc[0, "x_to_y"] == pytest.approx(std.loc[0, "estimate"])
    assert loop.loc[0, "y_to_x_p"] == pytest.approx(std.loc[1, "p_val"])
    with pytest.raises(ParameterError, match="`x_error` and `y_error` are only supported with "
                       "method='riclpm', but x_error='ex_var', y_error=None was passed with "
                       "method='clpm'"):
        loop_direction(panel, x="ex", y="cx", x_error="ex_var", method="clpm")
    with pytest.raises(ParameterError, match="x_error.*'nope'"):
        riclpm(panel, x="ex", y="cx", x_error="nope")
    with pytest.raises(ParameterError, match="`y_error` must name the column of 'cx''s error "
                       "variances, not 'cx' itself"):
        riclpm(panel, x="ex", y="cx", y_error="cx")
    with pytest.raises(ParameterError, match="`x_error` column 'ex_var' must hold non-negative "
                       "variances \\(NaN for none\\), but it holds -1.0"):
        riclpm(panel.assign(ex_var=-1.0), x="ex", y="cx", x_error="ex_var")
    with pytest.raises(ParameterError, match="`x_error` must be a column name \\(or None\\), "
                       "but 3 was passed"):
        riclpm(panel, x="ex", y="cx", x_error=3)


def test_riclpm_fit_known_error_keeps_variances_admissible():
    """x has no stable trait and a large known error (30 units): the likelihood is highest
    with the random-intercept variance of x at its bound 0 (its derivative there points
    below 0), the fit says so in ``at_bound``, gives that parameter no standard error and
    the others the information given it; every other gradient entry is 0."""
    from exresearch.riclpm import _gradient, _patterns, _Spec

    rng = np.random.default_rng(0)
    n, t = 30, 4
    w = np.zeros((n, t, 2))
    w[:, 0] = rng.normal(size=(n, 2))
    for k in range(1, t):
        w[:, k] = 0.5 * w[:, k - 1] + rng.normal(size=(n, 2)) * np.sqrt(0.75)
    ri_y = rng.normal(size=(n, 1))
    err = np.hstack([np.full((n, t), 1.5), np.zeros((n, t))])
    d = np.hstack([w[..., 0] + rng.normal(size=(n, t)) * np.sqrt(1.5), ri_y + w[..., 1]])
    fit = riclpm_fit(d, n_waves=t, equal_innovations=True, error_var=err)
    names = fit["names"]
    i = names.index("ri_var_x")
    assert fit["converged"] and fit["at_bound"] == ["ri_var_x"]
    assert fit["estimate"][i] == 0.0
    assert np.isnan(fit["se"][i]) and np.isnan(fit["cov"][i]).all()
    others = [j for j in range(len(names)) if j != i]
    assert np.isfinite(fit["se"][others]).all() and np.isfinite(fit["se_robust"][others]).all()
    assert all(fit["estimate"][names.index(k)] >= 0 for k in names if "var_" in k)
    spec = _Spec(t, True)
    _, grad = _gradient(spec, fit["estimate"], _patterns(d, err))
    assert grad[i] < -1e-3  # the likelihood would rise below 0
    assert np.abs(grad[others]).max() < 1e-3


def test_parameter_counts_and_reference_df():
    """t_all counts the 2T wave means (at 30 units x 8 periods: 29 parameters, 1 df);
    t_cov only the 13 covariance-structure parameters, the same at every T."""
    from exresearch.riclpm import n_parameters, reference_df

    assert [n_parameters(t) for t in (3, 4, 6, 8)] == [(19, 13), (21, 13), (25, 13), (29, 13)]
    assert n_parameters(4, equal_innovations=False) == (27, 19)
    assert reference_df(30, n_periods=8, reference="t_all") == 1.0
    assert reference_df(30, n_periods=8, reference="t_cov") == 17.0
    assert reference_df(30, n_periods=4, reference="t_cov") == 17.0
    assert reference_df(100, n_periods=6, reference="t_all") == 75.0
    assert np.isnan(reference_df(21, n_periods=4, reference="t_all"))
    assert reference_df(21, n_periods=4, reference="normal") == np.inf
    with pytest.raises(ParameterError, match="`reference` must be one of \\['t_cov', 't_all', "
                       "'normal'\\], but 't' was passed"):
        reference_df(30, n_periods=4, reference="t")


def test_riclpm_se_options_against_lavaan():
    """se='robust' gives lavaan's MLR SEs, se='ml' its observed-information SEs, se='max'
    the larger of the two per path (missing data set: robust for x -> y, ML for y -> x),
    each with the reference's quantile; t_cov uses 120 - 13 df, t_all 120 - 19."""
    from scipy import stats

    d = pd.read_csv(DATA / "riclpm_missing.csv")
    panel = _long(d, 3)
    ref = REF["missing_equal"]
    rows = {}
    for se in ("ml", "robust", "max"):
        rows[se] = riclpm(panel, x="ex", y="cx", standardize=False, se=se, reference="t_cov")
        assert rows[se].attrs["se"] == se and rows[se].attrs["df"] == 107
    ml, rob, mx = rows["ml"], rows["robust"], rows["max"]
    assert ml.loc[0, "se"] == pytest.approx(ref["x_to_y"][1], abs=1e-4)
    assert rob.loc[0, "se"] == pytest.approx(ref["robust_se"]["x_to_y"], abs=1e-4)
    assert rob.loc[1, "se"] == pytest.approx(ref["robust_se"]["y_to_x"], abs=1e-4)
    assert mx.loc[0, "se"] == pytest.approx(ref["robust_se"]["x_to_y"], abs=1e-4)
    assert mx.loc[1, "se"] == pytest.approx(ref["y_to_x"][1], abs=1e-4)
    assert (mx["estimate"] == ml["estimate"]).iloc[:5].all()
    # the difference under "max": the ML correlation of the two paths, the larger SEs
    r = ref["cov_xy_yx"] / (ref["x_to_y"][1] * ref["y_to_x"][1])
    s1, s2 = ref["robust_se"]["x_to_y"], ref["y_to_x"][1]
    assert mx.loc[4, "se"] == pytest.approx(np.sqrt(s1**2 + s2**2 - 2 * r * s1 * s2), abs=2e-4)
    q = stats.t.ppf(0.975, 107)
    assert rob.loc[0, "ci_high"] == pytest.approx(rob.loc[0, "estimate"] + q * rob.loc[0, "se"])
    t = rob.loc[0, "estimate"] / rob.loc[0, "se"]
    assert rob.loc[0, "p_val"] == pytest.approx(2 * stats.t.sf(abs(t), 107), rel=1e-9)
    every = riclpm(panel, x="ex", y="cx", standardize=False, se="ml", reference="t_all")
    assert every.attrs["df"] == 101
    with pytest.raises(ParameterError, match="`se` must be one of \\['ml', 'robust', 'max'\\], "
                       "but 'sandwich' was passed"):
        riclpm(panel, x="ex", y="cx", se="sandwich")


def test_riclpm_default_rule_max_se_and_t_cov():
    """The default (the loop verdicts' rule, validity/calibrate_riclpm.md): per path the
    larger of lavaan's observed-information and MLR SEs, t with units - 13 df (137 here,
    and 17 at 30 units whatever the periods)."""
    from scipy import stats

    d = pd.read_csv(DATA / "riclpm_complete.csv")
    res = riclpm(_long(d, 4), x="ex", y="cx", standardize=False)
    ref = REF["complete_equal"]
    assert (res.attrs["se"], res.attrs["reference"], res.attrs["df"]) == ("max", "t_cov", 137)
    for row, key in ((0, "x_to_y"), (1, "y_to_x"), (2, "x_to_x"), (3, "y_to_y")):
        est, se = ref[key]
        assert res.loc[row, "estimate"] == pytest.approx(est, abs=1e-4), key
        assert res.loc[row, "se"] == pytest.approx(max(se, ref["robust_se"][key]), abs=1e-4), key
    q = stats.t.ppf(0.975, 137)
    assert res.loc[0, "ci_low"] == pytest.approx(res.loc[0, "estimate"] - q * res.loc[0, "se"])
    t = res.loc[0, "estimate"] / res.loc[0, "se"]
    assert res.loc[0, "p_val"] == pytest.approx(2 * stats.t.sf(abs(t), 137), rel=1e-9)


def test_default_rule_is_the_one_the_calibration_chose():
    """validity/calibrate_riclpm.py's choice on its committed select-set fits is riclpm's
    default; a change of default without a new calibration fails here."""
    import importlib.util
    import inspect

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location(
        "calibrate_riclpm", root / "validity" / "calibrate_riclpm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.OUT = root / "validity" / "calibrate"
    tab = mod.table("select")
    cells = set(zip(tab["n_units"], tab["n_periods"], strict=True))
    assert cells == {(u, t) for u in (30, 100) for t in (4, 6, 8)}
    assert tab.groupby(["n_units", "n_periods"])["fits"].min().min() >= 90
    chosen, scores = mod.choose(tab)
    params = inspect.signature(riclpm).parameters
    assert chosen == (params["se"].default, params["reference"].default) == ("max", "t_cov")
    best = scores.set_index(["se", "reference"]).loc[chosen]
    assert best["admissible"] and best["worst_deviation"] < 0.04
    # t with units - all parameters covers everything at 30 units x 8 periods (1 df)
    t_all = tab[(tab["se"] == "ml") & (tab["reference"] == "t_all") & (tab["n_units"] == 30)
                & (tab["n_periods"] == 8)].iloc[0]
    assert t_all["cover_xy"] > 0.99 and t_all["named"] == 0.0


def test_gradients_of_a_batch_equal_one_theta_at_a_time_bit_for_bit(rng):
    """The stacked evaluation the observed information uses gives every row exactly the
    numbers of that theta alone (missing-value patterns of 1 to 54 units, with and
    without known error); a row whose covariance is not positive definite is -inf and
    NaN without touching the others."""
    from exresearch.riclpm import _gradient, _gradients, _patterns, _Spec

    d = pd.read_csv(DATA / "riclpm_missing.csv").to_numpy(float)
    d_err, err = _error_panel(rng, n=60)
    for values, error, t in ((d, None, 3), (d_err, np.where(np.isnan(d_err), 0.0, err), 4)):
        for equal in (False, True):
            spec = _Spec(t, equal)
            patterns = _patterns(values, error)
            assert max(len(v) for _, v, _ in patterns) > 1
            # the information's central differences around the estimate
            theta = riclpm_fit(values, n_waves=t, equal_innovations=equal,
                               error_var=error)["estimate"]
            e = np.diag(1e-5 * np.maximum(1.0, np.abs(theta)))
            thetas = np.concatenate([theta + e, theta - e])
            ll, grad = _gradients(spec, thetas, patterns)
            for r in range(len(thetas)):
                ll_r, grad_r = _gradient(spec, thetas[r], patterns)
                assert ll_r == ll[r]
                np.testing.assert_array_equal(grad_r, grad[r])
            thetas[3, 4] = -5.0  # wave-1 variance of x below 0: not positive definite
            assert _gradient(spec, thetas[3], patterns) == (-np.inf, None)
            ll_bad, grad_bad = _gradients(spec, thetas, patterns)
            assert ll_bad[3] == -np.inf and np.isnan(grad_bad[3]).all()
            keep = np.arange(len(thetas)) != 3
            np.testing.assert_array_equal(ll_bad[keep], ll[keep])
            np.testing.assert_array_equal(grad_bad[keep], grad[keep])


def test_riclpm_fit_lr_tests():
    """lr_tests=True adds a likelihood-ratio test of each cross-lagged path (close to the
    Wald z squared on 150 units) and leaves every other result as without it (before
    this was fixed, the refits' parameter mask replaced the list of parameters the
    information is taken over, and the fit failed)."""
    from scipy import stats

    d = pd.read_csv(DATA / "riclpm_complete.csv").to_numpy(float)
    fit = riclpm_fit(d, n_waves=4, lr_tests=True)
    plain = riclpm_fit(d, n_waves=4)
    assert plain["lr"] == {} and sorted(fit["lr"]) == ["x_to_y", "y_to_x"]
    for key, (stat, p) in fit["lr"].items():
        i = fit["names"].index(key)
        assert stat == pytest.approx((fit["estimate"][i] / fit["se"][i]) ** 2, rel=0.1)
        assert p == stats.chi2.sf(stat, 1)
    assert fit["lr"]["x_to_y"][1] < 1e-4 and 0.01 < fit["lr"]["y_to_x"][1] < 0.05
    for key in ("estimate", "se", "cov", "se_robust", "cov_robust", "cov_jackknife"):
        np.testing.assert_array_equal(fit[key], plain[key], err_msg=key)
    assert fit["loglik"] == plain["loglik"] and fit["converged"] and fit["message"] == ""
