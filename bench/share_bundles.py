"""B8 inside: ``write_share_bundles`` alone on a made-up staging site (issue 20).

``N`` clients, each with a 200 kB report page and the 22 CSV tables a client report
writes, and a synthesis page; each round writes the site afresh into ``--folder`` and
times the share bundles (CPU of this process, wall), with the code of ``--code`` (a
folder holding ``exresearch/``, e.g. a ``git worktree add --detach`` of main), so that
before and after can be run alternately::

    .venv/bin/python bench/share_bundles.py --code /tmp/before --clients 300 --folder /tmp/sb
    .venv/bin/python bench/share_bundles.py --code . --clients 300 --folder /tmp/sb
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

TABLES = ["benchmark", "cross_lagged", "driver_priorities", "ex_profile", "ex_trend",
          "findings", "incremental_validity", "investment", "lagged_correlations",
          "linkage_correlations", "linkage_robustness", "loop", "loop_projection",
          "mediation", "reliability_agreement", "response_counts", "standout_units",
          "suppressed_units", "unit_actions", "unit_spread", "utility", "weight_differences"]


def _rounds(n: int, folder: Path, rounds: int) -> list[dict]:  # runs with --code's exresearch
    import time
    from types import SimpleNamespace

    from exresearch.build.sitefiles import write_share_bundles

    out = []
    for i in range(rounds):
        site = folder / f"site{i}"
        shutil.rmtree(site, ignore_errors=True)
        (site / "reports").mkdir(parents=True)
        recs = []
        for c in range(n):
            cid, key = f"client-{c:03d}", f"client-client-{c:03d}"
            (site / "reports" / f"{key}.html").write_text("x" * 200_000)
            (site / "tables" / key).mkdir(parents=True)
            for t in TABLES:
                (site / "tables" / key / f"{t}.csv").write_text("a,b\n1,2\n")
            recs.append(SimpleNamespace(kind="client", status="ok", html=f"reports/{key}.html",
                                        client_id=cid, name=f"Client {c}", key=key,
                                        tables=[f"tables/{key}/{t}.csv" for t in TABLES]))
        (site / "reports" / "synthesis.html").write_text("y" * 500_000)
        recs.append(SimpleNamespace(kind="synthesis", status="ok", html="reports/synthesis.html",
                                    client_id=None, name="Synthesis", key="synthesis", tables=[]))
        load = os.getloadavg()[0]
        c0, w0 = time.process_time(), time.perf_counter()
        shares = write_share_bundles(site, SimpleNamespace(name="Bench"), recs)
        out.append({"cpu": round(time.process_time() - c0, 3),
                    "wall": round(time.perf_counter() - w0, 3), "bundles": len(shares),
                    "load": round(load, 1)})
        shutil.rmtree(site)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--code", type=Path, required=True)
    p.add_argument("--clients", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--folder", type=Path, required=True)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.inner:
        print(json.dumps(_rounds(a.clients, a.folder, a.rounds)))
        return 0
    env = dict(os.environ, PYTHONPATH=str(a.code.resolve()))
    res = subprocess.run([sys.executable, __file__, "--inner", "--code", str(a.code),
                          "--clients", str(a.clients), "--rounds", str(a.rounds),
                          "--folder", str(a.folder)], env=env, capture_output=True,
                         text=True, check=True, cwd="/tmp")
    print(res.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
