"""B1 (batch build), B2 (incremental rebuild) and B5 (per-report overhead).

* B1: ``exresearch build STUDY --out SITE --force`` (default settings: one job per core,
  kernels forked from a warm zygote, in-process HTML) against a sequential shell loop
  of ``papermill`` then ``jupyter nbconvert --to html`` per report, on the same
  notebooks and parameters, with the venv's executables.
* B2: the same build again with nothing changed; after touching a file's mtime only;
  after changing one answer in one client's survey file.
* B5: one client report: interpreter start, imports, kernel start and analysis time
  with an ordinary kernel, against the same report forked from the build's zygote
  (per-cell durations that papermill records in the executed notebooks).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import VENV_BIN, emit, summarise  # noqa: E402

#: ``make demo``'s arguments: the demo study the README builds.
DEMO_ARGS = {"n_clients": 10, "n_units": 30, "n_periods": 4, "seed": 20261122}
NOTEBOOKS = {"client": "client_report.ipynb", "synthesis": "synthesis.ipynb",
             "data_quality": "data_quality.ipynb"}


def notebooks_dir(work: Path | None = None) -> tuple[Path, str]:
    """The notebooks the build uses (copied into ``work``) and where they come from.

    ``EXRESEARCH_NOTEBOOKS`` when set; otherwise ``notebooks/``. While some of the three
    are missing there, the small test stand-ins of ``tests/notebooks/`` replace them
    (results.md says which). With ``work``, the notebooks are copied into
    ``work/notebooks-snapshot`` so edits during the run change nothing.
    """
    from exresearch import config

    env = os.environ.get("EXRESEARCH_NOTEBOOKS")
    test = config.ROOT / "tests" / "notebooks"
    if env:
        real, source = Path(env).resolve(), f"EXRESEARCH_NOTEBOOKS={env}"
        present = list(NOTEBOOKS.values())
    else:
        real = config.NOTEBOOKS_DIR
        present = [n for n in NOTEBOOKS.values() if (real / n).is_file()]
        if len(present) == len(NOTEBOOKS):
            source = "notebooks/ (the real report notebooks)"
        elif not present:
            source = ("tests/notebooks/ (small stand-ins: the real notebooks/ are not there "
                      "yet, so B1/B2/B5 understate real report cost)")
        else:
            stand_in = [n for n in NOTEBOOKS.values() if n not in present]
            source = (f"the real {', '.join(present)} from notebooks/, with the small test "
                      f"stand-ins from tests/notebooks/ for {', '.join(stand_in)} (not "
                      "written yet at the time of this run)")
    if work is None:
        return (real if len(present) == len(NOTEBOOKS) else test), source
    snap = Path(work) / "notebooks-snapshot"
    shutil.rmtree(snap, ignore_errors=True)
    snap.mkdir(parents=True)
    for n in NOTEBOOKS.values():
        shutil.copy2((real if n in present else test) / n, snap / n)
    return snap, source


def make_demo(work: Path, args: dict | None = None) -> Path:
    """Simulate the demo study (``make demo``'s arguments) into ``work/demo``."""
    from exresearch.simulate import simulate_study

    path = work / "demo"
    if path.exists():
        shutil.rmtree(path)
    return Path(simulate_study(path, **(args or DEMO_ARGS)))


def _env(nb_dir: Path) -> dict:
    env = dict(os.environ)
    env["EXRESEARCH_NOTEBOOKS"] = str(nb_dir)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def run_build(study: Path, site: Path, nb_dir: Path, *, force: bool,
              extra=()) -> dict:
    """``exresearch build`` as a user runs it; wall time seen from outside."""
    cmd = [str(VENV_BIN / "exresearch"), "build", str(study), "--out", str(site), *extra]
    if force:
        cmd.append("--force")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(nb_dir))
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"build failed ({proc.returncode}): {proc.stderr[-3000:]}")
    m = re.search(r"(\d+) executed, (\d+) reused", proc.stderr)
    executed = int(m.group(1)) if m else 0
    if "nothing changed" in proc.stderr:
        executed = 0
    return {"wall": wall, "executed": executed, "stderr": proc.stderr[-500:]}


def pdf_default() -> bool:
    """Whether ``exresearch build`` prints PDFs by default here (Chromium, playwright)."""
    from exresearch.deliver import pdf_enabled

    return pdf_enabled(None)


def report_list(study: Path) -> list[dict]:
    """Every report of the build: kind, key and papermill parameters."""
    from exresearch.study import load_study

    st = load_study(study)
    reports = [{"kind": "synthesis", "key": "synthesis", "params": {}},
               {"kind": "data_quality", "key": "data-quality", "params": {}}]
    reports += [{"kind": "client", "key": f"client-{c}", "params": {"client_id": c}}
                for c in st.clients]
    return reports


def baseline_script(study: Path, nb_dir: Path, out: Path, reports: list[dict]) -> str:
    """The sequential shell loop: papermill then jupyter nbconvert per report."""
    pm = shlex.quote(str(VENV_BIN / "papermill"))
    jup = shlex.quote(str(VENV_BIN / "jupyter"))
    lines = ["#!/bin/bash", "set -euo pipefail", f"cd {shlex.quote(str(out))}"]
    for r in reports:
        nb = shlex.quote(str(nb_dir / NOTEBOOKS[r["kind"]]))
        params = {"study_path": str(study), **r["params"],
                  "output_dir": str(out / "tables" / r["key"])}
        ps = " ".join(f"-p {k} {shlex.quote(str(v))}" for k, v in params.items())
        key = r["key"]
        lines += [
            f"mkdir -p tables/{key}",
            f'echo "T start {key} $(date +%s.%N)"',
            f"{pm} --no-progress-bar {nb} {key}.ipynb {ps} >/dev/null 2>>log.txt",
            f'echo "T papermill {key} $(date +%s.%N)"',
            f"{jup} nbconvert --to html {key}.ipynb >/dev/null 2>>log.txt",
            f'echo "T nbconvert {key} $(date +%s.%N)"',
        ]
    return "\n".join(lines) + "\n"


def run_baseline(study: Path, nb_dir: Path, work: Path, reports: list[dict]) -> dict:
    """Run the shell loop once; wall time and per-report papermill/nbconvert seconds."""
    out = work / "baseline"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    script = out / "loop.sh"
    script.write_text(baseline_script(study, nb_dir, out, reports))
    t = time.perf_counter()
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                          env=_env(nb_dir))
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        log = (out / "log.txt").read_text()[-3000:] if (out / "log.txt").exists() else ""
        raise RuntimeError(f"baseline loop failed: {proc.stderr[-2000:]}\n{log}")
    stamps = {}
    for line in proc.stdout.splitlines():
        _, what, key, ts = line.split()
        stamps.setdefault(key, {})[what] = float(ts)
    per = {k: {"papermill": v["papermill"] - v["start"], "nbconvert": v["nbconvert"] - v["papermill"]}
           for k, v in stamps.items()}
    html = sorted(p.name for p in out.glob("*.html"))
    return {"wall": wall, "per_report": per, "html_files": len(html)}


def manifest_durations(site: Path) -> dict:
    """Report key -> duration (s) of the reports executed by the last build."""
    m = json.loads((site / "manifest.json").read_text())
    return {r["key"]: r["duration"] for r in m["reports"]}


def change_one_answer(study: Path, client: str) -> str:
    """Change one answer of ``client``'s survey (a valid value); return the file changed.

    The first Likert answer of the first data row becomes the scale's maximum, or its
    minimum when it already is the maximum, so every call changes the file's hash.
    """
    from exresearch.study import load_study

    cfg = load_study(study).config
    likert = next(s for s in cfg.scales.values() if s.kind == "likert")
    item, (lo, hi) = likert.items[0], likert.points
    files = [p for p in (study / "clients" / client).glob("survey.*")]
    path = files[0]
    if path.suffix != ".csv":
        raise RuntimeError("B2 expects CSV survey files (simulate_study writes CSV)")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index(item)
    current = rows[1][col].strip()
    try:
        value = float(current)
    except ValueError:  # a missing answer
        value = None
    rows[1][col] = str(lo if value == hi else hi)  # always a different valid value
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return path.relative_to(study).as_posix()


# --------------------------------------------------------------------------- B5 worker
def _statements(cell: dict):
    """Top-level AST statements and source of a code cell (IPython magics dropped)."""
    import ast

    if cell.get("cell_type") != "code":
        return [], ""
    src = "".join(cell.get("source", ""))
    src = "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))
    try:
        return ast.parse(src).body, src
    except SyntaxError:
        return [], src


def _has_imports(cell: dict) -> bool:
    import ast

    body, _ = _statements(cell)
    return any(isinstance(n, ast.Import | ast.ImportFrom) for n in body)


def cell_split(nb_path: Path) -> dict:
    """Seconds in cells that import libraries vs the other cells of an executed notebook.

    Uses the per-cell durations papermill records. ``setup``: cells with a top-level
    import (the real notebooks also check their parameters there); ``analysis``: the rest.
    """
    nb = json.loads(Path(nb_path).read_text())
    setup = analysis = 0.0
    for cell in nb["cells"]:
        d = (cell.get("metadata", {}).get("papermill", {}) or {}).get("duration")
        if d is None:
            continue
        if _has_imports(cell):
            setup += d
        else:
            analysis += d
    return {"setup": setup, "analysis": analysis}


def import_source(nb_path: Path) -> str:
    """Every top-level import statement of the notebook's code cells, in order."""
    import ast

    nb = json.loads(Path(nb_path).read_text())
    out = []
    for cell in nb["cells"]:
        body, src = _statements(cell)
        out += [ast.get_source_segment(src, n) for n in body
                if isinstance(n, ast.Import | ast.ImportFrom)]
    return "\n".join(out)


def b5_worker(spec: dict) -> dict:
    """Per-report overhead with an ordinary kernel (run in a fresh subprocess)."""
    import papermill as pm
    from jupyter_client.manager import start_new_kernel

    nb = Path(spec["notebook"])
    work = Path(spec["work"])
    work.mkdir(parents=True, exist_ok=True)
    res = {}
    # kernel start (to ready) and the import cells, in an ordinary ipykernel
    t = time.perf_counter()
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120)
    res["kernel_ready"] = time.perf_counter() - t
    try:
        t = time.perf_counter()
        reply = kc.execute_interactive(import_source(nb), timeout=300)
        res["kernel_imports"] = time.perf_counter() - t
        res["imports_ok"] = reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    # the full report with papermill, ordinary kernel
    out = work / "report.ipynb"
    t = time.perf_counter()
    pm.execute_notebook(str(nb), str(out), parameters=spec["parameters"],
                        progress_bar=False, log_output=False)
    res["papermill_total"] = time.perf_counter() - t
    res.update({f"cells_{k}": v for k, v in cell_split(out).items()})
    # HTML export in-process vs the nbconvert CLI
    import nbformat
    from nbconvert import HTMLExporter

    t = time.perf_counter()
    HTMLExporter().from_notebook_node(nbformat.read(str(out), as_version=4))
    res["html_inprocess"] = time.perf_counter() - t
    return res


def b5_imports_worker(spec: dict) -> dict:
    """Interpreter already started: time the notebook's import cells in plain Python."""
    t = time.perf_counter()
    exec(compile(import_source(Path(spec["notebook"])), "<imports>", "exec"), {})  # noqa: S102
    return {"imports_plain": time.perf_counter() - t}


def nbconvert_cli_seconds(nb_path: Path, env: dict) -> float:
    t = time.perf_counter()
    subprocess.run([str(VENV_BIN / "jupyter"), "nbconvert", "--to", "html", str(nb_path)],
                   check=True, capture_output=True, env=env)
    return time.perf_counter() - t


def summary_of(values) -> dict:
    return summarise(values)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("b5", "b5_imports"):
        spec = json.loads(sys.argv[2])
        emit(b5_worker(spec) if sys.argv[1] == "b5" else b5_imports_worker(spec))
    else:
        raise SystemExit("usage: build_cases.py b5|b5_imports '<json spec>'")
