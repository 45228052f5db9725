"""Report-level glue for the parameterised notebooks.

The notebooks in ``notebooks/`` hold no ``def`` or ``class``: everything they need
beyond the analysis modules lives here. Checking the notebook parameters, assembling a
client's unit panel and per-unit means, the EX profile, the response counts and the
suppressed units of the appendix, the anonymous benchmark, the per-client inputs of the
synthesis (under pseudonyms), pooling the cross-lagged paths, the executive-summary
findings written as sentences from the computed numbers, and writing every table that a
notebook shows as a CSV file.

Conventions shared by the four notebooks (``client_report``, ``synthesis``,
``data_quality``, ``planning``):

* One cell tagged ``parameters``, each line ``name: type = default  # meaning`` (so that
  ``papermill --help-notebook`` documents it). Every notebook takes ``study_path``
  (default ``"data/demo"``) and ``output_dir`` (default ``""``: ``reports/tables/<notebook>``
  in the repository); the client report also ``client_id`` (default ``""``: the study's
  first client, so the committed notebook names no client) and ``n_boot``.
* The first cell after the parameters calls :func:`setup_report`, which raises one
  :class:`~exresearch.exceptions.ParameterError` naming the allowed values.
* Every table shown is written with :func:`save_table` as ``<output_dir>/<name>.csv``; the
  synthesis also writes ``headline.csv`` (``label, value, note``; :func:`headline_table`),
  which ``exresearch build`` shows as cards on the site's index page.
* Every random step is seeded with ``study.config.seed``.

Two rules hold everywhere in this module:

* **Suppression.** Every respondent-level statistic (profile, reliability, agreement,
  response counts) uses only respondents of unit-periods with at least
  ``min_group_size`` respondents (:func:`reported_survey`); a suppressed unit-period
  shows up only as its id, period and the reason, never with a value or a count, and
  no total is published that would let a reader subtract their way to it.
* **Inert text.** Labels, names and ids from ``study.yml`` or the data that go into
  Markdown pass through :func:`md_escape`; tables go out through
  :func:`exresearch.privacy.write_csv` (:func:`save_table`).

Examples
--------
>>> from exresearch.report import fmt_money, md_escape
>>> fmt_money(443006.55)
'443,000'
>>> md_escape("<b>Acme</b> [x](javascript:alert(1))")
'&lt;b&gt;Acme&lt;/b&gt; \\\\[x\\\\]\\\\(javascript&#58;alert\\\\(1\\\\)\\\\)'
"""

from __future__ import annotations

import html
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# styled() returns a Styler in every report: imported with this module (jinja2 comes with it,
# ~0.05 s), so a build's zygote, which imports exresearch.report, pays it once for all reports
import pandas.io.formats.style  # noqa: F401

from . import config
from .exceptions import ParameterError
from .privacy import pseudonyms, write_csv

__all__ = [
    "ReportSetup",
    "Roles",
    "setup_report",
    "preload_study",
    "check_number",
    "check_choice",
    "missingness",
    "ex_reliability",
    "measure_roles",
    "client_panel",
    "cache_panels",
    "unit_means",
    "reported_survey",
    "latest_rows",
    "ex_trend",
    "ex_profile",
    "response_counts",
    "suppressed_units",
    "save_table",
    "styled",
    "md_escape",
    "fmt_money",
    "fmt_signed",
    "ordinal",
    "evidence_verb",
    "loop_summary",
    "loop_coefficients",
    "describe_incremental",
    "describe_mediation",
    "executive_summary",
    "all_unit_means",
    "benchmark_table",
    "display_names",
    "per_client_correlations",
    "cross_lagged_by_client",
    "pool_estimates",
    "pool_paths",
    "utility_summary",
    "headline_table",
    "DIRECTION_LABELS",
    "FINDING_COLUMNS",
]

#: Loop labels (see :data:`exresearch.linkage.LOOP_LABELS`) under which the lagged
#: analyses support the direction EX -> CX, so that "drives" may replace "is associated with".
DIRECTION_LABELS = (
    "reciprocal loop — virtuous cycle",
    "reciprocal loop — doom loop",
    "reciprocal loop",
    "EX leads",
)
#: Columns of :func:`executive_summary`.
FINDING_COLUMNS = ("finding", "topic", "text", "table", "key", "column", "value")
#: Name of the composite EX column added by :func:`client_panel`.
EX_INDEX = "ex_index"
_NOTEBOOKS = ("client_report", "synthesis", "data_quality", "planning")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")
#: URL schemes and ``www.`` that Markdown renderers turn into links (autolinks).
_URL_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(?=//)|"
                         r"\b(mailto|javascript|vbscript|data|tel):")
_WWW = re.compile(r"(?i)\b(www)\.")


# --------------------------------------------------------------------------- parameters
@dataclass
class ReportSetup:
    """What :func:`setup_report` returns: the loaded study, the client and the output folder."""

    study: object
    out: Path
    client_id: str | None = None


def _studies_under(folder: Path) -> list[str]:
    try:
        return sorted(p.name for p in folder.iterdir() if (p / "study.yml").is_file())
    except OSError:
        return []


def _resolve_study_path(study_path) -> Path:
    if not isinstance(study_path, str | Path) or str(study_path).strip() == "":
        raise ParameterError(
            "`study_path` must be the path of a study folder (a folder containing "
            f"study.yml), but {study_path!r} was passed"
        )
    p = Path(study_path).expanduser()
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, config.ROOT / p]
    for c in candidates:
        if (c / "study.yml").is_file():
            return c.resolve()
    found = _studies_under(config.DATA_DIR)
    hint = (f"; study folders in {config.DATA_DIR}: {found}" if found
            else f"; no study folder found in {config.DATA_DIR} (run `make demo`)")
    raise ParameterError(
        "`study_path` must be a folder containing study.yml, but "
        f"{str(study_path)!r} was passed (looked in {[str(c) for c in candidates]}){hint}"
    )


def setup_report(*, study_path, output_dir, notebook, client_id=None) -> ReportSetup:
    """Check a notebook's parameters, load the study and create the output folder.

    Parameters
    ----------
    study_path : str or pathlib.Path
        Study folder. A relative path is looked up from the working folder first, then
        from the repository root (so the default ``"data/demo"`` works both from the
        command line and from JupyterLab, whose working folder is ``notebooks/``).
    output_dir : str or pathlib.Path
        Folder for the CSV tables, created if needed. ``""`` means
        ``reports/tables/<notebook>[/<client_id>]`` in the repository.
    notebook : {"client_report", "synthesis", "data_quality", "planning"}
        Which notebook asks (names the default output folder).
    client_id : str, optional
        Required for ``"client_report"``: one of the study's clients, or ``""`` for the
        first client of the study (the notebook's default, so that the committed notebook
        names no client and runs on any study).

    Returns
    -------
    ReportSetup
        ``study`` (:class:`exresearch.study.Study`), ``out`` (the output folder, absolute)
        and ``client_id`` (resolved).

    Raises
    ------
    ParameterError
        One message naming the parameter, the allowed values and the value received.
    exresearch.StudyValidationError
        When the folder holds a study that breaks the input contract.

    Examples
    --------
    >>> from exresearch.report import setup_report
    >>> setup_report(study_path="no/such/study", output_dir="", notebook="synthesis")
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: `study_path` must be a folder containing study.yml, ...
    """
    from .study import load_study

    if notebook not in _NOTEBOOKS:
        raise ParameterError(
            f"The value for `notebook` must be one of {list(_NOTEBOOKS)}, but {notebook!r} "
            "was passed"
        )
    path = _resolve_study_path(study_path)
    study = _preloaded(path) or load_study(path)
    if notebook == "client_report" and client_id == "":
        client_id = study.clients[0]  # the default: the study's first client
    if notebook == "client_report" or client_id is not None:
        if not isinstance(client_id, str) or client_id not in study.clients:
            raise ParameterError(
                f"`client_id` must be one of the study's clients {list(study.clients)}, but "
                f"{client_id!r} was passed"
            )
    if not isinstance(output_dir, str | Path):
        raise ParameterError(
            f"`output_dir` must be a folder path (or \"\" for the default), but {output_dir!r} "
            "was passed"
        )
    if str(output_dir).strip() == "":
        out = config.REPORTS_DIR / "tables" / notebook
        if client_id is not None:
            out = out / client_id
    else:
        out = Path(output_dir).expanduser()
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise ParameterError(
            f"`output_dir` must be a folder, but {str(output_dir)!r} is an existing file"
        )
    if out == path or path in out.parents:
        raise ParameterError(
            f"`output_dir` must be outside the study folder (inputs are never written), but "
            f"{str(out)!r} is inside {str(path)!r}"
        )
    out.mkdir(parents=True, exist_ok=True)
    from . import style

    style.use()  # the house theme; in a notebook, figures carry alt text from their data
    return ReportSetup(study=study, out=out, client_id=client_id)


def check_number(name, value, *, lo=None, hi=None, integer=False):
    """Check a numeric notebook parameter and return it.

    Parameters
    ----------
    name : str
        The parameter's name (used in the message).
    value : object
        The value received.
    lo, hi : float, optional
        Inclusive bounds.
    integer : bool, default False
        Require an integer.

    Returns
    -------
    int or float

    Examples
    --------
    >>> check_number("n_boot", 500, lo=1, integer=True)
    500
    >>> check_number("n_boot", 0, lo=1, integer=True)
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: `n_boot` must be an integer >= 1, but 0 was passed
    """
    kind = "an integer" if integer else "a number"
    ok = (isinstance(value, int | np.integer) if integer
          else isinstance(value, int | float | np.integer | np.floating))
    ok = ok and not isinstance(value, bool) and math.isfinite(float(value))
    ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        rng = (f" >= {lo}" if hi is None else f" <= {hi}" if lo is None else f" in [{lo}, {hi}]"
               ) if (lo is not None or hi is not None) else ""
        raise ParameterError(f"`{name}` must be {kind}{rng}, but {value!r} was passed")
    return int(value) if integer else float(value)


def check_choice(name, value, allowed):
    """Check that a notebook parameter is one of the allowed values and return it.

    Examples
    --------
    >>> check_choice("method", "REML", ["REML", "DL", "FE"])
    'REML'
    >>> check_choice("method", "ML", ["REML", "DL", "FE"])
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: The value for `method` must be one of ['REML', 'DL', 'FE'], but 'ML' was passed
    """
    if value not in list(allowed):
        raise ParameterError(
            f"The value for `{name}` must be one of {list(allowed)}, but {value!r} was passed")
    return value


# --------------------------------------------------------------------------- roles
@dataclass
class Roles:
    """Which scales and outcomes play which part in a report (from ``study.yml``).

    Attributes
    ----------
    drivers : list of str
        Likert scales without a role on the study's answer range: the specific EX drivers
        (a scale with its own range is in ``ex_measures`` but not a driver).
    engagement : list of str
        Likert scales with ``role: engagement``.
    nps : list of str
        eNPS scales (``kind: nps``).
    likert : list of str
        ``drivers + engagement`` (scales on the common answer range).
    ex_measures : list of str
        ``["ex_index"]`` (when there are drivers), then drivers, engagement, Likert scales
        on another answer range, and eNPS.
    cx, business : list of str
        Outcomes by kind.
    outcomes : list of str
        Every outcome, in ``study.yml`` order.
    primary_cx : str or None
        The first CX outcome (else the first outcome): the outcome of the driver and loop
        analyses.
    money : str or None
        The business outcome measured as revenue growth in % (its name or label contains
        "revenue"), which turns into money with the client's ``revenue``.
    labels : dict
        Column -> label for readers (``ex_index`` included).
    higher_is_better : dict
        Outcome -> bool.
    points : tuple
        The Likert answer range.
    """

    drivers: list
    engagement: list
    nps: list
    likert: list
    ex_measures: list
    cx: list
    business: list
    outcomes: list
    primary_cx: str | None
    money: str | None
    labels: dict = field(default_factory=dict)
    higher_is_better: dict = field(default_factory=dict)
    points: tuple = (1, 5)

    @property
    def ex(self) -> str:
        """The overall EX measure: ``ex_index`` if there are drivers, else the first scale."""
        return self.ex_measures[0]

    def label(self, name) -> str:
        """Reader's label of a column (the name itself when it has none)."""
        return str(self.labels.get(name, name))


def measure_roles(cfg) -> Roles:
    """Sort a study's scales and outcomes into the parts they play in the reports.

    Parameters
    ----------
    cfg : exresearch.study.StudyConfig
        ``study.config``.

    Returns
    -------
    Roles

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> from exresearch.study import load_study
    >>> roles = measure_roles(load_study(ROOT / "tests" / "studies" / "valid").config)
    >>> roles.primary_cx
    'nps'
    """
    drivers, engagement, nps, other = [], [], [], []
    labels = {}
    for name, spec in cfg.scales.items():
        labels[name] = getattr(spec, "label", None) or name
        own = tuple(getattr(spec, "points", None) or cfg.points)
        if getattr(spec, "kind", "likert") == "nps":
            nps.append(name)
        elif getattr(spec, "role", None) == "engagement":
            engagement.append(name)
        elif own == tuple(cfg.points):
            drivers.append(name)
        else:  # another answer range: not averaged into the EX index
            other.append(name)
    outcomes = list(cfg.outcomes)
    cx = [o for o, s in cfg.outcomes.items() if s.kind == "cx"]
    business = [o for o, s in cfg.outcomes.items() if s.kind == "business"]
    hib = {o: bool(getattr(s, "higher_is_better", True)) for o, s in cfg.outcomes.items()}
    for o, s in cfg.outcomes.items():
        labels[o] = getattr(s, "label", None) or o
    money = next((o for o in business if hib[o] and (
        "revenue" in o.lower() or "revenue" in str(labels[o]).lower())), None)
    ex_measures = ([EX_INDEX] if drivers else []) + drivers + engagement + other + nps
    if drivers:
        labels[EX_INDEX] = "EX index"
    return Roles(
        drivers=drivers, engagement=engagement, nps=nps, likert=drivers + engagement,
        ex_measures=ex_measures, cx=cx, business=business, outcomes=outcomes,
        primary_cx=(cx[0] if cx else (outcomes[0] if outcomes else None)), money=money,
        labels=labels, higher_is_better=hib, points=tuple(cfg.points),
    )


# --------------------------------------------------------------------------- panels
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
    from .aggregate import unit_panel

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


# --------------------------------------------------------------------------- preloading
#: Studies handed to :func:`preload_study`: resolved folder -> (study, input hashes).
_PRELOADED: dict = {}
#: Panels kept by :func:`cache_panels`: id(study) -> (study, {(client, drivers): panel}).
_PANELS: dict = {}


def preload_study(study, *, panels=True) -> None:
    """Hand a loaded study to every later :func:`setup_report` of this process.

    The extension point of ``exresearch build``: its zygote process loads and validates
    the study once, calls this hook, and forks one kernel per report; a notebook's
    :func:`setup_report` for the same study folder then returns this study instead of
    reading and validating the files again, as long as no input file changed since
    (their sha256 are compared on every call; any change, or another folder, loads the
    study afresh). With ``panels=True`` every client's unit panel is computed once here
    (:func:`cache_panels`), so each report does not recompute all of them.

    Parameters
    ----------
    study : exresearch.study.Study
        A study returned by :func:`exresearch.load_study` (read-only from now on).
    panels : bool, default True
        Also compute and keep every client's panel.

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> from exresearch.study import load_study
    >>> study = load_study(ROOT / "tests" / "studies" / "valid")
    >>> preload_study(study)
    >>> setup_report(study_path=study.path, output_dir="", notebook="synthesis").study is study
    True
    >>> _forget_preloaded()
    """
    from ._hashing import hash_study_tree

    _PRELOADED[Path(study.path).resolve()] = (study, hash_study_tree(Path(study.path)))
    if panels:
        cache_panels(study)


def _preloaded(path: Path):
    """The preloaded study of ``path`` if its input files are unchanged, else None."""
    from ._hashing import hash_study_tree

    entry = _PRELOADED.get(Path(path).resolve())
    if entry is None:
        return None
    try:
        same = hash_study_tree(Path(path)) == entry[1]
    except OSError:
        same = False
    return entry[0] if same else None


def _forget_preloaded() -> None:
    """Drop every preloaded study and kept panel (tests)."""
    _PRELOADED.clear()
    _PANELS.clear()


def cache_panels(study, roles=None) -> int:
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
    _PANELS.setdefault(id(study), (study, {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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
        periods of every EX measure, outcome and covariate present (NaN periods ignored,
        so a suppressed period does not count; a unit never reported has NaN EX).

    Examples
    --------
    >>> import pandas as pd
    >>> roles = Roles(drivers=["a"], engagement=[], nps=[], likert=["a"],
    ...               ex_measures=["a"], cx=["nps"], business=[], outcomes=["nps"],
    ...               primary_cx="nps", money=None)
    >>> p = pd.DataFrame({"unit_id": ["u", "u", "v"], "period": ["1", "2", "1"],
    ...                   "a": [3.0, float("nan"), 4.0], "nps": [10.0, 20.0, 30.0]})
    >>> unit_means(p, roles).values.tolist()
    [['u', 1, 3.0, 15.0], ['v', 1, 4.0, 30.0]]
    """
    cols = [c for c in [*roles.ex_measures, *roles.outcomes] if c in panel.columns]
    cols += [c for c in panel.columns if c not in cols and c not in
             ("unit_id", "period", "n_respondents", "suppressed")
             and pd.api.types.is_numeric_dtype(panel[c])]
    g = panel.groupby("unit_id", sort=True)
    out = g[cols].mean()
    ex = roles.ex if roles.ex in panel.columns else cols[0]
    out.insert(0, "n_periods", g[ex].count().astype(np.int64))
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
    from .aggregate import aggregate_units

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
    from .aggregate import icc
    from .scoring import score_scales

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


# --------------------------------------------------------------------------- output
def save_table(df, out, name, *, digits=None):
    """Write a table as ``<out>/<name>.csv`` and return it for display.

    Parameters
    ----------
    df : pandas.DataFrame
        The table, at full precision (the CSV keeps it).
    out : pathlib.Path
        Output folder.
    name : str
        File stem: letters, digits, ``_``, ``-`` (the build publishes only such names).
    digits : int, optional
        Round the float columns of the returned copy for display.

    Returns
    -------
    pandas.DataFrame
        ``df`` (rounded to ``digits`` when given), for the notebook to show.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,100}", str(name)):
        raise ParameterError(
            f"`name` must be a file stem of letters, digits, '_' and '-', but {name!r} was passed"
        )
    write_csv(df, Path(out) / f"{name}.csv")
    return df.round(digits) if digits is not None else df


def styled(df, *, precision=2, caption=None, formats=None, rename=None):
    """A table for readers: rounded, no index, text left-aligned, missing shown as "–".

    Parameters
    ----------
    df : pandas.DataFrame
    precision : int, default 2
        Decimals of float columns.
    caption : str, optional
        Shown above the table (escaped).
    formats : dict, optional
        Column (after ``rename``) -> format string or callable, overriding ``precision``.
    rename : dict, optional
        Column renames for readers.

    Returns
    -------
    pandas.io.formats.style.Styler
        Cell text is HTML-escaped when rendered.
    """
    d = df.rename(columns=rename or {})
    fmt = {c: f"{{:.{precision}f}}" for c in d.columns if pd.api.types.is_float_dtype(d[c])}
    fmt.update(formats or {})
    st = (d.style.format(fmt, na_rep="–", escape="html").format_index(escape="html", axis=1)
          .hide(axis="index"))
    text = [c for c in d.columns if not pd.api.types.is_numeric_dtype(d[c])]
    if text:
        st = st.set_properties(subset=text, **{"text-align": "left"})
    st = st.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}],
                             overwrite=False)
    if caption:
        st = st.set_caption(html.escape(str(caption)))
    return st


def md_escape(text) -> str:
    """Make text from the data safe to put into Markdown: no HTML, no links, no emphasis.

    Parameters
    ----------
    text : object

    Returns
    -------
    str
        HTML-escaped (``& < >``; quotes are harmless in Markdown text) with Markdown
        punctuation backslash-escaped, so no tag, link, image or emphasis can be formed;
        the ``:`` after a URL scheme and the ``.`` after ``www`` become entities (they look
        the same) so that a bare URL such as ``https://x`` in a unit id or label is not
        turned into a link by the Markdown renderer.

    Examples
    --------
    >>> md_escape("O'Brien & <Sons>")
    "O'Brien &amp; &lt;Sons&gt;"
    >>> md_escape("Sales_East *1*")
    'Sales\\\\_East \\\\*1\\\\*'
    >>> md_escape("see https://x.example")
    'see https&#58;//x.example'
    """
    escaped = _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))
    escaped = _URL_SCHEME.sub(lambda m: f"{m.group(1) or m.group(2)}&#58;", escaped)
    return _WWW.sub(r"\1&#46;", escaped)


def fmt_money(x) -> str:
    """A money amount for prose: thousands rounded, millions with one decimal.

    Examples
    --------
    >>> fmt_money(1_234_567), fmt_money(-56_789), fmt_money(512.4)
    ('1.2 million', '-57,000', '512')
    """
    x = float(x)
    if not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1e6:
        return f"{x / 1e6:,.1f} million"
    if abs(x) >= 1e3:
        return f"{round(x, -3):,.0f}"
    return f"{x:,.0f}"


def fmt_signed(x, digits=2) -> str:
    """A number with an explicit sign, e.g. ``+0.21``.

    Examples
    --------
    >>> fmt_signed(0.214), fmt_signed(-3.0, 1)
    ('+0.21', '-3.0')
    """
    return f"{float(x):+.{digits}f}"


def ordinal(x) -> str:
    """A rounded number as an English ordinal.

    Examples
    --------
    >>> ordinal(11.4), ordinal(21), ordinal(2.6), ordinal(73)
    ('11th', '21st', '3rd', '73rd')
    """
    n = int(round(float(x)))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def evidence_verb(loop_label) -> str:
    """The verb a finding may use for the EX -> outcome link, given the lagged evidence.

    Parameters
    ----------
    loop_label : str
        ``label`` of :func:`exresearch.direction.loop_direction`.

    Returns
    -------
    str
        ``"drives"`` when the cross-lagged analysis supports EX -> CX (EX leads or a
        reciprocal loop), otherwise ``"is associated with"``.

    Examples
    --------
    >>> evidence_verb("EX leads"), evidence_verb("no evidence")
    ('drives', 'is associated with')
    """
    return "drives" if loop_label in DIRECTION_LABELS else "is associated with"


def _strength(r):
    a = abs(r)
    return ("negligible" if a < 0.1 else "weak" if a < 0.3 else "moderate" if a < 0.5
            else "strong")


def executive_summary(*, correlations, loop, priorities=None, investment=None,
                      benchmark=None, profile=None, roles, n_units, tables=None,
                      max_findings=5) -> pd.DataFrame:
    """The three to five findings that matter for a client, written from its results.

    Each finding is one sentence (or two) built from the numbers of one of the report's
    tables; ``table``, ``key``, ``column`` and ``value`` say which number, so a reader (or
    a test) can check the sentence against the CSV file.

    Parameters
    ----------
    correlations : pandas.DataFrame
        Unit-level correlations (:func:`exresearch.linkage.correlation_table`, one
        method), with rows ``x == roles.ex``.
    loop : pandas.DataFrame
        :func:`exresearch.direction.loop_direction` of ``roles.ex`` and ``roles.primary_cx``.
    priorities : pandas.DataFrame, optional
        :func:`exresearch.drivers.driver_priorities` for ``roles.primary_cx``.
    investment : pandas.DataFrame, optional
        :func:`exresearch.economics.investment_table` (best first).
    benchmark : pandas.DataFrame, optional
        :func:`benchmark_table`.
    profile : pandas.DataFrame, optional
        :func:`ex_profile`; its highest and lowest rated scale make a finding when fewer
        than ``max_findings`` others could be written.
    roles : Roles
    n_units : int
        Units with a reported EX score (for the first sentence).
    tables : dict, optional
        CSV stems of the tables, keys ``correlations, loop, priorities, investment,
        benchmark, profile`` (defaults: ``linkage_correlations, loop, driver_priorities,
        investment, benchmark, ex_profile``).
    max_findings : int, default 5
        At most this many findings, in the order linkage, direction, drivers, value,
        benchmark, profile.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FINDING_COLUMNS`: ``finding`` (1..), ``topic``, ``text`` (plain
        text; escape with :func:`md_escape` for Markdown), ``table`` (CSV stem), ``key``
        (``"col=value;..."`` selecting the row), ``column`` and ``value`` (the headline
        number of the finding, full precision).

    Notes
    -----
    Wording follows the evidence: cross-sectional links are "associated with"; "drives"
    is used only when the cross-lagged analysis supports EX -> CX
    (:data:`DIRECTION_LABELS`); an effect whose 95% CI includes zero is called
    uncertain; money is stated as "worth ... if the link is causal" unless the direction
    is supported.
    """
    t = {"correlations": "linkage_correlations", "loop": "loop",
         "priorities": "driver_priorities", "investment": "investment",
         "benchmark": "benchmark", "profile": "ex_profile"}
    t.update(tables or {})
    ex, cx = roles.ex, roles.primary_cx
    exl, cxl = roles.label(ex), roles.label(cx)
    label = str(loop["label"].iloc[0]) if loop is not None and len(loop) else "no evidence"
    verb = evidence_verb(label)
    rows = []

    def add(topic, text, table, key, column, value):
        rows.append({"finding": len(rows) + 1, "topic": topic, "text": text, "table": table,
                     "key": key, "column": column, "value": float(value)})

    # 1. the link between EX and the primary CX outcome
    c = correlations[(correlations["x"] == ex) & (correlations["y"] == cx)]
    if len(c) and np.isfinite(c["r"].iloc[0]):
        row = c.iloc[0]
        r, lo, hi = float(row["r"]), float(row["ci_low"]), float(row["ci_high"])
        good = r > 0 if roles.higher_is_better.get(cx, True) else r < 0
        clear = lo > 0 or hi < 0
        direction = "better" if good else "worse"
        if clear:
            text = (f"Units with a better employee experience have {direction} {cxl}: "
                    f"across {int(row['n'])} units, the {exl} {verb} {cxl} "
                    f"(r = {r:.2f}, 95% CI {lo:.2f} to {hi:.2f}), a {_strength(r)} link.")
        else:
            text = (f"The link between the {exl} and {cxl} is uncertain in this client: "
                    f"r = {r:.2f} across {int(row['n'])} units, but the 95% CI "
                    f"({lo:.2f} to {hi:.2f}) includes no link at all.")
        add("linkage", text, t["correlations"], f"x={ex};y={cx}", "r", r)
    # 2. direction over time
    if loop is not None and len(loop):
        lp = loop.iloc[0]
        b1, p1, b2, p2 = (float(lp["x_to_y"]), float(lp["x_to_y_p"]), float(lp["y_to_x"]),
                          float(lp["y_to_x_p"]))
        paths = (f"{exl} → next period's {cxl}: {fmt_signed(b1)} SD (p = {p1:.3f}); "
                 f"{cxl} → next period's {exl}: {fmt_signed(b2)} SD (p = {p2:.3f})")
        if not (math.isfinite(b1) and math.isfinite(b2)):
            text = ("Which comes first, employee or customer experience, cannot be estimated "
                    "from these data (too few units followed over consecutive periods), so "
                    "read the links in this report as associations.")
            add("direction", text, t["loop"], f"x={ex};y={cx}", "x_to_y", b1)
        else:
            if label.startswith("reciprocal loop"):
                kind = {"reciprocal loop — virtuous cycle":
                        "and with the EX trend up, this is a virtuous cycle",
                        "reciprocal loop — doom loop":
                        "and with the EX trend down, this is a doom loop: decline feeds decline",
                        }.get(label, "a reinforcing loop")
                text = (f"Employee and customer experience reinforce each other over time "
                        f"({paths}), {kind}.")
            elif label == "EX leads":
                text = (f"Changes in employee experience come before changes in {cxl}, not "
                        f"the other way round ({paths}): improving EX is likely to pay off "
                        "in the following period.")
            elif label == "CX leads":
                text = (f"Changes in {cxl} come before changes in employee experience ({paths}): "
                        "customer results shape how employees feel at least as much as the "
                        "reverse, so read the EX links as associations.")
            else:
                text = (f"The data do not show which comes first ({paths}), so the links in "
                        "this report are associations, not proof that EX causes customer "
                        "results.")
            add("direction", text, t["loop"], f"x={ex};y={cx}", "x_to_y", b1)
    # 3. where to act
    if priorities is not None and len(priorities) and np.isfinite(priorities["impact"]).any():
        top = priorities.sort_values("rank").iloc[0]
        d = roles.label(top["driver"])
        imp, lo, hi = float(top["impact"]), float(top["impact_low"]), float(top["impact_high"])
        if bool(top["priority"]):
            text = (f"Act first on {d}: it accounts for {imp:.0f}% of the explained differences "
                    f"in {cxl} between units (95% CI {lo:.0f}% to {hi:.0f}%) and, at "
                    f"{float(top['performance']):.2f}, scores in the lower half of the drivers.")
        else:
            text = (f"No driver is both important for {cxl} and weak: the most important, "
                    f"{d} ({imp:.0f}% of the explained differences, 95% CI {lo:.0f}% to "
                    f"{hi:.0f}%), already scores {float(top['performance']):.2f}; keep it there.")
        add("drivers", text, t["priorities"], f"driver={top['driver']}", "impact", imp)
    # 4. what it is worth
    if investment is not None and len(investment):
        best = investment.iloc[0]
        d = roles.label(best["driver"])
        has_money = "money" in investment.columns and np.isfinite(best.get("money", np.nan))
        col = "money" if has_money else "delta_business"
        val = float(best[col])
        if np.isfinite(val):
            lo, hi = float(best[f"{col}_ci_low"]), float(best[f"{col}_ci_high"])
            if has_money:
                amount = (f"about {fmt_money(val)} a year in revenue (95% CI {fmt_money(lo)} "
                          f"to {fmt_money(hi)})")
            else:
                amount = f"{fmt_signed(val)} on the business outcome (95% CI {lo:.2f} to {hi:.2f})"
            cond = ("" if verb == "drives" else
                    " if the link is causal (the lagged analysis does not show that yet)")
            text = (f"Bringing every unit below the top quarter on {d} up to the top-quarter "
                    f"level (+{float(best['improvement']):.2f} points on average) would be "
                    f"worth {fmt_signed(float(best['delta_cx']), 1)} {cxl} points and "
                    f"{amount}{cond}.")
            if lo <= 0 <= hi:
                text += " The range includes no gain, so treat it as a rough estimate."
            add("value", text, t["investment"], f"driver={best['driver']}", col, val)
    # 5. benchmark
    if benchmark is not None and len(benchmark):
        b = benchmark[(benchmark["measure"] == ex) & ~benchmark["withheld"].astype(bool)]
        if len(b) and np.isfinite(b["percentile"].iloc[0]):
            pr = float(b["percentile"].iloc[0])
            m = int(b["n_contributors"].iloc[0])
            pos = ("above all" if pr >= 99.5 else "below all" if pr <= 0.5 else
                   "above most" if pr >= 60 else "below most" if pr <= 40 else "in the middle of")
            text = (f"Compared with {m} other organisations in the study, your {exl} is at "
                    f"the {ordinal(pr)} percentile, {pos} of them.")
            add("benchmark", text, t["benchmark"], f"measure={ex}", "percentile", pr)
    # 6. the profile, when there is room
    if profile is not None and len(rows) < max_findings:
        pr = profile[profile["scale"].isin(roles.likert)].dropna(subset=["mean"])
        if len(pr) >= 2:
            hi, lo = pr.loc[pr["mean"].idxmax()], pr.loc[pr["mean"].idxmin()]
            text = (f"In {hi['period']}, employees rate {roles.label(hi['scale'])} highest "
                    f"({float(hi['mean']):.2f} on the {roles.points[0]}-{roles.points[1]} "
                    f"scale) and {roles.label(lo['scale'])} lowest ({float(lo['mean']):.2f}).")
            add("profile", text, t["profile"], f"scale={hi['scale']}", "mean", hi["mean"])
    rows = rows[:max_findings]
    out = pd.DataFrame(rows, columns=list(FINDING_COLUMNS))
    out["finding"] = out["finding"].astype(np.int64)
    return out


def loop_summary(panel, cross_lagged_result, *, x, periods, alpha=0.05, labels=None) -> pd.DataFrame:
    """Classify a client's loop from an already computed cross-lagged result.

    The same as :func:`exresearch.direction.loop_direction` without fitting the
    cross-lagged model a second time.

    Parameters
    ----------
    panel : pandas.DataFrame
        The unit panel the model was fitted on.
    cross_lagged_result : pandas.DataFrame
        :func:`exresearch.direction.cross_lagged` of ``x`` and the CX column.
    x : str
        The EX column.
    periods : list of str
    alpha : float
    labels : dict, optional
        Column -> reader's label, used in ``reason`` (``x`` and ``y`` keep the names).

    Returns
    -------
    pandas.DataFrame
        The row of :func:`exresearch.direction.classify_loop` plus ``trend_sd``, ``n_obs``
        and ``n_units``, as ``loop_direction`` returns it.
    """
    from .direction import classify_loop

    trend = _trend_sd(panel, x, periods)
    cl = cross_lagged_result
    if labels:
        cl = cl.assign(source=cl["source"].map(lambda v: labels.get(v, v)),
                       target=cl["target"].map(lambda v: labels.get(v, v)))
    res = classify_loop(cl, trend=trend, alpha=alpha)
    res["x"] = cross_lagged_result["source"].iloc[0]
    res["y"] = cross_lagged_result["target"].iloc[0]
    res["trend_sd"] = trend
    res["n_obs"] = int(cross_lagged_result["n_obs"].iloc[0])
    res["n_units"] = int(cross_lagged_result["n_units"].iloc[0])
    return res


def loop_coefficients(paths, *, estimate="estimate", se="se") -> dict:
    """Keyword arguments of :func:`exresearch.economics.project_loop` from cross-lagged paths.

    Parameters
    ----------
    paths : pandas.DataFrame
        :func:`exresearch.direction.cross_lagged` (x = EX, y = CX) or :func:`pool_paths`.
    estimate, se : str
        Columns.

    Returns
    -------
    dict
        ``ex_to_cx, cx_to_ex, ex_ar, cx_ar``, each ``(estimate, se)``; empty when a path
        is undefined (then there is nothing to project).
    """
    cross = paths[paths["kind"] == "cross-lagged"]
    auto = paths[paths["kind"] == "autoregressive"]
    if len(cross) != 2 or len(auto) != 2:
        return {}
    x, y = cross["source"].iloc[0], cross["target"].iloc[0]

    def pick(frame, source):
        row = frame[frame["source"] == source].iloc[0]
        return float(row[estimate]), float(row[se])

    out = {"ex_to_cx": pick(cross, x), "cx_to_ex": pick(cross, y),
           "ex_ar": pick(auto, x), "cx_ar": pick(auto, y)}
    if not all(np.isfinite(v).all() for v in out.values()):
        return {}
    return out


def describe_incremental(result, *, roles, outcome) -> str:
    """One or two sentences on engagement versus experience, from the numbers.

    Parameters
    ----------
    result : pandas.DataFrame
        :func:`exresearch.drivers.incremental_validity`.
    roles : Roles
    outcome : str
        Its outcome column.

    Returns
    -------
    str
        Plain text (escape for Markdown).
    """
    r = result.set_index(["sequence", "step"])
    try:
        eng_add = r.loc[("drivers first", 2)]
        drv_add = r.loc[("engagement first", 2)]
        eng_alone = r.loc[("engagement first", 1)]
    except KeyError:
        return "Engagement and the experience drivers could not be compared."
    if not np.isfinite(eng_add["delta_r2"]):
        return ("Engagement and the experience drivers could not be compared "
                f"({eng_add.get('note', '')}).")
    ol = roles.label(outcome)
    s1 = (f"On its own, engagement accounts for {100 * eng_alone['r2']:.0f}% of the differences "
          f"in {ol} between units. Added to the specific experience drivers it explains "
          f"{100 * eng_add['delta_r2']:.1f} percentage points more (p = {eng_add['p_val']:.2f}); "
          f"the drivers add {100 * drv_add['delta_r2']:.1f} points beyond engagement "
          f"(p = {drv_add['p_val']:.2f}).")
    if drv_add["p_val"] < 0.05 and eng_add["p_val"] >= 0.05:
        s2 = (" The specific experience drivers carry information that engagement does not: "
              "engaged employees are not enough, they also need what lets them serve customers "
              "well.")
    elif eng_add["p_val"] < 0.05 and drv_add["p_val"] >= 0.05:
        s2 = " Engagement carries information about customers beyond the specific drivers."
    elif eng_add["p_val"] < 0.05 and drv_add["p_val"] < 0.05:
        s2 = " Both matter: each adds to the other."
    else:
        s2 = (" With this many units neither adds clearly to the other; they largely overlap "
              "in what they say about customers.")
    return s1 + s2


def describe_mediation(result, *, roles, x, m, y) -> str:
    """Say in words how much of the EX -> business link runs through customers.

    Parameters
    ----------
    result : pandas.DataFrame
        :func:`exresearch.mediation.mediation` with one mediator.
    roles : Roles
    x, m, y : str
        EX column, CX mediator, business outcome.

    Returns
    -------
    str
        Plain text (escape for Markdown).

    Examples
    --------
    >>> import pandas as pd
    >>> res = pd.DataFrame({"path": ["a", "b", "total", "direct", "indirect"],
    ...                     "estimate": [27.8, 0.088, 3.88, 1.43, 2.45],
    ...                     "ci_low": [7.1, 0.04, 0.87, -1.35, 0.56],
    ...                     "ci_high": [48.4, 0.14, 6.88, 4.21, 5.96],
    ...                     "p_val": [0.01, 0.001, 0.013, 0.3, 0.032]})
    >>> r = Roles(drivers=[], engagement=[], nps=[], likert=[], ex_measures=["ex"], cx=["nps"],
    ...           business=["g"], outcomes=["nps", "g"], primary_cx="nps", money="g",
    ...           labels={"ex": "EX index", "nps": "Customer NPS", "g": "Revenue growth"})
    >>> print(describe_mediation(res, roles=r, x="ex", m="nps", y="g"))
    Units one point higher on the EX index have +3.88 higher Revenue growth (95% CI 0.87 to 6.88); +2.45 of it (63%) goes with their higher Customer NPS (95% CI 0.56 to 5.96), consistent with a chain from employees through customers to business results. The remaining +1.43 is not explained by Customer NPS.
    """
    r = result.set_index("path")
    try:
        tot, ind, dirc = r.loc["total"], r.loc["indirect"], r.loc["direct"]
    except KeyError:
        return "The chain from employees through customers to business results could not be estimated."
    if isinstance(ind, pd.DataFrame):
        ind = ind.iloc[0]
    if not (np.isfinite(tot["estimate"]) and np.isfinite(ind["estimate"])):
        return "The chain from employees through customers to business results could not be estimated."
    xl, ml, yl = roles.label(x), roles.label(m), roles.label(y)
    share = (f" ({100 * ind['estimate'] / tot['estimate']:.0f}%)"
             if tot["estimate"] != 0 and 0 < ind["estimate"] / tot["estimate"] <= 1 else "")
    clear = ind["ci_low"] > 0 or ind["ci_high"] < 0
    verdict = ("consistent with a chain from employees through customers to business results"
               if clear else "but the 95% CI includes zero, so the chain is not established")
    return (f"Units one point higher on the {xl} have {fmt_signed(tot['estimate'])} higher {yl} "
            f"(95% CI {tot['ci_low']:.2f} to {tot['ci_high']:.2f}); "
            f"{fmt_signed(ind['estimate'])} of it{share} goes with their higher {ml} "
            f"(95% CI {ind['ci_low']:.2f} to {ind['ci_high']:.2f}), {verdict}. "
            f"The remaining {fmt_signed(dirc['estimate'])} is not explained by {ml}.")


# --------------------------------------------------------------------------- several clients
def all_unit_means(study, roles, *, panels=None) -> pd.DataFrame:
    """Every client's unit means, stacked (for benchmarks and the synthesis).

    Parameters
    ----------
    study : exresearch.study.Study
    roles : Roles
    panels : dict, optional
        client id -> :func:`client_panel` already computed (reused, not recomputed).

    Returns
    -------
    pandas.DataFrame
        ``client_id`` then the columns of :func:`unit_means`. Warnings from other
        clients' data are silenced (they could name those clients).
    """
    frames = []
    panels = panels or {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cid in study.clients:
            p = panels.get(cid)
            if p is None:
                p = client_panel(study, cid, roles)
            frames.append(unit_means(p, roles).assign(client_id=cid))
    out = pd.concat(frames, ignore_index=True)
    return out[["client_id", *[c for c in out.columns if c != "client_id"]]]


def benchmark_table(means, *, client_id, roles, measures=None) -> pd.DataFrame:
    """Where a client stands among the other clients, from aggregates only.

    Parameters
    ----------
    means : pandas.DataFrame
        :func:`all_unit_means` of the study.
    client_id : str
        The focal client.
    roles : Roles
    measures : list of str, optional
        Default: the EX measures and the outcomes.

    Returns
    -------
    pandas.DataFrame
        :func:`exresearch.benchmark.client_percentiles` (only the focal client's id; a
        measure is withheld unless at least 3 other clients contribute), then ``label``
        and ``higher_is_better``. Also benchmarks ``r_<ex>_<cx>``, the client's unit-level
        correlation of the EX index with the primary CX outcome.
    """
    from .benchmark import client_aggregates, client_percentiles
    from .linkage import correlations

    measures = measures or [c for c in [*roles.ex_measures, *roles.outcomes]
                            if c in means.columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agg = client_aggregates(means, value_columns=measures)
        extra = []
        rname = None
        if roles.primary_cx is not None:
            rname = f"r_{roles.ex}_{roles.primary_cx}"
            for cid, g in means.groupby("client_id", sort=True):
                c = correlations(g, x=roles.ex, y=roles.primary_cx)
                extra.append({"client_id": cid, rname: float(c["r"].iloc[0])})
            agg = agg.merge(pd.DataFrame(extra), on="client_id", how="left")
        cols = measures + ([rname] if rname else [])
        res = client_percentiles(agg, client=client_id, value_columns=cols)
    labels = dict(roles.labels)
    if rname:
        labels[rname] = f"Link of {roles.label(roles.ex)} with {roles.label(roles.primary_cx)} (r)"
    res["label"] = res["measure"].map(lambda m: labels.get(m, m))
    res["higher_is_better"] = res["measure"].map(lambda m: roles.higher_is_better.get(m, True))
    return res


def display_names(study) -> dict:
    """Client id -> the name shown in study-level reports.

    Parameters
    ----------
    study : exresearch.study.Study

    Returns
    -------
    dict
        The client's name from ``study.yml`` when ``publish_client_names`` is true,
        otherwise a pseudonym "Client A", "Client B", ... assigned by a shuffle seeded
        with the study's seed (or its name), so the letters do not follow the ids.
    """
    if getattr(study.config, "publish_client_names", False):
        return {c: (study.config.client(c).name or c) for c in study.clients}
    seed = getattr(study.config, "seed", None)
    return pseudonyms(study.clients, seed=seed if isinstance(seed, int) and not isinstance(
        seed, bool) else str(getattr(study.config, "name", "") or "study"))


def per_client_correlations(means, *, x, y, names=None, industries=None) -> pd.DataFrame:
    """Each client's unit-level correlations, ready to pool.

    Parameters
    ----------
    means : pandas.DataFrame
        :func:`all_unit_means`.
    x, y : list of str
        EX measures and outcomes.
    names : dict, optional
        client id -> shown name (:func:`display_names`); then ``client`` holds it and the
        id is dropped.
    industries : dict, optional
        client id -> industry.

    Returns
    -------
    pandas.DataFrame
        ``client`` (or ``client_id``), ``industry``, ``x, y, n, r, ci_low, ci_high,
        p_val`` (Fisher-z CI), one row per client x pair, in study order.
    """
    from .linkage import correlations

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cid, g in means.groupby("client_id", sort=False):
            c = correlations(g, x=list(x), y=list(y))
            c.insert(0, "client_id", cid)
            rows.append(c.drop(columns="p_corr"))
    out = pd.concat(rows, ignore_index=True)
    out.insert(1, "industry", out["client_id"].map(industries or {}))
    if names is not None:
        out.insert(0, "client", out["client_id"].map(names))
        out = out.drop(columns="client_id")
    return out


def _trend_sd(panel, x, periods):
    order = {p: i for i, p in enumerate(periods)}
    t = panel["period"].map(order)
    means = panel[x].groupby(t.to_numpy()).mean().dropna()
    sd = float(panel[x].std(ddof=1))
    if len(means) < 2 or not np.isfinite(sd) or sd <= 0:
        return np.nan
    return float(np.polyfit(means.index.to_numpy(dtype=float), means.to_numpy(), 1)[0]) / sd


def cross_lagged_by_client(panels, *, x, y, periods, names=None) -> pd.DataFrame:
    """Cross-lagged paths of every client, stacked, with each client's EX trend.

    Parameters
    ----------
    panels : dict
        client id -> unit panel (:func:`client_panel`).
    x, y : str
        EX column and CX column.
    periods : list of str
    names : dict, optional
        client id -> shown name; then ``client`` replaces ``client_id``.

    Returns
    -------
    pandas.DataFrame
        ``client_id`` (or ``client``), ``trend_sd`` (EX trend, SD per period, as
        :func:`exresearch.direction.loop_direction`), then the columns of
        :func:`exresearch.direction.cross_lagged`.
    """
    from .direction import cross_lagged

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cid, p in panels.items():
            cl = cross_lagged(p, x=x, y=y, periods=periods)
            cl.insert(0, "trend_sd", _trend_sd(p, x, periods))
            cl.insert(0, "client_id", cid)
            rows.append(cl)
    out = pd.concat(rows, ignore_index=True)
    if names is not None:
        out.insert(0, "client", out["client_id"].map(names))
        out = out.drop(columns="client_id")
    return out


def pool_estimates(data, *, estimate="estimate", se="se", method="DL") -> pd.Series:
    """Pool estimates with standard errors over clients, DL or FE, for the reports.

    :func:`exresearch.meta.pool_estimates` (the one pooling routine) with the methods
    the reports use for cross-lagged paths.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study (client); rows with a missing estimate or SE are dropped.
    estimate, se : str
        Columns.
    method : {"DL", "FE"}
        DerSimonian-Laird random effects, or fixed effect.

    Returns
    -------
    pandas.Series
        ``k, estimate, se, ci_low, ci_high, z, p_val, tau2, i2, q, q_p, pi_low, pi_high``
        (NaN with fewer than 2 rows, ``k`` kept); equal to metafor's
        ``rma(yi, sei=se, method=...)``.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"estimate": [0.2, 0.3, 0.25], "se": [0.1, 0.1, 0.1]})
    >>> round(float(pool_estimates(d)["estimate"]), 3)
    0.25
    """
    from .meta import pool_estimates as _pool

    check_choice("method", method, ["DL", "FE"])
    return _pool(data, estimate=estimate, se=se, method=method)


def pool_paths(by_client, *, method="DL") -> pd.DataFrame:
    """Pool each cross-lagged path over clients (:func:`pool_estimates`).

    Parameters
    ----------
    by_client : pandas.DataFrame
        :func:`cross_lagged_by_client`.
    method : {"DL", "FE"}

    Returns
    -------
    pandas.DataFrame
        One row per path (cross-lagged first, then autoregressive): ``path, source,
        target, kind`` and the fields of :func:`pool_estimates`. The frame feeds
        :func:`exresearch.direction.classify_loop` and
        :func:`exresearch.economics.project_loop`.
    """
    rows = []
    for (path, source, target, kind), g in by_client.groupby(
            ["path", "source", "target", "kind"], sort=False):
        rows.append({"path": path, "source": source, "target": target, "kind": kind,
                     **pool_estimates(g, method=method).to_dict()})
    out = pd.DataFrame(rows)
    out["k"] = out["k"].astype(np.int64)
    return out


def utility_summary(utility, *, roles) -> pd.DataFrame:
    """Summarise clients' top-vs-bottom-quarter differences per outcome.

    Parameters
    ----------
    utility : pandas.DataFrame
        Stacked :func:`exresearch.economics.quartile_utility` results, one block per
        client.
    roles : Roles

    Returns
    -------
    pandas.DataFrame
        One row per outcome (``y``): ``label, higher_is_better, clients`` (with a
        defined difference), ``mean_diff``, ``median_diff`` (top minus bottom quarter, in
        the outcome's units), ``clients_top_better`` (clients whose top-quarter units do
        better, respecting ``higher_is_better``) and ``mean_pct_diff``.

    Examples
    --------
    >>> import pandas as pd
    >>> roles = Roles(
    ...     drivers=[], engagement=[], nps=[], likert=[], ex_measures=["e"], cx=[],
    ...     business=["turnover"], outcomes=["turnover"], primary_cx=None, money=None,
    ...     higher_is_better={"turnover": False})
    >>> u = pd.DataFrame({"y": ["turnover"] * 3, "diff": [-4.0, 2.0, -6.0],
    ...                   "pct_diff": [-10.0, 5.0, -12.0]})
    >>> res = utility_summary(u, roles=roles)
    >>> res[["clients", "clients_top_better"]].values.tolist(), round(res["mean_diff"].item(), 3)
    ([[3, 2]], -2.667)
    """
    rows = []
    for y, g in utility.dropna(subset=["diff"]).groupby("y", sort=False):
        hib = roles.higher_is_better.get(y, True)
        better = (g["diff"] > 0) if hib else (g["diff"] < 0)
        rows.append({"y": y, "label": roles.label(y), "higher_is_better": hib,
                     "clients": int(len(g)), "mean_diff": float(g["diff"].mean()),
                     "median_diff": float(g["diff"].median()),
                     "clients_top_better": int(better.sum()),
                     "mean_pct_diff": float(g["pct_diff"].mean())})
    return pd.DataFrame(rows, columns=["y", "label", "higher_is_better", "clients", "mean_diff",
                                       "median_diff", "clients_top_better", "mean_pct_diff"])


def headline_table(rows) -> pd.DataFrame:
    """The synthesis' headline results for the site's index page.

    Parameters
    ----------
    rows : list of (label, value, note)

    Returns
    -------
    pandas.DataFrame
        ``label, value, note`` (text), written by the synthesis as ``headline.csv``; the
        build shows each row as a card on ``index.html`` (see ``exresearch.build``).
    """
    return pd.DataFrame([{"label": str(a), "value": str(b), "note": str(c)} for a, b, c in rows],
                        columns=["label", "value", "note"])
