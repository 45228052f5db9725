"""B7: what one client report's cells cost, cell by cell, and the heaviest functions.

Usage::

    .venv/bin/python bench/cells.py STUDY [--client ID] [--top 12] [--out cells.md]

Runs ``notebooks/client_report.ipynb`` with papermill in an ordinary kernel of this
environment, twice: once plain (papermill's per-cell durations) and once with a
profiler that IPython's ``pre_run_cell`` / ``post_run_cell`` events start and stop
around every cell (``post_run_cell`` comes after ``post_execute``, where the inline
backend draws and encodes the cell's figures, so a cell's profile includes its
figures). Prints a markdown table: per cell the plain duration and the functions with
the most cumulative time in the profiled run (profiling itself slows Python code down,
so only the plain durations are timings). The kernels get the environment of the
build's kernels (``exresearch.build.kernels.KERNEL_ENV``: one BLAS/OpenMP thread, the
inline backend): with OpenBLAS's default threads, the small matrix products of the
unit bootstraps spin on the shared cores and cost 3-4x the CPU a build pays
(``linkage.correlation_table`` of the demo client: 0.69 s against 0.19 s). ``bench/run.py
--cases B7`` runs it on the demo study and adds statistic micro-measurements
(:func:`statistics_worker`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, emit  # noqa: E402

NOTEBOOK = "client_report.ipynb"
#: The cell papermill runs right after the parameters when profiling: every later cell
#: runs under ``cProfile`` and leaves ``<index>.pstats`` in ``profile_dir``.
PROFILE_CELL = """\
import cProfile as _cp
_exr_prof = {"n": 0, "p": None}
def _exr_pre(info):
    _exr_prof["p"] = _cp.Profile(); _exr_prof["p"].enable()
def _exr_post(result):
    if _exr_prof["p"] is None:  # this cell: the hooks came in during it
        return
    _exr_prof["p"].disable(); _exr_prof["n"] += 1
    _exr_prof["p"].dump_stats(f"{profile_dir}/{_exr_prof['n']:03d}.pstats")
get_ipython().events.register("pre_run_cell", _exr_pre)
get_ipython().events.register("post_run_cell", _exr_post)
"""


def _notebook_with_profiler(src: Path, dst: Path) -> None:
    """Copy ``src`` with the profiling cell right after the parameters cell."""
    nb = json.loads(src.read_text())
    cells = nb["cells"]
    at = next(i for i, c in enumerate(cells)
              if "parameters" in (c.get("metadata", {}).get("tags") or [])) + 1
    cells.insert(at, {"cell_type": "code", "metadata": {"tags": ["exr-profile"]},
                      "execution_count": None, "outputs": [], "source": PROFILE_CELL})
    dst.write_text(json.dumps(nb))


def _first_line(src: str) -> str:
    for line in src.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            return s[:70]
    return src.strip().splitlines()[0][:70] if src.strip() else ""


def durations(nb_path: Path) -> list[dict]:
    """Per code cell of an executed notebook: index, first line, papermill duration."""
    nb = json.loads(Path(nb_path).read_text())
    out = []
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "code":
            continue
        tags = c.get("metadata", {}).get("tags") or []
        if {"exr-profile", "injected-parameters", "parameters"} & set(tags):
            continue
        src = "".join(c["source"])
        out.append({"index": i, "line": _first_line(src),
                    "duration": (c["metadata"].get("papermill") or {}).get("duration")})
    return out


def _short(file: str) -> str:
    """A source file as a reader finds it, without this machine's folders: the package
    path for libraries, ``exresearch/...`` for ours (also the benchmark's snapshot copy),
    the standard library's path below ``pythonX.Y/``."""
    if "site-packages/" in file:
        return file.split("site-packages/")[-1]
    if "/exresearch/" in file:
        return "exresearch/" + file.rsplit("/exresearch/", 1)[-1]
    m = re.search(r"/lib/python\d+\.\d+/(.*)$", file)
    return m.group(1) if m else Path(file).name


def top_functions(stats_file: Path, n: int) -> list[tuple[str, float, float]]:
    """(function, cumulative s, own s) with the most cumulative time, exresearch and
    library entry points only (no builtins, no IPython machinery)."""
    st = pstats.Stats(str(stats_file))
    rows = []
    for (file, line, name), (_cc, _nc, tt, ct, _callers) in st.stats.items():
        if file.startswith("~") or "IPython" in file or "ipykernel" in file \
                or "traitlets" in file or "<" in file or "cProfile" in file:
            continue
        rows.append((f"{_short(file)}:{line}({name})", ct, tt))
    rows.sort(key=lambda r: -r[1])
    return rows[:n]


@contextlib.contextmanager
def _kernel_env():
    """The build's kernel environment for the kernels papermill starts (they inherit it)."""
    from exresearch.build.kernels import KERNEL_ENV

    saved = {k: os.environ.get(k) for k in KERNEL_ENV}
    os.environ.update(KERNEL_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run(study: Path, client: str | None, *, notebooks: Path, work: Path, top: int) -> dict:
    with _kernel_env():
        return _run(study, client, notebooks=notebooks, work=work, top=top)


def _run(study: Path, client: str | None, *, notebooks: Path, work: Path, top: int) -> dict:
    import papermill as pm

    work.mkdir(parents=True, exist_ok=True)
    params = {"study_path": str(study), "client_id": client or "",
              "output_dir": str(work / "tables")}
    src = notebooks / NOTEBOOK
    t = time.perf_counter()
    pm.execute_notebook(str(src), str(work / "plain.ipynb"), parameters=params,
                        progress_bar=False, log_output=False)
    plain_total = time.perf_counter() - t
    cells = durations(work / "plain.ipynb")
    prof_dir = work / "profiles"
    prof_dir.mkdir(exist_ok=True)
    for f in prof_dir.glob("*.pstats"):
        f.unlink()
    _notebook_with_profiler(src, work / "profiled-src.ipynb")
    pm.execute_notebook(str(work / "profiled-src.ipynb"), str(work / "profiled.ipynb"),
                        parameters={**params, "profile_dir": str(prof_dir)},
                        progress_bar=False, log_output=False)
    # file k profiles the k-th code cell after the profiling cell, which is the k-th
    # cell of ``durations`` (parameters and the profiling cell are left out there)
    files = sorted(prof_dir.glob("*.pstats"))
    for c, f in zip(cells, files, strict=False):
        c["top"] = top_functions(f, top)
    return {"client": client, "plain_total": plain_total, "cells": cells}


def to_markdown(res: dict, *, heaviest: int = 4, forked: list | None = None) -> list[str]:
    """The cell table (with a column of the same cells' ``forked`` durations, one per
    cell of ``res["cells"]``, when given) and the heaviest cells' top functions."""
    if forked is not None and len(forked) != len(res["cells"]):
        forked = None  # another notebook version: the cells do not pair up
    both = [(c, None if forked is None else forked[i]) for i, c in enumerate(res["cells"])
            if c["duration"] is not None]
    cells = [c for c, _ in both]
    total = sum(c["duration"] for c in cells)
    extra = ("", "") if forked is None else (" forked (B1) |", "---|")
    lines = ["| cell | first line | duration | share |" + extra[0], "|---|---|---|---|" + extra[1]]
    for c, f in both:
        lines.append(f"| {c['index']} | `{c['line'].replace('|', '/')}` | "
                     f"{c['duration']:.2f} s | {100 * c['duration'] / total:.0f}% |"
                     + ("" if forked is None else f" {'' if f is None else f'{f:.2f} s'} |"))
    lines += ["", f"Cells sum to {total:.2f} s (papermill in all: {res['plain_total']:.2f} s, "
              "kernel start included).", ""]
    for c in sorted(cells, key=lambda c: -c["duration"])[:heaviest]:
        if not c.get("top"):
            continue
        lines += [f"Cell {c['index']} (`{c['line']}`), {c['duration']:.2f} s, functions with "
                  "the most cumulative time under cProfile:", "",
                  "| function | cumulative | own |", "|---|---|---|"]
        lines += [f"| `{f}` | {ct:.3f} s | {tt:.3f} s |" for f, ct, tt in c["top"]]
        lines.append("")
    return lines


# --------------------------------------------------------------------------- statistics
def statistics_worker(spec: dict) -> dict:
    """Time single statistics of a report at its sizes (were timed tests, issue 20).

    On 30 units with 1,000 bootstrap resamples (the client report's setting):
    ``correlation_table`` of 3 x 2 pairs, Pearson and Spearman, and ``relative_weights``
    of 5 drivers. tests/test_linkage.py asserted each ran under 1 s; the guide keeps
    speed out of tests, so they are measured here.
    """
    import numpy as np
    import pandas as pd

    from exresearch import linkage

    rng = np.random.default_rng(spec.get("seed", 0))
    d = pd.DataFrame(rng.normal(size=(30, 6)), columns=["a", "b", "c", "d", "e", "f"])
    d["unit_id"] = [f"u{i}" for i in range(30)]
    cases = {
        "correlation_table_30": lambda: linkage.correlation_table(
            d, x=["a", "b", "c"], y=["d", "e"], n_boot=1000, seed=1),
        "relative_weights_30": lambda: linkage.relative_weights(
            d, y="f", drivers=list("abcde"), n_boot=1000, seed=1),
    }
    out = {}
    for name, call in cases.items():
        call()  # first use (lazy imports, caches) is not what a report pays per call
        times = []
        for _ in range(spec.get("repeats", 5)):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        out[name] = times
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("study", type=Path)
    ap.add_argument("--client", default=None)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="markdown file (default: stdout)")
    ap.add_argument("--json", action="store_true", help="print the raw result as JSON")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="exr-cells-"))
    res = run(args.study.resolve(), args.client, notebooks=args.notebooks, work=work,
              top=args.top)
    if args.json:
        emit(res)
        return 0
    text = "\n".join(to_markdown(res)) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "statistics":
        emit(statistics_worker(json.loads(sys.argv[2])))
    else:
        sys.exit(main())
