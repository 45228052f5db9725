"""Simulated multi-client studies with planted effects.

:func:`simulate_study` writes a study folder in the input contract (``study.yml``,
``clients/<id>/survey.csv``, ``clients/<id>/outcomes.csv``) and, beside ``study.yml``,
a ``truth.json`` with every planted parameter and the population quantities that the
analyses should recover. The model is described in equations in ``docs/simulation.md``.

In short: each client has business units whose latent EX drivers (six of them) and
latent customer experience (CX) follow a stationary vector autoregression over periods
with a reciprocal loop (EX at t raises CX at t+1, CX at t raises EX at t+1); clients
drift up (a virtuous cycle) or down (a doom loop); the EX -> CX path differs between
clients around a pooled mean with SD ``tau``. Employees answer Likert items that load on
their unit's latent drivers (between-unit share ``icc``), some items reverse-keyed, some
answers missing; customer NPS and CSAT, revenue growth and employee turnover are unit
outcomes.

Everything random comes from one ``np.random.default_rng(seed)``; files are written with
fixed formatting, so the same arguments give byte-identical files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import linalg

from . import __version__
from .config import DEFAULT_MIN_GROUP_SIZE, MIN_ALLOWED_GROUP_SIZE
from .exceptions import ParameterError

__all__ = ["simulate_study", "MODEL_DEFAULTS", "PRESETS", "DRIVERS", "INDUSTRIES"]

#: The six EX drivers, in the order of the latent state vector.
DRIVERS = ("tools", "empowerment", "training", "knowledge", "leader", "flexibility")

#: Industries the clients are spread over (cyclically, so several clients per industry).
INDUSTRIES = ("retail", "banking", "hospitality", "telecom", "healthcare")

# name, label, number of items, reverse-keyed item numbers, role
_SCALES = (
    ("tools", "Tools and technology", 4, (4,), None),
    ("empowerment", "Empowerment", 3, (3,), None),
    ("training", "Training and development", 3, (), None),
    ("knowledge", "Knowledge sharing", 3, (2,), None),
    ("leader", "Leader support", 4, (), None),
    ("flexibility", "Work-life flexibility", 3, (3,), None),
    ("engagement", "Engagement", 3, (), "engagement"),
)
_ENPS_ITEM = "enps_0_10"
_POINTS = (1, 5)
# Likert thresholds on the standardised item latent (mean answer ~3.7, ~63% favourable).
_THRESHOLDS = np.array([-2.0, -1.2, -0.35, 1.0])
# eNPS answer = round(_ENPS_CENTRE + _ENPS_SCALE * latent), clipped to 0..10
_ENPS_CENTRE, _ENPS_SCALE = 7.5, 2.0

_CLIENT_NAMES = {
    "retail": ["Northwind Retail", "Harbor Lane Stores", "Brightmart", "Copperfield Outfitters"],
    "banking": ["Meridian Bank", "Cedar Trust", "Bluestone Savings", "Crescent Federal"],
    "hospitality": ["Bluewater Hotels", "Saffron Dining Group", "Lakeshore Resorts", "Juniper Inns"],
    "telecom": ["Vertex Telecom", "Skyline Mobile", "Parallel Networks", "Beacon Broadband"],
    "healthcare": ["Riverside Health", "Evergreen Clinics", "Summit Care", "Oakridge Medical"],
}
# industry -> (NPS base, CSAT base, revenue growth base %, turnover base %, revenue per unit)
_INDUSTRY = {
    "retail": (30.0, 80.0, 3.0, 55.0, 4.0e6),
    "banking": (20.0, 78.0, 4.0, 15.0, 9.0e6),
    "hospitality": (40.0, 84.0, 5.0, 70.0, 3.0e6),
    "telecom": (5.0, 72.0, 2.0, 25.0, 12.0e6),
    "healthcare": (35.0, 82.0, 4.5, 20.0, 7.0e6),
}
_OUTCOMES = (
    ("nps", "Customer NPS", "cx", True),
    ("csat", "Customer satisfaction (%)", "cx", True),
    ("revenue_growth", "Revenue growth (%)", "business", True),
    ("turnover", "Employee turnover (%)", "business", False),
)

#: Every model option of :func:`simulate_study` with its default (see docs/simulation.md).
MODEL_DEFAULTS = {
    # reciprocal loop (latent unit level, per period)
    "ex_to_cx": 0.35,
    "tau": 0.10,
    "cx_to_ex": 0.15,
    "ex_autoregression": 0.6,
    "cx_autoregression": 0.5,
    "innovation_correlation": 0.0,
    "driver_correlation": 0.5,
    "driver_weights": (0.30, 0.25, 0.10, 0.10, 0.25, 0.0),
    "engagement_r2": 0.6,
    "engagement_effect": 0.0,
    "trend_sd": 0.15,
    # stable unit traits (random intercepts), separate from the within-unit dynamics
    "ex_trait_share": 0.5,
    "cx_trait_share": 0.5,
    "trait_correlation": 0.4,
    # measurement
    "icc": 0.15,
    "loading": 0.75,
    "person_correlation": 0.4,
    "missing_rate": 0.03,
    "mean_headcount": 16.0,
    "headcount_dispersion": 3.0,
    "response_rate": 0.75,
    "min_group_size": DEFAULT_MIN_GROUP_SIZE,
    "client_level_sd": 0.25,
    # outcomes
    "nps_scale": 15.0,
    "nps_noise": 9.0,
    "csat_scale": 5.0,
    "csat_noise": 3.0,
    "outcome_noise_size_power": 0.5,
    "cx_to_revenue_growth": 1.5,
    "ex_to_revenue_growth": 0.75,
    "revenue_growth_noise": 2.5,
    "cx_to_turnover": -3.0,
    "ex_to_turnover": -4.0,
    "turnover_noise": 5.0,
}

#: Named worlds: option overrides of :data:`MODEL_DEFAULTS` (``simulate_study(preset=...)``).
#: ``reciprocal`` is the default world (both cross-lagged paths, stable traits);
#: ``null`` keeps the stable unit traits and their correlation but plants no cross-lagged
#: effect at all (EX and CX are related only through the traits, so any direction found
#: is a false positive); ``ex_leads`` / ``cx_leads`` plant one path only; ``classic`` is
#: the generator before stable traits existed (no traits, outcome noise independent of
#: unit size, no direct EX -> revenue path), file for file the same draws.
PRESETS = {
    "reciprocal": {},
    "null": {"ex_to_cx": 0.0, "tau": 0.0, "cx_to_ex": 0.0, "engagement_effect": 0.0},
    "ex_leads": {"cx_to_ex": 0.0},
    "cx_leads": {"ex_to_cx": 0.0, "tau": 0.0},
    "classic": {"ex_trait_share": 0.0, "cx_trait_share": 0.0, "trait_correlation": 0.0,
                "outcome_noise_size_power": 0.0, "ex_to_revenue_growth": 0.0},
}

_N_CALIBRATION_UNITS = 20000
_CALIBRATION_SEED = 20261125


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class _Model:
    ex_to_cx: float
    tau: float
    cx_to_ex: float
    ex_autoregression: float
    cx_autoregression: float
    innovation_correlation: float
    driver_correlation: float
    driver_weights: tuple
    engagement_r2: float
    engagement_effect: float
    trend_sd: float
    ex_trait_share: float
    cx_trait_share: float
    trait_correlation: float
    icc: float
    loading: float
    person_correlation: float
    missing_rate: float
    mean_headcount: float
    headcount_dispersion: float
    response_rate: float
    min_group_size: int
    client_level_sd: float
    nps_scale: float
    nps_noise: float
    csat_scale: float
    csat_noise: float
    outcome_noise_size_power: float
    cx_to_revenue_growth: float
    ex_to_revenue_growth: float
    revenue_growth_noise: float
    cx_to_turnover: float
    ex_to_turnover: float
    turnover_noise: float

    def measurement_key(self):
        return (self.icc, self.loading, self.person_correlation, self.missing_rate,
                self.mean_headcount, self.headcount_dispersion, self.response_rate,
                self.min_group_size, self.outcome_noise_size_power)


def _check_range(name, value, lo, hi, *, lo_open=False, hi_open=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"`{name}` must be a number, but {value!r} was passed") from None
    bad = (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi) or math.isnan(v)
    if bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ParameterError(
            f"`{name}` must be in {left}{lo}, {hi}{right}, but {value!r} was passed")
    return v


def _make_model(options: dict) -> _Model:
    unknown = sorted(set(options) - set(MODEL_DEFAULTS))
    if unknown:
        raise ParameterError(
            f"unknown model option(s) {unknown}; allowed options are {sorted(MODEL_DEFAULTS)}")
    o = {**MODEL_DEFAULTS, **options}
    inf = math.inf
    ranges = {
        "ex_to_cx": (-2, 2), "tau": (0, 1), "cx_to_ex": (-2, 2),
        "ex_autoregression": (0, 0.95), "cx_autoregression": (0, 0.95),
        "innovation_correlation": (-0.95, 0.95),
        "driver_correlation": (0, 0.95), "engagement_r2": (0.05, 0.95),
        "engagement_effect": (-2, 2), "trend_sd": (0, 2),
        "ex_trait_share": (0, 0.9), "cx_trait_share": (0, 0.9),
        "trait_correlation": (-0.95, 0.95), "outcome_noise_size_power": (0, 2),
        "ex_to_revenue_growth": (-inf, inf),
        "icc": (0.01, 0.9), "loading": (0.3, 0.95), "person_correlation": (0, 0.9),
        "missing_rate": (0, 0.3), "mean_headcount": (4, 1000),
        "headcount_dispersion": (0.2, 1000), "response_rate": (0.1, 1.0),
        "client_level_sd": (0, 2), "nps_scale": (0, 50), "nps_noise": (0, 50),
        "csat_scale": (0, 30), "csat_noise": (0, 30), "cx_to_revenue_growth": (-inf, inf),
        "revenue_growth_noise": (0, 50), "cx_to_turnover": (-inf, inf),
        "ex_to_turnover": (-inf, inf), "turnover_noise": (0, 50),
    }
    values = {}
    for name, (lo, hi) in ranges.items():
        values[name] = _check_range(name, o[name], lo, hi)
    mgs = o["min_group_size"]
    if isinstance(mgs, bool) or not isinstance(mgs, int | np.integer) or mgs < MIN_ALLOWED_GROUP_SIZE:
        raise ParameterError(
            f"`min_group_size` must be an integer >= {MIN_ALLOWED_GROUP_SIZE}, "
            f"but {mgs!r} was passed")
    weights = o["driver_weights"]
    if isinstance(weights, dict):
        missing = [d for d in DRIVERS if d not in weights]
        if missing or set(weights) - set(DRIVERS):
            raise ParameterError(
                f"`driver_weights` as a dict needs exactly the keys {list(DRIVERS)}, "
                f"but {sorted(weights)} was passed")
        weights = [weights[d] for d in DRIVERS]
    try:
        w = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        w = np.array([])
    if w.shape != (len(DRIVERS),) or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise ParameterError(
            f"`driver_weights` must be {len(DRIVERS)} non-negative numbers (one per driver "
            f"{list(DRIVERS)}) with a positive sum, but {weights!r} was passed")
    w = w / w.sum()
    model = _Model(**values, driver_weights=tuple(float(x) for x in w), min_group_size=int(mgs))
    rho_d = model.driver_correlation
    # the largest correlation of one variable with six that correlate rho_d among
    # themselves: the bound for both the innovation and the trait correlation with CX
    limit = math.sqrt((1 + (_NX - 1) * rho_d) / _NX)
    if np.linalg.eigvalsh(_var_matrices(model, model.ex_to_cx)[1]).min() <= 1e-12:
        raise ParameterError(
            f"`innovation_correlation` must be below {limit:.3f} in size with "
            f"driver_correlation={rho_d} (the six driver innovations would not fit one CX "
            f"innovation), but {model.innovation_correlation!r} was passed")
    if np.linalg.eigvalsh(_trait_correlation_matrix(model)).min() <= 1e-9:
        raise ParameterError(
            f"`trait_correlation` must be below {limit:.3f} in size with driver_correlation="
            f"{rho_d} (the six driver traits would not fit one CX trait), but "
            f"{model.trait_correlation!r} was passed")
    return model


# State vector: the 6 drivers, CX (Y), and U, the engagement-specific part (AR(1)).
_NX = len(DRIVERS)
_IY, _IU = _NX, _NX + 1
_NS = _NX + 2


def _engagement_loadings(m: _Model) -> np.ndarray:
    """Vector e with Eng_raw = e @ state: an equal-weight driver part plus U."""
    rho = m.driver_correlation
    var_mean_x = (1 + (_NX - 1) * rho) / _NX  # variance of the driver mean without the loop
    e = np.zeros(_NS)
    e[:_NX] = math.sqrt(m.engagement_r2 / var_mean_x) / _NX
    e[_IU] = math.sqrt(1 - m.engagement_r2)
    return e


def _var_matrices(m: _Model, beta: float):
    """Transition A and innovation covariance Q of the latent VAR(1) for EX->CX path beta."""
    w = np.asarray(m.driver_weights)
    e = _engagement_loadings(m)
    a = np.zeros((_NS, _NS))
    a[:_NX, :_NX] = np.eye(_NX) * m.ex_autoregression
    a[:_NX, _IY] = m.cx_to_ex
    a[_IY, _IY] = m.cx_autoregression
    a[_IY, :_NX] = beta * w + m.engagement_effect * e[:_NX]
    a[_IY, _IU] = m.engagement_effect * e[_IU]
    rx = np.full((_NX, _NX), m.driver_correlation)
    np.fill_diagonal(rx, 1.0)
    q = np.zeros((_NS, _NS))
    q[:_NX, :_NX] = (1 - m.ex_autoregression**2) * rx
    q[_IY, _IY] = 1 - m.cx_autoregression**2
    # shared shocks: a unit's EX and CX innovations in the same period correlate (a bad
    # quarter hits staff and customers together); 0 keeps Q, and every draw, as before
    q[_IY, :_NX] = q[:_NX, _IY] = m.innovation_correlation * math.sqrt(
        (1 - m.ex_autoregression**2) * (1 - m.cx_autoregression**2))
    a[_IU, _IU] = m.ex_autoregression  # engagement-specific part persists like the drivers
    q[_IU, _IU] = 1 - m.ex_autoregression**2
    return a, q


_MAX_RADIUS = 0.99


def _trait_correlation_matrix(m: _Model) -> np.ndarray:
    """Correlations of the stable unit traits of the state (X_1..X_6, Y, U).

    Driver traits correlate ``driver_correlation`` with each other and
    ``trait_correlation`` with the CX trait; the engagement-specific trait U is
    independent of the others.
    """
    r = np.eye(_NS)
    r[:_NX, :_NX] = m.driver_correlation
    np.fill_diagonal(r, 1.0)
    r[:_NX, _IY] = r[_IY, :_NX] = m.trait_correlation
    return r


def _trait_sd(m: _Model, sigma_w: np.ndarray) -> np.ndarray:
    """SD of each stable trait: a share s of a variable's variance is stable, so
    var(trait) = s / (1 - s) var(within part)."""
    share = np.full(_NS, m.ex_trait_share)
    share[_IY] = m.cx_trait_share
    return np.sqrt(share / (1 - share) * np.diag(sigma_w))


def _trait_cov(m: _Model, sigma_w: np.ndarray) -> np.ndarray:
    """Covariance of the stable unit traits (constant over periods)."""
    sd = _trait_sd(m, sigma_w)
    return _trait_correlation_matrix(m) * np.outer(sd, sd)


def _radius(m: _Model, beta: float) -> float:
    """Spectral radius of the VAR transition for EX -> CX path beta."""
    a, _q = _var_matrices(m, beta)
    return float(np.max(np.abs(np.linalg.eigvals(a))))


def _stationary(m: _Model, beta: float):
    """Return (A, Q, Sigma) of the stationary VAR; ParameterError if it explodes."""
    a, q = _var_matrices(m, beta)
    radius = float(np.max(np.abs(np.linalg.eigvals(a))))
    if radius >= _MAX_RADIUS:
        raise ParameterError(
            f"the EX <-> CX loop is not stationary for ex_to_cx={beta:.3f} "
            f"(spectral radius {radius:.3f} >= 0.99): lower `ex_to_cx`, `cx_to_ex`, `tau` "
            "or the autoregressions")
    sigma = linalg.solve_discrete_lyapunov(a, q)
    return a, q, (sigma + sigma.T) / 2


def _latent_correlations(m: _Model, sigma: np.ndarray, cross: np.ndarray | None = None):
    """Unit-level correlations of the latent EX variables with latent CX.

    ``cross[i, j]`` is the covariance of state element i at the CX occasion with state
    element j at the EX occasion: ``sigma`` for the same period (default), ``A sigma``
    for EX at t against CX at t+1, ``sigma A'`` for CX at t against EX at t+1.
    Returns (correlations by name, correlation matrix of the drivers).
    """
    if cross is None:
        cross = sigma
    e = _engagement_loadings(m)
    w = np.zeros(_NS)
    w[:_NX] = m.driver_weights
    sd = np.sqrt(np.diag(sigma))
    cy = cross[_IY, :]
    out = {d: cy[k] / (sd[k] * sd[_IY]) for k, d in enumerate(DRIVERS)}
    out["engagement"] = (cy @ e) / (math.sqrt(e @ sigma @ e) * sd[_IY])
    out["weighted_ex"] = (cy @ w) / (math.sqrt(w @ sigma @ w) * sd[_IY])
    c = np.zeros(_NS)  # equal-weight mean of the standardised drivers
    c[:_NX] = 1 / sd[:_NX]
    out["ex_composite"] = (cy @ c) / (math.sqrt(c @ sigma @ c) * sd[_IY])
    corr_x = sigma[:_NX, :_NX] / np.outer(sd[:_NX], sd[:_NX])
    return out, corr_x


def _all_correlations(m: _Model, a: np.ndarray, sigma_w: np.ndarray, sigma_b: np.ndarray,
                      cal: dict) -> dict:
    """Latent and observed correlations, same period and lagged one period both ways.

    The state is a stable trait (covariance ``sigma_b``) plus a stationary within-unit
    VAR(1) part (covariance ``sigma_w``): the lag-1 covariance is ``A sigma_w + sigma_b``.
    """
    out = {}
    sigma = sigma_w + sigma_b
    for key, cross in (("same_period", sigma), ("ex_then_nps", a @ sigma_w + sigma_b),
                       ("nps_then_ex", sigma_w @ a.T + sigma_b)):
        rho, corr_x = _latent_correlations(m, sigma, cross)
        out[key] = {"latent": rho, "observed": _observed_correlations(m, rho, corr_x, cal)}
    return out


# --------------------------------------------------------------------------- measurement


def _headcounts(rng, m: _Model, n_units: int) -> np.ndarray:
    lo = 3
    size = m.headcount_dispersion
    mean = max(m.mean_headcount - lo, 0.5)
    return lo + rng.negative_binomial(size, size / (size + mean), n_units)


def _respondents(rng, m: _Model, headcount: np.ndarray) -> np.ndarray:
    return np.maximum(rng.binomial(headcount, m.response_rate), 1)


def _item_layout():
    """Item names, the scale index of each item, and which are reverse-keyed."""
    names, scale_of, reverse = [], [], []
    for s, (name, _label, n_items, rev, _role) in enumerate(_SCALES):
        for j in range(1, n_items + 1):
            names.append(f"{name}_{j}")
            scale_of.append(s)
            reverse.append(j in rev)
    return names, np.array(scale_of), np.array(reverse)


def _answers(rng, m: _Model, unit_latent: np.ndarray, level: np.ndarray,
             intercepts: np.ndarray, n_resp: np.ndarray) -> np.ndarray:
    """Item answers of every respondent, as stored (reverse items reversed, NaN missing).

    ``unit_latent`` is (units, 7): the standardised latent drivers and engagement of each
    unit; ``level`` the client's mean on the individual scale per scale (7,);
    ``intercepts`` one per Likert item. Returns (respondents, n_items + 1) floats, the
    last column being the 0-10 eNPS answer. Respondents are in unit order.
    """
    n_scales = unit_latent.shape[1]
    unit_of = np.repeat(np.arange(len(n_resp)), n_resp)
    r = len(unit_of)
    sb, sw = math.sqrt(m.icc), math.sqrt(1 - m.icc)
    pc = m.person_correlation
    person = rng.standard_normal((r, 1))
    within = math.sqrt(pc) * person + math.sqrt(1 - pc) * rng.standard_normal((r, n_scales))
    trait = level + sb * unit_latent[unit_of] + sw * within
    _names, scale_of, reverse = _item_layout()
    lam = m.loading
    latent_item = (lam * trait[:, scale_of] + math.sqrt(1 - lam**2)
                   * rng.standard_normal((r, len(scale_of))) + intercepts)
    answer = (1 + np.searchsorted(_THRESHOLDS, latent_item.ravel())).reshape(latent_item.shape)
    answer = np.where(reverse, _POINTS[0] + _POINTS[1] - answer, answer).astype(float)
    eng = trait[:, -1]
    enps_latent = 0.8 * eng + 0.6 * rng.standard_normal(r)
    enps = np.clip(np.rint(_ENPS_CENTRE + _ENPS_SCALE * enps_latent), 0, 10)
    out = np.column_stack([answer, enps])
    missing = rng.random(out.shape) < m.missing_rate
    out[missing] = np.nan
    return out


def _unit_scores(answers: np.ndarray, n_resp: np.ndarray, min_group_size: int):
    """Unit means of each scale (respondent score = mean of >= half the items) and eNPS.

    Mirrors the measurement conventions in METHODS.md and ``aggregate_units``: a unit's
    scale is NaN when fewer than ``min_group_size`` respondents could be scored on it.
    Returns (units, 7 + 1): the 7 Likert scale means then the unit eNPS (-100..100).
    """
    _names, scale_of, reverse = _item_layout()
    items = answers[:, :-1].copy()
    items[:, reverse] = _POINTS[0] + _POINTS[1] - items[:, reverse]
    unit_of = np.repeat(np.arange(len(n_resp)), n_resp)
    n_units = len(n_resp)
    out = np.full((n_units, len(_SCALES) + 1), np.nan)
    for s in range(len(_SCALES)):
        block = items[:, scale_of == s]
        answered = np.sum(~np.isnan(block), axis=1)
        score = np.where(answered >= block.shape[1] / 2, np.nanmean(
            np.where(answered[:, None] > 0, block, 0.0), axis=1), np.nan)
        ok = ~np.isnan(score)
        tot = np.bincount(unit_of[ok], weights=score[ok], minlength=n_units)
        cnt = np.bincount(unit_of[ok], minlength=n_units)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, s] = np.where(cnt >= min_group_size, tot / cnt, np.nan)
    enps = answers[:, -1]
    ok = ~np.isnan(enps)
    prom = np.bincount(unit_of[ok], weights=(enps[ok] >= 9).astype(float), minlength=n_units)
    det = np.bincount(unit_of[ok], weights=(enps[ok] <= 6).astype(float), minlength=n_units)
    cnt = np.bincount(unit_of[ok], minlength=n_units)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, -1] = np.where(cnt >= min_group_size, 100 * (prom - det) / cnt, np.nan)
    return out


@lru_cache(maxsize=16)
def _calibrate(key) -> dict:
    """Attenuation of unit scores relative to the unit latent, by a large simulation.

    With independent standard-normal unit latents, returns for each scale (and the unit
    eNPS against latent engagement) ``a = cov(score, latent)``, ``var(score)`` and the
    covariance matrix of the six driver scores (their ``residual`` covariance), among
    units with at least ``min_group_size`` respondents.
    """
    m = _make_model(dict(zip(
        ("icc", "loading", "person_correlation", "missing_rate", "mean_headcount",
         "headcount_dispersion", "response_rate", "min_group_size",
         "outcome_noise_size_power"), key, strict=True)))
    rng = np.random.default_rng(_CALIBRATION_SEED)
    n = _N_CALIBRATION_UNITS
    latent = rng.standard_normal((n, len(_SCALES)))
    headcount = _headcounts(rng, m, n)
    n_resp = _respondents(rng, m, headcount)
    names, _scale_of, _rev = _item_layout()
    answers = _answers(rng, m, latent, np.zeros(len(_SCALES)), np.zeros(len(names)), n_resp)
    scores = _unit_scores(answers, n_resp, m.min_group_size)
    keep = (n_resp >= m.min_group_size) & np.isfinite(scores).all(axis=1)
    scores, latent = scores[keep], latent[keep]
    lat = np.column_stack([latent, latent[:, -1]])  # eNPS against latent engagement
    cov = np.cov(np.column_stack([scores, lat]).T)
    k = scores.shape[1]
    a = np.array([cov[i, k + i] for i in range(k)])
    var = np.diag(cov)[:k]
    noise_factor2 = float(np.mean(_noise_factor(m, headcount[keep]) ** 2))
    return {"a": a, "var": var, "reliability": a**2 / var,
            "driver_cov": cov[:_NX, :_NX].copy(), "n_units": int(keep.sum()),
            "noise_factor2": noise_factor2}


def _noise_factor(m: _Model, headcount) -> np.ndarray:
    """Multiplier of the customer-measured outcomes' noise SD: (mean headcount / headcount)^p.

    Bigger units serve more customers, so their NPS and CSAT are measured more precisely.
    """
    return (m.mean_headcount / np.asarray(headcount, dtype=float)) ** m.outcome_noise_size_power


def _nps_loading(m: _Model, cal: dict) -> float:
    """corr(observed unit NPS, latent CX) among reported units (the noise varies by size)."""
    if m.nps_scale <= 0:
        return 0.0
    return m.nps_scale / math.sqrt(m.nps_scale**2 + m.nps_noise**2 * cal["noise_factor2"])


def _observed_correlations(m: _Model, rho: dict, corr_x: np.ndarray, cal: dict) -> dict:
    """Population correlation of observed unit scores with observed unit NPS.

    By Stein's lemma, for a unit score that depends on the unit latents only through
    one (jointly normal with latent CX), corr(score, CX) = corr(score, latent) x
    corr(latent, CX); observed NPS is linear in latent CX plus independent noise.
    """
    b = _nps_loading(m, cal)
    att = np.sqrt(cal["reliability"])
    out = {}
    for k, d in enumerate(DRIVERS):
        out[d] = att[k] * rho[d] * b
    out["engagement"] = att[_NX] * rho["engagement"] * b
    out["enps"] = att[_NX + 1] * rho["engagement"] * b
    # composite = mean of the six driver unit means
    a = cal["a"][:_NX]
    dcov = cal["driver_cov"]
    resid = dcov - np.diag(a**2)
    var_c = (np.outer(a, a) * corr_x + resid).sum() / _NX**2
    cov_cy = (a * np.array([rho[d] for d in DRIVERS])).sum() / _NX
    out["ex_composite"] = cov_cy / math.sqrt(var_c) * b
    return out


# --------------------------------------------------------------------------- study


def _client_meta(n_clients: int):
    width = max(2, len(str(n_clients)))
    clients = []
    for i in range(n_clients):
        industry = INDUSTRIES[i % len(INDUSTRIES)]
        names = _CLIENT_NAMES[industry]
        j = i // len(INDUSTRIES)
        name = names[j % len(names)]
        if j >= len(names):
            name = f"{name} {j // len(names) + 1}"
        clients.append({"id": f"client-{i + 1:0{width}d}", "name": name, "industry": industry})
    return clients


def _periods(n_periods: int):
    return [f"{2025 + q // 4}Q{q % 4 + 1}" for q in range(n_periods)]


def _study_yml(name, seed, m: _Model, periods, clients) -> str:
    scales = {}
    for sname, label, n_items, rev, role in _SCALES:
        spec = {"items": [f"{sname}_{j}" for j in range(1, n_items + 1)]}
        if rev:
            spec["reverse"] = [f"{sname}_{j}" for j in rev]
        if role:
            spec["role"] = role
        spec["label"] = label
        scales[sname] = spec
    scales["enps"] = {"items": [_ENPS_ITEM], "points": [0, 10], "kind": "nps",
                      "label": "Employee NPS"}
    doc = {
        "name": name,
        "seed": seed,
        "min_group_size": m.min_group_size,
        "periods": list(periods),
        "points": list(_POINTS),
        "scales": scales,
        "outcomes": {o: ({"label": lab, "kind": kind} if hib else
                         {"label": lab, "kind": kind, "higher_is_better": False})
                     for o, lab, kind, hib in _OUTCOMES},
        "covariates": ["headcount"],
        "publish_client_names": False,
        "clients": clients,
    }
    header = ("# Simulated by exresearch.simulate_study; planted parameters in truth.json.\n")
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None,
                                   allow_unicode=True, width=100)


def _r(x, nd=6):
    """Round for truth.json (stable across platforms)."""
    if isinstance(x, dict):
        return {k: _r(v, nd) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_r(v, nd) for v in x]
    if isinstance(x, np.integer | int) and not isinstance(x, bool):
        return int(x)
    if isinstance(x, np.floating | float):
        v = round(float(x), nd)
        return 0.0 if v == 0 else v
    return x


def _z_moments(m: _Model, cal: dict, n_nodes: int = 15) -> dict:
    """Mean and SD over the client population of Fisher's z (Gauss-Hermite quadrature).

    The population of paths is ``beta ~ N(ex_to_cx, tau^2)`` truncated to the
    stationary region (clients are drawn the same way); quadrature nodes outside it are
    dropped and the weights renormalised.
    """
    _stationary(m, m.ex_to_cx)  # the pooled path itself must be stationary
    if m.tau == 0:
        nodes, weights = np.array([0.0]), np.array([1.0])
    else:
        nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
        weights = weights / weights.sum()
        keep = np.array([_radius(m, m.ex_to_cx + m.tau * x) < _MAX_RADIUS for x in nodes])
        if weights[keep].sum() < 0.95:
            raise ParameterError(
                f"`tau` = {m.tau} is too large for `ex_to_cx` = {m.ex_to_cx}: more than 5% of "
                "the clients' EX -> CX paths would make the EX <-> CX loop non-stationary")
        nodes, weights = nodes[keep], weights[keep] / weights[keep].sum()
    rows = {}
    for x in nodes:
        a, _q, sigma = _stationary(m, m.ex_to_cx + m.tau * x)
        for occasion, res in _all_correlations(m, a, sigma, _trait_cov(m, sigma), cal).items():
            for level, rho in res.items():
                rows.setdefault((occasion, level), []).append(
                    {k: math.atanh(v) for k, v in rho.items()})

    def moments(rows):
        out = {}
        for k in rows[0]:
            v = np.array([r[k] for r in rows])
            mean = float(weights @ v)
            out[k] = {"z_mean": mean, "tau_z": math.sqrt(max(float(weights @ (v - mean) ** 2), 0)),
                      "r_at_z_mean": math.tanh(mean)}
        return out

    out = {"latent": moments(rows["same_period", "latent"]),
           "observed": moments(rows["same_period", "observed"])}
    for occasion in ("ex_then_nps", "nps_then_ex"):
        out[occasion] = {level: moments(rows[occasion, level])
                         for level in ("latent", "observed")}
    return out


def simulate_study(out, *, n_clients: int = 10, n_units: int = 30, n_periods: int = 4,
                   seed: int = 0, name: str | None = None, preset: str = "reciprocal",
                   **options) -> Path:
    """Write a simulated multi-client study with planted effects.

    Parameters
    ----------
    out : str or Path
        Folder to create. It must not exist or be empty; nothing is overwritten.
    n_clients, n_units, n_periods : int
        Clients, business units per client and survey periods (quarters from 2025Q1).
    seed : int
        Seed of the single ``np.random.default_rng`` every random draw comes from; the
        same arguments give byte-identical files.
    name : str, optional
        Study name written to ``study.yml``.
    preset : {"reciprocal", "null", "ex_leads", "cx_leads", "classic"}
        A named world (:data:`PRESETS`) whose options replace the defaults before
        ``**options`` are applied: ``"null"`` has stable unit traits and no
        cross-lagged effect, ``"reciprocal"`` (default) both lagged paths.
    **options
        Model options; see :data:`MODEL_DEFAULTS` and ``docs/simulation.md`` (for
        example ``ex_to_cx=0.35, tau=0.1, cx_to_ex=0.15, engagement_effect=0.0,
        icc=0.15, missing_rate=0.03``).

    Returns
    -------
    Path
        The study folder, holding ``study.yml``, ``truth.json`` and
        ``clients/<id>/survey.csv`` and ``clients/<id>/outcomes.csv``.

    Raises
    ------
    ParameterError
        If ``out`` is a non-empty folder or a file, a size is not a positive integer,
        or a model option is unknown or out of range.

    Notes
    -----
    The latent state of unit u at period t, ``s = (X_1..X_6, Y, U)``, follows a
    stationary VAR(1) ``s_t = A_c s_{t-1} + e_t`` whose EX -> CX path
    ``beta_c ~ N(ex_to_cx, tau)`` differs by client; see ``docs/simulation.md`` for
    the equations and for the fields of ``truth.json``.

    Examples
    --------
    >>> import tempfile, json, pathlib
    >>> path = simulate_study(pathlib.Path(tempfile.mkdtemp()) / "s", n_clients=2,
    ...                       n_units=6, n_periods=2, seed=1)
    >>> sorted(p.name for p in path.iterdir())
    ['clients', 'study.yml', 'truth.json']
    >>> json.loads((path / "truth.json").read_text())["pooled"]["ex_to_cx"]
    0.35
    """
    for arg, value, lo in (("n_clients", n_clients, 1), ("n_units", n_units, 2),
                           ("n_periods", n_periods, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
            raise ParameterError(f"`{arg}` must be an integer >= {lo}, but {value!r} was passed")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError(f"`seed` must be a non-negative integer, but {seed!r} was passed")
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ParameterError(
            f"`preset` must be one of {list(PRESETS)}, but {preset!r} was passed")
    m = _make_model({**PRESETS[preset], **options})
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        what = "a file" if not out.is_dir() else "a non-empty folder"
        raise ParameterError(
            f"`out` must be a new or empty folder, but {str(out)!r} is {what}; "
            "simulate_study never overwrites files")

    rng = np.random.default_rng(seed)
    cal = _calibrate(m.measurement_key())
    pop = _z_moments(m, cal)  # before writing anything: refuses non-stationary options
    clients = _client_meta(n_clients)
    periods = _periods(n_periods)
    item_names, _scale_of, _rev = _item_layout()
    intercepts = np.round(rng.normal(0.0, 0.15, len(item_names)), 3)
    b_nps = _nps_loading(m, cal)
    trait_chol = np.linalg.cholesky(_trait_correlation_matrix(m))

    written = {}
    truth_clients = []
    for client in clients:
        ind = _INDUSTRY[client["industry"]]
        beta = _draw_beta(rng, m)
        a, q, sigma_w = _stationary(m, beta)
        sigma_b = _trait_cov(m, sigma_w)
        sigma = sigma_w + sigma_b
        corrs = _all_correlations(m, a, sigma_w, sigma_b, cal)
        rho, obs = corrs["same_period"]["latent"], corrs["same_period"]["observed"]
        trend = float(m.trend_sd * rng.standard_normal())
        direction = ("improving" if trend > 0.05 else
                     "declining" if trend < -0.05 else "stable")
        level = float(m.client_level_sd * rng.standard_normal())
        levels = level + 0.1 * rng.standard_normal(len(_SCALES))
        nps_base = ind[0] + 8.0 * rng.standard_normal()
        csat_base = ind[1] + 2.0 * rng.standard_normal()
        growth_base = ind[2] + 1.0 * rng.standard_normal()
        turnover_base = ind[3] * math.exp(0.2 * rng.standard_normal())

        # latent paths: stationary start, VAR(1) with the client's mean drift
        chol = np.linalg.cholesky(sigma_w + 1e-12 * np.eye(_NS))
        chol_q = np.linalg.cholesky(q + 1e-12 * np.eye(_NS))
        state = np.empty((n_periods, n_units, _NS))
        state[0] = rng.standard_normal((n_units, _NS)) @ chol.T
        drift = np.zeros(_NS)
        drift[:_NX] = trend
        mean = np.zeros((n_periods, _NS))
        for t in range(1, n_periods):
            state[t] = state[t - 1] @ a.T + rng.standard_normal((n_units, _NS)) @ chol_q.T
            mean[t] = a @ mean[t - 1] + drift
        if np.any(sigma_b):  # stable unit traits, drawn after the dynamics (classic: none)
            traits = (rng.standard_normal((n_units, _NS)) @ trait_chol.T) * _trait_sd(m, sigma_w)
            state = state + traits[None, :, :]
        else:
            traits = np.zeros((n_units, _NS))
        sd = np.sqrt(np.diag(sigma))
        e_vec = _engagement_loadings(m)
        w_vec = np.zeros(_NS)
        w_vec[:_NX] = m.driver_weights
        sd_eng = math.sqrt(e_vec @ sigma @ e_vec)
        sd_w = math.sqrt(w_vec @ sigma @ w_vec)
        full = state + mean[:, None, :]
        x_std = full[..., :_NX] / sd[:_NX]
        y_std = full[..., _IY] / sd[_IY]
        eng_std = (full @ e_vec) / sd_eng
        ex_std = (full @ w_vec) / sd_w
        unit_latent = np.concatenate([x_std, eng_std[..., None]], axis=-1)

        headcount = _headcounts(rng, m, n_units)
        n_resp = _respondents(rng, m, np.tile(headcount, n_periods))  # period-major
        answers = _answers(rng, m, unit_latent.reshape(-1, len(_SCALES)), levels,
                           intercepts, n_resp)

        width = max(3, len(str(n_units)))
        unit_ids = np.array([f"U{u + 1:0{width}d}" for u in range(n_units)])
        period_of_unit = np.repeat(np.array(periods), n_units)
        unit_of_unit = np.tile(unit_ids, n_periods)
        resp_period = np.repeat(period_of_unit, n_resp)
        resp_unit = np.repeat(unit_of_unit, n_resp)
        # respondent ids: running number within client and period
        counts = n_resp.reshape(n_periods, n_units).sum(axis=1)
        rid = np.concatenate([np.arange(1, k + 1) for k in counts])
        survey = pd.DataFrame({"unit_id": resp_unit, "period": resp_period,
                               "respondent_id": [f"R{i:05d}" for i in rid]})
        for j, item in enumerate([*item_names, _ENPS_ITEM]):
            survey[item] = pd.array(answers[:, j], dtype="Float64").astype("Int64")

        nu = n_units * n_periods
        y_flat = y_std.reshape(-1)
        ex_flat = ex_std.reshape(-1)
        size_factor = np.tile(_noise_factor(m, headcount), n_periods)  # period-major
        nps = np.clip(nps_base + m.nps_scale * y_flat
                      + m.nps_noise * size_factor * rng.standard_normal(nu), -100, 100)
        csat = np.clip(csat_base + m.csat_scale * y_flat
                       + m.csat_noise * size_factor * rng.standard_normal(nu), 0, 100)
        growth = (growth_base + m.cx_to_revenue_growth * y_flat
                  + m.ex_to_revenue_growth * ex_flat
                  + m.revenue_growth_noise * rng.standard_normal(nu))
        turnover = np.clip(turnover_base + m.cx_to_turnover * y_flat + m.ex_to_turnover * ex_flat
                           + m.turnover_noise * rng.standard_normal(nu), 0, None)
        outcomes = pd.DataFrame({
            "unit_id": unit_of_unit, "period": period_of_unit,
            "nps": np.round(nps, 1), "csat": np.round(csat, 1),
            "revenue_growth": np.round(growth, 2), "turnover": np.round(turnover, 2),
            "headcount": np.tile(headcount, n_periods),
        })
        client["revenue"] = int(round(ind[4] * n_units * math.exp(0.3 * rng.standard_normal()),
                                      -5))
        written[client["id"]] = (survey, outcomes)

        small = float(np.mean(n_resp < m.min_group_size))
        truth_clients.append({
            "client_id": client["id"], "industry": client["industry"],
            "ex_to_cx": beta,
            "trend": trend,
            "direction": direction,
            "loop": _loop_word(m, beta, direction),
            "level": level,
            "nps_base": nps_base, "csat_base": csat_base,
            "revenue_growth_base": growth_base, "turnover_base": turnover_base,
            "share_small_unit_periods": small,
            "latent_mean_path": {
                "ex": [float(v) for v in (mean[:, :_NX] @ np.asarray(m.driver_weights)) / sd_w],
                "cx": [float(v) for v in mean[:, _IY] / sd[_IY]],
            },
            "rho_latent": rho,
            "rho_observed": obs,
            "z_observed": {k: math.atanh(v) for k, v in obs.items()},
            "lagged": {occasion: {"rho_latent": corrs[occasion]["latent"],
                                  "rho_observed": corrs[occasion]["observed"]}
                       for occasion in ("ex_then_nps", "nps_then_ex")},
            "paths_standardised": {
                "ex_to_cx": beta * sd_w / sd[_IY],
                "cx_to_ex": {d: m.cx_to_ex * sd[_IY] / sd[k] for k, d in enumerate(DRIVERS)},
                "ex_autoregression": m.ex_autoregression,
                "cx_autoregression": m.cx_autoregression,
            },
            "paths_within": _within_paths(m, beta, sigma_w),
            "nps_reliability": b_nps**2,
            "outcome_links": _outcome_links(m, rho["weighted_ex"], cal),
        })

    out.mkdir(parents=True, exist_ok=True)
    study_name = name or f"Simulated EX-CX study (seed {seed})"
    (out / "study.yml").write_text(_study_yml(study_name, seed, m, periods, clients),
                                   encoding="utf-8", newline="\n")
    for cid, (survey, outcomes) in written.items():
        folder = out / "clients" / cid
        folder.mkdir(parents=True)
        survey.to_csv(folder / "survey.csv", index=False, lineterminator="\n")
        outcomes.to_csv(folder / "outcomes.csv", index=False, lineterminator="\n",
                        float_format="%.2f")

    sample_z = {k: float(np.mean([tc["z_observed"][k] for tc in truth_clients]))
                for k in truth_clients[0]["z_observed"]}
    truth = {
        "generator": f"exresearch.simulate_study {__version__}",
        "arguments": {"n_clients": n_clients, "n_units": n_units, "n_periods": n_periods,
                      "seed": seed, "preset": preset},
        "options": {k: (list(v) if isinstance(v, tuple) else v)
                    for k, v in m.__dict__.items()},
        "drivers": list(DRIVERS),
        "periods": periods,
        "estimand": (
            "rho_observed[client][scale] is the population Pearson correlation, within one "
            "period, between the unit mean of the scale (respondent score = mean of at "
            "least half its items; units with fewer than min_group_size respondents left "
            "out; ex_composite = mean of the six driver unit means; enps = unit eNPS) and "
            "the unit's customer NPS. A per-client unit-level Pearson r estimates it; "
            "pooled.observed[scale].z_mean and tau_z are the mean and SD of its Fisher z "
            "over the population of clients (the estimands of a random-effects "
            "meta-analysis on Fisher's z); pooled.sample_z_mean averages the clients drawn."),
        "pooled": {
            "ex_to_cx": m.ex_to_cx, "tau": m.tau, "cx_to_ex": m.cx_to_ex,
            "ex_autoregression": m.ex_autoregression,
            "cx_autoregression": m.cx_autoregression,
            "engagement_effect": m.engagement_effect,
            "driver_weights": dict(zip(DRIVERS, m.driver_weights, strict=True)),
            "zero_weight_drivers": [d for d, w in zip(DRIVERS, m.driver_weights, strict=True)
                                    if w == 0],
            "traits": _trait_summary(m),
            "latent": pop["latent"],
            "observed": pop["observed"],
            "ex_then_nps": pop["ex_then_nps"],
            "nps_then_ex": pop["nps_then_ex"],
            "sample_z_mean": sample_z,
        },
        "measurement": {
            "icc_latent": m.icc, "loading": m.loading,
            "expected_icc1_3_items": m.icc * _expected_score_reliability(m, 3),
            "expected_icc1_4_items": m.icc * _expected_score_reliability(m, 4),
            "unit_score_reliability": dict(zip(
                [s[0] for s in _SCALES] + ["enps"], cal["reliability"], strict=True)),
            "nps_reliability": b_nps**2,
            "item_intercepts": dict(zip(item_names, intercepts, strict=True)),
            "thresholds": list(_THRESHOLDS),
            "missing_rate": m.missing_rate,
            "calibration_units": cal["n_units"],
        },
        "outcomes": {
            "nps": "clip(nps_base + nps_scale * Y + k_u N(0, nps_noise), -100, 100)",
            "csat": "clip(csat_base + csat_scale * Y + k_u N(0, csat_noise), 0, 100)",
            "noise_factor": "k_u = (mean_headcount / headcount_u) ** outcome_noise_size_power",
            "revenue_growth": ("growth_base + cx_to_revenue_growth * Y + ex_to_revenue_growth "
                               "* EX + N(0, noise)"),
            "turnover": ("clip(turnover_base + cx_to_turnover * Y + ex_to_turnover * EX + "
                         "N(0, noise), 0)"),
            "cx_to_revenue_growth": m.cx_to_revenue_growth,
            "ex_to_revenue_growth": m.ex_to_revenue_growth,
            "outcome_noise_size_power": m.outcome_noise_size_power,
            "mean_noise_factor_squared": cal["noise_factor2"],
            "cx_to_turnover": m.cx_to_turnover, "ex_to_turnover": m.ex_to_turnover,
        },
        "clients": truth_clients,
    }
    (out / "truth.json").write_text(json.dumps(_r(truth), indent=2) + "\n", encoding="utf-8",
                                    newline="\n")
    return out


def _draw_beta(rng, m: _Model) -> float:
    """A client's EX -> CX path: N(ex_to_cx, tau^2), redrawn while non-stationary."""
    for _ in range(1000):
        beta = float(m.ex_to_cx + m.tau * rng.standard_normal())
        if _radius(m, beta) < _MAX_RADIUS:
            return beta
    raise ParameterError(  # pragma: no cover  (_z_moments refuses such options first)
        f"`tau` = {m.tau} is too large for `ex_to_cx` = {m.ex_to_cx}")


def _loop_word(m: _Model, beta: float, direction: str) -> str:
    """The planted loop in the words of ``direction.classify_loop``."""
    if beta > 0 and m.cx_to_ex > 0:
        return {"improving": "virtuous cycle", "declining": "doom loop"}.get(
            direction, "reciprocal loop")
    if beta > 0:
        return "EX leads"
    if m.cx_to_ex > 0:
        return "CX leads"
    return "no loop"


def _within_paths(m: _Model, beta: float, sigma_w: np.ndarray) -> dict:
    """The planted within-unit (trait-free) lagged paths, standardised on the within SDs.

    These are what a random-intercept cross-lagged panel model of the latent variables
    estimates: ``ex_to_cx`` of the w-weighted driver composite on CX, ``cx_to_ex`` of CX
    on each driver and on the w-weighted composite.
    """
    w = np.zeros(_NS)
    w[:_NX] = m.driver_weights
    sd = np.sqrt(np.diag(sigma_w))
    sd_w = math.sqrt(w @ sigma_w @ w)
    return {
        "ex_to_cx": beta * sd_w / sd[_IY],
        "cx_to_ex": {d: m.cx_to_ex * sd[_IY] / sd[k] for k, d in enumerate(DRIVERS)},
        "cx_to_weighted_ex": m.cx_to_ex * sd[_IY] / sd_w,
        "ex_autoregression": m.ex_autoregression,
        "cx_autoregression": m.cx_autoregression,
    }


def _trait_summary(m: _Model) -> dict:
    """The planted stable-trait structure, for truth.json."""
    r = _trait_correlation_matrix(m)
    w = np.asarray(m.driver_weights)
    rxx = r[:_NX, :_NX]
    weighted = float(w @ r[:_NX, _IY] / math.sqrt(w @ rxx @ w))
    equal = float(r[:_NX, _IY].sum() / math.sqrt(rxx.sum()))
    return {"ex_share": m.ex_trait_share, "cx_share": m.cx_trait_share,
            "correlation_driver_cx": m.trait_correlation,
            "correlation_weighted_ex_cx": weighted if m.cx_trait_share and m.ex_trait_share else 0.0,
            "correlation_ex_composite_cx": equal if m.cx_trait_share and m.ex_trait_share else 0.0}


def _outcome_links(m: _Model, rho_ex_cx: float, cal: dict) -> dict:
    """Population within-period links between unit NPS and the business outcomes.

    Slopes are of the outcome on observed unit NPS (least squares over reported units
    of one client and period, whose NPS noise varies with their size); clipping of
    turnover at 0 is ignored (rare with the defaults).
    """
    var_nps = m.nps_scale**2 + m.nps_noise**2 * cal["noise_factor2"]
    g_cx, g_ex = m.cx_to_revenue_growth, m.ex_to_revenue_growth
    var_growth = g_cx**2 + g_ex**2 + 2 * g_cx * g_ex * rho_ex_cx + m.revenue_growth_noise**2
    cov_turn = m.nps_scale * (m.cx_to_turnover + m.ex_to_turnover * rho_ex_cx)
    var_turn = (m.cx_to_turnover**2 + m.ex_to_turnover**2 + m.turnover_noise**2
                + 2 * m.cx_to_turnover * m.ex_to_turnover * rho_ex_cx)
    cov_growth = m.nps_scale * (g_cx + g_ex * rho_ex_cx)

    def corr(cov, var):
        return cov / math.sqrt(var_nps * var) if var > 0 and var_nps > 0 else 0.0

    return {
        "revenue_growth_per_nps_point": cov_growth / var_nps if var_nps > 0 else 0.0,
        "turnover_per_nps_point": cov_turn / var_nps if var_nps > 0 else 0.0,
        "rho_nps_revenue_growth": corr(cov_growth, var_growth),
        "rho_nps_turnover": corr(cov_turn, var_turn),
    }


def _expected_score_reliability(m: _Model, k: int) -> float:
    """Reliability of a k-item respondent score before discretisation (Spearman-Brown).

    ICC(1) of the observed scores is about ``icc`` times this (a little lower after
    rounding to Likert points and with missing answers).
    """
    lam2 = m.loading**2
    return k * lam2 / (k * lam2 + 1 - lam2)
