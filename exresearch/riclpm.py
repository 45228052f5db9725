"""The random-intercept cross-lagged panel model (RI-CLPM) of one client's unit panel.

The plain cross-lagged regression (:func:`exresearch.direction.cross_lagged`) mistakes
stable differences between units for direction: a unit whose employees are always more
positive and whose customers are always happier makes "EX today" predict "CX next
period" even when neither changes the other. The RI-CLPM (Hamaker, Kuiper & Grasman
2015) gives each unit a random intercept for EX and for CX (its stable trait) and
estimates the lagged paths between the *within-unit* deviations only.

The model is fitted here by full-information maximum likelihood (units with missing
periods keep what they have), with standard errors from the observed information (the
numerical Hessian of the log-likelihood) and the Huber-White sandwich; :func:`riclpm`'s
tests use the larger of the two with a t reference (``validity/calibrate_riclpm.md``).
Written by hand because statsmodels has no
structural equation models; the estimates and standard errors agree with lavaan's
RI-CLPM syntax (Mulder & Hamaker 2021; ``missing = "ml"``, ``information =
"observed"``) to 1e-4 on the data sets in ``tests/data`` (R script ``tests/r/riclpm.R``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ._checks import check_alpha as _check_alpha
from ._checks import check_columns as _check_columns
from ._checks import check_frame as _check_frame
from .exceptions import ParameterError

__all__ = ["riclpm", "riclpm_fit", "RICLPM_PATHS", "SE_TYPES", "REFERENCES",
           "n_parameters", "reference_df", "fit_cov"]

#: Rows of :func:`riclpm` that are lagged paths, in order.
RICLPM_PATHS = ("x_to_y", "y_to_x", "x_to_x", "y_to_y")

_LOG2PI = np.log(2 * np.pi)

#: Positions in (var, cov, var) of a symmetric 2 x 2 matrix's entries.
_SYM = np.array([[0, 1], [1, 2]])

#: Fewest units for which :func:`riclpm` fits the model (below it: NaN rows and a note).
MIN_UNITS = 20


# ----------------------------------------------------------------------------- model


class _Spec:
    """Parameter layout of the bivariate RI-CLPM with T waves.

    theta = [a_xx, a_xy, a_yx, a_yy,            lagged paths (constant over waves)
             phi1 (var_x, cov, var_y),           within part at wave 1
             psi_t (var_x, cov, var_y) t=2..T,   innovations, free per wave
             ri (var_x, cov, var_y),             random intercepts (stable traits)
             mu_x1..mu_xT, mu_y1..mu_yT]         wave means

    ``a_yx`` is the path x[t-1] -> y[t]; observed order is (x_1..x_T, y_1..y_T).
    """

    def __init__(self, n_waves, equal_innovations=False):
        self.t = n_waves
        self.equal = equal_innovations
        self.n_innov = 1 if equal_innovations else n_waves - 1
        self.n_cov = 4 + 3 + 3 * self.n_innov + 3
        self.n = self.n_cov + 2 * n_waves

    def names(self):
        t = self.t
        out = ["x_to_x", "y_to_x", "x_to_y", "y_to_y", "w1_var_x", "w1_cov", "w1_var_y"]
        if self.equal:
            out += ["innov_var_x", "innov_cov", "innov_var_y"]
        for k in range(2, t + 1) if not self.equal else ():
            out += [f"innov{k}_var_x", f"innov{k}_cov", f"innov{k}_var_y"]
        out += ["ri_var_x", "ri_cov", "ri_var_y"]
        out += [f"mean_x{k}" for k in range(1, t + 1)] + [f"mean_y{k}" for k in range(1, t + 1)]
        return out

    def sigma(self, theta):
        return self.sigma_batch(np.asarray(theta, dtype=float)[None, :])[0]

    def sigma_batch(self, thetas):
        """Model-implied covariance of (x_1..x_T, y_1..y_T) for each row of ``thetas``.

        Each row's matrix is computed by the same operations whatever the other rows
        (elementwise arithmetic and stacked 2 x 2 products), so a row's result does not
        depend on the batch it is in.
        """
        t = self.t
        b = thetas.shape[0]
        a = thetas[:, :4].reshape(b, 2, 2)
        at = np.swapaxes(a, 1, 2)
        cov = [thetas[:, 4 + _SYM]]  # (b, 2, 2) from (var_x, cov, var_y)
        for k in range(1, t):
            j = 0 if self.equal else k - 1
            cov.append(a @ cov[-1] @ at + thetas[:, 7 + 3 * j + _SYM])
        ri = thetas[:, self.n_cov - 3 + _SYM]
        # within covariance in wave-major blocks (x_k, y_k), rows = later wave: block
        # (u, s) is A^(u - s) cov_s, for every s at once, one power of A more per step
        w = np.zeros((b, t, t, 2, 2))
        waves = np.arange(t)
        m = np.stack(cov, axis=1)  # (b, t, 2, 2)
        w[:, waves, waves] = m
        for lag in range(1, t):
            m = a[:, None] @ m[:, :t - lag]
            w[:, waves[lag:], waves[:t - lag]] = m
            w[:, waves[:t - lag], waves[lag:]] = np.swapaxes(m, 2, 3)
        # (b, t, t, 2, 2) -> (b, 2, t, 2, t) -> (b, 2t, 2t) in (x.., y..) order, plus the
        # random intercepts' (co)variance in every (x or y, x or y) block
        out = w.transpose(0, 3, 1, 4, 2) + ri[:, :, None, :, None]
        return out.reshape(b, 2 * t, 2 * t)

    def mean(self, theta):
        return np.asarray(theta[self.n_cov:])


def _patterns(values, error=None):
    """Group rows by their pattern of observed columns: ``(idx, values, error)`` triples.

    ``error`` is None for a group without known measurement error (``error=None``, or
    every error of the group 0), else the (rows, observed) error variances of its units.
    """
    obs = ~np.isnan(values)
    keep = obs.any(axis=1)
    values, obs = values[keep], obs[keep]
    if error is not None:
        error = error[keep]
    groups = {}
    for i, row in enumerate(obs):
        groups.setdefault(row.tobytes(), []).append(i)
    out = []
    for idx in groups.values():
        o = np.flatnonzero(obs[idx[0]])
        err = None
        if error is not None:
            err = error[np.ix_(idx, o)]
            if not err.any():
                err = None
        out.append((o, values[np.ix_(idx, o)], err))
    return out


def _loglik_and_grads(sigmas, mus, patterns):
    """Log-likelihood and its derivatives with respect to Sigma and mu, for each row of a
    batch: ``(ll, g_sigma, g_mu)`` shaped (B,), (B, p, p), (B, p).

    ``ll`` is -inf (and the derivatives NaN) in a row whose implied covariance of some
    pattern is not positive definite. Every row gets the operations :func:`_gradient`
    gave one theta before the batching (numpy's stacked linear algebra runs LAPACK
    matrix by matrix), so a row's numbers do not depend on the batch it is in.
    """
    b, p = mus.shape
    g_sigma = np.zeros((b, p, p))
    g_mu = np.zeros((b, p))
    ll = np.zeros(b)
    for idx, vals, err in patterns:
        rows, cols = idx[:, None], idx[None, :]
        s = sigmas[:, rows, cols]
        # C order, so that each row's d' d is BLAS syrk of a matrix with itself, as
        # numpy computes the 2-D d.T @ d (broadcasting alone puts the batch axis last,
        # and the product of two differently laid out operands is gemm, whose last
        # bits differ)
        d = np.ascontiguousarray(vals[None, :, :] - mus[:, idx][:, None, :])
        if err is not None:  # each unit its own covariance: Sigma_oo + diag(error_u)
            for r in range(b):
                part = _loglik_known_error(s[r], d[r], err)
                if part is None:
                    return _rows_apart(sigmas, mus, patterns)
                ll[r] += part[0]
                g_sigma[r, rows, cols] += part[1]
                g_mu[r, idx] += part[2]
            continue
        try:
            c = np.linalg.cholesky(s)
        except np.linalg.LinAlgError:
            return _rows_apart(sigmas, mus, patterns)
        inv = np.linalg.inv(s)
        n = len(vals)
        logdet = 2 * np.log(np.diagonal(c, axis1=1, axis2=2)).sum(axis=1)
        sd = np.swapaxes(d, 1, 2) @ d
        ll -= 0.5 * (n * (logdet + len(idx) * _LOG2PI) + np.sum(inv * sd, axis=(1, 2)))
        g_sigma[:, rows, cols] += -0.5 * (n * inv - inv @ sd @ inv)
        g_mu[:, idx] += (inv @ d.sum(axis=1)[:, :, None])[:, :, 0]
    return ll, g_sigma, g_mu


def _rows_apart(sigmas, mus, patterns):
    """:func:`_loglik_and_grads` row by row, for a batch where some row's covariance is
    not positive definite: that row -inf and NaN, the others their numbers."""
    b, p = mus.shape
    if b == 1:
        return np.full(1, -np.inf), np.full((1, p, p), np.nan), np.full((1, p), np.nan)
    parts = [_loglik_and_grads(sigmas[r:r + 1], mus[r:r + 1], patterns) for r in range(b)]
    return tuple(np.concatenate(x) for x in zip(*parts, strict=True))


def _unit_covariances(s, err):
    """(units, k, k): ``s + diag(err[u])`` for each unit u."""
    k = s.shape[0]
    out = np.repeat(s[None, :, :], len(err), axis=0)
    out[:, np.arange(k), np.arange(k)] += err
    return out


def _loglik_known_error(s, d, err):
    """One missingness pattern whose units have known error variances ``err`` (n, k).

    Unit u's observed vector has covariance ``S_u = s + diag(err[u])``; returns the
    pattern's log-likelihood, its derivative with respect to ``s`` (the sum over units
    of ``-0.5 (S_u^-1 - S_u^-1 d_u d_u' S_u^-1)``, since dS_u/ds is the identity) and
    with respect to the means, or None when some S_u is not positive definite. Batched
    over units with numpy's stacked linear algebra.
    """
    su = _unit_covariances(s, err)
    try:
        c = np.linalg.cholesky(su)
    except np.linalg.LinAlgError:
        return None
    inv = np.linalg.inv(su)
    w = np.einsum("uij,uj->ui", inv, d)
    k = s.shape[0]
    logdet = 2 * np.log(np.diagonal(c, axis1=1, axis2=2)).sum()
    ll = -0.5 * (logdet + len(d) * k * _LOG2PI + np.sum(w * d))
    g_s = -0.5 * (inv.sum(axis=0) - w.T @ w)
    return ll, g_s, w.sum(axis=0)


def _unit_scores(spec, theta, patterns, h=1e-6):
    """Per-unit score vectors (gradient of each unit's log-likelihood), (units, n)."""
    sigma, mu = spec.sigma(theta), spec.mean(theta)
    eye = np.eye(spec.n)[:spec.n_cov] * h
    dsig = (spec.sigma_batch(theta[None, :] + eye)
            - spec.sigma_batch(theta[None, :] - eye)) / (2 * h)
    rows = []
    p = len(mu)
    for idx, vals, err in patterns:
        s = sigma[np.ix_(idx, idx)]
        d = vals - mu[idx]
        if err is None:
            inv = np.linalg.inv(s)
            w = d @ inv  # (n, k)
            inv = inv[None, :, :]
        else:  # each unit its own inverse, of Sigma_oo + diag(error_u)
            inv = np.linalg.inv(_unit_covariances(s, err))
            w = np.einsum("uij,uj->ui", inv, d)
        # d loglik_i / d Sigma_oo = -0.5 (inv - inv d d' inv), per unit
        g_s = -0.5 * (inv - w[:, :, None] * w[:, None, :])
        g_cov = np.einsum("bij,uij->ub", dsig[:, idx][:, :, idx], g_s)
        g_mu = np.zeros((len(vals), p))
        g_mu[:, idx] = w
        rows.append(np.hstack([g_cov, g_mu]))
    return np.vstack(rows)


def _gradients(spec, thetas, patterns, h=1e-6):
    """Log-likelihood and its gradient at each row of ``thetas`` (B, n): ``(ll, grad)``,
    (B,) and (B, n); -inf and a NaN row where the covariance is not positive definite.

    The derivative with respect to the covariance parameters is the chain rule through
    Sigma, with dSigma/dtheta by central differences of :meth:`_Spec.sigma_batch`; every
    row's Sigma and its 2 x n_cov neighbours are one stacked call.
    """
    b = thetas.shape[0]
    nc = spec.n_cov
    eye = np.eye(spec.n)[:nc] * h
    stacked = np.concatenate([thetas[:, None, :], thetas[:, None, :] + eye,
                              thetas[:, None, :] - eye], axis=1)  # (B, 1 + 2 nc, n)
    sig = spec.sigma_batch(stacked.reshape(b * (1 + 2 * nc), spec.n))
    sig = sig.reshape(b, 1 + 2 * nc, *sig.shape[1:])
    ll, g_sigma, g_mu = _loglik_and_grads(sig[:, 0], thetas[:, nc:], patterns)
    grad = np.empty((b, spec.n))
    grad[:, :nc] = np.einsum("cbij,cij->cb", sig[:, 1:1 + nc] - sig[:, 1 + nc:],
                             g_sigma) / (2 * h)
    grad[:, nc:] = g_mu
    return ll, grad


def _gradient(spec, theta, patterns, h=1e-6):
    """:func:`_gradients` at one theta: ``(ll, grad)``, ``grad`` None where the covariance
    is not positive definite."""
    ll, grad = _gradients(spec, np.asarray(theta, dtype=float)[None, :], patterns, h)
    return (-np.inf, None) if ll[0] == -np.inf else (float(ll[0]), grad[0])


def _start(spec, values, error=None):
    t = spec.t
    x, y = values[:, :t], values[:, t:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        vx, vy = np.nanvar(x), np.nanvar(y)
        if error is not None:  # start the model's part below the known error's share
            ex = np.nanmean(np.where(np.isnan(x), np.nan, error[:, :t]))
            ey = np.nanmean(np.where(np.isnan(y), np.nan, error[:, t:]))
            vx = max(vx - np.nan_to_num(ex), 0.2 * vx)
            vy = max(vy - np.nan_to_num(ey), 0.2 * vy)
        ux, uy = np.nanmean(x, axis=1), np.nanmean(y, axis=1)
        ok = np.isfinite(ux) & np.isfinite(uy)
        cxy = float(np.cov(ux[ok], uy[ok])[0, 1]) if ok.sum() > 2 else 0.0
        mx, my = np.nanmean(x, axis=0), np.nanmean(y, axis=0)
    rx, ry = 0.4 * vx, 0.4 * vy
    cri = float(np.clip(cxy, -0.9 * np.sqrt(rx * ry), 0.9 * np.sqrt(rx * ry)))
    theta = [0.3, 0.0, 0.0, 0.3, 0.6 * vx, 0.0, 0.6 * vy]
    for _ in range(spec.n_innov):
        theta += [0.5 * vx, 0.0, 0.5 * vy]
    theta += [rx, cri, ry]
    theta += list(np.nan_to_num(mx)) + list(np.nan_to_num(my))
    return np.array(theta, dtype=float)


def _variance_index(spec):
    """Positions of the variance parameters (wave-1, innovation, random intercept)."""
    return [i for i, k in enumerate(spec.names()) if "var_" in k]


def _fit_bounded(spec, fun, theta0):
    """Maximise the likelihood with every variance kept >= 0 (L-BFGS-B).

    With a known measurement error the unconstrained likelihood of a small client often
    runs off along a ridge (x -> x path towards 1, wave-1 within variance towards +inf,
    random-intercept variance towards -inf: a random walk and a stable trait look alike
    over 4 periods); lavaan reports such solutions with negative variances. Bounds keep
    the solution admissible. Returns ``(result, theta, free, grad_norm)``: ``free`` the
    parameters not held at a bound, ``grad_norm`` the largest projected gradient.
    """
    bounds = [(None, None)] * spec.n
    for i in _variance_index(spec):
        bounds[i] = (0.0, None)
    theta0 = np.array(theta0, dtype=float)
    res = optimize.minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 5000,
                                     "maxcor": 30})
    for _ in range(2):  # restart from where it stopped (fresh curvature memory)
        if res.success and np.max(np.abs(_projected(res.x, fun(res.x)[1], bounds))) < 1e-6:
            break
        res2 = optimize.minimize(fun, res.x, jac=True, method="L-BFGS-B", bounds=bounds,
                                 options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 5000,
                                          "maxcor": 30})
        if res2.fun <= res.fun:
            res = res2
    theta = res.x
    grad = fun(theta)[1]
    at_bound = np.array([lo is not None and theta[i] <= lo + 1e-10 and grad[i] > 0
                         for i, (lo, _) in enumerate(bounds)])
    free = np.flatnonzero(~at_bound)
    return res, theta, free, float(np.max(np.abs(_projected(theta, grad, bounds))))


def _projected(theta, grad, bounds):
    """The gradient (of the minimised function) without the parts that push a parameter
    held at its lower bound further down."""
    g = np.array(grad, dtype=float)
    for i, (lo, _) in enumerate(bounds):
        if lo is not None and theta[i] <= lo + 1e-10 and g[i] > 0:
            g[i] = 0.0
    return g


def _embed(m, free, n):
    out = np.full((n, n), np.nan)
    out[np.ix_(free, free)] = m
    return out


def _check_error_var(error_var, values):
    """``error_var`` as a float array shaped like ``values`` (NaN -> 0), or None."""
    if error_var is None:
        return None
    try:
        err = np.array(error_var, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(
            f"`error_var` must be an array of non-negative numbers, but {error_var!r} was "
            "passed") from None
    if err.shape != values.shape:
        raise ParameterError(
            f"`error_var` must have the shape of `values` {values.shape}, but its shape is "
            f"{err.shape}")
    bad = ~np.isnan(values) & ~np.isnan(err) & ((err < 0) | ~np.isfinite(err))
    if bad.any():
        raise ParameterError(
            "`error_var` must hold non-negative finite variances (NaN or 0 for none), but "
            f"{float(err[bad][0])!r} was passed (row {np.argwhere(bad)[0][0]}, column "
            f"{np.argwhere(bad)[0][1]})")
    err = np.where(np.isnan(err) | np.isnan(values), 0.0, err)
    return err if err.any() else None  # no error anywhere: the model without it


def riclpm_fit(values, *, n_waves, equal_innovations=False, lr_tests=False, error_var=None):
    """Fit the bivariate RI-CLPM by full-information maximum likelihood.

    Parameters
    ----------
    values : numpy.ndarray
        (units, 2 * n_waves) array, columns x_1..x_T then y_1..y_T; NaN = missing.
    n_waves : int
        T, at least 3 (with 2 waves the random intercepts are not identified).
    error_var : numpy.ndarray, optional
        Same shape as ``values``: the known sampling (measurement error) variance of
        each value, for example a unit mean's within-unit variance / respondents; NaN
        or 0 = none (the value is taken as measured without error). Default None: no
        measurement error, the model as lavaan's RI-CLPM syntax.
    equal_innovations : bool
        Constrain the innovation (co)variances to be equal over waves (6 fewer
        parameters with 4 waves); default free, as lavaan's RI-CLPM.
    lr_tests : bool
        Also refit with each cross-lagged path fixed at 0 and return likelihood-ratio
        tests (``lr``). On simulated 30-unit clients they were no better calibrated than
        the Wald tests, so they are off by default.

    Returns
    -------
    dict
        ``names`` (parameter names), ``estimate``, ``se``, ``cov`` (covariance of the
        estimates: inverse observed information), ``se_robust``, ``cov_robust``
        (Huber-White sandwich, lavaan's MLR), ``se_jackknife``, ``cov_jackknife``
        (delete-one-unit jackknife by one Newton step: unreliable when the average
        leverage, parameters / units, is near 1), ``lr`` (``{path: (statistic, p)}``),
        ``loglik``, ``n_units``, ``converged``, ``at_bound`` (names of variances held
        at 0, only with ``error_var``) and ``message``.

    Notes
    -----
    x_ut = mu_xt + RI_xu + wx_ut (+ ex_ut), y_ut likewise; (wx, wy)_t = A (wx, wy)_{t-1} + innovation,
    A constant over waves; wave-1 within (co)variances, innovation (co)variances per wave,
    random-intercept (co)variances and wave means free; random intercepts uncorrelated
    with the wave-1 within part (Mulder & Hamaker 2021). Standard errors:
    ``sqrt(diag(inv(-H)))``, H the central-difference Hessian of the log-likelihood
    (lavaan's ``information = "observed"``).

    With ``error_var`` each value carries an error ex_ut independent of everything
    else with the known variance ``error_var[u, t]``, so unit u's observed values have
    covariance ``Sigma + diag(error_var[u])`` (Sigma the model's implied covariance
    above): the lagged paths and the within (co)variances are those of the error-free
    within-unit deviations, no longer attenuated by the sampling error of unit means.
    With a constant error variance this is lavaan's RI-CLPM with each observed
    indicator's residual variance fixed at the known value (``x1 ~~ c*x1``;
    ``tests/r/riclpm_error.R``). Units with different error variances each get their
    own covariance, which lavaan cannot express; written by hand (statsmodels has no
    structural equation models). With ``error_var`` the variances are kept >= 0
    (L-BFGS-B): with a large error share the unbounded likelihood of a small client
    often runs off to a random-intercept variance towards -inf (lavaan reports such
    negative variances); a variance held at 0 is listed in ``at_bound`` and gets no
    standard error, the others the information given it.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> ri = rng.normal(size=(200, 1))
    >>> x = ri + rng.normal(size=(200, 4))
    >>> y = 0.5 * ri + rng.normal(size=(200, 4))
    >>> fit = riclpm_fit(np.hstack([x, y]), n_waves=4)
    >>> fit["names"][:4]
    ['x_to_x', 'y_to_x', 'x_to_y', 'y_to_y']
    >>> bool(abs(fit["estimate"][2]) < 3 * fit["se"][2])
    True
    """
    values = np.asarray(values, dtype=float)
    if n_waves < 3:
        raise ParameterError(
            f"the RI-CLPM needs at least 3 periods (with 2 the stable traits and the lagged "
            f"paths cannot be told apart), but {n_waves} were passed")
    if values.ndim != 2 or values.shape[1] != 2 * n_waves:
        raise ParameterError(
            f"`values` must have 2 * n_waves = {2 * n_waves} columns, but its shape is "
            f"{values.shape}")
    error = _check_error_var(error_var, values)
    spec = _Spec(n_waves, equal_innovations)
    patterns = _patterns(values, error)
    n_units = sum(len(v) for _, v, _ in patterns)

    def fun(theta):
        ll, grad = _gradient(spec, theta, patterns)
        if grad is None or not np.isfinite(ll):
            return 1e12, np.zeros(spec.n)
        return -ll / n_units, -grad / n_units

    theta0 = _start(spec, values, error)
    free = np.arange(spec.n)  # parameters not held at a bound
    if error is None:
        res = optimize.minimize(fun, theta0, jac=True, method="BFGS",
                                options={"gtol": 1e-9, "maxiter": 5000})
        if not res.success:  # polish from where BFGS stopped (often a precision-loss stop)
            res2 = optimize.minimize(fun, res.x, jac=True, method="L-BFGS-B",
                                     options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 5000})
            if res2.fun <= res.fun:
                res = res2
        theta = res.x
        grad_norm = float(np.max(np.abs(fun(theta)[1])))
    else:
        res, theta, free, grad_norm = _fit_bounded(spec, fun, theta0)
    # likelihood-ratio tests of each cross-lagged path (refit with the path fixed at 0,
    # started from the full fit): better calibrated than Wald z when the stable traits
    # and the autoregressions are hard to tell apart (few periods)
    lr = {}
    for key in ("x_to_y", "y_to_x") if lr_tests else ():
        j = spec.names().index(key)
        # not ``free``: that name holds the parameters the information is taken over
        keep = np.arange(spec.n) != j

        def fun_fixed(t_free, keep=keep):
            full = np.zeros(spec.n)
            full[keep] = t_free
            f, g = fun(full)
            return f, g[keep]

        start = theta[keep]
        r0 = optimize.minimize(fun_fixed, start, jac=True, method="BFGS",
                               options={"gtol": 1e-9, "maxiter": 5000})
        if not r0.success:
            r1 = optimize.minimize(fun_fixed, r0.x, jac=True, method="L-BFGS-B",
                                   options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 5000})
            if r1.fun <= r0.fun:
                r0 = r1
        stat = max(2 * n_units * (r0.fun - res.fun), 0.0)
        lr[key] = (stat, float(stats.chi2.sf(stat, 1)))
    # observed information: central differences of the analytic gradient (the 2n
    # gradients one stacked evaluation; a column is NaN where either side is not
    # positive definite)
    h = 1e-5
    hess = np.zeros((spec.n, spec.n))
    steps = h * np.maximum(1.0, np.abs(theta[free]))
    e = np.zeros((len(free), spec.n))
    e[np.arange(len(free)), free] = steps
    ll_pm, g_pm = _gradients(spec, np.concatenate([theta + e, theta - e]), patterns)
    cols = (g_pm[:len(free)] - g_pm[len(free):]) / (2 * steps)[:, None]
    bad = (ll_pm[:len(free)] == -np.inf) | (ll_pm[len(free):] == -np.inf)
    cols[bad] = np.nan
    hess[:, free] = cols.T
    hess = (hess + hess.T) / 2
    full = len(free) == spec.n
    if not full:  # a variance held at 0: the information of the others, given it
        hess = hess[np.ix_(free, free)]
    robust = jack = None
    try:
        cov = np.linalg.inv(-hess)
        se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        scores = _unit_scores(spec, theta, patterns)
        if not full:
            scores = scores[:, free]
        robust = cov @ (scores.T @ scores) @ cov  # Huber-White sandwich (lavaan's MLR)
        # delete-one-unit jackknife by one Newton step (the unit's information taken as
        # its outer product, Sherman-Morrison): the CR3 / HC3-type small-sample variance
        infl = scores @ cov  # (units, n): cov g_i
        lev = np.clip(np.einsum("ij,ij->i", infl, scores), 0.0, 0.99)
        d = infl / (1 - lev)[:, None]
        d = d - d.mean(axis=0)
        g = len(scores)
        jack = (g - 1) / g * (d.T @ d)
    except np.linalg.LinAlgError:
        cov = np.full((len(free), len(free)), np.nan)
        se = np.full(len(free), np.nan)
    if robust is None:
        robust = np.full((len(free), len(free)), np.nan)
    if jack is None:
        jack = np.full((len(free), len(free)), np.nan)
    converged = bool(grad_norm < 1e-5 and np.all(np.isfinite(se)))
    if not full:  # back to every parameter: NaN rows for those held at a bound
        cov, robust, jack = (_embed(m, free, spec.n) for m in (cov, robust, jack))
        se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    ll = float(-res.fun * n_units)
    rd = np.diag(robust)
    return {"names": spec.names(), "estimate": theta, "se": se, "cov": cov, "loglik": ll,
            "se_robust": np.sqrt(np.where(rd > 0, rd, np.nan)), "cov_robust": robust,
            "lr": lr, "cov_jackknife": jack,
            "se_jackknife": np.sqrt(np.where(np.diag(jack) > 0, np.diag(jack), np.nan)),
            "n_units": n_units, "converged": converged,
            "at_bound": [spec.names()[i] for i in sorted(set(range(spec.n)) - set(free))],
            "message": "" if converged else
            f"the likelihood did not converge (max |gradient| {grad_norm:.2g}; {res.message})"}


# ----------------------------------------------------------------------------- tidy API

_COLUMNS = ["path", "source", "target", "kind", "estimate", "se", "ci_low", "ci_high", "p_val",
            "n_units", "n_periods", "note"]


def _wide(data, x, y, unit, period, periods, x_error=None, y_error=None):
    """(units, 2T) wide values and, with ``x_error``/``y_error``, their error variances."""
    from .direction import _panel_periods

    periods, t_index = _panel_periods(data, unit, period, periods, "riclpm")
    zero = np.zeros(len(data))
    frame = pd.DataFrame({"_unit": data[unit].to_numpy(), "_t": t_index.to_numpy(),
                          "x": data[x].to_numpy(float), "y": data[y].to_numpy(float),
                          "ex": data[x_error].to_numpy(float) if x_error else zero,
                          "ey": data[y_error].to_numpy(float) if y_error else zero})
    frame = frame.dropna(subset=["_t"])
    wide = frame.pivot(index="_unit", columns="_t", values=["x", "y", "ex", "ey"])
    wide = wide.reindex(columns=pd.MultiIndex.from_product(
        [["x", "y", "ex", "ey"], range(len(periods))]))
    values = wide[["x", "y"]]
    error = wide[["ex", "ey"]].to_numpy(float) if (x_error or y_error) else None
    return values, periods, error


def _check_error_column(data, name, column, target):
    """A column of error variances: None, or an existing column, not the value itself,
    holding non-negative numbers or NaN."""
    if column is None:
        return
    if not isinstance(column, str):
        raise ParameterError(
            f"`{name}` must be a column name (or None), but {column!r} was passed")
    _check_columns(data, name, [column])
    if column == target:
        raise ParameterError(
            f"`{name}` must name the column of {target!r}'s error variances, not {target!r} "
            "itself")
    v = pd.to_numeric(data[column], errors="coerce").to_numpy(float)
    bad = (data[column].notna().to_numpy() & np.isnan(v)) | (v < 0) | np.isinf(v)
    if bad.any():
        raise ParameterError(
            f"`{name}` column {column!r} must hold non-negative variances (NaN for none), but "
            f"it holds {data[column][bad].tolist()[0]!r}")


def within_sd(data, *, x, unit):
    """Pooled within-unit SD of ``x``: SD of the deviations from each unit's mean (df N - J)."""
    d = data[[unit, x]].dropna()
    dev = d[x] - d.groupby(unit)[x].transform("mean")
    dof = len(d) - d[unit].nunique()
    return float(np.sqrt((dev**2).sum() / dof)) if dof > 0 else np.nan


#: Standard errors :func:`riclpm` can base its tests on (``se=``).
SE_TYPES = ("ml", "robust", "max")

#: Reference distributions of :func:`riclpm`'s Wald tests (``reference=``).
REFERENCES = ("t_cov", "t_all", "normal")


def n_parameters(n_periods, *, equal_innovations=True):
    """Free parameters of the bivariate RI-CLPM with ``n_periods`` waves.

    Returns
    -------
    (int, int)
        ``(all, covariance)``: every free parameter (covariance structure plus the
        2T wave means) and those of the covariance structure only (4 lagged paths,
        3 wave-1 within (co)variances, 3 innovation (co)variances per free innovation
        block, 3 random-intercept (co)variances): 13 with equal innovations at any T.

    Examples
    --------
    >>> n_parameters(4), n_parameters(8)
    ((21, 13), (29, 13))
    >>> n_parameters(4, equal_innovations=False)
    (27, 19)
    """
    spec = _Spec(max(int(n_periods), 3), bool(equal_innovations))
    return spec.n, spec.n_cov


def reference_df(n_units, *, n_periods, equal_innovations=True, reference="t_cov"):
    """Degrees of freedom of :func:`riclpm`'s t reference (inf for ``"normal"``).

    ``"t_cov"``: units less the covariance-structure parameters (G - 13 with equal
    innovations, whatever the periods); ``"t_all"``: units less every free parameter,
    wave means included (G - 21 at 4 periods, G - 29 at 8). NaN when not positive.

    Examples
    --------
    >>> reference_df(30, n_periods=8), reference_df(30, n_periods=8, reference="t_all")
    (17.0, 1.0)
    >>> reference_df(30, n_periods=4, reference="normal")
    inf
    """
    if reference not in REFERENCES:
        raise ParameterError(
            f"`reference` must be one of {list(REFERENCES)}, but {reference!r} was passed")
    if reference == "normal":
        return np.inf
    p_all, p_cov = n_parameters(n_periods, equal_innovations=equal_innovations)
    p = p_cov if reference == "t_cov" else p_all
    return float(n_units - p) if n_units > p else np.nan


def fit_cov(fit, *, se="ml"):
    """Covariance matrix of a :func:`riclpm_fit` result's estimates for one SE type.

    ``"ml"``: inverse observed information (``fit["cov"]``); ``"robust"``: the
    Huber-White sandwich (``fit["cov_robust"]``, lavaan's MLR); ``"max"``: per
    parameter the larger of the two SEs, with the ML correlations between estimates
    (``D R_ml D``, D the diagonal of the larger SEs), so a difference of two paths has
    a positive semi-definite variance. Written here: lavaan has no such option.
    """
    if se not in SE_TYPES:
        raise ParameterError(f"`se` must be one of {list(SE_TYPES)}, but {se!r} was passed")
    if se == "ml":
        return fit["cov"]
    if se == "robust":
        return fit["cov_robust"]
    sd_ml = np.sqrt(np.where(np.diag(fit["cov"]) > 0, np.diag(fit["cov"]), np.nan))
    sd = np.fmax(sd_ml, fit["se_robust"])
    corr = fit["cov"] / np.outer(sd_ml, sd_ml)
    return corr * np.outer(sd, sd)


def _prepare(data, *, x, y, unit, period, periods, standardize, equal_innovations, reference,
             x_error=None, y_error=None):
    """The wide (units, 2T) array :func:`riclpm` fits, with its size and a note if unfit,
    and (with ``x_error``/``y_error``) the error variances on the same scale."""
    wide, periods, error = _wide(data, x, y, unit, period, periods, x_error, y_error)
    n_t = len(periods)
    values = wide.to_numpy(float)
    note = ""
    scale = (1.0, 1.0)
    n_units = int((~np.isnan(values)).any(axis=1).sum())
    if n_t < 3:
        note = (f"the RI-CLPM needs at least 3 periods to tell stable differences between "
                f"units from change within them, but there are {n_t}")
    elif n_units < MIN_UNITS:
        note = (f"too few units: {n_units} (the RI-CLPM needs at least {MIN_UNITS}; with "
                "fewer its likelihood is flat between stable differences and change)")
    if not note and reference != "normal":
        p_all, p_cov = n_parameters(n_t, equal_innovations=equal_innovations)
        n_par = p_cov if reference == "t_cov" else p_all
        if n_units <= n_par:
            note = (f"too few units: {n_units} for the model's {n_par} parameters (the t "
                    "reference needs more units than parameters)")
    if not note and standardize:
        scale = (within_sd(data, x=x, unit=unit), within_sd(data, x=y, unit=unit))
        if not all(np.isfinite(s) and s > 0 for s in scale):
            note = "x or y does not change within any unit, so within-unit paths are undefined"
    if not note:
        values = values.copy()
        values[:, :n_t] /= scale[0]
        values[:, n_t:] /= scale[1]
        if error is not None:  # variances scale with the square of the values
            error = error.copy()
            error[:, :n_t] /= scale[0] ** 2
            error[:, n_t:] /= scale[1] ** 2
    return {"values": values, "n_periods": n_t, "n_units": n_units, "note": note,
            "scale": scale, "error": error}


def riclpm(data, *, x, y, unit="unit_id", period="period", periods=None, alpha=0.05,
           standardize=True, equal_innovations=True, se="max", reference="t_cov",
           x_error=None, y_error=None):
    """Within-unit cross-lagged paths of one client: the RI-CLPM.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel, one row per unit x period (missing periods allowed).
    x, y : str
        The EX column and the CX (or business) column.
    unit, period : str
        Unit and period columns.
    periods : list, optional
        Period labels in time order (default sorted unique); at least 3, and at
        least :data:`MIN_UNITS` (20) units.
    alpha : float
        1 - confidence level of the intervals.
    standardize : bool
        Divide x and y by their pooled within-unit SD first, so the paths are in
        within-unit SD per within-unit SD and comparable across clients (default).
    equal_innovations : bool
        Constrain the innovation (co)variances to be equal over periods (default), 6
        fewer parameters with 4 periods; ``False`` frees them per period (lavaan's
        RI-CLPM syntax of Mulder & Hamaker 2021 as written).
    se : {"max", "ml", "robust"}
        Standard errors of the tests and intervals: ``"max"`` (default) per parameter
        the larger of the observed-information (ML) and the Huber-White sandwich
        (robust, lavaan's MLR) SEs, with the ML correlations between estimates (for the
        difference of the paths; :func:`fit_cov`); ``"ml"`` the observed information
        (lavaan's ``information = "observed"``); ``"robust"`` the sandwich. See Notes.
    reference : {"t_cov", "t_all", "normal"}
        Reference distribution of the Wald tests and intervals: ``"t_cov"`` (default)
        a t with units less the 13 covariance-structure parameters (equal innovations;
        the same at every number of periods), ``"t_all"`` a t with units less every
        free parameter including the 2T wave means (21 at 4 periods, 29 at 8: the
        rule before the calibration), ``"normal"`` the standard normal (lavaan's
        default). :func:`reference_df` gives the degrees of freedom.
    x_error, y_error : str, optional
        Columns holding the known sampling (measurement error) variance of each
        unit-period's ``x`` and ``y`` (for a unit mean: the within-unit variance of the
        respondents' scores / respondents, as
        :func:`exresearch.aggregate.unit_error_variances` gives it); NaN = none. The
        model then separates that error from the within-unit change
        (:func:`riclpm_fit`'s ``error_var``), so the paths are no longer attenuated by
        it. Default None: x and y taken as measured without error.

    Returns
    -------
    pandas.DataFrame
        One row per lagged path with columns ``path, source, target, kind, estimate,
        se, ci_low, ci_high, p_val, n_units, n_periods, note``; rows in the order
        x -> y, y -> x (``kind`` "cross-lagged"), x -> x, y -> y ("autoregressive"),
        then the difference ``x_to_y - y_to_x`` (``kind`` "difference"), the
        random-intercept correlation (``kind`` "trait"). Wald inference with the ``se``
        standard errors, referred to ``reference``. ``note`` says why a row is NaN.
        The covariance of the two cross-lagged estimates (of the ``se`` type) is in
        ``attrs["cross_cov"]``, the degrees of freedom in ``attrs["df"]`` (infinite
        for ``"normal"``), the rule in ``attrs["se"]`` and ``attrs["reference"]``.

    Notes
    -----
    Why this rule. With a client's 30 units the model has 21 parameters and the Wald z
    of a path is heavy-tailed; the estimates are unbiased, but on simulated clients
    without any cross-lagged effect the 95% z intervals with lavaan's defaults covered 0
    for only 86-91% of 30-unit clients (``validity/diagnose_riclpm.md``). At 100 units
    the observed-information SEs stay too small (coverage about 0.91): the unit means
    are measured with error the model does not include, and the information-based SE
    assumes the model is right, while the sandwich does not. The rule was chosen among
    {ML, robust, larger of the two} x {t(G - 13), t(G - p), normal} (G units, p all
    free parameters) on one set of simulated null-world clients at 30 and 100 units
    and 4, 6 and 8 periods, all rules evaluated on the same fits, and confirmed on fresh
    clients (``validity/calibrate_riclpm.py``, ``validity/calibrate_riclpm.md``): the
    larger SE with t(G - 13) was the only rule whose coverage of both paths stayed
    within 0.93-0.97 (within Monte Carlo error) in every cell. Counting the wave means
    as t(G - p) did left 1 degree of freedom at 30 units and 8 periods (p = 29), so
    intervals covered everything and nothing was ever named (more periods, less
    power); the normal reference under-covers at 30 units and 4 periods. A t with
    G - p parameters is the analogue of inference from G groups with p group-level
    parameters (Donald & Lang 2007). With G <= 13 the reference is undefined and the
    rows are NaN (in practice at least :data:`MIN_UNITS` units are needed anyway). The
    error rates of the verdicts built on these tests are in ``validity/results.md``.

    References
    ----------
    Hamaker, E. L., Kuiper, R. M., & Grasman, R. P. P. P. (2015). A critique of the
    cross-lagged panel model. *Psychological Methods*, 20(1), 102-116.

    Mulder, J. D., & Hamaker, E. L. (2021). Three extensions of the random intercept
    cross-lagged panel model. *Structural Equation Modeling*, 28(4), 638-648.

    Donald, S. G., & Lang, K. (2007). Inference with difference-in-differences and
    other panel data. *Review of Economics and Statistics*, 89(2), 221-233.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(2)
    >>> n = 60
    >>> trait = rng.normal(size=n)
    >>> panel = pd.DataFrame({
    ...     "unit_id": np.repeat(np.arange(n), 4), "period": np.tile([1, 2, 3, 4], n),
    ...     "ex": np.repeat(trait, 4) + rng.normal(size=4 * n),
    ...     "cx": np.repeat(0.8 * trait, 4) + rng.normal(size=4 * n)})
    >>> res = riclpm(panel, x="ex", y="cx")
    >>> res["path"].tolist()[:2]
    ['ex[t] -> cx[t+1]', 'cx[t] -> ex[t+1]']
    """
    _check_frame(data)
    if not isinstance(x, str) or not isinstance(y, str) or x == y:
        raise ParameterError(
            f"`x` and `y` must be two different column names, but x={x!r}, y={y!r} was passed")
    _check_columns(data, "x", [x])
    _check_columns(data, "y", [y])
    _check_alpha(alpha)
    if reference not in REFERENCES:
        raise ParameterError(
            f"`reference` must be one of {list(REFERENCES)}, but {reference!r} was passed")
    if se not in SE_TYPES:
        raise ParameterError(f"`se` must be one of {list(SE_TYPES)}, but {se!r} was passed")
    if not isinstance(equal_innovations, bool | np.bool_):
        raise ParameterError(
            f"`equal_innovations` must be True or False, but {equal_innovations!r} was passed")
    _check_error_column(data, "x_error", x_error, x)
    _check_error_column(data, "y_error", y_error, y)
    prep = _prepare(data, x=x, y=y, unit=unit, period=period, periods=periods,
                    standardize=standardize, equal_innovations=bool(equal_innovations),
                    reference=reference, x_error=x_error, y_error=y_error)
    n_t, n_units, note, scale = prep["n_periods"], prep["n_units"], prep["note"], prep["scale"]
    labels = [("x_to_y", x, y, "cross-lagged"), ("y_to_x", y, x, "cross-lagged"),
              ("x_to_x", x, x, "autoregressive"), ("y_to_y", y, y, "autoregressive")]
    fit = None
    if not note:
        kw = {} if prep["error"] is None else {"error_var": prep["error"]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fit = riclpm_fit(prep["values"], n_waves=n_t,
                             equal_innovations=bool(equal_innovations), **kw)
        if not fit["converged"]:
            note = fit["message"]
    df = reference_df(n_units, n_periods=n_t, equal_innovations=bool(equal_innovations),
                      reference=reference)
    ref = stats.t(df) if np.isfinite(df) else stats.norm()
    z = ref.ppf(1 - alpha / 2)
    rows = []
    cross_cov = np.full((2, 2), np.nan)
    if fit is not None and not note:
        names = fit["names"]
        pos = {k: names.index(k) for k in RICLPM_PATHS}
        est, cov = fit["estimate"], fit_cov(fit, se=se)
        ix = [pos["x_to_y"], pos["y_to_x"]]
        cross_cov = cov[np.ix_(ix, ix)]
    for key, src, tgt, kind in labels:
        row = {"path": f"{src}[t] -> {tgt}[t+1]", "source": src, "target": tgt, "kind": kind}
        if fit is not None and not note:
            b, s = float(est[pos[key]]), float(np.sqrt(cov[pos[key], pos[key]]))
            row.update(estimate=b, se=s)
        rows.append(row)
    diff = {"path": f"({x} -> {y}) - ({y} -> {x})", "source": x, "target": y,
            "kind": "difference"}
    trait = {"path": f"trait {x} ~ trait {y}", "source": x, "target": y, "kind": "trait"}
    if fit is not None and not note:
        d = est[pos["x_to_y"]] - est[pos["y_to_x"]]
        v = cross_cov[0, 0] + cross_cov[1, 1] - 2 * cross_cov[0, 1]
        diff.update(estimate=float(d), se=float(np.sqrt(v)) if v > 0 else np.nan)
        i, j, k = (names.index(n) for n in ("ri_var_x", "ri_cov", "ri_var_y"))
        denom = est[i] * est[k]
        trait.update(estimate=float(est[j] / np.sqrt(denom)) if denom > 0 else np.nan,
                     se=np.nan)
    rows += [diff, trait]
    out = pd.DataFrame(rows).reindex(columns=_COLUMNS)
    out["n_units"] = n_units
    out["n_periods"] = n_t
    out["note"] = note
    for c in ["estimate", "se", "ci_low", "ci_high", "p_val"]:
        out[c] = out[c].astype(float)
    out["ci_low"] = out["estimate"] - z * out["se"]
    out["ci_high"] = out["estimate"] + z * out["se"]
    out["p_val"] = 2 * ref.sf(np.abs(out["estimate"] / out["se"]))
    if note:
        warnings.warn(f"riclpm: {x} <-> {y}: {note}; returning NaN", UserWarning, stacklevel=2)
    out.attrs["cross_cov"] = cross_cov
    out.attrs["scale"] = scale
    out.attrs["df"] = df
    out.attrs["se"] = se
    out.attrs["reference"] = reference
    return out
