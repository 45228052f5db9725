"""What a site delivers besides its pages: Excel workbooks, PDFs, executive briefs.

After the build has written the report pages and their CSV tables, one call,
:func:`publish_extras`, adds to the site:

- ``assets/site.css``: the one stylesheet every page links (also in each share bundle);
- ``workbooks/<key>.xlsx``: every table of a report in one Excel workbook (XlsxWriter), one
  sheet per table, readable column names, number formats, a ``Columns`` sheet (the data
  dictionary) and text cells neutralised against formula injection like the CSVs;
- ``tables/<key>/data_dictionary.csv``: each CSV column's code beside a readable name;
- ``briefs/<key>.html``: a one-to-two-page executive brief per client (the findings,
  the first-priority drivers, the value at stake, the loop verdict);
- ``pdf/<key>.pdf`` and ``pdf/<key>-brief.pdf``: every report and brief printed by
  headless Chromium through playwright (when Chromium is installed; otherwise skipped
  with one message), their figures stored as palette images (:func:`compact_pdf`);
- the share bundles' landing pages (the client's name, its brief, report, PDF and
  workbook, and which pseudonym in the synthesis is its own, shown only there), and
  links to all of it on the index.

Examples
--------
>>> import pandas as pd, tempfile, pathlib
>>> from exresearch.deliver import write_workbook
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.xlsx"
>>> _ = write_workbook({"scores": pd.DataFrame({"scale": ["=1+1"], "mean": [3.14159]})}, path,
...                    title="Acme")
>>> import openpyxl
>>> ws = openpyxl.load_workbook(path)["scores"]
>>> ws["A1"].value, ws["A2"].value, ws["B2"].value
('scale', "'=1+1", 3.14159)
"""

from __future__ import annotations

import contextlib
import html as _html
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from concurrent.futures import as_completed
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .exceptions import ParameterError
from .formatting import column_format, data_dictionary, readable_name
from .privacy import escape, neutralise_cell
from .site import slim_tables

__all__ = ["write_workbook", "find_chromium", "render_pdfs", "render_brief", "publish_extras",
           "pdf_enabled", "compact_pdf", "notebook_without_images", "PdfError"]

_BAD_SHEET = re.compile(r"[\[\]:*?/\\]")


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-16 code units (how Excel counts a sheet name)."""
    text = text[:limit]
    while len(text.encode("utf-16-le")) > 2 * limit:
        text = text[:-1]
    return text


def _sheet_name(name: str, used: set) -> str:
    # Excel refuses a sheet name longer than 31 UTF-16 units, with one of []:*?/\ or
    # beginning or ending with an apostrophe (XlsxWriter raises on each)
    base = re.sub(r"^'|'$", "_", _cut(_BAD_SHEET.sub("_", str(name)), 31)) or "table"
    out, i = base, 2
    while out.lower() in used:
        suffix = f"~{i}"
        out = _cut(base, 31 - len(suffix)) + suffix
        i += 1
    used.add(out.lower())
    return out


def _number_format(col, values) -> str | None:
    f = column_format(col, values)
    if f is None:
        return None
    name = str(col).lower()
    if re.search(r"(^|_)(p|p_value|pval|p_adj)($|_)", name):
        return "0.000"
    if re.search(r"(^|_)(pct|percent)($|_)", name):
        return '0.0"%"'
    if pd.api.types.is_integer_dtype(values):
        return "#,##0"
    # numbers of 1000 or more (infinity too) get a thousands separator; NaN is no number
    # (numpy: 4 us a column, pandas' to_numeric/abs/max 90 us, ~180 columns a workbook)
    if (np.abs(values.to_numpy(dtype=float, na_value=np.nan)) >= 1000).any():
        return "#,##0"
    return "0.000"


def write_workbook(tables: dict, path, *, title: str = "", source: str = "") -> Path:
    """Write tables into one Excel workbook: a contents sheet, one sheet per table.

    Parameters
    ----------
    tables : dict
        Sheet name (e.g. the CSV's stem) -> DataFrame, in the order to show.
    path : str or pathlib.Path
        The ``.xlsx`` to write (its folder must exist).
    title : str, optional
        Shown on the contents sheet.
    source : str, optional
        A line about where the tables come from, shown on the contents sheet.

    Returns
    -------
    pathlib.Path

    Notes
    -----
    Values are written at full precision (the number format only rounds what is
    shown). The header row holds the column codes of the CSV, so a sheet reads like the
    CSV; the ``Columns`` sheet gives each code's readable name and definition. Text
    cells that a spreadsheet would evaluate (``=``, ``+``, ``-``, ``@`` ...) get a
    leading ``'`` (:func:`exresearch.privacy.neutralise_cell`) and are stored as text.

    Numbers are stored as Excel reads them back (16 significant digits, as openpyxl
    wrote them too); missing values (NaN, None, pandas' NA and NaT: empty in the CSV
    too) and infinite values are empty cells; booleans are booleans.

    The workbook is written by XlsxWriter in ``constant_memory`` mode: each sheet is
    streamed row by row into a temporary file of the folder :mod:`tempfile` uses (the
    build points it at its staging area), one format object per style, shared by every
    cell of a column. Each cell is written with an explicit type (``write_string``,
    ``write_number``, ``write_boolean``), never XlsxWriter's guessing ``write()``; the
    data rows' XML is formatted a column at a time, byte for byte what those calls
    write, and cell by cell where that is not certain (:func:`_write_rows`).
    The file is written next to ``path`` and moved into place when complete.
    """
    import xlsxwriter

    if not isinstance(tables, dict):
        raise ParameterError(f"`tables` must be a dict of DataFrames, but {type(tables).__name__} "
                             "was passed")
    for name, df in tables.items():
        if not isinstance(df, pd.DataFrame):
            raise ParameterError(f"table {name!r} must be a DataFrame, but "
                                 f"{type(df).__name__} was passed")
    path = Path(path)
    used = {"contents", "columns"}
    names = {name: _sheet_name(name, used) for name in tables}
    tmp = path.with_name(path.name + ".tmp")
    # no string is ever turned into a number, formula or link: every cell is typed below
    wb = xlsxwriter.Workbook(str(tmp), {
        "constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
        "strings_to_urls": False, "tmpdir": tempfile.gettempdir()})
    try:
        _fill_workbook(wb, tables, names, title=title, source=source)
    except BaseException:
        # closing removes the sheets' temporary files; the half-written file goes too
        with contextlib.suppress(Exception):
            wb.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    try:
        wb.close()
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.replace(tmp, path)
    return path


def _width(chars: float) -> float:
    """The width to give XlsxWriter for a column ``chars`` wide as stored in the file.

    XlsxWriter takes the width Excel shows (without the 5 pixels of padding, in digits of
    7 pixels) and stores ``chars + 5/7``; openpyxl stored the width given. Written by
    hand so that the stored widths stay those of the workbooks openpyxl wrote.
    """
    return chars - 5 / 7


_INF = float("inf")
#: pandas' missing values of nullable columns (Int64, Float64, boolean, string) and of
#: datetimes: empty cells, as the CSV writes them (not the text "<NA>" or "NaT", nor an
#: error from ``int(pd.NA)``)
_NA, _NAT = pd.NA, pd.NaT
#: Rows of data an Excel sheet holds below its header row (1,048,576 rows in all).
EXCEL_MAX_ROWS = 1_048_575


def _fill_workbook(wb, tables: dict, names: dict, *, title: str, source: str) -> None:
    """The sheets of :func:`write_workbook`, written into the XlsxWriter workbook ``wb``."""
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
        value = neutralise_cell(str(value))
        if value or fmt is not None:
            ws.write_string(row, col, value, fmt)

    # constant_memory: each sheet's rows are written in order, one sheet after the other
    contents = wb.add_worksheet("Contents")
    contents.set_column(0, 0, _width(32))
    contents.set_column(1, 1, _width(40))
    text(contents, 0, 0, title or "Tables", big)
    if source:
        text(contents, 1, 0, source)
    for j, v in enumerate(("sheet", "table", "rows", "columns")):
        contents.write_string(3, j, v, bold)
    for row, (name, df) in enumerate(tables.items(), start=4):
        sheet = names[name]
        quoted = sheet.replace("'", "''")
        contents.write_url(row, 0, f"internal:'{quoted}'!A1", link, string=sheet)
        text(contents, row, 1, readable_name(name))
        contents.write_number(row, 2, len(df))
        contents.write_number(row, 3, len(df.columns))
        if len(df) > EXCEL_MAX_ROWS:  # more than a sheet holds: said, not dropped unsaid
            text(contents, row, 4, f"the sheet holds the first {EXCEL_MAX_ROWS:,} rows "
                 "(Excel's limit); the CSV file holds every row")
    for name, df in tables.items():
        ws = wb.add_worksheet(names[name])
        columns = []
        for j, col in enumerate(df.columns):
            s = df[col]
            # at most the rows a sheet holds (the Contents sheet says when a table has
            # more); one list of the values (pandas' head() copies: ~20 us a call)
            shown = s if len(s) <= EXCEL_MAX_ROWS else s.head(EXCEL_MAX_ROWS)
            values = shown.tolist()
            width = max([len(str(col))] + [len(str(v)) for v in values[:200]])
            ws.set_column(j, j, _width(min(max(width + 2, 8), 60)))
            numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
            fmt = _number_format(col, s) if numeric else None
            if fmt is not None and fmt not in formats:
                formats[fmt] = wb.add_format({"num_format": fmt})
            columns.append(_Column(values, formats.get(fmt), numeric, shown))
        ws.freeze_panes(1, 0)
        for j, col in enumerate(df.columns):
            text(ws, 0, j, col, head_wrap)
        _write_rows(ws, columns)
    dd = data_dictionary({names[k]: v for k, v in tables.items()})
    ws = wb.add_worksheet("Columns")
    for j, w in enumerate((30, 24, 30, 10, 70)):
        ws.set_column(j, j, _width(w))
    ws.freeze_panes(1, 0)
    for j, col in enumerate(dd.columns):
        ws.write_string(0, j, col, head)
    # each value as text(), i.e. neutralise_cell(str(v)) written unless empty: the same
    # for _write_rows when every value is a str
    _write_rows(ws, [_Column([str(v) for v in dd[col].tolist()], None, False, dd[col])
                     for col in dd.columns])



class _Column(NamedTuple):
    """A data column of a sheet, as :func:`_fill_workbook` writes it."""

    values: list  # the cells' values, as ``Series.tolist()`` gives them
    fmt: object  # the number format object of its numbers, or None
    numeric: bool  # every value is written as a number
    series: pd.Series  # the column itself (its dtype, its numpy array)


def _write_cells(ws, columns: list, start: int, stop: int) -> None:
    """Data rows ``start`` .. ``stop - 1`` (sheet rows ``start + 1`` ..), cell by cell
    through XlsxWriter's ``write_*``: the reference :func:`_write_rows` writes the same
    bytes as, and how it writes what it cannot stream."""
    number = [c.fmt if c.numeric else False for c in columns]
    for i, row in enumerate(zip(*[c.values[start:stop] for c in columns], strict=True),
                            start=start + 1):
        for j, v in enumerate(row):
            if v is None or v is _NA or v is _NAT or (v.__class__ is float
                                                      and (v != v or v in (_INF, -_INF))):
                continue  # an empty cell, as in the CSV
            fmt = number[j]
            if fmt is not False:
                ws.write_number(i, j, float(v) if isinstance(v, float) else int(v), fmt)
            elif isinstance(v, bool):
                ws.write_boolean(i, j, v)
            else:
                v = neutralise_cell(str(v))
                if v:
                    ws.write_string(i, j, v)


#: XlsxWriter versions whose ``constant_memory`` row XML :func:`_write_rows` writes
#: itself (``tests/test_deliver.py`` compares it byte for byte with :func:`_write_cells`);
#: with another version every cell goes through XlsxWriter's ``write_*``.
_STREAMED_XLSXWRITER = ("3.3.1",)
#: Data rows formatted and written at once: bounds the memory of a long table (the
#: synthesis workbook at 300 clients: peak RSS +2 MiB over cell by cell; 4,096 rows: +14).
_ROWS_AT_ONCE = 512
_BOOL_TAIL = {True: ' t="b"><v>1</v></c>', False: ' t="b"><v>0</v></c>'}


def _streams(ws, columns: list) -> bool:
    """Whether :func:`_write_rows` may write the XML of ``ws``'s data rows itself: a
    known XlsxWriter writing in ``constant_memory`` mode with nothing but the header
    row written, no row or comment settings, and numbers only from numpy int or float
    columns (whose ``tolist()`` gives Python ints and floats)."""
    import xlsxwriter

    return (xlsxwriter.__version__ in _STREAMED_XLSXWRITER and ws.constant_memory
            and ws.excel_version == 2007 and not ws.row_info and not ws.comments
            and ws.default_row_height == ws.original_row_height
            and ws.previous_row == 0 and set(ws.table) <= {0}
            and all(not c.numeric or (isinstance(c.series.dtype, np.dtype)
                                      and c.series.dtype.kind in "iuf"
                                      and c.series.dtype.itemsize <= 8) for c in columns))


def _text_tail(ws, v) -> str:
    """The end of a text cell's XML after ``<c r="A1"`` (and its style), as XlsxWriter
    writes ``write_string(neutralise_cell(str(v)))`` in ``constant_memory`` mode (an
    inline string); "" for no cell."""
    from xlsxwriter.utility import _preserve_whitespace, _utf16_len, _utf16_truncate

    v = neutralise_cell(str(v))
    if not v:
        return ""
    # Worksheet._write_string: cut to Excel's 32,767 UTF-16 units
    if len(v) > ws.xls_strmax // 2 and _utf16_len(v) > ws.xls_strmax:
        v = _utf16_truncate(v, ws.xls_strmax)
    # Worksheet._write_cell: control characters as _xHHHH_, "<r>...</r>" taken as a rich
    # string (written unescaped, as XlsxWriter does), xml:space for outer spaces
    v = ws._escape_control_characters(v)
    if v.startswith("<r>") and v.endswith("</r>"):
        return f' t="inlineStr"><is>{v}</is></c>'
    space = ' xml:space="preserve"' if _preserve_whitespace(v) else ""
    return f' t="inlineStr"><is><t{space}>{ws._escape_data(v)}</t></is></c>'


def _text_tails(ws, values: list) -> list:
    """:func:`_text_tail` of each value of a column that is not numeric (a boolean is a
    boolean cell), each distinct text formatted once."""
    seen = {}
    out = []
    for v in values:
        if v.__class__ is str:  # the common case first; a str is never empty-as-NaN
            t = seen.get(v)
            if t is None:
                t = seen[v] = _text_tail(ws, v)
        elif v is None or v is _NA or v is _NAT or (v.__class__ is float
                                                    and (v != v or v in (_INF, -_INF))):
            t = ""
        elif isinstance(v, bool):
            t = _BOOL_TAIL[v]
        else:
            t = _text_tail(ws, v)
        out.append(t)
    return out


def _write_rows(ws, columns: list) -> None:
    """The data rows of a sheet whose header row is written: the XML XlsxWriter's
    ``constant_memory`` worksheet writes for :func:`_write_cells`, byte for byte,
    formatted a column at a time and written into the sheet's row file.

    XlsxWriter spends ~6 us a cell (a ``write_*`` call, a cell record, its XML from
    attribute lists); here a number cell is one ``%`` format and a text cell one
    concatenation (each distinct text escaped once), and a row one join. What a
    ``write_*`` call records besides the XML is kept: the header row is flushed by
    XlsxWriter's own ``_write_single_row``; the format indexes are taken in the order the
    cells would first use them (the styles part lists formats by index); and the last
    row with a cell goes through :func:`_write_cells`, so the sheet's dimensions and
    its last row (which XlsxWriter writes when the workbook closes, with the format
    indexes then first used) are XlsxWriter's own.
    """
    n = len(columns[0].values) if columns else 0
    if n == 0:
        return
    if not _streams(ws, columns):
        _write_cells(ws, columns, 0, n)
        return
    from xlsxwriter.utility import xl_col_to_name

    kinds, filled, data = [], [], []
    for c in columns:
        dtype = c.series.dtype
        if c.numeric:
            kind = "float" if dtype.kind == "f" else "int"
            arr = c.series.to_numpy()
            mask = np.isfinite(arr) if kind == "float" else np.ones(n, dtype=bool)
            values = c.values
        elif isinstance(dtype, np.dtype) and dtype.kind == "b":
            kind, mask, values = "bool", np.ones(n, dtype=bool), c.values
        else:
            kind = "text"
            values = _text_tails(ws, c.values)
            mask = np.fromiter(map(bool, values), dtype=bool, count=n)
        kinds.append(kind)
        filled.append(mask)
        data.append(values)
    rows = np.flatnonzero(np.logical_or.reduce(filled))
    if len(rows) == 0:
        return
    first, last = int(rows[0]), int(rows[-1])
    if first < last:
        ws._write_single_row(first + 1)  # the header row, as the first data cell would
        # each cell's style: its number format, else its column's (XlsxWriter's order)
        styles = [c.fmt if c.fmt is not None else getattr(ws.col_info.get(j), "column_format",
                                                           None)
                  for j, c in enumerate(columns)]
        used = sorted((int(np.argmax(filled[j][first:last])), j) for j in range(len(columns))
                      if styles[j] is not None and filled[j][first:last].any())
        for _, j in used:
            styles[j]._get_xf_index()
        attrs = [f' s="{f._get_xf_index()}"' if f is not None else "" for f in styles]
        letters = [xl_col_to_name(j) for j in range(len(columns))]
        for start in range(first, last, _ROWS_AT_ONCE):
            stop = min(start + _ROWS_AT_ONCE, last)
            numbers = range(start + 2, stop + 2)  # the rows' numbers in the sheet's XML
            cells = []
            for kind, mask, values, s, col in zip(kinds, filled, data, attrs, letters,
                                                  strict=True):
                values = values[start:stop]
                if kind == "text":
                    pre = f'<c r="{col}'
                    cells.append([f'{pre}{r}"{s}{t}' if t else ""
                                  for r, t in zip(numbers, values, strict=True)])
                elif kind == "bool":
                    yes = f'<c r="{col}%d"{s}{_BOOL_TAIL[True]}'
                    no = f'<c r="{col}%d"{s}{_BOOL_TAIL[False]}'
                    cells.append([yes % r if v else no % r
                                  for r, v in zip(numbers, values, strict=True)])
                else:
                    cell = f'<c r="{col}%d"{s}><v>%.16G</v></c>'
                    ok = mask[start:stop]
                    if ok.all():
                        cells.append([cell % rv for rv in zip(numbers, values, strict=True)])
                    else:
                        cells.append([cell % (r, v) if k else "" for r, v, k
                                      in zip(numbers, values, ok.tolist(), strict=True)])
            out = []
            for r, parts in zip(numbers, zip(*cells, strict=True), strict=True):
                body = "".join(parts)
                if body:
                    out.append(f'<row r="{r}">{body}</row>')
            ws.fh.write("".join(out))
    _write_cells(ws, columns, last, last + 1)

# ---- PDF ------------------------------------------------------------------------------

def find_chromium() -> str | None:
    """The Chromium executable to print with: ``$EXRESEARCH_CHROMIUM`` or on ``PATH``."""
    env = os.environ.get("EXRESEARCH_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def pdf_enabled(pdf=None) -> bool:
    """Whether the build prints PDFs: ``pdf`` if given, else ``$EXRESEARCH_PDF`` (0/1),
    else whenever Chromium and playwright are installed."""
    return _pdf_off_reason(pdf) is None


def _pdf_off_reason(pdf=None) -> str | None:
    """Why the build prints no PDFs, in the words of the progress line (None: it prints)."""
    if pdf is not None:
        return None if pdf else "--no-pdf"
    env = os.environ.get("EXRESEARCH_PDF", "").strip().lower()
    if env in ("0", "false", "no", "off"):
        return f"EXRESEARCH_PDF={os.environ['EXRESEARCH_PDF'].strip()}"
    if find_chromium() is None:
        return "no Chromium; apt-get install chromium, or --pdf to require it"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed; pip install playwright, or --pdf to require it"
    return None


#: The page numbers ("3 / 11", centred at the foot of each page) as a CSS ``@page`` margin
#: box, added to each page before it is printed: the same text, size and place as the
#: header/footer template Chromium's ``display_header_footer`` printed before, but laid
#: out with the page itself instead of as a separate document per printed page.
#: (The template's line of 8px sans-serif ended 15.08 pt above the paper's edge; the
#: margin box puts every glyph where the template did, to the 1/1000 pt of
#: ``pdftotext -bbox``, and every page renders to the same pixels; only in each page's
#: content stream the number now comes first, where the template's came last.) Chromium
#: lays out margin boxes since version 131; an older one prints the template
#: (:func:`_page_numbers`).
_PAGE_NUMBERS_CSS = ('@page { @bottom-center { content: counter(page) " / " counter(pages); '
                     'font: 8px system-ui; color: #555; vertical-align: bottom; '
                     'padding-bottom: 15.08pt; } }')

#: The page numbers for a Chromium before 131 (no margin boxes): its footer template.
_FOOTER = ('<div style="font-size:8px;width:100%;text-align:center;color:#555;">'
           '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')


def _page_numbers(version: str) -> tuple[str, dict]:
    """How Chromium ``version`` (e.g. ``"156.0.8078.114"``) prints the page numbers:
    (the stylesheet added to each page, the extra ``page.pdf`` options). A margin box
    from version 131 on, else (or when the version cannot be read) the template."""
    major = version.split(".")[0]
    if major.isdigit() and int(major) >= 131:
        return _PAGE_NUMBERS_CSS, {}
    return "", {"display_header_footer": True, "header_template": "<div></div>",
                "footer_template": _FOOTER}


#: playwright's ``page.pdf`` options of every PDF (the page numbers: :data:`_PAGE_NUMBERS_CSS`).
_PDF_OPTIONS = {"format": "Letter", "print_background": True, "prefer_css_page_size": True,
                "margin": {"top": "14mm", "bottom": "16mm", "left": "12mm", "right": "12mm"}}


#: Longest folder for Chromium's temporary files: 107 bytes of a unix socket path less
#: ``/org.chromium.Chromium.XXXXXX/SingletonSocket``.
_MAX_CHROMIUM_TMPDIR = 107 - len("/org.chromium.Chromium.XXXXXX/SingletonSocket")


#: What a page needs before it is printed (called with :data:`_PAGE_NUMBERS_CSS`, added
#: as a stylesheet of the page's own, or ``""``): links to other files lose their target (a PDF
#: would turn them into absolute file:// paths of this machine; anchors stay), and paper
#: cannot be clicked open, so a folded table (<details>, e.g. every client's numbers under
#: a caterpillar plot) is printed open. A page whose ``<body>`` carries
#: ``data-exr-print-rows="N"`` (a notebook's ``exresearch.print_max_rows`` metadata,
#: :func:`exresearch.site.render_report`) prints the first and the last N/2 rows of a
#: longer table (a ranked table keeps both ends), a line in between naming the rows left
#: out and the web page that shows them, and says so in the table's caption: the
#: study-level reports list every client, and at 300 clients printed 158 (synthesis) and
#: 264 (data quality) pages of such rows. A table at most 10 rows over N prints whole.
_BEFORE_PRINT = """css => {
    if (css) {
        const style = document.createElement('style');
        style.textContent = css;
        document.head.append(style); }
    document.querySelectorAll('a[href]').forEach(a => {
        if (!a.getAttribute('href').startsWith('#')) a.removeAttribute('href'); });
    document.querySelectorAll('details').forEach(d => { d.open = true; });
    const max = parseInt(document.body.dataset.exrPrintRows || '0', 10);
    if (!(max > 0)) return;
    const head = Math.ceil(max / 2), tail = max - head;
    const page = decodeURIComponent(location.pathname.split('/').pop());
    const fmt = k => k.toLocaleString('en-US');
    document.querySelectorAll('table').forEach(t => {
        const body = t.tBodies[0];
        const n = body ? body.rows.length : 0;
        if (n <= max + 10) return;
        const cols = Math.max(...Array.from(t.rows, r => Array.from(r.cells).reduce(
            (k, c) => k + c.colSpan, 0)));
        for (let k = 0; k < n - head - tail; k++) body.deleteRow(head);
        const cell = body.insertRow(head).insertCell();
        cell.colSpan = cols;
        cell.className = 'exr-print-more';
        cell.style.textAlign = 'left';
        cell.style.fontStyle = 'italic';
        cell.textContent = 'Rows ' + fmt(head + 1) + '\u2013' + fmt(n - tail) + ' of ' +
            fmt(n) + ' are left out of the print; the web page of this report (' + page +
            ') shows every row.';
        if (t.caption) t.caption.append(' (printed: the first ' + head + ' and the last ' +
            tail + ' of ' + fmt(n) + ' rows)'); }); }"""


class PdfError(RuntimeError):
    """Some pages could not be printed (the others were); ``failed`` lists their PDFs."""

    def __init__(self, message: str, failed: list):
        super().__init__(message)
        self.failed = failed


def _print_all(jobs, chromium, tmpdir=None, *, workers=1, on_done=None):
    """Print ``jobs`` in one browser, ``workers`` pages at once; [(job, exception)] failed.

    Each page (a renderer process of its own) takes the next job as it finishes one, so
    ``workers`` pages keep that many cores busy. ``on_done(pdf_path)`` is called (in this
    thread) as each PDF is written. A page that fails is reported and replaced by a fresh
    one; the other jobs go on. playwright's async API is used because its sync API prints
    one page at a time.
    """
    import asyncio

    from playwright.async_api import async_playwright

    # the browser's own temporary files (org.chromium.Chromium.*) go into ``tmpdir``
    # (the build's staging area), so a killed build leaves none in the system folder;
    # Chromium puts a unix socket in there, whose path has at most 107 bytes: from a
    # deeper folder it could not start, so it keeps the system's temporary folder
    if tmpdir and len(os.fsencode(str(tmpdir))) > _MAX_CHROMIUM_TMPDIR:
        tmpdir = None
    env = dict(os.environ, TMPDIR=str(tmpdir), TMP=str(tmpdir), TEMP=str(tmpdir)) \
        if tmpdir else None
    todo = iter(jobs)  # shared by the pages: each takes the next job
    numbers_css, numbers_pdf = "", {}  # how this browser prints page numbers (set below)
    failed = []
    if isinstance(jobs, _JobStream):  # pages still to come: wait for them in a thread
        async def next_job():
            return await asyncio.to_thread(next, todo, None)
    else:
        async def next_job():
            return next(todo, None)

    async def print_one(page, html_path, pdf_path):
        Path(pdf_path).parent.mkdir(parents=True, exist_ok=True)
        await page.goto(Path(html_path).resolve().as_uri(), wait_until="load")
        await page.emulate_media(media="print")
        await page.evaluate(_BEFORE_PRINT, numbers_css)
        tmp = Path(str(pdf_path) + ".tmp")
        try:
            await page.pdf(path=str(tmp), **_PDF_OPTIONS, **numbers_pdf)
            os.replace(tmp, pdf_path)
        finally:
            tmp.unlink(missing_ok=True)  # (a failed print leaves nothing in the site)

    async def lane(context):
        page = None  # opened with the lane's first job (a stream may bring fewer than lanes)
        while (job := await next_job()) is not None:
            html_path, pdf_path = job
            if page is None:
                page = await context.new_page()
            try:
                await print_one(page, html_path, pdf_path)
            except Exception as exc:  # noqa: BLE001 - reported by render_pdfs
                failed.append(((html_path, pdf_path), exc))
                await page.close()
                page = None  # a fresh page for the next job
                continue
            if on_done is not None:
                on_done(Path(pdf_path))
        if page is not None:
            await page.close()

    async def main():
        nonlocal numbers_css, numbers_pdf
        async with async_playwright() as p:
            # --in-process-gpu: with --disable-gpu Chromium still starts a GPU process
            # (software compositing only); run as a thread of the browser it saved 6.7 %
            # (+-2.0) of the whole process tree's CPU per printed page (19 paired runs,
            # bench/results-i20-chromium.md); what is printed is the same, pixel for pixel
            # (the PDF is drawn by the renderer's Skia PDF backend; the GPU process only
            # hosts the compositor of the unseen headless window)
            browser = await p.chromium.launch(
                executable_path=chromium, env=env,
                args=["--no-sandbox", "--disable-gpu", "--in-process-gpu",
                      "--disable-background-networking", "--disable-component-update",
                      "--no-first-run", "--disable-sync"])
            numbers_css, numbers_pdf = _page_numbers(browser.version)
            try:
                context = await browser.new_context(bypass_csp=True)  # for _BEFORE_PRINT
                # nothing but local files: the pages are offline by construction
                await context.route(re.compile(r"^(?!file:|data:).*"),
                                    lambda route: route.abort())
                await asyncio.gather(*(lane(context) for _ in range(workers)))
            finally:
                await browser.close()

    asyncio.run(main())
    return failed


def render_pdfs(jobs, *, chromium: str | None = None, tmpdir=None, workers: int = 1,
                on_done=None) -> list[Path]:
    """Print HTML pages to PDF with headless Chromium (playwright), in one browser.

    Parameters
    ----------
    jobs : list of (html_path, pdf_path)
        (:func:`publish_extras` passes a stream of pages that grows while it prints: the
        briefs are written meanwhile; the printing ends when the stream is closed.)
    chromium : str, optional
        The browser executable (default :func:`find_chromium`).
    tmpdir : str or pathlib.Path, optional
        The browser's temporary folder (default, and when its path is longer than 63
        bytes, which a unix socket inside it could not have: the system's).
    workers : int, default 1
        Pages printed at once (each page is a renderer process of its own, so up to one
        per core is worth it); the PDFs are the same whatever the number.
    on_done : callable, optional
        Called with each PDF's path as soon as it is written (from the printing thread),
        e.g. to post-process it while the next pages print.

    Returns
    -------
    list of pathlib.Path
        The PDFs written (US Letter, page numbers in the footer, the pages' print
        stylesheet applied, folded ``<details>`` sections printed open).

    Raises
    ------
    RuntimeError
        When no Chromium is found, naming what to install.
    PdfError
        When some pages could not be printed, naming them and the error of the first;
        every other PDF is written (``failed``: the PDF paths not written).
    """
    if not isinstance(jobs, _JobStream):
        jobs = [(Path(h), Path(p)) for h, p in jobs]
        if not jobs:
            return []
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ParameterError(f"`workers` must be a positive integer, but {workers!r} was "
                             "passed")
    chromium = chromium or find_chromium()
    if chromium is None:
        raise RuntimeError("no Chromium found to print PDFs: install it (Debian: apt-get "
                           "install chromium) or set EXRESEARCH_CHROMIUM")
    errors, failed = [], []
    if not isinstance(jobs, _JobStream):
        workers = min(workers, len(jobs))

    def run():  # a thread of its own: asyncio.run refuses a thread with a running loop
        try:
            failed.extend(_print_all(jobs, chromium, tmpdir, workers=workers,
                                     on_done=on_done))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)

    t = threading.Thread(target=run, name="exresearch-pdf")
    t.start()
    t.join()
    if errors:
        raise errors[0]
    if failed:
        (html, _), exc = failed[0]
        names = ", ".join(h.name for (h, _), _ in failed[:5]) + (
            f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        # the first error's first line, its pages named without this machine's folders
        first = (str(exc).strip().splitlines() or [""])[0]
        first = re.sub(r"file://\S*/([^/\s]+)", r"\1", first)
        first = first.replace(str(html.resolve().parent), "…")
        raise PdfError(f"{len(failed)} of {len(jobs)} page(s) could not be printed: {names} "
                       f"({html.name}: {type(exc).__name__}: {first})",
                       [p for (_, p), _ in failed])
    return [p for _, p in jobs]


#: zlib level of the palette images :func:`compact_pdf` writes: zlib's default. Level 9
#: (Pillow's ``optimize=True``) saved 100 KiB of a 380 KiB client report PDF in 0.27 s
#: of CPU, level 6 saves 90 KiB in 0.13 s (the 300 client reports' PDFs of a 300-client
#: study: about 40 s of CPU less for PDFs 3% larger; bench/results.md, B6).
PDF_IMAGE_COMPRESS_LEVEL = 6


def _png_parts(img) -> tuple[bytes, bytes, bytes]:
    """(IHDR, PLTE, concatenated IDAT) of ``img`` saved as a PNG by Pillow
    (at :data:`PDF_IMAGE_COMPRESS_LEVEL`)."""
    import io
    import struct

    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PDF_IMAGE_COMPRESS_LEVEL)
    data, pos, parts = buf.getvalue(), 8, {b"IHDR": b"", b"PLTE": b"", b"IDAT": b""}
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if kind in parts:
            parts[kind] += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return parts[b"IHDR"], parts[b"PLTE"], parts[b"IDAT"]


def _palette_image(obj):
    """An RGB image XObject of at most 256 colours as (IHDR, PLTE, IDAT), else None."""
    import numpy as np
    from PIL import Image

    if (obj.get("/BitsPerComponent") != 8 or obj.get("/Filter") != "/FlateDecode"
            or any(k in obj for k in ("/DecodeParms", "/SMask", "/Mask", "/Decode"))):
        return None
    width, height = int(obj["/Width"]), int(obj["/Height"])
    raw = obj.get_data()
    if len(raw) != width * height * 3:
        return None  # not 8-bit RGB
    rgb = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.uint32)
    code = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    # the colours in ascending order and each pixel's rank among them, as np.unique(...,
    # return_inverse=True) gives them, through a table over all 2**24 colours instead of
    # a sort of the pixels (a few times cheaper; 16 MB, mostly untouched pages)
    present = np.zeros(1 << 24, dtype=bool)
    present[code] = True
    colours = np.flatnonzero(present)
    if len(colours) > 256:
        return None
    rank = np.zeros(1 << 24, dtype=np.uint8)
    rank[colours] = np.arange(len(colours), dtype=np.uint8)
    index = rank[code]
    palette = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=1)
    img = Image.frombytes("P", (width, height), index.astype(np.uint8).tobytes())
    img.putpalette(palette.astype(np.uint8).tobytes())
    return _png_parts(img)


def _image_refs(resources, seen=None):
    """The image XObjects a page's resources name (also inside form XObjects), as
    indirect references, in the order of the resources.

    The same images as pypdf's ``page.images`` minus inline images (which have no
    reference, so :func:`compact_pdf` never rewrote them), without parsing each page's
    content stream: that parse was three quarters of compact_pdf's time on a report
    (pypdf has no call for the images of the resources alone, so it is walked here).
    """
    from pypdf.generic import IndirectObject

    seen = set() if seen is None else seen
    resources = resources.get_object() if resources is not None else None
    xobjects = resources.get("/XObject") if hasattr(resources, "get") else None
    xobjects = xobjects.get_object() if xobjects is not None else None
    if not hasattr(xobjects, "items"):
        return
    for _, ref in xobjects.items():
        if not isinstance(ref, IndirectObject) or ref.idnum in seen:
            continue
        seen.add(ref.idnum)
        obj = ref.get_object()
        kind = obj.get("/Subtype") if hasattr(obj, "get") else None
        if kind == "/Image":
            yield ref
        elif kind == "/Form":
            yield from _image_refs(obj.get("/Resources"), seen)


def compact_pdf(path) -> int:
    """Store a PDF's figures as palette images, losslessly; return the bytes saved.

    Chromium prints a palette PNG (:func:`exresearch.style.figure_png`) as 8-bit RGB,
    about twice the PNG's size. Each RGB image of at most 256 colours is rewritten with
    an ``/Indexed`` colour space over its own colour space, its pixels compressed as
    PNG rows (Flate with PNG predictors, as PDF readers decode them): every pixel keeps
    its colour, so pages render identically. Written with pypdf (which reads and writes
    the PDF) and Pillow (which compresses the rows); the palette conversion is by hand
    because pypdf's image replacement writes palette images uncompressed. The file is
    replaced only when it gets smaller.

    Parameters
    ----------
    path : str or pathlib.Path
        The PDF, rewritten in place.

    Returns
    -------
    int
        Bytes saved (0 when nothing could be made smaller).
    """
    import io
    import logging

    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import (
        ArrayObject,
        ByteStringObject,
        DictionaryObject,
        NameObject,
        NumberObject,
        StreamObject,
    )

    path = Path(path)
    before = path.stat().st_size
    log = logging.getLogger("pypdf")
    level = log.level
    log.setLevel(logging.ERROR)  # Chromium's trailer size is off by a few: harmless
    try:
        writer = PdfWriter(clone_from=PdfReader(path))
        done, changed = set(), 0
        for page in writer.pages:
            for ref in _image_refs(page.get("/Resources")):
                if ref.idnum in done:
                    continue
                done.add(ref.idnum)
                obj = ref.get_object()
                parts = _palette_image(obj)
                if parts is None:
                    continue
                ihdr, plte, idat = parts
                if len(idat) + len(plte) >= len(obj._data):  # noqa: SLF001 - encoded size
                    continue
                bits = ihdr[8]
                obj[NameObject("/ColorSpace")] = ArrayObject([
                    NameObject("/Indexed"), obj["/ColorSpace"],
                    NumberObject(len(plte) // 3 - 1), ByteStringObject(plte)])
                obj[NameObject("/BitsPerComponent")] = NumberObject(bits)
                obj[NameObject("/DecodeParms")] = DictionaryObject({
                    NameObject("/Predictor"): NumberObject(15),
                    NameObject("/Colors"): NumberObject(1),
                    NameObject("/BitsPerComponent"): NumberObject(bits),
                    NameObject("/Columns"): NumberObject(int(obj["/Width"]))})
                StreamObject.set_data(obj, idat)  # already Flate-encoded PNG rows
                obj.decoded_self = None
                changed += 1
        if not changed:
            return 0
        buf = io.BytesIO()
        writer.write(buf)
    finally:
        log.setLevel(level)
    if buf.tell() >= before:
        return 0
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return before - buf.tell()


# ---- executive brief ------------------------------------------------------------------

_TOPICS = [  # (topic in findings.csv, brief heading, report section number)
    ("linkage", "What we found", "2"),
    ("profile", "What we found", "1"),
    ("benchmark", "What we found", "7"),
    ("drivers", "Where to act first", "5"),
    ("value", "What it is worth", "6"),
    ("direction", "The loop: who leads whom", "3"),
]
_SECTION = re.compile(r'<h2 id="([^"]+)"[^>]*>\s*(\d+)\.')


def _section_anchors(report_html: str) -> dict:
    """Section number -> the anchor of the report heading that starts with it."""
    return {num: anchor for anchor, num in _SECTION.findall(report_html)}


def render_brief(*, study_name: str, client_name: str, findings: pd.DataFrame,
                 priorities: pd.DataFrame | None = None, labels: dict | None = None,
                 report_href: str, anchors: dict | None = None, period: str = "",
                 css_href: str = "../assets/site.css", index_href: str = "../index.html",
                 ) -> str:
    """A one-to-two-page executive brief for one client, as an HTML page.

    Parameters
    ----------
    study_name, client_name : str
        Shown in the title (escaped).
    findings : pandas.DataFrame
        The report's ``findings.csv`` (``finding``, ``topic``, ``text``, ...).
    priorities : pandas.DataFrame, optional
        The report's ``driver_priorities.csv`` (``driver``, ``priority``, ``rank``).
    labels : dict, optional
        Measure code -> reader's label (drivers are named by it).
    report_href : str
        Relative link to the full report.
    anchors : dict, optional
        Report section number -> heading anchor (each finding links to its section).
    period : str, optional
        The periods covered, shown under the title.

    Returns
    -------
    str

    Examples
    --------
    >>> f = pd.DataFrame({"finding": [1], "topic": ["drivers"], "text": ["Act on <tools>."]})
    >>> page = render_brief(study_name="S", client_name="Acme", findings=f,
    ...                     report_href="../reports/client-acme.html", anchors={"5": "5.-Key"})
    >>> "Act on &lt;tools&gt;." in page, 'href="../reports/client-acme.html#5.-Key"' in page
    (True, True)
    """
    from .site import CSP, _css_link

    labels = labels or {}
    anchors = anchors or {}
    sections: dict[str, list[str]] = {}
    order = [h for _, h, _ in _TOPICS]
    for rec in findings.to_dict("records"):
        topic = str(rec.get("topic", ""))
        head, num = next(((h, n) for t, h, n in _TOPICS if t == topic), ("Also", None))
        link = ""
        if num and num in anchors:
            link = (f' <a class="exr-see" href="{escape(report_href)}#{escape(anchors[num])}">'
                    f"(report, section {num})</a>")
        sections.setdefault(head, []).append(f"<li>{escape(rec.get('text', ''))}{link}</li>")
    # the driver model's decision (act_first) when the table has it, else the quadrant's
    flag = next((c for c in ("act_first", "priority") if priorities is not None
                 and c in priorities.columns), None)
    if flag is not None and len(priorities):
        first = priorities[priorities[flag].astype(str).str.lower().isin(["true", "1"])]
        if "rank" in first.columns:
            first = first.sort_values("rank")
        if len(first):
            names = ", ".join(escape(labels.get(d, d)) for d in first["driver"].astype(str))
            what = ("Act first on" if flag == "act_first" else
                    "First-priority drivers (high impact, room to improve):")
            sections.setdefault("Where to act first", []).insert(
                0, f"<li>{what} <strong>{names}</strong>.</li>")
    body = ""
    for head in dict.fromkeys(order + ["Also"]):
        if head in sections:
            slug = re.sub(r"[^a-z]+", "-", head.lower()).strip("-")
            body += f'<h2 id="{slug}">{escape(head)}</h2><ul class="exr-findings">'
            body += "".join(sections[head]) + "</ul>"
    if not body:
        body = "<p>No finding could be estimated from this client's data.</p>"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(client_name)}: executive brief</title>{_css_link(css_href)}</head>"
        f'<body><header class="exr-topbar"><a href="{escape(index_href)}">&larr; All reports'
        f'</a></header><main class="exr-page exr-brief"><h1>{escape(client_name)}: '
        f"executive brief</h1><p>{escape(study_name)}"
        + (f" &middot; {escape(period)}" if period else "")
        + f' &middot; <a href="{escape(report_href)}">the full report</a></p>'
        + body + "</main></body></html>\n"
    )


# ---- the one call from the build ------------------------------------------------------

def _get(r, name, default=None):
    return r.get(name, default) if isinstance(r, dict) else getattr(r, name, default)


def _read_csv(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path, keep_default_na=True)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None


def _print_key(page: Path) -> str:
    """What a PDF depends on: its page, the stylesheet and this printer (sha256)."""
    import hashlib

    from .site import SITE_CSS

    h = hashlib.sha256(page.read_bytes())
    h.update(SITE_CSS.encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def _previous_keys(previous: Path | None) -> dict:
    try:
        return json.loads((previous / "manifest.json").read_text(encoding="utf-8")).get(
            "pdf_keys", {}) if previous else {}
    except (OSError, ValueError, AttributeError):
        return {}


def _write_text(path: Path, text: str) -> None:
    """Write via a new file, so that a hard link shared with the site stays untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _labels(cfg) -> dict:
    out = {}
    for attr in ("scales", "outcomes"):
        items = getattr(cfg, attr, None) or {}
        values = items.values() if isinstance(items, dict) else items
        for item in values:
            code = getattr(item, "name", None) or getattr(item, "id", None)
            label = getattr(item, "label", None)
            if code and label:
                out[str(code)] = str(label)
    return out


@contextlib.contextmanager
def _temporary_files_in(folder):
    """Python's temporary files go into ``folder`` (when given) for the duration.

    XlsxWriter writes every sheet and every part of the file through temporary files in
    :mod:`tempfile`'s folder (:func:`write_workbook` passes it); the build's temporary
    files belong in its staging area, so that a killed build leaves none in the system's
    temporary folder (docs/privacy.md).
    """
    if folder is None:
        yield
        return
    before = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = before


def publish_extras(staging, *, records, study=None, cfg=None, pseudonyms: dict | None = None,
                   previous=None, pdf=None, progress: bool = False, tmpdir=None,
                   jobs: int = 1) -> dict:
    """Add stylesheet, workbooks, data dictionaries, briefs, PDFs and share landing pages.

    Called once by the build after the index, manifest and share bundles are written
    into the staging folder (see the module docstring for what it adds).

    Parameters
    ----------
    staging : pathlib.Path
        The site folder being assembled.
    records : list
        The build's report records (``key``, ``kind``, ``client_id``, ``name``,
        ``status``, ``html``, ``tables``), objects or dicts.
    study : exresearch.study.Study, optional
        The study: its config (name, measure labels) and the clients' pseudonyms in the
        synthesis (:func:`exresearch.report.display_names`), unless given below.
    cfg : exresearch.study.StudyConfig, optional
        For the study name and the measures' labels (default ``study.config``).
    pseudonyms : dict, optional
        Client id -> its name in the synthesis ("Client C"), shown in its share bundle.
    previous : pathlib.Path, optional
        The previous site: a PDF whose page, stylesheet and printer did not change
        (``pdf_keys`` in its manifest) is reused from it.
    pdf : bool, optional
        Print PDFs (default :func:`pdf_enabled`: when Chromium is installed).
    progress : bool, default False
        Print one line when PDFs are skipped or printed.
    tmpdir : pathlib.Path, optional
        Chromium's temporary folder and XlsxWriter's (the build passes its staging area).
    jobs : int, default 1
        Pages printed at once (:func:`render_pdfs`'s ``workers``; the build passes its
        ``--jobs``) and worker processes writing the briefs, data dictionaries and
        workbooks, scrubbing the notebooks and compacting each PDF
        (:func:`compact_pdf`) as soon as it is printed; each at most one per core of
        this machine. With one (``jobs=1`` or one core) that work runs in a thread of
        this process beside the printing. The files are the same whatever the number.

    Returns
    -------
    dict
        ``{key: {"workbook", "dictionary", "pdf", "brief", "brief_pdf"}}`` (paths
        relative to the site; absent when not made), also stored in ``manifest.json``
        under ``extras``.

    Notes
    -----
    The work is Python (XlsxWriter, pandas, pypdf) and would share one interpreter lock
    in one process: the worker processes put it on every core once the reports have
    run (forked on Linux: they start with this process's modules loaded; killed with
    the build, ``PR_SET_PDEATHSIG``). The briefs are written first, so that their
    pages join the printing while the reports' pages print.
    """
    from .site import write_assets

    staging = Path(staging)
    previous = Path(previous) if previous else None
    if cfg is None and study is not None:
        cfg = getattr(study, "config", None)
    if pseudonyms is None and study is not None and cfg is not None \
            and not getattr(cfg, "publish_client_names", False):
        from .report import display_names

        pseudonyms = display_names(study)
    study_name = str(getattr(cfg, "name", "") or "Study")
    labels = _labels(cfg) if cfg is not None else {}
    write_assets(staging)
    extras: dict[str, dict] = {}
    specs = []  # (key, what a worker needs to make the report's workbook, dictionary, brief)
    pages = []  # (extras of the report, page, PDF) known now; the new briefs' come later
    do_pdf = pdf_enabled(pdf)
    old_keys, pdf_keys = _previous_keys(previous), {}
    old_extras, extra_keys = _previous_extras(previous), {}
    for r in records:
        key, html_rel = _get(r, "key"), _get(r, "html")
        if _get(r, "status") != "ok" or not html_rel or not (staging / html_rel).is_file():
            continue
        ex: dict[str, str] = {}
        extra_keys[key] = _extras_key(staging, r, study_name, labels)
        if not (old_extras[1].get(key) == extra_keys[key] and _reuse_extras(
                previous, staging, old_extras[0].get(key), ex)):
            # (else the same tables, page and names: workbook, dictionary, brief reused)
            specs.append((key, {
                "key": key, "kind": _get(r, "kind"), "html": html_rel,
                "tables": list(_get(r, "tables") or []),
                "title": f"{study_name}: {_get(r, 'name')}", "study_name": study_name,
                "client_name": str(_get(r, "name") or _get(r, "client_id")),
                "labels": labels}))
        extras[key] = ex
        if do_pdf:
            pages.append((ex, html_rel, f"pdf/{key}.pdf"))
            if "brief" in ex:
                pages.append((ex, ex["brief"], f"pdf/{key}-brief.pdf"))
    if specs:
        (staging / "workbooks").mkdir(exist_ok=True)
    # a notebook carried over from the previous site was scrubbed when it was built
    executed = {_get(r, "key") for r in records if _get(r, "executed", True)}
    notebooks = [nb for nb in sorted((staging / "notebooks").glob("*.ipynb"))
                 if nb.stem in executed]
    roots = _scrub_roots(study, (previous, staging))
    # no more pages and workers than this machine's cores (the build's --jobs may count a
    # cluster's workers): each page is a renderer process of 100-200 MB, a worker ~150 MB
    workers = max(1, min(jobs, os.cpu_count() or 1))
    stream = _JobStream()
    printer: list = []  # the printing thread, once there is a page to print
    outcome: list = []  # what the printing raised
    compacting: list = []  # compact_pdf's futures

    def print_all(pool):
        def compact(dst):
            compacting.append(pool.submit(_compact_quietly, str(dst)))

        try:
            render_pdfs(stream, tmpdir=tmpdir, workers=workers, on_done=compact)
        except BaseException as exc:  # noqa: BLE001 - handled below, in the build's thread
            outcome.append(exc)

    def to_print(pool, ex, src, dst):
        """Link the previous site's PDF of page ``src`` when it is the same, else print."""
        ex["brief_pdf" if dst.endswith("-brief.pdf") else "pdf"] = dst
        pdf_keys[dst] = _print_key(staging / src)
        if old_keys.get(dst) == pdf_keys[dst] and (previous / dst).is_file():
            _copy(previous / dst, staging / dst)  # same page, CSS and printer
            return
        stream.put((staging / src, staging / dst))
        if not printer:
            printer.append(threading.Thread(target=print_all, args=(pool,),
                                            name="exresearch-pdfs"))
            printer[0].start()

    with _temporary_files_in(tmpdir):
        # (nothing to make nor print: no process to start)
        pool = _extras_pool(workers if specs or notebooks or pages else 1, tmpdir=tmpdir)
        try:
            # the briefs first (small): their pages join the reports' in the printing
            briefs = {pool.submit(_brief_job, str(staging), spec): key
                      for key, spec in specs if spec["kind"] == "client"}
            rest = [(pool.submit(_tables_job, str(staging), spec), key) for key, spec in specs]
            rest += [(pool.submit(_scrub_notebook, str(nb), roots), None) for nb in notebooks]
            for ex, src, dst in pages:
                to_print(pool, ex, src, dst)
            for fut in as_completed(briefs):
                brief_rel = fut.result()
                if brief_rel:
                    ex = extras[briefs[fut]]
                    ex["brief"] = brief_rel
                    if do_pdf:
                        to_print(pool, ex, brief_rel, f"pdf/{briefs[fut]}-brief.pdf")
            stream.close()
            for fut, key in rest:
                made = fut.result()
                if key is not None:
                    extras[key].update(made)
            if printer:
                printer[0].join()
            for fut in list(compacting):  # (each swallows its own failure)
                fut.result()
        except BaseException:  # (Ctrl-C, a job's error): the pages being printed are the last
            stream.stop()
            # the jobs running are the last (a second shutdown below would not wait: once
            # with wait=False, concurrent.futures forgets the workers it could join)
            pool.shutdown(wait=True, cancel_futures=True)
            if printer:
                printer[0].join()
            raise
        finally:
            pool.shutdown(wait=True)
    printed = len(stream)
    exc = outcome[0] if outcome else None
    if printed and exc is None:
        if progress:
            print(f"exresearch build: {printed} PDF(s) printed", file=sys.stderr)
    elif isinstance(exc, PdfError):  # the other PDFs stand; the missing ones are not linked
        print(f"exresearch build: {exc}", file=sys.stderr)
    elif isinstance(exc, Exception):  # the site stands without PDFs
        print(f"exresearch build: PDFs skipped ({exc})", file=sys.stderr)
        for ex in extras.values():
            ex.pop("pdf", None), ex.pop("brief_pdf", None)
    elif exc is not None:
        raise exc
    if not do_pdf and progress:  # why: asked not to, or nothing to print with
        print(f"exresearch build: PDFs skipped ({_pdf_off_reason(pdf)})", file=sys.stderr)
    for ex in extras.values():  # a reused PDF that is gone is not linked
        for k in ("pdf", "brief_pdf"):
            if k in ex and not (staging / ex[k]).is_file():
                del ex[k]
    _finish_shares(staging, records, extras, study_name, pseudonyms or {})
    _patch_index(staging, extras)
    _patch_manifest(staging, extras, {k: v for k, v in pdf_keys.items()
                                      if (staging / k).is_file()}, extra_keys)
    return extras


class _JobStream:
    """Pages to print, put while they print: :func:`render_pdfs` takes them (its pages
    each from their own thread) until :meth:`close`. Each iterator yields every page put
    once, so two iterators see the same pages; the printing shares one.
    """

    def __init__(self):
        self._jobs: list = []
        self._closed = self._stopped = False
        self._cond = threading.Condition()

    def put(self, job) -> None:
        with self._cond:
            self._jobs.append(job)
            self._cond.notify_all()

    def close(self) -> None:
        """No more pages: the printing ends after those put."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stop(self) -> None:
        """No more pages, not even those put and not yet taken."""
        with self._cond:
            self._closed = self._stopped = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self):
        return _JobReader(self)


class _JobReader:
    """One iterator over a :class:`_JobStream` (safe to share between threads)."""

    def __init__(self, stream: _JobStream):
        self._stream, self._next = stream, 0

    def __iter__(self):
        return self

    def __next__(self):
        s = self._stream
        with s._cond:  # noqa: SLF001 - its own stream
            s._cond.wait_for(lambda: s._stopped or self._next < len(s._jobs) or s._closed)
            if s._stopped or self._next >= len(s._jobs):
                raise StopIteration
            self._next += 1
            return s._jobs[self._next - 1]


def _worker_init(parent: int, tmpdir: str | None) -> None:
    """Start of an extras worker process: it dies with the build, and XlsxWriter's
    temporary files go into the build's folder (:func:`_temporary_files_in`)."""
    from .build.kernels import set_parent_death_signal

    # started from the build's main thread (_extras_pool), which lives as long as the
    # build: PR_SET_PDEATHSIG is tied to the thread that started a process
    set_parent_death_signal(parent)
    # Ctrl-C reaches the whole process group: the build stops its workers (cancelling
    # their queued jobs), rather than each worker dying with a traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if tmpdir:
        tempfile.tempdir = tmpdir


def _start_method() -> str:
    """``fork`` where it exists (Linux): a worker starts with the driver's modules loaded
    (a spawned one imports pandas, xlsxwriter, pypdf: ~1 s of CPU each); else ``spawn``."""
    import multiprocessing

    return "fork" if sys.platform.startswith("linux") and \
        "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _extras_pool(workers: int, *, tmpdir=None, method: str | None = None):
    """The executor of :func:`publish_extras`'s Python work: ``workers`` processes, all
    started now from the calling thread (so that they die with it: ``PR_SET_PDEATHSIG``),
    or for one worker a thread of this process (no process to start for one core)."""
    from concurrent.futures import ThreadPoolExecutor

    if workers < 2:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="exresearch-extras")
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    class WorkerPool(ProcessPoolExecutor):
        # written by hand: concurrent.futures starts spawned workers one by one as jobs
        # are submitted, from the submitting thread (e.g. the printing thread, which ends
        # before the build and would take its PDEATHSIG workers with it), and has no call
        # to start them; its private _spawn_process does, below
        def _adjust_process_count(self):
            if not self._processes:  # (started below; kept as a fallback)
                self._spawn_process()

    pool = WorkerPool(max_workers=workers,
                      mp_context=multiprocessing.get_context(method or _start_method()),
                      initializer=_worker_init,
                      initargs=(os.getpid(), str(tmpdir) if tmpdir else None))
    try:
        for _ in range(workers):
            pool._spawn_process()  # noqa: SLF001 - see WorkerPool
        # a first job starts the pool's manager thread, without which shutdown() would
        # not end these workers when no other job comes (e.g. every extra reused)
        pool.submit(os.getpid)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    return pool


def _read_tables(staging: Path, rels, stems=None) -> dict:
    """The report's CSV tables that can be read, by file stem (``stems``: only those)."""
    tables = {}
    for rel in rels:
        p = staging / rel
        if stems is not None and p.stem not in stems:
            continue
        if p.suffix == ".csv" and p.is_file():
            df = _read_csv(p)
            if df is not None:
                tables[p.stem] = df
    return tables


def _tables_job(staging, spec) -> dict:
    """A report's data dictionary and workbook (a job of :func:`publish_extras`'s
    workers); returns what was made (paths in the site)."""
    from .privacy import write_csv

    staging, key, made = Path(staging), spec["key"], {}
    tables = _read_tables(staging, spec["tables"])
    if tables:
        dd_rel = f"tables/{key}/data_dictionary.csv"
        write_csv(data_dictionary(tables), staging / dd_rel)
        made["dictionary"] = dd_rel
        wb_rel = f"workbooks/{key}.xlsx"
        write_workbook(tables, staging / wb_rel, title=spec["title"], source="Every table "
                       "of the report, at full precision (the Columns sheet says what each "
                       "column means).")
        made["workbook"] = wb_rel
    return made


def _brief_job(staging, spec) -> str | None:
    """A client's executive brief when its findings table can be read (a job of
    :func:`publish_extras`'s workers); returns its path in the site, else None."""
    staging = Path(staging)
    tables = _read_tables(staging, spec["tables"], stems=("findings", "driver_priorities"))
    if "findings" not in tables:
        return None
    html_rel, brief_rel = spec["html"], f"briefs/{spec['key']}.html"
    report_html = (staging / html_rel).read_text(encoding="utf-8")
    _write_text(staging / brief_rel, render_brief(
        study_name=spec["study_name"], client_name=spec["client_name"],
        findings=tables["findings"], priorities=tables.get("driver_priorities"),
        labels=spec["labels"], report_href=f"../{html_rel}",
        anchors=_section_anchors(report_html)))
    return brief_rel


def _compact_quietly(path) -> None:
    """:func:`compact_pdf` as a job: a PDF that cannot be compacted stands as printed."""
    with contextlib.suppress(Exception):
        compact_pdf(Path(path))


def _extras_key(staging: Path, r, study_name: str, labels: dict) -> str:
    """What a report's workbook, data dictionary and brief depend on (sha256): its page,
    its tables, its name, the study's name and labels, and this module."""
    import hashlib

    h = hashlib.sha256(json.dumps([study_name, labels, str(_get(r, "name")),
                                   str(_get(r, "kind"))], sort_keys=True).encode())
    for rel in [_get(r, "html"), *sorted(_get(r, "tables") or [])]:
        p = staging / rel
        h.update(rel.encode() + b"\0")
        h.update(p.read_bytes() if p.is_file() else b"-")
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def _previous_extras(previous: Path | None) -> tuple[dict, dict]:
    """(extras, extra_keys) of the previous site's manifest."""
    try:
        m = json.loads((previous / "manifest.json").read_text(encoding="utf-8"))
        return dict(m.get("extras") or {}), dict(m.get("extra_keys") or {})
    except (OSError, ValueError, AttributeError, TypeError):
        return {}, {}


def _reuse_extras(previous: Path | None, staging: Path, old: dict | None, ex: dict) -> bool:
    """Link the previous site's workbook, dictionary and brief of a report into
    ``staging``; False (nothing linked) when one of them is missing."""
    names = ("dictionary", "workbook", "brief")
    old = {k: v for k, v in (old or {}).items() if k in names and isinstance(v, str)}
    if not old or previous is None:
        return False
    from .build.records import SAFE_REL

    for rel in old.values():
        ok = SAFE_REL.fullmatch(rel) or re.fullmatch(
            r"(workbooks/[a-z0-9_-]+\.xlsx|briefs/[a-z0-9_-]+\.html)", rel)
        if not ok or not (previous / rel).is_file():
            return False
    for k, rel in old.items():
        _copy(previous / rel, staging / rel)
        ex[k] = rel
    return True


#: A Styler cell's class list inside notebook JSON (``class=\"data row0 col1\"``).
_STYLER_MARKUP = re.compile(r'class=\\"(data|col_heading|row_heading|blank|index_name) ')
#: What a published notebook shows in place of a figure (the page holds the figure).
FIGURE_STAND_IN = "[Figure, shown on the report page: {alt}]"


def notebook_without_images(text: str) -> str:
    """An executed notebook (JSON text) with every image output replaced by its alt text.

    The published notebooks are for the study team's researchers: code, tables and text
    as executed. Figures are on the report page (and in its PDF), so a notebook drops
    the image data (``image/png``, ``image/jpeg``, ``image/svg+xml``) and keeps a
    ``text/plain`` stand-in naming the figure by its alt text; its HTML tables lose the
    per-cell ids and class names that no CSS rule uses (:func:`exresearch.site.slim_tables`).
    That halves the notebooks and keeps the demo site under 12 MB (docs/build.md).
    Anything else is unchanged.

    Examples
    --------
    >>> import json
    >>> out = {"output_type": "display_data", "metadata": {"image/png": {"alt": "Chart: T."}},
    ...        "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}}
    >>> nb = {"cells": [{"cell_type": "code", "source": "", "outputs": [out]}]}
    >>> json.loads(notebook_without_images(json.dumps(nb)))["cells"][0]["outputs"][0]["data"]
    {'text/plain': '[Figure, shown on the report page: Chart: T.]'}
    """
    if '"image/' not in text and not _STYLER_MARKUP.search(text):
        return text  # already published once (a report carried over from the last build)
    nb = json.loads(text)
    changed = False
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = out.get("data")
            if not isinstance(data, dict):
                continue
            html = data.get("text/html")
            if html:
                slim = slim_tables("".join(html) if isinstance(html, list) else str(html))
                if slim != ("".join(html) if isinstance(html, list) else html):
                    data["text/html"], changed = slim, True
            kinds = [k for k in data if k.startswith("image/")]
            if not kinds:
                continue
            meta = out.get("metadata") if isinstance(out.get("metadata"), dict) else {}
            alt = next((m.get("alt") for m in (meta.get(k) for k in kinds)
                        if isinstance(m, dict) and m.get("alt")), None) or "a chart"
            for k in kinds:
                data.pop(k)
                meta.pop(k, None)
            data["text/plain"] = FIGURE_STAND_IN.format(alt=alt)
            changed = True
    return (json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"  # as nbformat
            if changed else text)


def _scrub_roots(study, sites) -> dict:
    """The folders a published notebook names no more: the study -> ``<study NAME>``, each
    of ``sites`` (previous site, staging folder) -> ``<site>``."""
    roots = {}
    if study is not None and getattr(study, "path", None):
        sp = Path(study.path).resolve()
        roots[str(sp)] = f"<study {sp.name}>"
        roots[str(Path(study.path))] = f"<study {sp.name}>"
    for site in sites:
        if site is not None:
            roots[str(Path(site).resolve())] = "<site>"
            roots[str(Path(site))] = "<site>"
    return {k: v for k, v in roots.items() if k not in ("", "/", ".")}


def _scrub_notebook(nb, roots: dict) -> None:
    """One published notebook: no absolute path of the build machine, no image data.

    papermill records the study folder, the output folder and its own input/output paths
    in each executed notebook (parameters cell and metadata); they become ``<study NAME>``
    and ``<site>`` (``roots``: :func:`_scrub_roots`). Figures give way to their alt text
    (:func:`notebook_without_images`). A job of :func:`publish_extras`'s workers.
    """
    nb = Path(nb)
    text = nb.read_text(encoding="utf-8")
    new = text
    for old in sorted(roots, key=len, reverse=True):  # longest first
        new = new.replace(json.dumps(old)[1:-1], json.dumps(roots[old])[1:-1])
    try:
        new = notebook_without_images(new)
    except ValueError:  # not JSON: published as it is (the paths are replaced)
        pass
    if new != text:
        _write_text(nb, new)


def _finish_shares(staging, records, extras, study_name, pseudonyms):
    from .site import render_share_index, write_assets

    syn = next((r for r in records if _get(r, "kind") == "synthesis"), None)
    for r in records:
        cid = _get(r, "client_id")
        if _get(r, "kind") != "client" or not cid:
            continue
        base = staging / "share" / str(cid)
        if not (base / "index.html").is_file():
            continue
        write_assets(base)
        ex = extras.get(_get(r, "key"), {})
        for k in ("workbook", "dictionary", "pdf", "brief", "brief_pdf"):
            if ex.get(k) and (staging / ex[k]).is_file():
                _copy(staging / ex[k], base / ex[k])
        syn_rel = _get(syn, "html") if syn is not None else None
        has_syn = bool(syn_rel) and (base / syn_rel).is_file()
        # "you are Client X" is said on this bundle's landing page only; the synthesis
        # page stays one shared file (a copy per bundle would add its weight each time)
        pseudonym = pseudonyms.get(cid)
        tables = [t for t in (_get(r, "tables") or []) if (base / t).is_file()]
        _write_text(base / "index.html", render_share_index(
            study_name=study_name, client_name=str(_get(r, "name") or cid),
            report=_get(r, "html"), tables=tables, synthesis=syn_rel if has_syn else None,
            pseudonym=pseudonym, brief=ex.get("brief"), brief_pdf=ex.get("brief_pdf"),
            pdf=ex.get("pdf"), workbook=ex.get("workbook"), dictionary=ex.get("dictionary")))


def _patch_index(staging, extras):
    index = staging / "index.html"
    if not index.is_file():
        return
    text = index.read_text(encoding="utf-8")
    names = (("brief", "brief"), ("brief_pdf", "brief PDF"), ("pdf", "PDF"),
             ("workbook", "Excel"), ("dictionary", "columns"))

    def sub(m):
        key = _html.unescape(m.group(1))
        ex = extras.get(key) or {}
        return "".join(f' &middot; <a href="{escape(ex[k])}">{label}</a>'
                       for k, label in names if ex.get(k))

    _write_text(index, re.sub(r"<!--exr-extras:([^>]*?)-->", sub, text))


def _patch_manifest(staging, extras, pdf_keys=None, extra_keys=None):
    from .site import dumps_manifest

    path = staging / "manifest.json"
    if not path.is_file():
        return
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["extras"] = extras
    manifest["pdf_keys"] = pdf_keys or {}
    manifest["extra_keys"] = extra_keys or {}
    study = manifest.get("study")
    if isinstance(study, dict) and study.get("path"):  # no absolute path of this machine
        study["path"] = Path(str(study["path"])).name
    for rep in manifest.get("reports", []):
        params = rep.get("parameters") or {}
        if params.get("study_path"):
            params["study_path"] = Path(str(params["study_path"])).name
    _write_text(path, dumps_manifest(manifest))
