"""B6: a Gallup-size study on one machine (300 clients x 30 units x 4 periods).

For each size (default 30, 100 and 300 clients; 30 units, 4 periods each):

* full build: ``exresearch build STUDY --out SITE`` into a new folder (default jobs);
* one client changed: one answer of one client's survey changed, then the same command
  (that client, the synthesis and the data-quality report re-run);
* per-report cost: the median and quartiles of the client reports' run time (from the
  manifest), to show it does not grow with the number of clients;
* synthesis and data-quality run time;
* peak memory of the whole build: the largest sum over the build's process tree (driver,
  zygote, kernels) of each process's proportional set size (PSS, so pages that forked
  kernels share with the zygote are not counted twice), sampled every 0.25 s.

Usage::

    nice -n 10 .venv/bin/python bench/b6_scale.py                 # 30, 100, 300 clients
    .venv/bin/python bench/b6_scale.py --sizes 3,6 --units 6 --periods 2 --md /tmp/b6.md

Results go to ``bench/results-b6.md`` (and ``--json``); studies are simulated with a fixed
seed into ``$TMPDIR/exresearch-bench/b6/`` (cached between runs), never into ``data/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_cases import change_one_answer, notebooks_dir  # noqa: E402
from common import VENV_BIN, fmt_bytes, fmt_seconds  # noqa: E402

SEED = 20261202
TARGETS = {"full": 600.0, "changed": 20.0, "memory": 4 * 1024 ** 3}


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [pid], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _pss(pid: int) -> int:
    """Proportional set size of one process in bytes (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _Sampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.peak_procs = pid, every, 0, 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            procs = _tree(self.pid)
            total = sum(_pss(p) for p in procs)
            if total > self.peak:
                self.peak, self.peak_procs = total, len(procs)
            self._halt.wait(self.every)

    def stop(self):
        self._halt.set()
        self.join()


def _timed(cmd: list[str], nb_dir: Path, log: Path) -> tuple[float, int, _Sampler]:
    env = dict(os.environ, EXRESEARCH_NOTEBOOKS=str(nb_dir), PYTHONHASHSEED="0")
    t = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=fh, env=env)
        sampler = _Sampler(proc.pid)
        sampler.start()
        rc = proc.wait()
        sampler.stop()
    return time.perf_counter() - t, rc, sampler


def timed_run(nb: Path, study: Path, out: Path, nb_dir: Path) -> dict:
    """``exresearch run NOTEBOOK -p study_path STUDY --out OUT``: one study-wide report
    on its own (an ordinary kernel subprocess, so it includes the kernel's imports)."""
    shutil.rmtree(out, ignore_errors=True)  # written by this script's last run
    cmd = [str(VENV_BIN / "exresearch"), "run", str(nb), "-p", "study_path", str(study),
           "--out", str(out)]
    wall, rc, sampler = _timed(cmd, nb_dir, out.parent / f"{out.name}.log")
    if rc != 0:
        raise RuntimeError(f"run failed ({rc}): {(out.parent / f'{out.name}.log').read_text()[-3000:]}")
    return {"wall": wall, "peak_pss": sampler.peak}


def timed_build(study: Path, site: Path, nb_dir: Path, *, jobs=None, extra=()) -> dict:
    """Run ``exresearch build`` as a user does; wall time and peak memory."""
    cmd = [str(VENV_BIN / "exresearch"), "build", str(study), "--out", str(site), *extra]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    log = site.parent / f"{site.name}.log"
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    wall, rc, sampler = _timed(cmd, nb_dir, log)
    wall = time.perf_counter() - t
    load = (load0, os.getloadavg()[0])
    if rc not in (0, 1):
        raise RuntimeError(f"build failed ({rc}): {log.read_text()[-3000:]}")
    m = json.loads((site / "manifest.json").read_text())
    return {"wall": wall, "exit_code": rc, "peak_pss": sampler.peak, "load": load,
            "peak_processes": sampler.peak_procs,
            "executed": [r["key"] for r in m["reports"] if r["executed"]],
            "durations": {r["key"]: r["duration"] for r in m["reports"]},
            "failed": [r["key"] for r in m["reports"] if r["status"] == "failed"]}


def make_study(root: Path, n_clients: int, units: int, periods: int) -> tuple[Path, float]:
    from exresearch.simulate import simulate_study

    path = root / f"study-{n_clients}x{units}x{periods}"
    t = time.perf_counter()
    if not (path / "study.yml").is_file():
        shutil.rmtree(path, ignore_errors=True)
        simulate_study(path, n_clients=n_clients, n_units=units, n_periods=periods, seed=SEED)
    return path, time.perf_counter() - t


def _quartiles(values):
    v = sorted(values)
    if len(v) >= 4:
        q = statistics.quantiles(v, n=4, method="inclusive")
        return statistics.median(v), q[0], q[2]
    return (statistics.median(v), v[0], v[-1]) if v else (float("nan"),) * 3


def run_size(root: Path, nb_dir: Path, n: int, units: int, periods: int, jobs=None) -> dict:
    study, sim_s = make_study(root, n, units, periods)
    site = root / f"site-{n}"
    # a result cache of this run's own: the full build starts cold even when an earlier
    # run (same code version) left one in the user's cache folder
    cache = root / f"cache-{n}"
    shutil.rmtree(site, ignore_errors=True)  # written by this script's last run
    shutil.rmtree(cache, ignore_errors=True)  # (likewise)
    full = timed_build(study, site, nb_dir, jobs=jobs, extra=["--cache", str(cache)])
    client = sorted(p.name for p in (study / "clients").iterdir())[n // 2]
    changed_file = change_one_answer(study, client)
    changed = timed_build(study, site, nb_dir, jobs=jobs, extra=["--cache", str(cache)])
    clients = [d for k, d in full["durations"].items() if k.startswith("client-")]
    med, q1, q3 = _quartiles(clients)
    return {"clients": n, "units": units, "periods": periods, "simulate_s": sim_s,
            "full": full, "changed": changed, "changed_file": changed_file,
            "client_report_median": med, "client_report_q1": q1, "client_report_q3": q3,
            "client_report_sum": sum(clients),
            "synthesis": full["durations"].get("synthesis"),
            "data_quality": full["durations"].get("data-quality")}


def run_sampled(root: Path, nb_dir: Path, n: int, units: int, periods: int, sample: int,
                jobs=None) -> dict:
    """A size too long to build in full here: ``sample`` client reports (``--only``, into
    a new site, the zygote loading the whole study), then the synthesis and the
    data-quality report each on its own (``exresearch run``)."""
    study, sim_s = make_study(root, n, units, periods)
    site = root / f"site-{n}-sample"
    shutil.rmtree(site, ignore_errors=True)
    ids = sorted(p.name for p in (study / "clients").iterdir())
    picked = ids[:: max(1, len(ids) // sample)][:sample]
    only = timed_build(study, site, nb_dir, jobs=jobs, extra=["--only", *picked])
    clients = [only["durations"][f"client-{c}"] for c in picked]
    med, q1, q3 = _quartiles(clients)
    syn = timed_run(nb_dir / "synthesis.ipynb", study, root / f"run-{n}-synthesis", nb_dir)
    dq = timed_run(nb_dir / "data_quality.ipynb", study, root / f"run-{n}-dq", nb_dir)
    return {"clients": n, "units": units, "periods": periods, "simulate_s": sim_s,
            "sample": picked, "only": only, "client_report_median": med,
            "client_report_q1": q1, "client_report_q3": q3, "synthesis_run": syn,
            "data_quality_run": dq}


def markdown_sampled(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = ["", "Sizes not built in full in this run (the machine was too loaded to finish "
             "them before the session's deadline): a sample of client reports built with "
             "`--only` (the zygote loads the whole study), and the synthesis and data-quality "
             "notebooks each run on their own with `exresearch run` (an ordinary kernel, so "
             "including about 3-5 s of imports). The full build would take about "
             "(clients x median client report + synthesis + data quality) / jobs.", "",
             "| clients (x units x periods) | sampled client reports: build wall | per client "
             "report, median (q1-q3) | synthesis alone | data quality alone | peak memory |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        peak = max(r["only"]["peak_pss"], r["synthesis_run"]["peak_pss"],
                   r["data_quality_run"]["peak_pss"])
        lines.append(
            f"| {r['clients']} x {r['units']} x {r['periods']} | {len(r['sample'])}: "
            f"{fmt_seconds(r['only']['wall'])} | {fmt_seconds(r['client_report_median'])} "
            f"({fmt_seconds(r['client_report_q1'])}-{fmt_seconds(r['client_report_q3'])}) | "
            f"{fmt_seconds(r['synthesis_run']['wall'])} | "
            f"{fmt_seconds(r['data_quality_run']['wall'])} | {fmt_bytes(peak)} |")
    return lines


def markdown(results: list[dict], meta: dict, sampled: list[dict] | None = None) -> str:
    lines = [
        "## B6: a Gallup-size study on one machine",
        "",
        f"Run {meta['started']} to {meta['finished']} UTC on {meta['machine']} "
        f"({meta['cores']} cores, load average at start {meta['load']}), notebooks: "
        f"{meta['notebooks']}. Command: `{meta['command']}`. Each size: a full build into a "
        "new folder, then one answer of one client changed and the same command again. "
        "Peak memory: the largest sum of PSS over the build's processes (driver, zygote, "
        "kernels), sampled every 0.25 s. Targets: full build under 10 min at 300 "
        "clients, one client changed under 20 s, peak memory under 4 GiB.",
        "",
        "| clients (x units x periods) | reports | full build | per client report, median "
        "(q1-q3) | synthesis | data quality | one client changed (re-run: run time each) | "
        "peak memory (processes) | load average, full / changed (start-end) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f, c = r["full"], r["changed"]
        reran = ", ".join(f"{k} {fmt_seconds(c['durations'][k])}" for k in c["executed"])
        lines.append(
            f"| {r['clients']} x {r['units']} x {r['periods']} | {len(f['durations'])} | "
            f"{fmt_seconds(f['wall'])} | {fmt_seconds(r['client_report_median'])} "
            f"({fmt_seconds(r['client_report_q1'])}-{fmt_seconds(r['client_report_q3'])}) | "
            f"{fmt_seconds(r['synthesis'] or float('nan'))} | "
            f"{fmt_seconds(r['data_quality'] or float('nan'))} | {fmt_seconds(c['wall'])} "
            f"({reran}) "
            f"| {fmt_bytes(max(f['peak_pss'], c['peak_pss']))} ({f['peak_processes']}) | "
            f"{f['load'][0]:.1f}-{f['load'][1]:.1f} / {c['load'][0]:.1f}-{c['load'][1]:.1f} |")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        k = b["clients"] / a["clients"]
        lines += ["", f"From {a['clients']} to {b['clients']} clients ({k:.0f}x): full build "
                  f"x{b['full']['wall'] / a['full']['wall']:.1f}, median client report "
                  f"x{b['client_report_median'] / a['client_report_median']:.2f}, synthesis "
                  f"x{(b['synthesis'] or 0) / (a['synthesis'] or 1):.1f}, data quality "
                  f"x{(b['data_quality'] or 0) / (a['data_quality'] or 1):.1f}."]
        big = results[-1]
        ok = (big["full"]["wall"] < TARGETS["full"], big["changed"]["wall"] < TARGETS["changed"],
              max(big["full"]["peak_pss"], big["changed"]["peak_pss"]) < TARGETS["memory"])
        lines += ["", "Targets at the largest size: full build < 10 min: "
                  f"{'met' if ok[0] else 'NOT met'}; one client changed < 20 s: "
                  f"{'met' if ok[1] else 'NOT met'}; peak memory < 4 GiB: "
                  f"{'met' if ok[2] else 'NOT met'}."]
    if results and math.isfinite(results[-1]["client_report_median"] or math.nan) \
            and results[-1]["client_report_median"] > 0:
        # the host's speed divided out: wall times in units of its median client report
        # (the same code took 1.90 s on one host and 7.33 s on another 3.6x slower per
        # core; the two full builds were 258 and 253 of them, bench/results.md)
        big = results[-1]
        unit = big["client_report_median"]
        lines += ["", f"In median client reports of this host ({fmt_seconds(unit)}), at "
                  f"{big['clients']} clients: full build {big['full']['wall'] / unit:.0f}, "
                  f"one client changed {big['changed']['wall'] / unit:.1f}."]
    failed = sorted({k for r in results for k in r["full"]["failed"]})
    if failed:
        lines += ["", f"Failed reports: {', '.join(failed)}."]
    lines += markdown_sampled(sampled or [])
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="30,100,300", help="clients per study, comma-separated")
    ap.add_argument("--units", type=int, default=30)
    ap.add_argument("--periods", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--sampled", default="", help="sizes measured by a sample only")
    ap.add_argument("--sample", type=int, default=6, help="client reports in a sample")
    ap.add_argument("--md", type=Path, default=Path(__file__).parent / "results-b6.md")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    root = Path(tempfile.gettempdir()) / "exresearch-bench" / "b6"
    root.mkdir(parents=True, exist_ok=True)
    nb_dir, nb_source = notebooks_dir(root)
    meta = {"started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.system()} {platform.machine()}",
            "cores": os.cpu_count(), "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            "notebooks": nb_source,
            "command": "python bench/b6_scale.py " + " ".join(argv or sys.argv[1:])}
    results, sampled = [], []
    for n in [int(s) for s in args.sampled.split(",") if s]:
        print(f"B6: {n} clients, sampled ...", file=sys.stderr, flush=True)
        sampled.append(run_sampled(root, nb_dir, n, args.units, args.periods, args.sample,
                                   args.jobs))
        meta["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
        args.md.write_text(markdown(results, meta, sampled))
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "results": results,
                                             "sampled": sampled}, indent=1))
    for n in sizes:
        print(f"B6: {n} clients ...", file=sys.stderr, flush=True)
        results.append(run_size(root, nb_dir, n, args.units, args.periods, args.jobs))
        meta["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
        args.md.write_text(markdown(results, meta, sampled))  # after every size
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "results": results,
                                             "sampled": sampled}, indent=1))
        r = results[-1]
        print(f"B6: {n} clients: full {r['full']['wall']:.1f} s, changed "
              f"{r['changed']['wall']:.1f} s, peak {fmt_bytes(r['full']['peak_pss'])}",
              file=sys.stderr, flush=True)
    print(args.md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
