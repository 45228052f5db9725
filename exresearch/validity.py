"""Validity harness: the error rates of the claims the reports make, on simulated clients.

A number that matches R can still carry a wrong sentence. Every verdict a report states
("EX leads", "a virtuous cycle", "consistent with a chain", "engagement adds nothing",
a significant link) is a test; this module measures its false-positive rate in worlds
where the claim is false (above all the *null* world: stable unit traits, no
cross-lagged effect), its power where it is true, and the coverage of its intervals,
each with its Monte Carlo error. ``make validity`` runs the full sizes and writes
``validity/results.md``; ``tests/test_validity.py`` runs a reduced version.

Registering a claim
-------------------
A claim is a function ``(client_data, truth) -> dict`` decorated with :func:`claim`::

    from exresearch.validity import claim

    @claim("engagement adds to CX", worlds=("null", "reciprocal"),
           targets={"null": {"claimed": (0.0, 0.05)}})
    def _engagement(panel, truth):
        res = incremental_validity(panel, ...)
        return {"claimed": bool(res.p_val < 0.05)}

``client_data`` is one simulated client's unit panel (:func:`exresearch.aggregate.unit_panel`
with ``errors=True``, so each scale's ``<scale>_error_var`` and ``ex_composite_error_var``,
plus ``ex_composite``, the mean of the six driver scales), ``truth`` a dict with the
client's entry of ``truth.json`` (``truth["client"]``), the study-level fields
(``truth["study"]``: options, pooled, outcomes...), the ``world`` name, ``n_units`` and
``periods``. The function returns named events: ``True``/``False`` (a claim made or
not, an interval covering the truth or not), or ``None`` when the event is undefined for
this client (left out of the rate). ``targets`` maps a world to ``{event: (low,
high)}``: the runner checks each rate against its interval widened by two Monte Carlo
standard errors. Claims live in modules listed in :data:`CLAIM_MODULES` (imported by
the runner, so their decorators run); add a module there to add claims.

A claim registered with ``level="study"`` gets a whole simulated study instead
(``{client id: panel}``, ``truth["clients"]``), for a verdict pooled across clients;
``summary`` rows name the events that are a statement's false-positive rate, power and
coverage, for the summary table at the top of ``validity/results.md``.

Running it
----------
:data:`PLAN` splits the full run into parts (a world, a size, some claims, a number of
replicates); ``python -m exresearch.validity --part NAME --resume`` runs one in chunks
into ``validity/parts/NAME.csv`` and carries on where it stopped,
``validity/run_parallel.sh`` runs them all (``make validity``) and merges them into
``validity/results.md``; :func:`loop_power` reads back the loop verdict's power at a
client's size.

Worlds
------
:data:`WORLDS` maps a name to :func:`exresearch.simulate.simulate_study` arguments
(a preset and options). Each replicate is one client of a simulated study, measured
and aggregated exactly as a real client (``load_study`` -> ``unit_panel``).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .exceptions import ParameterError

__all__ = ["claim", "claims", "run", "write_results", "client_samples", "study_samples",
           "combine", "read_results", "WORLDS", "WORLD_NOTES", "POWER_GRID", "RESULT_COLUMNS",
           "CLAIM_MODULES", "Claim", "PLAN", "loop_power", "power_table", "LOOP_POWER_TABLE"]

#: Simulated worlds: name -> keyword arguments of simulate_study (preset and options).
WORLDS = {
    "null": {"preset": "null"},
    "reciprocal": {"preset": "reciprocal"},
    "ex_leads": {"preset": "ex_leads"},
    "reciprocal_no_trend": {"preset": "reciprocal", "trend_sd": 0.0},
    "no_business_path": {"preset": "reciprocal", "cx_to_revenue_growth": 0.0,
                         "ex_to_revenue_growth": 0.0},
    "cx_leads": {"preset": "cx_leads"},
    "engagement_adds": {"preset": "reciprocal", "engagement_effect": 0.3},
    "independent": {"preset": "null", "trait_correlation": 0.0},
    "null_shared_shocks": {"preset": "null", "innovation_correlation": 0.5},
}

#: What each world plants, for the results' header.
WORLD_NOTES = {
    "null": "stable unit traits (half of each variance, EX and CX traits correlated), "
            "no lagged effect, no engagement effect",
    "reciprocal": "the default world: EX -> CX and CX -> EX within units, an EX trend, "
                  "stable traits",
    "ex_leads": "EX -> CX only",
    "reciprocal_no_trend": "both lagged paths, no EX trend",
    "no_business_path": "revenue growth depends on neither CX nor EX",
    "cx_leads": "CX -> EX only",
    "engagement_adds": "the reciprocal world where engagement moves CX beyond the drivers",
    "independent": "the null world with uncorrelated traits: EX and CX unrelated",
    "null_shared_shocks": "the null world where a unit's EX and CX innovations in the same "
                          "period correlate 0.5 (shared shocks: a bad quarter hits staff "
                          "and customers together), still no lagged effect",
}

#: Modules whose @claim functions the runner imports. Add yours here.
CLAIM_MODULES = ["exresearch.validity_claims", "exresearch.validity_drivers"]


@dataclass(frozen=True)
class Claim:
    """A registered claim: its name, function, worlds, targets and description."""

    name: str
    func: Callable
    worlds: tuple
    targets: dict = field(default_factory=dict)
    description: str = ""
    level: str = "client"
    summary: tuple = ()


_REGISTRY: dict[str, Claim] = {}


def claim(name, *, worlds=("null", "reciprocal"), targets=None, description=None,
          level="client", summary=()):
    """Register a claim function ``(client_data, truth) -> dict`` with the harness.

    Parameters
    ----------
    name : str
        Unique name shown in validity/results.md.
    worlds : sequence of str
        Keys of :data:`WORLDS` the claim is evaluated in.
    targets : dict, optional
        ``{world: {event: (low, high)}}``: acceptable rates.
    description : str, optional
        One sentence for the results table (default: the function's docstring's
        first line).
    level : {"client", "study"}
        ``"client"`` (default): the function gets one client's unit panel and each
        replicate is one simulated client. ``"study"``: the function gets a dict
        ``client id -> unit panel`` of a whole simulated study (``truth["clients"]``
        the clients' truth) and each replicate is one study, e.g. for a verdict
        pooled across clients.
    summary : sequence of dict
        Rows of the summary table at the top of validity/results.md, each
        ``{"statement": str, "fpr": (world, event), "power": (world, event),
        "coverage": (world, event)}`` (any of the three may be left out): which
        event's rate is the statement's false-positive rate, power, coverage.

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.

    Examples
    --------
    >>> from exresearch.validity import claim, claims
    >>> @claim("doc example: always silent", worlds=("null",),
    ...        targets={"null": {"claimed": (0.0, 0.05)}})
    ... def _silent(panel, truth):
    ...     "Never claims anything."
    ...     return {"claimed": False}
    >>> claims().set_index("name").loc["doc example: always silent", "worlds"]
    'null'
    """
    if not isinstance(name, str) or not name:
        raise ParameterError(f"`name` must be a non-empty string, but {name!r} was passed")
    worlds = tuple(worlds)
    unknown = [w for w in worlds if w not in WORLDS]
    if unknown:
        raise ParameterError(
            f"`worlds` must be keys of WORLDS {list(WORLDS)}, but {unknown} was passed")
    targets = dict(targets or {})
    if set(targets) - set(worlds):
        raise ParameterError(
            f"`targets` names worlds {sorted(set(targets) - set(worlds))} that are not in "
            f"`worlds` {list(worlds)}")

    if level not in ("client", "study"):
        raise ParameterError(
            f"`level` must be one of ['client', 'study'], but {level!r} was passed")
    summary = tuple(dict(row) for row in summary)
    for row in summary:
        bad = [w for key in ("fpr", "power", "coverage") if key in row
               for w in [row[key][0]] if w not in worlds]
        if "statement" not in row or bad:
            raise ParameterError(
                "each `summary` row needs a 'statement' and (world, event) pairs of the "
                f"claim's worlds {list(worlds)}, but {row!r} was passed")

    def deco(func):
        desc = description
        if desc is None:  # the docstring's first paragraph
            doc = (func.__doc__ or "").strip().split("\n\n")[0]
            desc = " ".join(line.strip() for line in doc.splitlines())
        _REGISTRY[name] = Claim(name=name, func=func, worlds=worlds, targets=targets,
                                description=desc, level=level, summary=summary)
        return func

    return deco


def _load_claim_modules():
    import importlib

    for mod in CLAIM_MODULES:
        importlib.import_module(mod)


def claims() -> pd.DataFrame:
    """The registered claims: ``name, level, worlds, targets, description`` (one row each)."""
    _load_claim_modules()
    return pd.DataFrame([{"name": c.name, "level": c.level, "worlds": ", ".join(c.worlds),
                          "targets": "; ".join(f"{w}: " + ", ".join(
                              f"{e} in [{lo:g}, {hi:g}]" for e, (lo, hi) in t.items())
                              for w, t in c.targets.items()),
                          "description": c.description} for c in _REGISTRY.values()],
                        columns=["name", "level", "worlds", "targets", "description"])


def _simulate(world, *, n_clients, n_units, n_periods, seed):
    """One simulated study of ``world``: (panels by client, truth.json)."""
    import json

    from .aggregate import unit_panel
    from .simulate import DRIVERS, simulate_study
    from .study import load_study

    with tempfile.TemporaryDirectory(prefix="exresearch-validity-") as tmp:
        path = simulate_study(Path(tmp) / "s", n_clients=n_clients, n_units=n_units,
                              n_periods=n_periods, seed=int(seed), **WORLDS[world])
        truth = json.loads((path / "truth.json").read_text(encoding="utf-8"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = load_study(path)
            # with each unit mean's sampling variance (<scale>_error_var), the
            # composite's from the respondents' mean of the six drivers
            panels = {c: unit_panel(study, c, errors=True,
                                    composites={"ex_composite": list(DRIVERS)})
                      for c in study.clients}
    for panel in panels.values():
        panel["ex_composite"] = panel[list(DRIVERS)].mean(axis=1, skipna=False)
    return panels, truth


def _check_world(world):
    if world not in WORLDS:
        raise ParameterError(f"`world` must be one of {list(WORLDS)}, but {world!r} was passed")


def client_samples(world, *, n_units, n_periods=4, n_reps, seed, batch=50):
    """Simulated clients of one world: yields ``(panel, truth)`` pairs.

    Clients are simulated ``batch`` at a time as studies (``simulate_study`` into a
    temporary folder, ``load_study``, ``unit_panel``), so every replicate goes
    through the same measurement, suppression and aggregation as a real client.

    Parameters
    ----------
    world : str
        Key of :data:`WORLDS`.
    n_units, n_periods : int
        Units per client and periods.
    n_reps : int
        Clients to yield.
    seed : int
        Seed of the first study; batch b uses ``seed + b``.
    batch : int
        Clients per simulated study.
    """
    _check_world(world)
    done, b = 0, 0
    while done < n_reps:
        k = min(batch, n_reps - done)
        panels, truth = _simulate(world, n_clients=k, n_units=n_units, n_periods=n_periods,
                                  seed=int(seed) + b)
        study_truth = {key: v for key, v in truth.items() if key != "clients"}
        for tc in truth["clients"]:
            yield panels[tc["client_id"]], {"client": tc, "study": study_truth,
                                            "world": world, "n_units": n_units,
                                            "periods": truth["periods"]}
        done += k
        b += 1


def study_samples(world, *, n_clients, n_units, n_periods=4, n_reps, seed):
    """Simulated studies of one world: yields ``(panels, truth)`` pairs.

    Parameters
    ----------
    world : str
        Key of :data:`WORLDS`.
    n_clients, n_units, n_periods : int
        Clients per study, units per client, periods.
    n_reps : int
        Studies to yield; study r uses ``seed + r``.
    seed : int

    Returns
    -------
    iterator of (dict, dict)
        ``panels`` (client id -> unit panel with ``ex_composite``) and ``truth``:
        ``clients`` (truth.json's client entries), ``study`` (the study-level fields),
        ``world``, ``n_units``, ``n_clients``, ``periods``.
    """
    _check_world(world)
    for r in range(n_reps):
        panels, truth = _simulate(world, n_clients=n_clients, n_units=n_units,
                                  n_periods=n_periods, seed=int(seed) + r)
        yield panels, {"clients": truth["clients"],
                       "study": {key: v for key, v in truth.items() if key != "clients"},
                       "world": world, "n_units": n_units, "n_clients": n_clients,
                       "periods": truth["periods"]}


def _mc_se(p, n):
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")


def _sizes(value, name):
    sizes = (value,) if isinstance(value, int | np.integer) else tuple(value)
    if not sizes or not all(isinstance(v, int | np.integer) and v > 0 for v in sizes):
        raise ParameterError(f"`{name}` must be a positive integer or a sequence of them, "
                             f"but {value!r} was passed")
    return tuple(int(v) for v in sizes)


def _base_seed(seed, world, n_clients, n_units, n_periods):
    """The first seed of one cell: the same whichever other cells run beside it."""
    import zlib

    key = f"{world}|{n_clients}|{n_units}|{n_periods}".encode()
    return int(seed) + 10_000 * (zlib.crc32(key) % 100_000)


#: Columns of :func:`run` and :func:`combine` results.
RESULT_COLUMNS = ["claim", "world", "n_clients", "n_units", "n_periods", "event", "reps", "n",
                  "rate", "mc_se", "target_low", "target_high", "ok", "description",
                  "seconds"]
_KEYS = ["claim", "world", "n_clients", "n_units", "n_periods", "event"]


def _is_ok(rate, se, lo, hi, n):
    if not np.isfinite(lo) or not n:
        return np.nan
    return bool(lo - 2 * se - 1e-12 <= rate <= hi + 2 * se + 1e-12)


def run(names=None, *, worlds=None, n_units=(30, 100), n_periods=4, n_clients=(10, 20),
        n_reps=200, seed=1, batch=50, progress=False) -> pd.DataFrame:
    """Evaluate registered claims on simulated clients (and studies).

    Parameters
    ----------
    names : list of str, optional
        Claims to run (default all registered).
    worlds : list of str, optional
        Restrict to these worlds (default each claim's own).
    n_units : int or sequence of int
        Client sizes (units per client).
    n_periods : int or sequence of int
        Periods per client.
    n_clients : int or sequence of int
        Clients per simulated study, for claims registered with ``level="study"``.
    n_reps : int
        Replicates per world and size: clients for client-level claims, studies for
        study-level claims.
    seed : int
        Base seed; each cell (world, clients, units, periods) starts at its own seed
        derived from ``seed`` and the cell, so adding a claim or a size does not change
        the clients the others see.
    batch : int
        Clients per simulated study of client-level claims.
    progress : bool
        Print one line per cell to stderr.

    Returns
    -------
    pandas.DataFrame
        One row per (claim, world, n_clients, n_units, n_periods, event), columns
        :data:`RESULT_COLUMNS`: ``n_clients`` 1 for a client's verdict, the clients
        per study for a pooled one; ``reps`` the replicates run, ``n`` those where the
        event was defined, ``rate`` its share of True, ``mc_se`` the Monte Carlo
        standard error sqrt(rate (1 - rate) / n), ``ok`` whether the rate lies within
        the target widened by 2 ``mc_se`` (NaN without a target), ``seconds`` the
        claim's analysis time in the cell.
    """
    _load_claim_modules()
    if names is None:
        selected = list(_REGISTRY.values())
    else:
        missing = [n for n in names if n not in _REGISTRY]
        if missing:
            raise ParameterError(
                f"unknown claim(s) {missing}; registered claims are {list(_REGISTRY)}")
        selected = [_REGISTRY[n] for n in names]
    unit_sizes = _sizes(n_units, "n_units")
    period_sizes = _sizes(n_periods, "n_periods")
    study_sizes = _sizes(n_clients, "n_clients")
    all_worlds = sorted({w for c in selected for w in c.worlds if worlds is None or w in worlds},
                        key=list(WORLDS).index)
    rows = []
    for world in all_worlds:
        for level, k_sizes in (("client", (1,)), ("study", study_sizes)):
            here = [c for c in selected if world in c.worlds and c.level == level]
            if not here:
                continue
            for k in k_sizes:
                for size in unit_sizes:
                    for periods in period_sizes:
                        rows += _run_cell(here, world, level, k, size, periods, n_reps,
                                          _base_seed(seed, world, k, size, periods), batch,
                                          progress)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _run_cell(here, world, level, k, size, periods, n_reps, seed, batch, progress):
    t0 = time.time()
    events = {c.name: {} for c in here}
    timing = dict.fromkeys((c.name for c in here), 0.0)
    samples = (client_samples(world, n_units=size, n_periods=periods, n_reps=n_reps,
                              seed=seed, batch=batch) if level == "client" else
               study_samples(world, n_clients=k, n_units=size, n_periods=periods,
                             n_reps=n_reps, seed=seed))
    for data, truth in samples:
        for c in here:
            t1 = time.time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = c.func(data, truth)
            timing[c.name] += time.time() - t1
            for event, value in out.items():
                events[c.name].setdefault(event, [])
                if value is not None:
                    events[c.name][event].append(bool(value))
    rows = []
    for c in here:
        for event, vals in events[c.name].items():
            n = len(vals)
            rate = float(np.mean(vals)) if n else float("nan")
            se = _mc_se(rate, n)
            lo, hi = c.targets.get(world, {}).get(event, (np.nan, np.nan))
            rows.append({"claim": c.name, "world": world, "n_clients": k, "n_units": size,
                         "n_periods": periods, "event": event, "reps": n_reps, "n": n,
                         "rate": rate, "mc_se": se, "target_low": lo, "target_high": hi,
                         "ok": _is_ok(rate, se, lo, hi, n), "description": c.description,
                         "seconds": timing[c.name]})
    if progress:
        what = "clients" if level == "client" else f"studies of {k} clients"
        print(f"validity: {world}, {size} units, {periods} periods, {n_reps} {what}: "
              f"{time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return rows


def read_results(path) -> pd.DataFrame:
    """Read a results CSV written by :func:`run` / ``python -m exresearch.validity``.

    CSVs from before the ``n_clients``, ``n_periods`` and ``reps`` columns existed
    are read as one-client, 4-period results with ``reps = n``.
    """
    # "null" is a world name, not a missing value
    res = pd.read_csv(path, keep_default_na=False, na_values=[""])
    if "n_clients" not in res.columns:
        res.insert(2, "n_clients", 1)
    if "n_periods" not in res.columns:
        res.insert(4, "n_periods", 4)
    if "reps" not in res.columns:
        res.insert(6, "reps", res["n"])
    return res[RESULT_COLUMNS]


def combine(results) -> pd.DataFrame:
    """Pool :func:`run` results of separate runs (chunks, parallel parts) event by event.

    Rates are weighted by their replicates; Monte Carlo SEs and ``ok`` are recomputed.
    """
    res = pd.concat(list(results), ignore_index=True)
    res["hits"] = res["rate"].fillna(0) * res["n"]
    out = res.groupby(_KEYS, sort=False).agg(
        reps=("reps", "sum"), n=("n", "sum"), hits=("hits", "sum"),
        target_low=("target_low", "first"), target_high=("target_high", "first"),
        description=("description", "first"), seconds=("seconds", "sum")).reset_index()
    out["hits"] = out["hits"].round()
    out["rate"] = np.where(out["n"] > 0, out["hits"] / out["n"].where(out["n"] > 0, 1), np.nan)
    out["mc_se"] = [_mc_se(r, n) for r, n in zip(out["rate"], out["n"], strict=True)]
    out["ok"] = [_is_ok(r, se, lo, hi, n)
                 for r, se, lo, hi, n in zip(out["rate"], out["mc_se"], out["target_low"],
                                             out["target_high"], out["n"], strict=True)]
    order = {w: i for i, w in enumerate(WORLDS)}
    out = out.sort_values(["world", "n_clients", "n_units", "n_periods"],
                          key=lambda c: c.map(order) if c.name == "world" else c,
                          kind="stable")
    return out[RESULT_COLUMNS].reset_index(drop=True)


#: The claim, world and events of the power grid in validity/results.md.
POWER_GRID = {"claim": "loop label (RI-CLPM, the reports' method)",
              "events": ("directional", "reciprocal")}


#: Client sizes (units) in the summary table of validity/results.md.
SUMMARY_UNITS = (30, 100)


def _fmt_rate(g):
    if g is None or not len(g) or not g["n"].iloc[0]:
        return "not run"
    r = g.iloc[0]
    return f"{100 * r['rate']:.1f}% ± {100 * r['mc_se']:.1f} ({int(r['n'])})"


def _summary_tables(results) -> list:
    """The summary tables at the top of validity/results.md (one row per statement)."""
    _load_claim_modules()
    lines = []
    base = results[results["n_periods"] == 4]
    for level in ("client", "study"):
        claims_here = [c for c in _REGISTRY.values() if c.level == level and c.summary
                       and c.name in set(base["claim"])]
        if not claims_here:
            continue
        sub = base[base["claim"].isin([c.name for c in claims_here])]
        # the same columns for every claim of a level: 30 and 100 units (other sizes are in
        # the power grid), or the study designs
        designs = sorted({(int(k), int(u)) for k, u in zip(sub["n_clients"], sub["n_units"],
                                                            strict=True)
                          if level == "study" or u in SUMMARY_UNITS})
        heads = [f"{u} units" if k == 1 else f"{k} clients × {u} units" for k, u in designs]
        cols = [f"FPR {h}" for h in heads] + [f"power {h}" for h in heads]
        cols += [f"coverage {h}" for h in heads]
        lines += ["", "| claim | worlds | " + " | ".join(cols) + " | ok |",
                  "| --- | --- | " + " | ".join("---" for _ in cols) + " | --- |"]
        for c in claims_here:
            mine = sub[sub["claim"] == c.name]
            for row in c.summary:
                cells, oks = [], []
                for key in ("fpr", "power", "coverage"):
                    for k, u in designs:
                        if key not in row:
                            cells.append("")
                            continue
                        world, event = row[key]
                        g = mine[(mine["world"] == world) & (mine["event"] == event)
                                 & (mine["n_clients"] == k) & (mine["n_units"] == u)]
                        cells.append(_fmt_rate(g))
                        oks += [bool(v) for v in g["ok"] if isinstance(v, bool | np.bool_)]
                ok = "" if not oks else ("yes" if all(oks) else "**NO**")
                worlds = "; ".join(f"{word} {row[key][0]}" for key, word in (
                    ("fpr", "false in"), ("power", "true in"), ("coverage", "in"))
                    if key in row)
                lines.append(f"| {row['statement']} | {worlds} | " + " | ".join(cells)
                             + f" | {ok} |")
    return lines


def _power_grid(results) -> list:
    """The units x periods table of the loop verdict (validity/results.md)."""
    g = results[(results["claim"] == POWER_GRID["claim"]) & (results["n_clients"] == 1)
                & results["event"].isin(POWER_GRID["events"])]
    lines = []
    for world in pd.unique(g["world"]):
        w = g[g["world"] == world]
        if w["n_periods"].nunique() < 2 and w["n_units"].nunique() < 3:
            continue
        periods = sorted(w["n_periods"].unique())
        for event in POWER_GRID["events"]:
            e = w[w["event"] == event]
            if not len(e):
                continue
            lines += ["", f"`{event}` in the `{world}` world (rate ± MC SE (clients)):", "",
                      "| units | " + " | ".join(f"{p} periods" for p in periods) + " |",
                      "| --- | " + " | ".join("---" for _ in periods) + " |"]
            for u in sorted(e["n_units"].unique()):
                lines.append(f"| {u} | " + " | ".join(
                    _fmt_rate(e[(e["n_units"] == u) & (e["n_periods"] == p)])
                    for p in periods) + " |")
    return lines


def write_results(results, path="validity/results.md", *, command=None, settings=None):
    """Write :func:`run` results as the Markdown of ``validity/results.md``.

    A summary table first (one row per statement a report makes, from the claims'
    ``summary``: false-positive rate, power and coverage at 30 and 100 units, and for
    pooled claims per study design), then the loop verdict's power at typical sizes
    (units x periods, when those cells were run), then every event.

    Parameters
    ----------
    results : pandas.DataFrame
        :func:`run` or :func:`combine` output.
    path : str or Path
        File to write (its folder is created).
    command : str, optional
        The command that produced the results (recorded in the file).
    settings : dict, optional
        Run settings (n_reps, seed, ...) recorded in the file.

    Returns
    -------
    Path
    """
    from . import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    results = results.copy()
    for col, default in (("n_clients", 1), ("n_periods", 4)):
        if col not in results.columns:
            results[col] = default
    lines = [
        "# Validity of the claims the reports make",
        "",
        "Written by `exresearch.validity` (`make validity`); do not edit by hand.",
        "Each rate is the share of simulated clients (or, for pooled claims, studies) where",
        "the event happened, ± its Monte Carlo standard error, with the number of clients",
        "(studies) in brackets. In a world where the claim is false the rate is its",
        "false-positive rate (FPR), where it is true its power, for an interval its coverage.",
        "`ok`: every rate with a target lies within the target widened by two Monte Carlo SEs.",
        "",
        f"- exresearch {__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}; written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
    ]
    if command:
        lines.append(f"- command: `{command}`")
    if settings:
        lines.append("- settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()))
    lines += ["- worlds (simulate_study arguments):"]
    lines += [f"  - `{w}` {WORLDS[w]}: {WORLD_NOTES.get(w, '')}"
              for w in pd.unique(results["world"]) if w in WORLDS]
    summary = _summary_tables(results)
    if summary:
        lines += ["", "## Summary (4 periods)"] + summary
    grid = _power_grid(results)
    if grid:
        lines += ["", "## The loop verdict at typical sizes",
                  "", f"`{POWER_GRID['claim']}`, one client, by units and periods."] + grid
    lines += ["", "## Every event", "",
              "| claim | world | clients | units | periods | event | reps | rate | MC SE "
              "| target | ok |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results.itertuples():
        target = (f"{r.target_low:g}-{r.target_high:g}" if np.isfinite(r.target_low) else "")
        ok = "" if not isinstance(r.ok, bool | np.bool_) else ("yes" if r.ok else "**NO**")
        lines.append(f"| {r.claim} | {r.world} | {r.n_clients} | {r.n_units} | "
                     f"{r.n_periods} | {r.event} | {r.n} | {r.rate:.3f} | {r.mc_se:.3f} | "
                     f"{target} | {ok} |")
    lines += ["", "## Claims", ""]
    for name, g in results.groupby("claim", sort=False):
        cells = g.groupby(["world", "n_clients", "n_units", "n_periods"])["seconds"].first()
        lines.append(f"- **{name}**: {g['description'].iloc[0]} "
                     f"({cells.sum():.0f} s of analysis in this run)")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    return path


# --------------------------------------------------------------------------- planning

#: The committed power table of the loop verdict (written by ``make validity``:
#: ``--power-table``), read by :func:`loop_power`.
LOOP_POWER_TABLE = Path(__file__).resolve().parent / "loop_power.csv"


def power_table(results) -> pd.DataFrame:
    """The rows of :data:`POWER_GRID` in ``results``: the table :func:`loop_power` reads."""
    keep = ((results["claim"] == POWER_GRID["claim"]) & (results["n_clients"] == 1)
            & results["event"].isin(POWER_GRID["events"]))
    cols = ["world", "n_units", "n_periods", "event", "n", "rate", "mc_se"]
    return results.loc[keep, cols].reset_index(drop=True)


def loop_power(*, n_units, n_periods, table=None) -> pd.DataFrame:
    """How often the loop verdict names a direction at a client's size, as measured.

    Reads the power grid of the validity harness (simulated clients of the
    ``reciprocal`` world, where both within-unit paths exist, and of the ``null``
    world, where neither does) and returns the measured cell closest to the asked size
    *from below*: power grows with units and with periods (the t reference's degrees of
    freedom, units - 13, no longer shrink with periods as they did when the wave means
    were counted: validity/calibrate_riclpm.md), so a cell no larger than the client's
    is a conservative figure where the grid is monotone; read a cell whose Monte Carlo
    SE is large with care. A report that says a path "was not detected" can
    cite it.

    Parameters
    ----------
    n_units, n_periods : int
        The client's units and periods.
    table : pandas.DataFrame, optional
        :func:`power_table` output; default the committed :data:`LOOP_POWER_TABLE`.

    Returns
    -------
    pandas.DataFrame
        One row: ``n_units, n_periods`` (asked), ``grid_units, grid_periods`` (the
        measured cell used; NaN when the client is smaller than every cell),
        ``power_direction`` (share of reciprocal-world clients given a directional
        label) and ``power_direction_se``, ``power_reciprocal`` and
        ``power_reciprocal_se`` (the reciprocal loop named), ``fpr_direction`` and
        ``fpr_direction_se`` (a direction named in the null world; NaN if not
        measured at that cell), ``clients`` (simulated reciprocal-world clients).

    Examples
    --------
    >>> from exresearch.validity import loop_power
    >>> res = loop_power(n_units=120, n_periods=5)
    >>> res.loc[0, ["grid_units", "grid_periods"]].tolist()
    [100, 4]
    >>> bool(0 <= res.loc[0, "power_direction"] <= 1)
    True
    """
    for name, value in (("n_units", n_units), ("n_periods", n_periods)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ParameterError(f"`{name}` must be a positive integer, but {value!r} was passed")
    if table is None:
        table = pd.read_csv(LOOP_POWER_TABLE, keep_default_na=False, na_values=[""])
    rec = table[table["world"] == "reciprocal"]
    cells = rec[(rec["n_units"] <= n_units) & (rec["n_periods"] <= n_periods)]
    out = {"n_units": int(n_units), "n_periods": int(n_periods), "grid_units": np.nan,
           "grid_periods": np.nan}
    keys = ["power_direction", "power_direction_se", "power_reciprocal",
            "power_reciprocal_se", "fpr_direction", "fpr_direction_se", "clients"]
    out.update(dict.fromkeys(keys, np.nan))
    if len(cells):
        # the largest cell below: most units first, then most periods
        u, t = max(zip(cells["n_units"], cells["n_periods"], strict=True))
        out.update(grid_units=int(u), grid_periods=int(t))

        def pick(world, event):
            g = table[(table["world"] == world) & (table["n_units"] == u)
                      & (table["n_periods"] == t) & (table["event"] == event)]
            return (float(g["rate"].iloc[0]), float(g["mc_se"].iloc[0]),
                    int(g["n"].iloc[0])) if len(g) else (np.nan, np.nan, np.nan)

        out["power_direction"], out["power_direction_se"], out["clients"] = pick(
            "reciprocal", "directional")
        out["power_reciprocal"], out["power_reciprocal_se"], _ = pick("reciprocal",
                                                                      "reciprocal")
        out["fpr_direction"], out["fpr_direction_se"], _ = pick("null", "directional")
    return pd.DataFrame([out], columns=["n_units", "n_periods", "grid_units", "grid_periods",
                                        *keys])


# --------------------------------------------------------------------------- the plan

_LOOP = "loop label (RI-CLPM, the reports' method)"
_OLD = "loop label (plain cross-lagged regression, before issue 15)"
_LAG = "lagged correlation CI"
_MED = "mediation: chain EX -> CX -> revenue growth"
_ENG = "engagement adds to CX beyond the drivers"
_LINK = "significant link EX ~ CX (one period)"
_ACT = "act first (one driver model)"
_LAVAAN = "within-unit paths (RI-CLPM with lavaan's defaults, before calibration)"
_POOL = "pooled loop verdict (synthesis: within-unit paths pooled over clients)"


def _part(name, claims_, worlds, reps, *, units=30, periods=4, clients=None, chunk=10):
    return {"name": name, "claims": list(claims_), "worlds": list(worlds), "units": units,
            "periods": periods, "clients": clients, "reps": reps, "chunk": chunk}


#: The parts ``make validity`` runs (``validity/run_parallel.sh``), each into
#: ``validity/parts/<name>.csv``, in chunks so that a part can be stopped and resumed
#: (``--part NAME --resume``). ``loop-*``, ``grid-*`` and ``pooled-*`` depend on the loop
#: estimator (riclpm); ``before-*``, ``other-*`` and ``drivers-*`` do not.
PLAN = [
    *(_part(f"loop-{w}-{u}", [_LOOP], [w], r, units=u, chunk=50)
      for w, r in (("null", 400), ("reciprocal", 200)) for u in (30, 100)),
    # the estimators before issue 15's fixes, on the first clients of the same cells (the
    # same seeds): kept to show why they were replaced
    *(_part(f"before-{w}-{u}", [_OLD] + ([_LAVAAN] if w == "null" else []), [w], r, units=u)
      for w, r in (("null", 150), ("reciprocal", 100)) for u in (30, 100)),
    *(_part(f"loop-null_shared_shocks-{u}", [_LOOP], ["null_shared_shocks"], 200, units=u,
            chunk=50)
      for u in (30, 100)),
    *(_part(f"loop-{w}-{u}", [_LOOP], [w], 40, units=u)
      for w in ("ex_leads", "cx_leads", "reciprocal_no_trend") for u in (30, 100)),
    *(_part(f"pooled-{w}-{k}x30", [_POOL], [w], r, clients=k, chunk=5)
      for w, k, r in (("null", 10, 60), ("reciprocal", 10, 40), ("null", 20, 20),
                      ("reciprocal", 20, 20), ("ex_leads", 10, 20),
                      ("reciprocal_no_trend", 10, 20))),
    *(_part(f"other-{w}-{u}", [_LAG, _ENG, _LINK] + ([_MED] if w == "reciprocal" else []),
            [w], r, units=u)
      for w, u, r in (("null", 30, 200), ("null", 100, 150), ("reciprocal", 30, 150),
                      ("reciprocal", 100, 100))),
    *(_part(f"other-{w}-{u}", [c], [w], 200, units=u)
      for w, c in (("no_business_path", _MED), ("engagement_adds", _ENG),
                   ("independent", _LINK)) for u in (30, 100)),
    *(_part(f"drivers-{w}-{u}", [_ACT], [w], 200, units=u)
      for w in ("null", "reciprocal") for u in (30, 100)),
    *(_part(f"grid-{w}-{u}-p{t}", [_LOOP], [w], 40, units=u, periods=t)
      for w in ("reciprocal", "null") for u in (30, 60, 100, 200) for t in (4, 6, 8)
      if (u, t) not in ((30, 4), (100, 4)) and (w == "reciprocal" or (u, t) in (
          (30, 8), (100, 8)))),
]


def _plan_part(name):
    for part in PLAN:
        if part["name"] == name:
            return part
    raise ParameterError(f"`--part` must be one of {[p['name'] for p in PLAN]}, but {name!r} "
                         "was passed")


def main(argv=None) -> int:
    """``python -m exresearch.validity``: run the harness and write validity/results.md."""
    p = argparse.ArgumentParser(prog="python -m exresearch.validity",
                                description="Measure the error rates of the reports' claims.")
    p.add_argument("--reps", type=int, default=400,
                   help="clients (studies, for pooled claims) per world and size")
    p.add_argument("--units", type=int, nargs="+", default=[30, 100])
    p.add_argument("--periods", type=int, nargs="+", default=[4])
    p.add_argument("--clients", type=int, nargs="+", default=[10, 20],
                   help="clients per simulated study, for pooled (study-level) claims")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--claims", nargs="+", default=None)
    p.add_argument("--worlds", nargs="+", default=None, help="restrict to these worlds")
    p.add_argument("--out", default="validity/results.md")
    p.add_argument("--chunk", type=int, default=0,
                   help="run in chunks of this many replicates, saving the CSV after each")
    p.add_argument("--resume", action="store_true",
                   help="with --chunk: keep the chunks already in the CSV and run the rest")
    p.add_argument("--merge", nargs="+", default=None, metavar="CSV",
                   help="write --out from the CSV files of earlier (partial, parallel) runs")
    p.add_argument("--power-table", default=None, metavar="CSV",
                   help="also write the loop verdict's power grid (what loop_power reads)")
    p.add_argument("--part", default=None,
                   help="run one part of PLAN into validity/parts/NAME.csv (with --resume)")
    p.add_argument("--list-parts", action="store_true",
                   help="print the names of PLAN's parts, one a line")
    p.add_argument("--prefix", default="", help="with --list-parts: names starting with this")
    args = p.parse_args(argv)
    if args.list_parts:
        print("\n".join(q["name"] for q in PLAN if q["name"].startswith(args.prefix)))
        return 0
    if args.part:
        part = _plan_part(args.part)
        args.claims, args.worlds = part["claims"], part["worlds"]
        args.units, args.periods = [part["units"]], [part["periods"]]
        args.clients = [part["clients"] or 10]
        args.reps = part["reps"] if "--reps" not in (argv or sys.argv) else args.reps
        args.chunk = args.chunk or part["chunk"]
        if args.out == "validity/results.md":
            args.out = f"validity/parts/{part['name']}.md"
    csv = Path(args.out).with_suffix(".csv")
    if args.merge:
        res = combine([read_results(f) for f in args.merge])
    elif args.chunk:
        # in chunks of --chunk replicates (seeds seed, seed + 100, ...), the CSV rewritten
        # after each, so a run stopped early leaves every finished chunk and --resume
        # carries on from there
        parts, done = [], 0
        if args.resume and csv.exists():
            prev = read_results(csv)
            done = int(prev["reps"].min()) if len(prev) else 0
            if done % args.chunk:
                raise ParameterError(
                    f"--resume needs the --chunk of the first run: {csv} holds {done} "
                    f"replicates, not a multiple of --chunk {args.chunk}")
            parts = [prev] if done else []
        t0, start = time.time(), done
        while done < args.reps:
            k = min(args.chunk, args.reps - done)
            parts.append(run(args.claims, worlds=args.worlds, n_units=args.units,
                             n_periods=args.periods, n_clients=args.clients, n_reps=k,
                             seed=args.seed + 100 * (done // args.chunk), batch=k))
            done += k
            res = combine(parts)
            csv.parent.mkdir(parents=True, exist_ok=True)
            res.to_csv(csv, index=False)
            spent = time.time() - t0
            left = spent / (done - start) * (args.reps - done)
            print(f"validity: {done} of {args.reps} replicates, {spent:.0f} s, "
                  f"about {left:.0f} s to go", file=sys.stderr, flush=True)
        if done == start:
            res = combine(parts)
    else:
        res = run(args.claims, worlds=args.worlds, n_units=args.units, n_periods=args.periods,
                  n_clients=args.clients, n_reps=args.reps, seed=args.seed, progress=True)
    words = list(argv if argv is not None else sys.argv[1:])
    if args.merge:  # name the folders, not every file
        folders = sorted({str(Path(f).parent) for f in args.merge})
        i = words.index("--merge")
        words[i + 1:i + 1 + len(args.merge)] = [f"{d}/*.csv" for d in folders]
    cmd = "python -m exresearch.validity " + " ".join(words)
    settings = None if args.merge else {"reps": args.reps, "units": args.units,
                                        "periods": args.periods, "clients": args.clients,
                                        "seed": args.seed}
    write_results(res, args.out, command=cmd.strip(), settings=settings)
    if args.power_table:
        power_table(res).to_csv(args.power_table, index=False)
    if not args.merge and not args.chunk:
        res.to_csv(csv, index=False)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    # run the imported module's main: claim modules register with exresearch.validity,
    # not with this __main__ copy
    from exresearch.validity import main as _main

    raise SystemExit(_main())
