"""Error rates of the synthesis' moderator verdict on simulated clients with known truth.

Run from the repository root (about 3 minutes on one core at the default sizes)::

    .venv/bin/python validity/moderators.py --sims 400 --clients 10 20 \\
        --out validity/results/moderators.json

Each simulated study has ``k`` clients of ``n`` units (default 30). Client ``i`` has a
characteristic ``x_i ~ N(0, 1)`` (such as log revenue, standardised) and a true Fisher z
``atanh(0.3) + slope * x_i + u_i`` with ``u_i ~ N(0, 0.05^2)`` (other, unexplained
differences); its observed correlation is over ``n`` bivariate-normal units. The
synthesis' verdict "the link differs with <characteristic>" is the REML meta-regression's
permutation test at 5% (:func:`exresearch.moderators.moderator_tests`), run only with at
least 10 clients. Worlds: ``slope = 0`` (null: every "differs" is a false positive),
``0.1`` and ``0.2`` (change in z per SD of the characteristic).

Written (JSON, one record per world x size, the validity harness's format ``claim,
world, n_units, n_clients, estimate, target, passed`` plus the Wald test's rate):

- ``moderator_false_positive``: share of null studies with the verdict (target <= 0.05
  within Monte Carlo error, i.e. <= 0.05 + 2 MC SE);
- ``moderator_power``: share of studies with a real moderator that get the verdict
  (reported; no target).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exresearch.moderators import moderator_error_rates  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=400)
    ap.add_argument("--clients", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--units", type=int, default=30)
    ap.add_argument("--permutations", type=int, default=200)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--out", default="validity/results/moderators.json")
    args = ap.parse_args(argv)
    t0 = time.time()
    records = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in args.clients:
            res = moderator_error_rates(n_clients=k, n_units=args.units, r=0.3,
                                        slope=[0.0, 0.1, 0.2], tau=0.05, n_sims=args.sims,
                                        permutations=args.permutations, method="REML",
                                        seed=args.seed)
            for row in res.itertuples(index=False):
                null = row.slope == 0
                records.append({
                    "claim": "moderator_false_positive" if null else "moderator_power",
                    "world": f"slope={row.slope:g}", "n_units": args.units, "n_clients": k,
                    "estimate": row.rate_perm, "mc_se": row.mc_se,
                    "estimate_wald": row.rate_wald, "n_sims": args.sims,
                    "target": "<= 0.05" if null else None,
                    "passed": bool(row.rate_perm <= 0.05 + 2 * row.mc_se) if null else None,
                })
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records, indent=1) + "\n")
    for r in records:
        print(f"{r['claim']:26s} {r['world']:10s} k={r['n_clients']:3d} "
              f"perm={r['estimate']:.3f} (MC SE {r['mc_se']:.3f}) wald={r['estimate_wald']:.3f}")
    print(f"{time.time() - t0:.0f} s -> {out}")


if __name__ == "__main__":
    main()
