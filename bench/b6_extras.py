"""B6, the build's "extras" phase at scale, one checkout against another.

After every report has run, :func:`exresearch.deliver.publish_extras` writes per report
an Excel workbook, per client an executive brief, and prints every report and brief to
PDF (then :func:`exresearch.deliver.compact_pdf` on each). This script times that phase
alone on a site already built (``exresearch build STUDY --out SITE``): it copies the
site's pages and tables (not its workbooks, briefs or PDFs) into a fresh folder and runs
``publish_extras`` there with nothing to reuse, in a fresh process importing exresearch
from the checkout given (``PYTHONPATH``). It reports the phase's wall time and CPU time
(this process plus its reaped children: the playwright driver, Chromium and any worker
processes), and per item (workbook, brief, PDF print, compact_pdf) the count, CPU and
wall time as seen in the thread doing it (publish_extras's worker processes, with
``--jobs`` 2 or more since branch i20-after, report theirs through a file when forked;
spawned ones are not timed per item, their CPU is in "CPU children").
Checkouts are run in turn (before, after, before, after), so they share the machine's
conditions; the load average is recorded with each run. Each run's PDFs (pages and
text), workbooks (every cell's value, read back with openpyxl), briefs, data
dictionaries, scrubbed notebooks and the manifest's ``extras`` are compared with the
first run's.

Usage::

    nice -n 10 .venv/bin/python bench/b6_extras.py --site /tmp/site30 \\
        --code before=/tmp/before --code after=. [--repeat 2] [--jobs 2] [--out r.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, VENV_BIN  # noqa: E402


def worker(spec: dict) -> dict:
    """In a process importing the checkout's exresearch: publish_extras, instrumented."""
    import inspect
    import resource

    from exresearch import deliver
    from exresearch.study import load_study

    study = load_study(Path(spec["study"]))
    staging = Path(spec["staging"])
    manifest = json.loads((staging / "manifest.json").read_text(encoding="utf-8"))
    records = [{k: r.get(k) for k in ("key", "kind", "client_id", "name", "status", "html",
                                      "tables")} for r in manifest["reports"]
               if not spec.get("reports") or r.get("key") in spec["reports"]]
    items: dict[str, list] = {}
    me, log = os.getpid(), Path(spec["tmpdir"]).parent / "items.jsonl"

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            # this thread's CPU: compaction may run in a thread beside the printing
            c0, w0 = time.thread_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                row = (time.thread_time() - c0, time.perf_counter() - w0)
                if os.getpid() == me:
                    items.setdefault(name, []).append(row)
                else:  # a forked worker process of publish_extras: told through a file
                    with open(log, "a") as fh:
                        fh.write(json.dumps([name, *row]) + "\n")
        return wrapper

    for name in ("write_workbook", "render_brief", "render_pdfs", "compact_pdf",
                 "notebook_without_images", "data_dictionary"):
        setattr(deliver, name, timed(name, getattr(deliver, name)))
    if spec.get("start_method") and hasattr(deliver, "_start_method"):
        deliver._start_method = lambda: spec["start_method"]  # fork or spawn workers
    kwargs = {}
    if "jobs" in inspect.signature(deliver.publish_extras).parameters:
        kwargs["jobs"] = spec["jobs"]
    ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0, w0 = time.process_time(), time.perf_counter()
    deliver.publish_extras(staging, records=records, study=study, previous=None,
                           pdf=spec["pdf"], progress=False, tmpdir=spec["tmpdir"], **kwargs)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if log.is_file():  # what the worker processes timed
        for line in log.read_text().splitlines():
            name, c, w = json.loads(line)
            items.setdefault(name, []).append((c, w))
    children = (ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime)
    pdfs = sorted((staging / "pdf").glob("*.pdf")) if (staging / "pdf").is_dir() else []
    return {"wall": wall, "cpu_self": cpu, "cpu_children": children,
            "pdfs": len(pdfs), "pdf_bytes": sum(p.stat().st_size for p in pdfs),
            "seen": {**{p.name: seen(p) for p in pdfs}, **other_files(staging)},
            "items": {k: {"n": len(v), "cpu": sum(c for c, _ in v),
                          "wall": sum(w for _, w in v)} for k, v in items.items()}}


def seen(pdf: Path) -> list:
    """What a reader sees of a PDF: [pages (pdfinfo), sha256 of its text (pdftotext)]."""
    import hashlib

    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    pages = next(int(line.split()[-1]) for line in info.stdout.splitlines()
                 if line.startswith("Pages:"))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          check=True).stdout
    return [pages, hashlib.sha256(text).hexdigest()]


def other_files(staging: Path) -> dict:
    """sha256 of what else the phase writes: every workbook's cell values (openpyxl), and
    the bytes of the briefs, data dictionaries, notebooks and the manifest's extras."""
    import hashlib

    import openpyxl

    out = {}
    for wb_path in sorted((staging / "workbooks").glob("*.xlsx")):
        wb = openpyxl.load_workbook(wb_path, read_only=True)
        h = hashlib.sha256()
        for ws in wb.worksheets:
            h.update(repr((ws.title, [list(row) for row in ws.iter_rows(values_only=True)]))
                     .encode())
        wb.close()
        out[wb_path.name] = h.hexdigest()
    for pattern in ("briefs/*.html", "tables/*/data_dictionary.csv", "notebooks/*.ipynb"):
        for f in sorted(staging.glob(pattern)):
            out[str(f.relative_to(staging))] = hashlib.sha256(f.read_bytes()).hexdigest()
    manifest = json.loads((staging / "manifest.json").read_text(encoding="utf-8"))
    out["manifest extras"] = hashlib.sha256(json.dumps(
        [manifest.get("extras"), sorted(manifest.get("pdf_keys") or {})],
        sort_keys=True).encode()).hexdigest()
    return out


def fresh_copy(site: Path, dest: Path) -> None:
    """The site's pages, tables, notebooks and manifest, without its extras."""
    skip = {"pdf", "workbooks", "briefs", "share", ".exresearch"}
    dest.mkdir(parents=True)
    for p in site.iterdir():
        if p.name in skip:
            continue
        if p.is_dir():
            shutil.copytree(p, dest / p.name)
        else:
            shutil.copy2(p, dest / p.name)
    for d in (dest / "tables").iterdir():
        (d / "data_dictionary.csv").unlink(missing_ok=True)


def run_once(code: Path, site: Path, study: Path, *, jobs: int, pdf: bool,
             reports=None, start_method=None) -> dict:
    with tempfile.TemporaryDirectory(prefix="exr-x") as tmp:
        staging = Path(tmp) / "s"
        fresh_copy(site, staging)
        (Path(tmp) / "w").mkdir()
        spec = {"study": str(study), "staging": str(staging), "jobs": jobs, "pdf": pdf,
                "tmpdir": str(Path(tmp) / "w"), "reports": reports,
                "start_method": start_method}
        env = dict(os.environ, PYTHONPATH=str(code))
        load = os.getloadavg()
        proc = subprocess.run([str(VENV_BIN / "python"), __file__, "--worker", json.dumps(spec)],
                              capture_output=True, text=True, env=env, check=False)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["load"] = [round(x, 2) for x in (load + os.getloadavg())]
        return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker")
    ap.add_argument("--site", type=Path)
    ap.add_argument("--study", type=Path, help="default: the site's study, from --site's "
                    "manifest is not known, so give it")
    ap.add_argument("--code", action="append", default=[], help="NAME=DIR (repeatable)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-pdf", action="store_true")
    ap.add_argument("--start-method", choices=["fork", "spawn"], help="how the extras' "
                    "worker processes start (default: the checkout's choice)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--reports", default="", help="only these reports' extras, by key, "
                    "separated by commas (e.g. synthesis,data-quality); default every report")
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))))
        return 0
    codes = [(c.split("=", 1)[0], Path(c.split("=", 1)[1]).resolve()) for c in a.code] \
        or [("this", ROOT)]
    rows, reference = [], None
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for rep in range(a.repeat):
        for name, code in codes:
            res = run_once(code, a.site, a.study, jobs=a.jobs, pdf=not a.no_pdf,
                           reports=[k for k in a.reports.split(",") if k] or None,
                           start_method=a.start_method)
            res.update(code=name, rep=rep + 1)
            if reference is None:
                reference, res["same"] = res["seen"], "reference"
            else:
                res["same"] = "yes" if res["seen"] == reference else "NO: " + ", ".join(
                    sorted(k for k in set(reference) | set(res["seen"])
                           if reference.get(k) != res["seen"].get(k))[:5])
            del res["seen"]
            rows.append(res)
            it = res["items"]
            print(f"{name} #{rep + 1}: wall {res['wall']:.1f} s, CPU {res['cpu_self']:.1f} s + "
                  f"children {res['cpu_children']:.1f} s; " + "; ".join(
                      f"{k} {v['n']}x cpu {v['cpu']:.1f} wall {v['wall']:.1f}"
                      for k, v in it.items()) + f"; same PDFs: {res['same']}; "
                  f"load {res['load']}", flush=True)
    lines = [f"B6 extras phase, `{' '.join(sys.argv)}`, started {started}", "",
             "| code | run | wall s | CPU self s | CPU children s | workbooks (n, CPU s) | "
             "briefs (n, CPU s) | PDF print (calls, wall s) | compact_pdf (n, CPU s) | "
             "notebook_without_images (n, CPU s) | data_dictionary (n, CPU s) | PDFs, MB "
             "| same PDF pages and text, workbook cells, briefs, notebooks as the first run | load avg (1/5/15 min, before -> after) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        it = r["items"]

        def f(k, it=it):
            v = it.get(k)
            return f"{v['n']}, {v['cpu']:.1f}" if v else "-"
        pr = it.get("render_pdfs")
        lines.append(
            f"| {r['code']} | {r['rep']} | {r['wall']:.1f} | {r['cpu_self']:.1f} | "
            f"{r['cpu_children']:.1f} | {f('write_workbook')} | {f('render_brief')} | "
            + (f"{pr['n']}, {pr['wall']:.1f}" if pr else "-") + f" | {f('compact_pdf')} | "
            f"{f('notebook_without_images')} | {f('data_dictionary')} | {r['pdfs']}, {r['pdf_bytes'] / 1e6:.2f} | {r['same']} | {r['load'][:3]} -> "
            f"{r['load'][3:]} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
