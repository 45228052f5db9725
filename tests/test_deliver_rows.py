"""exresearch.deliver's workbook data rows: the XML :func:`deliver._write_rows` writes
itself is, byte for byte, what XlsxWriter writes for the cell-by-cell code it replaced
(``_reference_fill_workbook`` below, every cell through ``write_number`` /
``write_boolean`` / ``write_string``), and what the fallback :func:`deliver._write_cells`
writes, on values of every kind a table can hold."""

from __future__ import annotations

import datetime
import decimal
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from exresearch import deliver


def _reference_fill_workbook(wb, tables: dict, names: dict, *, title: str,
                              source: str) -> None:
    """``deliver._fill_workbook`` as it was before the rows were streamed (main at
    e86a9a8, verbatim but for the module prefixes): every cell through ``write_*``."""
    bold = wb.add_format({"bold": True})
    big = wb.add_format({"bold": True, "font_size": 14})
    head_props = {"bold": True, "pattern": 1, "bg_color": "#DCE6F0"}
    head = wb.add_format(head_props)
    head_wrap = wb.add_format({**head_props, "text_wrap": True, "valign": "top"})
    # Excel's "Hyperlink" cell style as openpyxl wrote it (theme colour 10, 12 pt, no
    # underline), not XlsxWriter's default link format (underlined, 11 pt)
    link = wb.add_format({"hyperlink": True, "underline": 0, "font_size": 12})
    formats = {}  # number format -> its format object, one per workbook

    def text(ws, row, col, value, fmt=None):
        """A text cell: neutralised, and text even when it reads as a number or error
        code; an empty text is an empty cell (unless it has a format)."""
        value = deliver.neutralise_cell(str(value))
        if value or fmt is not None:
            ws.write_string(row, col, value, fmt)

    # constant_memory: each sheet's rows are written in order, one sheet after the other
    contents = wb.add_worksheet("Contents")
    contents.set_column(0, 0, deliver._width(32))
    contents.set_column(1, 1, deliver._width(40))
    text(contents, 0, 0, title or "Tables", big)
    if source:
        text(contents, 1, 0, source)
    for j, v in enumerate(("sheet", "table", "rows", "columns")):
        contents.write_string(3, j, v, bold)
    for row, (name, df) in enumerate(tables.items(), start=4):
        sheet = names[name]
        quoted = sheet.replace("'", "''")
        contents.write_url(row, 0, f"internal:'{quoted}'!A1", link, string=sheet)
        text(contents, row, 1, deliver.readable_name(name))
        contents.write_number(row, 2, len(df))
        contents.write_number(row, 3, len(df.columns))
        if len(df) > deliver.EXCEL_MAX_ROWS:  # more than a sheet holds: said
            text(contents, row, 4, f"the sheet holds the first {deliver.EXCEL_MAX_ROWS:,} rows "
                 "(Excel's limit); the CSV file holds every row")
    for name, df in tables.items():
        ws = wb.add_worksheet(names[name])
        columns = []  # per column: (values, format object or None, numeric)
        for j, col in enumerate(df.columns):
            s = df[col]
            width = max([len(str(col))] + [len(str(v)) for v in s.head(200).tolist()])
            ws.set_column(j, j, deliver._width(min(max(width + 2, 8), 60)))
            numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
            fmt = deliver._number_format(col, s) if numeric else None
            if fmt is not None and fmt not in formats:
                formats[fmt] = wb.add_format({"num_format": fmt})
            # (at most the rows a sheet holds: the Contents sheet says when a table has more)
            columns.append((s.head(deliver.EXCEL_MAX_ROWS).tolist(), formats.get(fmt), numeric))
        ws.freeze_panes(1, 0)
        for j, col in enumerate(df.columns):
            text(ws, 0, j, col, head_wrap)
        number = [fmt if numeric else False for _, fmt, numeric in columns]
        for i, row in enumerate(zip(*[values for values, _, _ in columns], strict=True),
                                start=1):
            for j, v in enumerate(row):
                # (since the thirteenth session pandas' NA and NaT are empty cells too,
                # as in the CSV; e86a9a8 wrote them as "<NA>" and "NaT" or raised)
                if v is None or v is pd.NA or v is pd.NaT or (
                        v.__class__ is float
                        and (v != v or v in (deliver._INF, -deliver._INF))):
                    continue  # an empty cell
                fmt = number[j]
                if fmt is not False:
                    ws.write_number(i, j, float(v) if isinstance(v, float) else int(v), fmt)
                elif isinstance(v, bool):
                    ws.write_boolean(i, j, v)
                else:
                    v = deliver.neutralise_cell(str(v))
                    if v:
                        ws.write_string(i, j, v)
    dd = deliver.data_dictionary({names[k]: v for k, v in tables.items()})
    ws = wb.add_worksheet("Columns")
    for j, w in enumerate((30, 24, 30, 10, 70)):
        ws.set_column(j, j, deliver._width(w))
    ws.freeze_panes(1, 0)
    for j, col in enumerate(dd.columns):
        ws.write_string(0, j, col, head)
    for i, rec in enumerate(dd.itertuples(index=False), start=1):
        for j, v in enumerate(rec):
            text(ws, i, j, v)


def _members(path) -> dict:
    """Every member of an .xlsx (a zip), in order, with its bytes, date and compression;
    the creation time in docProps/core.xml (the clock at writing) left out."""
    with zipfile.ZipFile(path) as z:
        out = {}
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"<dcterms:(created|modified)[^<]*<", b"", data)
            out[info.filename] = (data, info.date_time, info.compress_type)
    return out


def _outcome(tables, path, **kw):
    """The workbook's members, or the error raised instead."""
    try:
        deliver.write_workbook(tables, path, **kw)
    except Exception as e:  # noqa: BLE001 - the error is the outcome compared
        return (type(e), str(e))
    return _members(path)


def _both(tables, tmp_path, monkeypatch, **kw):
    """(streamed, reference) outcomes, after checking that the fallback (every row
    through ``_write_cells``) gives the reference's; also how many data rows went
    through ``_write_cells`` when streaming."""
    through_cells = []
    real = deliver._write_cells

    def spy(ws, columns, start, stop):
        through_cells.append(stop - start)
        return real(ws, columns, start, stop)

    with monkeypatch.context() as m:
        m.setattr(deliver, "_write_cells", spy)
        fast = _outcome(tables, tmp_path / "fast.xlsx", **kw)
    with monkeypatch.context() as m:
        m.setattr(deliver, "_fill_workbook", _reference_fill_workbook)
        ref = _outcome(tables, tmp_path / "ref.xlsx", **kw)
    with monkeypatch.context() as m:
        m.setattr(deliver, "_streams", lambda ws, columns: False)
        assert _outcome(tables, tmp_path / "cells.xlsx", **kw) == ref
    return fast, ref, sum(through_cells)


def _check_same(fast, ref):
    assert isinstance(ref, dict), ref  # the reference wrote a workbook
    assert list(fast) == list(ref)
    for name in ref:
        assert fast[name] == ref[name], name


TEXTS = ["=1+1", "+a", "-x", "@me", "-0.5", "+3e-2", "\tx", "\rx", "\nx", "<a & b>", "a > b",
         '"quoted"', "it's", " lead", "trail ", "  both  ", " ", "\u3000wide", "a\nb",
         "a\r\nb", "x\x00y", "\x01\x07\x08\x0b\x0c\x1f", "tab\there", "_x0041_", "a_x00ZZ_b",
         "\ufffe\uffff", "<r>rich?</r>", "<r>half", "", "nan", "None", "TRUE", "#N/A",
         "1e5", "http://x.org/?a=1&b=2", "日本語", "emoji 😀🎉", "café", "x" * 5000,
         "é" * 20000, "😀" * 17000 + "tail", "a" * 32767 + "b", "]]>", "&amp;", "&#xA;"]


def _numbers(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    special = [np.nan, np.inf, -np.inf, -0.0, 0.0, 5e-324, 2.2250738585072014e-308,
               1.7976931348623157e308, 1e16, 123456789012345678.0, 0.1 + 0.2, 1 / 3, -1e-300,
               1e15 + 0.3, 9007199254740993.0, 1e21, 1e-5, 0.0001, 12345.678901234567]
    floats = (special * (n // len(special) + 1))[:n]
    ints = [2**53 + 1, 2**62, -2**63, 0, -1, 999, 1000, 2**63 - 1]
    return pd.DataFrame({
        "estimate": floats, "r": rng.normal(size=n), "p_value": rng.random(n),
        "pct_favourable": 100 * rng.random(n), "revenue": 1e6 * rng.random(n),
        "n_units": (ints * (n // len(ints) + 1))[:n],
        "big": np.array([2**64 - 1, 2**63, 1, 0] * (n // 4 + 1), dtype=np.uint64)[:n],
        "small": np.arange(n, dtype=np.int32) - 5, "f32": rng.random(n).astype(np.float32),
        "f16": rng.random(n).astype(np.float16), "gone": np.full(n, np.nan),
        "only_inf": np.where(np.arange(n) % 2 == 0, np.inf, np.nan)})


def _texts() -> pd.DataFrame:
    n = len(TEXTS)
    return pd.DataFrame({
        "str": pd.Series(TEXTS, dtype="str"),
        "object": pd.Series(TEXTS, dtype=object),
        "python_string": pd.Series(TEXTS[:-1] + [None], dtype="string[python]"),
        "arrow_string": pd.Series([None] + TEXTS[1:], dtype="string[pyarrow]"),
        "missing": pd.Series([np.nan if i % 3 else t for i, t in enumerate(TEXTS)], dtype="str"),
        "category": pd.Categorical([t if i % 4 else None for i, t in enumerate(TEXTS)]),
        "repeat": [TEXTS[i % 5] for i in range(n)]})


def _mixed() -> pd.DataFrame:
    values = [1, 2.5, "x", None, np.nan, np.float64("nan"), np.int64(3), True, False,
              np.bool_(False), decimal.Decimal("1.10"), datetime.date(2024, 1, 2), pd.NA,
              pd.NaT, [1, 2], b"bytes", float("inf"), -float("inf"), 2**70, complex(1, 2),
              "=x", ""]
    n = len(values)
    return pd.DataFrame({
        "mixed": pd.Series(values, dtype=object),
        "flag": np.arange(n) % 3 == 0,
        "flag_missing": pd.Series([True, None, False] * (n // 3) + [True] * (n % 3),
                                  dtype=object),
        "nullable_flag": pd.Series([True, pd.NA, False] * (n // 3) + [True] * (n % 3),
                                   dtype="boolean"),
        "when": pd.to_datetime(["2024-01-02", None] * (n // 2)),
        "how_long": pd.to_timedelta(np.arange(n), unit="h"),
        "category_ints": pd.Categorical(np.arange(n) % 4),
        "r": np.linspace(-1, 1, n)})


def test_the_installed_xlsxwriter_is_streamed():
    """The comparisons below compare two ways of writing, not one with itself."""
    import xlsxwriter

    assert xlsxwriter.__version__ in deliver._STREAMED_XLSXWRITER


CASES = {
    "numbers": lambda: {"numbers": _numbers(600)},
    "texts": lambda: {"texts": _texts()},
    "mixed": lambda: {"mixed": _mixed()},
    "empty rows and columns": lambda: {
        # rows empty at the start, in the middle and at the end; a column filled in its
        # last row only (a format first used by the row XlsxWriter writes on closing)
        "gaps": pd.DataFrame({"a": [np.nan, np.nan, 1.5, np.nan, 2.5, np.nan, np.nan],
                              "t": [None, "", "x", None, "", "y", None],
                              "p_value": [np.nan] * 6 + [0.5],
                              "pct_x": [np.nan] * 5 + [1.0, np.nan]}),
        "all_empty": pd.DataFrame({"a": [np.nan] * 4, "t": ["", None, np.nan, ""]}),
        "no_rows": pd.DataFrame({"a": pd.Series([], dtype=float), "t": pd.Series([], dtype=str)}),
        "no_columns": pd.DataFrame(index=range(3)),
        "one_row": pd.DataFrame({"pct_y": [5.0], "t": ["only"]}),
        "one_filled_row": pd.DataFrame({"n": [np.nan, 7.0, np.nan], "flag": [None, True, None]}),
        "wide": pd.DataFrame({f"c{j}": np.arange(40) * j + 0.5 for j in range(30)})},
    "format order": lambda: {
        # a format first used by a one-row table: XlsxWriter writes that row, and gives
        # the format its index, when the workbook closes, after the later sheets' rows
        "first": pd.DataFrame({"p_value": [0.5]}),
        "later": pd.DataFrame({"pct_b": [1.0, 2.0], "p_x": [0.1, 0.2]}),
        # each number format first used in a later row than the one before it, in a
        # column to its left: the styles part lists formats in the order of first use
        "order": pd.DataFrame({"revenue": [np.nan, np.nan, np.nan, 5000.0, 1.0],
                               "pct_a": [np.nan, np.nan, 2.0, np.nan, 3.0],
                               "p_value": [np.nan, 0.01, np.nan, np.nan, 0.2],
                               "n": [1, 2, 3, 4, 5]})},
}


@pytest.mark.parametrize("case", list(CASES))
def test_streamed_rows_are_xlsxwriters_bytes(case, tmp_path, monkeypatch):
    tables = CASES[case]()
    fast, ref, through_cells = _both(tables, tmp_path, monkeypatch, title="T <&>",
                                     source="from CSV")
    _check_same(fast, ref)
    # all but the last row with a cell of each sheet streamed: one row through write_*
    # per sheet with a cell ("all_empty", "no_rows", "no_columns" have none), the
    # Columns sheet's too
    assert through_cells == (4 if case == "empty rows and columns" else len(tables)) + 1


def test_streamed_rows_are_xlsxwriters_bytes_in_blocks_and_at_the_row_limit(
        tmp_path, monkeypatch):
    """Rows formatted a few at a time (blocks of 3 here) and a table cut at a sheet's
    limit (5 rows here) give the same bytes."""
    monkeypatch.setattr(deliver, "_ROWS_AT_ONCE", 3)
    monkeypatch.setattr(deliver, "EXCEL_MAX_ROWS", 5)
    n = 23
    df = pd.DataFrame({"x": [np.nan if i % 4 == 1 else i / 7 for i in range(n)],
                       "t": [None if i % 3 == 0 else f"row {i}" for i in range(n)],
                       "p_value": [np.nan] * 7 + [0.5] * (n - 7)})
    tables = {"long": df, "cut": df.head(12)}
    fast, ref, _ = _both(tables, tmp_path, monkeypatch)
    _check_same(fast, ref)
    monkeypatch.setattr(deliver, "EXCEL_MAX_ROWS", 1_048_575)
    fast, ref, through_cells = _both(tables, tmp_path, monkeypatch)
    _check_same(fast, ref)
    assert through_cells == 3  # the last row of each sheet, Columns too


def test_columns_it_cannot_stream_go_cell_by_cell_with_the_same_outcome(tmp_path, monkeypatch):
    """A numeric column that is not a numpy int or float column (nullable integers here)
    sends its sheet through XlsxWriter's ``write_*``: the outcome is the reference's,
    a missing nullable integer included (an empty cell)."""
    fine = {"a": pd.DataFrame({"n": pd.array([1, 2, 3], dtype="Int64"), "x": [1.5, 2.5, 3.5]})}
    fast, ref, through_cells = _both(fine, tmp_path, monkeypatch)
    _check_same(fast, ref)
    assert through_cells == 3 + 1  # every row cell by cell; the Columns sheet's last
    missing = {"a": pd.DataFrame({"n": pd.array([1, None], dtype="Int64")})}
    fast, ref, _ = _both(missing, tmp_path, monkeypatch)
    _check_same(fast, ref)
    sheet = fast["xl/worksheets/sheet2.xml"][0]
    assert b'<c r="A2" s="' in sheet and b'<c r="A3"' not in sheet  # 1, then no cell


def test_missing_values_of_every_kind_are_empty_cells_as_in_the_csv(tmp_path):
    """pandas' NA (nullable Int64, Float64, boolean and string columns, objects) and NaT
    are empty cells, as NaN and None are and as the CSV writes them all; before, a
    missing nullable number raised TypeError and the others were the text "<NA>" or
    "NaT"."""
    import openpyxl

    from exresearch import privacy

    df = pd.DataFrame({
        "n": pd.array([1, None, 3], dtype="Int64"),
        "x": pd.array([0.5, None, 1.5], dtype="Float64"),
        "flag": pd.array([True, None, False], dtype="boolean"),
        "label": pd.array(["a", None, "c"], dtype="string[python]"),
        "arrow": pd.array(["a", None, "c"], dtype="string[pyarrow]"),
        "when": pd.to_datetime(["2024-01-02", None, "2024-03-04"]),
        "anything": pd.Series(["a", pd.NA, pd.NaT], dtype=object),
        "r": [0.1, np.nan, 0.3]})
    path = deliver.write_workbook({"t": df}, tmp_path / "t.xlsx")
    ws = openpyxl.load_workbook(path)["t"]
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert rows[1] == [None] * len(df.columns)  # the middle row: every cell empty
    assert rows[0][:5] == [1, 0.5, True, "a", "a"] and rows[2][:5] == [3, 1.5, False, "c", "c"]
    assert [ws.cell(1, j + 1).value for j in range(len(df.columns))] == list(df.columns)
    privacy.write_csv(df, tmp_path / "t.csv")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[2] == "," * (len(df.columns) - 1)  # the CSV's row: every field empty
