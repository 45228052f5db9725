"""Pool per-client unit-level correlations across clients (meta-analysis).

Every client contributes one correlation ``r`` between an EX scale and an outcome,
computed over its ``n`` business units. This module pools those correlations:

- :func:`meta_analysis` - fixed effect (FE) and random effects (DerSimonian-Laird, DL;
  restricted maximum likelihood, REML) on Fisher's z, back-transformed to r, with the
  conventions of R's metafor; and the Hunter-Schmidt (HS) bare-bones method on r;
- :func:`hunter_schmidt` - the psychometric meta-analysis in full, with corrections for
  the unreliability of the EX scale and of the outcome;
- :func:`meta_regression` - a categorical moderator such as industry;
- :func:`leave_one_out` - sensitivity to each client;
- :func:`pool_correlations` - many (x, y) pairs at once, one tidy row per pair;
- :func:`plot_forest` - the forest plot.

Everything was written by hand on numpy/scipy: statsmodels'
``combine_effects`` offers FE, DL and Paule-Mandel but no REML and no meta-regression,
and metafor (the reference used in the tests, see ``tests/r/meta.R``) is an R package.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import check_choice
from ._checks import check_column_args as _check_columns
from .exceptions import ParameterError

__all__ = [
    "pool_estimates",
    "META_METHODS",
    "META_FIELDS",
    "meta_analysis",
    "hunter_schmidt",
    "meta_regression",
    "leave_one_out",
    "pool_correlations",
    "plot_forest",
]

#: Methods accepted by :func:`meta_analysis`.
META_METHODS = ("FE", "DL", "REML", "HS")
#: Fields of the Series returned by :func:`meta_analysis`, in order (stable public API).
META_FIELDS = ("k", "n", "estimate", "ci_low", "ci_high", "pi_low", "pi_high",
               "tau2", "i2", "q", "q_p")

_Z975 = stats.norm.ppf(0.975)
#: REML Fisher scoring stops when tau^2 changes by less than this (metafor's default is
#: 1e-5, which can leave I^2 off in the second decimal).
_REML_TOL = 1e-12
_REML_MAXITER = 10_000


# --------------------------------------------------------------------------- helpers
def _check_method(method, allowed=META_METHODS):
    return check_choice("method", method, allowed)


def _prepare(data, r, n, *, extra=()):
    """Validate ``r`` and ``n`` columns; drop incomplete rows with a warning.

    Returns the kept rows (a copy) with float columns ``_r`` and ``_n``.
    """
    _check_columns(data, r=r, n=n)
    d = data.copy()
    d["_r"] = pd.to_numeric(d[r], errors="coerce").astype(float)
    d["_n"] = pd.to_numeric(d[n], errors="coerce").astype(float)
    keep = d["_r"].notna() & d["_n"].notna()
    for col in extra:
        keep &= d[col].notna()
    if (~keep).any():
        warnings.warn(
            f"{int((~keep).sum())} row(s) with a missing value were left out of the "
            "meta-analysis", stacklevel=3)
        d = d.loc[keep]
    bad_r = d.loc[(d["_r"].abs() >= 1), r]
    if len(bad_r):
        raise ParameterError(
            f"Every correlation in `r` ({r!r}) must lie strictly between -1 and 1, but "
            f"{bad_r.tolist()[:5]} were passed")
    bad_n = d.loc[d["_n"] <= 3, n]
    if len(bad_n):
        raise ParameterError(
            f"Every sample size in `n` ({n!r}) must be greater than 3 (Fisher's z has "
            f"variance 1/(n - 3)), but {bad_n.tolist()[:5]} were passed")
    return d


def _nan_series(k, n_total):
    s = pd.Series(np.nan, index=list(META_FIELDS), dtype=float)
    s["k"], s["n"] = k, n_total
    return s


def _fit_rma(yi, vi, X, method):
    """Weighted (mixed-effects) meta-regression as metafor's ``rma.uni``.

    Parameters
    ----------
    yi, vi : ndarray (k,)
        Effect sizes and sampling variances.
    X : ndarray (k, p)
        Design matrix (a column of ones for the intercept-only model).
    method : {"FE", "DL", "REML"}

    Returns
    -------
    dict with ``beta, vb, tau2, qe, qe_p, i2, vt, k, p, converged``.
    """
    k, p = X.shape
    w0 = 1.0 / vi
    W0 = np.diag(w0)
    XtW0X_inv = np.linalg.inv(X.T @ W0 @ X)
    P0 = W0 - W0 @ X @ XtW0X_inv @ X.T @ W0
    qe = float(yi @ P0 @ yi)
    df = k - p
    qe_p = float(stats.chi2.sf(qe, df)) if df > 0 else np.nan
    tr_p0 = float(np.trace(P0))
    # "typical" within-study variance (Higgins & Thompson 2002), as metafor's vt
    vt = df / tr_p0 if df > 0 else np.nan
    converged = True
    if method == "FE":
        tau2 = 0.0
    elif method == "DL":
        tau2 = max(0.0, (qe - df) / tr_p0) if df > 0 else 0.0
    else:  # REML by Fisher scoring (as metafor), with step halving to stay >= 0
        tau2 = max(0.0, (qe - df) / tr_p0) if df > 0 else 0.0
        converged = False
        for _ in range(_REML_MAXITER):
            W = np.diag(1.0 / (vi + tau2))
            P = W - W @ X @ np.linalg.inv(X.T @ W @ X) @ X.T @ W
            Py = P @ yi
            adj = (float(Py @ Py) - float(np.trace(P))) / float(np.sum(P * P.T))
            while tau2 + adj < 0:
                adj /= 2.0
            tau2 += adj
            if abs(adj) < _REML_TOL:
                converged = True
                break
        tau2 = max(0.0, tau2)
        if 0.0 < tau2 < 1e-8:
            # Step halving approaches a boundary maximum only asymptotically: when the
            # REML score at tau^2 = 0 is not positive the maximum is 0 itself.
            P0y = P0 @ yi
            if float(P0y @ P0y) - tr_p0 <= 0.0:
                tau2 = 0.0
        if not converged:
            warnings.warn("REML estimation of tau^2 did not converge; the last value is used",
                          stacklevel=3)
    w = 1.0 / (vi + tau2)
    W = np.diag(w)
    vb = np.linalg.inv(X.T @ W @ X)
    beta = vb @ X.T @ W @ yi
    if method == "FE":
        i2 = max(0.0, (qe - df) / qe) if df > 0 and qe > 0 else (0.0 if df > 0 else np.nan)
    else:
        i2 = tau2 / (vt + tau2) if df > 0 else np.nan
    return {"beta": beta, "vb": vb, "tau2": tau2, "qe": qe, "qe_p": qe_p, "i2": i2,
            "vt": vt, "k": k, "p": p, "converged": converged}


def _fit_rma_batch(yi, vi, X, method, *, mask=None):
    """:func:`_fit_rma` for a stack of ``B`` models at once, without any k x k matrix.

    Parameters
    ----------
    yi, vi : ndarray (k,)
        Effect sizes and sampling variances, shared by every model.
    X : ndarray (B, k, p)
        One design matrix per model (a column of ones for intercept-only models).
    method : {"FE", "DL", "REML"}
    mask : ndarray (B, k) of 0/1, optional
        Which rows each model uses (a 0 leaves that study out, as leave-one-out does);
        default every row.

    Returns
    -------
    dict of arrays over the models: ``beta`` (B, p), ``vb`` (B, p, p), ``tau2, qe, qe_p,
    i2, vt, k, converged`` (B,).

    Notes
    -----
    The same estimator and Fisher scoring as :func:`_fit_rma` (DL start, step halving
    to stay >= 0, stop when the change is below 1e-12, the boundary check at 0), each
    model frozen once it converges. :func:`_fit_rma` forms
    :math:`P = W - WX(X'WX)^{-1}X'W` (k x k); here only p x p matrices are formed, with
    :math:`M = (X'WX)^{-1}`, :math:`C_j = X'W^jX`:

    .. math::

        Py = Wy - WXM X'Wy, \\quad \\operatorname{tr}P = \\sum w - \\operatorname{tr}(MC_2),
        \\quad \\operatorname{tr}(PP) = \\sum w^2 - 2\\operatorname{tr}(MC_3)
        + \\operatorname{tr}(MC_2MC_2)

    so a stack of B models with k studies costs O(B k p^2) per step instead of
    O(B k^2 p) time and O(B k^2) memory (1000 permutations of 300 clients: 720 MB per
    step). Results equal :func:`_fit_rma`'s to rounding (``tests/test_meta.py``,
    ``tests/test_moderators.py``). Written by hand: no library has a batched
    mixed-effects meta-regression.
    """
    X = np.asarray(X, dtype=float)
    B, k, p = X.shape
    m = np.ones((B, k)) if mask is None else np.asarray(mask, dtype=float)
    kk = m.sum(axis=1)
    df = kk - p
    pos = df > 0
    Xt = X.transpose(0, 2, 1)

    def parts(w, Xa, Xta):
        """Py, tr P, tr PP, M and X'Wy of weights ``w`` (rows of ``Xa``)."""
        M = np.linalg.inv((Xta * w[:, None, :]) @ Xa)
        xwy = np.einsum("bpk,bk->bp", Xta, w * yi)
        Py = w * yi - w * np.einsum("bkp,bp->bk", Xa, np.einsum("bpq,bq->bp", M, xwy))
        C2 = (Xta * (w * w)[:, None, :]) @ Xa
        C3 = (Xta * (w * w * w)[:, None, :]) @ Xa
        MC2 = M @ C2
        tr = w.sum(axis=1) - np.trace(MC2, axis1=1, axis2=2)
        trpp = ((w * w).sum(axis=1) - 2.0 * np.trace(M @ C3, axis1=1, axis2=2)
                + np.einsum("bpq,bqp->b", MC2, MC2))
        return Py, tr, trpp, M, xwy

    w0 = m / vi[None, :]
    P0y, tr0, _, M0, xwy0 = parts(w0, X, Xt)
    qe = (w0 * yi * yi).sum(axis=1) - np.einsum("bp,bpq,bq->b", xwy0, M0, xwy0)
    with np.errstate(all="ignore"):
        qe_p = np.where(pos, stats.chi2.sf(qe, np.where(pos, df, 1)), np.nan)
        vt = np.where(pos, df / tr0, np.nan)
    converged = np.ones(B, dtype=bool)
    if method == "FE":
        tau2 = np.zeros(B)
    else:
        tau2 = np.where(pos, np.maximum(0.0, (qe - df) / np.where(pos, tr0, 1.0)), 0.0)
    if method == "REML":
        active = np.ones(B, dtype=bool)
        converged[:] = False
        for _ in range(_REML_MAXITER):
            if not active.any():
                break
            ia = np.flatnonzero(active)
            w = m[ia] / (vi[None, :] + tau2[ia][:, None])
            Py, tr, trpp, _, _ = parts(w, X[ia], Xt[ia])
            adj = ((Py * Py).sum(axis=1) - tr) / trpp
            t = tau2[ia]
            neg = t + adj < 0
            while neg.any():
                adj[neg] /= 2.0
                neg = t + adj < 0
            tau2[ia] = t + adj
            done = np.abs(adj) < _REML_TOL
            converged[ia[done]] = True
            active[ia[done]] = False
        tau2 = np.maximum(0.0, tau2)
        small = (tau2 > 0) & (tau2 < 1e-8)
        if small.any():
            tau2[small & ((P0y * P0y).sum(axis=1) - tr0 <= 0.0)] = 0.0
    w = m / (vi[None, :] + tau2[:, None])
    vb = np.linalg.inv((Xt * w[:, None, :]) @ X)
    beta = np.einsum("bpq,bq->bp", vb, np.einsum("bpk,bk->bp", Xt, w * yi))
    with np.errstate(all="ignore"):
        if method == "FE":
            i2 = np.where(pos & (qe > 0), np.maximum(0.0, (qe - df) / qe),
                          np.where(pos, 0.0, np.nan))
        else:
            i2 = np.where(pos, tau2 / (vt + tau2), np.nan)
    return {"beta": beta, "vb": vb, "tau2": tau2, "qe": qe, "qe_p": qe_p, "i2": i2,
            "vt": vt, "k": kk, "converged": converged}


def _hs_core(r, n, *, cred_level=0.80, ci_level=0.95):
    """Bare-bones Hunter-Schmidt quantities (see :func:`hunter_schmidt`)."""
    k = len(r)
    N = float(n.sum())
    nbar = N / k
    rbar = float(np.sum(n * r) / N)
    var_obs = float(np.sum(n * (r - rbar) ** 2) / N)
    var_e = (1.0 - rbar**2) ** 2 / (nbar - 1.0)
    var_res = max(0.0, var_obs - var_e)
    se = math.sqrt(var_obs / k)
    zc = stats.norm.ppf(0.5 + ci_level / 2)
    zr = stats.norm.ppf(0.5 + cred_level / 2)
    q = N * var_obs / (1.0 - rbar**2) ** 2
    return {
        "k": k, "n": N, "rbar": rbar, "var_obs": var_obs, "var_e": var_e,
        "var_res": var_res,
        "pct_explained": 100.0 * var_e / var_obs if var_obs > 0 else np.nan,
        "sd_res": math.sqrt(var_res), "se": se,
        "ci_low": rbar - zc * se, "ci_high": rbar + zc * se,
        "cr_low": rbar - zr * math.sqrt(var_res), "cr_high": rbar + zr * math.sqrt(var_res),
        "q": q, "q_p": float(stats.chi2.sf(q, k - 1)) if k > 1 else np.nan,
    }


def _pool(r, n, method):
    """Pool arrays r, n (already validated). Returns the :data:`META_FIELDS` Series."""
    k = len(r)
    n_total = float(n.sum())
    if k < 2:
        warnings.warn(
            f"meta-analysis needs at least 2 correlations, but k = {k}; returning NaN",
            stacklevel=3)
        return _nan_series(k, n_total)
    if method == "HS":
        h = _hs_core(r, n)
        out = {"k": k, "n": n_total, "estimate": h["rbar"],
               "ci_low": h["ci_low"], "ci_high": h["ci_high"],
               "pi_low": h["cr_low"], "pi_high": h["cr_high"],
               "tau2": h["var_res"],
               "i2": h["var_res"] / h["var_obs"] if h["var_obs"] > 0 else np.nan,
               "q": h["q"], "q_p": h["q_p"]}
        return pd.Series(out, dtype=float)[list(META_FIELDS)]
    yi = np.arctanh(r)
    vi = 1.0 / (n - 3.0)
    fit = _fit_rma(yi, vi, np.ones((k, 1)), method)
    mu = float(fit["beta"][0])
    se = math.sqrt(float(fit["vb"][0, 0]))
    tau2 = fit["tau2"]
    pi_se = math.sqrt(se**2 + tau2)
    out = {"k": k, "n": n_total, "estimate": math.tanh(mu),
           "ci_low": math.tanh(mu - _Z975 * se), "ci_high": math.tanh(mu + _Z975 * se),
           "pi_low": math.tanh(mu - _Z975 * pi_se), "pi_high": math.tanh(mu + _Z975 * pi_se),
           "tau2": tau2, "i2": fit["i2"], "q": fit["qe"], "q_p": fit["qe_p"]}
    return pd.Series(out, dtype=float)[list(META_FIELDS)]


def pool_estimates(data, *, estimate="estimate", se="se", method="REML") -> pd.Series:
    """Pool estimates with standard errors over studies (clients): the one pooling routine.

    Any effect that comes with a standard error (a cross-lagged path, a regression
    slope, a Fisher z) is pooled here; :func:`meta_analysis` pools correlations with it
    on Fisher's z, the synthesis pools cross-lagged paths with it, and
    :mod:`exresearch.power`'s vectorised DerSimonian-Laird test is checked against it.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study; rows with a missing estimate or a missing or non-positive SE
        are dropped.
    estimate, se : str
        Columns.
    method : {"REML", "DL", "FE"}
        Random effects with tau^2 by restricted maximum likelihood or DerSimonian-Laird,
        or fixed effect.

    Returns
    -------
    pandas.Series
        ``k, estimate, se, ci_low, ci_high, z, p_val, tau2, i2, q, q_p, pi_low,
        pi_high`` (95% intervals; the prediction interval is for a new study's true
        effect; NaN with fewer than 2 rows, ``k`` kept).

    Notes
    -----
    Weighted least squares with weights :math:`1/(s_i^2 + \\tau^2)`, Wald z, Cochran's
    Q from the fixed-effect fit, :math:`I^2 = \\tau^2 / (\\tau^2 + \\tilde v)` with the
    typical within-study variance :math:`\\tilde v` (Higgins & Thompson 2002), as metafor's
    ``rma(yi, sei = se, method = ...)`` and ``predict()`` (tests/r/report.R).

    References
    ----------
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
    Journal of Statistical Software, 36(3), 1-48.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"estimate": [0.2, 0.3, 0.25], "se": [0.1, 0.1, 0.1]})
    >>> round(float(pool_estimates(d, method="DL")["estimate"]), 3)
    0.25
    """
    _check_method(method, ("REML", "DL", "FE"))
    _check_columns(data, estimate=estimate, se=se)
    d = data[[estimate, se]].astype(float).dropna()
    d = d[d[se] > 0]
    k = len(d)
    keys = ["k", "estimate", "se", "ci_low", "ci_high", "z", "p_val", "tau2", "i2", "q",
            "q_p", "pi_low", "pi_high"]
    if k < 2:
        return pd.Series({**dict.fromkeys(keys, np.nan), "k": float(k)})
    yi, vi = d[estimate].to_numpy(), d[se].to_numpy() ** 2
    fit = _fit_rma(yi, vi, np.ones((k, 1)), method)
    mu = float(fit["beta"][0])
    s = math.sqrt(float(fit["vb"][0, 0]))
    pi_se = math.sqrt(s**2 + fit["tau2"])
    z = mu / s
    return pd.Series({
        "k": float(k), "estimate": mu, "se": s, "ci_low": mu - _Z975 * s,
        "ci_high": mu + _Z975 * s, "z": z, "p_val": float(2 * stats.norm.sf(abs(z))),
        "tau2": float(fit["tau2"]), "i2": float(fit["i2"]), "q": float(fit["qe"]),
        "q_p": float(fit["qe_p"]), "pi_low": mu - _Z975 * pi_se, "pi_high": mu + _Z975 * pi_se,
    })


# --------------------------------------------------------------------------- public API
def meta_analysis(data, *, r="r", n="n", method="REML"):
    """Pool correlations from several clients into one estimate.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client (study): a correlation and the number of units behind it.
        Rows with a missing ``r`` or ``n`` are left out with a warning.
    r : str, default "r"
        Column of correlations, strictly between -1 and 1.
    n : str, default "n"
        Column of sample sizes (units), each greater than 3.
    method : {"REML", "DL", "FE", "HS"}, default "REML"
        ``"FE"`` fixed (common) effect, ``"DL"`` random effects with the
        DerSimonian-Laird tau^2, ``"REML"`` random effects with the restricted maximum
        likelihood tau^2 (all three pool Fisher's z), ``"HS"`` Hunter-Schmidt bare-bones
        meta-analysis (pools r itself).

    Returns
    -------
    pandas.Series
        Float Series with the index, in this order (:data:`META_FIELDS`):

        - ``k``: number of correlations pooled; ``n``: total sample size;
        - ``estimate``: pooled correlation (r scale);
        - ``ci_low``, ``ci_high``: 95% confidence interval of the pooled correlation;
        - ``pi_low``, ``pi_high``: 95% prediction interval for the correlation of a new
          client (equal to the confidence interval for FE); for HS the 80% credibility
          interval;
        - ``tau2``: between-client variance on the pooled scale (Fisher z for FE/DL/REML
          - 0 for FE -, r for HS, where it is the residual variance);
        - ``i2``: share of the total variability due to heterogeneity (a proportion, 0-1);
        - ``q``, ``q_p``: heterogeneity test statistic and its chi-square p-value
          (df = k - 1).

        With fewer than 2 correlations every statistic is NaN (``k`` and ``n`` kept) and a
        warning is issued.

    Notes
    -----
    FE, DL and REML follow R's metafor, ``rma(measure="ZCOR", ri, ni, method=...)``
    followed by ``predict(res, transf=transf.ztor)``. Each correlation becomes
    :math:`y_i = \\operatorname{artanh}(r_i)` with sampling variance
    :math:`v_i = 1/(n_i - 3)`. With weights :math:`w_i = 1/(v_i + \\tau^2)`:

    .. math::

        \\hat\\mu = \\frac{\\sum w_i y_i}{\\sum w_i}, \\quad
        SE = \\Big(\\sum w_i\\Big)^{-1/2}, \\quad
        Q = \\sum \\frac{(y_i - \\hat\\mu_{FE})^2}{v_i}

    - DL: :math:`\\tau^2 = \\max\\{0, (Q - (k-1)) / (\\sum w_i - \\sum w_i^2 / \\sum w_i)\\}`
      with FE weights.
    - REML: Fisher scoring on the restricted log-likelihood,
      :math:`\\tau^2 \\leftarrow \\tau^2 + (y'PPy - \\operatorname{tr}P) /
      \\operatorname{tr}(PP)` with :math:`P = W - WX(X'WX)^{-1}X'W`, step-halving to
      keep :math:`\\tau^2 \\ge 0`, iterated until the change is below 1e-12 (metafor
      with ``control=list(threshold=1e-10)`` reproduces it to ~1e-10).
    - CI: :math:`\\tanh(\\hat\\mu \\pm 1.96\\,SE)`; prediction interval:
      :math:`\\tanh(\\hat\\mu \\pm 1.96\\sqrt{SE^2 + \\tau^2})`.
    - :math:`I^2`: for DL and REML, :math:`\\tau^2 / (\\tau^2 + s^2)` with the "typical"
      within-study variance :math:`s^2 = (k-1) / (\\sum w_i - \\sum w_i^2/\\sum w_i)`
      (FE weights); for FE, :math:`\\max\\{0, (Q - (k-1))/Q\\}`. Both are what metafor
      prints.

    HS (Hunter & Schmidt 2004) pools r with sample-size weights:
    :math:`\\bar r = \\sum n_i r_i / N`,
    :math:`s_r^2 = \\sum n_i (r_i - \\bar r)^2 / N`, sampling-error variance
    :math:`s_e^2 = (1 - \\bar r^2)^2 / (\\bar n - 1)`, residual variance
    ``tau2`` :math:`= \\max(0, s_r^2 - s_e^2)`, ``i2`` :math:`= \\tau^2 / s_r^2` (one minus
    the share explained by sampling error), the CI :math:`\\bar r \\pm 1.96
    \\sqrt{s_r^2 / k}`, the 80% credibility interval :math:`\\bar r \\pm 1.2816\\,\\tau`
    (in ``pi_low``/``pi_high``), and the chi-square test
    :math:`Q = N s_r^2 / (1 - \\bar r^2)^2` on k - 1 df. See :func:`hunter_schmidt` for
    the corrections for unreliability.

    References
    ----------
    .. [1] Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
       Journal of Statistical Software, 36(3), 1-48.
    .. [2] DerSimonian, R., & Laird, N. (1986). Meta-analysis in clinical trials.
       Controlled Clinical Trials, 7, 177-188.
    .. [3] Viechtbauer, W. (2005). Bias and efficiency of meta-analytic variance
       estimators in the random-effects model. J. Educ. Behav. Stat., 30, 261-293.
    .. [4] Higgins, J. P. T., & Thompson, S. G. (2002). Quantifying heterogeneity in a
       meta-analysis. Statistics in Medicine, 21, 1539-1558.
    .. [5] Hunter, J. E., & Schmidt, F. L. (2004). Methods of meta-analysis (2nd ed.). Sage.

    Examples
    --------
    Molloy et al. (2014), conscientiousness and medication adherence (metafor's
    ``dat.molloy2014``; REML z = 0.1499, tau^2 = 0.0081, I^2 = 61.73%):

    >>> import pandas as pd
    >>> from exresearch.meta import meta_analysis
    >>> d = pd.DataFrame({
    ...     "r": [0.187, 0.162, 0.34, 0.32, 0.27, 0.0, 0.175, 0.05, 0.26, 0.01,
    ...           -0.09, 0.37, 0.0, 0.15, 0.24, 0.04],
    ...     "n": [109, 749, 55, 107, 72, 65, 174, 326, 58, 771, 56, 91, 116, 537, 158, 65]})
    >>> res = meta_analysis(d, method="REML")
    >>> print(round(res[["estimate", "tau2", "i2"]], 4).to_string())
    estimate    0.1488
    tau2        0.0081
    i2          0.6173
    """
    _check_method(method)
    d = _prepare(data, r, n)
    return _pool(d["_r"].to_numpy(), d["_n"].to_numpy(), method)


def hunter_schmidt(data, *, r="r", n="n", rxx=None, ryy=None, cred_level=0.80,
                   ci_level=0.95):
    """Hunter-Schmidt psychometric meta-analysis of correlations (the Gallup method).

    An artifact-distribution version with one SE convention (:math:`s_r/\\sqrt k`); the
    synthesis uses :func:`exresearch.psychometric.psychometric_meta` (individual
    corrections on both sides, range restriction, an SE never below sampling error).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client: a correlation and its sample size (units).
    r, n : str
        Columns of correlations and sample sizes.
    rxx : float or str, optional
        Reliability of the EX scale (e.g. Cronbach's alpha of the unit-level measure):
        one number for all clients, or the name of a column with one value per client
        (an artifact distribution; missing values are ignored). ``None`` means no
        correction (1.0).
    ryy : float or str, optional
        Reliability of the outcome, as ``rxx``.
    cred_level : float, default 0.80
        Coverage of the credibility interval (80% is the convention of Hunter & Schmidt
        and of the Gallup meta-analyses).
    ci_level : float, default 0.95
        Coverage of the confidence intervals of the mean.

    Returns
    -------
    pandas.Series
        ``k, n, rbar, var_obs, var_e, var_res, pct_explained, sd_res, se, ci_low,
        ci_high, cr_low, cr_high, q, q_p`` (bare-bones, observed r) then ``rxx, ryy,
        a_mean, rho, var_rho, sd_rho, rho_ci_low, rho_ci_high, rho_cr_low,
        rho_cr_high`` (corrected for unreliability).

    Notes
    -----
    Bare-bones: :math:`\\bar r = \\sum n_i r_i / N`;
    :math:`s_r^2 = \\sum n_i (r_i - \\bar r)^2 / N`;
    :math:`s_e^2 = (1 - \\bar r^2)^2 / (\\bar n - 1)` with :math:`\\bar n = N/k`;
    :math:`s_{res}^2 = \\max(0, s_r^2 - s_e^2)`; ``pct_explained`` =
    :math:`100\\,s_e^2 / s_r^2` (the "75% rule" reads this; above 100 when the
    correlations vary less than sampling error alone predicts); ``se`` =
    :math:`\\sqrt{s_r^2/k}`; credibility interval
    :math:`\\bar r \\pm z_{(1+c)/2}\\, s_{res}`; ``q`` = :math:`N s_r^2/(1-\\bar r^2)^2`
    on k - 1 df.

    Corrections (artifact distributions, multiplicative model, Hunter & Schmidt 2004,
    ch. 4): with :math:`a_i = \\sqrt{r_{xx,i}}` and :math:`b_i = \\sqrt{r_{yy,i}}`,
    :math:`\\bar A = \\bar a\\,\\bar b`,
    :math:`\\bar\\rho = \\bar r / \\bar A`,
    :math:`V = CV_a^2 + CV_b^2` (squared coefficients of variation, population form),
    :math:`s_\\rho^2 = \\max\\{0, s_{res}^2 - \\bar r^2 V\\} / \\bar A^2`. A single
    reliability gives :math:`V = 0`, i.e. :math:`\\bar\\rho = \\bar r/\\sqrt{r_{xx}
    r_{yy}}` and :math:`s_\\rho = s_{res}/\\sqrt{r_{xx} r_{yy}}`. The CI and
    credibility interval of :math:`\\bar\\rho` are those of :math:`\\bar r` divided by
    :math:`\\bar A` (CI) or built from :math:`s_\\rho` (credibility).

    References
    ----------
    .. [1] Hunter, J. E., & Schmidt, F. L. (2004). Methods of meta-analysis: Correcting
       error and bias in research findings (2nd ed.). Sage. Chapters 3-4.
    .. [2] Harter, J. K., Schmidt, F. L., & Hayes, T. L. (2002). Business-unit-level
       relationship between employee satisfaction, employee engagement, and business
       outcomes: A meta-analysis. Journal of Applied Psychology, 87, 268-279.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.meta import hunter_schmidt
    >>> d = pd.DataFrame({"r": [0.30, 0.20, 0.25, 0.10], "n": [80, 120, 60, 100]})
    >>> res = hunter_schmidt(d, rxx=0.8, ryy=0.7)
    >>> print(round(res["rbar"], 4), round(res["rho"], 4), round(res["pct_explained"], 1))
    0.2028 0.271 191.0
    """
    for name, val in (("cred_level", cred_level), ("ci_level", ci_level)):
        if not (isinstance(val, (int, float)) and 0 < val < 1):
            raise ParameterError(
                f"`{name}` must be a number between 0 and 1, but {val!r} was passed")
    d = _prepare(data, r, n)
    rr, nn = d["_r"].to_numpy(), d["_n"].to_numpy()
    if len(rr) < 2:
        raise ParameterError(
            f"hunter_schmidt needs at least 2 correlations, but {len(rr)} were passed")
    h = _hs_core(rr, nn, cred_level=cred_level, ci_level=ci_level)

    def _artifact(val, name):
        if val is None:
            return np.array([1.0])
        if isinstance(val, str):
            _check_columns(d, **{name: val})
            vals = pd.to_numeric(d[val], errors="coerce").dropna().to_numpy(float)
        else:
            vals = np.atleast_1d(np.asarray(val, dtype=float))
        if len(vals) == 0 or np.any(vals <= 0) or np.any(vals > 1):
            raise ParameterError(
                f"`{name}` must hold reliabilities in (0, 1], but {val!r} was passed")
        return np.sqrt(vals)

    a = _artifact(rxx, "rxx")
    b = _artifact(ryy, "ryy")
    a_mean = float(a.mean() * b.mean())
    v = float((a.std() / a.mean()) ** 2 + (b.std() / b.mean()) ** 2)
    var_rho = max(0.0, h["var_res"] - h["rbar"] ** 2 * v) / a_mean**2
    rho = h["rbar"] / a_mean
    zc = stats.norm.ppf(0.5 + ci_level / 2)
    zr = stats.norm.ppf(0.5 + cred_level / 2)
    out = dict(h)
    out.update({
        "rxx": float((a**2).mean()), "ryy": float((b**2).mean()), "a_mean": a_mean,
        "rho": rho, "var_rho": var_rho, "sd_rho": math.sqrt(var_rho),
        "rho_ci_low": (h["rbar"] - zc * h["se"]) / a_mean,
        "rho_ci_high": (h["rbar"] + zc * h["se"]) / a_mean,
        "rho_cr_low": rho - zr * math.sqrt(var_rho),
        "rho_cr_high": rho + zr * math.sqrt(var_rho),
    })
    return pd.Series(out, dtype=float)


def meta_regression(data, *, r="r", n="n", moderator, method="REML"):
    """Meta-regression of Fisher-z correlations on a categorical moderator (e.g. industry).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client: correlation, sample size and the moderator.
    r, n : str
        Columns of correlations and sample sizes.
    moderator : str
        Column with a categorical moderator. Levels are sorted (as R's ``factor``) and
        the first is the reference. Rows with a missing moderator are left out with a
        warning.
    method : {"REML", "DL", "FE"}, default "REML"
        Estimator of the residual between-client variance tau^2.

    Returns
    -------
    pandas.DataFrame
        One row per coefficient with columns ``term`` (``"intercept"`` then
        ``"<moderator>[<level>]"``), ``level``, ``k_level`` (clients at that level),
        ``estimate``, ``se``, ``z``, ``p_val``, ``ci_low``, ``ci_high`` (on Fisher's z:
        the intercept is the reference level's mean z, the others differences from it),
        ``level_r``, ``level_ci_low``, ``level_ci_high`` (the level's pooled correlation
        back-transformed to r), and model-level columns repeated on every row: ``k``,
        ``tau2`` (residual), ``i2`` (residual), ``qm``, ``qm_df``, ``qm_p`` (omnibus test
        of the moderator), ``qe``, ``qe_p`` (residual heterogeneity).

    Notes
    -----
    The mixed-effects model :math:`y_i = x_i'\\beta + u_i + e_i`,
    :math:`u_i \\sim N(0, \\tau^2)`, :math:`e_i \\sim N(0, v_i)`, is fitted by weighted
    least squares :math:`\\hat\\beta = (X'WX)^{-1}X'Wy`, :math:`W = \\mathrm{diag}(1/(v_i
    + \\hat\\tau^2))`, with :math:`\\hat\\tau^2` from REML (or DL) on the residuals, as
    metafor's ``rma(measure="ZCOR", ri, ni, mods=~factor(moderator))``. The omnibus test
    is :math:`Q_M = \\hat\\beta_{-1}'\\,[\\mathrm{Var}\\,\\hat\\beta_{-1}]^{-1}
    \\hat\\beta_{-1}` on :math:`p - 1` df; :math:`Q_E = y'P_0y` with FE weights on
    :math:`k - p` df; residual :math:`I^2 = \\tau^2/(\\tau^2 + (k-p)/\\operatorname{tr}P_0)`.

    References
    ----------
    .. [1] Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
       Journal of Statistical Software, 36(3), 1-48.
    .. [2] Raudenbush, S. W. (2009). Analyzing effect sizes: Random-effects models. In
       The handbook of research synthesis and meta-analysis (2nd ed.). Russell Sage.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.meta import meta_regression
    >>> d = pd.DataFrame({"r": [0.30, 0.35, 0.28, 0.10, 0.12, 0.05],
    ...                   "n": [80, 120, 60, 100, 90, 70],
    ...                   "industry": ["retail"] * 3 + ["banking"] * 3})
    >>> res = meta_regression(d, moderator="industry")
    >>> res[["term", "level", "k_level"]].values.tolist()
    [['intercept', 'banking', 3], ['industry[retail]', 'retail', 3]]
    """
    _check_method(method, ("FE", "DL", "REML"))
    _check_columns(data, moderator=moderator)
    d = _prepare(data, r, n, extra=(moderator,))
    levels = sorted(d[moderator].astype(str).unique())
    if len(levels) < 2:
        raise ParameterError(
            f"`moderator` ({moderator!r}) needs at least 2 levels, but {levels} were found")
    mod = d[moderator].astype(str).to_numpy()
    k = len(d)
    X = np.column_stack([np.ones(k)] + [(mod == lev).astype(float) for lev in levels[1:]])
    p = X.shape[1]
    if k <= p:
        raise ParameterError(
            f"meta_regression needs more correlations than coefficients ({p}), "
            f"but k = {k}")
    yi = np.arctanh(d["_r"].to_numpy())
    vi = 1.0 / (d["_n"].to_numpy() - 3.0)
    fit = _fit_rma(yi, vi, X, method)
    beta, vb = fit["beta"], fit["vb"]
    se = np.sqrt(np.diag(vb))
    z = beta / se
    b1 = beta[1:]
    qm = float(b1 @ np.linalg.solve(vb[1:, 1:], b1))
    qm_p = float(stats.chi2.sf(qm, p - 1))
    rows = []
    for j, lev in enumerate(levels):
        x = np.zeros(p)
        x[0] = 1.0
        if j > 0:
            x[j] = 1.0
        mu = float(x @ beta)
        mse = math.sqrt(float(x @ vb @ x))
        rows.append({
            "term": "intercept" if j == 0 else f"{moderator}[{lev}]",
            "level": lev, "k_level": int((mod == lev).sum()),
            "estimate": beta[j], "se": se[j], "z": z[j],
            "p_val": 2 * stats.norm.sf(abs(z[j])),
            "ci_low": beta[j] - _Z975 * se[j], "ci_high": beta[j] + _Z975 * se[j],
            "level_r": math.tanh(mu), "level_ci_low": math.tanh(mu - _Z975 * mse),
            "level_ci_high": math.tanh(mu + _Z975 * mse),
            "k": k, "tau2": fit["tau2"], "i2": fit["i2"], "qm": qm, "qm_df": p - 1,
            "qm_p": qm_p, "qe": fit["qe"], "qe_p": fit["qe_p"],
        })
    return pd.DataFrame(rows)


def leave_one_out(data, *, r="r", n="n", label="client_id", method="REML"):
    """Re-pool the correlations leaving out one client at a time.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client.
    r, n : str
        Columns of correlations and sample sizes.
    label : str, default "client_id"
        Column naming each client (study).
    method : {"REML", "DL", "FE", "HS"}, default "REML"
        As in :func:`meta_analysis`.

    Returns
    -------
    pandas.DataFrame
        One row per omitted client: ``omitted`` then the :data:`META_FIELDS` of the
        meta-analysis of the others (``k, n, estimate, ci_low, ci_high, pi_low, pi_high,
        tau2, i2, q, q_p``), then ``delta`` (estimate minus the all-clients estimate).

    Notes
    -----
    Same as metafor's ``leave1out(res, transf=transf.ztor)`` (which reports the
    estimate, CI, tau^2, I^2 and Q of each reduced model).

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.meta import leave_one_out
    >>> d = pd.DataFrame({"client_id": list("abcd"), "r": [0.3, 0.2, 0.25, 0.6],
    ...                   "n": [80, 120, 60, 100]})
    >>> res = leave_one_out(d, method="FE")
    >>> res.loc[res["delta"].abs().idxmax(), "omitted"]
    'd'
    """
    _check_method(method)
    _check_columns(data, label=label)
    d = _prepare(data, r, n)
    rr, nn = d["_r"].to_numpy(), d["_n"].to_numpy()
    full = _pool(rr, nn, method)["estimate"] if len(rr) >= 2 else np.nan
    cols = ["omitted", *META_FIELDS, "delta"]
    if method != "HS" and len(rr) >= 3:
        # every reduced model at once (O(k^2) per Fisher step, not k fits of O(k^2) each)
        out = _leave_one_out_batch(rr, nn, method)
        out.insert(0, "omitted", d[label].tolist())
        out["delta"] = out["estimate"] - full
        return out[cols]
    rows = []
    for i, lab in enumerate(d[label].tolist()):
        keep = np.arange(len(rr)) != i
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = _pool(rr[keep], nn[keep], method)
        row = {"omitted": lab, **s.to_dict()}
        row["delta"] = row["estimate"] - full
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def _leave_one_out_batch(r, n, method):
    """:func:`_pool` of every leave-one-out subset of ``r, n`` (k >= 3), as one frame.

    One :func:`_fit_rma_batch` over k intercept-only models, model i with study i's weight
    set to 0: the same numbers as k calls of :func:`_pool` to rounding
    (``tests/test_meta.py``).
    """
    k = len(r)
    yi, vi = np.arctanh(r), 1.0 / (n - 3.0)
    mask = 1.0 - np.eye(k)
    fit = _fit_rma_batch(yi, vi, np.ones((k, k, 1)), method, mask=mask)
    mu = fit["beta"][:, 0]
    se = np.sqrt(fit["vb"][:, 0, 0])
    pi_se = np.sqrt(se**2 + fit["tau2"])
    out = {"k": fit["k"], "n": (mask * n).sum(axis=1), "estimate": np.tanh(mu),
           "ci_low": np.tanh(mu - _Z975 * se), "ci_high": np.tanh(mu + _Z975 * se),
           "pi_low": np.tanh(mu - _Z975 * pi_se), "pi_high": np.tanh(mu + _Z975 * pi_se),
           "tau2": fit["tau2"], "i2": fit["i2"], "q": fit["qe"], "q_p": fit["qe_p"]}
    return pd.DataFrame(out, columns=list(META_FIELDS)).astype(float)


def pool_correlations(per_client, *, by=("x", "y"), r="r", n="n", method="REML"):
    """Meta-analyse many correlations at once, one pooled row per (x, y) pair.

    Parameters
    ----------
    per_client : pandas.DataFrame
        Long frame of per-client correlations, e.g. the stacked output of
        ``exresearch.correlations`` for each client: one row per client and pair, with
        the ``by`` columns, ``r`` and ``n``.
    by : sequence of str, default ("x", "y")
        Columns identifying what was correlated (and anything else to pool separately,
        e.g. ``("x", "y", "lag")``).
    r, n : str
        Columns of correlations and sample sizes.
    method : {"REML", "DL", "FE", "HS"}, default "REML"

    Returns
    -------
    pandas.DataFrame
        One row per group: the ``by`` columns, then ``method`` and the
        :data:`META_FIELDS` (``k, n, estimate, ci_low, ci_high, pi_low, pi_high, tau2,
        i2, q, q_p``). A group with fewer than 2 usable correlations is a NaN row (with
        ``k`` and ``n``) and a warning naming the group.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.meta import pool_correlations
    >>> pc = pd.DataFrame({"client_id": ["a", "b", "c"] * 2,
    ...                    "x": ["engagement"] * 6, "y": ["nps"] * 3 + ["sales"] * 3,
    ...                    "r": [0.3, 0.2, 0.25, 0.1, 0.15, 0.05], "n": [40, 60, 50] * 2})
    >>> pool_correlations(pc, method="FE")[["x", "y", "k"]].to_string(index=False)
    '         x     y   k\\nengagement   nps 3.0\\nengagement sales 3.0'
    """
    _check_method(method)
    by = [by] if isinstance(by, str) else list(by)
    _check_columns(per_client, r=r, n=n, **{f"by[{i}]": b for i, b in enumerate(by)})
    rows = []
    for key, grp in per_client.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            d = _prepare(grp, r, n)
            s = _pool(d["_r"].to_numpy(), d["_n"].to_numpy(), method)
        for w in caught:
            warnings.warn(f"{dict(zip(by, key, strict=True))}: {w.message}", stacklevel=2)
        rows.append({**dict(zip(by, key, strict=True)), "method": method, **s.to_dict()})
    return pd.DataFrame(rows, columns=[*by, "method", *META_FIELDS])


def plot_forest(data, *, r="r", n="n", label="client_id", result=None, method="REML",
                ax=None):
    """Forest plot of per-client correlations: moved to :func:`exresearch.plots.plot_forest`.

    Kept under this name; every argument is passed on unchanged.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.meta import plot_forest
    >>> d = pd.DataFrame({"client_id": list("abc"), "r": [0.3, 0.2, 0.25],
    ...                   "n": [80, 120, 60]})
    >>> [t.get_text() for t in plot_forest(d).get_yticklabels()]
    ['Pooled', 'a', 'b', 'c']
    """
    from .plots import plot_forest as _plot_forest

    return _plot_forest(data, r=r, n=n, label=label, result=result, method=method, ax=ax)
