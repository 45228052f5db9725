"""Anonymous benchmarks: where a client stands among the other clients.

A benchmark is computed only from client-level aggregates (one row per client: its mean
engagement, its mean NPS, its unit-level EX-CX correlation, ...), is shown only when
enough *other* clients contribute, and never contains another client's id, name or value.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from . import config
from ._checks import check_column_args, check_frame
from .exceptions import ParameterError

__all__ = ["BENCHMARK_COLUMNS", "client_aggregates", "client_percentiles"]

#: Columns of :func:`client_percentiles`, in order.
BENCHMARK_COLUMNS = ("client_id", "measure", "value", "percentile", "n_contributors",
                     "q1", "median", "q3", "withheld", "reason")


def _window_quantile(sorted_vals, p, window):
    """Mean of ``window`` adjacent order statistics centred on the p-quantile position."""
    m = len(sorted_vals)
    h = p * (m - 1)
    start = int(min(max(math.floor(h + 0.5) - (window - 1) // 2, 0), m - window))
    return float(np.mean(sorted_vals[start:start + window]))


def client_percentiles(aggregates, *, client, value_columns, client_col="client_id",
                       min_others=config.MIN_BENCHMARK_CONTRIBUTORS):
    """A client's percentile among the other clients on each measure, without naming them.

    Parameters
    ----------
    aggregates : pandas.DataFrame
        Client-level aggregates, one row per client: ``client_col`` and one numeric column
        per measure (an EX scale's mean, an outcome's mean, a linkage effect such as the
        client's unit-level correlation). NaN means the client does not contribute that
        measure.
    client : str
        The focal client's id.
    value_columns : sequence of str
        Measures to benchmark.
    client_col : str, default "client_id"
        Column holding client ids.
    min_others : int, default ``config.MIN_BENCHMARK_CONTRIBUTORS`` (3)
        A measure is benchmarked only when at least this many *other* clients contribute
        it. Values below the default are refused.

    Returns
    -------
    pandas.DataFrame
        One row per measure, columns :data:`BENCHMARK_COLUMNS`:

        - ``client_id``: the focal client (the only id in the output);
        - ``measure``; ``value``: the focal client's own value;
        - ``percentile``: its percentile rank among the others (0-100);
        - ``n_contributors``: number of other clients with a value;
        - ``q1``, ``median``, ``q3``: pooled quartiles of the others, only when at least
          ``config.MIN_BENCHMARK_QUARTILE_CONTRIBUTORS`` (5) contribute, NaN otherwise;
        - ``withheld`` (bool) and ``reason`` (str, empty when shown). A withheld row has
          NaN ``percentile`` and quartiles; one warning lists the withheld measures.

    Notes
    -----
    Percentile rank with ties counted half (``scipy.stats.percentileofscore(kind="mean")``):
    :math:`100\\,(\\#\\{x_j < v\\} + \\tfrac12 \\#\\{x_j = v\\}) / m` over the :math:`m`
    other clients' values :math:`x_j`.

    Disclosure rule. No minimum or maximum is reported, and each quartile is a
    *window mean*: the mean of ``config.BENCHMARK_QUANTILE_WINDOW`` (3) adjacent sorted
    values of the others, centred on the quantile position :math:`p(m - 1)`, so that no
    reported number is a single client's value (an ordinary median of 5 values is one
    client's value). With :math:`m \\ge 5` others the three window means are three
    equations in at least five unknowns, so no individual value can be solved for from one
    report. This guards one report; it does not defend against collusion of several clients
    comparing their reports, which the study owner must prevent by publishing benchmarks
    only to one client each.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.benchmark import client_percentiles
    >>> agg = pd.DataFrame({"client_id": ["a", "b", "c", "d", "e", "f"],
    ...                     "engagement": [3.9, 3.52, 3.74, 4.05, 3.61, 3.83],
    ...                     "nps": [30.0, 10.0, None, 25.0, 12.0, None]})
    >>> import warnings; warnings.simplefilter("ignore")
    >>> res = client_percentiles(agg, client="a", value_columns=["engagement", "nps"])
    >>> cols = ["measure", "percentile", "n_contributors", "median", "withheld"]
    >>> res[cols].round(3).values.tolist()
    [['engagement', 80.0, 5, 3.727, False], ['nps', 100.0, 3, nan, False]]
    """
    check_frame(aggregates, "aggregates")
    value_columns = [value_columns] if isinstance(value_columns, str) else list(value_columns)
    check_column_args(aggregates, client_col=client_col, value_columns=value_columns)
    if not isinstance(min_others, int) or min_others < config.MIN_BENCHMARK_CONTRIBUTORS:
        raise ParameterError(
            f"`min_others` must be an integer >= {config.MIN_BENCHMARK_CONTRIBUTORS}, but "
            f"{min_others!r} was passed")
    ids = aggregates[client_col].astype(str)
    if ids.duplicated().any():
        raise ParameterError(
            f"`aggregates` must have one row per client in `client_col` ({client_col!r}); "
            f"{int(ids.duplicated().sum())} duplicated id(s) were passed")
    if str(client) not in set(ids):
        raise ParameterError(
            f"`client` must be one of the clients in `aggregates`, but {client!r} was passed")
    focal = aggregates.loc[ids == str(client)].iloc[0]
    others = aggregates.loc[ids != str(client)]
    min_q = config.MIN_BENCHMARK_QUARTILE_CONTRIBUTORS
    window = config.BENCHMARK_QUANTILE_WINDOW
    rows, withheld = [], []
    for col in value_columns:
        value = pd.to_numeric(pd.Series([focal[col]]), errors="coerce").iloc[0]
        vals = np.sort(pd.to_numeric(others[col], errors="coerce").dropna().to_numpy(float))
        m = len(vals)
        row = {"client_id": str(client), "measure": col, "value": float(value),
               "percentile": np.nan, "n_contributors": m, "q1": np.nan, "median": np.nan,
               "q3": np.nan, "withheld": False, "reason": ""}
        if m < min_others:
            row["withheld"] = True
            row["reason"] = (f"only {m} other client(s) contribute; at least {min_others} "
                             "are needed")
        elif not np.isfinite(value):
            row["withheld"] = True
            row["reason"] = "this client has no value for the measure"
        else:
            below = np.sum(vals < value)
            ties = np.sum(vals == value)
            row["percentile"] = float(100.0 * (below + 0.5 * ties) / m)
            if m >= min_q:
                row["q1"], row["median"], row["q3"] = (
                    _window_quantile(vals, p, window) for p in (0.25, 0.5, 0.75))
        if row["withheld"]:
            withheld.append(col)
        rows.append(row)
    if withheld:
        warnings.warn(f"benchmark withheld for {withheld} (see the `reason` column)",
                      stacklevel=2)
    out = pd.DataFrame(rows, columns=list(BENCHMARK_COLUMNS))
    out["n_contributors"] = out["n_contributors"].astype(int)
    out["withheld"] = out["withheld"].astype(bool)
    return out


def client_aggregates(data, *, value_columns, client_col="client_id", unit="unit_id",
                      period=None):
    """Client-level aggregates (means over units) to feed :func:`client_percentiles`.

    Parameters
    ----------
    data : pandas.DataFrame
        Stacked unit panels of several clients: ``client_col``, ``unit``, ``period`` (when
        ``period`` is given) and the numeric ``value_columns``. Suppressed unit-periods
        carry NaN scale values and so do not count.
    value_columns : sequence of str
        Measures to aggregate (EX scales, outcomes).
    client_col : str, default "client_id"
    unit : str, default "unit_id"
    period : str, optional
        Use only this period (otherwise each unit's periods are averaged first).

    Returns
    -------
    pandas.DataFrame
        One row per client (sorted by id): ``client_col``, ``n_units`` (units with at
        least one value), then the mean over units of each value column.

    Notes
    -----
    Every unit counts once (unit means over periods, then the mean over units), so a
    client's benchmark value does not depend on how many periods a unit reported.
    Linkage effects (a client's unit-level correlation) can be merged on ``client_col``
    as further columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.benchmark import client_aggregates
    >>> d = pd.DataFrame({"client_id": ["a", "a", "a", "b"], "unit_id": ["u1", "u1", "u2", "v1"],
    ...                   "period": ["p1", "p2", "p1", "p1"],
    ...                   "engagement": [3.0, 4.0, 5.0, 4.2]})
    >>> client_aggregates(d, value_columns=["engagement"]).values.tolist()
    [['a', 2, 4.25], ['b', 1, 4.2]]
    """
    value_columns = [value_columns] if isinstance(value_columns, str) else list(value_columns)
    check_column_args(data, client_col=client_col, unit=unit,
                      period="period" if period is not None else None,
                      value_columns=value_columns)
    d = data
    if period is not None:
        d = d.loc[d["period"].astype(str) == str(period)]
    d = d[[client_col, unit, *value_columns]].copy()
    for c in value_columns:
        d[c] = pd.to_numeric(d[c], errors="coerce").astype(float)
    units = d.groupby([client_col, unit], sort=True)[value_columns].mean()
    out = units.groupby(level=0, sort=True).mean()
    out.insert(0, "n_units", units.notna().any(axis=1).groupby(level=0).sum().astype(int))
    return out.reset_index()
