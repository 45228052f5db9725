"""B6, the synthesis's forest-plot cell at scale, one checkout against another.

The synthesis notebook's forest-plot cell (every client's correlation with the EX index,
one figure per outcome, then small multiples for the other EX measures) grows with the
number of clients. This script runs that cell of a checkout's ``notebooks/synthesis.ipynb``
in a fresh process importing exresearch from that checkout (``PYTHONPATH``), on the
per-client correlations of a B6 study, and renders every figure as a kernel of the build
does (``plt.show`` -> :func:`exresearch.style.figure_png`, HTML outputs through
``_repr_html_``). It reports the cell's CPU time (``time.process_time``) and the figures'
PNG bytes. Checkouts are run in turn, repeated, so they share the machine's conditions.

Usage::

    nice -n 10 .venv/bin/python bench/b6_forest.py --sizes 100,300 \\
        --code before=/tmp/before --code after=. [--repeat 2]

Studies are simulated (fixed seed) into ``$TMPDIR/exresearch-bench/b6/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from b6_scale import make_study  # noqa: E402
from common import ROOT, VENV_BIN  # noqa: E402

MARKER = "plot_forest_table("


def worker(spec: dict) -> dict:
    """In a process importing the checkout's exresearch: inputs, then the timed cell."""
    import time
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from exresearch import meta, plots, privacy, report, synthesis
    from exresearch.study import load_study
    from exresearch.style import figure_png

    warnings.simplefilter("ignore")
    study = load_study(Path(spec["study"]))
    cfg, roles = study.config, report.measure_roles(study.config)
    names = report.display_names(study)
    panels = report.client_panels(study, roles=roles, cache=False)
    means = report.all_unit_means(study, roles, panels=panels)
    means_c = synthesis.add_composite(means, outcomes=roles.outcomes,
                                      higher_is_better=roles.higher_is_better)
    per_client_c = report.per_client_correlations(
        means_c, x=roles.ex_measures, y=[*roles.outcomes, synthesis.COMPOSITE], names=names)
    nb = json.loads((Path(spec["code"]) / "notebooks" / "synthesis.ipynb").read_text())
    cell = next("".join(c["source"]) for c in nb["cells"]
                if c["cell_type"] == "code" and MARKER in "".join(c["source"]))
    sizes = []

    def show(*_a, **_k):  # what the kernel's inline backend does with each open figure
        for num in plt.get_fignums():
            png = figure_png(plt.figure(num))
            sizes.append(len(png[0]) if png else 0)
        plt.close("all")

    def display(obj):
        if hasattr(obj, "_repr_html_"):
            obj._repr_html_()

    ex, cx = roles.ex, roles.primary_cx
    per_client = per_client_c[per_client_c["y"] != synthesis.COMPOSITE]
    ns = {"plt": plt, "pd": pd, "meta": meta, "plots": plots, "privacy": privacy,
          "report": report, "synthesis": synthesis, "display": display,
          "Markdown": lambda text: text, "roles": roles, "cfg": cfg, "ex": ex,
          "label": roles.label, "outcomes": list(roles.outcomes), "method": "REML",
          "per_client_c": per_client_c, "out": Path(spec["out"]),
          "focus": per_client[(per_client["x"] == ex) & (per_client["y"] == cx)],
          "forest_max_rows": 40}
    plt.show = show
    Path(spec["out"]).mkdir(parents=True, exist_ok=True)
    t = time.process_time()
    exec(compile(cell, "forest-cell", "exec"), ns)  # noqa: S102 - the notebook's own cell
    cpu = time.process_time() - t
    return {"cpu": cpu, "figures": len(sizes), "png_bytes": sum(sizes),
            "clients": len(study.clients), "exresearch": report.__file__,
            "load": os.getloadavg()[0]}


def run(code: Path, study: Path, out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    spec = json.dumps({"code": str(code), "study": str(study), "out": str(out)})
    res = subprocess.run([str(VENV_BIN / "python"), __file__, "worker", spec], env=env,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,300")
    ap.add_argument("--code", action="append", default=None,
                    help="LABEL=DIR of a checkout (repeatable; default this one)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--units", type=int, default=30)
    ap.add_argument("--periods", type=int, default=4)
    args = ap.parse_args(argv)
    codes = [c.split("=", 1) for c in (args.code or [f"this={ROOT}"])]
    root = Path(tempfile.gettempdir()) / "exresearch-bench" / "b6"
    root.mkdir(parents=True, exist_ok=True)
    print("| clients | checkout | forest-plot cell, CPU | figures | PNG bytes | load average |")
    print("|---|---|---|---|---|---|")
    for n in [int(s) for s in args.sizes.split(",") if s]:
        study, _ = make_study(root, n, args.units, args.periods)
        for _ in range(args.repeat):
            for label, code in codes:  # in turn, in the same conditions
                r = run(Path(code).resolve(), study, root / f"forest-{n}-{label}")
                print(f"| {r['clients']} | {label} | {r['cpu']:.1f} s | {r['figures']} | "
                      f"{r['png_bytes']:,} | {r['load']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        print(json.dumps(worker(json.loads(sys.argv[2]))))
    else:
        sys.exit(main())
