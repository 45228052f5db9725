"""Bias and interval coverage of the psychometric meta-analysis on simulated clients.

Run from the repository root (about a minute on one core)::

    .venv/bin/python validity/psychometric.py --sims 1000 --out validity/results/psychometric.json

Each simulated study has ``k`` clients of ``n`` units. Client ``i`` has a true
(construct-level) correlation ``rho_i ~ N(0.4, sd_rho^2)``, an EX reliability
``rxx_i ~ U(0.6, 0.9)`` and an outcome reliability ``ryy_i ~ U(0.6, 0.9)``, both known
(as the synthesis estimates them), and an observed correlation over ``n`` bivariate-normal
units with population correlation ``rho_i * sqrt(rxx_i * ryy_i)``.
:func:`exresearch.psychometric.psychometric_meta` corrects and pools them. Measured per
world (``sd_rho`` 0 and 0.1) and size:

- ``rho_bias``: mean of ``mean_rho - 0.4`` (target |bias| < 0.02);
- ``ci_coverage``: share of 95% CIs (with ``se_rho``, never below sampling error) that
  contain 0.4 (target 0.93-0.97);
- ``ci_coverage_hs``: the same with Hunter and Schmidt's ``s_r / sqrt(k)`` (reported: the
  reason ``se_rho`` is used);
- ``cr_coverage``: share of clients' true rho_i inside the 80% credibility interval
  (target about 0.80 when sd_rho > 0).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exresearch.psychometric import psychometric_meta  # noqa: E402

RHO = 0.4


def simulate(rng, k, n, sd_rho):
    rho_i = np.clip(RHO + sd_rho * rng.standard_normal(k), -0.95, 0.95)
    rxx, ryy = rng.uniform(0.6, 0.9, k), rng.uniform(0.6, 0.9, k)
    r = np.empty(k)
    for i in range(k):
        p = rho_i[i] * math.sqrt(rxx[i] * ryy[i])
        a = rng.standard_normal(n)
        b = p * a + math.sqrt(1 - p * p) * rng.standard_normal(n)
        r[i] = np.corrcoef(a, b)[0, 1]
    return pd.DataFrame({"r": r, "n": float(n), "rxx": rxx, "ryy": ryy}), rho_i


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=1000)
    ap.add_argument("--clients", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--units", type=int, default=30)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--out", default="validity/results/psychometric.json")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    records = []
    for sd_rho in (0.0, 0.1):
        for k in args.clients:
            bias, cover, cover_hs, cr = [], [], [], []
            for _ in range(args.sims):
                d, rho_i = simulate(rng, k, args.units, sd_rho)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = psychometric_meta(d, rxx="rxx", ryy="ryy")
                bias.append(res["mean_rho"] - RHO)
                cover.append(res["rho_ci_low"] <= RHO <= res["rho_ci_high"])
                lo = res["mean_rho"] - 1.959963984540054 * res["se_rho_hs"]
                hi = res["mean_rho"] + 1.959963984540054 * res["se_rho_hs"]
                cover_hs.append(lo <= RHO <= hi)
                cr.append(np.mean((rho_i >= res["rho_cr_low"]) & (rho_i <= res["rho_cr_high"])))
            rec = {"world": f"sd_rho={sd_rho:g}", "n_clients": k, "n_units": args.units,
                   "n_sims": args.sims, "rho_bias": float(np.mean(bias)),
                   "ci_coverage": float(np.mean(cover)),
                   "ci_coverage_hs": float(np.mean(cover_hs)),
                   "cr_coverage": float(np.mean(cr)),
                   "passed": bool(abs(np.mean(bias)) < 0.02 and 0.93 <= np.mean(cover) <= 0.97)}
            records.append(rec)
            print(f"{rec['world']:11s} k={k:3d} bias={rec['rho_bias']:+.3f} "
                  f"CI coverage={rec['ci_coverage']:.3f} (HS SE: {rec['ci_coverage_hs']:.3f}) "
                  f"80% CrI holds {rec['cr_coverage']:.3f} of true rho")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records, indent=1) + "\n")
    print(f"{time.time() - t0:.0f} s -> {out}")


if __name__ == "__main__":
    main()
