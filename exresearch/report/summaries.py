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
are applied after the cache. The parts are also kept stacked, one entry per kind and
parameters (:func:`_stacked_parts`): a rebuild takes the unchanged clients' rows from the
last build's stack and reads only the changed clients' parts (reading and stacking 300
parts of about ten small frames each was 1-2 s of CPU in each of the two kernels).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
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


def _client_files(study) -> dict:
    """Client id -> the hashes of its data files and of ``study.yml`` (what its keys
    hold), in one pass over ``study.hashes`` (a pass per client was 30 ms at 300)."""
    files: dict = {c: {} for c in study.clients}
    for k, v in study.hashes.items():
        if k == "study.yml":
            for held in files.values():
                held[k] = v
            continue
        parts = k.split("/", 2)  # clients/<id>/<file>
        if len(parts) == 3 and parts[0] == "clients" and parts[1] in files:
            files[parts[1]][k] = v
    return files


def _client_key(study, cid: str, what: str, *, files=None, **params) -> str:
    """The key of one client's entry ``what``; ``files``: :func:`_client_files` of the
    study, when already at hand."""
    from ..build.cache import cache_key

    files = (files if files is not None else _client_files(study))[cid]
    return cache_key(f"summary-{what}", {"client": cid, "files": files, **params})


def _cached(study, store, cid: str, what: str, compute, *, files=None, **params):
    """``compute()`` for one client, through ``store`` when there is one."""
    if store is None:
        return compute()
    key = _client_key(study, cid, what, files=files, **params)
    value = store.get(key)
    if value is None:
        value = compute()
        store.put(key, value)
    return value


# --------------------------------------------------------------------------- stacked parts
#: Bump when the layout of a stacked entry (:func:`_stacked_parts`) changes.
_STACK_FORMAT = 1


def _flat(part: dict) -> dict:
    """One client's part as name -> DataFrame or None; a list of frames (``within``, one
    per outcome) gives ``name[0]``, ``name[1]``, ..."""
    out = {}
    for name, value in part.items():
        if isinstance(value, list):
            out.update({f"{name}[{i}]": v for i, v in enumerate(value)})
        else:
            out[name] = value
    return out


def _same_columns(frame: pd.DataFrame, like: pd.DataFrame) -> bool:
    """Whether ``frame`` has the columns of ``like`` (names, order, dtype of the labels)
    and no ``attrs`` (``pd.concat`` keeps ``attrs`` only when every frame has the same)."""
    return (list(frame.columns) == list(like.columns)
            and frame.columns.dtype == like.columns.dtype and not frame.attrs)


@dataclass
class _Stack:
    """Every client's part, each name's frames stacked in study order.

    For each name of a part: ``frames`` is ``pd.concat`` of the clients' frames (a client
    whose frame is None left out, as ``pd.concat`` and :func:`per_client` leave it out;
    None when no client has one), ``rows`` each client's number of rows (-1: None),
    ``dtypes`` the distinct column dtypes of those frames and ``kinds`` each client's
    (its index in ``dtypes``, -1: None). ``parts`` holds the parts when they were all
    read (None when spliced), ``stackable`` whether every frame of a name had the same
    columns, without ``attrs`` (only such a stack is kept: :func:`_splice`).
    """

    clients: list
    keys: list | None
    frames: dict
    rows: dict
    kinds: dict
    dtypes: dict
    stackable: bool
    parts: dict | None = None

    @classmethod
    def of(cls, parts: dict, clients: list, keys) -> _Stack:
        flat = [_flat(parts[c]) for c in clients]
        names = list(flat[0]) if flat else []
        stackable = all(list(f) == names for f in flat)
        frames, rows, kinds, dtypes = {}, {}, {}, {}
        for name in names:
            got = [f.get(name) for f in flat]
            rows[name] = np.array([-1 if g is None else len(g) for g in got], dtype=np.int64)
            present = [g for g in got if g is not None]
            frames[name] = pd.concat(present, ignore_index=True) if present else None
            stackable = stackable and all(_same_columns(g, present[0]) for g in present)
            if stackable and keys is not None:  # (no cache: no stack kept)
                seen: dict = {}
                kinds[name] = np.array([-1 if g is None else
                                        seen.setdefault(tuple(g.dtypes), len(seen))
                                        for g in got], dtype=np.int64)
                dtypes[name] = list(seen)
        return cls(clients=list(clients), keys=keys, frames=frames, rows=rows, kinds=kinds,
                   dtypes=dtypes, stackable=stackable, parts=parts)

    def entry(self) -> dict:
        """What the cache keeps (the parts are kept under their own keys)."""
        return {"format": _STACK_FORMAT, "clients": self.clients, "keys": self.keys,
                "frames": self.frames, "rows": self.rows, "kinds": self.kinds,
                "dtypes": self.dtypes}


def _splice(old: dict, clients: list, keys: list, part) -> _Stack | None:
    """The stack of ``clients`` from the stack ``old`` of the last build: the rows of every
    client whose part key is the same, ``part(n)`` of the others (the ``n``-th client);
    None when that could differ from stacking every client's part.

    ``pd.concat`` of frames with the same columns gives each column the common dtype of
    the frames' dtypes (pandas 3: an empty frame's dtypes count too), so stacking every
    part gives the old stack's dtypes when the clients' frames have the same set of
    dtypes as before (e.g. an empty ``suppressed`` frame's object columns beside others'
    numbers); then the old stack's rows are those of the clients' frames cast as
    stacking casts them, and a new part is cast the same way. Otherwise (a dtype that
    is new or gone, other columns or names, nothing to reuse): None.
    """
    at = {k: i for i, k in enumerate(old["keys"])}
    pieces = []  # [i, j]: the old stack's clients i..j-1; int n: the n-th client's part
    for n, k in enumerate(keys):
        i = at.get(k)
        if i is None:
            pieces.append(n)
        elif pieces and isinstance(pieces[-1], list) and pieces[-1][1] == i:
            pieces[-1][1] = i + 1
        else:
            pieces.append([i, i + 1])
    if not any(isinstance(p, list) for p in pieces):
        return None
    new = {p: _flat(part(p)) for p in pieces if not isinstance(p, list)}
    if any(list(f) != list(old["frames"]) for f in new.values()):
        return None
    frames, rows, kinds = {}, {}, {}
    for name, stacked in old["frames"].items():
        old_rows, old_kinds, dtypes = old["rows"][name], old["kinds"][name], old["dtypes"][name]
        starts = np.concatenate([[0], np.cumsum(np.maximum(old_rows, 0))])
        got, counts, kind = [], [], []
        for p in pieces:
            if isinstance(p, list):
                if stacked is not None:
                    got.append(stacked.iloc[starts[p[0]]:starts[p[1]]])
                counts.append(old_rows[p[0]:p[1]])
                kind.append(old_kinds[p[0]:p[1]])
                continue
            frame = new[p][name]
            if frame is None:
                counts.append([-1])
                kind.append([-1])
                continue
            if stacked is None or not _same_columns(frame, stacked):
                return None
            now = tuple(frame.dtypes)
            if now not in dtypes:
                return None
            got.append(frame)
            counts.append([len(frame)])
            kind.append([dtypes.index(now)])
        rows[name] = np.concatenate(counts).astype(np.int64)
        kinds[name] = np.concatenate(kind).astype(np.int64)
        if set(kinds[name][kinds[name] >= 0].tolist()) != set(range(len(dtypes))):
            return None  # a dtype gone: stacking every part could give other dtypes
        frames[name] = (pd.concat(got, ignore_index=True)
                        if (rows[name] >= 0).any() else None)
        if frames[name] is not None and tuple(frames[name].dtypes) != tuple(stacked.dtypes):
            return None  # (the common dtype of the stack's and the new frames' dtypes)
    return _Stack(clients=list(clients), keys=list(keys), frames=frames, rows=rows,
                  kinds=kinds, dtypes=dict(old["dtypes"]), stackable=True)


def _stacked_parts(study, store, what: str, compute, **params) -> _Stack:
    """Every client's part of kind ``what`` (``compute(cid)``, through ``store``), stacked.

    With a cache, the stack of the last build is kept too (one entry per kind and
    parameters): the clients whose part key is the same take their rows from it, and
    only the others' parts are read or computed (after one client's data changed: one
    part, not 300 pickled parts and a ``pd.concat`` of each name's 300 frames). Without
    a usable stack, or when a splice could change a dtype (:func:`_splice`), every part
    is read and stacked, as without a cache.
    """
    clients = list(study.clients)
    if store is None:
        return _Stack.of({c: compute(c) for c in clients}, clients, None)
    from ..build.cache import cache_key

    files = _client_files(study)
    keys = [_client_key(study, c, what, files=files, **params) for c in clients]

    read: dict = {}  # parts read for a splice are not read again if it is given up

    def part(n):
        if n not in read:
            value = store.get(keys[n])
            if value is None:
                value = compute(clients[n])
                store.put(keys[n], value)
            read[n] = value
        return read[n]

    stack_key = cache_key(f"summary-stack-{what}", {"format": _STACK_FORMAT, **params})
    old = store.get(stack_key)
    found = None
    if isinstance(old, dict) and old.get("format") == _STACK_FORMAT:
        found = _splice(old, clients, keys, part)
    if found is None:
        found = _Stack.of({c: part(n) for n, c in enumerate(clients)}, clients, keys)
    if found.stackable and not (isinstance(old, dict) and old.get("keys") == keys):
        store.put(stack_key, found.entry())
    return found


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
            files = _client_files(study)
            for c, p in panels.items():
                key = _client_key(study, c, "panel", files=files, drivers=list(roles.drivers))
                if not store.has(key):
                    store.put(key, p)
        return panels
    files = _client_files(study) if store is not None else None
    return {c: _cached(study, store, c, "panel", lambda c=c: client_panel(study, c, roles),
                       files=files, drivers=list(roles.drivers))
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
    from ..riclpm import riclpm

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
        # each RI-CLPM once: EX -> primary CX is both the paths' model and the within
        # paths' first (its second fit was a quarter to a third of the demo's parts' CPU)
        fits = {y: riclpm(panel, x=ex, y=y, periods=periods)
                for y in dict.fromkeys([cx, *roles.outcomes])}
        return {
            "means": means,
            "per_client_c": per_client_correlations(means_c, x=roles.ex_measures, y=outcomes_c),
            "paths": cross_lagged_by_client(one, x=ex, y=cx, periods=periods,
                                            fits={cid: fits[cx]}),
            "within": [synthesis.within_paths_by_client(one, x=ex, y=y, periods=periods,
                                                        fits={cid: fits[y]})
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
    parts = _stacked_parts(
        study, store, "synthesis",
        lambda c: _synthesis_part(study, c, panels[c], roles, n_boot=n_boot, seed=seed),
        n_boot=n_boot, seed=seed)

    def stack(name):  # a shallow copy: the stack itself is cached (copy-on-write)
        return parts.frames[name].copy(deep=False)

    def correlations(name):
        out = stack(name)
        out["industry"] = out["client_id"].map(industries)
        return _named(out, names)

    utility = stack("utility")
    utility["client"] = utility["client"].map(names)
    within = pd.concat([stack(f"within[{i}]").assign(outcome=y)
                        for i, y in enumerate(roles.outcomes)], ignore_index=True)
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
    from .client import merge_quality

    roles = roles or measure_roles(study.config)
    store = _cache(cache)
    panels = panels if panels is not None else client_panels(study, roles=roles, cache=cache)
    parts = _stacked_parts(study, store, "quality",
                           lambda c: _quality_part(study, c, panels[c]))
    return QualityInputs(
        counts=_per_client(study, parts, "counts"),
        missing=_per_client(study, parts, "missing"),
        quality=merge_quality(_per_client(study, parts, "alpha"),
                              _per_client(study, parts, "agree")),
        suppressed=_per_client(study, parts, "suppressed"))


def _per_client(study, parts: _Stack, name: str) -> pd.DataFrame:
    """:func:`exresearch.report.per_client` of every client's frame ``name`` (a client
    whose frame is None left out), from the stacked parts."""
    from .client import per_client

    frame, rows = parts.frames[name], parts.rows[name]
    if frame is None:
        return pd.DataFrame()
    ids = [c for c, n in zip(parts.clients, rows, strict=True) if n >= 0]
    if "client_id" in frame.columns or not parts.stackable:
        # per_client stacks these client by client (client_id put in place, or columns
        # that differ): give it each client's own frame, or its rows of the stack
        if parts.parts is not None:
            return per_client(study, lambda c: parts.parts[c][name], clients=ids)
        starts = dict(zip(ids, np.cumsum(np.concatenate([[0], rows[rows >= 0]])).tolist(),
                          strict=False))
        ends = dict(zip(ids, np.cumsum(rows[rows >= 0]).tolist(), strict=True))
        return per_client(study, lambda c: frame.iloc[starts[c]:ends[c]], clients=ids)
    # per_client's own stacking of frames with the same columns, on the stack: the frames
    # stacked once, client_id added as one column (a shallow copy: the stack is cached)
    out = frame.copy(deep=False)
    out["client_id"] = pd.Series(np.repeat(ids, rows[rows >= 0]), dtype=str,
                                 index=out.index) if len(out) else pd.Series(dtype=str)
    return out
