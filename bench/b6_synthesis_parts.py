"""B6, the synthesis's and data-quality report's library calls one by one, checkout
against checkout: what a one-client-changed rebuild runs in their kernels (Table 1, the
inclusion account, the psychometric table) and after them (their workbooks,
``notebook_without_images`` of their executed notebooks).

Each checkout runs in a fresh process importing exresearch from it (``PYTHONPATH``),
alternately (before, after, before, after), on the same inputs: a B6 study's unit panels
(computed once per process, not timed) and the CSV tables and executed notebooks of an
earlier ``bench/b6_synthesis.py`` run (``--synthesis-dir``, ``--quality-dir``: its work
folders). CPU is ``time.process_time`` of one call (BLAS on one thread, as in a kernel);
the load average is recorded per run.

Usage::

    nice -n 10 .venv/bin/python bench/b6_synthesis_parts.py --study /work/studies/b6-300 \\
        --synthesis-dir $TMPDIR/exresearch-bench/b6/synthesis-300-before \\
        --quality-dir $TMPDIR/exresearch-bench/b6/data_quality-300-before \\
        --code before=/tmp/before --code after=. --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, VENV_BIN  # noqa: E402


def worker(spec: dict) -> dict:
    import tempfile
    import warnings

    import pandas as pd

    from exresearch import deliver, report, synthesis
    from exresearch.study import load_study

    warnings.simplefilter("ignore")
    study = load_study(Path(spec["study"]))
    roles = report.measure_roles(study.config)
    panels = report.client_panels(study, roles=roles, cache=False)
    names = report.display_names(study)
    syn, dq = Path(spec["synthesis_dir"]), Path(spec["quality_dir"])
    per_client_c = pd.read_csv(syn / "tables" / "per_client_correlations.csv")
    reliab = pd.read_csv(syn / "tables" / "reliabilities.csv")
    out = {}

    def timed(name, fn):
        t = time.process_time()
        fn()
        out[name] = time.process_time() - t

    def tables(folder):
        return {p.stem: deliver._read_csv(p) for p in sorted((folder / "tables").glob("*.csv"))}

    timed("study_characteristics", lambda: synthesis.study_characteristics(
        study, panels=panels, roles=roles))
    timed("inclusion_account", lambda: synthesis.inclusion_account(panels, roles=roles,
                                                                   names=names))
    timed("psychometric_table", lambda: synthesis.psychometric_table(
        per_client_c, reliab=reliab, method="REML"))
    with tempfile.TemporaryDirectory() as tmp:
        for label, folder in (("synthesis", syn), ("data_quality", dq)):
            t = tables(folder)
            timed(f"write_workbook {label}", lambda t=t, label=label: deliver.write_workbook(
                t, Path(tmp) / f"{label}.xlsx", title=label, source="bench"))
            text = (folder / "executed.ipynb").read_text(encoding="utf-8")
            timed(f"notebook_without_images {label}",
                  lambda text=text: deliver.notebook_without_images(text))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker")
    ap.add_argument("--study", type=Path)
    ap.add_argument("--synthesis-dir", type=Path)
    ap.add_argument("--quality-dir", type=Path)
    ap.add_argument("--code", action="append", default=[], help="NAME=DIR (repeatable)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))))
        return 0
    codes = [(c.split("=", 1)[0], Path(c.split("=", 1)[1]).resolve()) for c in a.code] \
        or [("this", ROOT)]
    spec = json.dumps({"study": str(a.study), "synthesis_dir": str(a.synthesis_dir),
                       "quality_dir": str(a.quality_dir)})
    rows = []
    for rep in range(a.repeat):
        for name, code in codes:
            env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS="1",
                       OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
            load = os.getloadavg()[0]
            proc = subprocess.run([str(VENV_BIN / "python"), __file__, "--worker", spec],
                                  capture_output=True, text=True, env=env, check=False)
            if proc.returncode:
                raise RuntimeError(proc.stderr[-3000:])
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append((name, rep + 1, res, (load, os.getloadavg()[0])))
            print(name, rep + 1, {k: round(v, 3) for k, v in res.items()}, flush=True)
    calls = list(rows[0][2])
    lines = ["| call | " + " | ".join(f"{n} {r}" for n, r, _, _ in rows) + " |",
             "|---|" + "---|" * len(rows)]
    lines += [f"| `{c}` | " + " | ".join(f"{res[c]:.3f} s" for _, _, res, _ in rows) + " |"
              for c in calls]
    lines.append("| load average (start-end) | " + " | ".join(
        f"{lo[0]:.1f}-{lo[1]:.1f}" for *_, lo in rows) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
