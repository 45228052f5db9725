"""Read the data files researchers are handed: SPSS ``.sav``, Stata ``.dta``, Excel ``.xlsx``.

:func:`exresearch.study.load_study` reads ``clients/<id>/survey.*`` and ``outcomes.*``
as ``.csv``, ``.parquet``, ``.sav``, ``.dta`` or ``.xlsx`` and applies the same
validation to each. This module holds the last three readers (CSV and parquet are
in :mod:`exresearch.study`); each returns the frame in the shape the checks expect:

- key columns (``unit_id``, ``period``, ``respondent_id``) as text, numeric codes
  written without a trailing ``.0`` (SPSS and Excel store ``101`` as ``101.0``);
- the declared numeric columns as numbers (cells that are not numbers are kept as
  text so that the checks can name them);
- one row per record, indexed from 0, so that record ``i`` is reported as row
  ``i + 2`` (the header of a spreadsheet is row 1; a ``.sav``/``.dta`` record uses
  the same numbering, as parquet does).

SPSS and Stata files are read with pyreadstat (the ReadStat library that R's haven
also uses): user-missing codes (SPSS ``MISSING VALUES``, Stata ``.a``-``.z``) are
read as missing; value labels are read as metadata and checked against the scale's
points (a warning names an item whose labels run over another range); variable
labels are offered as item labels (``Study.item_labels``). Excel workbooks are read
with openpyxl through :func:`pandas.read_excel`: the first worksheet, or the one
that ``sheets:`` in ``study.yml`` names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["read_data_file", "key_text"]

_SPSS_STATA = {".sav": ("SPSS", "read_sav"), ".dta": ("Stata", "read_dta")}


def key_text(values: pd.Series) -> pd.Series:
    """Key column values as text; integral numbers without ``.0`` (``101.0`` -> ``'101'``).

    Missing values stay missing.

    Examples
    --------
    >>> key_text(pd.Series([101.0, 7.0, None])).tolist()
    ['101', '7', nan]
    >>> key_text(pd.Series(["u1", 3, 2.5], dtype=object)).tolist()
    ['u1', '3', '2.5']
    """
    if values.dtype == "str":
        return values
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        num = values.astype("float64")
        ok = num.notna()
        if ((num[ok] == np.round(num[ok])) & (num[ok].abs() < 1e15)).all():
            return num.astype("Int64").astype("str")
        return values.astype("str")

    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return np.nan
        if isinstance(v, float) and v == round(v) and abs(v) < 1e15:
            return str(int(v))
        return str(v)

    return values.map(one).astype("str")


def _numeric_or_text(values: pd.Series, na_text) -> pd.Series:
    """A column of mixed cells as float64, or as text when some cell is not a number."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    text = values.map(lambda v: v.strip() if isinstance(v, str) else v)
    text = text.where(~text.isin(na_text), np.nan)
    num = pd.to_numeric(text, errors="coerce")
    if (num.notna() == text.notna()).all():
        return num.astype("float64")
    return text.map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v))
                    else str(v)).astype(object)


def _fmt(v) -> str:
    return str(int(v)) if float(v) == round(float(v)) else f"{v:g}"


def _user_missing(meta, column: str):
    """Whether a value is a user-missing code of ``column`` (SPSS MISSING VALUES)."""
    values = set((getattr(meta, "missing_user_values", None) or {}).get(column, []) or [])
    ranges = (getattr(meta, "missing_ranges", None) or {}).get(column, []) or []

    def test(v):
        if v in values:
            return True
        return any(isinstance(r, dict) and r.get("lo") is not None and r.get("hi") is not None
                   and r["lo"] <= v <= r["hi"] for r in ranges)

    return test


def _check_value_labels(meta, rel: str, spec, warnings) -> None:
    """Warn about an item whose value labels run over another range than its scale."""
    labelled = getattr(meta, "variable_value_labels", None) or {}
    for column, labels in labelled.items():
        num = spec.numeric.get(column)
        if num is None or num.scale is None or not labels:
            continue
        missing = _user_missing(meta, column)
        values = sorted(float(v) for v in labels
                        if isinstance(v, (int, float)) and not missing(v))
        if not values or (values[0] == num.lo and values[-1] == num.hi):
            continue
        lo, hi = values[0], values[-1]
        text_lo = labels.get(lo, labels.get(int(lo), ""))
        text_hi = labels.get(hi, labels.get(int(hi), ""))
        warnings.add(rel, f"the value labels of {column} run from {_fmt(lo)} ('{text_lo}') to "
                     f"{_fmt(hi)} ('{text_hi}'), but scale '{num.scale}' has the points "
                     f"{_fmt(num.lo)}-{_fmt(num.hi)} in study.yml: check the scale's points",
                     column=column, value=f"{_fmt(lo)}-{_fmt(hi)}", severity="warning")


def _read_spss_stata(path: Path, rel: str, spec, problems, warnings):
    import pyreadstat

    what, name = _SPSS_STATA[path.suffix.lower()]
    reader = getattr(pyreadstat, name)
    try:
        # metadata with user_missing=True: only then are the missing codes listed
        _, head = reader(str(path), metadataonly=True, user_missing=True)
        header = [str(c) for c in head.column_names]
        wanted = [c for c in spec.columns if c in header]
        if not wanted:
            frame = pd.DataFrame(index=pd.RangeIndex(head.number_rows or 0))
        else:
            # user_missing=False: user-missing codes come back as missing values
            frame, _ = reader(str(path), usecols=wanted, user_missing=False,
                              apply_value_formats=False, disable_datetime_conversion=True)
    except Exception as exc:  # noqa: BLE001  (ReadStat raises its own error types)
        problems.add(rel, f"cannot read the {what} file: {str(exc).strip() or type(exc).__name__}")
        return None, [], {}
    frame = frame.reset_index(drop=True)
    for col in spec.keys:
        if col in frame:
            frame[col] = key_text(frame[col].where(frame[col].astype(str).str.strip() != "",
                                                   np.nan))
    for col in spec.numeric:
        if col in frame:
            frame[col] = _numeric_or_text(frame[col], [""])
    _check_value_labels(head, rel, spec, warnings)
    labels = {c: str(t) for c, t in (head.column_names_to_labels or {}).items()
              if t and str(t).strip()}
    return frame, header, {"labels": labels}


def _read_xlsx(path: Path, rel: str, spec, problems, numeric_na):
    try:
        with pd.ExcelFile(path, engine="openpyxl") as book:
            sheets = list(book.sheet_names)
            sheet = spec.sheet if spec.sheet is not None else (sheets[0] if sheets else None)
            if sheet not in sheets:
                problems.add(rel, f"the workbook has no sheet '{spec.sheet}' (sheets: "
                             f"{', '.join(sheets)}); fix sheets.{spec.kind} in study.yml",
                             value=spec.sheet)
                return None, [], {}
            raw = pd.read_excel(book, sheet_name=sheet, header=None, dtype=object)
    except Exception as exc:  # noqa: BLE001  (openpyxl/zipfile raise many types)
        problems.add(rel, f"cannot read the Excel file: {str(exc).strip() or type(exc).__name__}")
        return None, [], {}
    if raw.shape[0] == 0:
        problems.add(rel, f"sheet '{sheet}' is empty")
        return None, [], {}
    header = [("" if v is None or (isinstance(v, float) and np.isnan(v))
               else _fmt(v) if isinstance(v, float) else str(v)) for v in raw.iloc[0]]
    named = pd.Series([h for h in header if h.strip()], dtype=object).value_counts()
    for name, n in named[named > 1].items():
        problems.add(rel, f"column '{name}' appears {n} times in the header", row=1, column=name)
    if (named > 1).any():
        return None, header, {}
    wanted = [c for c in spec.columns if c in header]
    frame = raw.iloc[1:, [header.index(c) for c in wanted]]
    frame.columns = wanted
    frame.index = pd.RangeIndex(len(frame))
    if len(frame) and wanted:  # blank rows: skipped, but row numbers keep counting them
        blank = frame.isna().all(axis=1)
        frame = frame.loc[~blank]
    out = {}
    for col in wanted:
        if col in spec.keys:
            out[col] = key_text(frame[col])
        else:
            out[col] = _numeric_or_text(frame[col], numeric_na)
    frame = pd.DataFrame(out, index=frame.index)
    return frame, header, {"sheet": sheet}


def read_data_file(path: Path, rel: str, spec, problems, warnings, *, numeric_na=()):
    """Read a ``.sav``, ``.dta`` or ``.xlsx`` data file for validation.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    rel : str
        Its path relative to the study folder (for problem rows).
    spec : exresearch.study._FileSpec
        What the file must hold (key and numeric columns, scale points, sheet).
    problems, warnings : exresearch.study._Problems
        Collectors of problem rows.
    numeric_na : sequence of str
        Text cells that mean "missing" in numeric columns of a workbook.

    Returns
    -------
    tuple
        ``(frame or None, header, meta)``: ``header`` lists every column of the file,
        ``meta`` has ``labels`` (column -> variable label) for SPSS and Stata files.
    """
    suffix = path.suffix.lower()
    if suffix in _SPSS_STATA:
        return _read_spss_stata(path, rel, spec, problems, warnings)
    if suffix == ".xlsx":
        return _read_xlsx(path, rel, spec, problems, list(numeric_na) + [""])
    raise ValueError(f"`path` must end in .sav, .dta or .xlsx, but {str(path)!r} was passed")
