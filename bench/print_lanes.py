"""Printing alone: N pages of a built site to PDF, one way against another (issue 20).

Each run is a fresh process (importing exresearch from ``--code``) that prints the first
``--pages`` report and brief pages of ``--site`` into a temporary folder, with one of:

- ``lanes:W``: :func:`exresearch.deliver.render_pdfs` with ``workers=W`` (one browser,
  W pages at once; whatever the checkout's code does);
- ``browsers:W``: W threads, each its own :func:`render_pdfs` (``workers=1``) on every
  W-th page, i.e. W browsers (and W playwright drivers) printing one page each at once.

Per run: wall time, CPU of the Python process, CPU of its children as ``os.wait4`` of the
run's process sees them (an undercount: Chromium's processes that their parents did not
reap are not in it), and the CPU of every descendant process sampled from /proc every
0.2 s (the last value seen per process, so each misses up to 0.2 s), by kind: playwright's
node ``driver``, Chromium's ``browser`` and ``renderer`` processes, the ``rest`` (GPU,
zygote, network and storage services, one print compositor process per PDF printed).
"cores busy" = (sampled CPU + the Python process's) / wall.
Runs alternate (every way once per round). Every run's PDFs are compared with the first
run's (page count by ``pdfinfo``, text by ``pdftotext``).

Usage::

    nice -n 10 .venv/bin/python bench/print_lanes.py --site /tmp/i20-print/site30 \\
        --code before=/tmp/i20-print/before --code after=. --way lanes:1 --way lanes:2 \\
        --pages 16 --rounds 2 [--out r.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixed_costs  # noqa: E402
from common import ROOT, VENV_BIN  # noqa: E402


def _kind(cmdline: list[str]) -> str:
    if not cmdline:
        return "other"
    if "node" in Path(cmdline[0]).name or any(a.endswith("cli.js") for a in cmdline[:3]):
        return "driver"
    for a in cmdline:
        if a.startswith("--type="):
            kind = a[len("--type="):]
            if kind == "utility":
                for b in cmdline:
                    if b.startswith("--utility-sub-type="):
                        return "utility:" + b.split("=", 1)[1].split(".")[-1]
            return kind
    if "chrom" in Path(cmdline[0]).name:
        return "browser"
    return "other"


def _descendants(root: int) -> dict[int, tuple[str, float]]:
    """{pid: (kind, CPU seconds)} of every descendant of ``root`` now."""
    out = {}
    for pid, (cpu, _) in fixed_costs._descendants(root).items():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        # (Chromium rewrites its command line: one string, arguments split by spaces)
        out[pid] = (_kind(cmd.replace("\0", " ").split()), cpu)
    return out


def worker(spec: dict) -> dict:
    """In a process importing the checkout's exresearch: print, timed."""
    from exresearch import deliver

    jobs = [(Path(h), Path(spec["out"]) / f"{Path(h).parent.name}-{Path(h).stem}.pdf")
            for h in spec["pages"]]  # reports/x.html and briefs/x.html: two PDFs
    seen: dict[int, tuple[str, float]] = {}
    stop = threading.Event()

    def sample():
        while not stop.wait(0.2):
            seen.update(_descendants(os.getpid()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    way, n = spec["way"].split(":")
    n = int(n)
    t0, c0 = time.perf_counter(), time.process_time()
    if way == "lanes":
        deliver.render_pdfs(jobs, workers=n)
    elif way == "browsers":
        errors = []

        def one(part):
            try:
                deliver.render_pdfs(part, workers=1)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)
        threads = [threading.Thread(target=one, args=(jobs[i::n],)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
    else:
        raise ValueError(f"unknown way {spec['way']!r}")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    stop.set()
    sampler.join()
    kinds: dict[str, float] = {}
    for kind, sec in seen.values():
        kinds[kind] = kinds.get(kind, 0.0) + sec
    return {"wall": wall, "cpu_self": cpu, "kinds": kinds,
            "procs": {k: sum(1 for kk, _ in seen.values() if kk == k) for k in kinds}}


def _pdf_facts(folder: Path) -> dict:
    out = {}
    for pdf in sorted(folder.glob("*.pdf")):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
        pages = next((ln.split()[-1] for ln in info.splitlines() if ln.startswith("Pages:")),
                     "?")
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True,
                              text=True).stdout
        out[pdf.name] = (pages, text)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", required=True, type=Path)
    ap.add_argument("--code", action="append", default=[], help="NAME=DIR (default: this "
                    "checkout)")
    ap.add_argument("--way", action="append", default=[], help="lanes:W or browsers:W")
    ap.add_argument("--pages", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tmp", type=Path, default=Path("/tmp/i20-print"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        spec = json.loads(Path(args.worker).read_text())
        Path(spec["result"]).write_text(json.dumps(worker(spec)))
        return 0
    codes = [c.split("=", 1) for c in args.code] or [["this", str(ROOT)]]
    ways = args.way or ["lanes:1", "lanes:2"]
    reports = sorted((args.site / "reports").glob("*.html"))
    briefs = sorted((args.site / "briefs").glob("*.html"))
    pages = [str(p) for pair in zip(reports, briefs, strict=False)
             for p in pair][:args.pages]
    args.tmp.mkdir(parents=True, exist_ok=True)
    rows, reference = [], None
    header = ("| round | code | way | wall s | CPU self s | CPU children (wait4) s | CPU "
              "descendants (sampled) s | cores busy | renderer | browser | driver | rest "
              "| print compositors | load 1 min (start -> end) | PDFs same |")
    print(header + "\n|" + "---|" * 15, flush=True)
    for rnd in range(1, args.rounds + 1):
        order = [(c, w) for c in codes for w in ways]
        if rnd % 2 == 0:
            order.reverse()
        for (name, code), way in order:
            run = Path(tempfile.mkdtemp(dir=args.tmp, prefix="run-"))
            spec = {"pages": pages, "out": str(run / "pdf"), "way": way,
                    "result": str(run / "result.json")}
            (run / "spec.json").write_text(json.dumps(spec))
            load0 = os.getloadavg()[0]
            env = dict(os.environ, PYTHONPATH=str(Path(code).resolve()))
            t0 = time.perf_counter()
            proc = subprocess.Popen([str(VENV_BIN / "python"), __file__, "--site",
                                     str(args.site), "--worker", str(run / "spec.json")],
                                    env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            wall_all = time.perf_counter() - t0
            load1 = os.getloadavg()[0]
            if status != 0:
                print(f"run failed: {name} {way} (status {status})", flush=True)
                continue
            res = json.loads((run / "result.json").read_text())
            tree = usage.ru_utime + usage.ru_stime
            facts = _pdf_facts(run / "pdf")
            if reference is None:
                reference, same = facts, "reference"
            else:
                same = "yes" if facts == reference else "NO"
            k = res["kinds"]

            def s(*names, k=k):
                return f"{sum(v for kk, v in k.items() if kk.split(':')[0] in names):.1f}"
            total = sum(k.values())
            rest = total - sum(v for kk, v in k.items() if kk in ("renderer", "browser",
                                                                 "driver"))
            row = (f"| {rnd} | {name} | {way} | {res['wall']:.1f} | {res['cpu_self']:.1f} | "
                   f"{tree - res['cpu_self']:.1f} | {total:.1f} | "
                   f"{(total + res['cpu_self']) / res['wall']:.2f} | {s('renderer')} | "
                   f"{s('browser')} | {s('driver')} | {rest:.1f} | "
                   f"{res['procs'].get('utility:PrintCompositor', 0)} | "
                   f"{load0:.2f} -> {load1:.2f} | {same} |")
            print(row, flush=True)
            rows.append(row)
            (run / "kinds.json").write_text(json.dumps(res, indent=1))
            print(f"    kinds: {json.dumps({a: round(b, 2) for a, b in k.items()})} "
                  f"procs: {res['procs']} (process wall {wall_all:.1f} s)", flush=True)
    if args.out:
        args.out.write_text(header + "\n|" + "---|" * 15 + "\n" + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
