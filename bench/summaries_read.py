"""B6, the summaries' first cell after one client changed: CPU of
``report.synthesis_inputs`` and ``report.quality_inputs`` with a warm result cache,
checkout against checkout (what the synthesis and data-quality kernels run first in a
one-client-changed rebuild).

For each checkout (``--code NAME=DIR``) a result cache of its own (the keys differ) is
filled once, in a fresh process importing exresearch from ``DIR``: the study as given
(``--study``, state A; its CPU is the "cold" figure), then a copy with one answer of one
client changed (``--changed``, state B), so that the changed client's parts are in the
cache too. Files that the B run rewrote (a checkout with stacked entries: its stacks)
are kept as A left them. Each timed run is a fresh process that loads B and its unit
panels (not timed), puts those files back as A left them (the cache as a rebuild finds
it: every part of A, the changed client's parts, A's stacks) and times both calls
(``time.process_time``, BLAS on one thread) ``--repeat`` times, putting the files back
before each. Checkouts alternate run by run (A B B A ...). The first run of each
checkout also keeps its tables, and the script checks that every checkout gives the
same tables (``assert_frame_equal(check_exact=True)``).

``--no-stack``: the stacked entries are removed before each timed call instead (what a
build finds when a splice is given up, e.g. a dtype that is new: every part read).

Usage::

    nice -n 10 .venv/bin/python bench/summaries_read.py --study /tmp/i20-stack-study \\
        --work /tmp/sr --code before=/tmp/before --code after=. --rounds 2 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_cases import change_one_answer  # noqa: E402
from common import ROOT, VENV_BIN  # noqa: E402


def _inputs(study, panels, cache):
    """Both calls as the notebooks make them; CPU of each."""
    from exresearch import report

    cfg = study.config
    roles = report.measure_roles(cfg)
    names = report.display_names(study)
    t0 = time.process_time()
    syn = report.synthesis_inputs(study, roles=roles, names=names, n_boot=500,
                                  seed=cfg.seed, panels=panels, cache=cache)
    t1 = time.process_time()
    dq = report.quality_inputs(study, roles=roles, panels=panels, cache=cache)
    t2 = time.process_time()
    return syn, dq, {"synthesis_inputs": t1 - t0, "quality_inputs": t2 - t1}


def _load(study_dir: Path, validation: Path):
    import warnings

    from exresearch import report
    from exresearch.build.cache import ResultCache
    from exresearch.study import load_study

    warnings.simplefilter("ignore")
    study = load_study(study_dir, cache=ResultCache(validation, "validation"))
    roles = report.measure_roles(study.config)
    return study, report.client_panels(study, roles=roles, cache=False)


def _files(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*.pkl")}


def fill(spec: dict) -> dict:
    """State A, then B: the cache a rebuild finds; what B rewrote is kept as A left it."""
    cache, keep = Path(spec["cache"]), Path(spec["keep"])
    study, panels = _load(Path(spec["study"]), Path(spec["validation"]))
    *_, cold = _inputs(study, panels, cache)
    a = _files(cache)
    study, panels = _load(Path(spec["changed_study"]), Path(spec["validation"]))
    *_, one = _inputs(study, panels, cache)
    kept = [p for p, data in a.items() if p.read_bytes() != data]
    for p in kept:
        target = keep / p.relative_to(cache)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(a[p])
    return {"cold": cold, "first change": one, "kept": len(kept), "entries": len(a)}


def timed(spec: dict) -> dict:
    import gc

    import exresearch
    from exresearch.build.cache import ResultCache

    cache, keep = Path(spec["cache"]), Path(spec["keep"])
    assert Path(exresearch.__file__).is_relative_to(spec["code"]), exresearch.__file__
    study, panels = _load(Path(spec["changed_study"]), Path(spec["validation"]))
    runs = []
    for i in range(spec["repeat"]):
        for p in keep.rglob("*.pkl"):  # A's stacks back (or nothing: no stacks)
            if spec.get("no_stack"):  # or none: every part read, the stack written
                (cache / p.relative_to(keep)).unlink(missing_ok=True)
            else:
                shutil.copyfile(p, cache / p.relative_to(keep))
        gc.collect()
        store = ResultCache(cache, "summaries")
        syn, dq, cpu = _inputs(study, panels, store)
        runs.append({**cpu, "hits": store.hits, "misses": store.misses})
        if i == 0 and spec.get("tables"):
            with open(spec["tables"], "wb") as fh:
                pickle.dump({"synthesis": vars(syn), "quality": vars(dq)}, fh)
    return {"runs": runs}


def _same(a: Path, b: Path) -> list:
    import pandas as pd

    x, y = pickle.loads(a.read_bytes()), pickle.loads(b.read_bytes())
    checked = []
    for kind in x:
        for name, frame in x[kind].items():
            pd.testing.assert_frame_equal(y[kind][name], frame, check_exact=True,
                                          check_index_type=True, check_column_type=True,
                                          obj=f"{kind}.{name}")
            checked.append(f"{kind}.{name}")
    return checked


def _run(code: Path, what: str, spec: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("EXRESEARCH_CACHE", None)
    proc = subprocess.run([str(VENV_BIN / "python"), str(Path(__file__).resolve()),
                           "--worker", what, "--spec", json.dumps(spec)],
                          capture_output=True, text=True, env=env, check=False, cwd="/tmp")
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=["fill", "timed"])
    ap.add_argument("--spec")
    ap.add_argument("--study", type=Path)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--changed", help="client whose answer changes (default: the middle one)")
    ap.add_argument("--code", action="append", default=[], help="NAME=DIR (repeatable)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-stack", action="store_true",
                    help="time the calls without the stacked entries (removed before each)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    if a.worker:
        spec = json.loads(a.spec)
        print(json.dumps(fill(spec) if a.worker == "fill" else timed(spec)))
        return 0
    codes = [(c.split("=", 1)[0], Path(c.split("=", 1)[1]).resolve()) for c in a.code] \
        or [("this", ROOT)]
    work = a.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    clients = sorted(p.name for p in (a.study / "clients").iterdir() if p.is_dir())
    changed = a.changed or clients[len(clients) // 2]
    b = work / "study-b"
    if not b.exists():
        shutil.copytree(a.study, b)
        change_one_answer(b, changed)
    lines = [f"study {a.study} ({len(clients)} clients), changed: {changed}"
             + (", no stacked entries" if a.no_stack else ""), ""]
    specs = {}
    for name, code in codes:
        specs[name] = {"code": str(code), "study": str(a.study.resolve()),
                       "changed_study": str(b), "cache": str(work / f"cache-{name}"),
                       "keep": str(work / f"keep-{name}"),
                       "validation": str(work / f"validation-{name}"), "repeat": a.repeat,
                       "no_stack": a.no_stack,
                       "tables": str(work / f"tables-{name}.pkl")}
        if not (work / f"filled-{name}.json").exists():
            got = _run(code, "fill", specs[name])
            (work / f"filled-{name}.json").write_text(json.dumps(got))
            print(name, "filled", got, flush=True)
        lines.append(f"{name} fill: {(work / f'filled-{name}.json').read_text()}")
    rows = []
    for r in range(a.rounds):
        for name, code in (codes if r % 2 == 0 else codes[::-1]):
            spec = dict(specs[name], tables=specs[name]["tables"] if r == 0 else "")
            load = os.getloadavg()[0]
            got = _run(code, "timed", spec)
            rows.append((name, r + 1, got["runs"], (load, os.getloadavg()[0])))
            print(name, r + 1, got["runs"], flush=True)
    if len(codes) > 1:
        first = Path(specs[codes[0][0]]["tables"])
        for name, _ in codes[1:]:
            checked = _same(first, Path(specs[name]["tables"]))
            lines.append(f"tables of {name} == tables of {codes[0][0]}: {len(checked)} "
                         "frames, assert_frame_equal(check_exact=True)")
    lines += ["", "| checkout | run | call | CPU per repeat (s) | cache hits/misses | "
              "load (start-end) |", "|---|---|---|---|---|---|"]
    for name, r, runs, lo in rows:
        for call in ("synthesis_inputs", "quality_inputs"):
            lines.append(f"| {name} | {r} | `{call}` | "
                         + ", ".join(f"{x[call]:.3f}" for x in runs)
                         + f" | {runs[0]['hits']}/{runs[0]['misses']} (both calls) | "
                         f"{lo[0]:.1f}-{lo[1]:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
