"""Write the two data sets of tests/r/riclpm_error.R (run once; seeded; no exresearch code).

Run from the repository root:  python tests/r/riclpm_error_data.py

RI-CLPM data whose observed values carry measurement error of known variance:
x_ut = mu_xt + RI_xu + wx_ut + ex_ut, likewise y, (wx, wy)_t = A (wx, wy)_{t-1} + innovation,
ex_ut ~ N(0, ERROR[...]). Writes tests/data/riclpm_error_complete.csv (200 units, 4 waves,
error variance 0.6 for x and 0.4 for y at every wave) and tests/data/riclpm_error_missing.csv
(250 units, 3 waves, error variances that differ by wave, 10% of values missing).
"""

from pathlib import Path

import numpy as np
import pandas as pd

#: error variances by data set: (x per wave, y per wave); also read by the R script's caller
ERROR = {"complete": ([0.6] * 4, [0.4] * 4),
         "missing": ([0.5, 0.7, 0.4], [0.3, 0.3, 0.6])}
A = np.array([[0.5, 0.1], [0.25, 0.4]])  # rows: target (x, y); columns: source (x, y)


def simulate(rng, n, waves, err_x, err_y, missing=0.0):
    ri = rng.multivariate_normal([0, 0], [[1.0, 0.4], [0.4, 0.8]], size=n)
    innov = [[1.0, 0.2], [0.2, 0.9]]
    w = np.zeros((n, waves, 2))
    w[:, 0] = rng.multivariate_normal([0, 0], [[1.3, 0.3], [0.3, 1.2]], size=n)
    for t in range(1, waves):
        w[:, t] = w[:, t - 1] @ A.T + rng.multivariate_normal([0, 0], innov, size=n)
    mu = np.array([[3.0 + 0.1 * t, 5.0 - 0.2 * t] for t in range(waves)])
    obs = mu[None] + ri[:, None, :] + w
    obs[..., 0] += rng.normal(size=(n, waves)) * np.sqrt(err_x)
    obs[..., 1] += rng.normal(size=(n, waves)) * np.sqrt(err_y)
    x, y = obs[..., 0], obs[..., 1]
    out = pd.DataFrame(np.hstack([x, y]).round(4),
                       columns=[f"x{t + 1}" for t in range(waves)] + [f"y{t + 1}" for t in range(waves)])
    if missing:
        out = out.mask(rng.random(out.shape) < missing)
        out = out[out.notna().any(axis=1)]
    return out


if __name__ == "__main__":
    data = Path(__file__).resolve().parents[1] / "data"
    rng = np.random.default_rng(20261202)
    simulate(rng, 200, 4, *ERROR["complete"]).to_csv(data / "riclpm_error_complete.csv",
                                                     index=False)
    simulate(rng, 250, 3, *ERROR["missing"], missing=0.10).to_csv(
        data / "riclpm_error_missing.csv", index=False)
