"""Psychometric (Hunter-Schmidt) meta-analysis with individual corrections.

Each client contributes a unit-level correlation ``r`` over ``n`` units, the reliability
of its unit EX scores (``rxx``: ICC(2) of the unit means), the reliability of its unit
outcomes (``ryy``: test-retest across periods, :func:`retest_reliability`, or a value
from ``study.yml``), and optionally the ratio ``ux`` of its units' EX spread to a
reference spread (direct range restriction). This module

- :func:`correct_correlations` - corrects every client's correlation for those
  artefacts (one row per client: corrected r, attenuation factor, corrected sampling
  variance, weight);
- :func:`psychometric_meta` - pools them: bare-bones (observed r) and corrected (rho)
  means, variances, the share of variance due to sampling error and artefacts, SD_rho,
  the credibility interval, and confidence intervals;
- :func:`retest_reliability` - the outcome's test-retest reliability across periods,
  stepped up to the reliability of a unit mean over its periods.

Conventions are psychmeta's ``ma_r_ic(..., hs_override = TRUE)`` (Schmidt & Hunter
2015, ch. 3): sample-size weights, sampling-error variance from the mean r, r corrected
for small-sample bias, normal-theory intervals, population (not unbiased) variances.
psychmeta is not a Debian package, so ``tests/r/psychometric.R`` transcribes its formulas
by hand and the tests check this module against that script to 1e-6. Written by hand on
numpy: no Python library offers the Hunter-Schmidt corrections.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import check_column_args as _check_columns
from .exceptions import ParameterError

__all__ = ["correct_correlations", "psychometric_meta", "retest_reliability",
           "PSYCHOMETRIC_FIELDS"]

#: Fields of the Series returned by :func:`psychometric_meta`, in order.
PSYCHOMETRIC_FIELDS = (
    "k", "n", "mean_r", "var_r", "var_e", "var_res", "sd_r", "sd_res", "pct_var_e",
    "se_r_hs", "se_r", "ci_low", "ci_high", "cr_low", "cr_high",
    "mean_rxx", "mean_ryy", "mean_ux", "mean_rho", "var_r_c", "var_e_c", "var_rho",
    "sd_r_c", "sd_rho", "pct_var_artifacts", "se_rho_hs", "se_rho", "rho_ci_low",
    "rho_ci_high", "rho_cr_low", "rho_cr_high",
)


def _artifact(d, value, name, lo_open=True):
    """One artefact per row: a column, a number for all rows, or None (1.0)."""
    k = len(d)
    if value is None:
        return np.ones(k), np.zeros(k, dtype=bool)
    if isinstance(value, str):
        _check_columns(d, **{name: value})
        vals = pd.to_numeric(d[value], errors="coerce").to_numpy(float)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        vals = np.full(k, float(value))
    else:
        raise ParameterError(
            f"`{name}` must be a column name, a number or None, but {value!r} was passed")
    bad = np.isfinite(vals) & ((vals <= 0) | (vals > 1))
    if bad.any():
        raise ParameterError(
            f"`{name}` must lie in (0, 1], but {vals[bad].tolist()[:5]} were passed")
    missing = ~np.isfinite(vals)
    if missing.all():
        raise ParameterError(f"`{name}` ({value!r}) has no usable value")
    return vals, missing


def _prepare(data, r, n):
    _check_columns(data, r=r, n=n)
    d = data.copy()
    d["_r"] = pd.to_numeric(d[r], errors="coerce").astype(float)
    d["_n"] = pd.to_numeric(d[n], errors="coerce").astype(float)
    keep = d["_r"].notna() & d["_n"].notna()
    if (~keep).any():
        warnings.warn(f"{int((~keep).sum())} row(s) with a missing r or n were left out",
                      stacklevel=3)
        d = d.loc[keep]
    bad = d.loc[d["_r"].abs() >= 1, r]
    if len(bad):
        raise ParameterError(
            f"Every correlation in `r` ({r!r}) must lie strictly between -1 and 1, but "
            f"{bad.tolist()[:5]} were passed")
    bad = d.loc[d["_n"] < 2, n]
    if len(bad):
        raise ParameterError(
            f"Every sample size in `n` ({n!r}) must be at least 2, but {bad.tolist()[:5]} "
            "were passed")
    return d


def correct_correlations(data, *, r="r", n="n", rxx=None, ryy=None, ux=None,
                         correct_bias=True) -> pd.DataFrame:
    """Correct each client's correlation for unreliability and range restriction.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client: correlation ``r`` over ``n`` units, plus artefact columns.
    r, n : str
        Columns of correlations and sample sizes (units).
    rxx : str, float or None
        Reliability of the EX unit scores within the client (ICC(2) of unit means), a
        column or one number; None: no correction. A missing value in a column is
        replaced by the n-weighted mean of the others (and said in a warning).
    ryy : str, float or None
        Reliability of the outcome within the client (test-retest), as ``rxx``.
    ux : str, float or None
        Direct range restriction on EX: the client's SD of unit EX divided by the SD in
        the reference population (a u ratio, (0, 1]; 1 means none).
    correct_bias : bool, default True
        Correct r for its small-sample bias first, :math:`r / ((2n-2)/(2n-1))`.

    Returns
    -------
    pandas.DataFrame
        ``data`` (the kept rows) plus ``r_bc`` (bias-corrected r), ``rxx, ryy, ux``
        (as used), ``rxxa`` (EX reliability in the reference population), ``rho``
        (corrected r), ``A`` (total attenuation, ``r_bc / rho``), ``a_rr`` (range
        restriction refinement of the error variance), ``var_e`` (sampling-error
        variance of r from the mean r), ``var_e_c`` (of rho), ``weight``
        (:math:`n A^2`).

    Notes
    -----
    Without range restriction :math:`\\rho_i = r_i / \\sqrt{r_{xx,i}\\,r_{yy,i}}`. With
    a u ratio (Case II, psychmeta's ``.correct_r_uvdrr``): correct for the outcome
    first, :math:`r' = r_i/\\sqrt{r_{yy,i}}`, then for range restriction,
    :math:`r'' = r' / (u\\sqrt{(u^{-2} - 1) r'^2 + 1})`, then for EX with its
    reliability in the reference population :math:`r_{xxa} = 1 - u^2 (1 - r_{xx})`
    (psychmeta's estimate for an internal-consistency-type reliability).
    :math:`A_i = r_i/\\rho_i`, :math:`a_i = 1/((u^{-2} - 1) r_i^2 + 1)`,
    :math:`v_{e,i} = (1 - \\bar r^2)^2 / (n_i - 1)`, :math:`v_{ec,i} = v_{e,i}
    a_i^2 / A_i^2`, weight :math:`n_i A_i^2` (Schmidt & Hunter 2015, eqs. 3.16-3.24).

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"r": [0.30, 0.20], "n": [50, 80], "icc2": [0.8, 0.7]})
    >>> res = correct_correlations(d, rxx="icc2", ryy=0.9, correct_bias=False)
    >>> [round(v, 4) for v in res["rho"]]
    [0.3536, 0.252]
    """
    d = _prepare(data, r, n).reset_index(drop=True)
    if len(d) == 0:
        raise ParameterError("correct_correlations needs at least 1 correlation, but none "
                             "was usable")
    rr, nn = d["_r"].to_numpy(), d["_n"].to_numpy()
    arts = {}
    for name, value in (("rxx", rxx), ("ryy", ryy), ("ux", ux)):
        vals, missing = _artifact(d, value, name)
        if missing.any():
            fill = float(np.sum(vals[~missing] * nn[~missing]) / np.sum(nn[~missing]))
            warnings.warn(f"{int(missing.sum())} missing `{name}` value(s) replaced by the "
                          f"n-weighted mean of the others ({fill:.3f})", stacklevel=2)
            vals = np.where(missing, fill, vals)
        arts[name] = vals
    r_bc = rr / ((2 * nn - 2) / (2 * nn - 1)) if correct_bias else rr.copy()
    rxx_i, ryy_i, u = arts["rxx"], arts["ryy"], arts["ux"]
    rxxa = 1.0 - u**2 * (1.0 - rxx_i)
    r1 = r_bc / np.sqrt(ryy_i)
    r2 = r1 / (u * np.sqrt((u**-2 - 1.0) * r1**2 + 1.0))
    rho = r2 / np.sqrt(rxxa)
    if np.any(np.abs(rho) >= 1):
        warnings.warn(f"{int(np.sum(np.abs(rho) >= 1))} corrected correlation(s) reach 1 or "
                      "more in absolute value: the reliabilities are probably too low",
                      stacklevel=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        A = np.where(rho != 0, r_bc / rho, np.sqrt(rxxa * ryy_i))
    a_rr = 1.0 / ((u**-2 - 1.0) * r_bc**2 + 1.0)
    mean_r = float(np.sum(nn * r_bc) / np.sum(nn))
    var_e = (1.0 - mean_r**2) ** 2 / (nn - 1.0)
    out = d.drop(columns=["_r", "_n"])
    out["r_bc"] = r_bc
    out["rxx"], out["ryy"], out["ux"], out["rxxa"] = rxx_i, ryy_i, u, rxxa
    out["rho"], out["A"], out["a_rr"] = rho, A, a_rr
    out["var_e"] = var_e
    out["var_e_c"] = var_e * a_rr**2 / A**2
    out["weight"] = nn * A**2
    return out


def psychometric_meta(data, *, r="r", n="n", rxx=None, ryy=None, ux=None,
                      correct_bias=True, cred_level=0.80, ci_level=0.95) -> pd.Series:
    """Bare-bones and psychometric meta-analysis of correlations (Hunter & Schmidt).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client.
    r, n, rxx, ryy, ux, correct_bias
        As :func:`correct_correlations`.
    cred_level : float, default 0.80
        Coverage of the credibility intervals (80% as Hunter & Schmidt and Harter et al.).
    ci_level : float, default 0.95
        Coverage of the confidence intervals of the means.

    Returns
    -------
    pandas.Series
        The :data:`PSYCHOMETRIC_FIELDS`, in order. Bare-bones (observed r):
        ``k, n`` (clients, units), ``mean_r``, ``var_r`` (observed variance),
        ``var_e`` (expected from sampling error), ``var_res`` (residual, may be
        negative), ``sd_r``, ``sd_res``, ``pct_var_e`` (% of the observed variance
        expected from sampling error; above 100 when correlations vary less than
        sampling error predicts), ``se_r_hs`` (Hunter-Schmidt's :math:`s_r/\\sqrt k`,
        as psychmeta), ``se_r`` (used for the CI: the SE of the weighted mean under
        the fitted model, never below sampling error alone), ``ci_low, ci_high``,
        ``cr_low, cr_high`` (credibility interval of observed r). Corrected (rho):
        ``mean_rxx, mean_ryy, mean_ux`` (weighted by n), ``mean_rho``, ``var_r_c``,
        ``var_e_c`` (sampling error and artefacts), ``var_rho`` (may be negative),
        ``sd_r_c``, ``sd_rho`` (0 when ``var_rho`` < 0), ``pct_var_artifacts`` (% of
        the variance of corrected r due to sampling error and artefacts),
        ``se_rho_hs``, ``se_rho``, ``rho_ci_low, rho_ci_high``, ``rho_cr_low,
        rho_cr_high``.

    Notes
    -----
    With weights :math:`w_i` (``n`` for bare-bones, :math:`n_i A_i^2` for rho):

    .. math::

        \\bar r = \\frac{\\sum n_i r_i}{\\sum n_i}, \\quad
        s_r^2 = \\frac{\\sum n_i (r_i - \\bar r)^2}{\\sum n_i}, \\quad
        s_e^2 = \\frac{\\sum n_i (1-\\bar r^2)^2/(n_i - 1)}{\\sum n_i}, \\quad
        s_\\rho^2 = s_{r_c}^2 - s_{e_c}^2

    and the credibility interval is :math:`\\bar\\rho \\pm z_{(1+c)/2} s_\\rho`: where
    the *true* correlations of 80% of clients lie. The confidence interval is about the
    *mean* only. Hunter and Schmidt's SE :math:`s_r/\\sqrt k` can fall below what
    sampling error alone implies when the correlations happen to agree (then more than
    100% of the variance is "explained"); ``se_r`` is instead
    :math:`\\sqrt{\\sum w_i^2 (v_{e,i} + \\max(0, s_{res}^2))}/\\sum w_i`, the SE of
    the weighted mean under the random-effects model the estimates describe.

    Compared with a REML random-effects model on Fisher's z (metafor), the credibility
    interval leaves out the uncertainty of the mean and uses an 80% rather than a 95%
    coverage, and rho is corrected for measurement error: so it is narrower than the
    95% prediction interval and centred higher.

    References
    ----------
    .. [1] Schmidt, F. L., & Hunter, J. E. (2015). Methods of meta-analysis: Correcting
       error and bias in research findings (3rd ed.). Sage. Chapter 3.
    .. [2] Dahlke, J. A., & Wiernik, B. M. (2019). psychmeta: An R package for
       psychometric meta-analysis. Applied Psychological Measurement, 43, 415-416.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"r": [0.30, 0.20, 0.25, 0.10], "n": [80, 120, 60, 100],
    ...                   "icc2": [0.80, 0.70, 0.75, 0.85]})
    >>> res = psychometric_meta(d, rxx="icc2", ryy=0.8)
    >>> print(round(res["mean_r"], 4), round(res["mean_rho"], 4))
    0.204 0.2579
    """
    for name, val in (("cred_level", cred_level), ("ci_level", ci_level)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not 0 < val < 1:
            raise ParameterError(
                f"`{name}` must be a number between 0 and 1, but {val!r} was passed")
    c = correct_correlations(data, r=r, n=n, rxx=rxx, ryy=ryy, ux=ux,
                             correct_bias=correct_bias)
    k = len(c)
    if k < 2:
        raise ParameterError(
            f"psychometric_meta needs at least 2 correlations, but k = {k}")
    zc = stats.norm.ppf(0.5 + ci_level / 2)
    zr = stats.norm.ppf(0.5 + cred_level / 2)
    nn = c[n].astype(float).to_numpy()
    rb = c["r_bc"].to_numpy()
    ve = c["var_e"].to_numpy()
    N = float(nn.sum())

    def _wstats(x, w, v):
        m = float(np.sum(w * x) / np.sum(w))
        var_x = float(np.sum(w * (x - m) ** 2) / np.sum(w))
        var_err = float(np.sum(w * v) / np.sum(w))
        var_res = var_x - var_err
        se_hs = math.sqrt(var_x / k)
        se = math.sqrt(float(np.sum(w**2 * (v + max(0.0, var_res))))) / float(np.sum(w))
        return m, var_x, var_err, var_res, se_hs, se

    mean_r, var_r, var_e, var_res, se_r_hs, se_r = _wstats(rb, nn, ve)
    sd_res = math.sqrt(var_res) if var_res > 0 else 0.0
    w = c["weight"].to_numpy()
    mean_rho, var_rc, var_ec, var_rho, se_rho_hs, se_rho = _wstats(
        c["rho"].to_numpy(), w, c["var_e_c"].to_numpy())
    sd_rho = math.sqrt(var_rho) if var_rho > 0 else 0.0
    out = {
        "k": k, "n": N, "mean_r": mean_r, "var_r": var_r, "var_e": var_e,
        "var_res": var_res, "sd_r": math.sqrt(var_r), "sd_res": sd_res,
        "pct_var_e": 100.0 * var_e / var_r if var_r > 0 else np.inf,
        "se_r_hs": se_r_hs, "se_r": se_r,
        "ci_low": mean_r - zc * se_r, "ci_high": mean_r + zc * se_r,
        "cr_low": mean_r - zr * sd_res, "cr_high": mean_r + zr * sd_res,
        "mean_rxx": float(np.sum(nn * c["rxx"]) / N),
        "mean_ryy": float(np.sum(nn * c["ryy"]) / N),
        "mean_ux": float(np.sum(nn * c["ux"]) / N),
        "mean_rho": mean_rho, "var_r_c": var_rc, "var_e_c": var_ec, "var_rho": var_rho,
        "sd_r_c": math.sqrt(var_rc), "sd_rho": sd_rho,
        "pct_var_artifacts": 100.0 * var_ec / var_rc if var_rc > 0 else np.inf,
        "se_rho_hs": se_rho_hs, "se_rho": se_rho,
        "rho_ci_low": mean_rho - zc * se_rho, "rho_ci_high": mean_rho + zc * se_rho,
        "rho_cr_low": mean_rho - zr * sd_rho, "rho_cr_high": mean_rho + zr * sd_rho,
    }
    return pd.Series(out, dtype=float)[list(PSYCHOMETRIC_FIELDS)]


def retest_reliability(panel, *, y, periods, unit="unit_id", period="period",
                       step_up=True, min_units=4) -> pd.Series:
    """Test-retest reliability of a unit-level outcome across adjacent periods.

    Parameters
    ----------
    panel : pandas.DataFrame
        One row per unit x period with column ``y``.
    y : str
        Outcome column.
    periods : list of str
        Periods in time order.
    unit, period : str
        Key columns.
    step_up : bool, default True
        Step the one-period reliability up to that of a unit's mean over the periods it
        reported (Spearman-Brown with the mean number of periods per unit): the
        reliability of the unit means the synthesis correlates.
    min_units : int, default 4
        Fewest units with both periods for a pair of periods to count.

    Returns
    -------
    pandas.Series
        ``r_tt`` (mean over adjacent period pairs of the correlation across units
        between the two periods, weighted by units), ``pairs`` (period pairs used),
        ``units`` (mean units per pair), ``m`` (mean periods per unit), ``ryy``
        (``r_tt`` stepped up, or ``r_tt``). NaN ``ryy`` with fewer than two periods,
        no usable pair, or ``r_tt`` <= 0.

    Notes
    -----
    Harter et al. (2002, 2020) correct their business-unit correlations for the
    unreliability of the outcome using its test-retest reliability across periods.
    Real change between periods lowers ``r_tt`` as much as noise does, so the
    correction is, if anything, too large (it treats change as error); ``ryy`` =
    :math:`m\\,r_{tt} / (1 + (m - 1) r_{tt})`.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"unit_id": list("abcdeabcde"), "period": ["1"] * 5 + ["2"] * 5,
    ...                   "nps": [1, 2, 3, 4, 5, 1.5, 2.2, 2.9, 4.4, 4.8]})
    >>> res = retest_reliability(p, y="nps", periods=["1", "2"])
    >>> print(round(res["r_tt"], 3), round(res["ryy"], 3))
    0.986 0.993
    """
    _check_columns(panel, y=y, unit=unit, period=period)
    sub = panel[[unit, period, y]]
    if sub.duplicated([unit, period]).any():
        sub = sub.groupby([unit, period], sort=False, as_index=False)[y].mean()
    wide = sub.set_index([unit, period])[y].unstack(period)  # units x periods
    cols = [p for p in periods if p in wide.columns]
    rs, ns = [], []
    for a, b in zip(cols[:-1], cols[1:], strict=True):
        pair = wide[[a, b]].dropna()
        if len(pair) >= min_units and pair[a].std() > 0 and pair[b].std() > 0:
            rs.append(float(np.corrcoef(pair[a], pair[b])[0, 1]))
            ns.append(len(pair))
    m = float(wide[cols].notna().sum(axis=1).mean()) if cols else np.nan
    if not rs:
        return pd.Series({"r_tt": np.nan, "pairs": 0.0, "units": np.nan, "m": m,
                          "ryy": np.nan})
    r_tt = float(np.average(rs, weights=ns))
    ryy = m * r_tt / (1 + (m - 1) * r_tt) if step_up else r_tt
    if not r_tt > 0:
        ryy = np.nan
    return pd.Series({"r_tt": r_tt, "pairs": float(len(rs)), "units": float(np.mean(ns)),
                      "m": m, "ryy": ryy})
