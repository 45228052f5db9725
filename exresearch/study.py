"""The study input contract: load a study folder, validate it once, keep it in memory.

A study is a folder that a researcher prepares by hand or exports from survey
tools::

    <study>/
      study.yml
      clients/<client_id>/survey.csv      # or .parquet, .sav, .dta, .xlsx
      clients/<client_id>/outcomes.csv    # the same formats (readers: exresearch.readers)

:func:`load_study` reads ``study.yml``, generates pandera schemas from it, validates
every data file lazily (every problem is collected) and either returns a
:class:`Study` or raises one :class:`~exresearch.exceptions.StudyValidationError`
whose ``problems`` table lists every failure. :func:`validate_study` returns that
table instead of raising. Nothing is ever written into the study folder.

The problem table has the columns ``file, row, column, value, problem, severity``:

- ``file``: path relative to the study folder, ``/``-separated (``"."`` is the
  study folder itself);
- ``row``: the row number a user sees in the file. In a CSV file it is the line
  number: the header is row 1, so the first data row is row 2 (a spreadsheet shows
  the same numbers). A parquet file uses the same numbering (first record = row 2),
  so a row number means the same thing after converting between the two formats.
  In ``study.yml`` it is the line number. Empty (``<NA>``) for problems that concern
  a whole file or column;
- ``column``: the data column, or the ``study.yml`` key path (``scales.tools.reverse``);
- ``value``: the offending value as text (empty when not applicable);
- ``problem``: a sentence a researcher can act on;
- ``severity``: ``"error"`` (the study is rejected) or ``"warning"`` (the study loads,
  the warning is kept in ``study.warnings``).

See ``docs/study.md`` for the full contract.
"""

from __future__ import annotations

import csv
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._hashing import sha256_file
from .config import CLIENT_ID_PATTERN, DEFAULT_MIN_GROUP_SIZE, MIN_ALLOWED_GROUP_SIZE
from .exceptions import ParameterError, StudyValidationError

__all__ = [
    "load_study",
    "validate_study",
    "format_problems",
    "summarize_problems",
    "Study",
    "StudyConfig",
    "ScaleSpec",
    "OutcomeSpec",
    "ClientSpec",
    "PROBLEM_COLUMNS",
    "SURVEY_KEYS",
    "OUTCOME_KEYS",
]

#: Columns of every problem table, in this order.
PROBLEM_COLUMNS = ["file", "row", "column", "value", "problem", "severity"]
#: Key columns of a survey file (one row per respondent per period).
SURVEY_KEYS = ("unit_id", "period", "respondent_id")
#: Key columns of an outcomes file (one row per unit per period).
OUTCOME_KEYS = ("unit_id", "period")

_STUDY_FILE = "study.yml"
_CLIENTS_DIR = "clients"
_DATA_FILES = ("survey", "outcomes")
_FORMATS = ("csv", "parquet", "sav", "dta", "xlsx")
_CLIENT_ID_RE = re.compile(CLIENT_ID_PATTERN)

_TOP_KEYS = (
    "name", "seed", "min_group_size", "periods", "points", "scales", "outcomes",
    "covariates", "publish_client_names", "clients", "ranges", "averaged_answers", "sheets",
    "currency", "horizon_years", "reference_sd",
)
_REQUIRED_TOP_KEYS = ("name", "periods", "scales", "outcomes", "clients")
_SCALE_KEYS = ("items", "reverse", "role", "label", "points", "kind", "cost")
# ISO 4217 alphabetic code (three capital letters), e.g. EUR, USD, GBP.
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
_OUTCOME_SPEC_KEYS = ("label", "kind", "higher_is_better", "reliability")
_CLIENT_KEYS = ("id", "name", "industry", "revenue", "headcount")
_SCALE_KINDS = ("likert", "nps")
_SCALE_ROLES = ("engagement",)
_OUTCOME_KINDS = ("cx", "business")
_NPS_POINTS = (0, 10)
_DEFAULT_POINTS = (1, 5)
#: Plausible range of an outcome or covariate value when study.yml gives no ``ranges``
#: entry for its column. A value outside it is an error (a typo, a unit mix-up, a
#: sentinel such as 1e308 or 99999): ``cx`` outcomes are scores such as an NPS (-100 to
#: 100) or a % satisfied; ``business`` outcomes and covariates only need to be sane
#: magnitudes; a count (a column called ``headcount``, ``*_count`` or ``n_*``) cannot be
#: negative. Non-finite values (inf, -inf) are always errors.
DEFAULT_RANGES = {
    "cx": (-100.0, 100.0),
    "business": (-1e12, 1e12),
    "covariate": (-1e12, 1e12),
    "count": (0.0, 1e12),
}
_SHEET_KEYS = _DATA_FILES
# Text that a CSV cell may hold for a missing numeric answer (besides an empty cell).
_NUMERIC_NA = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "#N/A"]
# Row-number offset: the header is row 1, so data record i (0-based) is row i + 2.
_ROW_OFFSET = 2
_MAX_LISTED = 8


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class ScaleSpec:
    """One scale declared in ``study.yml``.

    Parameters
    ----------
    name : str
        Scale name (the key under ``scales``).
    items : tuple of str
        Item columns of the survey file, in the declared order.
    reverse : tuple of str
        Items that are reverse-coded (a subset of ``items``).
    points : tuple of (int, int)
        Lowest and highest allowed answer.
    role : {'engagement', None}
        ``'engagement'`` marks the engagement index.
    label : str
        Human-readable name (defaults to ``name``).
    kind : {'likert', 'nps'}
        ``'nps'`` scales hold one 0-10 item scored as an eNPS.
    cost : float or None
        Cost, in the study's ``currency``, of raising the client's average score on this
        driver by one point (optional; the value section then shows net value and
        break-even).

    Examples
    --------
    >>> tools = ScaleSpec("tools", items=("tools_1", "tools_2"), reverse=("tools_2",))
    >>> tools.points, tools.kind
    ((1, 5), 'likert')
    """

    name: str
    items: tuple[str, ...]
    reverse: tuple[str, ...] = ()
    points: tuple[int, int] = _DEFAULT_POINTS
    role: str | None = None
    label: str = ""
    kind: str = "likert"
    cost: float | None = None


@dataclass(frozen=True)
class OutcomeSpec:
    """One unit-level outcome declared in ``study.yml``.

    Parameters
    ----------
    name : str
        Column name in the outcomes files.
    label : str
        Human-readable name (defaults to ``name``).
    kind : {'cx', 'business'}
        Customer-experience or business outcome.
    higher_is_better : bool
        False for outcomes such as turnover, where lower values are better.
    reliability : float or None
        Reliability of the unit-level outcome, in (0, 1], used by the synthesis'
        psychometric correction instead of its test-retest estimate across periods.

    Examples
    --------
    >>> OutcomeSpec("turnover", "Employee turnover (%)", "business", higher_is_better=False)
    OutcomeSpec(name='turnover', label='Employee turnover (%)', kind='business', higher_is_better=False)
    """

    name: str
    label: str
    kind: str
    higher_is_better: bool = True
    reliability: float | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ClientSpec:
    """One client organisation listed in ``study.yml``.

    Parameters
    ----------
    id : str
        Folder name under ``clients/``; matches ``exresearch.config.CLIENT_ID_PATTERN``.
    name : str
        Display name (defaults to ``id``); shown only if ``publish_client_names``.
    industry : str or None
        Industry label used for benchmarks.
    revenue : float or None
        Annual revenue, used by the economics module and as a moderator.
    headcount : float or None
        Number of employees, a client characteristic tested as a moderator.

    Examples
    --------
    >>> ClientSpec("acme", "Acme Retail", industry="retail").revenue is None
    True
    """

    id: str
    name: str
    industry: str | None = None
    revenue: float | None = None
    headcount: float | None = None


@dataclass(frozen=True)
class StudyConfig:
    """The parsed ``study.yml``.

    Parameters
    ----------
    name : str
        Study title.
    seed : int
        Seed from which every random step derives (default 0).
    min_group_size : int
        Smallest group whose values may be shown (default 5, never below 3).
    periods : list of str
        Survey periods in time order.
    points : tuple of (int, int)
        Default answer range of the items.
    scales : dict of str to ScaleSpec
        Scales in declared order.
    outcomes : dict of str to OutcomeSpec
        Outcomes in declared order.
    covariates : tuple of str
        Unit-level controls held in the outcomes files.
    publish_client_names : bool
        Whether reports may name clients (otherwise pseudonyms).
    clients : tuple of ClientSpec
        Clients in declared order.
    ranges : dict of str to (float, float)
        Plausible ``(low, high)`` of every outcome and covariate column: the
        ``ranges`` entry of study.yml, else :data:`DEFAULT_RANGES` for its kind.
    averaged_answers : bool
        True when answers between scale points (3.5 on a 1-5 scale) are expected
        (item scores averaged before export): they are then warnings, not errors.
    sheets : dict of str to str
        Worksheet to read from ``survey.xlsx`` / ``outcomes.xlsx`` (default: the first).
    currency : str or None
        ISO 4217 code of every money amount (``revenue``, scale ``cost``), e.g. ``"EUR"``.
    horizon_years : float
        Years over which the reports add up money (default 1).
    reference_sd : dict of str to float
        Optional SD of unit-level scores of an EX measure (or outcome) in a reference
        population; the synthesis then corrects for direct range restriction.

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> from exresearch.study import load_study
    >>> config = load_study(ROOT / "tests" / "studies" / "valid").config
    >>> config.periods
    ['2025Q1', '2025Q2']
    >>> config.scales["tools"].reverse
    ('tools_2',)
    >>> config.client("acme").industry
    'retail'
    >>> config.items[:3]
    ('eng_1', 'eng_2', 'eng_3')
    """

    name: str
    seed: int = 0
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE
    periods: list[str] = field(default_factory=list)
    points: tuple[int, int] = _DEFAULT_POINTS
    scales: dict[str, ScaleSpec] = field(default_factory=dict)
    outcomes: dict[str, OutcomeSpec] = field(default_factory=dict)
    covariates: tuple[str, ...] = ()
    publish_client_names: bool = False
    clients: tuple[ClientSpec, ...] = ()
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    averaged_answers: bool = False
    sheets: dict[str, str] = field(default_factory=dict)
    currency: str | None = None
    horizon_years: float = 1.0
    reference_sd: dict = field(default_factory=dict)

    @property
    def items(self) -> tuple[str, ...]:
        """Every item column, in the order the scales declare them."""
        return tuple(item for spec in self.scales.values() for item in spec.items)

    @property
    def client_ids(self) -> list[str]:
        """Client ids in ``study.yml`` order."""
        return [c.id for c in self.clients]

    def client(self, id: str) -> ClientSpec:  # noqa: A002  (the data model calls it id)
        """Return the :class:`ClientSpec` of client ``id``.

        Raises
        ------
        ParameterError
            If no client has that id (the message lists the valid ids).
        """
        for spec in self.clients:
            if spec.id == id:
                return spec
        raise ParameterError(
            f"`id` must be one of the study's clients {self.client_ids}, but {id!r} was passed"
        )


# --------------------------------------------------------------------------- problems


class _Problems:
    """Collects problem rows: single rows as dicts, many rows as DataFrames."""

    def __init__(self):
        self._parts: list[pd.DataFrame] = []
        self._rows: list[dict] = []

    def add(self, file, problem, *, row=None, column=None, value=None, severity="error"):
        self._rows.append({
            "file": file, "row": row, "column": column,
            "value": None if value is None else str(value),
            "problem": problem, "severity": severity,
        })

    def add_frame(self, frame: pd.DataFrame):
        if len(frame):
            self._flush()
            self._parts.append(frame[PROBLEM_COLUMNS])

    def _flush(self):
        if self._rows:
            self._parts.append(pd.DataFrame(self._rows, columns=PROBLEM_COLUMNS))
            self._rows = []

    @property
    def has_errors(self) -> bool:
        self._flush()
        return any((p["severity"] == "error").any() for p in self._parts)

    def frame(self) -> pd.DataFrame:
        self._flush()
        if not self._parts:
            return _empty_problems()
        parts = [p.astype({"row": "Int64"}) for p in self._parts]
        out = pd.concat(parts, ignore_index=True)
        out["row"] = out["row"].astype("Int64")
        for col in ("file", "column", "value", "problem", "severity"):
            out[col] = out[col].astype(object)
        return out


def _empty_problems() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype=object) for c in PROBLEM_COLUMNS})
    out["row"] = out["row"].astype("Int64")
    return out


def _listing(values, limit: int = _MAX_LISTED) -> str:
    values = list(values)
    text = ", ".join(str(v) for v in values[:limit])
    if len(values) > limit:
        text += f", ... ({len(values)} in all)"
    return text


def _did_you_mean(name: str, candidates) -> str | None:
    """The candidate ``name`` most likely stands for, ignoring case, spaces and '-'/'_'.

    ``Unit_ID`` -> ``unit_id``, ``TOOLS 1`` -> ``tools_1``, ``min_groupsize`` ->
    ``min_group_size``; None when nothing is close (difflib ratio below 0.6).

    Examples
    --------
    >>> _did_you_mean("Unit_ID", ["unit_id", "period"])
    'unit_id'
    >>> _did_you_mean("zzz", ["unit_id", "period"]) is None
    True
    """
    def norm(text):
        return re.sub(r"[\s_\-]+", "_", str(text).strip().casefold())

    candidates = [str(c) for c in candidates]
    exact = [c for c in candidates if norm(c) == norm(name)]
    if exact:
        return exact[0]
    by_norm = {norm(c): c for c in candidates}
    hint = difflib.get_close_matches(norm(name), list(by_norm), n=1, cutoff=0.6)
    return by_norm[hint[0]] if hint else None


def _is_count(column: str) -> bool:
    """Whether a column name says it holds a count (headcount, staff_count, n_staff)."""
    low = column.casefold()
    return low == "headcount" or low.endswith(("_count", "headcount")) or low.startswith("n_")


def _fmt_values(values: pd.Series) -> pd.Series:
    """Format failure values as text: integral numbers without '.0' (vectorised)."""
    text = values.astype(object).where(values.notna(), "").astype(str)
    num = pd.to_numeric(values, errors="coerce")
    num = num.astype("float64")
    integral = num.notna() & (num.abs() < 1e15) & (num == num.round())
    if integral.any():
        text = text.where(~integral, num.where(integral, 0).astype("int64").astype(str))
    return text


def format_problems(problems: pd.DataFrame) -> str:
    """Render a problem table as left-aligned plain text, one problem per line.

    Parameters
    ----------
    problems : pandas.DataFrame
        A table with the columns of :data:`PROBLEM_COLUMNS`.

    Returns
    -------
    str
        The table with a header line; empty cells for missing values.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"file": ["study.yml"], "row": [3], "column": ["seed"],
    ...                       "value": ["x"], "problem": ["seed must be an integer"],
    ...                       "severity": ["error"]})
    >>> print(format_problems(table))
    severity  file       row  column  value  problem
    error     study.yml    3  seed    x      seed must be an integer
    """
    cols = ["severity", "file", "row", "column", "value", "problem"]
    if problems is None or len(problems) == 0:
        return ""
    shown = problems[cols].astype(object).where(problems[cols].notna(), "").astype(str)
    widths = {c: max(len(c), int(shown[c].str.len().max())) for c in cols}
    lines = []
    for values in [cols, *shown.itertuples(index=False, name=None)]:
        parts = []
        for c, v in zip(cols, values, strict=True):
            if c == "problem":
                parts.append(v)
            elif c == "row" and v != "row":
                parts.append(v.rjust(widths[c]))
            else:
                parts.append(v.ljust(widths[c]))
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def summarize_problems(problems: pd.DataFrame) -> pd.DataFrame:
    """Count problems by kind: one row per severity, file, column and kind of problem.

    The kind is the problem sentence with its particular values taken out (quoted
    text becomes ``'...'``, numbers ``#``), so one million out-of-range answers in one
    column make one row. Used by ``exresearch validate`` when there are more problems
    than it prints.

    Parameters
    ----------
    problems : pandas.DataFrame
        A problem table (:data:`PROBLEM_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        ``severity, file, column, kind, count, first_row``, errors first, then by
        decreasing count.

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> table = validate_study(ROOT / "tests" / "studies" / "out_of_range")
    >>> summary = summarize_problems(table)
    >>> summary["kind"].iloc[0]
    "value # outside the scale range #-# of scale '...'"
    >>> summary[["column", "count", "first_row"]].values.tolist()
    [['eng_2', 1, 3], ['h_1', 1, 5], ['enps_0_10', 1, 6], ['tools_1', 1, 7]]
    """
    cols = ["severity", "file", "column", "kind", "count", "first_row"]
    if problems is None or len(problems) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    text = problems["problem"].astype(str)
    unique = pd.Series(text.unique())  # a million problems are a few distinct sentences
    kinds = unique.str.replace(r"'[^']*'", "'...'", regex=True).str.replace(
        r"(?<![\w.])-?\d[\d,]*(\.\d+)?(e[+-]?\d+)?(?![\w])", "#", regex=True)
    kind = text.map(dict(zip(unique, kinds, strict=True)))
    table = pd.DataFrame({
        "severity": problems["severity"].astype(str), "file": problems["file"].astype(str),
        "column": problems["column"].astype(object).where(problems["column"].notna(), "")
        .astype(str), "kind": kind, "row": problems["row"]})
    out = (table.groupby(["severity", "file", "column", "kind"], sort=False, dropna=False)
           .agg(count=("kind", "size"), first_row=("row", "min")).reset_index())
    out["_error"] = out["severity"] != "error"
    out = out.sort_values(["_error", "count"], ascending=[True, False], kind="stable")
    return out[cols].reset_index(drop=True)


# --------------------------------------------------------------------------- study.yml


class _Yaml:
    """Line numbers of the keys and list entries of a composed YAML document."""

    def __init__(self):
        self.lines: dict[tuple, int] = {}
        # the text of each scalar as written: periods and ids stay what the user typed
        # (YAML would make 2025.10 the float 2025.1 and 007 the integer 7)
        self.raw: dict[tuple, str] = {}

    def line(self, *path) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


#: study.yml larger than this is refused before parsing: a study description is a few
#: KB (1,000 clients take about 80 KB), and parsing stays well under 2 s below it.
MAX_STUDY_YML_BYTES = 128 * 1024


class _AliasRefused(Exception):
    """An anchor or alias in study.yml (found before anything is expanded)."""

    def __init__(self, mark, what: str):
        super().__init__(what)
        self.mark, self.what = mark, what


def _loaders():
    """(fast, exact) YAML loaders: libyaml's CSafeLoader when PyYAML has it, and SafeLoader."""
    import yaml

    fast = getattr(yaml, "CSafeLoader", None) if getattr(yaml, "__with_libyaml__", False) \
        else None
    return fast or yaml.SafeLoader, yaml.SafeLoader


def _refuse_aliases(text: str, loader_cls) -> None:
    """Raise _AliasRefused at the first YAML anchor or alias of ``text``.

    PyYAML composes an alias as a second reference to the same node, and every walk
    over the node graph (constructing it, recording line numbers) then expands it: a
    2 KB file of nested aliases ("billion laughs") grows to gigabytes. PyYAML has no
    option to refuse or bound them, so the parse events are checked first (a study
    description has no use for them). Text without '&' or '*' cannot hold either.
    """
    import yaml

    if "&" not in text and "*" not in text:
        return
    loader = loader_cls(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.AliasEvent):
                raise _AliasRefused(event.start_mark, f"alias '*{event.anchor}'")
            if getattr(event, "anchor", None):
                raise _AliasRefused(event.start_mark, f"anchor '&{event.anchor}'")
    finally:
        loader.dispose()


def _compose(text: str, loader_cls):
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _read_yaml(text: str, problems: _Problems):
    """Parse study.yml; report syntax errors and duplicate keys with line numbers."""
    import yaml

    where = _Yaml()
    fast, exact = _loaders()
    try:
        try:
            _refuse_aliases(text, fast)
            node, data = _compose(text, fast)
        except yaml.YAMLError:
            if fast is exact or len(text) > 64 * 1024:
                raise
            # libyaml's messages are terser: re-read a small file for PyYAML's wording
            _refuse_aliases(text, exact)
            node, data = _compose(text, exact)
    except _AliasRefused as exc:
        line = exc.mark.line + 1
        problems.add(_STUDY_FILE, f"YAML {exc.what} at line {line}: anchors and aliases "
                     "(&name, *name) are not allowed in study.yml; write each value out",
                     row=line)
        return None, where
    except RecursionError:
        problems.add(_STUDY_FILE, "study.yml is nested too deeply to be a study description")
        return None, where
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc)
        context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and cmark is not None and mark is not None and cmark.line != mark.line:
            what = f"{context} started at line {cmark.line + 1}: {what}"
        elif context:
            what = f"{context}: {what}"
        col = f", column {mark.column + 1}" if mark is not None else ""
        problems.add(_STUDY_FILE, f"YAML syntax error at line {line}{col}: {what}", row=line)
        return None, where

    def walk(n, path):
        if isinstance(n, yaml.MappingNode):
            seen = set()
            for k, v in n.value:
                key = k.value
                line = k.start_mark.line + 1
                if key in seen:
                    problems.add(
                        _STUDY_FILE, f"key '{key}' appears more than once"
                        f"{' under ' + '.'.join(map(str, path)) if path else ''}; "
                        "only the last one would count", row=line,
                        column=".".join(map(str, (*path, key))))
                seen.add(key)
                where.lines[(*path, key)] = line
                walk(v, (*path, key))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                where.lines[(*path, i)] = v.start_mark.line + 1
                walk(v, (*path, i))
        elif isinstance(n, yaml.ScalarNode):
            where.raw[path] = n.value

    if node is not None:
        where.lines[()] = node.start_mark.line + 1
        try:
            walk(node, ())
        except RecursionError:
            problems.add(_STUDY_FILE, "study.yml is nested too deeply to be a study description")
            return None, where
    return data, where


class _ConfigParser:
    """Turn the study.yml mapping into a StudyConfig, reporting every problem."""

    def __init__(self, data: dict, where: _Yaml, problems: _Problems):
        self.data = data
        self.where = where
        self.problems = problems

    def error(self, path: tuple, problem: str, value=None, severity="error"):
        self.problems.add(
            _STUDY_FILE, problem, row=self.where.line(*path),
            column=".".join(str(p) for p in path) or None, value=value, severity=severity)

    def unknown_keys(self, mapping: dict, allowed, path: tuple, what: str):
        for key in mapping:
            if key in allowed:
                continue
            hint = _did_you_mean(str(key), allowed)
            suggestion = f"; did you mean '{hint}'?" if hint else ""
            self.error((*path, key), f"unknown key '{key}' in {what}{suggestion} "
                       f"(valid keys: {', '.join(allowed)})", value=key)

    # scalar helpers -------------------------------------------------------
    def integer(self, value, path, *, minimum=None, why=""):
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"{path[-1]} must be an integer{why}, got {value!r}", value=value)
            return None
        if minimum is not None and value < minimum:
            self.error(path, f"{path[-1]} must be at least {minimum}{why}, got {value}",
                       value=value)
            return None
        return value

    def boolean(self, value, path):
        if not isinstance(value, bool):
            self.error(path, f"{path[-1]} must be true or false, got {value!r}", value=value)
            return None
        return value

    def text(self, value, path):
        if value is None or isinstance(value, (dict, list)) or str(value).strip() == "":
            self.error(path, f"{path[-1]} must be a non-empty text, got {value!r}", value=value)
            return None
        return str(value)

    def names(self, value, path, *, allow_empty=False):
        """A list of unique names (items, periods, covariates)."""
        if not isinstance(value, list) or (not value and not allow_empty):
            need = "a list" if allow_empty else "a non-empty list"
            self.error(path, f"{path[-1]} must be {need} such as [a, b], got {value!r}",
                       value=value)
            return None
        out, seen = [], set()
        for i, v in enumerate(value):
            if v is None or isinstance(v, (dict, list)) or str(v).strip() == "":
                self.error((*path, i), f"entry {i + 1} of {path[-1]} must be a name, got {v!r}",
                           value=v)
                continue
            name = self.where.raw.get((*path, i), str(v))  # as written: 2025.10 stays
            if name in seen:
                self.error((*path, i), f"'{name}' appears more than once in {path[-1]}",
                           value=name)
                continue
            seen.add(name)
            out.append(name)
        return out

    def points(self, value, path):
        ok = (isinstance(value, list) and len(value) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
        if not ok or value[0] >= value[1]:
            self.error(path, f"{'.'.join(map(str, path))} must be [min, max] with two integers "
                       f"and min < max, such as [1, 5], got {value!r}", value=value)
            return None
        return (value[0], value[1])

    # sections -------------------------------------------------------------
    def parse(self) -> StudyConfig | None:
        d = self.data
        self.unknown_keys(d, _TOP_KEYS, (), "study.yml")
        for key in _REQUIRED_TOP_KEYS:
            if key not in d:
                self.problems.add(_STUDY_FILE, f"required key '{key}' is missing", column=key)
        name = self.text(d["name"], ("name",)) if "name" in d else None
        seed = self.integer(d.get("seed", 0), ("seed",), minimum=0)
        mgs = self.integer(
            d.get("min_group_size", DEFAULT_MIN_GROUP_SIZE), ("min_group_size",),
            minimum=MIN_ALLOWED_GROUP_SIZE,
            why=" (smaller groups could identify individual respondents)")
        periods = self.names(d["periods"], ("periods",)) if "periods" in d else None
        points = self.points(d["points"], ("points",)) if "points" in d else _DEFAULT_POINTS
        scales = self.scales(d.get("scales"), points or _DEFAULT_POINTS) if "scales" in d else {}
        outcomes = self.outcomes(d.get("outcomes")) if "outcomes" in d else {}
        covariates = (self.names(d["covariates"], ("covariates",), allow_empty=True)
                      if "covariates" in d else [])
        publish = (self.boolean(d["publish_client_names"], ("publish_client_names",))
                   if "publish_client_names" in d else False)
        clients = self.clients(d.get("clients")) if "clients" in d else []
        currency = self.currency(d["currency"]) if "currency" in d else None
        horizon = (self.positive(d["horizon_years"], ("horizon_years",))
                   if "horizon_years" in d else None)
        reference_sd = self.reference_sd(d["reference_sd"]) if "reference_sd" in d else {}
        self.collisions(scales, outcomes, covariates or [])
        ranges = self.ranges(d.get("ranges"), outcomes, covariates or []) \
            if "ranges" in d else self.ranges({}, outcomes, covariates or [])
        averaged = (self.boolean(d["averaged_answers"], ("averaged_answers",))
                    if "averaged_answers" in d else False)
        sheets = self.sheets(d["sheets"]) if "sheets" in d else {}
        return StudyConfig(
            name=name or "", seed=seed or 0,
            min_group_size=mgs if mgs is not None else DEFAULT_MIN_GROUP_SIZE,
            periods=periods or [], points=points or _DEFAULT_POINTS, scales=scales,
            outcomes=outcomes, covariates=tuple(covariates or ()),
            publish_client_names=bool(publish), clients=tuple(clients),
            ranges=ranges, averaged_answers=bool(averaged), sheets=sheets,
            currency=currency, horizon_years=horizon or 1.0,
            reference_sd=reference_sd,
        )

    def currency(self, value):
        if not isinstance(value, str) or not _CURRENCY_RE.fullmatch(value):
            self.error(("currency",), "currency must be a three-letter ISO 4217 code in "
                       f"capitals such as EUR, USD or GBP, got {value!r}", value=value)
            return None
        return value

    def positive(self, value, path, *, allow_zero=False):
        ok = (not isinstance(value, bool) and isinstance(value, (int, float))
              and np.isfinite(value) and (value >= 0 if allow_zero else value > 0))
        if not ok:
            need = "a non-negative" if allow_zero else "a positive"
            self.error(path, f"{path[-1]} must be {need} number, got {value!r}", value=value)
            return None
        return float(value)

    def positive_number(self, value, path, *, at_most=None):
        ok = (not isinstance(value, bool) and isinstance(value, (int, float))
              and np.isfinite(value) and value > 0 and (at_most is None or value <= at_most))
        if not ok:
            rng = f"in (0, {at_most}]" if at_most is not None else "a positive number"
            self.error(path, f"{path[-1]} must be {rng}, "
                       f"got {value!r}", value=value)
            return None
        return float(value)

    def reference_sd(self, value) -> dict:
        if not isinstance(value, dict):
            self.error(("reference_sd",), "reference_sd must be a mapping of measure -> SD "
                       "such as {ex_index: 0.4}, got " + repr(value), value=value)
            return {}
        out = {}
        for name, sd in value.items():
            sd = self.positive_number(sd, ("reference_sd", str(name)))
            if sd is not None:
                out[str(name)] = sd
        return out

    def ranges(self, value, outcomes, covariates) -> dict[str, tuple[float, float]]:
        """Plausible range of each outcome and covariate: study.yml's, else the default."""
        out = {}
        for name, spec in outcomes.items():
            out[name] = DEFAULT_RANGES["count" if _is_count(name) else spec.kind]
        for name in covariates:
            out[name] = DEFAULT_RANGES["count" if _is_count(name) else "covariate"]
        if not isinstance(value, dict):
            self.error(("ranges",), "ranges must be a mapping of outcome or covariate column "
                       "-> [low, high], such as {nps: [-100, 100]}, got " + repr(value),
                       value=value)
            return out
        for name, bounds in value.items():
            name, path = str(name), ("ranges", str(name))
            if name not in out:
                hint = _did_you_mean(name, list(out))
                self.error(path, f"ranges: '{name}' is not an outcome or covariate column"
                           + (f"; did you mean '{hint}'?" if hint else "")
                           + f" (columns: {_listing(out) or 'none'})", value=name)
                continue
            ok = (isinstance(bounds, list) and len(bounds) == 2 and all(
                b is None or (isinstance(b, (int, float)) and not isinstance(b, bool)
                              and np.isfinite(b)) for b in bounds))
            if ok:
                lo = -np.inf if bounds[0] is None else float(bounds[0])
                hi = np.inf if bounds[1] is None else float(bounds[1])
                ok = lo < hi
            if not ok:
                self.error(path, f"ranges.{name} must be [low, high] with two finite numbers "
                           "(or null for no bound) and low < high, such as [0, 100], got "
                           f"{bounds!r}", value=bounds)
                continue
            out[name] = (lo, hi)
        return out

    def sheets(self, value) -> dict[str, str]:
        if not isinstance(value, dict):
            self.error(("sheets",), "sheets must be a mapping such as {survey: Responses, "
                       f"outcomes: Results}}, got {value!r}", value=value)
            return {}
        self.unknown_keys(value, _SHEET_KEYS, ("sheets",), "sheets")
        out = {}
        for key in _SHEET_KEYS:
            if key in value:
                name = self.text(value[key], ("sheets", key))
                if name is not None:
                    out[key] = self.where.raw.get(("sheets", key), name)
        return out

    def scales(self, value, default_points) -> dict[str, ScaleSpec]:
        if not isinstance(value, dict) or not value:
            self.error(("scales",), "scales must be a mapping of scale name -> "
                       "{items: [...]}, with at least one scale", value=value)
            return {}
        out: dict[str, ScaleSpec] = {}
        owner: dict[str, str] = {}
        for name, spec in value.items():
            name = str(name)
            path = ("scales", name)
            if not isinstance(spec, dict):
                self.error(path, f"scale '{name}' must be a mapping such as "
                           "{items: [a, b]}, got " + repr(spec), value=spec)
                continue
            self.unknown_keys(spec, _SCALE_KEYS, path, f"scale '{name}'")
            if "items" not in spec:
                self.error(path, f"scale '{name}' has no items")
                continue
            items = self.names(spec["items"], (*path, "items"))
            if not items:
                continue
            kind = spec.get("kind", "likert")
            if kind not in _SCALE_KINDS:
                self.error((*path, "kind"), f"kind of scale '{name}' must be one of "
                           f"{list(_SCALE_KINDS)}, got {kind!r}", value=kind)
                kind = "likert"
            if "points" in spec:
                pts = self.points(spec["points"], (*path, "points")) or default_points
            else:
                pts = _NPS_POINTS if kind == "nps" else default_points
            role = spec.get("role")
            if role is not None and role not in _SCALE_ROLES:
                self.error((*path, "role"), f"role of scale '{name}' must be one of "
                           f"{list(_SCALE_ROLES)} or left out, got {role!r}", value=role)
                role = None
            reverse = (self.names(spec["reverse"], (*path, "reverse"), allow_empty=True)
                       if "reverse" in spec else [])
            for i, item in enumerate(reverse or []):
                if item not in items:
                    self.error((*path, "reverse", i), f"reverse item '{item}' is not one of the "
                               f"items of scale '{name}' ({', '.join(items)})", value=item)
            reverse = [r for r in reverse or [] if r in items]
            if kind == "nps" and reverse:
                self.error((*path, "reverse"), f"scale '{name}' of kind 'nps' cannot have "
                           "reverse items")
                reverse = []
            for i, item in enumerate(items):
                if item in SURVEY_KEYS:
                    self.error((*path, "items", i), f"item '{item}' of scale '{name}' uses a "
                               f"reserved column name ({', '.join(SURVEY_KEYS)})", value=item)
                elif item in owner:
                    self.error((*path, "items", i), f"item '{item}' is in two scales: "
                               f"'{owner[item]}' and '{name}'; an item may belong to one "
                               "scale only", value=item)
                else:
                    owner[item] = name
            label = self.text(spec["label"], (*path, "label")) if "label" in spec else name
            cost = (self.positive(spec["cost"], (*path, "cost"), allow_zero=True)
                    if "cost" in spec else None)
            out[name] = ScaleSpec(name=name, items=tuple(items), reverse=tuple(reverse),
                                  points=pts, role=role, label=label or name, kind=kind,
                                  cost=cost)
        engagement = [s.name for s in out.values() if s.role == "engagement"]
        if len(engagement) > 1:
            self.error(("scales", engagement[1], "role"), "only one scale may have role "
                       f"'engagement', got {', '.join(engagement)}")
        return out

    def outcomes(self, value) -> dict[str, OutcomeSpec]:
        if not isinstance(value, dict) or not value:
            self.error(("outcomes",), "outcomes must be a mapping of outcome column -> "
                       "{label: ..., kind: cx|business}, with at least one outcome", value=value)
            return {}
        out = {}
        for name, spec in value.items():
            name = str(name)
            path = ("outcomes", name)
            if not isinstance(spec, dict):
                self.error(path, f"outcome '{name}' must be a mapping such as "
                           "{label: ..., kind: cx}, got " + repr(spec), value=spec)
                continue
            self.unknown_keys(spec, _OUTCOME_SPEC_KEYS, path, f"outcome '{name}'")
            kind = spec.get("kind")
            if kind not in _OUTCOME_KINDS:
                self.error((*path, "kind") if "kind" in spec else path,
                           f"kind of outcome '{name}' must be one of {list(_OUTCOME_KINDS)}, "
                           f"got {kind!r}", value=kind)
                kind = "business"
            label = self.text(spec["label"], (*path, "label")) if "label" in spec else name
            hib = (self.boolean(spec["higher_is_better"], (*path, "higher_is_better"))
                   if "higher_is_better" in spec else True)
            rel = (self.positive_number(spec["reliability"], (*path, "reliability"), at_most=1)
                   if "reliability" in spec else None)
            out[name] = OutcomeSpec(name=name, label=label or name, kind=kind,
                                    higher_is_better=True if hib is None else hib,
                                    reliability=rel)
        return out

    def clients(self, value) -> list[ClientSpec]:
        if not isinstance(value, list) or not value:
            self.error(("clients",), "clients must be a non-empty list such as "
                       "[{id: acme, name: Acme}]", value=value)
            return []
        out, seen = [], set()
        for i, spec in enumerate(value):
            path = ("clients", i)
            if not isinstance(spec, dict):
                self.error(path, f"client {i + 1} must be a mapping such as "
                           "{id: acme, name: Acme}, got " + repr(spec), value=spec)
                continue
            self.unknown_keys(spec, _CLIENT_KEYS, path, f"client {i + 1}")
            if "id" not in spec:
                self.error(path, f"client {i + 1} has no id")
                continue
            if spec["id"] is None or isinstance(spec["id"], (dict, list)):
                self.error((*path, "id"), f"client {i + 1} has an empty id: write the name of "
                           f"its folder under clients/ (matching {CLIENT_ID_PATTERN})",
                           value=spec["id"])
                continue
            cid = self.where.raw.get((*path, "id"), str(spec["id"]))  # 007 stays '007'
            if not _CLIENT_ID_RE.fullmatch(cid):
                self.error((*path, "id"), f"client id '{cid}' is invalid: ids must match "
                           f"{CLIENT_ID_PATTERN} (lower-case letters, digits, '_' and '-', "
                           "starting with a letter or digit, at most 64 characters)", value=cid)
                continue
            if cid in seen:
                self.error((*path, "id"), f"client id '{cid}' is listed more than once",
                           value=cid)
                continue
            seen.add(cid)
            name = self.text(spec["name"], (*path, "name")) if "name" in spec else cid
            industry = spec.get("industry")
            if industry is not None:
                industry = self.text(industry, (*path, "industry"))
            revenue = spec.get("revenue")
            if revenue is not None:
                if isinstance(revenue, bool) or not isinstance(revenue, (int, float)) \
                        or not np.isfinite(revenue) or revenue < 0:
                    self.error((*path, "revenue"), "revenue must be a non-negative number, "
                               f"got {revenue!r}", value=revenue)
                    revenue = None
                else:
                    revenue = float(revenue)
            headcount = spec.get("headcount")
            if headcount is not None:
                headcount = self.positive_number(headcount, (*path, "headcount"))
            out.append(ClientSpec(id=cid, name=name or cid, industry=industry, revenue=revenue,
                                  headcount=headcount))
        return out

    def collisions(self, scales, outcomes, covariates):
        items = {i for s in scales.values() for i in s.items}
        for name in outcomes:
            if name in OUTCOME_KEYS:
                self.error(("outcomes", name), f"outcome '{name}' uses a reserved column name")
            elif name in items:
                self.error(("outcomes", name), f"outcome '{name}' has the name of an item")
        for i, name in enumerate(covariates):
            if name in OUTCOME_KEYS or name in outcomes:
                self.error(("covariates", i), f"covariate '{name}' has the name of an "
                           "outcome or key column", value=name)


# --------------------------------------------------------------------------- data files


@dataclass(frozen=True)
class _Num:
    """What a numeric column may hold."""

    lo: float
    hi: float
    scale: str | None = None  # the item's scale; None for outcomes and covariates
    what: str = ""  # "a cx outcome", "a count", ... (outcomes and covariates)
    whole: str | None = None  # items: severity of an answer between scale points


@dataclass
class _FileSpec:
    """What one data file must hold; drives reading and the pandera schema."""

    kind: str  # "survey" or "outcomes"
    keys: tuple[str, ...]
    numeric: dict[str, _Num]
    roles: dict[str, str]  # column -> how a missing column is described
    periods: list[str]
    sheet: str | None = None  # worksheet of an .xlsx file (None: the first)

    @property
    def columns(self) -> list[str]:
        return [*self.keys, *self.numeric]


def _survey_spec(config: StudyConfig) -> _FileSpec:
    numeric, roles = {}, {}
    whole = "warning" if config.averaged_answers else "error"
    for scale in config.scales.values():
        for item in scale.items:
            if item in numeric:  # in two scales: reported in study.yml, first scale wins
                continue
            numeric[item] = _Num(scale.points[0], scale.points[1], scale=scale.name,
                                 whole=whole)
            roles[item] = f"item column '{item}' of scale '{scale.name}'"
    return _FileSpec("survey", SURVEY_KEYS, numeric, roles, list(config.periods),
                     config.sheets.get("survey"))


def _outcome_spec(config: StudyConfig) -> _FileSpec:
    numeric, roles = {}, {}
    for name, spec in config.outcomes.items():
        lo, hi = config.ranges.get(name, DEFAULT_RANGES[spec.kind])
        what = "a count" if _is_count(name) else f"a {spec.kind} outcome"
        numeric[name] = _Num(lo, hi, what=what)
        roles[name] = f"outcome column '{name}'"
    for name in config.covariates:
        lo, hi = config.ranges.get(name, DEFAULT_RANGES["covariate"])
        numeric[name] = _Num(lo, hi, what="a count" if _is_count(name) else "a covariate")
        roles[name] = f"covariate column '{name}'"
    return _FileSpec("outcomes", OUTCOME_KEYS, numeric, roles, list(config.periods),
                     config.sheets.get("outcomes"))


def _fmt_number(x: float) -> str:
    """A bound as text: 100 not 100.0, 1e+12 for huge ones, -inf/inf for none."""
    if np.isfinite(x) and x == round(x) and abs(x) < 1e9:
        return str(int(x))
    return f"{x:g}"


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh), [])


def _read_csv(path: Path, rel: str, spec: _FileSpec, problems: _Problems):
    """Read the expected columns of a CSV file; return (frame, header) or (None, header)."""
    try:
        header = _csv_header(path)
    except UnicodeDecodeError as exc:
        problems.add(rel, f"file is not UTF-8 text (byte {exc.start}: {exc.reason})")
        return None, []
    except csv.Error as exc:  # e.g. a header field over the csv module's 128 KB limit
        problems.add(rel, f"cannot parse the CSV header: {exc}", row=1)
        return None, []
    named = [h for h in header if h.strip() != ""]  # unnamed: warned about, then ignored
    counts = pd.Series(named, dtype=object).value_counts()
    for name, n in counts[counts > 1].items():
        problems.add(rel, f"column '{name}' appears {n} times in the header", row=1,
                     column=name)
    if (counts > 1).any():
        return None, header
    wanted = [c for c in spec.columns if c in header]
    if not wanted:
        problems.add(rel, f"none of the expected columns ({_listing(spec.columns)}) is in the "
                     "header; the file must be comma-separated with a header row", row=1)
        return None, header
    na = {c: [""] for c in spec.keys}
    na.update({c: _NUMERIC_NA for c in spec.numeric})
    # no usecols: the parser then rejects rows with more fields than the header
    kw = dict(encoding="utf-8-sig", keep_default_na=False, na_values=na,
              skip_blank_lines=False, engine="c")
    dtype = {c: "str" for c in spec.keys}
    try:
        try:
            frame = pd.read_csv(path, dtype={**dtype, **{c: "float64" for c in spec.numeric}},
                                **kw)
        except ValueError as exc:
            if isinstance(exc, pd.errors.ParserError):
                raise
            # a non-numeric cell: read the numeric columns as text, the checks find it
            frame = pd.read_csv(path, dtype={**dtype, **{c: "str" for c in spec.numeric}}, **kw)
    except UnicodeDecodeError as exc:
        problems.add(rel, f"file is not UTF-8 text (byte {exc.start}: {exc.reason})")
        return None, header
    except pd.errors.ParserError as exc:
        found = re.search(r"line (\d+)", str(exc))
        problems.add(rel, f"cannot parse the CSV file: {str(exc).strip()}",
                     row=int(found.group(1)) if found else None)
        return None, header
    frame = frame[wanted] if list(frame.columns) != wanted else frame
    keys = [c for c in spec.keys if c in wanted]
    if len(frame) and keys:
        blank = frame[keys].isna().all(axis=1)  # cheap first pass on the key columns
        if blank.any():
            blank &= frame[wanted].isna().all(axis=1)
        if blank.any():  # blank lines: skipped, but row numbers keep counting them
            frame = frame.loc[~blank]
    return frame, header


def _read_parquet(path: Path, rel: str, spec: _FileSpec, problems: _Problems):
    import pyarrow.parquet as pq

    try:
        header = list(pq.read_schema(path).names)
        wanted = [c for c in spec.columns if c in header]
        frame = pd.read_parquet(path, engine="pyarrow", columns=wanted)
    except Exception as exc:  # noqa: BLE001  (pyarrow raises many types for bad files)
        problems.add(rel, f"cannot read the parquet file: {str(exc).strip()}")
        return None, []
    from .readers import key_text

    frame = frame.reset_index(drop=True)
    for col in spec.keys:
        if col in frame and frame[col].dtype != "str":
            frame[col] = key_text(frame[col])
    return frame, header


def _clean(frame: pd.DataFrame, spec: _FileSpec) -> bool:
    """Whether no check of :func:`_check_values` can fail (one numpy pass over the file).

    pandera runs each check column by column and pays a fixed cost per check (about
    0.2 s per 20,000-row, 40-item client, 5x the cost of reading it). Nearly every file
    is valid, so one vectorised pass over the whole numeric block decides whether any
    check could fail; only then does pandera run and report every failing cell. The
    pass is conservative: it says "clean" only if every pandera check would pass (a
    test runs both on every corpus folder). pandera has no such fast path; hence this.
    """
    if any(c not in frame for c in spec.columns) or len(frame) == 0:
        return False
    for key in spec.keys:
        if frame[key].isna().any():
            return False
    if not frame["period"].isin(spec.periods).all():
        return False
    cols = list(spec.numeric)
    if cols:
        dtypes = frame.dtypes
        if not all(getattr(dtypes[c], "kind", "O") in "fiu" for c in cols):
            return False
        block = frame[cols].to_numpy(dtype="float64", na_value=np.nan)
        if np.isinf(block).any():
            return False
        lo = np.array([spec.numeric[c].lo for c in cols])
        hi = np.array([spec.numeric[c].hi for c in cols])
        with np.errstate(invalid="ignore"):
            if (np.fmin.reduce(block, axis=0) < lo).any():
                return False
            if (np.fmax.reduce(block, axis=0) > hi).any():
                return False
            whole = np.array([bool(spec.numeric[c].whole) for c in cols])
            if whole.any():  # (no fancy indexing: a column subset would copy the block)
                frac = np.floor(block)
                np.subtract(block, frac, out=frac)  # NaN for missing answers
                if (np.fmax.reduce(frac, axis=0)[whole] > 0).any():
                    return False
    unique = ["period", "respondent_id"] if spec.kind == "survey" else ["unit_id", "period"]
    other = unique[1] if unique[0] == "period" else unique[0]
    if frame["period"].nunique() == 1:  # one period (the usual file): one column decides
        return frame[other].nunique() == len(frame)
    return not frame.duplicated(subset=unique).any()


def _check_values(frame: pd.DataFrame, rel: str, spec: _FileSpec, problems: _Problems,
                  warnings: _Problems, *, fast: bool = True) -> None:
    """Validate one data frame with a pandera schema generated from study.yml.

    ``fast=False`` always runs pandera (the tests compare both paths).
    """
    if fast and _clean(frame, spec):
        return
    import pandera.errors as pae
    import pandera.pandas as pa

    def as_number(s: pd.Series) -> pd.Series:
        return s if pd.api.types.is_numeric_dtype(s) else pd.to_numeric(s, errors="coerce")

    def numeric(s: pd.Series):
        if pd.api.types.is_numeric_dtype(s):
            return True
        return pd.to_numeric(s, errors="coerce").notna() | s.isna()

    def finite(s: pd.Series):
        num = as_number(s).astype("float64")
        return num.isna() | np.isfinite(num)

    def in_range(lo, hi):
        def check(s: pd.Series):
            num = as_number(s).astype("float64")
            return num.isna() | ~np.isfinite(num) | ((num >= lo) & (num <= hi))
        return check

    def whole(lo, hi):
        def check(s: pd.Series):
            num = as_number(s).astype("float64")
            return (num.isna() | ~np.isfinite(num) | (num < lo) | (num > hi)
                    | (num == np.floor(num)))
        return check

    periods = set(spec.periods)
    columns = {
        key: pa.Column(nullable=False, required=True, checks=(
            [pa.Check(lambda s: s.isin(periods), name="known_period")]
            if key == "period" else []))
        for key in spec.keys
    }
    for col, num in spec.numeric.items():
        checks = [pa.Check(numeric, name="numeric"), pa.Check(finite, name="finite"),
                  pa.Check(in_range(num.lo, num.hi), name="in_range")]
        if num.whole:
            checks.append(pa.Check(whole(num.lo, num.hi), name="whole"))
        columns[col] = pa.Column(nullable=True, required=True, checks=checks)
    unique = ["period", "respondent_id"] if spec.kind == "survey" else ["unit_id", "period"]
    if not all(c in frame for c in unique):  # a missing key column is reported already
        unique = None
    schema = pa.DataFrameSchema(columns, unique=unique, report_duplicates="all",
                                name=f"{spec.kind} file")
    try:
        schema.validate(frame, lazy=True, inplace=True)  # no coercion: no need to copy
    except pae.SchemaErrors as exc:
        found = _translate(exc.failure_cases, frame, rel, spec, unique)
        is_error = found["severity"] == "error"
        problems.add_frame(found[is_error])
        warnings.add_frame(found[~is_error])


def _translate(fc: pd.DataFrame, frame: pd.DataFrame, rel: str, spec: _FileSpec,
               unique: list[str]) -> pd.DataFrame:
    """Turn pandera's failure_cases into human problem rows (vectorised)."""
    fc = fc.reset_index(drop=True)
    check = fc["check"].astype(str)
    index = pd.to_numeric(fc["index"], errors="coerce")
    out = []

    def rows(mask, column, value, problem, severity="error"):
        idx = index[mask]
        part = pd.DataFrame({
            "file": rel,
            "row": (idx + _ROW_OFFSET).astype("Int64"),
            "column": column,
            "value": value,
            "problem": problem,
            "severity": severity,
        })
        out.append(part)

    # missing columns
    m = check == "column_in_dataframe"
    if m.any():
        names = fc.loc[m, "failure_case"].astype(str)
        what = names.map({c: spec.roles.get(c, f"column '{c}'") for c in names.unique()})
        rows(m, names, None, "required " + what + " is missing from the " + spec.kind + " file")
    # empty key cells
    m = check == "not_nullable"
    if m.any():
        col = fc.loc[m, "column"].astype(str)
        rows(m, col, None, col + " is empty")
    # periods not declared
    m = check == "known_period"
    if m.any():
        vals = fc.loc[m, "failure_case"].astype(str)
        spaces = (vals != vals.str.strip()).map({True: " (note the spaces around it)",
                                                 False: ""})
        rows(m, "period", vals, "period '" + vals + "' is not one of the periods in "
             f"study.yml ({_listing(spec.periods)})" + spaces)
    # non-numeric values
    m = check == "numeric"
    if m.any():
        vals = fc.loc[m, "failure_case"].astype(str)
        col = fc.loc[m, "column"].astype(str)
        rows(m, col, vals, "value '" + vals + "' is not a number")
    # inf, -inf
    m = check == "finite"
    if m.any():
        vals = _fmt_values(fc.loc[m, "failure_case"])
        col = fc.loc[m, "column"].astype(str)
        rows(m, col, vals, "value " + vals + " is not a finite number")
    # values outside the scale range (items) or the plausible range (outcomes, covariates)
    m = check == "in_range"
    if m.any():
        vals = _fmt_values(fc.loc[m, "failure_case"])
        col = fc.loc[m, "column"].astype(str)

        def describe(c):
            num = spec.numeric[c]
            if num.scale is not None:
                return (f" outside the scale range {_fmt_number(num.lo)}-{_fmt_number(num.hi)}"
                        f" of scale '{num.scale}'")
            return (f" is outside the plausible range {_fmt_number(num.lo)} to "
                    f"{_fmt_number(num.hi)} of {num.what}; if it is right, give the range in "
                    f"study.yml (ranges: {{{c}: [low, high]}})")
        rows(m, col, vals, "value " + vals + col.map({c: describe(c) for c in col.unique()}))
    # answers between scale points
    m = check == "whole"
    if m.any():
        vals = _fmt_values(fc.loc[m, "failure_case"])
        col = fc.loc[m, "column"].astype(str)
        severity = col.map({c: spec.numeric[c].whole for c in col.unique()})

        def describe(c):
            num = spec.numeric[c]
            head = (f" is between the points of scale '{num.scale}' (whole numbers "
                    f"{_fmt_number(num.lo)}-{_fmt_number(num.hi)})")
            if num.whole == "warning":
                return head + "; kept, as study.yml says answers may be averaged"
            return head + "; if answers were averaged before export, set averaged_answers: " \
                "true in study.yml"
        rows(m, col, vals, "value " + vals + col.map({c: describe(c) for c in col.unique()}),
             severity.values)
    # duplicate keys: one problem per duplicated row
    m = check == "multiple_fields_uniqueness"
    if m.any():
        idx = pd.Index(index[m].dropna().unique()).astype("int64")
        sub = frame.loc[idx, unique]
        n = sub.groupby(unique, sort=False, dropna=False)[unique[0]].transform("size")
        sub = sub.assign(_n=n.astype(str)).sort_index()
        if spec.kind == "survey":
            column, value = "respondent_id", sub["respondent_id"].astype(str)
            text = ("respondent_id '" + value + "' appears " + sub["_n"]
                    + " times in period " + sub["period"].astype(str))
        else:
            column, value = "unit_id", sub["unit_id"].astype(str)
            text = ("unit '" + value + "' has " + sub["_n"] + " rows for period "
                    + sub["period"].astype(str) + " (one row per unit and period)")
        out.append(pd.DataFrame({
            "file": rel, "row": (sub.index.to_series() + _ROW_OFFSET).astype("Int64").values,
            "column": column, "value": value.values, "problem": text.values,
            "severity": "error"}))
    handled = {"column_in_dataframe", "not_nullable", "known_period", "numeric", "finite",
               "in_range", "whole", "multiple_fields_uniqueness"}
    m = ~check.isin(handled)
    if m.any():  # anything else pandera reports: keep it, in its own words
        rows(m, fc.loc[m, "column"].astype(str), fc.loc[m, "failure_case"].astype(str),
             "failed check " + check[m])
    result = pd.concat(out, ignore_index=True)
    return result.sort_values("row", kind="stable", na_position="first")


def _find_data_file(folder: Path, rel_folder: str, kind: str, problems: _Problems):
    found, odd = [], []
    for ext in _FORMATS:
        path = folder / f"{kind}.{ext}"
        if path.is_file():
            found.append(path)
        elif path.is_symlink() and not path.exists():
            odd.append((path, f"{path.name} is a symbolic link to a file that does not exist "
                              f"({os.readlink(path)})"))
        elif path.exists():  # a folder, FIFO, socket or device: never opened
            what = "a folder" if path.is_dir() else "not a regular file (a FIFO, socket or device)"
            odd.append((path, f"{path.name} is {what}; the {kind} data must be a regular file"))
    for path, text in odd:
        problems.add(f"{rel_folder}/{path.name}", text)
    if odd:
        return None
    if len(found) > 1:
        names = [p.name for p in found]
        listed = (f"both {names[0]} and {names[1]} exist" if len(names) == 2
                  else f"{', '.join(names)} all exist")
        problems.add(f"{rel_folder}/{names[0]}", f"{listed} in {rel_folder}/; keep one of them")
        return None
    if not found:
        others = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        seen = f" (found: {', '.join(others)})" if others else " (the folder is empty)"
        expected = ", ".join(f"{kind}.{e}" for e in _FORMATS[:-1]) + f" or {kind}.{_FORMATS[-1]}"
        problems.add(f"{rel_folder}/", f"the client has no {kind} data: expected {expected} in "
                     f"{rel_folder}/{seen}")
        return None
    return found[0]


def _load_file(path: Path, rel: str, spec: _FileSpec, problems: _Problems,
               warnings: _Problems, labels: dict | None = None):
    """Read, check columns and values; return the frame (None when unreadable).

    ``labels`` (item -> variable label) collects the labels of .sav and .dta files.
    """
    from . import readers

    if path.stat().st_size == 0:
        problems.add(rel, "file is empty (0 bytes)")
        return None
    suffix = path.suffix.lower()
    header_row = None
    if suffix == ".csv":
        frame, header = _read_csv(path, rel, spec, problems)
        header_row = 1
    elif suffix == ".parquet":
        frame, header = _read_parquet(path, rel, spec, problems)
    else:
        frame, header, meta = readers.read_data_file(path, rel, spec, problems, warnings,
                                                     numeric_na=_NUMERIC_NA)
        if suffix == ".xlsx":
            header_row = 1
        if labels is not None and meta:
            for col, text in meta.get("labels", {}).items():
                if col in spec.numeric:
                    labels.setdefault(col, text)
    if frame is None:
        return None
    extra = [c for c in header if c not in spec.columns]
    missing = [c for c in spec.columns if c not in header]
    for i, col in ((header.index(c), c) for c in extra):
        if str(col).strip() == "":
            why = " (a comma at the end of every line?)" if suffix == ".csv" else ""
            warnings.add(rel, f"column {i + 1} has no name in the header{why}; it is ignored",
                         row=header_row, column=col, severity="warning")
            continue
        hint = _did_you_mean(str(col), missing)
        hint = f"; did you mean '{hint}'?" if hint else ""
        warnings.add(rel, f"unexpected column '{col}' is ignored (not declared in study.yml)"
                     + hint, row=header_row, column=col, severity="warning")
    if len(frame) == 0:
        problems.add(rel, "file has a header but no data rows")
        return None
    _check_values(frame, rel, spec, problems, warnings)
    return frame


def _coverage(survey: pd.DataFrame, outcomes: pd.DataFrame, files: dict, warnings: _Problems):
    """Warn about units that have survey data but no outcomes, and the reverse."""
    s_units, o_units = survey["unit_id"].unique(), outcomes["unit_id"].unique()
    # the same units on both sides (the usual case): nothing to report. Python sets of the
    # unique ids: 3-4x cheaper than Index.isin on arrow strings (0.25 s of a cached load
    # of 300 clients); anything else takes the exact path below
    if len(s_units) == len(o_units) and set(s_units) == set(o_units):
        return
    s_first = survey["unit_id"].dropna().drop_duplicates()
    o_first = outcomes["unit_id"].dropna().drop_duplicates()
    for first, other, rel, msg in (
        (s_first, o_first, files["survey"], ("unit '", "' has survey data but no outcomes")),
        (o_first, s_first, files["outcomes"], ("unit '", "' has outcomes but no survey data")),
    ):
        lonely = first[~first.isin(other)]
        if len(lonely):
            warnings.add_frame(pd.DataFrame({
                "file": rel, "row": (lonely.index.to_series() + _ROW_OFFSET).astype("Int64").values,
                "column": "unit_id", "value": lonely.astype(str).values,
                "problem": (msg[0] + lonely.astype(str) + msg[1]).values,
                "severity": "warning"}))


def _finish(frame: pd.DataFrame, spec: _FileSpec) -> pd.DataFrame:
    """The validated frame in contract order: keys as str, numbers as float64.

    Columns already in that form are kept as they are (no copy: a parquet file of
    float64 items goes through untouched).
    """
    if list(frame.columns) != spec.columns:
        frame = frame[spec.columns]
    else:
        frame = frame.copy(deep=False)
    # the dtypes read once: ``frame[col]`` builds a Series per column (0.3 s of a cached
    # load of 600 files, where every column is already in form)
    dtypes = dict(zip(frame.columns, frame.dtypes, strict=True))
    for k in spec.keys:
        if dtypes[k] != "str":
            frame[k] = frame[k].astype("str")
    for col in spec.numeric:
        if dtypes[col] != "float64":
            frame[col] = pd.to_numeric(frame[col]).astype("float64")
    return frame.reset_index(drop=True)


def _inside(path: Path, root: Path, *, resolved_root: Path | None = None) -> bool:
    # ``resolved_root``: ``root.resolve()`` computed once by a caller checking many paths
    return path.resolve().is_relative_to(resolved_root or root.resolve())


def _load_file_cached(path: Path, rel: str, spec: _FileSpec, problems: _Problems,
                      warnings: _Problems, labels: dict, *, cache, sha256: str,
                      spec_dict: dict | None = None):
    """:func:`_load_file` through the build's validation cache (``cache``, a
    :class:`exresearch.build.cache.ResultCache`).

    The key is the file's sha256, its path in the study (problem rows name it) and what
    ``study.yml`` asks of it (``spec``); the exresearch source is part of every key. A
    file with errors is never cached (it is read and reported again); a valid one keeps
    its checked frame, its warnings and its variable labels. ``spec_dict`` is
    ``dataclasses.asdict(spec)`` when the caller has it (computed once per study, not
    once per file: 14% of a cached load of 600 files).
    """
    from dataclasses import asdict

    from .build.cache import cache_key

    if spec_dict is None:
        spec_dict = asdict(spec)
    key = cache_key("validation", {"file": rel, "sha256": sha256, "spec": spec_dict})
    entry = cache.get(key)
    if entry is not None:
        warnings.add_frame(entry["warnings"])
        for col, text in entry["labels"].items():
            labels.setdefault(col, text)
        return entry["frame"]
    mine_p, mine_w, mine_l = _Problems(), _Problems(), {}
    frame = _load_file(path, rel, spec, mine_p, mine_w, mine_l)
    problems.add_frame(mine_p.frame())
    found_w = mine_w.frame()
    warnings.add_frame(found_w)
    for col, text in mine_l.items():
        labels.setdefault(col, text)
    if frame is not None and not mine_p.has_errors:
        cache.put(key, {"frame": frame, "warnings": found_w, "labels": mine_l})
    return frame


def _check_study(path, cache=None) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """Validate a study folder. Return (problems incl. warnings, loaded parts or None)."""
    root = Path(path)
    problems, warnings = _Problems(), _Problems()

    def result(parts=None):
        table = pd.concat([problems.frame(), warnings.frame()], ignore_index=True)
        return table, parts

    if not root.exists():
        problems.add(".", f"study folder {str(root)!r} does not exist")
        return result()
    if not root.is_dir():
        problems.add(".", f"{str(root)!r} is a file, not a study folder")
        return result()
    yml = root / _STUDY_FILE
    if not yml.is_file():
        problems.add(_STUDY_FILE, f"study.yml is missing: every study folder needs one "
                     f"(looked for {yml})")
        return result()
    size = yml.stat().st_size
    if size > MAX_STUDY_YML_BYTES:
        problems.add(_STUDY_FILE, f"study.yml is {size:,} bytes; a study description is at most "
                     f"{MAX_STUDY_YML_BYTES:,} bytes (a few KB is usual), so it is not read",
                     value=size)
        return result()
    try:
        text = yml.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(_STUDY_FILE, f"study.yml is not UTF-8 text ({exc.reason})")
        return result()
    data, where = _read_yaml(text, problems)
    if problems.has_errors and data is None:
        return result()
    if data is None:
        problems.add(_STUDY_FILE, "study.yml is empty")
        return result()
    if not isinstance(data, dict):
        problems.add(_STUDY_FILE, "study.yml must be a mapping of keys (name, periods, scales, "
                     f"outcomes, clients, ...), got a {type(data).__name__}", row=1)
        return result()
    config = _ConfigParser(data, where, problems).parse()
    hashes = {_STUDY_FILE: sha256_file(yml)}

    clients_dir = root / _CLIENTS_DIR
    if not clients_dir.is_dir():
        problems.add(f"{_CLIENTS_DIR}/", "folder clients/ is missing: each client's data goes "
                     "in clients/<client_id>/")
        return result()
    listed = set(config.client_ids)
    # raw ids from study.yml, valid or not, so that an invalid id is not reported twice
    raw_clients = data.get("clients") if isinstance(data.get("clients"), list) else []
    raw_ids = {where.raw.get(("clients", i, "id"), str(c.get("id")))
               for i, c in enumerate(raw_clients) if isinstance(c, dict)}
    for entry in sorted(clients_dir.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if entry.name not in listed and entry.name not in raw_ids:
            problems.add(f"{_CLIENTS_DIR}/{entry.name}/", f"data folder clients/{entry.name}/ "
                         "is not listed under clients in study.yml", value=entry.name)

    survey_spec, outcome_spec = _survey_spec(config), _outcome_spec(config)
    if cache is not None:
        from dataclasses import asdict

        spec_dicts = {"survey": asdict(survey_spec), "outcomes": asdict(outcome_spec)}
    frames: dict[str, dict[str, pd.DataFrame]] = {"survey": {}, "outcomes": {}}
    labels: dict[str, str] = {}  # item -> variable label of a .sav/.dta file
    real_root = root.resolve()
    for client in config.clients:  # ids here already match CLIENT_ID_PATTERN
        folder = clients_dir / client.id
        rel_folder = f"{_CLIENTS_DIR}/{client.id}"
        if not folder.is_dir():
            problems.add(f"{rel_folder}/", f"client '{client.id}' is listed in study.yml but "
                         f"has no data folder {rel_folder}/", value=client.id)
            continue
        if not _inside(folder, root, resolved_root=real_root):
            problems.add(f"{rel_folder}/", f"{rel_folder}/ links outside the study folder")
            continue
        files = {}
        for kind, spec in (("survey", survey_spec), ("outcomes", outcome_spec)):
            found = _find_data_file(folder, rel_folder, kind, problems)
            if found is None:
                continue
            rel = f"{rel_folder}/{found.name}"
            if not _inside(found, root, resolved_root=real_root):
                problems.add(rel, f"{rel} links outside the study folder")
                continue
            files[kind] = rel
            try:
                hashes[rel] = sha256_file(found)
                if cache is None:
                    frame = _load_file(found, rel, spec, problems, warnings, labels)
                else:
                    frame = _load_file_cached(found, rel, spec, problems, warnings, labels,
                                              cache=cache, sha256=hashes[rel],
                                              spec_dict=spec_dicts[kind])
            except OSError as exc:  # permissions, a file vanishing while read, ...
                problems.add(rel, f"cannot read the file: {exc.strerror or exc}")
                continue
            if frame is not None:
                frames[kind][client.id] = frame
        if client.id in frames["survey"] and client.id in frames["outcomes"]:
            s, o = frames["survey"][client.id], frames["outcomes"][client.id]
            if "unit_id" in s and "unit_id" in o:
                _coverage(s, o, files, warnings)

    if problems.has_errors:
        return result()
    parts = {
        "config": config,
        "hashes": hashes,
        "survey": {c: _finish(f, survey_spec) for c, f in frames["survey"].items()},
        "outcomes": {c: _finish(f, outcome_spec) for c, f in frames["outcomes"].items()},
        "warnings": warnings.frame(),
        "item_labels": {item: labels[item] for item in config.items if item in labels},
    }
    return result(parts)


# --------------------------------------------------------------------------- public API


class Study:
    """A validated study held in memory.

    Do not build one directly: call :func:`load_study`. The survey and outcome
    frames are read once; :meth:`survey` and :meth:`outcomes` return cheap
    copy-on-write copies, so changing a returned frame never changes the study.

    Attributes
    ----------
    path : pathlib.Path
        The study folder (absolute).
    config : StudyConfig
        The parsed ``study.yml``.
    clients : list of str
        Client ids in ``study.yml`` order.
    hashes : dict of str to str
        sha256 (hex) of every input file, keyed by ``/``-separated path relative
        to the study folder (``study.yml``, ``clients/<id>/survey.csv``, ...).
    warnings : pandas.DataFrame
        Problems that do not reject the study (columns ``file, row, column, value,
        problem, severity``), e.g. unexpected columns or units without outcomes.
    item_labels : dict of str to str
        Item -> question text, from the variable labels of ``.sav``/``.dta`` files
        (empty for other formats; the first client's label wins).

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> study = load_study(ROOT / "tests" / "studies" / "valid")
    >>> study.clients
    ['acme', 'beta-bank']
    >>> list(study.survey("acme").columns[:5])
    ['unit_id', 'period', 'respondent_id', 'eng_1', 'eng_2']
    >>> list(study.outcomes("acme").columns)
    ['unit_id', 'period', 'nps', 'turnover', 'headcount']
    >>> sorted(study.hashes)[0]
    'clients/acme/outcomes.csv'
    """

    def __init__(self, path: Path, config: StudyConfig, survey: dict, outcomes: dict,
                 hashes: dict, warnings: pd.DataFrame, item_labels: dict | None = None):
        self.path = Path(path).resolve()
        self.item_labels = dict(item_labels or {})
        self.config = config
        self.clients = config.client_ids
        self.hashes = dict(hashes)
        self.warnings = warnings
        self._survey = survey
        self._outcomes = outcomes

    def __repr__(self) -> str:
        return (f"<Study {self.config.name!r}: {len(self.clients)} clients, "
                f"{len(self.config.periods)} periods, {self.path}>")

    def _client(self, client_id: str) -> str:
        if client_id not in self._survey:
            raise ParameterError(f"`client_id` must be one of the study's clients "
                                 f"{self.clients}, but {client_id!r} was passed")
        return client_id

    def survey(self, client_id: str) -> pd.DataFrame:
        """Return one client's survey: one row per respondent per period.

        Parameters
        ----------
        client_id : str
            One of :attr:`clients`.

        Returns
        -------
        pandas.DataFrame
            ``unit_id``, ``period``, ``respondent_id`` (str), then every item column
            (float64, NaN = missing answer) in the order the scales declare them.
            Columns not declared in ``study.yml`` are left out.
        """
        return self._survey[self._client(client_id)].copy(deep=False)

    def outcomes(self, client_id: str) -> pd.DataFrame:
        """Return one client's outcomes: one row per unit per period.

        Parameters
        ----------
        client_id : str
            One of :attr:`clients`.

        Returns
        -------
        pandas.DataFrame
            ``unit_id``, ``period`` (str), each outcome column then each covariate
            (float64, NaN = missing).
        """
        return self._outcomes[self._client(client_id)].copy(deep=False)

    def summary(self) -> pd.DataFrame:
        """Return one row per client describing its data.

        Returns
        -------
        pandas.DataFrame
            ``client_id, name, industry, units, respondents, periods``: ``units`` is
            the number of distinct units in the survey, ``respondents`` the number of
            survey rows (one per respondent per period), ``periods`` the number of
            distinct periods in the survey.

        Examples
        --------
        >>> from exresearch.config import ROOT
        >>> load_study(ROOT / "tests" / "studies" / "valid").summary()
          client_id         name industry  units  respondents  periods
        0      acme  Acme Retail   retail      2           12        2
        1 beta-bank    Beta Bank  banking      2           10        1
        """
        rows = []
        for cid in self.clients:
            s = self._survey[cid]
            spec = self.config.client(cid)
            rows.append({
                "client_id": cid, "name": spec.name, "industry": spec.industry,
                "units": int(s["unit_id"].nunique()), "respondents": len(s),
                "periods": int(s["period"].nunique()),
            })
        return pd.DataFrame(rows, columns=["client_id", "name", "industry", "units",
                                           "respondents", "periods"])


def validate_study(path, *, include_warnings: bool = False) -> pd.DataFrame:
    """Check a study folder against the input contract and return every problem.

    Never raises for problems in the study (a missing folder is a problem row too).

    Parameters
    ----------
    path : str or pathlib.Path
        The study folder.
    include_warnings : bool, default False
        Also return the warnings (rows with ``severity == "warning"``). By default
        only errors are returned, so the table is empty exactly when the study is
        valid.

    Returns
    -------
    pandas.DataFrame
        ``file, row, column, value, problem, severity`` (see the module docstring
        for the row-number convention).

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> validate_study(ROOT / "tests" / "studies" / "valid").empty
    True
    >>> bad = validate_study(ROOT / "tests" / "studies" / "out_of_range")
    >>> bad.loc[0, ["file", "row", "column", "value"]].astype(str).tolist()
    ['clients/acme/survey.csv', '3', 'eng_2', '7']
    >>> print(bad["problem"].iloc[0])
    value 7 outside the scale range 1-5 of scale 'engagement'
    """
    table, _ = _check_study(path)
    if not include_warnings:
        table = table[table["severity"] == "error"].reset_index(drop=True)
    return table


def load_study(path, *, cache=None) -> Study:
    """Load and validate a study folder.

    Parameters
    ----------
    path : str or pathlib.Path
        Folder holding ``study.yml`` and ``clients/<client_id>/`` data files.
    cache : exresearch.build.cache.ResultCache, optional
        Validation results of earlier loads, by each data file's content hash (what
        ``exresearch build`` keeps outside the site, in ``~/.cache/exresearch/``): an unchanged valid
        file is not read and checked again; a changed one is, and the checks across
        files (study.yml against the folders, units with survey data but no outcomes)
        always run. The result is the same study as without the cache.

    Returns
    -------
    Study
        The validated study; every frame is loaded once and cached.

    Raises
    ------
    StudyValidationError
        If the study breaks the contract. ``exc.problems`` lists every problem
        (errors first, then warnings) with the columns ``file, row, column, value,
        problem, severity``.

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> study = load_study(ROOT / "tests" / "studies" / "valid")
    >>> study.config.min_group_size
    3
    >>> study.survey("acme").shape
    (12, 11)
    >>> try:
    ...     load_study(ROOT / "tests" / "studies" / "duplicate_respondents")
    ... except StudyValidationError as exc:
    ...     print(exc.problems["problem"].iloc[0])
    respondent_id 'r2' appears 2 times in period 2025Q1
    """
    table, parts = _check_study(path, cache)
    if parts is None:
        errors = int((table["severity"] == "error").sum())
        raise StudyValidationError(
            table, f"{path}: the study has {errors} error{'s' if errors != 1 else ''}")
    return Study(path, parts["config"], parts["survey"], parts["outcomes"], parts["hashes"],
                 parts["warnings"], item_labels=parts["item_labels"])
