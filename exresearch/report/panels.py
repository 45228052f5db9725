"""One client's data as the reports use it: the unit panel (with the EX index), the
preload hook of the build (:func:`preload_study`, :func:`cache_panels`), unit means, the
reported (not suppressed) respondents and the per-client descriptive tables (EX trend and
profile, response counts, missing answers, reliability, suppressed unit-periods)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .roles import EX_INDEX, Roles, measure_roles  # noqa: F401 (Roles: doctests)


def client_panel(study, client_id, roles=None) -> pd.DataFrame:
    """One client's unit panel with the EX index added.

    Parameters
    ----------
    study : exresearch.study.Study
    client_id : str
    roles : Roles, optional
        Default ``measure_roles(study.config)``.

    Returns
    -------
    pandas.DataFrame
        :func:`exresearch.aggregate.unit_panel` plus ``ex_index``, the mean of the driver
        columns (NaN when any driver is NaN, e.g. in a suppressed unit-period).
    """
    from ..aggregate import unit_panel

    roles = roles or measure_roles(study.config)
    cache = _PANELS.get(id(study))
    key = (client_id, tuple(roles.drivers))
    if cache is not None and cache[0] is study and key in cache[1]:
        return cache[1][key].copy()
    panel = unit_panel(study, client_id)
    if roles.drivers:
        panel[EX_INDEX] = panel[roles.drivers].mean(axis=1, skipna=False)
    if cache is not None and cache[0] is study:
        cache[1][key] = panel.copy()
    return panel


#: Studies handed to :func:`preload_study`: resolved folder -> (study, input hashes).
_PRELOADED: dict = {}


#: Panels kept by :func:`cache_panels`: id(study) -> (study, {(client, drivers): panel}).
_PANELS: dict = {}


def preload_study(study, *, panels=True, cache=False) -> None:
    """Hand a loaded study to every later :func:`setup_report` of this process.

    The extension point of ``exresearch build``: its zygote process loads and validates
    the study once, calls this hook, and forks one kernel per report; a notebook's
    :func:`setup_report` for the same study folder then returns this study instead of
    reading and validating the files again, as long as no input file changed since
    (their signatures, or where one differs their sha256, are compared on every call;
    any change, or another folder, loads the study afresh). With ``panels=True`` every
    client's unit panel is computed once here (:func:`cache_panels`), and so is the
    benchmark of all clients
    (:func:`exresearch.report.benchmark_aggregates`), so each report does not recompute
    them.

    Parameters
    ----------
    study : exresearch.study.Study
        A study returned by :func:`exresearch.load_study` (read-only from now on).
    panels : bool, default True
        Also compute and keep every client's panel.
    cache : str, pathlib.Path, ResultCache or False, default False
        Where earlier panels and benchmark rows were kept (the build's result cache;
        see :func:`cache_panels` and :func:`exresearch.report.benchmark_aggregates`).

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> from exresearch.report import setup_report
    >>> from exresearch.study import load_study
    >>> study = load_study(ROOT / "tests" / "studies" / "valid")
    >>> preload_study(study)
    >>> setup_report(study_path=study.path, output_dir="", notebook="synthesis").study is study
    True
    >>> _forget_preloaded()
    """
    from .._hashing import TreeSnapshot

    _PRELOADED[Path(study.path).resolve()] = (study, TreeSnapshot.take(Path(study.path)))
    if panels:
        cache_panels(study, cache=cache)
        # every client report ranks its client among all: computed here once, not per report
        from .clients import benchmark_aggregates

        try:
            benchmark_aggregates(study, measure_roles(study.config), cache=cache)
        except Exception:  # noqa: BLE001 - each report then computes it and shows the error
            pass


def _preloaded(path: Path):
    """The preloaded study of ``path`` if its input files are unchanged, else None.

    Unchanged means: the same files, each with the signature (size, mtime, ctime, inode)
    it had when preloaded, or else the same sha256 (:class:`exresearch._hashing.TreeSnapshot`):
    a report of a 300-client study checks 600 files by ``stat`` instead of reading 33 MB.
    """
    entry = _PRELOADED.get(Path(path).resolve())
    if entry is None:
        return None
    try:
        same = entry[1].same(Path(path))
    except OSError:
        same = False
    return entry[0] if same else None


def _forget_preloaded() -> None:
    """Drop every preloaded study and kept panel (tests)."""
    from .clients import _BENCHMARK

    _PRELOADED.clear()
    _PANELS.clear()
    _BENCHMARK.clear()


def cache_panels(study, roles=None, *, cache=False) -> int:
    """Compute every client's panel once and keep it for this process.

    Meant for a process that forks report kernels (the build's zygote): called there
    once (through :func:`preload_study`), every notebook's :func:`client_panel` (each
    report computes the panels of all clients, for benchmarks) returns a copy of the
    kept panel instead of recomputing it. Without this call nothing is cached. The
    panels are kept in this module (not on the study), keyed by the study object; the
    study must not change afterwards (``Study`` objects are read-only).

    Parameters
    ----------
    study : exresearch.study.Study
    roles : Roles, optional
        Default ``measure_roles(study.config)``; panels for other roles are computed
        on request and kept as well.
    cache : str, pathlib.Path, ResultCache or False, default False
        Read (and write) the panels through the build's result cache
        (:func:`exresearch.report.client_panels`).

    Returns
    -------
    int
        Number of panels kept.

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> from exresearch.study import load_study
    >>> study = load_study(ROOT / "tests" / "studies" / "valid")
    >>> cache_panels(study)
    2
    >>> client_panel(study, "acme").equals(client_panel(study, "acme"))
    True
    >>> _forget_preloaded()
    """
    roles = roles or measure_roles(study.config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if cache is not False:
            from .summaries import client_panels

            found = client_panels(study, roles=roles, cache=cache)
            _PANELS[id(study)] = (study, {(c, tuple(roles.drivers)): p
                                          for c, p in found.items()})
        _PANELS.setdefault(id(study), (study, {}))
        for cid in study.clients:
            client_panel(study, cid, roles)
    return len(_PANELS[id(study)][1])


def unit_means(panel, roles) -> pd.DataFrame:
    """Average each unit over its periods: one row per unit, for cross-sectional linkage.

    Parameters
    ----------
    panel : pandas.DataFrame
        Output of :func:`client_panel`.
    roles : Roles

    Returns
    -------
    pandas.DataFrame
        ``unit_id, n_periods`` (periods with a reported EX score) and the mean over
        periods of every EX measure, outcome and covariate present, **over the same
        periods**: those with a reported EX score (a suppressed period counts for
        neither EX nor the outcomes, so both describe the same time; a unit never
        reported has NaN EX and its outcomes over all periods).

    Examples
    --------
    >>> import pandas as pd
    >>> roles = Roles(drivers=["a"], engagement=[], nps=[], likert=["a"],
    ...               ex_measures=["a"], cx=["nps"], business=[], outcomes=["nps"],
    ...               primary_cx="nps", money=None)
    >>> p = pd.DataFrame({"unit_id": ["u", "u", "v"], "period": ["1", "2", "1"],
    ...                   "a": [3.0, float("nan"), 4.0], "nps": [10.0, 20.0, 30.0]})
    >>> unit_means(p, roles).values.tolist()  # u's NPS of period 2 (no EX) left out
    [['u', 1, 3.0, 10.0], ['v', 1, 4.0, 30.0]]
    """
    cols = [c for c in [*roles.ex_measures, *roles.outcomes] if c in panel.columns]
    cols += [c for c in panel.columns if c not in cols and c not in
             ("unit_id", "period", "n_respondents", "suppressed")
             and pd.api.types.is_numeric_dtype(panel[c])]
    ex = roles.ex if roles.ex in panel.columns else cols[0]
    # EX and outcomes over the same periods: a unit's outcomes of periods without a
    # reported EX score are left out (units never reported keep all their periods)
    has_ex = panel[ex].notna()
    keep = has_ex | ~has_ex.groupby(panel["unit_id"]).transform("any")
    g = panel[cols].where(keep, axis=0).groupby(panel["unit_id"], sort=True)
    out = g[cols].mean()
    out.insert(0, "n_periods", panel.groupby("unit_id", sort=True)[ex].count().astype(np.int64))
    out.index.name = "unit_id"
    return out.reset_index()


def reported_survey(study, client_id, panel) -> pd.DataFrame:
    """The client's survey rows of unit-periods that are reported (not suppressed).

    Parameters
    ----------
    study : exresearch.study.Study
    client_id : str
    panel : pandas.DataFrame
        Output of :func:`client_panel` (its ``suppressed`` flags are used).

    Returns
    -------
    pandas.DataFrame
        ``study.survey(client_id)`` without the respondents of suppressed unit-periods.
    """
    survey = study.survey(client_id)
    shown = panel.loc[~panel["suppressed"].astype(bool), ["unit_id", "period"]]
    keys = pd.MultiIndex.from_frame(survey[["unit_id", "period"]])
    keep = keys.isin(pd.MultiIndex.from_frame(shown))
    return survey.loc[keep].reset_index(drop=True)


def latest_rows(frame, *, periods, period="period") -> pd.DataFrame:
    """The rows of the latest period (in ``periods`` order) that has any rows in ``frame``.

    Parameters
    ----------
    frame : pandas.DataFrame
    periods : list of str
        Periods in time order.
    period : str, default "period"

    Returns
    -------
    pandas.DataFrame
        Possibly empty (no period of ``periods`` has rows).

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"period": ["q1", "q2", "q1"], "x": [1, 2, 3]})
    >>> latest_rows(d, periods=["q1", "q2", "q3"])["x"].tolist()
    [2]
    """
    present = set(frame[period])
    have = [p for p in periods if p in present]
    if not have:
        return frame.iloc[0:0]
    return frame[frame[period] == have[-1]]


def ex_trend(survey, *, scales, roles, periods, min_group_size) -> pd.DataFrame:
    """Each EX scale per period: unit-level mean, spread and % favourable.

    Parameters
    ----------
    survey : pandas.DataFrame
        Reported respondents (:func:`reported_survey`).
    scales : dict
        ``study.config.scales``.
    roles : Roles
    periods : list of str
        Periods in time order.
    min_group_size : int

    Returns
    -------
    pandas.DataFrame
        One row per scale x period (scales in ``study.yml`` order, then ``ex_index``):
        ``scale, label, period, n_units, mean, sd_units, min_unit, max_unit,
        pct_favourable``; ``mean`` is the mean of the unit means (each unit counts once;
        the eNPS of a unit for ``nps`` scales), ``pct_favourable`` the % of the reported
        respondents in the top two answer options (promoters for eNPS).
    """
    from ..aggregate import aggregate_units

    agg = aggregate_units(survey, scales=scales, min_group_size=min_group_size,
                          points=roles.points)
    agg = agg[~agg["suppressed"].astype(bool)].copy()
    agg["_fav_n"] = agg["pct_favourable"] * agg["n"]
    if roles.drivers:
        wide = agg.pivot_table(index=["unit_id", "period"], columns="scale", values="mean")
        ex = wide.reindex(columns=roles.drivers).mean(axis=1, skipna=False).dropna()
        fav = agg[agg["scale"].isin(roles.drivers)].groupby(["unit_id", "period"])
        extra = pd.DataFrame({"scale": EX_INDEX, "mean": ex}).reset_index()
        extra = extra.merge(
            fav.agg(_fav_n=("_fav_n", "sum"), n=("n", "sum")).reset_index(),
            on=["unit_id", "period"], how="left")
        agg = pd.concat([agg, extra], ignore_index=True)
    g = agg.groupby(["scale", "period"], sort=False)
    out = g.agg(n_units=("mean", "count"), mean=("mean", "mean"), sd_units=("mean", "std"),
                min_unit=("mean", "min"), max_unit=("mean", "max"),
                _fav=("_fav_n", "sum"), _n=("n", "sum")).reset_index()
    out["pct_favourable"] = out["_fav"] / out["_n"].where(out["_n"] > 0)
    order_s = {s: i for i, s in enumerate([*scales, EX_INDEX])}
    order_p = {p: i for i, p in enumerate(periods)}
    out = out.assign(_s=out["scale"].map(order_s), _p=out["period"].map(order_p))
    out = out.sort_values(["_s", "_p"]).reset_index(drop=True)
    out.insert(1, "label", out["scale"].map(roles.label))
    out["n_units"] = out["n_units"].astype(np.int64)
    return out[["scale", "label", "period", "n_units", "mean", "sd_units", "min_unit",
                "max_unit", "pct_favourable"]]


def ex_profile(trend, *, periods) -> pd.DataFrame:
    """One row per EX scale: where it stands in the latest period and how it moved.

    Parameters
    ----------
    trend : pandas.DataFrame
        Output of :func:`ex_trend`.
    periods : list of str
        Periods in time order.

    Returns
    -------
    pandas.DataFrame
        ``scale, label, period, n_units, mean, pct_favourable, sd_units, first_period,
        first_mean, change``: the latest period with data for the scale, and the change of
        its mean since the first period with data.
    """
    order = {p: i for i, p in enumerate(periods)}
    t = trend.assign(_p=trend["period"].map(order)).sort_values(["_p"], kind="stable")
    rows = []
    for scale, g in t.groupby("scale", sort=False):
        g = g.dropna(subset=["mean"])
        if g.empty:
            continue
        last, first = g.iloc[-1], g.iloc[0]
        rows.append({
            "scale": scale, "label": last["label"], "period": last["period"],
            "n_units": int(last["n_units"]), "mean": last["mean"],
            "pct_favourable": last["pct_favourable"], "sd_units": last["sd_units"],
            "first_period": first["period"], "first_mean": first["mean"],
            "change": last["mean"] - first["mean"] if len(g) > 1 else np.nan,
        })
    order_s = {s: i for i, s in enumerate(pd.unique(trend["scale"]))}
    out = pd.DataFrame(rows)
    return out.iloc[np.argsort(out["scale"].map(order_s).to_numpy(), kind="stable")
                    ].reset_index(drop=True)


def response_counts(panel, *, periods, headcount="headcount") -> pd.DataFrame:
    """Reported units and respondents per period, safe to publish beside suppression.

    Parameters
    ----------
    panel : pandas.DataFrame
        Output of :func:`client_panel`.
    periods : list of str
    headcount : str, optional
        Covariate holding each unit's number of employees; when it is a column of
        ``panel`` the response rate is added.

    Returns
    -------
    pandas.DataFrame
        One row per period: ``period, units, units_reported, units_suppressed,
        respondents_reported`` (respondents in reported unit-periods only) and, with a
        headcount, ``response_rate`` (%, respondents over headcount of the reported
        units). No total over all respondents is given, so the size of a suppressed group
        cannot be derived by subtraction.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"unit_id": ["a", "b", "c"], "period": "1",
    ...                   "n_respondents": [6, 3, 8], "suppressed": [False, True, False],
    ...                   "headcount": [10.0, 4.0, 10.0]})
    >>> response_counts(p, periods=["1"]).values.tolist()
    [['1', 3, 2, 1, 14, 70.0]]
    """
    rows = []
    has_hc = headcount is not None and headcount in panel.columns
    for p in periods:
        g = panel[(panel["period"] == p) & (panel["n_respondents"] > 0)]
        shown = g[~g["suppressed"].astype(bool)]
        row = {"period": p, "units": int(len(g)), "units_reported": int(len(shown)),
               "units_suppressed": int(len(g) - len(shown)),
               "respondents_reported": int(shown["n_respondents"].sum())}
        if has_hc:
            ok = shown[shown[headcount] > 0]
            row["response_rate"] = (100 * float(ok["n_respondents"].sum() / ok[headcount].sum())
                                    if len(ok) else np.nan)
        rows.append(row)
    cols = ["period", "units", "units_reported", "units_suppressed", "respondents_reported"]
    return pd.DataFrame(rows, columns=cols + (["response_rate"] if has_hc else []))


def missingness(survey, *, scales) -> pd.DataFrame:
    """Missing answers per scale among (reported) respondents.

    Parameters
    ----------
    survey : pandas.DataFrame
        Respondent rows (:func:`reported_survey`).
    scales : dict
        ``study.config.scales``.

    Returns
    -------
    pandas.DataFrame
        One row per scale: ``scale, n_items, respondents, pct_missing`` (% of the scale's
        item answers left blank), ``pct_unscored`` (% of respondents with fewer than half
        of the items answered, who get no score).

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"a1": [1.0, None, None, 4.0], "a2": [2.0, 3.0, None, 5.0]})
    >>> missingness(s, scales={"a": ["a1", "a2"]}).values.tolist()
    [['a', 2, 4, 37.5, 25.0]]
    """
    rows = []
    for name, spec in scales.items():
        items = list(getattr(spec, "items", spec))
        answered = survey[items].notna().to_numpy()
        n = len(survey)
        rows.append({
            "scale": name, "n_items": len(items), "respondents": n,
            "pct_missing": 100 * float(1 - answered.mean()) if n else np.nan,
            "pct_unscored": (100 * float(np.mean(answered.sum(axis=1) < len(items) / 2))
                             if n else np.nan),
        })
    return pd.DataFrame(rows, columns=["scale", "n_items", "respondents", "pct_missing",
                                       "pct_unscored"])


def ex_reliability(survey, *, cfg, roles) -> pd.Series:
    """ICC(1) and ICC(2) of the respondent-level EX index, grouped by unit over all periods.

    ICC(2) is the reliability of a unit's mean EX over the periods it reported, the
    ``rxx`` of a psychometric (Hunter-Schmidt) correction of unit-level correlations.

    Parameters
    ----------
    survey : pandas.DataFrame
        Reported respondents (:func:`reported_survey`).
    cfg : exresearch.study.StudyConfig
    roles : Roles

    Returns
    -------
    pandas.Series
        ``icc1, icc2, respondents, units``.
    """
    from ..aggregate import icc
    from ..scoring import score_scales

    scored = score_scales(survey, scales={k: cfg.scales[k] for k in roles.drivers},
                          points=cfg.points)
    scored["_ex"] = scored[roles.drivers].mean(axis=1, skipna=False)
    scored = scored.dropna(subset=["_ex"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        i1, i2 = icc(scored, unit="unit_id", value="_ex")
    return pd.Series({"icc1": i1, "icc2": i2, "respondents": float(len(scored)),
                      "units": float(scored["unit_id"].nunique())})


def suppressed_units(panel, *, min_group_size) -> pd.DataFrame:
    """Unit-periods whose survey values are withheld, and why (no value, no count).

    Parameters
    ----------
    panel : pandas.DataFrame
        Output of :func:`client_panel`.
    min_group_size : int

    Returns
    -------
    pandas.DataFrame
        ``unit_id, period, reason``; unit-periods with outcomes but no survey answers are
        listed as "no survey responses".
    """
    s = panel[panel["suppressed"].astype(bool)]
    reason = np.where(s["n_respondents"] > 0,
                      f"fewer than {int(min_group_size)} respondents", "no survey responses")
    return pd.DataFrame({"unit_id": s["unit_id"].to_numpy(), "period": s["period"].to_numpy(),
                         "reason": reason})
