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
plus ``ex_composite``, the mean of the six driver scales), ``truth`` a dict with the
client's entry of ``truth.json`` (``truth["client"]``), the study-level fields
(``truth["study"]``: options, pooled, outcomes...), the ``world`` name, ``n_units`` and
``periods``. The function returns named events: ``True``/``False`` (a claim made or
not, an interval covering the truth or not), or ``None`` when the event is undefined for
this client (left out of the rate). ``targets`` maps a world to ``{event: (low,
high)}``: the runner checks each rate against its interval widened by two Monte Carlo
standard errors. Claims live in modules listed in :data:`CLAIM_MODULES` (imported by
the runner, so their decorators run); add a module there to add claims.

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

__all__ = ["claim", "claims", "run", "write_results", "client_samples", "WORLDS",
           "CLAIM_MODULES", "Claim"]

#: Simulated worlds: name -> keyword arguments of simulate_study (preset and options).
WORLDS = {
    "null": {"preset": "null"},
    "reciprocal": {"preset": "reciprocal"},
    "ex_leads": {"preset": "ex_leads"},
    "reciprocal_no_trend": {"preset": "reciprocal", "trend_sd": 0.0},
    "no_business_path": {"preset": "reciprocal", "cx_to_revenue_growth": 0.0,
                         "ex_to_revenue_growth": 0.0},
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


_REGISTRY: dict[str, Claim] = {}


def claim(name, *, worlds=("null", "reciprocal"), targets=None, description=None):
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

    def deco(func):
        desc = description
        if desc is None:  # the docstring's first paragraph
            doc = (func.__doc__ or "").strip().split("\n\n")[0]
            desc = " ".join(line.strip() for line in doc.splitlines())
        _REGISTRY[name] = Claim(name=name, func=func, worlds=worlds, targets=targets,
                                description=desc)
        return func

    return deco


def _load_claim_modules():
    import importlib

    for mod in CLAIM_MODULES:
        importlib.import_module(mod)


def claims() -> pd.DataFrame:
    """The registered claims: ``name, worlds, targets, description`` (one row each)."""
    _load_claim_modules()
    return pd.DataFrame([{"name": c.name, "worlds": ", ".join(c.worlds),
                          "targets": "; ".join(f"{w}: " + ", ".join(
                              f"{e} in [{lo:g}, {hi:g}]" for e, (lo, hi) in t.items())
                              for w, t in c.targets.items()),
                          "description": c.description} for c in _REGISTRY.values()],
                        columns=["name", "worlds", "targets", "description"])


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
    from .aggregate import unit_panel
    from .simulate import DRIVERS, simulate_study
    from .study import load_study

    if world not in WORLDS:
        raise ParameterError(f"`world` must be one of {list(WORLDS)}, but {world!r} was passed")
    import json

    done, b = 0, 0
    while done < n_reps:
        k = min(batch, n_reps - done)
        with tempfile.TemporaryDirectory(prefix="exresearch-validity-") as tmp:
            path = simulate_study(Path(tmp) / "s", n_clients=k, n_units=n_units,
                                  n_periods=n_periods, seed=int(seed) + b, **WORLDS[world])
            truth = json.loads((path / "truth.json").read_text(encoding="utf-8"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                study = load_study(path)
                panels = {c: unit_panel(study, c) for c in study.clients}
        study_truth = {key: v for key, v in truth.items() if key != "clients"}
        for tc in truth["clients"]:
            panel = panels[tc["client_id"]]
            panel["ex_composite"] = panel[list(DRIVERS)].mean(axis=1, skipna=False)
            yield panel, {"client": tc, "study": study_truth, "world": world,
                          "n_units": n_units, "periods": truth["periods"]}
        done += k
        b += 1


def _mc_se(p, n):
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")


def run(names=None, *, worlds=None, n_units=(30, 100), n_periods=4, n_reps=200, seed=1,
        batch=50, progress=False) -> pd.DataFrame:
    """Evaluate registered claims on simulated clients.

    Parameters
    ----------
    names : list of str, optional
        Claims to run (default all registered).
    worlds : list of str, optional
        Restrict to these worlds (default each claim's own).
    n_units : int or sequence of int
        Client sizes (units per client).
    n_periods : int
        Periods per client.
    n_reps : int
        Simulated clients per world and size.
    seed : int
        Base seed; world i, size j start at ``seed + 10000 * i + 1000 * j``, so adding a
        claim does not change the clients the others see.
    batch : int
        Clients per simulated study.
    progress : bool
        Print one line per world and size to stderr.

    Returns
    -------
    pandas.DataFrame
        One row per (claim, world, n_units, event): ``claim, world, n_units, event,
        n, rate, mc_se, target_low, target_high, ok, description, seconds``. ``n``
        clients where the event was defined, ``rate`` its share of True, ``mc_se`` the
        Monte Carlo standard error sqrt(rate (1 - rate) / n), ``ok`` whether the rate
        lies within the target widened by 2 ``mc_se`` (NaN without a target).
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
    sizes = (n_units,) if isinstance(n_units, int | np.integer) else tuple(n_units)
    all_worlds = sorted({w for c in selected for w in c.worlds if worlds is None or w in worlds},
                        key=list(WORLDS).index)
    rows = []
    for world in all_worlds:
        here = [c for c in selected if world in c.worlds]
        for si, size in enumerate(sizes):
            t0 = time.time()
            events = {c.name: {} for c in here}
            timing = dict.fromkeys((c.name for c in here), 0.0)
            for panel, truth in client_samples(
                    world, n_units=int(size), n_periods=n_periods, n_reps=n_reps,
                    seed=seed + 10000 * (list(WORLDS).index(world)) + 1000 * si,
                    batch=batch):
                for c in here:
                    t1 = time.time()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        out = c.func(panel, truth)
                    timing[c.name] += time.time() - t1
                    for event, value in out.items():
                        events[c.name].setdefault(event, [])
                        if value is not None:
                            events[c.name][event].append(bool(value))
            for c in here:
                for event, vals in events[c.name].items():
                    n = len(vals)
                    rate = float(np.mean(vals)) if n else float("nan")
                    se = _mc_se(rate, n)
                    lo, hi = c.targets.get(world, {}).get(event, (np.nan, np.nan))
                    ok = (np.nan if not np.isfinite(lo) or not n else
                          bool(lo - 2 * se - 1e-12 <= rate <= hi + 2 * se + 1e-12))
                    rows.append({"claim": c.name, "world": world, "n_units": int(size),
                                 "event": event, "n": n, "rate": rate, "mc_se": se,
                                 "target_low": lo, "target_high": hi, "ok": ok,
                                 "description": c.description,
                                 "seconds": timing[c.name]})
            if progress:
                print(f"validity: {world}, {size} units, {n_reps} clients: "
                      f"{time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return pd.DataFrame(rows, columns=["claim", "world", "n_units", "event", "n", "rate",
                                       "mc_se", "target_low", "target_high", "ok",
                                       "description", "seconds"])


def combine(results) -> pd.DataFrame:
    """Pool :func:`run` results of separate runs (chunks, parallel parts) event by event.

    Rates are weighted by their clients; Monte Carlo SEs and ``ok`` are recomputed.
    """
    res = pd.concat(list(results), ignore_index=True)
    res["hits"] = res["rate"].fillna(0) * res["n"]
    keys = ["claim", "world", "n_units", "event"]
    out = res.groupby(keys, sort=False).agg(
        n=("n", "sum"), hits=("hits", "sum"), target_low=("target_low", "first"),
        target_high=("target_high", "first"), description=("description", "first"),
        seconds=("seconds", "sum")).reset_index()
    out["rate"] = np.where(out["n"] > 0, out["hits"] / out["n"].where(out["n"] > 0, 1), np.nan)
    out["mc_se"] = [_mc_se(r, n) for r, n in zip(out["rate"], out["n"], strict=True)]
    out["ok"] = [np.nan if not np.isfinite(lo) or not n else
                 bool(lo - 2 * se - 1e-12 <= r <= hi + 2 * se + 1e-12)
                 for r, se, lo, hi, n in zip(out["rate"], out["mc_se"], out["target_low"],
                                             out["target_high"], out["n"], strict=True)]
    order = {w: i for i, w in enumerate(WORLDS)}
    out = out.sort_values(["world", "n_units"], key=lambda c: c.map(order)
                          if c.name == "world" else c, kind="stable")
    return out[["claim", "world", "n_units", "event", "n", "rate", "mc_se", "target_low",
                "target_high", "ok", "description", "seconds"]].reset_index(drop=True)


def write_results(results, path="validity/results.md", *, command=None, settings=None):
    """Write :func:`run` results as the Markdown table of ``validity/results.md``.

    Parameters
    ----------
    results : pandas.DataFrame
        :func:`run` output.
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
    lines = [
        "# Validity of the claims the reports make",
        "",
        "Written by `exresearch.validity` (`make validity`); do not edit by hand.",
        "Each row: one event of one claim, over simulated clients of one world and size.",
        "`rate` is the share of clients where the event happened, `MC SE` its Monte Carlo",
        "standard error; in a world where the claim is false the rate is its",
        "false-positive rate, where it is true its power, for an interval its coverage.",
        "`ok`: the rate lies within the target widened by two Monte Carlo SEs.",
        "",
        f"- exresearch {__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}; written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
    ]
    if command:
        lines.append(f"- command: `{command}`")
    if settings:
        lines.append("- settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()))
    lines += ["- worlds (simulate_study arguments): " + "; ".join(
        f"`{w}` {WORLDS[w]}" for w in pd.unique(results["world"]))]
    lines += ["", "| claim | world | units | event | clients | rate | MC SE | target | ok |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results.itertuples():
        target = (f"{r.target_low:g}-{r.target_high:g}" if np.isfinite(r.target_low) else "")
        ok = "" if not isinstance(r.ok, bool | np.bool_) else ("yes" if r.ok else "**NO**")
        lines.append(f"| {r.claim} | {r.world} | {r.n_units} | {r.event} | {r.n} | "
                     f"{r.rate:.3f} | {r.mc_se:.3f} | {target} | {ok} |")
    lines += ["", "## Claims", ""]
    for name, g in results.groupby("claim", sort=False):
        lines.append(f"- **{name}**: {g['description'].iloc[0]} "
                     f"({g.groupby(['world', 'n_units'])['seconds'].first().sum():.0f} s "
                     "of analysis in this run)")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    return path


def main(argv=None) -> int:
    """``python -m exresearch.validity``: run the harness and write validity/results.md."""
    p = argparse.ArgumentParser(prog="python -m exresearch.validity",
                                description="Measure the error rates of the reports' claims.")
    p.add_argument("--reps", type=int, default=400, help="clients per world and size")
    p.add_argument("--units", type=int, nargs="+", default=[30, 100])
    p.add_argument("--periods", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--claims", nargs="+", default=None)
    p.add_argument("--worlds", nargs="+", default=None, help="restrict to these worlds")
    p.add_argument("--out", default="validity/results.md")
    p.add_argument("--chunk", type=int, default=0,
                   help="run in chunks of this many clients, saving the CSV after each")
    p.add_argument("--merge", nargs="+", default=None, metavar="CSV",
                   help="write --out from the CSV files of earlier (partial, parallel) runs")
    args = p.parse_args(argv)
    if args.merge:
        # "null" is a world name, not a missing value
        res = combine([pd.read_csv(f, keep_default_na=False, na_values=[""])
                       for f in args.merge])
    elif args.chunk:
        # in chunks of --chunk clients (seeds seed, seed + 100, ...), the CSV rewritten
        # after each, so a run stopped early still leaves every finished chunk
        parts, done, i = [], 0, 0
        csv = Path(args.out).with_suffix(".csv")
        while done < args.reps:
            k = min(args.chunk, args.reps - done)
            parts.append(run(args.claims, worlds=args.worlds, n_units=args.units,
                             n_periods=args.periods, n_reps=k, seed=args.seed + 100 * i,
                             batch=k))
            done, i = done + k, i + 1
            res = combine(parts)
            csv.parent.mkdir(parents=True, exist_ok=True)
            res.to_csv(csv, index=False)
            print(f"validity: {done} of {args.reps} clients", file=sys.stderr, flush=True)
    else:
        res = run(args.claims, worlds=args.worlds, n_units=args.units, n_periods=args.periods,
                  n_reps=args.reps, seed=args.seed, progress=True)
    cmd = "python -m exresearch.validity " + " ".join(argv if argv is not None else sys.argv[1:])
    settings = None if args.merge else {"reps": args.reps, "units": args.units,
                                        "periods": args.periods, "seed": args.seed}
    write_results(res, args.out, command=cmd.strip(), settings=settings)
    if not args.merge and not args.chunk:
        res.to_csv(Path(args.out).with_suffix(".csv"), index=False)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    # run the imported module's main: claim modules register with exresearch.validity,
    # not with this __main__ copy
    from exresearch.validity import main as _main

    raise SystemExit(_main())
