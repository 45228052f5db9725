"""What ``privacy.write_csv`` costs on a report's real tables, before and after issue 20
(i20-csv: column-by-column formatting instead of a Python call per cell).

Usage::

    # run a report's cells in this process (Agg backend), time every write_csv call and
    # keep the frames it was given
    .venv/bin/python bench/csv_tables.py capture NOTEBOOK FRAMES.pkl -p study_path STUDY ...
    # write those frames with the previous (tests/test_privacy.py's reference) and the
    # current write_csv, alternately, and compare the bytes
    .venv/bin/python bench/csv_tables.py time FRAMES.pkl [FRAMES.pkl ...] [--repeats 7]

``capture`` prints the write_csv calls' total CPU time (``time.process_time``) beside the
whole run's, and the costliest tables. ``time`` writes every table of a pickle once with
each implementation per round (the previous first in odd rounds, the current first in
even ones), ``repeats`` rounds, and prints per pickle the median CPU seconds of a round
of each, their ratio, and whether every file was byte-identical.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT  # noqa: E402


def capture(notebook: str, params: dict, frames: Path) -> None:
    """Run ``notebooks/<notebook>.ipynb``'s code cells here; time and keep every table."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the build's kernels have it
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from figures import _cells

    from exresearch import privacy, style
    from exresearch.report import tables

    write, calls = privacy.write_csv, []

    def timed(df, path, *, index=False):
        t = time.process_time()
        out = write(df, path, index=index)
        calls.append((Path(path).name, df, index, time.process_time() - t))
        return out

    privacy.write_csv = tables.write_csv = timed  # save_table imported it by name
    namespace, t0 = {}, time.process_time()
    for i, src in _cells(ROOT / "notebooks" / f"{notebook}.ipynb", params):
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            exec(compile(src, f"{notebook}[{i}]", "exec"), namespace)  # noqa: S102
            for n in plt.get_fignums():
                style.figure_png(plt.figure(n))
            plt.close("all")
    total = time.process_time() - t0
    cells = sum(df.size for _, df, _, _ in calls)
    print(f"{notebook}: {len(calls)} write_csv calls, {sum(c[3] for c in calls):.3f} s CPU "
          f"of {total:.1f} s CPU for all cells; {sum(len(c[1]) for c in calls)} rows, "
          f"{cells} cells")
    for name, df, _, cpu in sorted(calls, key=lambda c: -c[3])[:8]:
        print(f"  {name:36s} {df.shape!s:12s} {1000 * cpu:7.1f} ms")
    with open(frames, "wb") as fh:
        pickle.dump([(name, df, index) for name, df, index, _ in calls], fh)


def compare(frames: Path, *, repeats: int) -> dict:
    """Median CPU seconds of writing every table of ``frames`` with each implementation."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_privacy import _reference_write_csv

    from exresearch.privacy import write_csv

    with open(frames, "rb") as fh:
        tables = pickle.load(fh)
    impls = {"previous": _reference_write_csv, "current": write_csv}
    with tempfile.TemporaryDirectory() as tmp:
        out = {name: Path(tmp) / name for name in impls}
        for d in out.values():
            d.mkdir()
        same = True
        for name, df, index in tables:  # untimed first round: equality, warm caches
            a, b = (impls[k](df, out[k] / name, index=index).read_bytes() for k in impls)
            same = same and a == b
        times = {k: [] for k in impls}
        for r in range(repeats):
            for k in (list(impls) if r % 2 == 0 else list(impls)[::-1]):
                t = time.process_time()
                for name, df, index in tables:
                    impls[k](df, out[k] / name, index=index)
                times[k].append(time.process_time() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"frames": frames.name, "tables": len(tables),
            "cells": sum(df.size for _, df, _ in tables), **med,
            "ratio": med["current"] / med["previous"], "identical": same}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("notebook")
    c.add_argument("frames", type=Path)
    c.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a text parameter of the notebook (study_path, client_id, output_dir)")
    t = sub.add_parser("time")
    t.add_argument("frames", type=Path, nargs="+")
    t.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    if args.cmd == "capture":
        capture(args.notebook, dict(args.p), args.frames)
        return
    print("| tables of | tables | cells | previous | current | ratio | byte-identical |")
    print("|---|---|---|---|---|---|---|")
    for f in args.frames:
        r = compare(f, repeats=args.repeats)
        print(f"| {r['frames']} | {r['tables']} | {r['cells']} | {1000 * r['previous']:.1f} ms "
              f"| {1000 * r['current']:.1f} ms | {r['ratio']:.2f} | {r['identical']} |")


if __name__ == "__main__":
    main()
