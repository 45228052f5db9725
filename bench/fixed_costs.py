"""B8: the build's fixed costs (everything but the notebooks' own cells), issue 20.

Two measurements, each run with the code of a given checkout (``--code``: a folder
holding ``exresearch/``, e.g. a ``git worktree add --detach`` of the commit to measure),
so that "before" and "after" can be run alternately in the same period:

``build``
    ``exresearch build STUDY --out SITE --no-pdf --debug`` with *light* notebooks
    (written into ``--notebooks`` if absent: the parameters cell, ``setup_report`` and one
    small CSV), so that what is measured is the build's own work: CLI start, loading and
    validating the study, hashing, planning, the zygote's imports and preloading, each
    report's kernel, page and check that the study is unchanged, the carry-over of
    unchanged reports, the index, manifest, share bundles, workbooks and briefs, the swap.
    Prints wall time, CPU time summed over the build's processes (the driver and the
    zygote by ``os.wait4``, the kernels, which the zygote reaps, by sampling ``/proc``
    every 50 ms, so a kernel's last <= 50 ms are missed), the load average and the
    ``--debug`` phase table.
``inproc``
    CPU seconds in one process of ``load_study`` (warm validation cache), ``make_plan``,
    ``preload_study`` (warm summaries cache) and one report's check that the preloaded
    study is unchanged.

Examples (the numbers in ``results.md``, "B8")::

    git worktree add --detach /tmp/before main
    .venv/bin/python bench/fixed_costs.py build --code /tmp/before STUDY /tmp/site-before
    .venv/bin/python bench/fixed_costs.py inproc --code /tmp/before STUDY /tmp/cache-before
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

VENV_PY = Path(sys.executable)


def light_notebooks(folder: Path) -> Path:
    """Write the light notebooks (same names and parameters as the real ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, client in [("client_report", True), ("synthesis", False),
                         ("data_quality", False), ("planning", False)]:
        params = 'study_path = "data/demo"\noutput_dir = ""\n' + ('client_id = ""\n' if client
                                                                  else "")
        call = ("from exresearch import report\nfrom exresearch.privacy import write_csv\n"
                "import pandas as pd\n"
                f'setup = report.setup_report(study_path=study_path, output_dir=output_dir, '
                f'notebook="{name}"' + (", client_id=client_id" if client else "") + ")\n"
                'write_csv(pd.DataFrame({"clients": [len(setup.study.clients)]}), '
                'setup.out / "n.csv")\n')
        nb = {"cells": [
            {"cell_type": "markdown", "metadata": {}, "source": f"# Light {name}"},
            {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": params,
             "outputs": [], "execution_count": None},
            {"cell_type": "code", "metadata": {}, "source": call, "outputs": [],
             "execution_count": None}],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}},
            "nbformat": 4, "nbformat_minor": 4}
        path = folder / f"{name}.ipynb"
        if not path.is_file():
            path.write_text(json.dumps(nb, indent=1))
    return folder


_TCK = os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> dict:
    """pid -> (CPU seconds so far, parent pid) of every process below ``root``."""
    kids: dict = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                s = (d / "stat").read_text().rsplit(")", 1)[1].split()
                kids.setdefault(int(s[1]), []).append(
                    (int(d.name), (int(s[11]) + int(s[12])) / _TCK))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, cpu in kids.get(parent, []):
            out[pid] = (cpu, parent)
            todo.append(pid)
    return out


def run_sampled(cmd: list[str], env: dict) -> dict:
    """Run ``cmd`` (an ``exresearch build``) to its end: exit code, stderr, wall time, CPU
    of the process and what it reaps (the CLI and the zygote: ``os.wait4``) and of the
    processes below it that it does not reap (the kernels: sampled from ``/proc`` every
    50 ms, so a kernel's last <= 50 ms are missed)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, cwd="/tmp")
    seen: dict = {}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            seen.update(_descendants(proc.pid))
            stop.wait(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"rc": proc.returncode, "err": err, "wall": wall,
            "cpu_cli": usage.ru_utime + usage.ru_stime,
            "cpu_kernels": sum(cpu for cpu, parent in seen.values() if parent != proc.pid)}


def phases(err: str) -> str:
    """The ``--debug`` phase table of a build's stderr (else its last 3,000 characters)."""
    at = err.find("exresearch build: time by phase")
    return err[at:] if at >= 0 else err[-3000:]


def measure_build(code: Path, study: Path, site: Path, notebooks: Path, extra=()) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code), EXRESEARCH_NOTEBOOKS=str(notebooks),
               PYTHONHASHSEED="0", EXRESEARCH_CACHE_DIR=str(site.parent / f"cache-{site.name}"))
    load0 = os.getloadavg()
    run = run_sampled([str(VENV_PY), "-m", "exresearch", "build", str(study), "--out",
                       str(site), "--no-pdf", "--debug", *extra], env)
    driver, kernels = run["cpu_cli"], run["cpu_kernels"]  # (driver: + the zygote)
    return {"rc": run["rc"], "wall": round(run["wall"], 2),
            "cpu_driver_zygote": round(driver, 2),
            "cpu_kernels": round(kernels, 2), "cpu_total": round(driver + kernels, 2),
            "load_before": [round(x, 2) for x in load0],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "phases": phases(run["err"])}


def measure_inproc(code: Path, study: Path, cache: Path) -> dict:
    script = r'''
import sys, time, tempfile, json
from pathlib import Path
sp, cd = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
from exresearch.study import load_study
from exresearch.build.cache import ResultCache
from exresearch.build import plan as planmod
from exresearch import report
from exresearch.report import panels

def cpu(fn, n=1):
    best = None
    for _ in range(n):
        c = time.process_time(); r = fn(); d = time.process_time() - c
        best = d if best is None else min(best, d)
    return best, r

study = load_study(sp, cache=ResultCache(cd, "validation"))   # fill the caches
report.preload_study(study, cache=ResultCache(cd, "summaries")); panels._forget_preloaded()
out = {}
out["load_study"], study = cpu(lambda: load_study(sp, cache=ResultCache(cd, "validation")), 2)
out["make_plan"], _ = cpu(lambda: planmod.make_plan(study, sp, Path(tempfile.mkdtemp()),
                                                    force=False, only=None), 3)
def pre():
    panels._forget_preloaded()
    report.preload_study(study, cache=ResultCache(cd, "summaries"))
out["preload_study"], _ = cpu(pre, 2)
out["check per report"], same = cpu(lambda: panels._preloaded(sp), 5)
assert same is study
print(json.dumps({k: round(v, 4) for k, v in out.items()}))
'''
    env = dict(os.environ, PYTHONPATH=str(code))
    res = subprocess.run([str(VENV_PY), "-c", script, str(study), str(cache)], env=env,
                         capture_output=True, text=True, check=True, cwd="/tmp")
    return {"load": [round(x, 2) for x in os.getloadavg()], **json.loads(res.stdout)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["build", "inproc"])
    p.add_argument("--code", type=Path, required=True, help="checkout whose exresearch/ runs")
    p.add_argument("--notebooks", type=Path, default=Path("/tmp/exresearch-light-notebooks"))
    p.add_argument("study", type=Path)
    p.add_argument("target", type=Path, help="site folder (build) or cache folder (inproc)")
    p.add_argument("extra", nargs="*", help="more arguments for exresearch build")
    a = p.parse_args(argv)
    if a.mode == "build":
        res = measure_build(a.code.resolve(), a.study.resolve(), a.target.resolve(),
                            light_notebooks(a.notebooks), a.extra)
        phases = res.pop("phases")
        print(json.dumps(res))
        print(phases)
    else:
        print(json.dumps(measure_inproc(a.code.resolve(), a.study.resolve(), a.target)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
