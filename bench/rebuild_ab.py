"""B6, one client changed: the rebuild of two checkouts' sites, alternately.

Each round changes one answer of one client's survey (``build_cases.change_one_answer``)
in the study both sites were built from, then rebuilds every ``--code NAME=DIR:SITE:CACHE``
site in turn (the order alternates between rounds) with ``exresearch build STUDY --out
SITE --cache CACHE --no-pdf --debug`` (``--pdf``: with the PDFs) run from ``DIR`` (``PYTHONPATH``) at the niceness
this script has. Per build: wall time, CPU of the build's process tree (``os.wait4`` of
the CLI, which waits for the zygote, plus the kernels the zygote reaps, sampled from
``/proc`` every 50 ms as ``fixed_costs.py`` does), the load average, the ``--debug``
phase table and each executed report's run time (``manifest.json``).

The sites must be current for their code (built by it, or ``adopt_site.py``).

Usage::

    nice -n 10 .venv/bin/python bench/rebuild_ab.py --study STUDY --client client-151 \\
        --code before=/tmp/before:/tmp/site-before:/tmp/cache-before \\
        --code after=$PWD:/tmp/site-after:/tmp/cache-after --rounds 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_cases import change_one_answer  # noqa: E402
from fixed_costs import phases, run_sampled  # noqa: E402

VENV_PY = Path(sys.executable)


def rebuild(code: Path, study: Path, site: Path, cache: Path, extra=(), *,
            pdf: bool = False) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code), PYTHONHASHSEED="0")
    load0 = os.getloadavg()
    run = run_sampled([str(VENV_PY), "-m", "exresearch", "build", str(study), "--out",
                       str(site), "--cache", str(cache), *([] if pdf else ["--no-pdf"]),
                       "--debug", *extra], env)
    tree, kernels = run["cpu_cli"], run["cpu_kernels"]  # the CLI and the zygote; kernels
    manifest = json.loads((site / "manifest.json").read_text())
    ran = {r["key"]: round(r["duration"], 2) for r in manifest["reports"] if r["executed"]}
    return {"rc": run["rc"], "wall": round(run["wall"], 2), "cpu_cli_zygote": round(tree, 2),
            "cpu_kernels": round(kernels, 2), "cpu_total": round(tree + kernels, 2),
            "load_before": [round(x, 2) for x in load0],
            "load_after": [round(x, 2) for x in os.getloadavg()], "executed": ran,
            "phases": phases(run["err"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", type=Path, required=True)
    ap.add_argument("--client", default="client-151")
    ap.add_argument("--code", action="append", required=True, help="NAME=DIR:SITE:CACHE")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--pdf", action="store_true", help="print the PDFs too (as B6 does; the "
                    "sites must then be built with PDFs)")
    args = ap.parse_args(argv)
    codes = []
    for spec in args.code:
        name, _, rest = spec.partition("=")
        d, s, c = rest.split(":")
        codes.append((name, Path(d).resolve(), Path(s).resolve(), Path(c).resolve()))
    runs = []
    for rnd in range(args.rounds):
        changed = change_one_answer(args.study, args.client)
        order = codes if rnd % 2 == 0 else codes[::-1]
        for name, code, site, cache in order:
            res = rebuild(code, args.study.resolve(), site, cache, pdf=args.pdf)
            res.update(code=name, round=rnd + 1, changed=changed)
            runs.append(res)
            print(f"round {rnd + 1} {name}: rc {res['rc']}, wall {res['wall']} s, CPU "
                  f"{res['cpu_total']} s (CLI+zygote {res['cpu_cli_zygote']}, kernels "
                  f"{res['cpu_kernels']}), load {res['load_before'][0]} -> "
                  f"{res['load_after'][0]}, ran {res['executed']}", flush=True)
            print(res["phases"], flush=True)
            if args.json:
                args.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
