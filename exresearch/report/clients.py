"""Several clients at once: stacked unit means, the anonymous benchmark, the per-client
inputs of the synthesis (under the names of :func:`display_names`), pooling over clients,
the top-vs-bottom-quarter summary and the headline cards of the site's index page."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..exceptions import ParameterError
from ..privacy import pseudonyms
from .panels import client_panel, unit_means
from .roles import Roles  # noqa: F401 (doctests)
from .setup import check_choice


def all_unit_means(study, roles, *, panels=None) -> pd.DataFrame:
    """Every client's unit means, stacked (for benchmarks and the synthesis).

    Parameters
    ----------
    study : exresearch.study.Study
    roles : Roles
    panels : dict, optional
        client id -> :func:`client_panel` already computed (reused, not recomputed).

    Returns
    -------
    pandas.DataFrame
        ``client_id`` then the columns of :func:`unit_means`. Warnings from other
        clients' data are silenced (they could name those clients).
    """
    frames = []
    panels = panels or {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cid in study.clients:
            p = panels.get(cid)
            if p is None:
                p = client_panel(study, cid, roles)
            frames.append(unit_means(p, roles).assign(client_id=cid))
    out = pd.concat(frames, ignore_index=True)
    return out[["client_id", *[c for c in out.columns if c != "client_id"]]]


#: Benchmark aggregates kept per study object (:func:`benchmark_aggregates`):
#: id(study) -> (study, {(measures, ex, cx): aggregates}).
_BENCHMARK: dict = {}


def _benchmark_measures(columns, roles, measures=None) -> list:
    return list(measures or [c for c in [*roles.ex_measures, *roles.outcomes]
                             if c in columns])


def client_benchmark_rows(means, *, roles, measures=None) -> pd.DataFrame:
    """Every client's aggregates for the benchmark: what :func:`benchmark_table` ranks.

    Parameters
    ----------
    means : pandas.DataFrame
        :func:`all_unit_means` of the study.
    roles : Roles
    measures : list of str, optional
        Default: the EX measures and the outcomes.

    Returns
    -------
    pandas.DataFrame
        One row per client (sorted by id): ``client_id, n_units``, the mean over units
        of each measure (:func:`exresearch.benchmark.client_aggregates`), then
        ``r_<ex>_<cx>``, the client's unit-level correlation of the EX index with the
        primary CX outcome (when there is one).
    """
    from ..benchmark import client_aggregates

    measures = _benchmark_measures(means.columns, roles, measures)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agg = client_aggregates(means, value_columns=measures)
        if roles.primary_cx is not None:
            rname = f"r_{roles.ex}_{roles.primary_cx}"
            agg = agg.merge(pd.DataFrame(_client_correlations(
                means, x=roles.ex, y=roles.primary_cx), columns=["client_id", rname]),
                on="client_id", how="left")
    return agg


def _client_correlations(means, *, x: str, y: str) -> list:
    """[(client id, Pearson r of ``x`` and ``y`` over its units)], by id.

    The same r, bit for bit, as :func:`exresearch.linkage.correlations` of each client's
    rows (its pairwise-complete rows, NaN when too few or a column is constant): the
    same per-pair function on the same arrays, without that call's frame checks and
    table per client (0.6 s of the zygote's start at 300 clients)."""
    from .._stats import _pair_stats

    ids = means["client_id"].to_numpy()
    order = np.argsort(ids, kind="stable")  # each client's rows in their order
    cuts = np.flatnonzero(ids[order][1:] != ids[order][:-1]) + 1
    xs, ys = means[x].to_numpy(dtype=float), means[y].to_numpy(dtype=float)
    return [(ids[rows[0]], _pair_stats({x: xs[rows], y: ys[rows]}, x, y, [], "pearson")[0]["r"])
            for rows in (np.split(order, cuts) if len(order) else [])]


def _unit_means_by_client(study, roles, *, store) -> pd.DataFrame:
    """:func:`all_unit_means` one client at a time, through the result cache.

    Each client's unit means depend on that client's data only, so they are kept under
    the sha256 of that client's files and ``study.yml`` (``store``: a
    :class:`exresearch.build.cache.ResultCache`), and a rebuild after one client's data
    changed computes that client's means only. They are stacked exactly as
    :func:`all_unit_means` stacks them (the same frame to the last bit,
    ``tests/test_build_fixed.py``). The benchmark's aggregates are then computed over the
    stacked frame as without a cache: per client alone, pandas' grouped mean can differ
    in the last bit.
    """
    from .summaries import _cached

    frames = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cid in study.clients:
            frames.append(_cached(
                study, store, cid, "unit-means",
                lambda cid=cid: unit_means(client_panel(study, cid, roles),
                                           roles).assign(client_id=cid),
                drivers=list(roles.drivers), ex_measures=list(roles.ex_measures),
                outcomes=list(roles.outcomes), ex=roles.ex))
    out = pd.concat(frames, ignore_index=True)
    return out[["client_id", *[c for c in out.columns if c != "client_id"]]]


def benchmark_aggregates(study, roles, *, measures=None, panels=None,
                         cache=False) -> pd.DataFrame:
    """:func:`client_benchmark_rows` of the whole study, computed once per process.

    A client report ranks its client among all the others, which needs every client's
    unit means and correlation: computed for each report, that cost grows with the
    number of clients (about 1.3 s per report at 100 clients, 4 s at 300). Here it is
    computed once per study object and kept; the build's zygote computes it before it
    forks the report kernels (:func:`exresearch.report.preload_study`), so each client
    report only looks its client up. The study must not change afterwards (``Study``
    objects are read-only); the panels are those of :func:`client_panel` (the kept
    ones in a build).

    Parameters
    ----------
    study : exresearch.study.Study
    roles : Roles
    measures : list of str, optional
        Default: the EX measures and the outcomes.
    panels : dict, optional
        client id -> :func:`client_panel` already computed, used (not recomputed) when
        the aggregates are computed (the same panels :func:`client_panel` returns).
    cache : str, pathlib.Path, ResultCache or False, default False
        The build's result cache: each client's unit means are kept under the sha256 of
        that client's files and ``study.yml`` and read back while they are unchanged
        (the same result; the build's zygote passes it through
        :func:`exresearch.report.preload_study`). None: ``$EXRESEARCH_CACHE`` if set.

    Returns
    -------
    pandas.DataFrame
        :func:`client_benchmark_rows` of :func:`all_unit_means` (a copy).

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> from exresearch.study import load_study
    >>> from exresearch.report import measure_roles
    >>> study = load_study(ROOT / "tests" / "studies" / "valid")
    >>> roles = measure_roles(study.config)
    >>> agg = benchmark_aggregates(study, roles)
    >>> agg["client_id"].tolist(), agg.equals(benchmark_aggregates(study, roles))
    (['acme', 'beta-bank'], True)
    """
    key = (tuple(measures or ()), roles.ex, roles.primary_cx, tuple(roles.drivers))
    kept = _BENCHMARK.get(id(study))
    if kept is None or kept[0] is not study:
        kept = _BENCHMARK[id(study)] = (study, {})
    if key not in kept[1]:
        store = None
        if cache is not False and not panels:
            from .summaries import _cache

            store = _cache(cache)
        means = (_unit_means_by_client(study, roles, store=store) if store is not None
                 else all_unit_means(study, roles, panels=panels))
        kept[1][key] = client_benchmark_rows(means, roles=roles, measures=measures)
    return kept[1][key].copy()


def benchmark_table(means=None, *, client_id, roles, measures=None,
                    aggregates=None) -> pd.DataFrame:
    """Where a client stands among the other clients, from aggregates only.

    Parameters
    ----------
    means : pandas.DataFrame, optional
        :func:`all_unit_means` of the study (not needed with ``aggregates``).
    client_id : str
        The focal client.
    roles : Roles
    measures : list of str, optional
        Default: the EX measures and the outcomes.
    aggregates : pandas.DataFrame, optional
        :func:`benchmark_aggregates` (or :func:`client_benchmark_rows`) of the study,
        computed once for every report instead of from ``means`` here.

    Returns
    -------
    pandas.DataFrame
        :func:`exresearch.benchmark.client_percentiles` (only the focal client's id; a
        measure is withheld unless at least 3 other clients contribute), then ``label``
        and ``higher_is_better``. Also benchmarks ``r_<ex>_<cx>``, the client's unit-level
        correlation of the EX index with the primary CX outcome.
    """
    from ..benchmark import client_percentiles

    if aggregates is None:
        if means is None:
            raise ParameterError("benchmark_table needs `means` (all_unit_means) or "
                                 "`aggregates` (benchmark_aggregates), but neither was "
                                 "passed")
        aggregates = client_benchmark_rows(means, roles=roles, measures=measures)
    rname = f"r_{roles.ex}_{roles.primary_cx}" if roles.primary_cx is not None else None
    cols = _benchmark_measures(aggregates.columns, roles, measures)
    cols += [rname] if rname and rname in aggregates.columns else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = client_percentiles(aggregates, client=client_id, value_columns=cols)
    labels = dict(roles.labels)
    if rname:
        labels[rname] = f"Link of {roles.label(roles.ex)} with {roles.label(roles.primary_cx)} (r)"
    res["label"] = res["measure"].map(lambda m: labels.get(m, m))
    res["higher_is_better"] = res["measure"].map(lambda m: roles.higher_is_better.get(m, True))
    return res


def display_names(study) -> dict:
    """Client id -> the name shown in study-level reports.

    Parameters
    ----------
    study : exresearch.study.Study

    Returns
    -------
    dict
        The client's name from ``study.yml`` when ``publish_client_names`` is true,
        otherwise a pseudonym "Client A", "Client B", ... assigned by a shuffle seeded
        with the study's seed (or its name), so the letters do not follow the ids.
    """
    if getattr(study.config, "publish_client_names", False):
        return {c: (study.config.client(c).name or c) for c in study.clients}
    seed = getattr(study.config, "seed", None)
    if not isinstance(seed, int) or isinstance(seed, bool):
        seed = str(getattr(study.config, "name", "") or "study")
    return pseudonyms(study.clients, seed=seed)


def per_client_correlations(means, *, x, y, names=None, industries=None) -> pd.DataFrame:
    """Each client's unit-level correlations, ready to pool.

    Parameters
    ----------
    means : pandas.DataFrame
        :func:`all_unit_means`.
    x, y : list of str
        EX measures and outcomes.
    names : dict, optional
        client id -> shown name (:func:`display_names`); then ``client`` holds it and the
        id is dropped.
    industries : dict, optional
        client id -> industry.

    Returns
    -------
    pandas.DataFrame
        ``client`` (or ``client_id``), ``industry``, ``x, y, n, r, ci_low, ci_high,
        p_val`` (Fisher-z CI), one row per client x pair, in study order.
    """
    from ..linkage import correlations

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cid, g in means.groupby("client_id", sort=False):
            c = correlations(g, x=list(x), y=list(y))
            c.insert(0, "client_id", cid)
            rows.append(c.drop(columns="p_corr"))
    out = pd.concat(rows, ignore_index=True)
    # one client's notes (aligned with its rows) do not describe the stack; kept, pandas
    # would deep-copy them on every column access (seconds at a few hundred clients)
    out.attrs = {}
    out.insert(1, "industry", out["client_id"].map(industries or {}))
    if names is not None:
        out.insert(0, "client", out["client_id"].map(names))
        out = out.drop(columns="client_id")
    return out


def cross_lagged_by_client(panels, *, x, y, periods, names=None, method="riclpm",
                           fits=None) -> pd.DataFrame:
    """Within-unit cross-lagged paths of every client, stacked, with each client's EX trend.

    Parameters
    ----------
    panels : dict
        client id -> unit panel (:func:`client_panel`).
    x, y : str
        EX column and CX column.
    periods : list of str
    names : dict, optional
        client id -> shown name; then ``client`` replaces ``client_id``.
    method : {"riclpm", "clpm"}
        :func:`exresearch.riclpm.riclpm` (default: within-unit paths, their difference)
        or the plain :func:`exresearch.direction.cross_lagged`.
    fits : dict, optional
        client id -> the :func:`exresearch.riclpm.riclpm` result of ``x`` and ``y`` on
        that client's panel over ``periods`` (its defaults otherwise), already fitted
        (e.g. for :func:`exresearch.synthesis.within_paths_by_client`): taken as it is
        instead of fitting the same model again. Only with ``method="riclpm"``.

    Returns
    -------
    pandas.DataFrame
        ``client_id`` (or ``client``), ``trend_sd``, ``trend_se``, ``trend_p`` (EX
        trend, SD per period, tested: :func:`exresearch.loop.trend_test`), then the
        columns of the paths.
    """
    from ..direction import cross_lagged
    from ..loop import trend_test
    from ..riclpm import riclpm

    check_choice("method", method, ["riclpm", "clpm"])
    if fits and method != "riclpm":
        raise ParameterError(f"`fits` are riclpm() results, but method={method!r} was passed")
    fits = fits or {}
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cid, p in panels.items():
            cl = (fits[cid].copy() if cid in fits  # (a copy: columns are inserted below)
                  else riclpm(p, x=x, y=y, periods=periods) if method == "riclpm"
                  else cross_lagged(p, x=x, y=y, periods=periods))
            tr = trend_test(p, x=x, periods=periods)
            cl.insert(0, "trend_p", tr["p_val"])
            cl.insert(0, "trend_se", tr["se"])
            cl.insert(0, "trend_sd", tr["trend_sd"])
            cl.insert(0, "client_id", cid)
            if "df" in cl.attrs:  # riclpm's t reference, kept per row for classify_loop
                cl["df"] = float(cl.attrs["df"])
            cl.attrs = {}  # per-client covariances (riclpm) do not describe the stack
            rows.append(cl)
    out = pd.concat(rows, ignore_index=True)
    if names is not None:
        out.insert(0, "client", out["client_id"].map(names))
        out = out.drop(columns="client_id")
    return out


def pool_estimates(data, *, estimate="estimate", se="se", method="REML") -> pd.Series:
    """Pool estimates with standard errors over clients, REML, DL or FE, for the reports.

    :func:`exresearch.meta.pool_estimates` (the one pooling routine) with the methods
    the reports use for cross-lagged paths; REML by default, as metafor's ``rma`` and
    :func:`exresearch.loop.pool_loop`, so the synthesis and the library pool the loop
    the same way.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study (client); rows with a missing estimate or SE are dropped.
    estimate, se : str
        Columns.
    method : {"REML", "DL", "FE"}
        Random effects with tau^2 by restricted maximum likelihood (default) or
        DerSimonian-Laird, or fixed effect.

    Returns
    -------
    pandas.Series
        ``k, estimate, se, ci_low, ci_high, z, p_val, tau2, i2, q, q_p, pi_low, pi_high``
        (NaN with fewer than 2 rows, ``k`` kept); equal to metafor's
        ``rma(yi, sei=se, method=...)``.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"estimate": [0.2, 0.3, 0.25], "se": [0.1, 0.1, 0.1]})
    >>> round(float(pool_estimates(d)["estimate"]), 3)
    0.25
    """
    from ..meta import pool_estimates as _pool

    check_choice("method", method, ["REML", "DL", "FE"])
    return _pool(data, estimate=estimate, se=se, method=method)


def pool_paths(by_client, *, method="REML") -> pd.DataFrame:
    """Pool each cross-lagged path over clients (:func:`pool_estimates`).

    Parameters
    ----------
    by_client : pandas.DataFrame
        :func:`cross_lagged_by_client`.
    method : {"REML", "DL", "FE"}
        REML by default, as :func:`exresearch.loop.pool_loop`.

    Returns
    -------
    pandas.DataFrame
        One row per path (cross-lagged first, then autoregressive): ``path, source,
        target, kind`` and the fields of :func:`pool_estimates`. The frame feeds
        :func:`exresearch.direction.classify_loop` and
        :func:`exresearch.economics.project_loop`.
    """
    rows = []
    pooled_kinds = ["cross-lagged", "autoregressive", "difference"]
    for (path, source, target, kind), g in by_client[by_client["kind"].isin(pooled_kinds)].groupby(
            ["path", "source", "target", "kind"], sort=False):
        rows.append({"path": path, "source": source, "target": target, "kind": kind,
                     **pool_estimates(g, method=method).to_dict()})
    out = pd.DataFrame(rows)
    out["k"] = out["k"].astype(np.int64)
    return out


def utility_summary(utility, *, roles) -> pd.DataFrame:
    """Summarise clients' top-vs-bottom-quarter differences per outcome.

    Parameters
    ----------
    utility : pandas.DataFrame
        Stacked :func:`exresearch.economics.quartile_utility` results, one block per
        client.
    roles : Roles

    Returns
    -------
    pandas.DataFrame
        One row per outcome (``y``): ``label, higher_is_better, clients`` (with a
        defined difference), ``mean_diff``, ``median_diff`` (top minus bottom quarter, in
        the outcome's units), ``clients_top_better`` (clients whose top-quarter units do
        better, respecting ``higher_is_better``) and ``mean_pct_diff``.

    Examples
    --------
    >>> import pandas as pd
    >>> roles = Roles(
    ...     drivers=[], engagement=[], nps=[], likert=[], ex_measures=["e"], cx=[],
    ...     business=["turnover"], outcomes=["turnover"], primary_cx=None, money=None,
    ...     higher_is_better={"turnover": False})
    >>> u = pd.DataFrame({"y": ["turnover"] * 3, "diff": [-4.0, 2.0, -6.0],
    ...                   "pct_diff": [-10.0, 5.0, -12.0]})
    >>> res = utility_summary(u, roles=roles)
    >>> res[["clients", "clients_top_better"]].values.tolist(), round(res["mean_diff"].item(), 3)
    ([[3, 2]], -2.667)
    """
    rows = []
    for y, g in utility.dropna(subset=["diff"]).groupby("y", sort=False):
        hib = roles.higher_is_better.get(y, True)
        better = (g["diff"] > 0) if hib else (g["diff"] < 0)
        rows.append({"y": y, "label": roles.label(y), "higher_is_better": hib,
                     "clients": int(len(g)), "mean_diff": float(g["diff"].mean()),
                     "median_diff": float(g["diff"].median()),
                     "clients_top_better": int(better.sum()),
                     "mean_pct_diff": float(g["pct_diff"].mean())})
    return pd.DataFrame(rows, columns=["y", "label", "higher_is_better", "clients", "mean_diff",
                                       "median_diff", "clients_top_better", "mean_pct_diff"])


def headline_table(rows) -> pd.DataFrame:
    """The synthesis' headline results for the site's index page.

    Parameters
    ----------
    rows : list of (label, value, note)

    Returns
    -------
    pandas.DataFrame
        ``label, value, note`` (text), written by the synthesis as ``headline.csv``; the
        build shows each row as a card on ``index.html`` (see ``exresearch.build``).
    """
    return pd.DataFrame([{"label": str(a), "value": str(b), "note": str(c)} for a, b, c in rows],
                        columns=["label", "value", "note"])


def pooled_correlations(per_client, *, roles, method="REML") -> pd.DataFrame:
    """Every EX measure x outcome correlation pooled over clients, in the study's order.

    :func:`exresearch.meta.pool_correlations` of :func:`per_client_correlations`, sorted
    by EX measure then outcome as in ``study.yml``.
    """
    from ..meta import pool_correlations

    order = {v: i for i, v in enumerate([*roles.ex_measures, *roles.outcomes])}
    return (pool_correlations(per_client, by=["x", "y"], method=method)
            .sort_values(["x", "y"], key=lambda col: col.map(order)).reset_index(drop=True))


def pooled_loop(paths, by_client, *, roles) -> pd.DataFrame:
    """The loop verdict of the pooled cross-lagged paths.

    Parameters
    ----------
    paths : pandas.DataFrame
        :func:`pool_paths`.
    by_client : pandas.DataFrame
        :func:`cross_lagged_by_client` (with ``client``); the trend is the
        random-effects pool of the clients' tested trends (``trend_sd``, ``trend_se``).
    roles : Roles
        Labels used in the reason.

    Returns
    -------
    pandas.DataFrame
        :func:`exresearch.direction.classify_loop`, plus ``trend_sd`` and ``method``
        (``"riclpm pooled"`` for within-unit paths: only then may "drives" follow).
    """
    from ..direction import classify_loop

    # the pooled trend is itself a meta-analysis of the clients' tested trends, not an
    # average of them: "virtuous cycle" across clients needs it to be significant
    per = by_client.groupby("client")[["trend_sd", "trend_se"]].first() if (
        "trend_se" in by_client.columns) else None
    trend, trend_p = np.nan, None
    if per is not None:
        pooled = pool_estimates(per, estimate="trend_sd", se="trend_se")
        trend, trend_p = float(pooled["estimate"]), float(pooled["p_val"])
    res = classify_loop(roles.relabel(paths, "source", "target"), trend=trend, trend_p=trend_p)
    res["trend_sd"] = trend
    res["method"] = ("riclpm pooled" if (paths["kind"] == "difference").any()
                     else "clpm pooled")
    return res


def loops_by_client(by_client) -> pd.DataFrame:
    """Each client's loop verdict from its own cross-lagged paths.

    Parameters
    ----------
    by_client : pandas.DataFrame
        :func:`cross_lagged_by_client` (with ``client``).

    Returns
    -------
    pandas.DataFrame
        :func:`exresearch.direction.classify_loop` per client, with ``client``.
    """
    from ..direction import classify_loop
    from ..loop import RICLPM_ALPHA

    def one(g):
        p = g["trend_p"].iloc[0] if "trend_p" in g.columns else None
        method = "riclpm" if (g["kind"] == "difference").any() else "clpm"
        alpha = RICLPM_ALPHA if method == "riclpm" else 0.05  # as loop_direction
        if "df" in g.columns:  # the reverse path's power from riclpm's t, as loop_direction
            g = g.copy()
            g.attrs["df"] = float(g["df"].iloc[0])
        return classify_loop(g, trend=float(g["trend_sd"].iloc[0]), trend_p=p,
                             alpha=alpha).assign(method=method)

    return pd.concat([one(g).assign(client=c)
                      for c, g in by_client.groupby("client", sort=False)], ignore_index=True)


def utility_by_client(means, *, x, y, names, n_boot, seed) -> pd.DataFrame:
    """Each client's top-vs-bottom-quarter comparison, stacked under the shown names.

    :func:`exresearch.economics.quartile_utility` per client of :func:`all_unit_means`,
    with ``client`` (from ``names``).
    """
    from ..economics import quartile_utility

    return pd.concat([
        quartile_utility(g, x=x, y=y, n_boot=n_boot, seed=seed).assign(client=names[c])
        for c, g in means.groupby("client_id", sort=False)], ignore_index=True)


def unit_reliability(study, panels, *, roles, names) -> pd.DataFrame:
    """ICC(1) and ICC(2) of the unit EX scores of every client (reported respondents).

    Returns
    -------
    pandas.DataFrame
        ``client`` (shown name), then :func:`exresearch.report.ex_reliability`'s fields.
    """
    from .panels import ex_reliability, reported_survey

    return pd.DataFrame([
        ex_reliability(reported_survey(study, c, panels[c]), cfg=study.config, roles=roles)
        .rename(names[c]) for c in study.clients]).rename_axis("client").reset_index()
