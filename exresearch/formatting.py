"""Numbers for readers: significant figures, p-values, percentages, a data dictionary.

Displayed tables and prose show a number with the precision it carries: three
significant figures by default, p-values as ``p < 0.001`` instead of ``0.000`` or
``1.65e-13``, shares as percentages. The CSV files keep full precision (they are for
re-analysis); :func:`data_dictionary` gives each CSV column a readable name beside its
code. pandas has formatting hooks (``Styler.format``) but no rule for *which* format a
statistic needs, so this module writes only that rule by hand and hands the result to
pandas.

Examples
--------
>>> from exresearch.formatting import fmt_sig, fmt_p, fmt_pct
>>> fmt_sig(0.123456), fmt_sig(1234567.8), fmt_sig(-0.00004321)
('0.123', '1,234,568', '-0.0000432')
>>> fmt_p(1.65e-13), fmt_p(0.0423), fmt_p(0.5)
('< 0.001', '0.042', '0.50')
>>> fmt_pct(0.256), fmt_pct(25.6, scale=1)
('25.6%', '25.6%')
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from .exceptions import ParameterError

__all__ = ["fmt_sig", "fmt_p", "fmt_pct", "is_p_column", "column_format", "display_formats",
           "format_frame", "readable_name", "data_dictionary", "GLOSSARY"]

#: Shown for a missing or undefined number.
MISSING = "–"

#: Terms readers meet in the reports, with a plain definition (the site shows them on
#: hover where a term first appears, and in a glossary at the end of each page).
GLOSSARY = {
    "SD": "Standard deviation: how far values typically lie from their average.",
    "95% CI": "95% confidence interval: the range in which the true value plausibly lies.",
    "r": "Correlation: from -1 to 1; 0 means no link, 0.1 weak, 0.3 moderate, 0.5 strong.",
    "R²": "Share of the differences in an outcome that the predictors explain together (0 to 1).",
    "ICC(1)": "Share of the differences between employees that lies between units.",
    "ICC(2)": "How reliably a unit's average tells units apart (above 0.7 is good).",
    "rwg(j)": "Agreement among employees of one unit (0 none, 1 complete; above 0.7 is good).",
    "Cronbach's alpha": "Whether a scale's items measure one thing (above 0.7 is good).",
    "eNPS": "Employee Net Promoter Score: share of promoters minus share of detractors, -100 to 100.",
    "NPS": "Net Promoter Score: share of promoting customers minus detractors, -100 to 100.",
    "p": "p-value: how often a link at least this strong would appear by chance if there were none.",
    "I²": "Share of the spread between organisations that is real rather than sampling noise.",
    "τ": "Standard deviation of the true effects across organisations.",
    "path a": "Mediation: the link from employee experience to customer results.",
    "path b": "Mediation: the link from customer results to business results, given employee experience.",
    "percentile": "Share of the comparison group with a lower value (50 = in the middle).",
    "cross-lagged": "This period's value of one measure predicting next period's value of another.",
}

_P_COLUMN = re.compile(r"(^|_)(p|pval|p_value|p_adj|p_corr|p_holm|p_fdr|q_value)($|_)", re.I)
_PCT_COLUMN = re.compile(r"(^|_)(pct|percent)($|_)|%", re.I)
_COUNT_COLUMN = re.compile(r"(^|_)(n|k|count|units|respondents|clients|periods|year)($|_)|^n_",
                           re.I)

#: Codes used as CSV column names -> what a reader calls them.
_NAMES = {
    "n": "number", "k": "clients", "r": "correlation (r)", "sd": "standard deviation",
    "se": "standard error", "ci_low": "95% CI low", "ci_high": "95% CI high",
    "p": "p-value", "p_value": "p-value", "r2": "R²", "delta_r2": "change in R²",
    "icc1": "ICC(1)", "icc2": "ICC(2)", "rwg_j_mean": "rwg(j), mean", "alpha": "Cronbach's alpha",
    "pct_favourable": "% favourable", "pct_missing": "% missing", "x": "from", "y": "to",
    "n_units": "units", "pi_low": "95% prediction interval low",
    "pi_high": "95% prediction interval high", "i2": "I²", "tau": "τ", "tau2": "τ²",
}


def _finite(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt_sig(x, digits: int = 3) -> str:
    """A number with ``digits`` significant figures, thousands separated, never ``1e-05``.

    Integers (and numbers of ``10**digits`` or more) keep every digit before the point.

    Parameters
    ----------
    x : float
    digits : int, default 3

    Returns
    -------
    str
        ``"–"`` for a missing or infinite value.

    Examples
    --------
    >>> fmt_sig(3.14159), fmt_sig(2.0), fmt_sig(0.05), fmt_sig(12345), fmt_sig(None)
    ('3.14', '2.00', '0.0500', '12,345', '–')
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise ParameterError(f"`digits` must be a positive integer, but {digits!r} was passed")
    v = _finite(x)
    if v is None:
        return MISSING
    if isinstance(x, int | np.integer) or (v == int(v) and abs(v) >= 10 ** (digits - 1)):
        return f"{int(round(v)):,}"
    if v == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(v)))
    decimals = max(digits - 1 - magnitude, 0)
    text = f"{v:,.{decimals}f}"
    return "0" if float(text.replace(",", "")) == 0 else text


def fmt_p(p, *, threshold: float = 0.001) -> str:
    """A p-value for readers: ``< 0.001`` below the threshold, else 2 significant figures.

    Examples
    --------
    >>> fmt_p(0.0004), fmt_p(0.012), fmt_p(0.2), fmt_p(float("nan"))
    ('< 0.001', '0.012', '0.20', '–')
    """
    v = _finite(p)
    if v is None:
        return MISSING
    if v < threshold:
        return f"< {threshold:g}"
    return fmt_sig(min(v, 1.0), 2)


def fmt_pct(x, *, scale: float = 100, digits: int = 3) -> str:
    """A share as a percentage with ``digits`` significant figures (at most 1 decimal).

    Parameters
    ----------
    x : float
        A proportion (``scale=100``) or already a percentage (``scale=1``).

    Examples
    --------
    >>> fmt_pct(0.5), fmt_pct(0.00123), fmt_pct(99.96, scale=1)
    ('50.0%', '0.1%', '100.0%')
    """
    v = _finite(x)
    if v is None:
        return MISSING
    v = v * scale
    decimals = 0 if abs(v) >= 10 ** digits else 1
    return f"{v:,.{decimals}f}%"


def is_p_column(name) -> bool:
    """Whether a column code names p-values (``p``, ``p_value``, ``p_corr``, ``x_p`` ...).

    Examples
    --------
    >>> is_p_column("p_corr"), is_p_column("qm_p"), is_p_column("pct_favourable")
    (True, True, False)
    """
    return bool(_P_COLUMN.search(str(name)))


def column_format(name, values=None):
    """The formatter a displayed column needs, chosen from its name and values.

    p-value columns (``p``, ``p_value``, ``*_p``) get :func:`fmt_p`; percentage columns
    (``pct_*``, names with ``%``) one decimal and a ``%`` sign (their
    values are already percentages); counts whole numbers; other numbers
    :func:`fmt_sig`. Text columns get ``None`` (shown as they are).

    Examples
    --------
    >>> column_format("p_value")(0.00001), column_format("pct_favourable")(61.234)
    ('< 0.001', '61.2%')
    >>> column_format("n_units")(12.0), column_format("r")(0.31234)
    ('12', '0.312')
    """
    name = str(name)
    if values is not None and not pd.api.types.is_numeric_dtype(values):
        return None
    if values is not None and pd.api.types.is_bool_dtype(values):
        return None
    if _P_COLUMN.search(name):
        return fmt_p
    if _PCT_COLUMN.search(name):
        return lambda v: fmt_pct(v, scale=1)
    if _COUNT_COLUMN.search(name):
        return lambda v: MISSING if _finite(v) is None else f"{round(float(v)):,}"
    return fmt_sig


def display_formats(df: pd.DataFrame) -> dict:
    """Column -> formatter for every numeric column of ``df`` (see :func:`column_format`).

    For ``Styler.format``: ``df.style.format(display_formats(df))``.

    Examples
    --------
    >>> df = pd.DataFrame({"scale": ["a"], "r": [0.31234], "p": [1e-9]})
    >>> {k: f(df[k][0]) for k, f in display_formats(df).items()}
    {'r': '0.312', 'p': '< 0.001'}
    """
    out = {}
    for col in df.columns:
        f = column_format(col, df[col])
        if f is not None:
            out[col] = f
    return out


def format_frame(df: pd.DataFrame, *, formats: dict | None = None) -> pd.DataFrame:
    """A copy of ``df`` with every numeric cell as display text (CSV keeps ``df`` itself).

    Parameters
    ----------
    df : pandas.DataFrame
    formats : dict, optional
        Column -> callable overriding :func:`display_formats`.

    Returns
    -------
    pandas.DataFrame
        Same shape and labels, object columns of strings for the numeric columns.

    Examples
    --------
    >>> df = pd.DataFrame({"y": ["NPS"], "r": [0.123456], "p": [0.0000001], "n": [40]})
    >>> format_frame(df).iloc[0].tolist()
    ['NPS', '0.123', '< 0.001', '40']
    """
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(f"`df` must be a pandas DataFrame, but {type(df).__name__} was passed")
    fmts = display_formats(df)
    fmts.update(formats or {})
    out = df.copy()
    for col, f in fmts.items():
        out[col] = [f(v) for v in df[col]]
    return out


def readable_name(code) -> str:
    """What a reader calls a CSV column code.

    Examples
    --------
    >>> readable_name("ci_low"), readable_name("mean_top"), readable_name("icc2")
    ('95% CI low', 'mean top', 'ICC(2)')
    """
    code = str(code)
    if code in _NAMES:
        return _NAMES[code]
    words = [_NAMES.get(w, w) if w in ("sd", "se", "r2", "pct") else w for w in code.split("_")]
    text = " ".join(words).replace("pct", "%")
    return text


def data_dictionary(tables: dict) -> pd.DataFrame:
    """One row per column of every table: its code, a readable name and its type.

    Parameters
    ----------
    tables : dict
        Table name -> DataFrame (e.g. every CSV a report wrote).

    Returns
    -------
    pandas.DataFrame
        Columns ``table``, ``column`` (the code in the CSV), ``name`` (for readers),
        ``type`` (``number``, ``integer``, ``text``, ``yes/no``), ``definition`` (from
        :data:`GLOSSARY` when the name is a term there).

    Examples
    --------
    >>> dd = data_dictionary({"t": pd.DataFrame({"icc2": [0.8], "n": [3], "y": ["NPS"]})})
    >>> dd[["column", "name", "type"]].values.tolist()
    [['icc2', 'ICC(2)', 'number'], ['n', 'number', 'integer'], ['y', 'to', 'text']]
    """
    rows = []
    for table, df in tables.items():
        for col in df.columns:
            s = df[col]
            kind = ("yes/no" if pd.api.types.is_bool_dtype(s) else
                    "integer" if pd.api.types.is_integer_dtype(s) else
                    "number" if pd.api.types.is_numeric_dtype(s) else "text")
            name = readable_name(col)
            rows.append({"table": str(table), "column": str(col), "name": name,
                         "type": kind, "definition": GLOSSARY.get(name, "")})
    return pd.DataFrame(rows, columns=["table", "column", "name", "type", "definition"])
