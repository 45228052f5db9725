"""B6, the synthesis at scale: what the synthesis notebook costs cell by cell at 100 and
300 clients, with the per-client parts read from a warm result cache (as in a
one-client-changed rebuild).

For each size (a B6 study, :func:`b6_scale.make_study`) the notebook runs with papermill
in an ordinary kernel, ``$EXRESEARCH_CACHE`` pointing at a cache folder of this script
(so the per-client parts, ``report.synthesis_inputs``, are computed on the first run and
read afterwards). A hook cell placed after the parameters records every later cell's CPU
time (``time.process_time`` of the kernel, figures included: IPython's
``post_run_cell`` comes after the inline backend has drawn and encoded them) and wall
time; with ``--profile`` one more run keeps a cProfile of every cell and the table lists
the heaviest functions of the heaviest cells.

``--code DIR`` measures another checkout's notebooks and package (a snapshot of an
earlier commit, e.g. ``git archive COMMIT | tar -x -C DIR``): the kernel imports
exresearch from ``DIR`` (``PYTHONPATH``), so before and after can be run in turn, in the
same conditions. Each code version has its own cache entries (the cache key holds the
source's hash), so the first run of a version is cold.

Usage::

    nice -n 10 .venv/bin/python bench/b6_synthesis.py --sizes 100,300 --runs 2
    nice -n 10 .venv/bin/python bench/b6_synthesis.py --sizes 100 --code /tmp/before \\
        --label before --profile --md /tmp/synth-before.md

Studies and caches live in ``$TMPDIR/exresearch-bench/b6/``, never in ``data/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from b6_scale import make_study  # noqa: E402
from cells import _first_line, _short  # noqa: E402
from common import ROOT  # noqa: E402

#: Injected after the parameters: per-cell CPU and wall time (and, when ``profile_dir``
#: is not empty, a cProfile of each cell) written to ``timing_path`` after every cell.
HOOK_CELL = """\
import cProfile as _cp, json as _json, time as _time
import exresearch as _exr
_exr_t = {"exresearch": _exr.__file__, "cells": []}
_exr_s = {}
def _exr_pre(info):
    _exr_s.update(cpu=_time.process_time(), wall=_time.perf_counter(), p=None)
    if profile_dir:
        _exr_s["p"] = _cp.Profile(); _exr_s["p"].enable()
def _exr_post(result):
    if "cpu" not in _exr_s:  # this cell: the hooks came in during it
        return
    cpu, wall = _time.process_time() - _exr_s["cpu"], _time.perf_counter() - _exr_s["wall"]
    n = len(_exr_t["cells"]) + 1
    if _exr_s["p"] is not None:
        _exr_s["p"].disable(); _exr_s["p"].dump_stats(f"{profile_dir}/{n:03d}.pstats")
    _exr_t["cells"].append({"cpu": cpu, "wall": wall})
    with open(timing_path, "w") as _fh:
        _json.dump(_exr_t, _fh)
get_ipython().events.register("pre_run_cell", _exr_pre)
get_ipython().events.register("post_run_cell", _exr_post)
"""


def _with_hook(src: Path, dst: Path) -> list[str]:
    """Copy ``src`` with the hook cell after the parameters; the measured cells' sources."""
    nb = json.loads(src.read_text())
    cells = nb["cells"]
    at = next(i for i, c in enumerate(cells)
              if "parameters" in (c.get("metadata", {}).get("tags") or [])) + 1
    cells.insert(at, {"cell_type": "code", "metadata": {"tags": ["exr-profile"]},
                      "execution_count": None, "outputs": [], "source": HOOK_CELL})
    dst.write_text(json.dumps(nb))
    return ["".join(c["source"]) for c in cells[at + 1:] if c["cell_type"] == "code"]


def top_functions(stats_file: Path, n: int) -> list[tuple[str, float, float]]:
    """(function, cumulative s, own s): exresearch and library functions only."""
    import pstats

    st = pstats.Stats(str(stats_file))
    rows = []
    for (file, line, name), (_cc, _nc, tt, ct, _callers) in st.stats.items():
        if file.startswith("~") or "IPython" in file or "ipykernel" in file \
                or "traitlets" in file or "<" in file or "cProfile" in file:
            continue
        rows.append((f"{_short(file)}:{line}({name})", ct, tt))
    rows.sort(key=lambda r: -r[1])
    return rows[:n]


def run_notebook(study: Path, *, code: Path, cache: Path, work: Path, profile: bool,
                 top: int = 10, notebook: str = "synthesis") -> dict:
    """One papermill run of ``code``'s ``notebook`` on ``study``; per-cell times."""
    import papermill as pm

    work.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    src = work / f"{notebook}-hooked.ipynb"
    sources = _with_hook(code / "notebooks" / f"{notebook}.ipynb", src)
    timing = work / "timing.json"
    prof_dir = work / "profiles"
    if profile:
        prof_dir.mkdir(exist_ok=True)
        for f in prof_dir.glob("*.pstats"):  # written by this script's last run
            f.unlink()
    env = {"EXRESEARCH_CACHE": str(cache), "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    try:
        pm.execute_notebook(str(src), str(work / "executed.ipynb"), kernel_name="exresearch",
                            parameters={"study_path": str(study),
                                        "output_dir": str(work / "tables"),
                                        "timing_path": str(timing),
                                        "profile_dir": str(prof_dir) if profile else ""},
                            progress_bar=False, log_output=False)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    wall = time.perf_counter() - t
    data = json.loads(timing.read_text())
    cells = [{"index": i, "line": _first_line(s), **c}
             for i, (s, c) in enumerate(zip(sources, data["cells"], strict=False))]
    if profile:
        for c, f in zip(cells, sorted(prof_dir.glob("*.pstats")), strict=False):
            c["top"] = top_functions(f, top)
    return {"wall": wall, "cells": cells, "exresearch": data["exresearch"],
            "load": (load0, os.getloadavg()[0])}


def markdown(results: list[dict], *, heaviest: int = 3) -> str:
    lines = []
    for r in results:
        cells = r["cells"]
        cpu = sum(c["cpu"] for c in cells)
        lines += [f"### {r.get('notebook', 'synthesis')}, {r['label']}: {r['clients']} "
                  f"clients, run {r['run']} "
                  f"({'cold' if r['run'] == 1 else 'warm'} cache)", "",
                  f"papermill wall {r['wall']:.1f} s (kernel start included), cells' CPU "
                  f"{cpu:.1f} s, load average {r['load'][0]:.1f}-{r['load'][1]:.1f}; "
                  f"exresearch from `{r['exresearch']}`.", "",
                  "| cell | first line | CPU | wall |", "|---|---|---|---|"]
        lines += [f"| {c['index']} | `{c['line'].replace('|', '/')}` | {c['cpu']:.2f} s | "
                  f"{c['wall']:.2f} s |" for c in cells]
        lines.append("")
        for c in sorted(cells, key=lambda c: -c["cpu"])[:heaviest]:
            if c.get("top"):
                lines += [f"Cell {c['index']} (`{c['line']}`), {c['cpu']:.2f} s CPU, under "
                          "cProfile:", "", "| function | cumulative | own |", "|---|---|---|"]
                lines += [f"| `{f}` | {ct:.3f} s | {tt:.3f} s |" for f, ct, tt in c["top"]]
                lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,300")
    ap.add_argument("--notebook", default="synthesis", choices=["synthesis", "data_quality"],
                    help="which study-level notebook to measure")
    ap.add_argument("--studies", type=Path, default=None, help="folder holding the studies "
                    "b6-N (e.g. /work/studies) instead of simulating them")
    ap.add_argument("--units", type=int, default=30)
    ap.add_argument("--periods", type=int, default=4)
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose notebook and "
                    "package are measured (default this one)")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--runs", type=int, default=1, help="runs per size (the first may be "
                    "cold)")
    ap.add_argument("--profile", action="store_true", help="cProfile every cell (slower)")
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    root = Path(tempfile.gettempdir()) / "exresearch-bench" / "b6"
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for n in [int(s) for s in args.sizes.split(",") if s]:
        study = (args.studies / f"b6-{n}" if args.studies is not None
                 else make_study(root, n, args.units, args.periods)[0])
        for run in range(1, args.runs + 1):
            print(f"B6 {args.notebook}: {args.label}, {n} clients, run {run} ...", file=sys.stderr,
                  flush=True)
            res = run_notebook(study, code=args.code.resolve(), cache=root / "cache-synthesis",
                               work=root / f"{args.notebook}-{n}-{args.label.replace(' ', '_')}",
                               profile=args.profile and run == args.runs,
                               notebook=args.notebook)
            results.append({"label": args.label, "clients": n, "run": run,
                            "notebook": args.notebook, **res})
            text = markdown(results)
            if args.md:
                args.md.write_text(text)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
