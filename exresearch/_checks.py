"""Argument checks shared by every module: one rule per kind of argument.

Each check raises :class:`~exresearch.exceptions.ParameterError` with a message that
names the parameter, what is allowed and the value received (seaborn's convention), and
returns the normalised value. The rules:

* ``data``: a pandas DataFrame.
* column lists: a column name or a sequence of names (duplicates dropped, order kept);
  every name must be a column of ``data`` (numeric where the statistic needs numbers).
* ``n_boot``: an integer (``bool`` is refused), at least 1; where a function can give its
  point estimates without resampling it declares ``allow_zero=True`` and 0 means "no
  bootstrap" (NaN intervals).
* ``seed``: ``None``, a non-negative integer, a :class:`numpy.random.Generator` or
  :class:`numpy.random.SeedSequence`.
* choices: one of a listed set of values.
* ``alpha`` and other levels: a number strictly between 0 and 1.

Examples
--------
>>> from exresearch._checks import check_n_boot
>>> check_n_boot(0, allow_zero=True)
0
>>> check_n_boot(True)
Traceback (most recent call last):
...
exresearch.exceptions.ParameterError: `n_boot` must be a positive integer, but True was passed
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .exceptions import ParameterError

__all__ = [
    "check_frame",
    "as_columns",
    "check_columns",
    "check_column_args",
    "check_choice",
    "check_n_boot",
    "check_seed",
    "check_alpha",
    "check_int",
    "check_float",
    "as_numbers",
]


def check_frame(data, name="data"):
    """Require a DataFrame."""
    if not isinstance(data, pd.DataFrame):
        raise ParameterError(
            f"`{name}` must be a pandas DataFrame, but {type(data).__name__} was passed"
        )
    return data


def as_columns(param, value, *, allow_none=False):
    """Normalise a column name or a list of names to a list of str (duplicates dropped).

    Examples
    --------
    >>> as_columns("y", "nps"), as_columns("y", ["nps", "g", "nps"])
    (['nps'], ['nps', 'g'])
    """
    if value is None:
        if allow_none:
            return []
        raise ParameterError(
            f"`{param}` must be a column name or a list of column names, but None was passed")
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence | pd.Index) and all(isinstance(v, str) for v in value):
        out = list(dict.fromkeys(value))
        if not out and not allow_none:
            raise ParameterError(
                f"`{param}` must name at least one column, but an empty list was passed")
        return out
    raise ParameterError(
        f"`{param}` must be a column name or a list of column names, but {value!r} was passed"
    )


def check_columns(data, param, cols, *, numeric=True):
    """Require that every name in ``cols`` is a column of ``data`` (numeric by default).

    Examples
    --------
    >>> import pandas as pd
    >>> check_columns(pd.DataFrame({"a": [1]}), "y", ["b"])
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: `y` names column(s) ['b'] that are not in data; available columns are ['a']
    """
    cols = [cols] if isinstance(cols, str) else [c for c in cols if c is not None]
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ParameterError(
            f"`{param}` names column(s) {missing} that are not in data; "
            f"available columns are {list(map(str, data.columns))}"
        )
    if numeric:
        bad = [c for c in cols if not pd.api.types.is_numeric_dtype(data[c])]
        if bad:
            raise ParameterError(
                f"`{param}` must name numeric columns, but {bad} "
                f"{'is' if len(bad) == 1 else 'are'} not numeric"
            )
    return cols


def check_column_args(data, **columns):
    """Require a DataFrame and, for each keyword, that its column (or columns) exist.

    ``None`` values are skipped (optional columns). Used where each parameter names
    one column (``x=``, ``cx=``, ``unit=``); lists of columns go through
    :func:`check_columns`.

    Examples
    --------
    >>> import pandas as pd
    >>> check_column_args(pd.DataFrame({"a": [1]}), cx="csat")
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: The column for `cx` must be one of ['a'], but 'csat' was passed
    """
    check_frame(data)
    for param, cols in columns.items():
        if cols is None:
            continue
        for col in [cols] if isinstance(cols, str) else list(cols):
            if col not in data.columns:
                raise ParameterError(
                    f"The column for `{param}` must be one of {list(data.columns)}, but "
                    f"{col!r} was passed")


def check_choice(param, value, allowed):
    """Require one of ``allowed``."""
    if value not in list(allowed):
        raise ParameterError(
            f"The value for `{param}` must be one of {list(allowed)}, but {value!r} was passed"
        )
    return value


def check_n_boot(n_boot, *, allow_zero=False):
    """Require an integer number of bootstrap resamples (>= 1, or >= 0 with ``allow_zero``)."""
    lo = 0 if allow_zero else 1
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < lo:
        kind = "non-negative" if allow_zero else "positive"
        raise ParameterError(f"`n_boot` must be a {kind} integer, but {n_boot!r} was passed")
    return int(n_boot)


def check_seed(seed):
    """Require ``None``, a non-negative integer or a numpy Generator.

    Examples
    --------
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: `seed` must be None, a non-negative integer or a numpy Generator, but -1 was passed
    """
    ok = (seed is None or isinstance(seed, np.random.Generator | np.random.SeedSequence)
          or (isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0))
    if not ok:
        raise ParameterError(
            "`seed` must be None, a non-negative integer or a numpy Generator, but "
            f"{seed!r} was passed")
    return seed


def check_alpha(alpha, name="alpha"):
    """Require a number strictly between 0 and 1."""
    if isinstance(alpha, bool) or not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise ParameterError(f"`{name}` must be a number between 0 and 1, but {alpha!r} was passed")
    return float(alpha)


def check_int(name, value, lo):
    """Require an integer >= ``lo`` (``bool`` refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        raise ParameterError(f"`{name}` must be an integer >= {lo}, but {value!r} was passed")
    return int(value)


def check_float(name, value, lo, hi, *, open_lo=True, open_hi=True):
    """Require a finite number in an interval (open or closed at each end)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"`{name}` must be a number, but {value!r} was passed") from None
    if (not math.isfinite(v) or (v <= lo if open_lo else v < lo)
            or (v >= hi if open_hi else v > hi)):
        left, right = "(" if open_lo else "[", ")" if open_hi else "]"
        raise ParameterError(
            f"`{name}` must be in {left}{lo}, {hi}{right}, but {value!r} was passed")
    return v


def as_numbers(name, value):
    """A number or a non-empty list of numbers, as a list."""
    if isinstance(value, str):
        raise ParameterError(f"`{name}` must be a number or a list of numbers, "
                             f"but {value!r} was passed")
    if isinstance(value, list | tuple | np.ndarray | pd.Series | range):
        values = list(value)
        if not values:
            raise ParameterError(f"`{name}` must not be empty, but {value!r} was passed")
        return values
    return [value]
