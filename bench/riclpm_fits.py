"""The RI-CLPM fits of a build, checkout against checkout: CPU per fit and every number
each fit returns.

Each checkout runs in a fresh process importing exresearch from it (``PYTHONPATH``),
alternately (before, after, before, after). The process computes each client's unit
panel (not timed), then makes the calls a build makes: the client report's
``riclpm.riclpm(panel, x=ex, y=primary_cx)`` and the synthesis part
(``report.summaries._synthesis_part``: ``cross_lagged_by_client`` and
``within_paths_by_client`` for each outcome), with ``riclpm.riclpm_fit`` wrapped to
record its inputs, its result and its CPU (``time.process_time``; BLAS on one thread,
as in a kernel). With ``--split`` it also times the fit's parts: the optimizer
(``optimize.minimize``), the observed information (the gradients at the 2n central
differences), the unit scores (sandwich and jackknife) and the rest.

Every fit's inputs must be the same bytes in every checkout; the results are compared
with the first checkout's: bit-identical fits, and the largest difference of each
returned value (relative, absolute below 1 in magnitude). Compare checkouts on the same
side of commit 55a9777: since then the synthesis part fits EX -> primary CX once instead
of twice, so a checkout before it makes one fit more per client (an error says so).

Usage::

    nice -n 10 .venv/bin/python bench/riclpm_fits.py --study /work/studies/b6-30 \\
        --code before=/tmp/before --code after=. --repeat 2 [--clients 30] [--split]
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, VENV_BIN  # noqa: E402

PARTS = ("optimizer", "information", "unit_scores")


def worker(study_path: Path, n_clients: int, split: bool, out: Path) -> None:
    import warnings

    import numpy as np

    from exresearch import report, riclpm
    from exresearch.report.summaries import _synthesis_part
    from exresearch.study import load_study

    warnings.simplefilter("ignore")
    study = load_study(study_path)
    roles = report.measure_roles(study.config)
    periods = list(study.config.periods)
    clients = study.clients
    cids = list(clients["client_id"]) if hasattr(clients, "columns") else list(clients)
    cids = cids[:n_clients]
    panels = {c: report.client_panel(study, c, roles) for c in cids}
    acc: dict = {}

    def timed(name, fn):
        def wrapped(*args, **kwargs):
            t = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                acc[name] = acc.get(name, 0.0) + time.process_time() - t
        return wrapped

    if split:  # the parts of one fit (the module's own names, patched in this process)
        from scipy import optimize

        riclpm.optimize = type("Optimize", (), {"minimize": staticmethod(
            timed("optimizer", optimize.minimize))})
        riclpm._unit_scores = timed("unit_scores", riclpm._unit_scores)
        if hasattr(riclpm, "_gradients"):  # stacked: the information is one call
            batched = riclpm._gradients

            def gradients(spec, thetas, *args, **kwargs):
                if thetas.shape[0] == 1:
                    return batched(spec, thetas, *args, **kwargs)
                return timed("information", batched)(spec, thetas, *args, **kwargs)
            riclpm._gradients = gradients
        else:  # one theta a call: those made by riclpm_fit itself are the information's
            one = riclpm._gradient

            def gradient(*args, **kwargs):
                if sys._getframe(1).f_code.co_name == "riclpm_fit":
                    return timed("information", one)(*args, **kwargs)
                return one(*args, **kwargs)
            riclpm._gradient = gradient
    fits = []
    fit = riclpm.riclpm_fit
    where = [None]

    def recorded(values, **kwargs):
        acc.clear()
        t = time.process_time()
        res = fit(values, **kwargs)
        cpu = time.process_time() - t
        fits.append({"where": where[0], "values": np.asarray(values).tobytes(),
                     "kwargs": repr(sorted(kwargs.items())), "result": res, "cpu": cpu,
                     "parts": {k: acc.get(k, 0.0) for k in PARTS}})
        return res

    riclpm.riclpm_fit = recorded
    fit(np.random.default_rng(0).normal(size=(30, 8)), n_waves=4)  # warm-up
    for c in cids:
        where[0] = (c, "client report")
        riclpm.riclpm(panels[c], x=roles.ex, y=roles.primary_cx, periods=periods)
        where[0] = (c, "synthesis part")
        _synthesis_part(study, c, panels[c], roles, n_boot=20, seed=1)
    out.write_bytes(pickle.dumps(fits))


def _largest_differences(first: list, other: list) -> tuple[int, dict]:
    import numpy as np

    same, worst = 0, {}
    if len(first) != len(other):
        raise RuntimeError(
            f"the checkouts make {len(first)} and {len(other)} fits: compare checkouts on "
            "the same side of 55a9777 (the synthesis part fits EX -> primary CX once since)")
    for a, b in zip(first, other, strict=True):
        if (a["values"], a["kwargs"]) != (b["values"], b["kwargs"]):
            raise RuntimeError(f"the inputs of fit {a['where']} differ between checkouts")
        identical = True
        for key, va in a["result"].items():
            vb = b["result"][key]
            if key == "lr" or isinstance(va, (str, bool, list)):
                if va != vb:
                    identical = False
                    worst[key] = "different"
                continue
            va, vb = np.asarray(va, float), np.asarray(vb, float)
            if not np.array_equal(va, vb, equal_nan=True):
                identical = False
            if (np.isnan(va) != np.isnan(vb)).any():
                worst[key] = "NaN elsewhere"
                continue
            ok = ~np.isnan(va)
            diff = np.abs(va - vb)[ok] / np.maximum(1.0, np.abs(va[ok]))
            worst[key] = max(worst.get(key, 0.0), float(diff.max()) if diff.size else 0.0)
        same += identical
    return same, worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", type=Path, required=True)
    ap.add_argument("--clients", type=int, default=30)
    ap.add_argument("--code", action="append", default=[], help="NAME=DIR (repeatable)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--split", action="store_true")
    ap.add_argument("--worker", type=Path)
    a = ap.parse_args(argv)
    if a.worker:
        worker(a.study, a.clients, a.split, a.worker)
        return 0
    codes = [(c.split("=", 1)[0], Path(c.split("=", 1)[1]).resolve()) for c in a.code] \
        or [("this", ROOT)]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeat):
            for name, code in codes:
                env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS="1",
                           OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
                out = Path(tmp) / f"{name}-{rep}.pkl"
                load = os.getloadavg()[0]
                cmd = [str(VENV_BIN / "python"), __file__, "--worker", str(out), "--study",
                       str(a.study.resolve()), "--clients", str(a.clients)]
                proc = subprocess.run(cmd + (["--split"] if a.split else []), cwd=tmp,
                                      capture_output=True, text=True, env=env, check=False)
                if proc.returncode:
                    raise RuntimeError(proc.stderr[-3000:])
                fits = pickle.loads(out.read_bytes())
                runs.append((name, rep + 1, fits, (load, os.getloadavg()[0])))
                cpu = [f["cpu"] for f in fits]
                line = (f"{name} {rep + 1}: {len(fits)} fits, median {statistics.median(cpu) * 1e3:.1f}"
                        f" ms, sum {sum(cpu):.2f} s")
                for where in ("client report", "synthesis part"):
                    per_client = {}
                    for f in fits:
                        if f["where"][1] == where:
                            per_client[f["where"][0]] = per_client.get(f["where"][0], 0) + f["cpu"]
                    line += (f"; {where} fits per client median "
                             f"{statistics.median(per_client.values()) * 1e3:.0f} ms")
                if a.split:
                    line += "; parts (median ms): " + ", ".join(
                        f"{k} {statistics.median(f['parts'][k] for f in fits) * 1e3:.1f}"
                        for k in PARTS)
                print(line + f"; load {load:.1f}-{os.getloadavg()[0]:.1f}", flush=True)
    first = runs[0]
    for name, rep, fits, _ in runs[1:]:
        same, worst = _largest_differences(first[2], fits)
        print(f"{name} {rep} against {first[0]} {first[1]}: {same} of {len(fits)} fits "
              f"bit-identical; largest differences {worst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
