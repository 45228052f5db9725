"""From respondents to business units: unit means with suppression, and agreement.

:func:`aggregate_units` turns one client's survey into unit x period x scale
rows (n, mean, SD, % favourable) and suppresses every value of a unit-period
smaller than the reporting threshold; :func:`unit_panel` widens that into the
*unit panel* the linkage, meta-analysis and economics code take as input.
:func:`agreement`, :func:`icc` and :func:`rwg_j` give the statistics that
justify aggregating individual answers to units (Bliese 2000).

Everything is vectorised with group codes and ``numpy.bincount``: there is no
Python loop per unit, per period or per respondent (only per scale and item).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd

from .config import MIN_ALLOWED_GROUP_SIZE
from .exceptions import ParameterError
from .scoring import (
    _alpha_stats,
    _check_frame,
    _item_matrix,
    _resolve_scales,
    _Scale,
    _score_matrix,
)

__all__ = [
    "aggregate_units",
    "unit_panel",
    "unit_error_variances",
    "ERROR_SUFFIX",
    "agreement",
    "icc",
    "rwg_j",
]

_AGG_COLUMNS = ["n", "mean", "sd", "pct_favourable", "suppressed", "reason"]

#: Suffix of the columns holding a unit-period value's sampling (error) variance:
#: ``<scale>_error_var`` (:func:`unit_error_variances`, ``unit_panel(errors=True)``).
ERROR_SUFFIX = "_error_var"
_AGREEMENT_COLUMNS = [
    "n_respondents", "n_units", "alpha", "icc1", "icc2", "rwg_j_mean", "rwg_j_median",
]


# --------------------------------------------------------------------------- helpers
def _check_column(data: pd.DataFrame, column, name: str) -> None:
    if not isinstance(column, str) or column not in data.columns:
        raise ParameterError(
            f"`{name}` must name a column of `data` ({list(data.columns)[:12]!r}"
            f"{'...' if data.shape[1] > 12 else ''}), but {column!r} was passed"
        )


def _check_min_group_size(value) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < MIN_ALLOWED_GROUP_SIZE
    ):
        raise ParameterError(
            f"`min_group_size` must be an integer >= {MIN_ALLOWED_GROUP_SIZE}, "
            f"but {value!r} was passed"
        )
    return int(value)


def _group_codes(data: pd.DataFrame, columns: list[str]):
    """Sorted group codes for the combinations of ``columns``.

    Returns ``(codes, keys)``: ``codes[i]`` in ``0..G-1`` is row ``i``'s group,
    groups sorted by the columns in order; ``keys`` is one array per column with
    each group's values. Raises ParameterError for a missing key value.
    """
    combined = np.zeros(len(data), dtype=np.int64)
    uniques = []
    for col in columns:
        codes, uniq = pd.factorize(data[col], sort=True)
        if (codes < 0).any():
            raise ParameterError(
                f"column {col!r} must have no missing values, but it is missing in "
                f"{int((codes < 0).sum())} row(s)"
            )
        combined = combined * len(uniq) + codes
        uniques.append(uniq)
    gid, inverse = np.unique(combined, return_inverse=True)
    keys = []
    rest = gid
    for uniq in reversed(uniques):
        keys.append(np.asarray(uniq)[rest % len(uniq)])
        rest = rest // len(uniq)
    return inverse.ravel(), keys[::-1]


def _group_moments(codes: np.ndarray, y: np.ndarray, n_groups: int):
    """Per-group count, mean and variance (ddof 1) of the non-NaN values of ``y``."""
    ok = ~np.isnan(y)
    c, v = (codes, y) if ok.all() else (codes[ok], y[ok])
    n = np.bincount(c, minlength=n_groups)
    s = np.bincount(c, weights=v, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
        dev = v - mean[c]
        ss = np.bincount(c, weights=dev * dev, minlength=n_groups)
        var = ss / (n - 1)
    mean[n == 0] = np.nan
    var[n < 2] = np.nan
    return n, mean, var


def _icc_arrays(codes: np.ndarray, y: np.ndarray, what: str) -> tuple[float, float]:
    """ICC(1), ICC(2) of complete values ``y`` grouped by ``codes`` (see :func:`icc`)."""
    if y.size == 0:
        warnings.warn(f"ICC of {what} is undefined: no values; returning NaN", stacklevel=3)
        return float("nan"), float("nan")
    n_j, mean_j, _ = _group_moments(codes, y, int(codes.max()) + 1)
    present = n_j > 0
    n_units = int(present.sum())
    n_total = int(y.size)
    if n_units < 2:
        warnings.warn(
            f"ICC of {what} is undefined: it needs at least 2 units, but the data have "
            f"{n_units}; returning NaN",
            stacklevel=3,
        )
        return float("nan"), float("nan")
    if n_total - n_units < 1:
        warnings.warn(
            f"ICC of {what} is undefined: every unit has a single respondent, so there "
            "is no within-unit variance; returning NaN",
            stacklevel=3,
        )
        return float("nan"), float("nan")
    grand = y.mean()
    ssb = float(np.sum(n_j[present] * (mean_j[present] - grand) ** 2))
    ssw = float(np.sum((y - mean_j[codes]) ** 2))
    msb = ssb / (n_units - 1)
    msw = ssw / (n_total - n_units)
    k = n_total / n_units
    den1 = msb + (k - 1) * msw
    icc1 = (msb - msw) / den1 if den1 > 0 else float("nan")
    icc2 = (msb - msw) / msb if msb > 0 else float("nan")
    if np.isnan(icc1) or np.isnan(icc2):
        warnings.warn(
            f"ICC of {what} is undefined: "
            + ("the values have no variance" if den1 <= 0 else "the unit means do not vary")
            + "; returning NaN",
            stacklevel=3,
        )
    return float(icc1), float(icc2)


def _rwg_arrays(codes: np.ndarray, x: np.ndarray, null_variance: float, n_groups: int):
    """Per-group n and rwg(j) of complete item matrix ``x`` (see :func:`rwg_j`)."""
    n_items = x.shape[1]
    mv = np.zeros(n_groups)
    n = np.bincount(codes, minlength=n_groups)
    for j in range(n_items):
        _, _, var = _group_moments(codes, x[:, j], n_groups)
        mv += var
    mv /= n_items
    ratio = np.minimum(mv / null_variance, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = n_items * (1.0 - ratio)
        rwg = agree / (agree + ratio)
    rwg[n < 2] = np.nan
    return n, rwg


def _nan_warn_count(values: np.ndarray, what: str, stacklevel: int = 3) -> None:
    bad = int(np.isnan(values).sum())
    if bad:
        warnings.warn(
            f"rwg(j) of {what} is undefined for {bad} unit(s) with fewer than 2 "
            "complete respondents; they are NaN and left out of the mean and median",
            stacklevel=stacklevel,
        )


# --------------------------------------------------------------------------- aggregation
def aggregate_units(
    survey: pd.DataFrame,
    *,
    scales,
    min_group_size: int = 5,
    points=(1, 5),
    unit: str = "unit_id",
    period: str = "period",
) -> pd.DataFrame:
    """Aggregate respondents' scale scores to unit x period, suppressing small groups.

    Parameters
    ----------
    survey : pandas.DataFrame
        One client's survey: one row per respondent per period, with the
        ``unit`` and ``period`` columns and the item columns.
    scales : dict
        Scale name -> items (``ScaleSpec``, mapping or list of columns; see
        :mod:`exresearch.scoring`).
    min_group_size : int, default 5
        Smallest number of respondents whose values may be shown (at least
        ``config.MIN_ALLOWED_GROUP_SIZE``, 3).
    points : tuple or dict, default (1, 5)
        ``(min, max)`` for scales without their own, or a dict scale -> tuple.
    unit, period : str, default "unit_id", "period"
        The columns identifying the unit and the period.

    Returns
    -------
    pandas.DataFrame
        Long and tidy, one row per unit x period x scale, sorted by unit, period
        and then scale in the order of ``scales``. Columns ``<unit>, <period>,
        scale, n, mean, sd, pct_favourable, suppressed, reason``:

        - ``n``: respondents of the unit-period with a score on the scale
          (at least half of its items answered);
        - ``mean``: mean score; for an ``"nps"`` scale the **eNPS** (-100..100);
        - ``sd``: standard deviation of the scores (ddof 1; for an ``"nps"``
          scale of the raw 0-10 answers); NaN with fewer than 2;
        - ``pct_favourable``: % of scored respondents whose score is at least
          ``max - 1`` (see :func:`exresearch.scoring.pct_favourable`; promoters
          for eNPS);
        - ``suppressed``: True when the unit-period has fewer than
          ``min_group_size`` respondents, or fewer than ``min_group_size`` of them
          have a score on this scale; ``mean``, ``sd`` and ``pct_favourable`` are
          then NaN;
        - ``reason``: why a row is suppressed (``"fewer than 5 respondents"`` or
          ``"fewer than 5 respondents answered this scale"``), ``""`` otherwise.

    Notes
    -----
    Suppression is applied here, at the source, so nothing downstream (tables,
    plots, CSV files, correlations) can show a small group's value. ``n`` is kept
    on suppressed rows: counts of respondents are customarily reported and the
    reports need them to explain a gap; it does reveal that a group is small
    (but not what its members answered). A publisher that must also hide small
    counts should blank ``n`` where ``suppressed`` is True.

    For an ``"nps"`` scale with answers ``x`` (0-10),
    ``eNPS = 100 * (#{x >= 9} - #{x <= 6}) / #{answered}``.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.aggregate import aggregate_units
    >>> survey = pd.DataFrame({
    ...     "unit_id": ["a"] * 5 + ["b"] * 2, "period": "2025",
    ...     "q1": [5, 4, 4, 3, 2, 5, 5.0], "q2": [4, 4, 5, 3, 1, 5, 4.0]})
    >>> out = aggregate_units(survey, scales={"team": ["q1", "q2"]})
    >>> out[["unit_id", "n", "mean", "pct_favourable", "suppressed", "reason"]]
    ... # doctest: +NORMALIZE_WHITESPACE
      unit_id  n  mean  pct_favourable  suppressed                    reason
    0       a  5   3.5            60.0       False
    1       b  2   NaN             NaN        True  fewer than 5 respondents
    """
    _check_frame(survey, "survey")
    _check_column(survey, unit, "unit")
    _check_column(survey, period, "period")
    if unit == period:
        raise ParameterError(f"`unit` and `period` must differ, but both are {unit!r}")
    m = _check_min_group_size(min_group_size)
    resolved = _resolve_scales(scales, points, survey)
    codes, (unit_keys, period_keys) = _group_codes(survey, [unit, period])
    n_groups = len(unit_keys)
    n_scales = len(resolved)
    size = np.bincount(codes, minlength=n_groups)
    small_group = size < m

    n = np.empty((n_groups, n_scales), dtype=np.int64)
    mean = np.empty((n_groups, n_scales))
    sd = np.empty((n_groups, n_scales))
    fav = np.empty((n_groups, n_scales))
    for j, s in enumerate(resolved):
        x = _item_matrix(survey, s)
        y = x[:, 0] if s.kind == "nps" else _score_matrix(x)
        n_s, mean_s, var_s = _group_moments(codes, y, n_groups)
        ok = ~np.isnan(y)
        fav_count = np.bincount(codes[ok], weights=(y[ok] >= s.favourable_cut), minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            fav[:, j] = 100.0 * fav_count / n_s
            if s.kind == "nps":
                det = np.bincount(codes[ok], weights=(y[ok] <= 6), minlength=n_groups)
                mean_s = 100.0 * (fav_count - det) / n_s
        n[:, j] = n_s
        mean[:, j] = mean_s
        sd[:, j] = np.sqrt(var_s)

    small_scale = n < m
    suppressed = small_group[:, None] | small_scale
    reason = np.full((n_groups, n_scales), "", dtype=object)
    reason[small_scale] = f"fewer than {m} respondents answered this scale"
    reason[np.broadcast_to(small_group[:, None], reason.shape)] = f"fewer than {m} respondents"
    for arr in (mean, sd, fav):
        arr[suppressed] = np.nan
        arr[n == 0] = np.nan

    return pd.DataFrame(
        {
            unit: np.repeat(unit_keys, n_scales),
            period: np.repeat(period_keys, n_scales),
            "scale": np.tile(np.array([s.name for s in resolved], dtype=object), n_groups),
            "n": n.ravel(),
            "mean": mean.ravel(),
            "sd": sd.ravel(),
            "pct_favourable": fav.ravel(),
            "suppressed": suppressed.ravel(),
            "reason": reason.ravel(),
        }
    )


def unit_error_variances(
    survey: pd.DataFrame,
    *,
    scales,
    composites=None,
    min_group_size: int = 5,
    points=(1, 5),
    unit: str = "unit_id",
    period: str = "period",
) -> pd.DataFrame:
    """Sampling variance of each unit-period mean: within-unit variance / respondents.

    A unit's score is the mean of a few respondents, so it carries sampling error whose
    variance the survey itself gives: the variance of the unit-period's respondents'
    scores divided by their number. :func:`exresearch.riclpm.riclpm` (``x_error``)
    uses it to keep that error out of the within-unit paths.

    Parameters
    ----------
    survey : pandas.DataFrame
        One client's survey, as for :func:`aggregate_units`.
    scales : dict
        Scale name -> items, as for :func:`aggregate_units`.
    composites : dict, optional
        Composite name -> list of scale names (in ``scales``) whose unit means it
        averages, for example ``{"ex_index": roles.drivers}`` or ``{"ex_composite":
        DRIVERS}``: the unit composite that the reports and the validity harness build
        as the row mean of those unit means (``mean(axis=1, skipna=False)``).
    min_group_size, points, unit, period
        As for :func:`aggregate_units`.

    Returns
    -------
    pandas.DataFrame
        One row per unit x period, sorted as :func:`aggregate_units`: ``<unit>,
        <period>``, then ``<scale>_error_var`` per scale and ``<composite>_error_var``
        per composite (the suffix is :data:`ERROR_SUFFIX`). NaN where the unit mean is
        suppressed (fewer than ``min_group_size`` respondents) or fewer than 2
        respondents have the score.

    Notes
    -----
    For a Likert scale, ``s^2 / n``: ``s^2`` the variance (ddof 1) of the ``n``
    respondents' scale scores in the unit-period. For an ``"nps"`` scale the same with
    each respondent scored +100 (promoter, 9-10), 0 or -100 (detractor, 0-6), whose
    mean is the eNPS. For a composite, the variance of the respondents' composite scores
    (the mean of their scores on the composite's scales) over the respondents scored on
    all of them, divided by their number: exact for the unit composite when every
    respondent has every score (then the mean of the unit means is the mean of the
    respondents' composites), an approximation when some miss a scale. Treating the
    unit mean as a sample of the unit's potential respondents ignores the finite
    population (a unit of 12 where 10 answer has less error than this says).

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.aggregate import unit_error_variances
    >>> survey = pd.DataFrame({"unit_id": "a", "period": "2025",
    ...                        "q1": [5, 4, 4, 3, 2.0], "q2": [4, 4, 5, 3, 1.0]})
    >>> unit_error_variances(survey, scales={"team": ["q1"], "lead": ["q2"]},
    ...                      composites={"ex": ["team", "lead"]}).round(3)
    ... # doctest: +NORMALIZE_WHITESPACE
      unit_id period  team_error_var  lead_error_var  ex_error_var
    0       a   2025            0.26            0.46         0.325
    """
    _check_frame(survey, "survey")
    _check_column(survey, unit, "unit")
    _check_column(survey, period, "period")
    m = _check_min_group_size(min_group_size)
    resolved = _resolve_scales(scales, points, survey)
    names = [s.name for s in resolved]
    composites = dict(composites or {})
    for name, members in composites.items():
        members = [members] if isinstance(members, str) else list(members)
        missing = [c for c in members if c not in names]
        if not members or missing:
            raise ParameterError(
                f"`composites[{name!r}]` must list scales among {names}, but {members!r} was "
                "passed")
        composites[name] = members
    codes, (unit_keys, period_keys) = _group_codes(survey, [unit, period])
    n_groups = len(unit_keys)
    small = np.bincount(codes, minlength=n_groups) < m
    scores = {}
    out = {unit: unit_keys, period: period_keys}
    for s in resolved:
        x = _item_matrix(survey, s)
        if s.kind == "nps":  # each respondent's part of the eNPS: +100, 0 or -100
            y = x[:, 0]
            y = np.where(np.isnan(y), np.nan, 100.0 * (y >= s.favourable_cut) - 100.0 * (y <= 6))
        else:
            y = _score_matrix(x)
        scores[s.name] = y
        out[s.name + ERROR_SUFFIX] = _error_variance(codes, y, n_groups, m, small)
    for name, members in composites.items():
        y = np.column_stack([scores[c] for c in members]).mean(axis=1)  # NaN unless all
        out[name + ERROR_SUFFIX] = _error_variance(codes, y, n_groups, m, small)
    return pd.DataFrame(out)


def _error_variance(codes, y, n_groups, m, small):
    """var(y) / n per group (ddof 1), NaN where suppressed or n < 2."""
    n, _, var = _group_moments(codes, y, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = var / n
    out[small | (n < m) | (n < 2)] = np.nan
    return out


def _outcome_error_variances(panel, cfg, outcome_names):
    """Per outcome: (1 - reliability) x its variance over the client's unit-periods when
    ``study.yml`` declares a reliability, else 0; NaN where the outcome is."""
    out = {}
    for name in outcome_names:
        values = panel[name].astype(float)
        rel = getattr(cfg.outcomes[name], "reliability", None)
        if rel is None:
            err = 0.0
        else:
            total = float(values.var(ddof=1)) if values.notna().sum() > 1 else np.nan
            err = (1.0 - float(rel)) * total
        out[name + ERROR_SUFFIX] = np.where(values.isna(), np.nan, err)
    return out


def unit_panel(study, client_id: str, *, errors: bool = False, composites=None
               ) -> pd.DataFrame:
    """One client's wide unit panel: scale scores, outcomes and covariates per unit x period.

    Parameters
    ----------
    study : exresearch.study.Study
        A loaded study (anything with ``.config`` (``scales``, ``outcomes``,
        ``covariates``, ``min_group_size``, ``points``, ``periods``),
        ``.survey(client_id)`` and ``.outcomes(client_id)``).
    client_id : str
        The client.
    errors : bool, default False
        Also add the sampling (error) variance of each value (see Returns).
    composites : dict, optional
        With ``errors``: composite name -> scales it averages (as
        :func:`unit_error_variances`), e.g. ``{"ex_composite": DRIVERS}``; only its
        error variance column is added (the callers build the composite itself as the
        row mean of the scales' columns).

    Returns
    -------
    pandas.DataFrame
        One row per unit x period found in the survey or the outcomes, sorted by
        ``unit_id`` and then by the order of ``config.periods``. Columns
        ``unit_id, period, n_respondents, suppressed``, then one column per scale
        (mean score; eNPS for ``"nps"`` scales), one per outcome and one per
        covariate, each in ``study.yml`` order. ``n_respondents`` counts the
        unit-period's survey rows (0 when it has outcomes but no survey).
        With ``errors=True`` then ``<scale>_error_var`` per scale,
        ``<composite>_error_var`` per composite (:func:`unit_error_variances`) and
        ``<outcome>_error_var`` per outcome: ``(1 - reliability) x`` the outcome's
        variance over the client's unit-periods when ``study.yml`` declares the
        outcome's ``reliability``, else 0 (no count of customers reaches the data,
        so an outcome is taken as measured without error unless declared).

    Notes
    -----
    A unit-period with fewer than ``min_group_size`` respondents has
    ``suppressed=True`` and NaN in **every** scale column (and scale error
    column); it keeps its outcome and covariate values (they are not survey
    answers).

    The outcome's error variance assumes classical test theory with one error
    variance for every unit-period: reliability = true variance / observed
    variance over unit-periods, so error variance = (1 - reliability) x observed
    variance. A reliability estimated across periods (test-retest) counts real
    change within units as error too, so it overstates the error. A scale that fewer than
    ``min_group_size`` respondents of an otherwise shown unit-period could be
    scored on is NaN too (see :func:`aggregate_units`).

    Examples
    --------
    >>> import exresearch
    >>> study = exresearch.load_study("data/demo")  # doctest: +SKIP
    >>> panel = unit_panel(study, study.clients[0])  # doctest: +SKIP
    """
    cfg = study.config
    survey = study.survey(client_id)
    outcomes = study.outcomes(client_id)
    scale_names = [str(s) for s in cfg.scales]
    outcome_names = list(cfg.outcomes)
    covariates = list(cfg.covariates)
    clash = set(scale_names) & (set(outcome_names) | set(covariates))
    if clash:
        raise ParameterError(
            f"scale names must differ from outcome and covariate names, but {sorted(clash)!r} "
            "are both"
        )
    m = _check_min_group_size(cfg.min_group_size)
    keys = ["unit_id", "period"]
    agg = aggregate_units(survey, scales=cfg.scales, min_group_size=m, points=cfg.points)
    wide = agg.pivot(index=keys, columns="scale", values="mean").reindex(columns=scale_names)
    wide.columns.name = None
    size = survey.groupby(keys, sort=False).size().rename("n_respondents")
    panel = size.to_frame().join(wide, how="left").reset_index()
    keep = keys + [c for c in outcome_names + covariates if c in outcomes.columns]
    panel = panel.merge(outcomes.loc[:, keep], on=keys, how="outer")
    panel["n_respondents"] = panel["n_respondents"].fillna(0).astype(np.int64)
    panel["suppressed"] = panel["n_respondents"] < m
    panel.loc[panel["suppressed"].to_numpy(), scale_names] = np.nan
    for c in outcome_names + covariates:
        if c not in panel.columns:
            panel[c] = np.nan
    order = {str(p): i for i, p in enumerate(getattr(cfg, "periods", None) or [])}
    rank = panel["period"].astype(str).map(order).fillna(len(order))
    panel = (
        panel.assign(_rank=rank.to_numpy())
        .sort_values(["unit_id", "_rank", "period"], kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )
    columns = keys + ["n_respondents", "suppressed"] + scale_names + outcome_names + covariates
    panel = panel.loc[:, columns]
    panel[scale_names + outcome_names + covariates] = panel[
        scale_names + outcome_names + covariates
    ].astype(float)
    if not errors:
        if composites:
            raise ParameterError(
                f"`composites` is only used with errors=True, but composites={composites!r} "
                "was passed with errors=False")
        return panel
    err = unit_error_variances(survey, scales=cfg.scales, composites=composites,
                               min_group_size=m, points=cfg.points)
    err["period"] = err["period"].astype(panel["period"].dtype)
    err_cols = [c for c in err.columns if c not in keys]
    panel = panel.merge(err, on=keys, how="left", validate="one_to_one")
    panel.loc[panel["suppressed"].to_numpy(), err_cols] = np.nan
    for name, values in _outcome_error_variances(panel, cfg, outcome_names).items():
        panel[name] = values
    return panel


# --------------------------------------------------------------------------- agreement
def icc(data: pd.DataFrame, *, unit: str, value: str) -> tuple[float, float]:
    """ICC(1) and ICC(2) of a respondent-level value grouped by unit.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent.
    unit : str
        The unit column.
    value : str
        The numeric column (e.g. a scale score); rows where it is NaN are left out.

    Returns
    -------
    tuple of float
        ``(icc1, icc2)``; both NaN with a warning when undefined (fewer than two
        units, a single respondent per unit, no variance).

    Notes
    -----
    From the one-way ANOVA of ``value`` on ``unit`` with ``N`` respondents in
    ``J`` units, mean squares ``MSB`` (df ``J - 1``) and ``MSW`` (df ``N - J``):

    .. math::

        ICC(1) = \\frac{MSB - MSW}{MSB + (k - 1) MSW}, \\qquad
        ICC(2) = \\frac{MSB - MSW}{MSB}

    with ``k = N / J``, the mean group size, as ``multilevel::ICC1`` computes it
    for unequal group sizes. Some texts use the adjusted group size
    ``k = (N - sum n_j^2 / N) / (J - 1)`` instead (e.g. Snijders & Bosker); it
    gives slightly different ICC(1) when units differ in size. ICC(2) is the
    reliability of the unit means (Spearman-Brown of ICC(1) at ``k``).

    References
    ----------
    Bliese, P. D. (2000). Within-group agreement, non-independence, and
    reliability: Implications for data aggregation and analysis. In K. J. Klein &
    S. W. J. Kozlowski (Eds.), *Multilevel theory, research, and methods in
    organizations* (pp. 349-381). Jossey-Bass.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.aggregate import icc
    >>> d = pd.DataFrame({"unit": list("aaabbb"), "x": [1, 2, 3, 3, 4, 5.0]})
    >>> [round(v, 4) for v in icc(d, unit="unit", value="x")]
    [0.625, 0.8333]
    """
    _check_frame(data)
    _check_column(data, unit, "unit")
    _check_column(data, value, "value")
    y = pd.to_numeric(data[value], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    codes, _ = _unit_codes(data, unit)
    ok = ~np.isnan(y) & (codes >= 0)
    return _icc_arrays(codes[ok], y[ok], repr(value))


def rwg_j(data: pd.DataFrame, *, unit: str, items, points) -> pd.DataFrame:
    """Within-unit agreement rwg(j) of a multi-item scale, one row per unit.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent.
    unit : str
        The unit column.
    items : list of str
        The scale's item columns (one item gives rwg).
    points : tuple
        ``(min, max)`` of the response scale; ``A = max - min + 1`` options.

    Returns
    -------
    pandas.DataFrame
        Columns ``<unit>, n, rwg_j`` (the first named as the ``unit`` column),
        sorted by unit, for units with at least one respondent who answered every
        item. ``n`` counts those respondents; ``rwg_j`` is NaN (with one warning)
        for units with fewer than 2.

    Notes
    -----
    As ``multilevel::rwg.j`` (and ``multilevel::rwg`` for one item): respondents
    with a missing item are left out (listwise deletion within the scale); for
    each unit the item variances (ddof 1) are averaged into ``s``, capped at the
    null variance ``sigma^2_EU = (A^2 - 1) / 12`` of a uniform answer over ``A``
    options, and with ``J`` items

    .. math::

        r_{wg(J)} = \\frac{J (1 - s / \\sigma^2_{EU})}{J (1 - s / \\sigma^2_{EU}) + s / \\sigma^2_{EU}}

    so a unit whose answers vary more than the uniform null gets 0 and a unit
    in full agreement gets 1. Reverse-coding items does not change it.

    References
    ----------
    James, L. R., Demaree, R. G., & Wolf, G. (1984). Estimating within-group
    interrater reliability with and without response bias. *Journal of Applied
    Psychology*, 69(1), 85-98.

    Bliese, P. D. (2000). Within-group agreement, non-independence, and
    reliability. In K. J. Klein & S. W. J. Kozlowski (Eds.), *Multilevel theory,
    research, and methods in organizations* (pp. 349-381). Jossey-Bass.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.aggregate import rwg_j
    >>> d = pd.DataFrame({"unit": list("aaabbb"), "q1": [4, 4, 5, 1, 3, 5.0],
    ...                   "q2": [4, 5, 5, 2, 3, 5.0]})
    >>> rwg_j(d, unit="unit", items=["q1", "q2"], points=(1, 5)).round(4)
      unit  n   rwg_j
    0    a  3  0.9091
    1    b  3  0.0000
    """
    _check_frame(data)
    _check_column(data, unit, "unit")
    if isinstance(items, str):
        items = [items]
    scale = _resolve_scales({"items": list(items)}, points, data)[0]
    return _rwg_frame(data, unit, scale)


def _unit_codes(data: pd.DataFrame, unit: str):
    """Sorted integer codes of the unit column (-1 where missing) and the units."""
    codes, uniq = pd.factorize(data[unit], sort=True)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniq)


def _complete_rows(data: pd.DataFrame, codes: np.ndarray, scale: _Scale):
    """Item matrix and unit codes of the respondents who answered every item."""
    x = _item_matrix(data, scale)
    ok = ~np.isnan(x).any(axis=1) & (codes >= 0)
    return x[ok], codes[ok]


def _rwg_frame(data: pd.DataFrame, unit: str, scale: _Scale) -> pd.DataFrame:
    all_codes, uniq = _unit_codes(data, unit)
    x, codes = _complete_rows(data, all_codes, scale)
    n, rwg = _rwg_arrays(codes, x, scale.null_variance, len(uniq))
    keep = n > 0
    _nan_warn_count(rwg[keep], "the items", stacklevel=4)
    return pd.DataFrame({unit: uniq[keep], "n": n[keep].astype(np.int64), "rwg_j": rwg[keep]})


def agreement(data: pd.DataFrame, *, unit: str, scales, points) -> pd.DataFrame:
    """Reliability, between-unit variance and within-unit agreement, one row per scale.

    The statistics that justify using unit means of a scale (Bliese 2000).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent, with the ``unit`` column and the item columns.
    unit : str
        The unit column.
    scales : dict
        Scale name -> list of item columns (a single-item scale is allowed);
        ``ScaleSpec`` objects or mappings with ``items``/``reverse``/``points``
        also work, reverse items being recoded ``min + max - x``.
    points : tuple or dict
        ``(min, max)`` of the answers, or a dict scale -> ``(min, max)``.

    Returns
    -------
    pandas.DataFrame
        Indexed by scale name (index name ``scale``), in the order of ``scales``,
        with columns ``n_respondents, n_units, alpha, icc1, icc2, rwg_j_mean,
        rwg_j_median``: respondents who answered every item of the scale and
        their units; Cronbach's alpha (NaN for a single item); ICC(1) and ICC(2)
        of the scale mean; mean and median rwg(j) across units with at least 2
        such respondents.

    Notes
    -----
    All statistics of a scale use the same respondents: those who answered
    **every** item of the scale (listwise deletion within the scale, as
    ``multilevel::rwg.j`` does). So alpha equals
    ``psych::alpha(na.omit(items))$total$raw_alpha`` (psych's default pairwise
    covariances differ only when answers are missing), ICC(1)/ICC(2) equal
    ``multilevel::ICC1/ICC2(aov(rowMeans(items) ~ unit))`` on those respondents
    (k = N/J, see :func:`icc`), and rwg(j) is :func:`rwg_j`. These are not the
    respondents of :func:`aggregate_units`, which scores anyone who answered at
    least half of the items. Undefined values are NaN with a warning.

    Pass one period at a time (e.g. ``survey[survey["period"] == p]``): with
    several periods in ``data`` the same unit's waves are pooled into one group.

    References
    ----------
    Bliese, P. D. (2000). Within-group agreement, non-independence, and
    reliability: Implications for data aggregation and analysis. In K. J. Klein &
    S. W. J. Kozlowski (Eds.), *Multilevel theory, research, and methods in
    organizations* (pp. 349-381). Jossey-Bass.

    Cronbach, L. J. (1951). Coefficient alpha and the internal structure of
    tests. *Psychometrika*, 16(3), 297-334.

    James, L. R., Demaree, R. G., & Wolf, G. (1984). Estimating within-group
    interrater reliability with and without response bias. *Journal of Applied
    Psychology*, 69(1), 85-98.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch import agreement
    >>> d = pd.DataFrame({"unit": list("aaabbb"), "q1": [4, 4, 5, 1, 3, 2.0],
    ...                   "q2": [4, 5, 5, 2, 3, 2.0]})
    >>> agreement(d, unit="unit", scales={"team": ["q1", "q2"], "q1": ["q1"]},
    ...           points=(1, 5)).round(3)  # doctest: +NORMALIZE_WHITESPACE
           n_respondents  n_units  alpha   icc1   icc2  rwg_j_mean  rwg_j_median
    scale
    team               6        2  0.966  0.861  0.949       0.855         0.855
    q1                 6        2    NaN  0.789  0.918       0.667         0.667
    """
    _check_frame(data)
    _check_column(data, unit, "unit")
    rows = []
    names = []
    resolved = _resolve_scales(scales, points, data)
    all_codes, uniq = _unit_codes(data, unit)
    for s in resolved:
        x, codes = _complete_rows(data, all_codes, s)
        n_resp = int(x.shape[0])
        _, alpha, _ = _alpha_stats(x, s.name, complete=True)
        if n_resp:
            score = x.mean(axis=1)
            icc1, icc2 = _icc_arrays(codes, score, f"scale {s.name!r}")
            n_j, rwg = _rwg_arrays(codes, x, s.null_variance, len(uniq))
            rwg = rwg[n_j > 0]
            _nan_warn_count(rwg, f"scale {s.name!r}")
        else:
            warnings.warn(
                f"scale {s.name!r} has no respondent who answered every item; "
                "its agreement statistics are NaN",
                stacklevel=2,
            )
            icc1 = icc2 = float("nan")
            rwg = np.array([np.nan])
            n_j = np.zeros(0)
        ok = rwg[~np.isnan(rwg)]
        rows.append(
            (
                n_resp,
                int((n_j > 0).sum()),
                alpha,
                icc1,
                icc2,
                float(ok.mean()) if ok.size else float("nan"),
                float(np.median(ok)) if ok.size else float("nan"),
            )
        )
        names.append(s.name)
    return pd.DataFrame(rows, columns=_AGREEMENT_COLUMNS, index=pd.Index(names, name="scale"))
