"""Safe publishing: CSV without formula injection, escaped text, client pseudonyms, and the
rules that keep one client's results from being read off a study-level report
(:func:`blank_small_groups`, :func:`publishable_per_client`, :func:`redact_survey_values`).

Everything exresearch publishes goes through these helpers, so that a client name,
a unit id or a label taken from ``study.yml`` or the data can never become active
content in a reader's browser or spreadsheet.

Examples
--------
>>> from exresearch.privacy import escape, pseudonyms
>>> escape('<script>alert(1)</script>')
'&lt;script&gt;alert(1)&lt;/script&gt;'
>>> pseudonyms(["acme", "globex"])
{'acme': 'Client A', 'globex': 'Client B'}
"""

from __future__ import annotations

import functools
import html
import math
import os
import re
from pathlib import Path

from .exceptions import ParameterError

__all__ = ["write_csv", "neutralise_cell", "escape", "pseudonyms", "blank_small_groups",
           "publishable_per_client", "redact_survey_values", "PSEUDONYM_UNSAFE",
           "LEVEL_COLUMNS"]

#: Per-client columns that, beside a pseudonym, could single a client out (the only bank
#: of the study): published only when the study publishes client names.
PSEUDONYM_UNSAFE = ("industry",)
#: The per-level numbers of :func:`exresearch.meta.meta_regression` (the omnibus ``qm``,
#: ``qm_p`` describe all levels at once and stay).
LEVEL_COLUMNS = ("estimate", "se", "z", "p_val", "ci_low", "ci_high", "level_r", "level_ci_low",
                 "level_ci_high")

#: First characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
#: A plain number (optionally signed, decimal, exponent): left alone, so -0.5 stays a number.
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise_cell(value: str) -> str:
    """Return a text cell that no spreadsheet will evaluate as a formula.

    Parameters
    ----------
    value : str
        The cell text.

    Returns
    -------
    str
        ``value`` with a leading ``'`` when it starts with ``=``, ``+``, ``-``, ``@``,
        a tab, a carriage return or a newline, unless it is a plain number such
        as ``-0.5`` or ``+3e-2``; otherwise ``value`` unchanged.

    Examples
    --------
    >>> neutralise_cell("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> neutralise_cell("-0.5")
    '-0.5'
    """
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _format_float(x: float) -> str:
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = repr(float(x))  # the shortest string that round-trips exactly
    return "0.0" if text == "-0.0" else text


def write_csv(df, path, *, index: bool = False) -> Path:
    """Write a DataFrame as a CSV that is safe to open and byte-reproducible.

    Text cells (including column names) starting with ``= + - @``, a tab or a carriage
    return get a leading ``'`` so that Excel, LibreOffice and Google Sheets show them as
    text instead of evaluating them; plain numbers (``-0.5``) are left alone. Floats are
    written in their shortest exact form, missing values as empty cells, booleans as
    ``true``/``false``, with ``\\n`` line endings and UTF-8 without BOM, so two builds
    of the same data give byte-identical files. The file is written atomically (a
    temporary file renamed into place).

    Parameters
    ----------
    df : pandas.DataFrame
        Table to write.
    path : str or pathlib.Path
        Destination file; its folder must exist.
    index : bool, default False
        Also write the index as the first column(s).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> df = pd.DataFrame({"name": ["=1+1", "ok"], "x": [-0.5, 0.1]})
    >>> p = write_csv(df, pathlib.Path(tempfile.mkdtemp()) / "t.csv")
    >>> print(p.read_text(), end="")
    name,x
    '=1+1,-0.5
    ok,0.1
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise ParameterError(
            f"`df` must be a pandas DataFrame, but {type(df).__name__} was passed"
        )
    path = Path(path)
    frame = df.reset_index() if index else df
    header = [neutralise_cell(str(c)) for c in frame.columns]
    # Column by column, each dtype formatted in one pass (a Python call per cell cost
    # 0.1-0.3 s of CPU per large table); ``items`` is positional, so duplicate names work.
    columns, text_columns = [], []
    for _, series in frame.items():
        texts, may_quote = _column_texts(series)
        columns.append(texts)
        text_columns.append(may_quote)
    text = _csv_text(header, columns, text_columns, len(frame))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(text.encode("utf-8"))
    os.replace(tmp, path)
    return path


@functools.cache
def _cell_rule():
    """The per-value rule of :func:`write_csv` (object columns, categories, and dtypes
    without a faster path), built once so that numpy and pandas load only when a table
    is written."""
    import numpy as np
    import pandas as pd

    def cell(v) -> str:
        if v is None or v is pd.NA or v is pd.NaT:
            return ""
        if isinstance(v, bool | np.bool_):
            return "true" if v else "false"
        if isinstance(v, int | np.integer):
            return str(int(v))
        if isinstance(v, float | np.floating):
            return _format_float(float(v))
        if isinstance(v, pd.Timestamp):
            return v.isoformat()
        return neutralise_cell(str(v))

    return cell


def _float_texts(values) -> list[str]:
    """:func:`_format_float` of every value of a float array, in one pass of ``repr``."""
    import numpy as np

    texts = list(map(float.__repr__, values.tolist()))
    # repr gives "inf"/"-inf" as _format_float does; only NaN and -0.0 differ
    for i in np.flatnonzero(np.isnan(values)).tolist():
        texts[i] = ""
    for i in np.flatnonzero((values == 0) & np.signbit(values)).tolist():
        texts[i] = "0.0"
    return texts


def _text_texts(values: list[str]) -> list[str]:
    """:func:`neutralise_cell` of every string of a column, each distinct text once."""
    # A column of labels repeats a few texts many times (a client id per row); the ones
    # needing a quote mark are rare, so look them up only among the distinct texts.
    risky = [v for v in set(values) if v.startswith(_FORMULA_START) and not _NUMBER.fullmatch(v)]
    if not risky:
        return values
    fixed = {v: "'" + v for v in risky}
    return [fixed.get(v, v) for v in values]


def _column_texts(series) -> tuple[list[str], bool]:
    """Every cell of a column as text, as the rule of :func:`_cell_rule` formats each value of
    ``series.tolist()`` but by dtype, in one pass where the dtype allows; and whether a
    cell may hold a character that needs quotes (False for numbers and booleans)."""
    import numpy as np
    import pandas as pd

    cell = _cell_rule()
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind == "f" and dtype.itemsize <= 8:  # float16/32/64: tolist gives floats
            return _float_texts(series.to_numpy()), False
        if dtype.kind in "iu":
            return list(map(int.__repr__, series.to_numpy().tolist())), False
        if dtype.kind == "b":
            return list(map(("false", "true").__getitem__, series.to_numpy().tolist())), False
        if dtype.kind == "O":
            values = series.tolist()
            if set(map(type, values)) <= {str}:
                return _text_texts(values), True
            return list(map(cell, values)), True
    elif isinstance(dtype, pd.StringDtype):
        return _text_texts(series.to_numpy(dtype=object, na_value="").tolist()), True
    elif isinstance(dtype, pd.CategoricalDtype):
        # format each category once; code -1 (missing) picks the trailing ""
        labels = np.array([*map(cell, dtype.categories.tolist()), ""], dtype=object)
        return labels[series.cat.codes.to_numpy()].tolist(), True
    elif isinstance(series.array, pd.arrays.IntegerArray | pd.arrays.FloatingArray
                    | pd.arrays.BooleanArray):
        arr = series.array
        kind = arr.dtype.numpy_dtype.kind
        fill = np.nan if kind == "f" else 0
        values = arr.to_numpy(dtype=arr.dtype.numpy_dtype, na_value=fill)
        if kind == "f":
            texts = _float_texts(values)
        elif kind == "b":
            texts = list(map(("false", "true").__getitem__, values.tolist()))
        else:
            texts = list(map(int.__repr__, values.tolist()))
        for i in np.flatnonzero(arr.isna()).tolist():
            texts[i] = ""
        return texts, False
    return list(map(cell, series.tolist())), True  # datetimes, timedeltas, Arrow types, ...


#: Characters that can make ``csv.writer`` (``QUOTE_MINIMAL``, ``,`` and ``"``, ``\n`` line
#: endings) quote a field: the delimiter, the quote character and line breaks ("\r" is not
#: quoted by Python 3.11 with these line endings, but may be by others).
_CSV_SPECIAL = re.compile('[,"\r\n]')


def _quoted(texts: list[str]) -> list[str]:
    """``texts`` with every field that may need quotes as ``csv.writer`` writes it."""
    import csv
    import io

    special = [v for v in set(texts) if _CSV_SPECIAL.search(v)]
    if not special:
        return texts
    # The csv module decides (its rules differ between Python versions): each field is
    # written beside an empty one, which is never quoted, and the ",\n" after it cut off.
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    fixed = {}
    for v in special:
        buf.seek(0)
        buf.truncate()
        writer.writerow((v, ""))
        fixed[v] = buf.getvalue()[:-2]
    return [fixed.get(v, v) for v in texts]


def _csv_text(header: list[str], columns: list[list[str]], text_columns: list[bool],
              n_rows: int) -> str:
    """The CSV text of ``header`` and the rows of ``columns``, as ``csv.writer`` with
    ``QUOTE_MINIMAL`` and ``\\n`` line endings writes it; ``text_columns`` tells which
    columns may hold fields that need quotes (numbers and booleans never do)."""
    import csv
    import io

    if len(columns) >= 2 or (len(columns) == 1 and "" not in columns[0] and header != [""]):
        # rows joined directly, after quoting the few fields that need it column by column
        columns = [_quoted(c) if t else c for c, t in zip(columns, text_columns, strict=True)]
        rows = (_quoted(header), *zip(*columns, strict=True))
        return "\n".join(map(",".join, rows)) + "\n"
    # One column with an empty field (csv writes a lone empty field as "") and tables
    # without columns (an empty line per row): csv's own rules, row by row.
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(zip(*columns, strict=True) if columns else ([] for _ in range(n_rows)))
    return buf.getvalue()


def escape(text) -> str:
    """Escape text for HTML (element content and quoted attribute values).

    Parameters
    ----------
    text : object
        Any value; ``None`` gives ``""``, anything else is converted with ``str``.

    Returns
    -------
    str
        ``text`` with ``& < > " '`` replaced by character references.

    Examples
    --------
    >>> escape('<img src=x onerror="alert(1)">')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    """
    if text is None:
        return ""
    return html.escape(str(text), quote=True)


def pseudonyms(client_ids, *, seed=None) -> dict[str, str]:
    """Map client ids to neutral names: in the order given, or shuffled by ``seed``.

    Parameters
    ----------
    client_ids : sequence of str
        Client ids in study order (``study.clients``); must be unique.
    seed : int or str, optional
        When given, the letters are assigned in a random order drawn from ``seed`` (the
        same seed gives the same letters), so that "Client A" is not the first id; a
        string seed (e.g. the study name) is hashed to an integer. Without it, letters
        follow the order given.

    Returns
    -------
    dict
        ``{client_id: "Client A", ...}`` in the order of ``client_ids``: A..Z, then
        AA, AB, ... (spreadsheet column style).

    Examples
    --------
    >>> pseudonyms(["b", "a", "c"])
    {'b': 'Client A', 'a': 'Client B', 'c': 'Client C'}
    >>> sorted(pseudonyms(["b", "a", "c"], seed=7).values())
    ['Client A', 'Client B', 'Client C']
    >>> pseudonyms(["b", "a", "c"], seed=7) == pseudonyms(["b", "a", "c"], seed=7)
    True
    """
    ids = [str(c) for c in client_ids]
    if len(set(ids)) != len(ids):
        dupes = sorted({c for c in ids if ids.count(c) > 1})
        raise ParameterError(f"`client_ids` must be unique, but {dupes} appear more than once")
    order = list(range(len(ids)))
    if seed is not None:
        import hashlib

        import numpy as np

        if isinstance(seed, bool) or not isinstance(seed, int | str):
            raise ParameterError(f"`seed` must be an integer or a string, but {seed!r} was passed")
        if isinstance(seed, str):
            seed = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:8], "big")
        order = [int(i) for i in np.random.default_rng(seed).permutation(len(ids))]
    return {cid: f"Client {_letters(order[i])}" for i, cid in enumerate(ids)}


def _letters(i: int) -> str:
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(ord("A") + r) + out
    return out


def blank_small_groups(table, *, columns=LEVEL_COLUMNS, size="k_level", min_size=None,
                       reference_first=True):
    """Blank the numbers of groups pooled over fewer than ``min_size`` clients.

    A moderator level (an industry, say) pooled over one or two clients shows, or lets a
    reader back out, one pseudonymous client's own result and ties that client to the
    group. Its numbers are blanked; when the first row is the reference level of a
    meta-regression (the intercept) and it is small, every contrast is computed against
    it, so every row is blanked.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per group, e.g. :func:`exresearch.meta.meta_regression`.
    columns : list of str, default :data:`LEVEL_COLUMNS`
        The per-group numbers to blank (columns that describe all groups at once, such as
        an omnibus test, are left alone).
    size : str, default "k_level"
        Column with the number of clients in each group.
    min_size : int, optional
        Default :data:`exresearch.config.MIN_BENCHMARK_CONTRIBUTORS` (3).
    reference_first : bool, default True
        The first row is the reference level: when it is small, blank every row.

    Returns
    -------
    pandas.DataFrame
        A copy; ``table`` is not changed.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"level": ["bank", "retail", "telco"], "k_level": [4, 2, 5],
    ...                   "level_r": [0.3, 0.5, 0.2], "qm_p": [0.04] * 3})
    >>> blank_small_groups(t, columns=["level_r"])["level_r"].tolist()
    [0.3, nan, 0.2]
    >>> blank_small_groups(t.iloc[[1, 0, 2]], columns=["level_r"])["level_r"].tolist()
    [nan, nan, nan]
    """
    import numpy as np

    from .config import MIN_BENCHMARK_CONTRIBUTORS

    min_size = MIN_BENCHMARK_CONTRIBUTORS if min_size is None else min_size
    missing = [c for c in [size, *columns] if c not in table.columns]
    if missing:
        raise ParameterError(
            f"`table` must have the columns {[size, *columns]}, but {missing} are missing")
    out = table.copy()
    few = (out[size] < min_size).to_numpy().copy()
    if reference_first and len(few) and few[0]:
        few[:] = True
    out.loc[few, list(columns)] = np.nan
    return out


def publishable_per_client(table, *, publish_names):
    """The per-client columns that may be published under the names the study uses.

    Under pseudonyms ("Client A"), a column of :data:`PSEUDONYM_UNSAFE` (the industry)
    could single a client out, so it is dropped; with published client names it stays.

    Parameters
    ----------
    table : pandas.DataFrame
        One or more rows per client.
    publish_names : bool
        ``study.config.publish_client_names``.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"client": ["Client A"], "industry": ["bank"], "r": [0.3]})
    >>> list(publishable_per_client(t, publish_names=False).columns)
    ['client', 'r']
    >>> list(publishable_per_client(t, publish_names=True).columns)
    ['client', 'industry', 'r']
    """
    if not isinstance(publish_names, bool):
        raise ParameterError(
            f"`publish_names` must be True or False, but {publish_names!r} was passed")
    if publish_names:
        return table
    return table.drop(columns=[c for c in PSEUDONYM_UNSAFE if c in table.columns])


def redact_survey_values(problems, *, file="file", value="value", marker="survey"):
    """Blank the offending values of problems found in survey files.

    A survey value is one person's answer: a data-quality report names the file, row and
    column to fix, but does not repeat the answer. Values of other files (outcomes, the
    study file) are kept, as text.

    Parameters
    ----------
    problems : pandas.DataFrame
        ``study.warnings`` (or any table of problems with a file and a value column).
    file, value : str
        Columns.
    marker : str, default "survey"
        A file whose path contains this is a survey file.

    Returns
    -------
    pandas.DataFrame
        A copy with ``value`` as text, ``""`` for survey files.

    Examples
    --------
    >>> import pandas as pd
    >>> w = pd.DataFrame({"file": ["acme/survey.csv", "acme/outcomes.csv"],
    ...                   "value": [5, "abc"]})
    >>> redact_survey_values(w)["value"].tolist()
    ['', 'abc']
    """
    import numpy as np

    out = problems.copy()
    if len(out):
        survey = out[file].astype(str).str.contains(marker, regex=False).to_numpy()
        out[value] = np.where(survey, "", out[value].astype(str))
    return out
