"""Printing alone: N pages of a built site to PDF, one way against another (issue 20).

Each run is a fresh process (importing exresearch from ``--code``) that prints the first
``--pages`` report and brief pages of ``--site`` (alternately; ``--only reports`` or
``--only briefs``: one kind) into a temporary folder, with one of:

- ``lanes:W``: :func:`exresearch.deliver.render_pdfs` with ``workers=W`` (one browser,
  W pages at once; whatever the checkout's code does);
- ``browsers:W``: W threads, each its own :func:`render_pdfs` (``workers=1``) on every
  W-th page, i.e. W browsers (and W playwright drivers) printing one page each at once.

Per run: wall time, CPU of the Python process, CPU of its children as ``os.wait4`` of the
run's process sees them (the run's process is a child subreaper that reaps every orphaned
descendant, so this is the whole tree's CPU: Chromium's zygote and renderers, which their
parents do not reap, included; before that, about half was missing), and the CPU of every descendant process sampled from /proc every
0.2 s (the last value seen per process, so each misses up to 0.2 s), by kind: playwright's
node ``driver``, Chromium's ``browser`` and ``renderer`` processes, the ``rest`` (GPU,
zygote, network and storage services, one print compositor process per PDF printed).
"cores busy" = (reaped CPU + the Python process's) / wall.
Runs alternate (every code x flags x way once per round). Every run's PDFs are compared
with the first run's (page count by ``pdfinfo``, text by ``pdftotext``, and with
``--pixels`` every page's pixels: ``pdftoppm -r 50``, hashed).

``--flags NAME=SPEC`` (repeatable) changes how the checkout's code launches and prints, by
wrapping playwright's ``BrowserType.launch``, ``Page.goto`` and ``Page.pdf`` in the run's
process (the library code itself is untouched). SPEC is space-separated tokens:
``--switch[=value]`` adds a Chromium switch to the launch args; ``no:--switch`` drops one
of playwright's default switches (``ignore_default_args``); ``pdf:key=true|false`` adds a
``page.pdf`` keyword; ``wait:EVENT`` replaces ``goto``'s ``wait_until``; ``media-first``
emulates print media before each ``goto`` too; ``vp:WxH`` sets the context's viewport. An empty SPEC
(``NAME=``) is the code as it is.

Usage::

    nice -n 10 .venv/bin/python bench/print_lanes.py --site /tmp/i20-print/site30 \\
        --code before=/tmp/i20-print/before --code after=. --way lanes:1 --way lanes:2 \\
        --pages 16 --rounds 2 [--out r.md]
    nice -n 10 .venv/bin/python bench/print_lanes.py --site /tmp/i20-chromium/site \
        --flags as-is= --flags 'gpu-in=--in-process-gpu' --way lanes:2 --rounds 3 \
        --pages 0 --include reports/data-quality.html --pixels
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import resource
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


def _apply_flags(spec_text: str) -> None:
    """Wrap playwright's launch / goto / pdf in this process as ``--flags`` SPEC says."""
    tokens = spec_text.split()
    if not tokens:
        return
    from playwright import async_api

    add = [t for t in tokens if t.startswith("--")]
    drop = [t[3:] for t in tokens if t.startswith("no:")]
    pdf_kw = {}
    for t in tokens:
        if t.startswith("pdf:"):
            key, value = t[4:].split("=", 1)
            pdf_kw[key] = {"true": True, "false": False}.get(value, value)
    wait = next((t[5:] for t in tokens if t.startswith("wait:")), None)
    media_first = "media-first" in tokens
    viewport = next((t[3:] for t in tokens if t.startswith("vp:")), None)
    unknown = [t for t in tokens if not t.startswith(("--", "no:", "pdf:", "wait:", "vp:"))
               and t != "media-first"]
    if unknown:
        raise ValueError(f"unknown --flags tokens {unknown!r}")
    launch, goto, pdf, new_context = (async_api.BrowserType.launch, async_api.Page.goto,
                                      async_api.Page.pdf, async_api.Browser.new_context)

    async def new_context2(self, **kw):
        if viewport:
            w, h = viewport.split("x")
            kw["viewport"] = {"width": int(w), "height": int(h)}
        return await new_context(self, **kw)

    async def launch2(self, **kw):
        kw["args"] = list(kw.get("args") or []) + add
        if drop:
            kw["ignore_default_args"] = drop
        return await launch(self, **kw)

    async def goto2(self, url, **kw):
        if wait:
            kw["wait_until"] = wait
        if media_first:  # the page loads (and is laid out) in print media at once
            await self.emulate_media(media="print")
        return await goto(self, url, **kw)

    async def pdf2(self, **kw):
        return await pdf(self, **{**kw, **pdf_kw})

    async_api.BrowserType.launch, async_api.Page.goto, async_api.Page.pdf = (
        launch2, goto2, pdf2)
    async_api.Browser.new_context = new_context2


def worker(spec: dict) -> dict:
    """In a process importing the checkout's exresearch: print, timed."""
    import ctypes

    from exresearch import deliver

    # a "subreaper": every descendant whose parent exits without reaping it (Chromium's
    # zygote and its children) is handed to this process, which reaps it below, so
    # RUSAGE_CHILDREN (and the parent's os.wait4 of this process) holds the whole tree's
    # CPU, not only the part reaped up the chain (prctl PR_SET_CHILD_SUBREAPER = 36)
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    _apply_flags(spec.get("flags", ""))

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
    deadline = time.monotonic() + 20  # reap what is left of the tree (see above)
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.05)
    tree = resource.getrusage(resource.RUSAGE_CHILDREN)
    kinds: dict[str, float] = {}
    for kind, sec in seen.values():
        kinds[kind] = kinds.get(kind, 0.0) + sec
    return {"wall": wall, "cpu_self": cpu, "kinds": kinds,
            "cpu_children": tree.ru_utime + tree.ru_stime,
            "procs": {k: sum(1 for kk, _ in seen.values() if kk == k) for k in kinds}}


def _pdf_facts(folder: Path, *, pixels: bool = False) -> dict:
    out = {}
    for pdf in sorted(folder.glob("*.pdf")):
        if pixels:  # every page at 50 dpi, raw pixels (PPM: no dates, no ids), hashed
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                subprocess.run(["pdftoppm", "-r", "50", str(pdf), f"{tmp}/p"], check=True)
                out[pdf.name + " pixels"] = [
                    hashlib.sha256(f.read_bytes()).hexdigest()
                    for f in sorted(Path(tmp).glob("p-*.ppm"),
                                    key=lambda f: int(f.stem.rsplit("-", 1)[1]))]
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
        pages = next((ln.split()[-1] for ln in info.splitlines() if ln.startswith("Pages:")),
                     "?")
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True,
                              text=True).stdout
        out[pdf.name] = (pages, text)
    return out


def _site_pages(site: Path, *, n: int, only: str | None = None,
                include=()) -> list[str]:
    """The first ``n`` pages of ``site``: a report, a brief, the next report...
    (``only="reports"`` / ``"briefs"``: those alone), then each of ``include``."""
    reports = [] if only == "briefs" else sorted((site / "reports").glob("*.html"))
    briefs = [] if only == "reports" else sorted((site / "briefs").glob("*.html"))
    pages = [str(p) for pair in itertools.zip_longest(reports, briefs)
             for p in pair if p is not None][:n]
    return pages + [str(site / p) for p in include]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", required=True, type=Path)
    ap.add_argument("--code", action="append", default=[], help="NAME=DIR (default: this "
                    "checkout)")
    ap.add_argument("--way", action="append", default=[], help="lanes:W or browsers:W")
    ap.add_argument("--flags", action="append", default=[],
                    help="NAME=SPEC: switches / print options (see the docstring)")
    ap.add_argument("--pages", type=int, default=16)
    ap.add_argument("--only", choices=["reports", "briefs"],
                    help="print only the site's report pages, or only its briefs")
    ap.add_argument("--include", action="append", default=[],
                    help="a page of --site (e.g. reports/data-quality.html) printed too")
    ap.add_argument("--pixels", action="store_true",
                    help="compare every PDF page's pixels too (pdftoppm -r 50)")
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
    pages = _site_pages(args.site, n=args.pages, only=args.only, include=args.include)
    flags = [f.split("=", 1) for f in args.flags] or [["as-is", ""]]
    args.tmp.mkdir(parents=True, exist_ok=True)
    rows, reference = [], None
    header = ("| round | code | way | wall s | CPU self s | CPU descendants (wait4, all reaped) s | CPU "
              "descendants (sampled) s | cores busy | renderer | browser | driver | rest "
              "| print compositors | load 1 min (start -> end) | PDFs same |")
    print(header + "\n|" + "---|" * 15, flush=True)
    for rnd in range(1, args.rounds + 1):
        order = [(c, f, w) for c in codes for f in flags for w in ways]
        if rnd % 2 == 0:
            order.reverse()
        for (name, code), (fname, fspec), way in order:
            if len(flags) > 1 or fspec:
                name = f"{name} {fname}"
            run = Path(tempfile.mkdtemp(dir=args.tmp, prefix="run-"))
            spec = {"pages": pages, "out": str(run / "pdf"), "way": way, "flags": fspec,
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
            facts = _pdf_facts(run / "pdf", pixels=args.pixels)
            if reference is None:
                reference, same = facts, "reference"
            else:
                same = "yes" if facts == reference else "NO: " + ", ".join(
                    sorted(k for k in reference if facts.get(k) != reference[k]))
            k = res["kinds"]

            def s(*names, k=k):
                return f"{sum(v for kk, v in k.items() if kk.split(':')[0] in names):.1f}"
            total = sum(k.values())
            rest = total - sum(v for kk, v in k.items() if kk in ("renderer", "browser",
                                                                 "driver"))
            row = (f"| {rnd} | {name} | {way} | {res['wall']:.1f} | {res['cpu_self']:.1f} | "
                   f"{res['cpu_children']:.1f} | {total:.1f} | "
                   f"{(res['cpu_children'] + res['cpu_self']) / res['wall']:.2f} | {s('renderer')} | "
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
