"""What one figure of a report costs to show: ``style.figure_png`` before and after issue 20.

Usage::

    .venv/bin/python bench/figures.py STUDY [--notebook client_report] [--client ID]
                                            [--repeats 5] [--out figures.md]

Runs a report notebook's code cells in this process (Agg backend, no kernel) and keeps
every figure a cell leaves open, as the inline backend would show it. Then, per figure,
calls the previous ``figure_png`` (:func:`previous_figure_png`: ``savefig`` with
``bbox_inches="tight"``, PNG decoded, quantised, re-encoded with ``optimize=True``) and
the current :func:`exresearch.style.figure_png` alternately, ``repeats`` times each,
and records the CPU time of each call (``time.process_time``: other processes on a
shared machine count less than in wall time). Prints a markdown table: per figure the
median CPU milliseconds of each, their ratio, whether the decoded pixels are identical
and the PNG bytes; the load average at the start and the end.

``--cells N`` measures instead what each code cell costs in CPU time with its figures
shown either way (:func:`cell_costs`): the notebook run N times with each ``figure_png``,
alternately, after one untimed run (imports), in this process; the build's one-thread
BLAS environment is set first (as its kernels have it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, loadavg  # noqa: E402


def report_figures(notebook: Path, params: dict) -> list[tuple[int, object]]:
    """(cell index, Figure) for every figure the notebook's code cells leave open."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nb = json.loads(Path(notebook).read_text())
    namespace, figures = {}, []
    plt.close("all")  # figures this process had open before are not the notebook's
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        if "parameters" in (cell.get("metadata", {}).get("tags") or []):
            src += "\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # plt.show() on Agg; the reports' known notes
            exec(compile(src, f"{Path(notebook).name}[{i}]", "exec"), namespace)  # noqa: S102
        figures += [(i, plt.figure(n)) for n in plt.get_fignums()]
        plt.close("all")
    return figures


def _cells(notebook: Path, params: dict) -> list[tuple[int, str]]:
    nb = json.loads(Path(notebook).read_text())
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        if "parameters" in (cell.get("metadata", {}).get("tags") or []):
            src += "\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
        out.append((i, src))
    return out


def cell_costs(notebook: Path, params: dict, *, encode) -> list[dict]:
    """CPU seconds of each code cell, its figures encoded by ``encode`` at its end (as the
    inline backend shows them after the cell); the driver-model memo is emptied first
    (a kernel starts without it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from exresearch import value

    value._FITS.clear()
    namespace, rows = {}, []
    for i, src in _cells(notebook, params):
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            t = time.process_time()
            exec(compile(src, f"{Path(notebook).name}[{i}]", "exec"), namespace)  # noqa: S102
            n_fig = 0
            for n in plt.get_fignums():
                encode(plt.figure(n))
                n_fig += 1
            plt.close("all")
            cpu = time.process_time() - t
        first = next((ln.strip() for ln in src.splitlines()
                      if ln.strip() and not ln.strip().startswith("#")), "")
        rows.append({"index": i, "line": first[:60], "figures": n_fig, "cpu": cpu})
    return rows


def cells_markdown(runs: dict[str, list[list[dict]]], *, skip: int = 2) -> list[str]:
    """Per cell the median CPU time of each variant's runs, and the totals; the first
    ``skip`` code cells (a report's parameters and imports, which the build's kernels
    have preloaded) are left out."""
    names = list(runs)
    first = runs[names[0]][0]
    lines = ["| cell | first line | figures | " + " | ".join(names) + " | ratio |",
             "|---|---|---|" + "---|" * len(names) + "---|"]
    med = {n: [statistics.median(r[k]["cpu"] for r in runs[n]) for k in range(len(first))]
           for n in names}
    for k, c in enumerate(first):
        if k < skip:
            continue
        vals = [med[n][k] for n in names]
        ratio = f"{vals[-1] / vals[0]:.2f}" if vals[0] > 0 else ""
        lines.append(f"| {c['index']} | `{c['line'].replace('|', '/')}` | {c['figures']} | "
                     + " | ".join(f"{v:.3f} s" for v in vals) + f" | {ratio} |")
    for label, keep in (("cells with figures", lambda c: c["figures"] > 0),
                        ("cells without figures", lambda c: c["figures"] == 0),
                        ("all cells after the imports", lambda c: True)):
        idx = [k for k, c in enumerate(first) if k >= skip and keep(c)]
        vals = [sum(med[n][k] for k in idx) for n in names]
        lines.append(f"| {label} | | | " + " | ".join(f"{v:.2f} s" for v in vals)
                     + f" | {vals[-1] / vals[0]:.2f} |")
    return lines


def previous_figure_png(fig):
    """``exresearch.style.figure_png`` as it was before issue 20 (commit bd6d9ce)."""
    from PIL import Image

    from exresearch import style

    if not fig.axes and not fig.texts:
        return None
    try:
        alt = style.describe_figure(fig)
    except Exception:  # noqa: BLE001
        alt = "Chart."
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    out = io.BytesIO()
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, format="PNG", optimize=True)
    data = out.getvalue() if out.tell() < buf.tell() else buf.getvalue()
    return data, {"alt": alt}


def _rgb(png: bytes):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def compare(figures, *, repeats: int = 5) -> list[dict]:
    """Per figure: CPU seconds of each call of the previous and current figure_png
    (alternating, the previous first in odd rounds, the current first in even ones),
    identical pixels and alt text, PNG bytes of each."""
    import numpy as np

    from exresearch import style

    rows = []
    for cell, fig in figures:
        old, new = previous_figure_png(fig), style.figure_png(fig)  # first use untimed
        a, b = _rgb(old[0]), _rgb(new[0])
        times = {"previous": [], "current": []}
        for k in range(repeats):
            order = [("previous", previous_figure_png), ("current", style.figure_png)]
            for name, call in order if k % 2 == 0 else order[::-1]:
                t = time.process_time()
                call(fig)
                times[name].append(time.process_time() - t)
        rows.append({"cell": cell, "width": int(b.shape[1]), "height": int(b.shape[0]),
                     "alt": new[1]["alt"], "same_alt": old[1] == new[1],
                     "same_pixels": bool(a.shape == b.shape and np.array_equal(a, b)),
                     "bytes_previous": len(old[0]), "bytes_current": len(new[0]), **times})
    return rows


def to_markdown(rows: list[dict]) -> list[str]:
    """The per-figure table and the total (medians of CPU time, milliseconds)."""
    lines = ["| cell | figure (alt text, start) | pixels | previous | current | ratio | "
             "same pixels, alt | bytes previous / current |", "|---|---|---|---|---|---|---|---|"]
    tot_old = tot_new = 0.0
    for r in rows:
        old, new = statistics.median(r["previous"]), statistics.median(r["current"])
        tot_old, tot_new = tot_old + old, tot_new + new
        alt = r["alt"][:48].replace("|", "/") + ("..." if len(r["alt"]) > 48 else "")
        lines.append(f"| {r['cell']} | {alt} | {r['width']}x{r['height']} | {1000 * old:.0f} ms "
                     f"| {1000 * new:.0f} ms | {new / old:.2f} | "
                     f"{'yes' if r['same_pixels'] else 'NO'}, {'yes' if r['same_alt'] else 'NO'} "
                     f"| {r['bytes_previous']:,} / {r['bytes_current']:,} |")
    if rows:
        b_old = sum(r["bytes_previous"] for r in rows)
        b_new = sum(r["bytes_current"] for r in rows)
        lines.append(f"| all | {len(rows)} figures | | {1000 * tot_old:.0f} ms | "
                     f"{1000 * tot_new:.0f} ms | {tot_new / tot_old:.2f} | "
                     f"{sum(r['same_pixels'] for r in rows)}/{len(rows)} identical | "
                     f"{b_old:,} / {b_new:,} ({100 * (b_new / b_old - 1):+.1f}%) |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("study", type=Path)
    ap.add_argument("--notebook", default="client_report")
    ap.add_argument("--client", default="")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="markdown file (default: stdout)")
    ap.add_argument("--cells", type=int, default=0, metavar="N",
                    help="CPU per cell instead, N runs with each figure_png")
    ap.add_argument("--json", action="store_true", help="print the raw result as JSON")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1, but {args.repeats} was passed")
    if args.cells < 0:
        ap.error(f"--cells must be 0 or more, but {args.cells} was passed")
    if args.cells:
        return _main_cells(args)
    import tempfile

    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="exr-figures-") as tables:
        params = {"study_path": str(args.study.resolve()), "output_dir": tables}
        if args.notebook == "client_report":
            params["client_id"] = args.client
        figures = report_figures(ROOT / "notebooks" / f"{args.notebook}.ipynb", params)
    rows = compare(figures, repeats=args.repeats)
    if args.json:
        print(json.dumps(rows))
        return 0
    text = "\n".join([
        f"`{args.notebook}`, {len(rows)} figures, {args.repeats} calls of each per figure "
        f"(median CPU time); load average {load_start} at the start, {loadavg()} at the end.",
        "", *to_markdown(rows)]) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


def _main_cells(args) -> int:
    import os
    import tempfile

    from exresearch.build.kernels import KERNEL_ENV  # imports no numpy: set before it loads

    os.environ.update({k: v for k, v in KERNEL_ENV.items() if k != "MPLBACKEND"})
    from exresearch import style

    load_start = loadavg()
    variants = {"previous": previous_figure_png, "current": style.figure_png}
    runs = {n: [] for n in variants}
    with tempfile.TemporaryDirectory(prefix="exr-figures-") as tables:
        params = {"study_path": str(args.study.resolve()), "output_dir": tables}
        if args.notebook == "client_report":
            params["client_id"] = args.client
        nb = ROOT / "notebooks" / f"{args.notebook}.ipynb"
        cell_costs(nb, params, encode=style.figure_png)  # imports, first use
        for k in range(args.cells):
            order = list(variants.items())
            for name, encode in order if k % 2 == 0 else order[::-1]:
                runs[name].append(cell_costs(nb, params, encode=encode))
    if args.json:
        print(json.dumps(runs))
        return 0
    text = "\n".join([
        f"`{args.notebook}`: CPU time per code cell (median of {args.cells} runs each, "
        f"alternating); load average {load_start} at the start, {loadavg()} at the end.",
        "", *cells_markdown(runs)]) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
