"""Per-client summaries of the study-level reports, computed once per client's data.

The synthesis and the data-quality report compute the same things for every client
(unit panel, correlations, within-unit paths, the top-vs-bottom-quarter bootstrap,
reliabilities; response counts, missing answers, alpha and agreement) and then pool or
draw them. These functions compute each client's part on its own and stack the parts in
study order, exactly as the stacked functions (:func:`per_client_correlations`,
:func:`cross_lagged_by_client`, :func:`exresearch.synthesis.within_paths_by_client`, ...)
would: the same numbers, columns and row order.

With a cache (``cache=``, or ``$EXRESEARCH_CACHE``, which ``exresearch build`` sets for its
kernels to the site's cache folder outside ``--out``) each client's part is stored under the sha256 of
that client's data files, ``study.yml``, the parameters and the exresearch source
(:mod:`exresearch.build.cache`), so a rebuild after one client's data changed computes
that client's part only; shown names (pseudonyms depend on every client) and industries
are applied after the cache.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd

from .clients import cross_lagged_by_client, per_client_correlations, utility_by_client
from .panels import (
    client_panel,
    missingness,
    reported_survey,
    response_counts,
    suppressed_units,
    unit_means,
)
from .roles import measure_roles

__all__ = ["SynthesisInputs", "QualityInputs", "synthesis_inputs", "quality_inputs",
           "client_panels"]


def _cache(cache):
    from ..build.cache import ResultCache, from_env

    if cache is None:
        return from_env("summaries")
    if cache is False:
        return None
    if isinstance(cache, ResultCache):
        return cache
    return ResultCache(cache, "summaries")


def _client_key(study, cid: str, what: str, **params) -> str:
    from ..build.cache import cache_key

    files = {k: v for k, v in study.hashes.items()
             if k == "study.yml" or k.startswith(f"clients/{cid}/")}
    return cache_key(f"summary-{what}", {"client": cid, "files": files, **params})


def _cached(study, store, cid: str, what: str, compute, **params):
    """``compute()`` for one client, through ``store`` when there is one."""
    if store is None:
        return compute()
    key = _client_key(study, cid, what, **params)
    value = store.get(key)
    if value is None:
        value = compute()
        store.put(key, value)
    return value


def client_panels(study, *, roles=None, cache=None) -> dict:
    """Every client's unit panel (:func:`client_panel`), through the cache.

    Parameters
    ----------
    study : exresearch.study.Study
    roles : Roles, optional
        Default ``measure_roles(study.config)``.
    cache : str, pathlib.Path, ResultCache or False, optional
        Default ``$EXRESEARCH_CACHE`` when set; False: no cache.

    Returns
    -------
    dict
        client id -> panel, in study order.

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> from exresearch.study import load_study
    >>> study = load_study(ROOT / "tests" / "studies" / "valid")
    >>> list(client_panels(study, cache=False))
    ['acme', 'beta-bank']
    """
    from .panels import _PANELS

    roles = roles or measure_roles(study.config)
    store = _cache(cache)
    kept = _PANELS.get(id(study))
    if kept is not None and kept[0] is study:  # preloaded by the build's zygote
        panels = {c: client_panel(study, c, roles) for c in study.clients}
        if store is not None:  # the zygote only reads the cache: keep new panels for later
            for c, p in panels.items():
                key = _client_key(study, c, "panel", drivers=list(roles.drivers))
                if not store.has(key):
                    store.put(key, p)
        return panels
    return {c: _cached(study, store, c, "panel", lambda c=c: client_panel(study, c, roles),
                       drivers=list(roles.drivers))
            for c in study.clients}


# --------------------------------------------------------------------------- synthesis
@dataclass
class SynthesisInputs:
    """What the synthesis pools: every client's part, stacked in study order.

    Attributes
    ----------
    means : :func:`all_unit_means`.
    per_client_c : :func:`per_client_correlations` of the EX measures and the outcomes,
        the composite outcome included (:func:`exresearch.synthesis.add_composite`).
    per_client : its rows without the composite.
    paths_by_client : :func:`cross_lagged_by_client` of the EX index and the primary CX.
    within_by_client : :func:`exresearch.synthesis.within_paths_by_client` of the EX index
        and every outcome, stacked by outcome (column ``outcome``).
    utility : :func:`utility_by_client` of the EX index and every outcome.
    reliabilities : :func:`exresearch.synthesis.reliabilities` (composite included).
    icc2 : :func:`exresearch.synthesis.icc2_table`.
    """

    means: pd.DataFrame
    per_client: pd.DataFrame
    per_client_c: pd.DataFrame
    paths_by_client: pd.DataFrame
    within_by_client: pd.DataFrame
    utility: pd.DataFrame
    reliabilities: pd.DataFrame
    icc2: pd.DataFrame


def _synthesis_part(study, cid, panel, roles, *, n_boot, seed) -> dict:
    """One client's part of :class:`SynthesisInputs`, with client ids (no shown names)."""
    from .. import synthesis

    periods = list(study.config.periods)
    ex, cx = roles.ex, roles.primary_cx
    outcomes_c = [*roles.outcomes, synthesis.COMPOSITE]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        means = unit_means(panel, roles).assign(client_id=cid)
        means = means[["client_id", *[c for c in means.columns if c != "client_id"]]]
        means_c = synthesis.add_composite(means, outcomes=roles.outcomes,
                                          higher_is_better=roles.higher_is_better)
        one = {cid: panel}
        return {
            "means": means,
            "per_client_c": per_client_correlations(means_c, x=roles.ex_measures, y=outcomes_c),
            "paths": cross_lagged_by_client(one, x=ex, y=cx, periods=periods),
            "within": [synthesis.within_paths_by_client(one, x=ex, y=y, periods=periods)
                       for y in roles.outcomes],
            "utility": utility_by_client(means, x=ex, y=roles.outcomes, names={cid: cid},
                                         n_boot=n_boot, seed=seed),
            "reliabilities": synthesis.reliabilities(study, panels=one, roles=roles),
            "icc2": synthesis.icc2_table(study, panels=one, roles=roles),
        }


def _named(frame: pd.DataFrame, names: dict, *, column="client_id") -> pd.DataFrame:
    """``client`` (shown name) first instead of ``client_id``, as the stacked functions do."""
    out = frame.copy()
    out.insert(0, "client", out[column].map(names))
    return out.drop(columns=column)


def synthesis_inputs(study, *, roles=None, names=None, industries=None, n_boot=500,
                     seed=None, panels=None, cache=None) -> SynthesisInputs:
    """Every client's part of the synthesis, computed (or read from the cache) per client.

    Parameters
    ----------
    study : exresearch.study.Study
    roles : Roles, optional
        Default ``measure_roles(study.config)``.
    names : dict, optional
        client id -> shown name (default :func:`display_names`).
    industries : dict, optional
        client id -> industry (default from ``study.yml``).
    n_boot : int, default 500
        Bootstrap replicates of each client's top-vs-bottom-quarter comparison.
    seed : int, optional
        Seed of those bootstraps (the same for every client, as
        :func:`utility_by_client`).
    panels : dict, optional
        client id -> :func:`client_panel` already computed.
    cache : str, pathlib.Path, ResultCache or False, optional
        Default ``$EXRESEARCH_CACHE`` when set; False: no cache.

    Returns
    -------
    SynthesisInputs
        Identical to calling the stacked functions on the whole study.

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> from exresearch.study import load_study
    >>> study = load_study(ROOT / "tests" / "studies" / "valid")
    >>> got = synthesis_inputs(study, n_boot=100, seed=1, cache=False)
    >>> sorted(set(got.means["client_id"]))
    ['acme', 'beta-bank']
    """
    from .. import synthesis
    from .clients import display_names

    roles = roles or measure_roles(study.config)
    names = names if names is not None else display_names(study)
    cfg = study.config
    industries = industries if industries is not None else {
        c: cfg.client(c).industry for c in study.clients}
    store = _cache(cache)
    panels = panels if panels is not None else client_panels(study, roles=roles, cache=cache)
    parts = {c: _cached(study, store, c, "synthesis",
                        lambda c=c: _synthesis_part(study, c, panels[c], roles, n_boot=n_boot,
                                                    seed=seed),
                        n_boot=n_boot, seed=seed)
             for c in study.clients}

    def stack(name):
        return pd.concat([parts[c][name] for c in study.clients], ignore_index=True)

    def correlations(name):
        out = stack(name)
        out["industry"] = out["client_id"].map(industries)
        return _named(out, names)

    utility = stack("utility")
    utility["client"] = utility["client"].map(names)
    within = pd.concat([
        pd.concat([parts[c]["within"][i] for c in study.clients], ignore_index=True)
        .assign(outcome=y) for i, y in enumerate(roles.outcomes)], ignore_index=True)
    within["client"] = within["client"].map(names)
    reliab = stack("reliabilities")
    reliab["client"] = reliab["client"].map(names)
    icc2 = stack("icc2")
    icc2["client"] = icc2["client"].map(names)
    per_client_c = correlations("per_client_c")
    return SynthesisInputs(
        means=stack("means"),
        per_client=per_client_c[per_client_c["y"] != synthesis.COMPOSITE],
        per_client_c=per_client_c,
        paths_by_client=_named(stack("paths"), names), within_by_client=within,
        utility=utility, reliabilities=reliab, icc2=icc2)


# --------------------------------------------------------------------------- data quality
@dataclass
class QualityInputs:
    """What the data-quality report shows per client, stacked in study order.

    Attributes
    ----------
    counts : :func:`response_counts` per client, with ``client_id`` (as :func:`per_client`).
    missing : :func:`missingness` of the reported respondents, with ``client_id``.
    quality : :func:`quality_by_client`.
    suppressed : :func:`suppressed_units`, with ``client_id``.
    """

    counts: pd.DataFrame
    missing: pd.DataFrame
    quality: pd.DataFrame
    suppressed: pd.DataFrame


def _quality_part(study, cid, panel) -> dict:
    from ..aggregate import agreement
    from ..scoring import reliability
    from .panels import latest_rows

    cfg = study.config
    survey = reported_survey(study, cid, panel)
    latest = latest_rows(survey, periods=cfg.periods)
    return {
        "counts": response_counts(panel, periods=cfg.periods),
        "missing": missingness(survey, scales=cfg.scales),
        "alpha": reliability(survey, scales=cfg.scales, points=cfg.points),
        "agree": (agreement(latest, unit="unit_id", scales=cfg.scales,
                            points=cfg.points).reset_index() if len(latest) else None),
        "suppressed": suppressed_units(panel, min_group_size=cfg.min_group_size),
    }


def quality_inputs(study, *, roles=None, panels=None, cache=None) -> QualityInputs:
    """Every client's part of the data-quality report, computed (or cached) per client.

    Parameters
    ----------
    study : exresearch.study.Study
    roles : Roles, optional
    panels : dict, optional
        client id -> :func:`client_panel` already computed.
    cache : str, pathlib.Path, ResultCache or False, optional
        Default ``$EXRESEARCH_CACHE`` when set; False: no cache.

    Returns
    -------
    QualityInputs
        Identical to the per-client tables computed over the whole study.

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> from exresearch.study import load_study
    >>> study = load_study(ROOT / "tests" / "studies" / "valid")
    >>> sorted(set(quality_inputs(study, cache=False).quality["client_id"]))
    ['acme', 'beta-bank']
    """
    from .client import merge_quality, per_client

    roles = roles or measure_roles(study.config)
    store = _cache(cache)
    panels = panels if panels is not None else client_panels(study, roles=roles, cache=cache)
    parts = {c: _cached(study, store, c, "quality",
                        lambda c=c: _quality_part(study, c, panels[c]))
             for c in study.clients}
    alphas = per_client(study, lambda c: parts[c]["alpha"])
    agree = per_client(study, lambda c: parts[c]["agree"],
                       clients=[c for c in study.clients if parts[c]["agree"] is not None])
    return QualityInputs(
        counts=per_client(study, lambda c: parts[c]["counts"]),
        missing=per_client(study, lambda c: parts[c]["missing"]),
        quality=merge_quality(alphas, agree),
        suppressed=per_client(study, lambda c: parts[c]["suppressed"]))
