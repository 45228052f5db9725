"""Turn a survey-platform export into a study folder (``exresearch import``).

Survey platforms export one wide table per survey: one row per response, one column
per question, often with extra header rows (question text, import ids) under the
column names, text answers ("Strongly agree") and columns that are not answers
(start and end dates, IP address, progress). A small **mapping file** says which
columns are the unit, the period and the respondent, which columns are the items of
each scale (and under which item names), and what goes into ``study.yml``;
:func:`import_export` then writes a study folder in the contract format
(``study.yml`` and ``clients/<id>/survey.csv``, plus the outcomes file when one is
given) and lists every source column it did not map. The source files are only
read. The folder it writes is then validated like any other study.

The mapping file (YAML; see ``docs/study.md`` and ``docs/examples/mapping.yml``)::

    study:                       # copied into study.yml (scales are added from below)
      name: Acme pulse 2025
      periods: [2025-H1, 2025-H2]
      outcomes: {nps: {label: Customer NPS, kind: cx}}
    client: {id: acme, name: Acme Retail}
    export:
      header_row: 1              # the line holding the column names
      skip_rows: [2, 3]          # lines under it that are not responses
      keep: {Finished: ["True"]} # only rows whose Finished column is True
    unit: Store
    period: Wave                 # a column, or {value: 2025-H1} for a one-wave export
    respondent: ResponseId
    answers: {Strongly disagree: 1, Disagree: 2, Neutral: 3, Agree: 4, Strongly agree: 5}
    scales:
      engagement:
        role: engagement
        items: {Q1_1: eng_1, Q1_2: eng_2}   # source column: item name
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import CLIENT_ID_PATTERN
from .exceptions import ParameterError, StudyValidationError

__all__ = ["import_export", "ImportResult", "MAPPING_KEYS"]

#: Keys of the mapping file.
MAPPING_KEYS = ("study", "client", "export", "unit", "period", "respondent", "answers",
                "scales")
_EXPORT_KEYS = ("header_row", "skip_rows", "keep", "sheet")
_SCALE_KEYS = ("items", "reverse", "role", "label", "points", "kind")
_MAPPING = "mapping"


@dataclass
class ImportResult:
    """What :func:`import_export` wrote.

    Attributes
    ----------
    study : pathlib.Path
        The study folder written.
    files : list of pathlib.Path
        Every file written, in the order written.
    unmapped : list of str
        Source columns that the mapping does not use, in source order.
    responses : int
        Responses written (after ``export.keep``).
    dropped : int
        Data rows left out by ``export.keep``.
    warnings : pandas.DataFrame
        Warnings of the validation of the written study (survey rows and columns
        given as the export's line numbers and column names).
    """

    study: Path
    files: list[Path] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    responses: int = 0
    dropped: int = 0
    warnings: pd.DataFrame | None = None


class _Report:
    """Every problem of the mapping and the export, reported together."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, file, problem, *, row=None, column=None, value=None):
        self.rows.append({"file": str(file), "row": row, "column": column,
                          "value": None if value is None else str(value),
                          "problem": problem, "severity": "error"})

    def raise_if_any(self, what: str):
        if self.rows:
            from .study import PROBLEM_COLUMNS

            table = pd.DataFrame(self.rows, columns=PROBLEM_COLUMNS)
            table["row"] = table["row"].astype("Int64")
            n = len(table)
            raise StudyValidationError(table, f"{what}: {n} problem{'s' if n != 1 else ''}; "
                                              "nothing was written")


def _read_mapping(path: Path, report: _Report) -> dict:
    import yaml

    from .study import _did_you_mean, _loaders, _refuse_aliases

    try:
        text = path.read_text(encoding="utf-8-sig")
        fast, _ = _loaders()
        _refuse_aliases(text, fast)
        data = yaml.load(text, Loader=fast)  # noqa: S506  (a safe loader: CSafe/Safe)
    except OSError as exc:
        report.add(path, f"cannot read the mapping file: {exc.strerror or exc}")
        return {}
    except Exception as exc:  # noqa: BLE001  (YAML errors, refused aliases)
        report.add(path, f"the mapping file is not valid YAML: {exc}")
        return {}
    if not isinstance(data, dict):
        report.add(path, f"the mapping file must be a mapping of keys ({', '.join(MAPPING_KEYS)})"
                         f", got {type(data).__name__}")
        return {}
    for key in data:
        if key not in MAPPING_KEYS:
            hint = _did_you_mean(str(key), MAPPING_KEYS)
            report.add(path, f"unknown key '{key}' in the mapping file"
                       + (f"; did you mean '{hint}'?" if hint else "")
                       + f" (valid keys: {', '.join(MAPPING_KEYS)})", column=key)
    for key in ("study", "client", "unit", "respondent", "scales"):
        if key not in data:
            report.add(path, f"required key '{key}' is missing from the mapping file",
                       column=key)
    return data


def _read_export(source: Path, export: dict, report: _Report) -> pd.DataFrame | None:
    """The export as text cells, with the column names of ``header_row``."""
    header_row = export.get("header_row", 1)
    skip = export.get("skip_rows", []) or []
    if isinstance(header_row, bool) or not isinstance(header_row, int) or header_row < 1:
        report.add(_MAPPING, f"export.header_row must be a line number >= 1, got {header_row!r}",
                   column="export.header_row")
        return None
    if not isinstance(skip, list) or not all(isinstance(r, int) and r > header_row
                                             for r in skip):
        report.add(_MAPPING, "export.skip_rows must list line numbers below header_row, got "
                   f"{skip!r}", column="export.skip_rows")
        return None
    suffix = source.suffix.lower()
    try:
        if suffix == ".csv":
            raw = pd.read_csv(source, header=None, dtype=str, keep_default_na=False,
                              encoding="utf-8-sig", skip_blank_lines=False)
        elif suffix == ".xlsx":
            raw = pd.read_excel(source, sheet_name=export.get("sheet", 0), header=None,
                                dtype=object, engine="openpyxl")
            raw = raw.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v))
                          else (str(int(v)) if isinstance(v, float) and v == round(v)
                                else str(v)))
        elif suffix in (".sav", ".dta"):  # one header line: the variable names
            import pyreadstat

            reader = pyreadstat.read_sav if suffix == ".sav" else pyreadstat.read_dta
            frame, _ = reader(str(source), user_missing=False,
                              disable_datetime_conversion=True)
            cells = frame.astype(object).map(
                lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v))
                else (str(int(v)) if isinstance(v, float) and v == round(v) else str(v)))
            raw = pd.DataFrame([list(frame.columns), *cells.values.tolist()])
        else:
            report.add(source, "the export must be a .csv, .xlsx, .sav or .dta file")
            return None
    except Exception as exc:  # noqa: BLE001  (parser errors of many kinds)
        report.add(source, f"cannot read the export: {str(exc).strip()}")
        return None
    if len(raw) < header_row:
        report.add(source, f"the export has {len(raw)} lines, fewer than header_row "
                   f"{header_row}")
        return None
    names = [str(v).strip() for v in raw.iloc[header_row - 1]]
    counts = pd.Series([n for n in names if n], dtype=object).value_counts()
    for name, n in counts[counts > 1].items():
        report.add(source, f"column '{name}' appears {n} times in the header line",
                   row=header_row, column=name)
    body = raw.iloc[header_row:]
    body = body.drop(index=[r - 1 for r in skip if r - 1 in body.index])
    body.columns = names
    body.index = body.index + 1  # the line number of each response in the source
    blank = (body == "").all(axis=1)
    return body.loc[~blank]


def import_export(source, *, mapping, out, outcomes) -> ImportResult:
    """Write a study folder from a survey-platform export and a mapping file.

    Parameters
    ----------
    source : str or pathlib.Path
        The platform export (``.csv``, ``.xlsx``, or SPSS ``.sav`` / Stata ``.dta`` with
        one header line: the variable names), one row per response. Only read.
        User-missing codes of ``.sav``/``.dta`` exports are read as missing.
    mapping : str or pathlib.Path
        The mapping file (YAML; keys in :data:`MAPPING_KEYS`, see the module docstring).
    out : str or pathlib.Path
        Study folder to create; it must not exist or be empty.
    outcomes : str or pathlib.Path
        The client's outcomes file (any format :func:`~exresearch.study.load_study`
        reads); copied byte for byte to ``clients/<id>/outcomes.<ext>``.

    Returns
    -------
    ImportResult
        The files written and the source columns left out.

    Raises
    ------
    StudyValidationError
        Listing every problem of the mapping and the export (``.problems``); nothing
        is written. The study is assembled in a temporary folder beside ``out`` and
        validated there first; problems in the survey name the export's line numbers
        and columns.

    Examples
    --------
    >>> import tempfile
    >>> from exresearch.config import ROOT
    >>> examples = ROOT / "docs" / "examples"
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     result = import_export(examples / "platform_export.csv",
    ...                            mapping=examples / "mapping.yml",
    ...                            out=Path(tmp) / "study",
    ...                            outcomes=examples / "outcomes.csv")
    ...     print(result.responses, result.dropped, result.unmapped[:3])
    40 2 ['StartDate', 'EndDate', 'Status']
    """
    from .study import _did_you_mean

    source, mapping, out = Path(source), Path(mapping), Path(out)
    report = _Report()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ParameterError(f"`out` must be a new or empty folder (nothing is overwritten), "
                             f"but {str(out)!r} is not")
    if not Path(outcomes).is_file():
        report.add(outcomes, "the outcomes file does not exist or is not a regular file")
    m = _read_mapping(mapping, report)
    export = m.get("export", {}) or {}
    if not isinstance(export, dict):
        report.add(_MAPPING, f"export must be a mapping ({', '.join(_EXPORT_KEYS)})",
                   column="export")
        export = {}
    for key in export:
        if key not in _EXPORT_KEYS:
            report.add(_MAPPING, f"unknown key '{key}' under export (valid keys: "
                       f"{', '.join(_EXPORT_KEYS)})", column=f"export.{key}")
    body = _read_export(source, export, report) if source.is_file() else None
    if not source.is_file():
        report.add(source, "the export does not exist or is not a regular file")
    if body is None or not m:  # nothing to check the mapping against
        report.raise_if_any(str(source))
    columns = list(body.columns)

    def column(name, where):
        if not isinstance(name, str) or name not in columns:
            hint = _did_you_mean(str(name), columns)
            report.add(source, f"{where}: column '{name}' is not in the export"
                       + (f"; did you mean '{hint}'?" if hint else ""),
                       column=where, value=name)
            return None
        return name

    used: list[str] = []
    unit = column(m.get("unit"), "unit")
    respondent = column(m.get("respondent"), "respondent")
    period = m.get("period")
    period_value = None
    if isinstance(period, dict) and set(period) == {"value"}:
        period_value, period = str(period["value"]), None
    elif period is not None:
        period = column(period, "period")
    else:
        report.add(_MAPPING, "required key 'period' is missing: a column of the export, or "
                   "{value: 2025-H1} for a one-wave export", column="period")
    used += [c for c in (unit, respondent, period) if c]
    keep = export.get("keep", {}) or {}
    mask = pd.Series(True, index=body.index)
    if not isinstance(keep, dict):
        report.add(_MAPPING, "export.keep must map a column to the values to keep",
                   column="export.keep")
        keep = {}
    for col, values in keep.items():
        if column(col, f"export.keep.{col}"):
            values = values if isinstance(values, list) else [values]
            mask &= body[col].isin([str(v) for v in values])
            used.append(col)
    answers = m.get("answers", {}) or {}
    if not isinstance(answers, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in answers.values()):
        report.add(_MAPPING, "answers must map answer text to a number, such as "
                   "{Strongly agree: 5}", column="answers")
        answers = {}
    answers = {str(k).strip().casefold(): float(v) for k, v in answers.items()}
    scales_out, items = {}, {}
    scales = m.get("scales", {})
    if not isinstance(scales, dict) or not scales:
        report.add(_MAPPING, "scales must map a scale name to {items: {column: item}}",
                   column="scales")
        scales = {}
    for name, spec in scales.items():
        where = f"scales.{name}"
        if not isinstance(spec, dict) or not isinstance(spec.get("items"), dict) \
                or not spec["items"]:
            report.add(_MAPPING, f"{where} must be a mapping with items: {{source column: "
                       "item name}}", column=where)
            continue
        for key in spec:
            if key not in _SCALE_KEYS:
                report.add(_MAPPING, f"unknown key '{key}' under {where} (valid keys: "
                           f"{', '.join(_SCALE_KEYS)})", column=f"{where}.{key}")
        names = []
        for src, item in spec["items"].items():
            if column(str(src), f"{where}.items") is None:
                continue
            if str(item) in items.values():
                report.add(_MAPPING, f"item '{item}' is mapped twice", column=f"{where}.items",
                           value=item)
                continue
            items[str(src)] = str(item)
            names.append(str(item))
            used.append(str(src))
        entry = {"items": names}
        entry.update({k: v for k, v in spec.items() if k != "items" and k in _SCALE_KEYS})
        scales_out[str(name)] = entry
    study_block = m.get("study", {})
    client = m.get("client", {})
    if not isinstance(study_block, dict):
        report.add(_MAPPING, "study must be a mapping of study.yml keys", column="study")
        study_block = {}
    if not isinstance(client, dict) or "id" not in client:
        report.add(_MAPPING, "client must be a mapping with at least an id, such as "
                   "{id: acme, name: Acme Retail}", column="client")
        client = {"id": "client"}
    elif not re.fullmatch(CLIENT_ID_PATTERN, str(client["id"])):  # no path from a bad id
        report.add(_MAPPING, f"client id '{client['id']}' is invalid: ids must match "
                   f"{CLIENT_ID_PATTERN}", column="client.id", value=client["id"])
    if "scales" in study_block or "clients" in study_block:
        report.add(_MAPPING, "study must not hold scales or clients: they come from the "
                   "scales and client keys", column="study")
    report.raise_if_any(str(source))

    kept = body.loc[mask]
    survey = pd.DataFrame({
        "unit_id": kept[unit].str.strip(),
        "period": kept[period].str.strip() if period else period_value,
        "respondent_id": kept[respondent].str.strip(),
    })
    for src, item in items.items():
        cells = kept[src].str.strip()
        coded = cells.str.casefold().map(answers).map(
            lambda v: v if v != v else (str(int(v)) if v == int(v) else repr(v)))
        survey[item] = coded.where(coded.notna(), cells)  # unknown text stays: validate names it
    periods = study_block.get("periods")
    if periods is None:
        periods = list(dict.fromkeys(survey["period"]))  # order of first appearance
    config = {"name": study_block.get("name", f"Imported from {source.name}")}
    config.update({k: v for k, v in study_block.items() if k not in ("name", "periods")})
    config["periods"] = periods
    config["scales"] = scales_out
    config["clients"] = [client]
    # order keys as the contract lists them
    order = ["name", "seed", "min_group_size", "periods", "points", "scales", "outcomes",
             "covariates"]
    config = {k: config[k] for k in order if k in config} | {
        k: v for k, v in config.items() if k not in order}

    import yaml

    from .study import validate_study

    result = ImportResult(study=out, responses=len(kept), dropped=int((~mask).sum()),
                          unmapped=[c for c in columns if c not in used])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-import-", dir=out.parent))
    try:
        folder = staging / "clients" / str(client["id"])
        folder.mkdir(parents=True)
        head = (f"# written by exresearch import from {source.name} with {mapping.name}\n"
                f"# source columns not imported: {', '.join(result.unmapped) or 'none'}\n")
        (staging / "study.yml").write_text(head + yaml.safe_dump(
            config, sort_keys=False, allow_unicode=True), encoding="utf-8")
        survey.to_csv(folder / "survey.csv", index=False)
        written = ["study.yml", f"clients/{client['id']}/survey.csv"]
        name = f"outcomes{Path(outcomes).suffix.lower()}"
        shutil.copyfile(outcomes, folder / name)
        written.append(f"clients/{client['id']}/{name}")
        problems = validate_study(staging, include_warnings=True)
        problems = _to_source(problems, f"clients/{client['id']}/survey.csv", kept.index,
                              items, {"unit_id": unit, "period": period,
                                      "respondent_id": respondent}, source)
        result.warnings = problems[problems["severity"] == "warning"].reset_index(drop=True)
        errors = problems[problems["severity"] == "error"].reset_index(drop=True)
        if len(errors):
            n = len(errors)
            raise StudyValidationError(errors, f"{source}: the imported study would have {n} "
                                               f"error{'s' if n != 1 else ''}; nothing was "
                                               "written")
        out.mkdir(exist_ok=True)
        for rel in ["clients", "study.yml"]:
            os.replace(staging / rel, out / rel)
        result.files = [out / rel for rel in written]
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # only what this call wrote
    return result


def _to_source(problems: pd.DataFrame, survey_rel: str, lines: pd.Index, items: dict,
               keys: dict, source: Path) -> pd.DataFrame:
    """Problems of the written survey.csv, pointed at the export's lines and columns."""
    problems = problems.copy()
    on_survey = problems["file"] == survey_rel
    if not on_survey.any():
        return problems
    back = {item: src for src, item in items.items()} | {k: v for k, v in keys.items() if v}
    rows = problems.loc[on_survey, "row"]
    has_row = rows.notna() & (rows >= 2)
    mapped = rows.copy()
    mapped[has_row] = [int(lines[int(r) - 2]) for r in rows[has_row]]
    problems.loc[on_survey, "row"] = mapped
    problems.loc[on_survey, "column"] = problems.loc[on_survey, "column"].map(
        lambda c: back.get(c, c))
    problems.loc[on_survey, "file"] = str(source)
    return problems
