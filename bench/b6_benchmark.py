"""B6, a client report's cost against the number of clients: the anonymous benchmark.

A client report ranks its client among all the others. It used to compute every
client's unit means and correlation itself (``report.all_unit_means`` then
``report.benchmark_table(means, ...)``), a cost that grows with the number of clients;
now the build's zygote computes them once (``report.benchmark_aggregates``, through
``report.preload_study``) and a report only looks its client up. This script loads a B6
study, preloads it as the zygote does, and times both ways for a few clients in turn
(CPU time, ``time.process_time``), after checking that they give the same table.

Usage::

    nice -n 10 .venv/bin/python bench/b6_benchmark.py --sizes 100,300 [--clients 5]

Studies are simulated (fixed seed) into ``$TMPDIR/exresearch-bench/b6/``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from b6_scale import make_study  # noqa: E402


def measure(study_path: Path, n_clients: int) -> dict:
    import pandas as pd

    from exresearch import report
    from exresearch.study import load_study

    t = time.process_time()
    study = load_study(study_path)
    load_s = time.process_time() - t
    roles = report.measure_roles(study.config)
    t = time.process_time()
    report.preload_study(study)  # as the build's zygote: panels and benchmark aggregates
    preload_s = time.process_time() - t
    ids = study.clients[:: max(1, len(study.clients) // n_clients)][:n_clients]
    old, new = [], []
    for cid in ids:  # interleaved: the old way, then the new way, per client
        panel = report.client_panel(study, cid, roles)
        t = time.process_time()
        means = report.all_unit_means(study, roles, panels={cid: panel})
        a = report.better_than(report.benchmark_table(means, client_id=cid, roles=roles))
        old.append(time.process_time() - t)
        t = time.process_time()
        b = report.better_than(report.benchmark_table(
            client_id=cid, roles=roles,
            aggregates=report.benchmark_aggregates(study, roles, panels={cid: panel})))
        new.append(time.process_time() - t)
        pd.testing.assert_frame_equal(a, b)  # the same benchmark, to the last digit
    report._forget_preloaded()
    return {"clients": len(study.clients), "load_s": load_s, "preload_s": preload_s,
            "old": statistics.median(old), "new": statistics.median(new),
            "reports": len(ids), "load": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,300")
    ap.add_argument("--clients", type=int, default=5, help="client reports timed per size")
    ap.add_argument("--units", type=int, default=30)
    ap.add_argument("--periods", type=int, default=4)
    args = ap.parse_args(argv)
    root = Path(tempfile.gettempdir()) / "exresearch-bench" / "b6"
    root.mkdir(parents=True, exist_ok=True)
    print("| clients | benchmark per report, recomputed (median CPU) | looked up "
          "(median CPU) | zygote: load / preload (CPU) | load average |")
    print("|---|---|---|---|---|")
    for n in [int(s) for s in args.sizes.split(",") if s]:
        study, _ = make_study(root, n, args.units, args.periods)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = measure(study, args.clients)
        print(f"| {r['clients']} | {r['old']:.3f} s | {r['new'] * 1000:.1f} ms | "
              f"{r['load_s']:.1f} s / {r['preload_s']:.1f} s | {r['load']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
