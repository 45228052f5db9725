"""Full build and one-client rebuild, checkout against checkout (issue 20, extras pipeline).

For each checkout (``--code NAME=DIR``, e.g. a ``git archive`` of main and this tree), in
turn (alternately, ``--repeat`` times): ``exresearch build STUDY --out SITE --jobs 2
--debug`` into a fresh folder, PDFs on. Then, on a private copy of the study with one
answer of one client changed, the rebuild of each checkout's last site (every build reads a private copy of the
study, so that one answer can be changed). Each build runs
with that checkout's exresearch and notebooks (``PYTHONPATH``, ``EXRESEARCH_NOTEBOOKS``)
and its own result cache (the cache key hashes the source), warmed by one build first
(``--warm``, reported as a full build with a cold cache).

Measured per build: wall, CPU of the whole process tree (``os.wait4`` of the build:
user + system of every process it and its descendants reaped: kernels, zygote, Chromium,
workers), peak PSS of the tree (sampled every 0.25 s, ``b6_scale._Sampler``), the load
average before and after, and the ``--debug`` phase lines.

    nice -n 10 .venv/bin/python bench/b6_overlap.py --study /work/studies/b6-30 \\
        --code before=/tmp/before --code after=. --repeat 2 --warm --work /tmp/X
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from b6_scale import _Sampler  # noqa: E402
from build_cases import change_one_answer  # noqa: E402
from common import VENV_BIN  # noqa: E402


def build(code: Path, study: Path, site: Path, work: Path, name: str, *, jobs: int) -> dict:
    """One ``exresearch build`` of checkout ``code``; its wall, tree CPU, peak PSS."""
    cache = work / f"cache-{name}"
    tmp = work / f"tmp-{name}"
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(code), EXRESEARCH_NOTEBOOKS=str(code / "notebooks"),
               EXRESEARCH_CACHE_DIR=str(cache), TMPDIR=str(tmp), EXRESEARCH_PDF="1",
               PYTHONHASHSEED="0")
    cmd = [str(VENV_BIN / "python"), "-m", "exresearch", "build", str(study), "--out",
           str(site), "--jobs", str(jobs), "--debug", "--pdf"]
    log = site.parent / f"{site.name}.log"
    load0 = os.getloadavg()
    t = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=fh, env=env, cwd=str(work))
        sampler = _Sampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    wall = time.perf_counter() - t
    rc = proc.returncode
    if rc not in (0, 1):
        raise RuntimeError(f"build failed ({rc}): {log.read_text()[-3000:]}")
    text = log.read_text()
    phases = [line for line in text.splitlines() if line.startswith("  ") and " s" in line]
    return {"code": name, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "peak_pss": sampler.peak, "load": (load0[0], os.getloadavg()[0]),
            "rc": rc, "phases": phases, "log": str(log)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", type=Path, required=True)
    ap.add_argument("--code", action="append", required=True, help="NAME=DIR")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--warm", action="store_true",
                    help="first one build per checkout with a cold result cache")
    ap.add_argument("--rebuild", action="store_true", help="then one client changed")
    ap.add_argument("--full", action="store_true", help="measure full builds")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    codes = [(c.split("=", 1)[0], Path(c.split("=", 1)[1]).resolve()) for c in args.code]
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    rows = []

    def emit(row, what):
        row["what"] = what
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "phases"}), flush=True)
        for line in row["phases"]:
            print("   ", line, flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))

    sites = {}
    study = work / "study"
    if not study.is_dir():
        shutil.copytree(args.study, study)  # (the shared study is read-only)
    args.study = study
    if args.warm:
        for name, code in codes:
            site = work / f"warm-{name}"
            shutil.rmtree(site, ignore_errors=True)
            emit(build(code, args.study, site, work, name, jobs=args.jobs),
                 "full build, cold result cache")
            sites[name] = site
    if args.full:
        for i in range(args.repeat):
            order = codes if i % 2 == 0 else codes[::-1]
            for name, code in order:
                site = work / f"full-{name}-{i}"
                shutil.rmtree(site, ignore_errors=True)
                emit(build(code, args.study, site, work, name, jobs=args.jobs), "full")
                sites[name] = site
    if args.rebuild:
        for i in range(args.repeat):
            client = sorted(p.name for p in (study / "clients").iterdir())[i % 3]
            changed = change_one_answer(study, client)
            for name, code in (codes if i % 2 == 0 else codes[::-1]):
                emit(build(code, study, sites[name], work, name, jobs=args.jobs),
                     f"one client changed ({client}: {changed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
