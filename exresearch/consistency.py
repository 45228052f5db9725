"""Consistency within one client: how much units differ, and which stand apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import as_columns as _as_list
from ._checks import check_alpha as _check_alpha
from ._checks import check_choice as _check_choice
from ._checks import check_columns as _check_columns
from ._checks import check_frame as _check_frame
from ._stats import (
    MIN_PAIRS,
    _p_adjust,
    _warn,
)
from .exceptions import ParameterError

__all__ = [
    "unit_consistency",
    "standout_units",
]


def unit_consistency(data, *, scales, unit="unit_id"):
    """How much each EX scale varies between the client's units.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit panel for one period (several rows per unit are averaged first).
    scales : str or list of str
        Scale columns.
    unit : str
        Unit column.

    Returns
    -------
    pandas.DataFrame
        One row per scale, columns ``scale, n_units, mean, sd, min, q1,
        median, q3, iqr, range, cv, note``: statistics over unit means (sd
        with ddof=1; quartiles by linear interpolation), ``range`` = max - min,
        ``cv`` = sd / mean (NaN when the mean is not positive, e.g. eNPS),
        ``note`` why a value is NaN.

    Notes
    -----
    :math:`CV = s / \\bar{x}`, :math:`IQR = Q_3 - Q_1` of the unit means.
    Suppressed unit-periods (NaN) are left out.

    References
    ----------
    Bliese, P. D. (2000). Within-group agreement, non-independence, and
    reliability. In *Multilevel Theory, Research, and Methods in
    Organizations* (pp. 349-381). Jossey-Bass.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.consistency import unit_consistency
    >>> d = pd.DataFrame({"unit_id": list("abcd"), "wellbeing": [3.0, 3.5, 4.0, 4.5]})
    >>> res = unit_consistency(d, scales="wellbeing")
    >>> int(res.loc[0, "n_units"]), float(res.loc[0, "iqr"]), float(res.loc[0, "range"])
    (4, 0.75, 1.5)
    """
    _check_frame(data)
    scales = _as_list("scales", scales)
    _check_columns(data, "scales", scales)
    _check_columns(data, "unit", [unit], numeric=False)
    means = data.groupby(unit, sort=False)[scales].mean()
    rows = []
    for s in scales:
        v = means[s].dropna().to_numpy(dtype=float)
        row = {"scale": s, "n_units": len(v), "note": ""}
        if len(v) < 2:
            row["note"] = f"too few units: {len(v)} unit(s) with a score (need at least 2)"
            _warn("unit_consistency", f"{s}: {row['note']}; returning NaN")
        else:
            q1, med, q3 = np.percentile(v, [25, 50, 75])
            mean, sd = v.mean(), v.std(ddof=1)
            row.update(mean=mean, sd=sd, min=v.min(), q1=q1, median=med, q3=q3, iqr=q3 - q1,
                       range=np.ptp(v), cv=sd / mean if mean > 0 else np.nan)
            if not mean > 0:
                row["note"] = "cv undefined: the mean is not positive"
        rows.append(row)
    out = pd.DataFrame(rows).reindex(
        columns=["scale", "n_units", "mean", "sd", "min", "q1", "median", "q3", "iqr", "range",
                 "cv", "note"]
    )
    for c in out.columns[2:-1]:
        out[c] = out[c].astype(float)
    out["n_units"] = out["n_units"].astype(int)
    return out


def standout_units(data, *, scales, unit="unit_id", level="auto", method="holm", alpha=0.05,
                   min_group_size=5):
    """Units whose score differs from the client's mean, with multiple-comparison control.

    Parameters
    ----------
    data : pandas.DataFrame
        Either respondent scores (``score_scales`` output: several rows per
        unit, a ``respondent_id`` column) or a unit panel for one period (one
        row per unit).
    scales : str or list of str
        Scale columns.
    unit : str
        Unit column.
    level : {"auto", "respondent", "unit"}
        ``"auto"`` means respondent level if ``respondent_id`` is a column.
    method : {"holm", "fdr_bh", "bonf"}
        Adjustment across the units of each scale (pingouin.multicomp).
    alpha : float
        Level at which an adjusted p-value flags a unit.
    min_group_size : int
        Respondent level: units with fewer respondents are suppressed (NaN,
        no mean shown).

    Returns
    -------
    pandas.DataFrame
        One row per scale x unit, columns ``scale, <unit>, n, mean,
        client_mean, diff, stat, p_val, p_corr, flag, test, note``: ``n``
        respondents (or 1 at unit level), ``diff`` = mean - client_mean,
        ``stat`` the t statistic, ``p_corr`` adjusted across units,
        ``flag`` ``"high"``/``"low"`` when ``p_corr < alpha`` else
        ``"typical"`` (``""`` when untested), ``test`` the test used.

    Notes
    -----
    Respondent level: one-sample t-test of the unit's respondent scores
    against the client mean of all respondents, :math:`t = (\\bar{x}_u -
    \\bar{x}) / (s_u/\\sqrt{n_u})`, df :math:`n_u - 1`. Unit level (no
    respondent data): a leave-one-out prediction test, :math:`t =
    (m_u - \\bar{m}_{-u}) / (s_{-u}\\sqrt{1 + 1/(J-1)})`, df :math:`J - 2`,
    where :math:`\\bar{m}_{-u}`, :math:`s_{-u}` are the mean and SD of the
    other J - 1 unit means; ``client_mean`` is then :math:`\\bar{m}_{-u}`.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure.
    *Scandinavian Journal of Statistics*, 6(2), 65-70.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.consistency import standout_units
    >>> d = pd.DataFrame({"unit_id": list("abcdefgh"),
    ...                   "wellbeing": [3.4, 3.5, 3.6, 3.5, 3.45, 3.55, 3.5, 4.9]})
    >>> res = standout_units(d, scales="wellbeing")
    >>> res.loc[res.flag == "high", "unit_id"].tolist()
    ['h']
    """
    _check_frame(data)
    scales = _as_list("scales", scales)
    _check_columns(data, "scales", scales)
    _check_columns(data, "unit", [unit], numeric=False)
    _check_choice("level", level, ("auto", "respondent", "unit"))
    _check_choice("method", method, ("holm", "fdr_bh", "bonf"))
    _check_alpha(alpha)
    if level == "auto":
        level = "respondent" if "respondent_id" in data.columns else "unit"
    if level == "unit" and data[unit].duplicated().any():
        raise ParameterError(
            "`level='unit'` needs one row per unit, but some units have several rows; "
            "select one period, or pass respondent scores with level='respondent'"
        )
    rows = []
    for s in scales:
        block = []
        if level == "respondent":
            # one pass over the respondents per scale (not one t-test call per unit): the
            # one-sample t of scipy.stats.ttest_1samp, t = (mean - mu) / (sd / sqrt(n)), df n - 1
            client_mean = float(data[s].mean())
            g = data.groupby(unit, sort=False)[s]
            agg = pd.DataFrame({"n": g.count(), "mean": g.mean(), "sd": g.std(ddof=1),
                                "lo": g.min(), "hi": g.max()})
            for u, nu, mu, sd, lo, hi in agg.itertuples(name=None):
                row = {"scale": s, unit: u, "n": int(nu), "client_mean": client_mean,
                       "test": "one-sample t", "note": ""}
                if nu < min_group_size:
                    row["note"] = f"suppressed: fewer than {min_group_size} respondents"
                elif lo == hi:
                    row["note"] = "all respondents gave the same score; t is undefined"
                    row.update(mean=mu, diff=mu - client_mean)
                else:
                    t = (mu - client_mean) / (sd / np.sqrt(nu))
                    row.update(mean=mu, diff=mu - client_mean, stat=float(t),
                               p_val=float(2 * stats.t.sf(abs(t), nu - 1)))
                block.append(row)
        else:
            m = data[[unit, s]].dropna()
            vals = m[s].to_numpy(dtype=float)
            J = len(vals)
            for i, u in enumerate(m[unit]):
                row = {"scale": s, unit: u, "n": 1, "mean": vals[i], "test": "leave-one-out t",
                       "note": ""}
                others = np.delete(vals, i)
                if J < MIN_PAIRS:
                    row["note"] = f"too few units: {J} unit(s) with a score (need at least {MIN_PAIRS})"
                elif np.ptp(others) == 0:
                    row["note"] = "the other units all have the same score; t is undefined"
                else:
                    mo, so = others.mean(), others.std(ddof=1)
                    t = (vals[i] - mo) / (so * np.sqrt(1 + 1 / (J - 1)))
                    row.update(client_mean=mo, diff=vals[i] - mo, stat=float(t),
                               p_val=float(2 * stats.t.sf(abs(t), J - 2)))
                block.append(row)
        untested = [r for r in block if r["note"] and not r["note"].startswith("suppressed")]
        if untested:
            _warn("standout_units", f"{s}: {len(untested)} unit(s) untested: {untested[0]['note']}")
        p = np.array([r.get("p_val", np.nan) for r in block], dtype=float)
        pc = _p_adjust(p, method)
        for r, pcv in zip(block, pc, strict=True):
            r["p_corr"] = pcv
            if np.isfinite(pcv):
                r["flag"] = ("high" if r["diff"] > 0 else "low") if pcv < alpha else "typical"
            else:
                r["flag"] = ""
        rows.extend(block)
    cols = ["scale", unit, "n", "mean", "client_mean", "diff", "stat", "p_val", "p_corr", "flag",
            "test", "note"]
    out = pd.DataFrame(rows).reindex(columns=cols)
    for c in ["mean", "client_mean", "diff", "stat", "p_val", "p_corr"]:
        out[c] = out[c].astype(float)
    return out
