"""Tables of one client's report derived from analysis results: the robustness of the
links, reliability with agreement, and the benchmark's "better than" share."""

from __future__ import annotations

import numpy as np
import pandas as pd


def robustness_table(corr_all, *, x, outcomes, roles, partial=None) -> pd.DataFrame:
    """The link of ``x`` with each outcome three ways: Pearson, Spearman, partial.

    Parameters
    ----------
    corr_all : pandas.DataFrame
        :func:`exresearch.linkage.correlation_table` with methods pearson and spearman.
    x : str
        The EX measure.
    outcomes : list of str
    roles : Roles
    partial : pandas.DataFrame, optional
        :func:`exresearch.linkage.correlations` with covariates (rows per ``y``).

    Returns
    -------
    pandas.DataFrame
        ``y, label, r_pearson, r_spearman`` and, with ``partial``, ``r_partial``.

    Examples
    --------
    >>> import pandas as pd
    >>> from exresearch.report import Roles
    >>> roles = Roles(drivers=[], engagement=[], nps=[], likert=[], ex_measures=["e"], cx=[],
    ...               business=[], outcomes=["y"], primary_cx=None, money=None)
    >>> c = pd.DataFrame({"x": ["e", "e"], "y": ["y", "y"], "method": ["pearson", "spearman"],
    ...                   "r": [0.3, 0.25]})
    >>> robustness_table(c, x="e", outcomes=["y"], roles=roles).values.tolist()
    [['y', 'y', 0.3, 0.25]]
    """
    robust = (corr_all[corr_all["x"] == x].pivot(index="y", columns="method", values="r")
              .reindex(outcomes))
    robust = robust.rename(columns={"pearson": "r_pearson", "spearman": "r_spearman"})
    robust = robust.reset_index()
    if partial is not None:
        robust["r_partial"] = robust["y"].map(partial.set_index("y")["r"])
    robust.insert(1, "label", robust["y"].map(roles.label))
    return robust


def reliability_agreement(survey, *, latest, cfg) -> pd.DataFrame:
    """Cronbach's alpha of each scale (all reported respondents) with the agreement within
    units of the latest period (ICC(1), ICC(2), mean rwg(j)).

    Parameters
    ----------
    survey : pandas.DataFrame
        Reported respondents (:func:`exresearch.report.reported_survey`).
    latest : pandas.DataFrame
        Those of the latest period (:func:`exresearch.report.latest_rows`).
    cfg : exresearch.study.StudyConfig

    Returns
    -------
    pandas.DataFrame
        :func:`exresearch.scoring.reliability` plus ``icc1, icc2, rwg_j_mean``.
    """
    from ..aggregate import agreement
    from ..scoring import reliability

    rel = reliability(survey, scales=cfg.scales, points=cfg.points)
    agr = agreement(latest, unit="unit_id", scales=cfg.scales, points=cfg.points).reset_index()
    return rel.merge(agr[["scale", "icc1", "icc2", "rwg_j_mean"]], on="scale", how="left")


def better_than(benchmark) -> pd.DataFrame:
    """Add ``better_than_pct``: the share of the other clients this client does better than.

    The percentile where higher is better, 100 minus it where lower is better.

    Examples
    --------
    >>> import pandas as pd
    >>> b = pd.DataFrame({"percentile": [70.0, 70.0], "higher_is_better": [True, False]})
    >>> better_than(b)["better_than_pct"].tolist()
    [70.0, 30.0]
    """
    return benchmark.assign(better_than_pct=np.where(
        benchmark["higher_is_better"].astype(bool), benchmark["percentile"],
        100 - benchmark["percentile"]))


def per_client(study, make, *, clients=None) -> pd.DataFrame:
    """Stack a per-client table over the study's clients, with ``client_id`` added.

    Parameters
    ----------
    study : exresearch.study.Study
    make : callable
        ``make(client_id) -> pandas.DataFrame`` (or None to skip the client).
    clients : list of str, optional
        Default ``study.clients``.

    Returns
    -------
    pandas.DataFrame
    """
    frames, ids = [], []
    for c in clients if clients is not None else study.clients:
        frame = make(c)
        if frame is not None:
            frames.append(frame)
            ids.append(c)
    if not frames:
        return pd.DataFrame()
    columns = list(frames[0].columns)
    if "client_id" in columns or any(list(f.columns) != columns for f in frames[1:]):
        # client_id put in place, or columns that differ: as assign and concat place them
        return pd.concat([f.assign(client_id=c) for f, c in zip(frames, ids, strict=True)],
                         ignore_index=True)
    # the same frame as assigning client_id to each and stacking them, with the column
    # added once to the stack (an assign per client was most of stacking 300 clients)
    out = pd.concat(frames, ignore_index=True)
    out["client_id"] = pd.Series(np.repeat(ids, [len(f) for f in frames]), dtype=str,
                                 index=out.index) if len(out) else pd.Series(dtype=str)
    return out


def quality_by_client(study, surveys) -> pd.DataFrame:
    """Every client's reliability per scale, with agreement in its latest reported period.

    Parameters
    ----------
    study : exresearch.study.Study
    surveys : dict
        client id -> reported respondents (:func:`exresearch.report.reported_survey`).

    Returns
    -------
    pandas.DataFrame
        :func:`exresearch.scoring.reliability` with ``client_id``, plus ``icc1, icc2,
        rwg_j_mean`` (NaN for a client without reported respondents).
    """
    from ..aggregate import agreement
    from ..scoring import reliability
    from .panels import latest_rows

    cfg = study.config
    alphas = per_client(study, lambda c: reliability(surveys[c], scales=cfg.scales,
                                                     points=cfg.points))
    latest = {c: latest_rows(surveys[c], periods=cfg.periods) for c in study.clients}
    agree = per_client(study, lambda c: agreement(
        latest[c], unit="unit_id", scales=cfg.scales, points=cfg.points).reset_index(),
        clients=[c for c in study.clients if len(latest[c])])
    return merge_quality(alphas, agree)


def merge_quality(alphas, agree) -> pd.DataFrame:
    """Stacked reliabilities with agreement (``icc1, icc2, rwg_j_mean``) beside them, NaN
    where a client has no agreement (:func:`quality_by_client`, and the data-quality
    report's cached parts, :func:`exresearch.report.quality_inputs`)."""
    cols = ["client_id", "scale", "icc1", "icc2", "rwg_j_mean"]
    if agree.empty:
        agree = pd.DataFrame(columns=cols)
    return alphas.merge(agree[cols], on=["client_id", "scale"], how="left")


def client_overview(study, panels) -> pd.DataFrame:
    """One row per client for the study team: id (and name when published), industry,
    units and periods with survey answers, and whether a revenue is given."""
    show_names = bool(study.config.publish_client_names)
    rows = []
    for c in study.config.clients:
        answered = panels[c.id][panels[c.id]["n_respondents"] > 0]
        rows.append({"client_id": c.id, **({"name": c.name} if show_names else {}),
                     "industry": c.industry, "units": int(answered["unit_id"].nunique()),
                     "periods": int(answered["period"].nunique()),
                     "revenue_given": c.revenue is not None})
    return pd.DataFrame(rows)


def scale_grid(table, value, *, study, roles, dropna=False) -> pd.DataFrame:
    """A per-client, per-scale column as a client x scale grid for a heatmap.

    Rows are the study's clients and columns the scales' labels, in ``study.yml`` order;
    with ``dropna`` scales without any value are left out.
    """
    grid = table.assign(scale=table["scale"].map(roles.label)).pivot(
        index="client_id", columns="scale", values=value)
    grid = grid.reindex(index=study.clients, columns=[roles.label(s) for s in study.config.scales])
    return grid.dropna(axis=1, how="all") if dropna else grid


def input_files(study) -> pd.DataFrame:
    """The input files read, with their SHA-256 (``file, sha256``, sorted by file)."""
    return pd.DataFrame(sorted(study.hashes.items()), columns=["file", "sha256"])
