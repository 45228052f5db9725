"""Scale scores, eNPS, % favourable and reliability, from respondent answers.

Everything here works on one row per respondent (a client's survey) and is
vectorised over respondents: a scale is scored with array arithmetic over the
item matrix, never with a Python loop per respondent or per unit.

A *scale specification* (the ``scales`` argument of every function) is a dict
``name -> spec`` where ``spec`` is one of

- an object with attributes ``items``, ``reverse``, ``points`` and ``kind``
  (``exresearch.study.ScaleSpec``; missing attributes fall back to no reverse
  items, the ``points`` argument and ``"likert"``);
- a mapping with the same keys (``{"items": [...], "reverse": [...], "kind": "nps"}``);
- a list of item columns (a Likert scale, no reverse items).

For the list and mapping forms without ``points``, the ``points`` argument gives
the response range: a ``(min, max)`` tuple for every scale, or a dict
``scale -> (min, max)``. An ``"nps"`` scale is one 0-10 item; its range is
always ``(0, 10)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .exceptions import ParameterError

__all__ = [
    "score_scales",
    "enps",
    "pct_favourable",
    "reliability",
    "item_total",
]

#: Columns that identify a respondent, kept in front of the scores when present.
_ID_COLUMNS = ("unit_id", "period", "respondent_id")
_KINDS = ("likert", "nps")
_NPS_POINTS = (0, 10)


@dataclass(frozen=True)
class _Scale:
    """A scale resolved to plain values (private; see the module docstring)."""

    name: str
    items: tuple[str, ...]
    reverse: tuple[str, ...]
    points: tuple[int, int]
    kind: str

    @property
    def favourable_cut(self) -> float:
        """Lowest value counted as favourable: the top two response options."""
        return self.points[1] - 1

    @property
    def null_variance(self) -> float:
        """Variance of the uniform null over ``A`` options, ``(A^2 - 1) / 12``."""
        a = self.points[1] - self.points[0] + 1
        return (a * a - 1) / 12.0


def _check_points(value, where: str) -> tuple[int, int]:
    """Return ``value`` as an ``(min, max)`` pair of numbers or raise ParameterError."""
    try:
        lo, hi = value
        lo_f, hi_f = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{where} must be a (min, max) pair of numbers, but {value!r} was passed"
        ) from None
    if not (math.isfinite(lo_f) and math.isfinite(hi_f)) or lo_f >= hi_f:
        raise ParameterError(
            f"{where} must be a (min, max) pair with min < max, but {value!r} was passed"
        )
    lo_v = int(lo_f) if lo_f.is_integer() else lo_f
    hi_v = int(hi_f) if hi_f.is_integer() else hi_f
    return (lo_v, hi_v)


def _get(spec, key, default=None):
    if isinstance(spec, Mapping):
        return spec.get(key, default)
    return getattr(spec, key, default)


def _resolve_scales(scales, points=(1, 5), data=None) -> list[_Scale]:
    """Turn the ``scales``/``points`` arguments into a list of ``_Scale``.

    Raises ParameterError naming the argument, what is allowed and what was
    passed; when ``data`` is given, also checks that every item is a column.
    """
    if not isinstance(scales, Mapping) or len(scales) == 0:
        raise ParameterError(
            "`scales` must be a non-empty dict scale name -> items (list of columns, "
            f"mapping or ScaleSpec), but {scales!r} was passed"
        )
    if not isinstance(points, Mapping):
        default_points = _check_points(points, "`points`")
    out = []
    for name, spec in scales.items():
        if isinstance(spec, str):
            raise ParameterError(
                f"`scales[{name!r}]` must be a list of item columns, not the string {spec!r}"
            )
        if isinstance(spec, Sequence):
            items, reverse, spec_points, kind = tuple(spec), (), None, "likert"
        else:
            items = _get(spec, "items")
            if items is None:
                raise ParameterError(
                    f"`scales[{name!r}]` must be a list of items, a mapping with 'items' or "
                    f"an object with an `items` attribute, but {spec!r} was passed"
                )
            items = (items,) if isinstance(items, str) else tuple(items)
            reverse = _get(spec, "reverse", ()) or ()
            reverse = (reverse,) if isinstance(reverse, str) else tuple(reverse)
            spec_points = _get(spec, "points")
            kind = _get(spec, "kind", "likert") or "likert"
        if len(items) == 0:
            raise ParameterError(f"`scales[{name!r}]` has no items")
        if len(set(items)) != len(items):
            raise ParameterError(f"`scales[{name!r}]` lists an item twice: {list(items)!r}")
        if kind not in _KINDS:
            raise ParameterError(
                f"the kind of scale {name!r} must be one of {list(_KINDS)}, "
                f"but {kind!r} was passed"
            )
        bad = [r for r in reverse if r not in items]
        if bad:
            raise ParameterError(
                f"reverse items of scale {name!r} must be among its items {list(items)}, "
                f"but {bad!r} were passed"
            )
        if kind == "nps":
            if len(items) != 1:
                raise ParameterError(
                    f"an 'nps' scale has exactly one 0-10 item, but scale {name!r} has "
                    f"{len(items)}: {list(items)!r}"
                )
            if reverse:
                raise ParameterError(f"the 'nps' scale {name!r} cannot have reverse items")
            pts = _NPS_POINTS
        elif spec_points is not None:
            pts = _check_points(spec_points, f"the points of scale {name!r}")
        elif isinstance(points, Mapping):
            if name not in points:
                raise ParameterError(
                    f"`points` is a dict but has no entry for scale {name!r}; "
                    f"it has {list(points)!r}"
                )
            pts = _check_points(points[name], f"`points[{name!r}]`")
        else:
            pts = default_points
        out.append(_Scale(str(name), items, reverse, pts, kind))
    if data is not None:
        missing = [(s.name, i) for s in out for i in s.items if i not in data.columns]
        if missing:
            raise ParameterError(
                "every item of `scales` must be a column of `data`; missing "
                + ", ".join(f"{i!r} (scale {s!r})" for s, i in missing)
            )
    return out


def _item_matrix(data: pd.DataFrame, scale: _Scale, *, check_range: bool = True) -> np.ndarray:
    """Return the scale's answers as a float matrix, reverse items flipped.

    Reverse coding is ``min + max - x``. Raises ParameterError when an answer is
    outside ``scale.points`` (a wrong ``points`` would silently mis-reverse).
    """
    columns = []
    for item in scale.items:
        try:
            columns.append(data[item].to_numpy(dtype=float, na_value=np.nan))
        except (TypeError, ValueError):
            raise ParameterError(
                f"item {item!r} of scale {scale.name!r} must be numeric, but it has dtype "
                f"{data[item].dtype}"
            ) from None
    # column_stack copies into a C-ordered matrix (fast row operations, safe to modify)
    x = np.column_stack(columns)
    lo, hi = scale.points
    if check_range:
        with np.errstate(invalid="ignore"):
            outside = (x < lo) | (x > hi)
        if outside.any():
            cols = np.flatnonzero(outside.any(axis=0))
            detail = ", ".join(
                f"{scale.items[c]!r} ({int(outside[:, c].sum())} answers, e.g. "
                f"{x[outside[:, c], c][0]:g})"
                for c in cols
            )
            raise ParameterError(
                f"answers of scale {scale.name!r} must lie within points={scale.points!r}, "
                f"but these items have values outside: {detail}"
            )
    if scale.reverse:
        rev = [scale.items.index(r) for r in scale.reverse]
        x[:, rev] = lo + hi - x[:, rev]
    return x


def _score_matrix(x: np.ndarray) -> np.ndarray:
    """Row means of ``x`` over answered items; NaN with fewer than half answered.

    Overwrites the NaN of ``x`` with 0 (callers pass a private copy).
    """
    missing = np.isnan(x)
    count = x.shape[1] - missing.sum(axis=1)
    x[missing] = 0.0
    total = x.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = total / count
    score[2 * count < x.shape[1]] = np.nan
    return score


def _check_frame(data, name: str = "data") -> None:
    if not isinstance(data, pd.DataFrame):
        raise ParameterError(
            f"`{name}` must be a pandas DataFrame, but {type(data).__name__} was passed"
        )


def score_scales(survey: pd.DataFrame, *, scales, points=(1, 5)) -> pd.DataFrame:
    """Score every scale for every respondent.

    Parameters
    ----------
    survey : pandas.DataFrame
        One row per respondent (per period) with the item columns; NaN is a
        missing answer.
    scales : dict
        Scale name -> items, as described in the module docstring.
    points : tuple or dict, default (1, 5)
        ``(min, max)`` of the answers of scales that do not carry their own, or a
        dict scale -> ``(min, max)``.

    Returns
    -------
    pandas.DataFrame
        One row per row of ``survey``, in the same order and with the same index:
        the identifier columns ``unit_id, period, respondent_id`` that ``survey``
        has, then one float column per scale, in the order of ``scales``. For a
        ``"likert"`` scale the mean of the answered items after reverse coding;
        for an ``"nps"`` scale the raw 0-10 answer.

    Raises
    ------
    ParameterError
        For a malformed ``scales`` or ``points``, an item that is not a column,
        or an answer outside the scale's points.

    Notes
    -----
    A reverse item is recoded as ``min + max - x``. A respondent gets a score on
    a scale when at least half of its ``J`` items are answered
    (``2 * answered >= J``: 1 of 1, 1 of 2, 2 of 3, 2 of 4, 3 of 5); the score is
    the mean of the answered items, otherwise NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.scoring import score_scales
    >>> survey = pd.DataFrame({"respondent_id": ["a", "b", "c"],
    ...                        "q1": [5.0, 4.0, None], "q2": [1.0, None, None],
    ...                        "nps": [10.0, 6.0, 8.0]})
    >>> scales = {"team": {"items": ["q1", "q2"], "reverse": ["q2"]},
    ...           "enps": {"items": ["nps"], "kind": "nps"}}
    >>> score_scales(survey, scales=scales)
      respondent_id  team  enps
    0             a   5.0  10.0
    1             b   4.0   6.0
    2             c   NaN   8.0
    """
    _check_frame(survey, "survey")
    resolved = _resolve_scales(scales, points, survey)
    ids = [c for c in _ID_COLUMNS if c in survey.columns]
    out = survey.loc[:, ids].copy()
    for s in resolved:
        out[s.name] = _score_matrix(_item_matrix(survey, s))
    return out


def _as_float_array(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ParameterError(f"`{name}` must be numeric, but {values!r} was passed") from None
    return arr


def enps(values) -> float:
    """Employee Net Promoter Score of 0-10 answers.

    Parameters
    ----------
    values : array-like
        Answers to the 0-10 recommendation item; NaN are ignored.

    Returns
    -------
    float
        ``100 * (promoters - detractors) / answered``, between -100 and 100; NaN
        (with a warning) when nobody answered.

    Raises
    ------
    ParameterError
        When an answer is outside 0-10.

    Notes
    -----
    Promoters answer 9 or 10, detractors 0 to 6, passives 7 or 8 (Reichheld
    2003). Missing answers count in neither numerator nor denominator.

    References
    ----------
    Reichheld, F. F. (2003). The one number you need to grow. *Harvard Business
    Review*, 81(12), 46-54.

    Examples
    --------
    >>> from exresearch.scoring import enps
    >>> enps([10, 9, 8, 7, 6, 0, float("nan")])
    0.0
    >>> round(enps([10, 10, 9, 5]), 1)
    50.0
    """
    x = _as_float_array(values, "values")
    x = x[~np.isnan(x)]
    if ((x < 0) | (x > 10)).any():
        raise ParameterError(
            "`values` of an eNPS item must lie within 0-10, but "
            f"{x[(x < 0) | (x > 10)][0]:g} was passed"
        )
    if x.size == 0:
        warnings.warn("eNPS is undefined without answers; returning NaN", stacklevel=2)
        return float("nan")
    return float(100.0 * ((x >= 9).sum() - (x <= 6).sum()) / x.size)


def pct_favourable(values, *, points=(1, 5)) -> float:
    """Percentage of favourable answers: the top two response options.

    Parameters
    ----------
    values : array-like
        Item answers or respondents' scale scores; NaN are ignored.
    points : tuple, default (1, 5)
        ``(min, max)`` of the response scale.

    Returns
    -------
    float
        Percentage (0-100) of non-missing values ``>= max - 1``; NaN (with a
        warning) when there are none.

    Notes
    -----
    On a single item this is the usual "top two boxes" (4 or 5 on a 1-5 scale).
    On scale *scores* (means of items), exresearch counts a respondent as
    favourable when the scale mean is at least ``max - 1`` (on 1-5: a mean of
    4.0 or more), i.e. the respondent's average answer is in the top two boxes.
    This is the respondent-level definition used by :func:`aggregate_units`; it is
    not the share of favourable item answers pooled over items, which weights
    respondents by how many items they answered. On a 0-10 eNPS item it is the
    share of promoters (9-10).

    Examples
    --------
    >>> from exresearch.scoring import pct_favourable
    >>> pct_favourable([5, 4, 3, 2, float("nan")])
    50.0
    >>> pct_favourable([3.8, 4.0, 4.2, 4.6])
    75.0
    """
    lo, hi = _check_points(points, "`points`")
    x = _as_float_array(values, "values")
    x = x[~np.isnan(x)]
    if x.size == 0:
        warnings.warn("% favourable is undefined without answers; returning NaN", stacklevel=2)
        return float("nan")
    return float(100.0 * (x >= hi - 1).sum() / x.size)


def _alpha_from_cov(c: np.ndarray) -> float:
    """Cronbach's alpha from an item covariance matrix (NaN when undefined)."""
    k = c.shape[0]
    total = c.sum()
    if k < 2 or not np.isfinite(total) or total <= 0:
        return float("nan")
    return float(k / (k - 1) * (1.0 - np.trace(c) / total))


def _feldt_ci(alpha: float, n: int, k: int, ci: float) -> tuple[float, float]:
    """Feldt (1987) confidence interval for alpha, as pingouin and psych::alpha.ci."""
    if not np.isfinite(alpha) or n < 2 or k < 2:
        return float("nan"), float("nan")
    df1, df2 = n - 1, (n - 1) * (k - 1)
    tail = (1.0 - ci) / 2.0
    low = 1.0 - (1.0 - alpha) * stats.f.isf(tail, df1, df2)
    high = 1.0 - (1.0 - alpha) * stats.f.isf(1.0 - tail, df1, df2)
    return float(low), float(high)


def _complete(x: np.ndarray) -> np.ndarray:
    return x[~np.isnan(x).any(axis=1)]


def _alpha_stats(x: np.ndarray, name: str, *, warn: bool = True, complete: bool = False):
    """(n, alpha, cov) on the complete cases of item matrix ``x``, warning if undefined.

    ``complete=True`` says ``x`` has no NaN already (skips the row filter).
    """
    xc = x if complete else _complete(x)
    n, k = xc.shape
    if k < 2:
        return n, float("nan"), None
    if n < 2:
        if warn:
            warnings.warn(
                f"Cronbach's alpha of scale {name!r} is undefined: {n} respondent(s) "
                "answered every item (at least 2 needed); returning NaN",
                stacklevel=3,
            )
        return n, float("nan"), None
    c = np.cov(xc, rowvar=False, ddof=1)
    alpha = _alpha_from_cov(c)
    if np.isnan(alpha) and warn:
        warnings.warn(
            f"Cronbach's alpha of scale {name!r} is undefined: the total score has no "
            "variance among the complete cases; returning NaN",
            stacklevel=3,
        )
    return n, alpha, c


def reliability(survey: pd.DataFrame, *, scales, points=(1, 5), ci: float = 0.95) -> pd.DataFrame:
    """Cronbach's alpha with its Feldt confidence interval, one row per scale.

    Parameters
    ----------
    survey : pandas.DataFrame
        One row per respondent with the item columns (one client's survey).
    scales : dict
        Scale name -> items, as described in the module docstring.
    points : tuple or dict, default (1, 5)
        ``(min, max)`` for scales without their own, or a dict scale -> tuple.
    ci : float, default 0.95
        Confidence level of the interval.

    Returns
    -------
    pandas.DataFrame
        Columns ``scale, n, n_items, alpha, ci_low, ci_high``: ``n`` respondents
        who answered every item of the scale, ``n_items`` its items. Single-item
        scales (eNPS) have NaN alpha and interval; a scale whose alpha is
        undefined (fewer than 2 complete respondents, no variance) has NaN and a
        warning.

    Notes
    -----
    Missing answers are handled by **listwise deletion within the scale**: alpha
    is computed on respondents who answered all of the scale's items, with
    reverse items recoded. This equals ``psych::alpha(na.omit(items))$total$raw_alpha``
    and ``pingouin.cronbach_alpha(items, nan_policy="listwise")`` (psych's default
    ``use="pairwise"`` differs when answers are missing). With ``k`` items, item
    covariance matrix ``C`` and ``n`` complete respondents,

    .. math:: \\alpha = \\frac{k}{k-1}\\left(1 - \\frac{\\operatorname{tr} C}{\\sum_{ij} C_{ij}}\\right)

    and the interval is Feldt's,
    ``1 - (1 - alpha) F_{1-q}(n-1, (n-1)(k-1))`` for the bounds ``q = (1-ci)/2``
    and ``1-q``; it equals ``psych::alpha()$feldt``. Unlike pingouin, the bounds
    are not rounded and ``n`` is the number of complete cases (pingouin 0.7 uses
    the number of rows before listwise deletion in the interval).

    References
    ----------
    Cronbach, L. J. (1951). Coefficient alpha and the internal structure of
    tests. *Psychometrika*, 16(3), 297-334.

    Feldt, L. S., Woodruff, D. J., & Salih, F. A. (1987). Statistical inference for
    coefficient alpha. *Applied Psychological Measurement*, 11(1), 93-103.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.scoring import reliability
    >>> survey = pd.DataFrame({"q1": [1, 2, 3, 4, 5.0], "q2": [2, 2, 3, 5, 4.0],
    ...                        "q3": [1, 3, 3, 4, 5.0]})
    >>> reliability(survey, scales={"team": ["q1", "q2", "q3"]}).round(3)
      scale  n  n_items  alpha  ci_low  ci_high
    0  team  5        3  0.945   0.723    0.994
    """
    _check_frame(survey, "survey")
    if not (isinstance(ci, float | int) and 0 < ci < 1):
        raise ParameterError(f"`ci` must be a number between 0 and 1, but {ci!r} was passed")
    rows = []
    for s in _resolve_scales(scales, points, survey):
        x = _item_matrix(survey, s)
        n, alpha, _ = _alpha_stats(x, s.name)
        low, high = _feldt_ci(alpha, n, len(s.items), ci)
        rows.append((s.name, n, len(s.items), alpha, low, high))
    return pd.DataFrame(rows, columns=["scale", "n", "n_items", "alpha", "ci_low", "ci_high"])


def item_total(survey: pd.DataFrame, *, scales, points=(1, 5)) -> pd.DataFrame:
    """Item statistics for the data-quality report, one row per item.

    Parameters
    ----------
    survey : pandas.DataFrame
        One row per respondent with the item columns.
    scales : dict
        Scale name -> items, as described in the module docstring.
    points : tuple or dict, default (1, 5)
        ``(min, max)`` for scales without their own, or a dict scale -> tuple.

    Returns
    -------
    pandas.DataFrame
        Columns ``scale, item, reversed, n, n_missing, mean, sd, r_drop,
        alpha_if_deleted``, items in scale order. ``n``, ``n_missing``, ``mean``
        and ``sd`` use every answer to the item (after reverse coding, so a high
        value is always favourable); ``r_drop`` (corrected item-total
        correlation) and ``alpha_if_deleted`` use the respondents who answered
        every item of the scale. Both are NaN for single-item scales;
        ``alpha_if_deleted`` is NaN for two-item scales (one item is left), and
        ``r_drop`` is NaN with a warning for an item without variance.

    Notes
    -----
    With item covariance matrix ``C`` on complete cases, item ``i`` and the
    rest score ``R_i = sum_{j != i} x_j``,
    ``r_drop_i = cov(x_i, R_i) / (sd(x_i) sd(R_i))`` and ``alpha_if_deleted_i``
    is Cronbach's alpha of ``C`` without row and column ``i``. These equal
    ``psych::alpha()$item.stats$r.drop`` and ``$alpha.drop$raw_alpha`` on complete
    cases.

    References
    ----------
    Cronbach, L. J. (1951). Coefficient alpha and the internal structure of
    tests. *Psychometrika*, 16(3), 297-334.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.scoring import item_total
    >>> survey = pd.DataFrame({"q1": [1, 2, 3, 4, 5.0], "q2": [2, 2, 3, 5, 4.0],
    ...                        "q3": [5, 3, 3, 2, 1.0]})
    >>> out = item_total(survey, scales={"team": {"items": ["q1", "q2", "q3"],
    ...                                            "reverse": ["q3"]}})
    >>> out[["item", "reversed", "mean", "r_drop"]].round(3)
      item  reversed  mean  r_drop
    0   q1     False   3.0   0.970
    1   q2     False   3.2   0.809
    2   q3      True   3.2   0.899
    """
    _check_frame(survey, "survey")
    frames = []
    for s in _resolve_scales(scales, points, survey):
        x = _item_matrix(survey, s)
        k = len(s.items)
        missing = np.isnan(x)
        n = len(x) - missing.sum(axis=0)
        filled = np.where(missing, 0.0, x)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = filled.sum(axis=0) / n
            dev = np.where(missing, 0.0, x - mean)
            sd = np.sqrt((dev * dev).sum(axis=0) / (n - 1))
        mean[n == 0] = np.nan
        sd[n < 2] = np.nan
        r_drop = np.full(k, np.nan)
        a_drop = np.full(k, np.nan)
        if k >= 2:
            _, _, c = _alpha_stats(x, s.name, warn=False)
            if c is not None:
                row = c.sum(axis=1)
                total = c.sum()
                var_i = np.diag(c)
                var_rest = total - 2 * row + var_i
                with np.errstate(invalid="ignore", divide="ignore"):
                    r_drop = (row - var_i) / np.sqrt(var_i * var_rest)
                r_drop[~np.isfinite(r_drop)] = np.nan
                flat = [s.items[i] for i in np.flatnonzero(var_i == 0)]
                if flat:
                    warnings.warn(
                        f"items {flat!r} of scale {s.name!r} have no variance among the "
                        "complete cases; their corrected item-total r is NaN",
                        stacklevel=2,
                    )
                if k >= 3:
                    trace = np.trace(c)
                    with np.errstate(invalid="ignore", divide="ignore"):
                        a_drop = (k - 1) / (k - 2) * (1.0 - (trace - var_i) / var_rest)
                    a_drop[~(var_rest > 0)] = np.nan
        frames.append(
            pd.DataFrame(
                {
                    "scale": s.name,
                    "item": list(s.items),
                    "reversed": [i in s.reverse for i in s.items],
                    "n": n.astype(np.int64),
                    "n_missing": (len(x) - n).astype(np.int64),
                    "mean": mean,
                    "sd": sd,
                    "r_drop": r_drop,
                    "alpha_if_deleted": a_drop,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
