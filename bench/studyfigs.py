"""Study-level figures (forest plots, caterpillars, data-quality figures): CPU and pixels of
this tree's ``exresearch.plots`` against a reference commit's, on the same inputs.

Usage::

    .venv/bin/python bench/studyfigs.py capture NOTEBOOK STUDY OUT.pkl [--output-dir DIR]
    .venv/bin/python bench/studyfigs.py compare CALLS.pkl [CALLS.pkl ...] [--clients 300 100]
        [--max-rows N] [--repeats 3] [--reference e86a9a8] [--only NAME]

``capture`` runs a report notebook's code cells in this process (Agg backend, as
bench/figures.py does) and pickles the arguments of every call of the study-level figure
functions (:data:`FUNCTIONS`): the inputs the report draws, at its size.

``compare`` loads the reference commit's ``exresearch/plots/synthesis.py`` and
``quality.py`` (``git show``) as modules beside this tree's, then for each captured call
and each number of clients (the first N clients of its table; the pooled results the
notebook passed are then dropped, so that the figure pools its own N clients): draws the
figure with both, compares ``style.figure_pixels`` (``np.array_equal``) and the alt text
(``style.describe_figure``), and times, alternately (reference first in odd rounds,
this tree first in even ones), the CPU (``time.process_time``) of drawing the figure
(``build``) and of drawing it plus ``style.figure_png`` (``total``). Prints a markdown
table of the medians; exits 1 if any figure differs.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import io
import os
import pickle
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the build's kernels
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, loadavg  # noqa: E402

#: The figure functions whose calls ``capture`` records: module, function.
FUNCTIONS = {"plot_forest_table": "synthesis", "plot_forest_panels": "synthesis",
             "plot_caterpillar": "synthesis", "plot_unit_counts": "quality",
             "plot_client_grid": "quality"}
#: The reference: main when this benchmark was written (before issue 20's study figures).
REFERENCE = "e86a9a8"


def capture(notebook: str, study: str, out: Path, *, output_dir: str) -> list[str]:
    """Run ``notebooks/NOTEBOOK.ipynb`` on ``study`` and pickle (name, args, kwargs) of
    every call of :data:`FUNCTIONS`; returns the names in call order."""
    import figures

    from exresearch import plots

    calls = []
    for name in FUNCTIONS:  # the notebook calls plots.NAME: recorded, then drawn
        setattr(plots, name, _recorder(getattr(plots, name), name, calls))
    figures.report_figures(ROOT / "notebooks" / f"{notebook}.ipynb",
                           {"study_path": study, "output_dir": output_dir})
    out.write_bytes(pickle.dumps(calls))
    return [c[0] for c in calls]


def _recorder(call, name, calls):
    def recorder(*args, **kwargs):
        calls.append((name, args, kwargs))
        return call(*args, **kwargs)
    return recorder


def reference_modules(commit: str) -> dict[str, object]:
    """``exresearch.plots.synthesis``, ``quality`` and ``linkage`` (their heat maps) as
    they were at ``commit``, imported as ``exresearch.plots._reference_<name>``: their
    imports of each other are of the reference modules, the rest of this tree's package."""
    mods = {}
    for name in ["linkage", *sorted(set(FUNCTIONS.values()))]:
        src = subprocess.run(["git", "show", f"{commit}:exresearch/plots/{name}.py"],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout
        for other in ("linkage", "synthesis", "quality"):
            src = src.replace(f"from .{other} import", f"from ._reference_{other} import")
        full = f"exresearch.plots._reference_{name}"
        spec = importlib.util.spec_from_loader(full, loader=None)
        mod = importlib.util.module_from_spec(spec)
        mod.__package__ = "exresearch.plots"
        exec(compile(src, f"{commit}:exresearch/plots/{name}.py", "exec"), mod.__dict__)  # noqa: S102
        sys.modules[full] = mod
        mods[name] = mod
    return mods


def _first_clients(frame, column, n):
    keep = list(dict.fromkeys(frame.index if column is None else frame[column]))[:n]
    return frame.loc[keep] if column is None else frame[frame[column].isin(keep)]


def scaled(call, n: int | None, *, max_rows: int | None = None):
    """The call on its first ``n`` clients (None: as captured), ``max_rows`` replaced."""
    name, args, kwargs = call
    data, kwargs = args[0], dict(kwargs)
    if max_rows is not None and (name != "plot_unit_counts" or "max_rows" in kwargs):
        kwargs["max_rows"] = max_rows
    if n is None:
        return name, (data, *args[1:]), kwargs
    column = {"plot_unit_counts": "client_id", "plot_client_grid": None}.get(name, "client")
    small = _first_clients(data, column, n)
    if len(small) != len(data):  # the notebook's pooled results are for every client
        kwargs.pop("results", None)
        kwargs.pop("result", None)
    return name, (small, *args[1:]), kwargs


def _figure(out):
    return out if hasattr(out, "savefig") else out.figure


def draw(modules, call):
    name, args, kwargs = call
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _figure(getattr(modules[FUNCTIONS[name]], name)(*args, **kwargs))


def compare(calls, *, clients, repeats, modules, max_rows=None) -> list[dict]:
    """Per call and number of clients: identical pixels and alt text, CPU of each side."""
    import matplotlib.pyplot as plt
    import numpy as np

    from exresearch import style

    rows = []
    for i, call in enumerate(calls):
        for n in clients:
            c = scaled(call, n, max_rows=max_rows)
            k = len(set(c[1][0].index if c[0] == "plot_client_grid" else
                        c[1][0]["client_id" if c[0] == "plot_unit_counts" else "client"]))
            figs = {side: draw(mods, c) for side, mods in modules.items()}
            px = {side: style.figure_pixels(f) for side, f in figs.items()}
            alt = {side: style.describe_figure(f) for side, f in figs.items()}
            a, b = px.values()
            same = bool(a.shape == b.shape and np.array_equal(a, b))
            plt.close("all")
            times = {f"{side} {part}": [] for side in modules for part in ("build", "total")}
            for r in range(repeats):
                order = list(modules.items())
                for side, mods in order if r % 2 == 0 else order[::-1]:
                    gc.collect()  # the garbage of earlier figures is collected untimed
                    t = time.process_time()
                    fig = draw(mods, c)
                    t1 = time.process_time()
                    style.figure_png(fig)
                    t2 = time.process_time()
                    plt.close(fig)
                    times[f"{side} build"].append(t1 - t)
                    times[f"{side} total"].append(t2 - t)
            rows.append({"call": i, "name": c[0], "clients": k, "size": a.shape[:2],
                         "same_pixels": same, "same_alt": len(set(alt.values())) == 1,
                         **{key: statistics.median(v) for key, v in times.items()}})
            print(_row(rows[-1], list(modules)), flush=True)
    return rows


def _row(r, sides) -> str:
    ref, new = sides
    return (f"| {r['call']} | {r['name']} | {r['clients']} | {r['size'][1]}x{r['size'][0]} | "
            f"{r['same_pixels']}, {r['same_alt']} | "
            f"{1000 * r[f'{ref} build']:.0f} / {1000 * r[f'{new} build']:.0f} ms | "
            f"{1000 * r[f'{ref} total']:.0f} / {1000 * r[f'{new} total']:.0f} ms | "
            f"{r[f'{new} total'] / r[f'{ref} total']:.2f} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    cap = sub.add_parser("capture")
    cap.add_argument("notebook")
    cap.add_argument("study")
    cap.add_argument("out", type=Path)
    cap.add_argument("--output-dir", default="")
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("calls", nargs="+", type=Path)
    cmp_.add_argument("--clients", type=int, nargs="*", default=[])
    cmp_.add_argument("--max-rows", type=int)
    cmp_.add_argument("--repeats", type=int, default=3)
    cmp_.add_argument("--reference", default=REFERENCE)
    cmp_.add_argument("--only", help="only calls of this function")
    a = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    from exresearch import plots, style

    style.use(display=False)  # the house theme, as report.setup_report applies it
    if a.cmd == "capture":
        with contextlib.redirect_stdout(io.StringIO()):
            names = capture(a.notebook, a.study, a.out, output_dir=a.output_dir)
        print(a.out, names)
        return 0
    modules = {"reference": reference_modules(a.reference),
               "this tree": {m: getattr(plots, m) for m in set(FUNCTIONS.values())}}
    calls = [c for path in a.calls for c in pickle.loads(path.read_bytes())
             if a.only in (None, c[0])]
    print(f"load average at the start: {loadavg()}; reference {a.reference}, "
          f"exresearch from {plots.__file__}")
    print("| call | function | clients | pixels | same pixels, alt | build ref / this | "
          "build + figure_png ref / this | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    rows = compare(calls, clients=a.clients or [None], repeats=a.repeats, modules=modules,
                   max_rows=a.max_rows)
    ref, new = list(modules)
    for part in ("build", "total"):
        old_s, new_s = (sum(r[f"{side} {part}"] for r in rows) for side in (ref, new))
        print(f"| sum | {part} | | | | | {old_s:.3f} s / {new_s:.3f} s | "
              f"{new_s / old_s:.3f} |")
    print(f"load average at the end: {loadavg()}")
    bad = [r for r in rows if not (r["same_pixels"] and r["same_alt"])]
    print("all identical" if not bad else f"DIFFERENT: {[(r['call'], r['clients']) for r in bad]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
