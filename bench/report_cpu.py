"""B7d: what one client report costs in CPU inside a build, cell by cell, and its HTML.

Usage::

    .venv/bin/python bench/report_cpu.py STUDY [--clients ID,ID] [--repeats 1]
                                         [--profile] [--top 15] [--json out.json]

Starts the build's kernel runtime on ``STUDY`` (:class:`exresearch.build.kernels.Runtime`:
the zygote imports the libraries and preloads the study, as in a build) and runs each
client's ``client_report.ipynb`` through :func:`exresearch.build.execute_report`, one
after another, with one extra cell after the parameters that registers IPython
``pre_run_cell`` / ``post_run_cell`` hooks in the forked kernel: they record each
cell's CPU time (``time.process_time`` of the kernel process; ``post_run_cell`` comes
after the inline backend has drawn and encoded the cell's figures) and the kernel
process's CPU since it was forked (``os.times``), and each cell's minor page faults
(``ru_minflt``: pages first written after the fork are copied from the zygote). With ``--profile`` every cell also
runs under cProfile (slower; only the function lists are used from that run). In the
driver the HTML rendering (``execute._render``: nbformat, path redaction,
``site.render_report``) is timed with ``time.thread_time`` around the call, and the
whole ``execute_report`` with ``time.process_time`` of the driver (papermill's client
and the rendering; nothing else runs in this process).

The library and notebooks are those ``exresearch`` is imported from: with
``PYTHONPATH=OTHER_CHECKOUT`` the same script measures another commit (the kernels get
that path too, :func:`exresearch.build.kernels.worker_env`).

Prints a markdown table (median over clients and repeats, CPU seconds) and the load
average at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import loadavg  # noqa: E402

#: The cell inserted after the parameters: per-cell CPU of the kernel process into
#: ``{_exr_dir}/cells.json`` (and cProfile stats per cell with ``_exr_profile``).
HOOK_CELL = """\
import json as _json, os as _os, resource as _res, time as _time
_exr = {"n": 0, "t": None, "cells": [], "p": None, "f": 0}
def _exr_pre(info):
    _exr["f"] = _res.getrusage(_res.RUSAGE_SELF).ru_minflt
    _exr["t"] = _time.process_time()
    if _exr_profile:
        import cProfile as _cp
        _exr["p"] = _cp.Profile(_time.process_time); _exr["p"].enable()
def _exr_post(result):
    if _exr["t"] is None:
        return
    if _exr["p"] is not None:
        _exr["p"].disable(); _exr["p"].dump_stats(f"{_exr_dir}/{_exr['n']:03d}.pstats")
        _exr["p"] = None
    t, cpu = _os.times(), _time.process_time() - _exr["t"]
    faults = _res.getrusage(_res.RUSAGE_SELF).ru_minflt - _exr["f"]
    _exr["cells"].append({"n": _exr["n"], "cpu": cpu, "kernel_cpu": t.user + t.system,
                          "sys": t.system, "minor_faults": faults})
    _exr["n"] += 1
    _exr["t"] = None
    with open(f"{_exr_dir}/cells.json", "w") as fh:
        _json.dump(_exr["cells"], fh)
get_ipython().events.register("pre_run_cell", _exr_pre)
get_ipython().events.register("post_run_cell", _exr_post)
"""


def hooked_notebook(text: str, out_dir: Path, profile: bool) -> tuple[str, list[str]]:
    """The notebook with the hook cell after the parameters; and the first line of each
    later code cell (the cells the hooks number 0, 1, ...)."""
    nb = json.loads(text)
    cells = nb["cells"]
    at = next(i for i, c in enumerate(cells)
              if "parameters" in (c.get("metadata", {}).get("tags") or [])) + 1
    src = f"_exr_dir = {str(out_dir)!r}\n_exr_profile = {profile!r}\n" + HOOK_CELL
    cells.insert(at, {"cell_type": "code", "id": "exr-bench-hook",
                      "metadata": {"tags": ["remove-cell"]}, "execution_count": None,
                      "outputs": [], "source": src})
    labels = []
    for i, c in enumerate(cells[at + 1:], start=at + 1):
        if c["cell_type"] == "code":
            first = next((ln.strip() for ln in "".join(c["source"]).splitlines()
                          if ln.strip() and not ln.strip().startswith("#")), "")
            labels.append(f"{i - 1}: {first[:60]}")
    return json.dumps(nb), labels


def run_one(runtime, study: Path, client: str, work: Path, *, profile: bool) -> dict:
    from exresearch import build, config
    from exresearch.build import execute

    out_dir = Path(tempfile.mkdtemp(prefix="cells-", dir=work))
    nb_text, labels = hooked_notebook(
        (config.notebooks_dir() / "client_report.ipynb").read_text(), out_dir, profile)
    task = {"key": f"client-{client}", "kind": "client", "title": f"{client}: client report",
            "notebook_json": nb_text,
            "parameters": {"study_path": str(study), "client_id": client},
            "provenance": {"study": study.name}, "timeout": None, "workdir": str(work)}
    render_cpu = []
    real_render = execute._render

    def timed_render(*a, **k):
        t = time.thread_time()
        try:
            return real_render(*a, **k)
        finally:
            render_cpu.append(time.thread_time() - t)

    execute._render = timed_render
    try:
        c0, w0 = time.process_time(), time.perf_counter()
        res = build.execute_report(task, kernels=runtime)
        driver_cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    finally:
        execute._render = real_render
    if res["status"] != "ok":
        raise RuntimeError(f"{client}: {res['error']}")
    cells = json.loads((out_dir / "cells.json").read_text())
    return {"client": client, "labels": labels, "cells": [c["cpu"] for c in cells],
            "faults": [c["minor_faults"] for c in cells], "kernel_sys": cells[-1]["sys"],
            "kernel_cpu": cells[-1]["kernel_cpu"], "render_cpu": render_cpu[0],
            "driver_cpu": driver_cpu, "wall": wall, "duration": res["duration"],
            "html_bytes": len(res["html"]), "profile_dir": str(out_dir),
            "notebook": res["notebook"]}


def top_functions(stats_file: Path, n: int) -> list[tuple[str, float, float]]:
    st = pstats.Stats(str(stats_file))
    rows = []
    for (file, line, name), (_cc, _nc, tt, ct, _callers) in st.stats.items():
        if file.startswith("~") or "IPython" in file or "ipykernel" in file \
                or "<" in file or "cProfile" in file:
            continue
        short = file.split("site-packages/")[-1]
        if "/exresearch/" in short:
            short = "exresearch/" + short.rsplit("/exresearch/", 1)[-1]
        rows.append((f"{short}:{line}({name})", ct, tt))
    rows.sort(key=lambda r: -r[1])
    return rows[:n]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", type=Path)
    ap.add_argument("--clients", default="")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--save-notebook", type=Path)
    args = ap.parse_args(argv)

    from exresearch.build.kernels import Runtime
    from exresearch.study import load_study

    study = args.study.resolve()
    clients = [c for c in args.clients.split(",") if c] or \
        [c.id for c in load_study(study).config.clients][:3]
    load0 = loadavg()
    t0 = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    runtime = Runtime(study, kernels="zygote")
    runtime.wait_ready()
    runs = []
    with tempfile.TemporaryDirectory(prefix="report-cpu-") as tmp:
        try:
            for _ in range(args.repeats):
                for c in clients:
                    r = run_one(runtime, study, c, Path(tmp), profile=args.profile)
                    runs.append(r)
                    print(f"# {c}: kernel {r['kernel_cpu']:.2f} s cpu, cells "
                          f"{sum(r['cells']):.2f} s, render {r['render_cpu']:.2f} s, driver "
                          f"{r['driver_cpu']:.2f} s, wall {r['wall']:.2f} s", file=sys.stderr)
            if args.profile:
                r = runs[0]
                order = sorted(range(len(r["cells"])), key=lambda i: -r["cells"][i])[:6]
                for i in order:
                    print(f"\ncell {r['labels'][i]} ({r['cells'][i]:.2f} s profiled)\n")
                    for name, ct, tt in top_functions(
                            Path(r["profile_dir"]) / f"{i:03d}.pstats", args.top):
                        print(f"  {ct:7.3f} {tt:7.3f}  {name}")
        finally:
            runtime.close()
    load1 = loadavg()
    labels = runs[0]["labels"]
    med = statistics.median
    print(f"\n{t0}, load average {load0} at the start, {load1} at the end; "
          f"{len(clients)} clients x {args.repeats} runs; CPU seconds, median\n")
    print("| cell | CPU |\n|---|---|")
    for i, lab in enumerate(labels):
        print(f"| `{lab}` | {med(r['cells'][i] for r in runs):.3f} s |")
    for key, what in (("kernel_cpu", "kernel process in all (fork to last cell)"),
                      ("render_cpu", "HTML rendering in the driver (_render)"),
                      ("driver_cpu", "driver in all (papermill client + rendering)"),
                      ("wall", "wall, execute_report")):
        print(f"| {what} | {med(r[key] for r in runs):.3f} s |")
    if args.json:
        args.json.write_text(json.dumps(
            {"start": t0, "load": [load0, load1],
             "runs": [{k: v for k, v in r.items() if k != "notebook"} for r in runs]},
            indent=1))
    if args.save_notebook:  # the first run's executed notebook (for bench of _render)
        args.save_notebook.write_text(runs[0]["notebook"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
