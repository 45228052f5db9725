"""The employee-customer loop of one client: its verdict from an already fitted
cross-lagged model (:func:`loop_summary`) and the coefficients that feed
:func:`exresearch.economics.project_loop` (:func:`loop_coefficients`)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def loop_summary(panel, cross_lagged_result, *, x, periods, alpha=None, labels=None) -> pd.DataFrame:
    """Classify a client's loop from an already computed cross-lagged result.

    The same as :func:`exresearch.direction.loop_direction` without fitting the
    cross-lagged model a second time.

    Parameters
    ----------
    panel : pandas.DataFrame
        The unit panel the model was fitted on.
    cross_lagged_result : pandas.DataFrame
        :func:`exresearch.riclpm.riclpm` (within-unit paths) or
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
    from ..direction import classify_loop
    from ..loop import RICLPM_ALPHA, trend_test

    riclpm = bool((cross_lagged_result["kind"] == "difference").any())
    if alpha is None:  # as loop_direction: the calibrated level for within-unit paths
        alpha = RICLPM_ALPHA if riclpm else 0.05
    tr = trend_test(panel, x=x, periods=periods)  # the tested trend (loop.trend_test)
    cl = cross_lagged_result
    if labels:
        cl = cl.assign(source=cl["source"].map(lambda v: labels.get(v, v)),
                       target=cl["target"].map(lambda v: labels.get(v, v)))
    res = classify_loop(cl, trend=tr["trend_sd"], trend_p=tr["p_val"], alpha=alpha)
    res["x"] = cross_lagged_result["source"].iloc[0]
    res["y"] = cross_lagged_result["target"].iloc[0]
    res["trend_sd"] = tr["trend_sd"]
    y = res["y"].iloc[0]
    res["n_obs"] = (int(panel[[x, y]].notna().all(axis=1).sum()) if riclpm
                    else int(cross_lagged_result["n_obs"].iloc[0]))
    res["n_units"] = int(cross_lagged_result["n_units"].iloc[0])
    res["method"] = "riclpm" if riclpm else "clpm"
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


def _trend_sd(panel, x, periods):
    order = {p: i for i, p in enumerate(periods)}
    t = panel["period"].map(order)
    means = panel[x].groupby(t.to_numpy()).mean().dropna()
    sd = float(panel[x].std(ddof=1))
    if len(means) < 2 or not np.isfinite(sd) or sd <= 0:
        return np.nan
    return float(np.polyfit(means.index.to_numpy(dtype=float), means.to_numpy(), 1)[0]) / sd
