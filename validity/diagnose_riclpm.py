"""Why do the RI-CLPM's within-unit path CIs under-cover in the null world? (issue 15)

Run from the repository root (about 10-20 minutes on a quiet core)::

    nice -n 10 .venv/bin/python validity/diagnose_riclpm.py --reps 150 \
        > validity/diagnose_riclpm.md

Part A simulates the null world's latent structure directly (numpy, complete data):
per unit a stable trait for x and y (half of each variable's variance, correlated 0.4)
plus independent within-unit AR(1) processes (x 0.6, y 0.5, no cross-lagged effect),
observed with or without measurement error of a given within-unit reliability, and fits
:func:`exresearch.riclpm.riclpm_fit` to each replicate. Rows differ by one knob at a time:
units (30 / 100 / 300), measurement error (within-unit reliability 1 or 0.5, the value of
the simulator's defaults for the EX composite and NPS), so that (a) measurement error,
(b) small-sample standard errors and (c) the rest can be told apart.

Part B runs the same fits on the simulator's own clients (``simulate_study`` null world
through ``load_study`` and ``unit_panel``, as the harness does) with its knobs: default,
noise off (huge units: every employee answers, NPS without noise) and complete data.

For each row: the mean and SD of the x -> y and y -> x estimates over replicates, the mean
standard error (ML observed information, robust sandwich), and the share of 95% Wald
intervals covering 0 (the truth) with each, pooled over both paths; all of these with
the innovation (co)variances free per period and Wald z (the estimator before the fix),
with the share of clients for which either path is positive and significant at 0.05 (a
direction named; the target is at most 5%). Then the fix: innovations equal over
periods, coverage with Wald z, t with G - 1 df and t with G - p df (G units, p free
parameters: 21 with 4 periods; riclpm's default), and the share of clients with a
direction named at 0.05 with the last.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from exresearch.riclpm import riclpm_fit

Z = 1.959964


def latent_null(rng, n_units, *, n_waves=4, reliability=1.0, trait_share=0.5,
                trait_corr=0.4, ar=(0.6, 0.5), error=None):
    """(units, 2T) observed x_1..x_T, y_1..y_T of the null world (within variance 1)."""
    out = []
    tr_sd = np.sqrt(trait_share / (1 - trait_share))
    traits = rng.multivariate_normal([0, 0], [[1, trait_corr], [trait_corr, 1]], n_units)
    for k, a in enumerate(ar):
        w = np.empty((n_units, n_waves))
        w[:, 0] = rng.standard_normal(n_units)
        for t in range(1, n_waves):
            w[:, t] = a * w[:, t - 1] + np.sqrt(1 - a**2) * rng.standard_normal(n_units)
        obs = tr_sd * traits[:, [k]] + w
        if reliability < 1:
            ev = (1 - reliability) / reliability
            if error == "by_size":  # error variance varies between units (unit sizes)
                size = rng.gamma(3.0, 1 / 3.0, n_units)[:, None]
                obs = obs + np.sqrt(ev / size) * rng.standard_normal((n_units, n_waves))
            else:
                obs = obs + np.sqrt(ev) * rng.standard_normal((n_units, n_waves))
        out.append(obs)
    return np.hstack(out)


def summarise(label, fits, units):
    """One table row: lavaan-default inference (free innovations, z) and the first fix
    (equal innovations, t(G-1) and t(G-p)); the reports' rule since is in
    calibrate_riclpm.py (larger of ML and sandwich SE, t(G-13))."""
    from scipy import stats

    est, se, rob, z_eq = [], [], [], []
    n_par = len(fits[0][1]["estimate"])  # free parameters of the equal-innovation model
    for free, eq in fits:
        if not (free["converged"] and eq["converged"]):
            continue
        i = [free["names"].index("x_to_y"), free["names"].index("y_to_x")]
        j = [eq["names"].index("x_to_y"), eq["names"].index("y_to_x")]
        est.append(free["estimate"][i])
        se.append(free["se"][i])
        rob.append(free["se_robust"][i])
        z_eq.append(eq["estimate"][j] / eq["se"][j])
    est, se, rob, z_eq = (np.array(v) for v in (est, se, rob, z_eq))
    n = len(est)
    cov_ml = np.mean(np.abs(est) <= Z * se)
    cov_rob = np.mean(np.abs(est) <= Z * rob)
    cov_eq_z = np.mean(np.abs(z_eq) <= Z)
    cov_eq_t1 = np.mean(np.abs(z_eq) <= stats.t.ppf(0.975, units - 1))
    df = units - n_par  # riclpm's reference: units less parameters
    cov_eq_t = np.mean(np.abs(z_eq) <= stats.t.ppf(0.975, df))
    # a direction named at 0.05: either path positive and significant (the t reference)
    named = np.mean(((z_eq > 0) & (2 * stats.t.sf(np.abs(z_eq), df) < 0.05)).any(axis=1))
    named_old = np.mean(((est > 0) & (np.abs(est) > Z * se)).any(axis=1))
    z_sd = np.std(est / se, ddof=1)
    return (f"| {label} | {n} | {est[:, 0].mean():+.3f} / {est[:, 1].mean():+.3f} | "
            f"{est.std(axis=0, ddof=1).mean():.3f} | {np.nanmean(se):.3f} | "
            f"{np.nanmean(rob):.3f} | {z_sd:.2f} | {cov_ml:.3f} | {cov_rob:.3f} | "
            f"{named_old:.3f} | {cov_eq_z:.3f} | {cov_eq_t1:.3f} | {cov_eq_t:.3f} | "
            f"{named:.3f} |")


def fit_all(samples, n_waves=4):
    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for v in samples:
            fits.append((riclpm_fit(v, n_waves=n_waves),
                         riclpm_fit(v, n_waves=n_waves, equal_innovations=True)))
    return fits


def part_a(reps, seed):
    rows = []
    for units in (30, 100, 300):
        for rel, err in ((1.0, None), (0.5, None), (0.5, "by_size")):
            if units == 300 and err == "by_size":
                continue
            rng = np.random.default_rng(seed + units)
            n = reps if units < 300 else max(reps // 2, 20)
            samples = [latent_null(rng, units, reliability=rel, error=err) for _ in range(n)]
            lab = (f"A: {units} units, within reliability {rel:g}"
                   + (", error variance varies by unit" if err else ""))
            rows.append(summarise(lab, fit_all(samples), units))
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def sim_panels(world_opts, units, reps, seed):
    """(units, 2T) arrays of ex_composite and nps from the simulator's own clients."""
    import json
    import tempfile
    from pathlib import Path

    from exresearch.aggregate import unit_panel
    from exresearch.simulate import DRIVERS, simulate_study
    from exresearch.study import load_study

    with tempfile.TemporaryDirectory() as tmp:
        path = simulate_study(Path(tmp) / "s", n_clients=reps, n_units=units, n_periods=4,
                              seed=seed, preset="null", **world_opts)
        truth = json.loads((path / "truth.json").read_text())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = load_study(path)
            out = []
            for c in study.clients:
                p = unit_panel(study, c)
                p["ex"] = p[list(DRIVERS)].mean(axis=1, skipna=False)
                w = p.pivot(index="unit_id", columns="period", values=["ex", "nps"])
                w = w.reindex(columns=[(v, q) for v in ("ex", "nps") for q in truth["periods"]])
                arr = w.to_numpy(float).copy()
                # the reports' scaling: pooled within-unit SD
                for k in range(2):
                    blk = arr[:, 4 * k:4 * k + 4]
                    dev = blk - np.nanmean(blk, axis=1, keepdims=True)
                    dof = np.isfinite(blk).sum() - np.isfinite(blk).any(axis=1).sum()
                    arr[:, 4 * k:4 * k + 4] = blk / np.sqrt(np.nansum(dev**2) / dof)
                out.append(arr)
    return out


def part_b(reps, seed):
    rows = []
    knobs = [
        ("default", {}),
        ("complete data (no missing answers, every unit reported)",
         {"missing_rate": 0.0, "min_group_size": 3, "mean_headcount": 30.0,
          "response_rate": 1.0}),
        ("noise off (300 respondents per unit, NPS without noise)",
         {"mean_headcount": 300.0, "response_rate": 1.0, "nps_noise": 0.0,
          "missing_rate": 0.0}),
    ]
    for units in (30, 100):
        for label, opts in knobs:
            n = reps if units == 30 else max(reps * 2 // 3, 20)
            if "noise off" in label:
                n = max(n // 2, 20)
            samples = sim_panels(opts, units, n, seed + units)
            rows.append(summarise(f"B: simulator, {units} units, {label}", fit_all(samples),
                                   units))
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=150)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--parts", default="AB")
    args = p.parse_args(argv)
    t0 = time.time()
    head = ["| condition | fits | mean x->y / y->x | SD of estimates | mean ML SE | "
            "mean robust SE | SD of z (ML) | coverage ML | coverage robust | "
            "direction named at 0.05 (before) | coverage equal innov., z | "
            "coverage equal innov., t(G-1) | coverage equal innov., t(G-p) (first fix) | "
            "direction named at 0.05 (first fix) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
            "| --- |"]
    rows = []
    if "A" in args.parts:
        rows += part_a(args.reps, args.seed)
    if "B" in args.parts:
        rows += part_b(args.reps, args.seed)
    print("\n".join(head + rows))
    print(f"\n{time.time() - t0:.0f} s; reps {args.reps}, seed {args.seed}")


if __name__ == "__main__":
    main()
