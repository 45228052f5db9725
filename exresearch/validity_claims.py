"""The claims the reports make, registered with the validity harness (:mod:`exresearch.validity`).

Each function takes one simulated client's unit panel and its truth and returns the
events the harness counts. EX is ``ex_composite`` (the mean of the six driver scales),
CX is customer ``nps``, the business result ``revenue_growth``.
"""

from __future__ import annotations

import numpy as np

from .validity import claim

__all__: list[str] = []

_EX, _CX, _BUSINESS = "ex_composite", "nps", "revenue_growth"
_LOOP_EVENTS = ("directional", "ex_leads", "cx_leads", "reciprocal", "virtuous_or_doom",
                "says_not_reverse")


def _loop_events(res):
    label = res.loc[0, "label"]
    return {
        "directional": bool(res.loc[0, "directional"]),
        "ex_leads": label == "EX leads",
        "cx_leads": label == "CX leads",
        "reciprocal": label.startswith("reciprocal loop"),
        "virtuous_or_doom": label in ("reciprocal loop — virtuous cycle",
                                      "reciprocal loop — doom loop"),
        "says_not_reverse": bool(res.loc[0, "reverse_ruled_out"]),
    }


_NULL_LOOP_TARGETS = {"directional": (0.0, 0.05), "ex_leads": (0.0, 0.05),
                      "cx_leads": (0.0, 0.05)}


@claim("loop label (RI-CLPM, the reports' method)",
       worlds=("null", "reciprocal", "ex_leads", "reciprocal_no_trend"),
       targets={"null": {**_NULL_LOOP_TARGETS, "directional_at_0.05": (0.0, 0.05),
                         "ci_covers_zero_ex_to_cx": (0.93, 0.97),
                         "ci_covers_zero_cx_to_ex": (0.93, 0.97)},
                "reciprocal": {"says_not_reverse": (0.0, 0.05)},
                "ex_leads": {"cx_leads": (0.0, 0.05)},
                "reciprocal_no_trend": {"virtuous_or_doom": (0.0, 0.05)}})
def _loop_riclpm(panel, truth):
    """direction.loop_direction(x=ex_composite, y=nps): the label from within-unit paths
    (RI-CLPM), 'not the other way round' from the difference test, virtuous/doom from the
    trend test; a direction named at alpha 0.05 and 0.01 (either path positive and
    significant); in the null world also whether each path's 95% CI covers 0."""
    from .direction import loop_direction

    res = loop_direction(panel, x=_EX, y=_CX, periods=truth["periods"])
    out = _loop_events(res)
    row = res.iloc[0]
    ok = np.isfinite(row["x_to_y_p"]) and np.isfinite(row["y_to_x_p"])
    for a in (0.05, 0.01):  # a direction named at this level, whatever RICLPM_ALPHA is
        out[f"directional_at_{a:g}"] = (bool(any(
            row[b] > 0 and row[f"{b}_p"] < a for b in ("x_to_y", "y_to_x"))) if ok else None)
    if truth["world"] == "null":
        for key, est in (("ex_to_cx", "x_to_y"), ("cx_to_ex", "y_to_x")):
            p = row[f"{est}_p"]  # the reported 95% interval covers 0 iff p >= 0.05
            out[f"ci_covers_zero_{key}"] = bool(p >= 0.05) if np.isfinite(p) else None
    return out


@claim("within-unit paths (RI-CLPM with lavaan's defaults, before calibration)",
       worlds=("null",),
       targets={"null": {"directional_at_0.05": (0.0, 0.05),
                         "ci_covers_zero_ex_to_cx": (0.93, 0.97),
                         "ci_covers_zero_cx_to_ex": (0.93, 0.97)}})
def _riclpm_uncalibrated(panel, truth):
    """riclpm(equal_innovations=False, reference='normal'): innovations free per period
    and Wald z, as lavaan's RI-CLPM defaults and the reports before the calibration; a
    direction named at 0.05 (either path positive and significant) and whether each
    path's 95% CI covers 0. Kept to show why the defaults changed."""
    from .riclpm import riclpm

    res = riclpm(panel, x=_EX, y=_CX, periods=truth["periods"], equal_innovations=False,
                 reference="normal")
    b, p = res["estimate"].to_numpy()[:2], res["p_val"].to_numpy()[:2]
    ok = bool(np.isfinite(p).all())
    return {"directional_at_0.05": bool(((b > 0) & (p < 0.05)).any()) if ok else None,
            "ci_covers_zero_ex_to_cx": bool(p[0] >= 0.05) if ok else None,
            "ci_covers_zero_cx_to_ex": bool(p[1] >= 0.05) if ok else None}


@claim("loop label (plain cross-lagged regression, before issue 15)",
       worlds=("null", "reciprocal", "ex_leads"),
       targets={"null": dict(_NULL_LOOP_TARGETS)})
def _loop_clpm(panel, truth):
    """loop_direction(method='clpm'): the plain cross-lagged regression (lagged outcome as
    control, unit-clustered SEs) with the same rules; kept to show why it was replaced."""
    from .direction import loop_direction

    return _loop_events(loop_direction(panel, x=_EX, y=_CX, periods=truth["periods"],
                                       method="clpm"))


@claim("lagged correlation CI", worlds=("null", "reciprocal"),
       targets={w: {"covers_lag0": (0.93, 0.97), "covers_lag1": (0.93, 0.97)}
                for w in ("null", "reciprocal")})
def _lagged(panel, truth):
    """direction.lagged_correlations(ex_composite, nps, lags 0 and 1, period_effects=True):
    does the 95% CI cover the population correlation in truth.json? Unit-cluster
    bootstrap (default) and, for comparison, the pairs-as-independent interval."""
    from .direction import lagged_correlations

    tc = truth["client"]
    target = {0: tc["rho_observed"][_EX], 1: tc["lagged"]["ex_then_nps"]["rho_observed"][_EX]}
    out = {}
    for inference, prefix in (("cluster", ""), ("pairs", "pairs_")):
        res = lagged_correlations(panel, x=_EX, y=_CX, lags=(0, 1), periods=truth["periods"],
                                  period_effects=True, inference=inference, n_boot=1000,
                                  seed=1)
        for row in res.itertuples():
            ok = np.isfinite(row.ci_low) and np.isfinite(row.ci_high)
            out[f"{prefix}covers_lag{row.lag}"] = (
                bool(row.ci_low <= target[row.lag] <= row.ci_high) if ok else None)
    return out


def _aligned_unit_means(panel):
    """Unit means of EX, CX and the business result over the periods with an EX score."""
    d = panel[panel[_EX].notna()]
    return d.groupby("unit_id")[[_EX, _CX, _BUSINESS]].mean().reset_index()


@claim("mediation: chain EX -> CX -> revenue growth", worlds=("no_business_path", "reciprocal"),
       targets={"no_business_path": {"claimed_percentile": (0.0, 0.06),
                                     "claimed_monte_carlo": (0.0, 0.06)}})
def _mediation(panel, truth):
    """mediation.mediation on unit means (aligned periods): 'consistent with a chain' is
    claimed when the 95% interval of the indirect effect excludes 0; percentile bootstrap
    (the reports' default), Monte Carlo, and the bias-corrected bootstrap used before.
    In no_business_path revenue growth depends on neither CX nor EX (indirect = 0)."""
    from .mediation import mediation

    units = _aligned_unit_means(panel)
    out = {}
    for ci in ("percentile", "monte_carlo", "bca"):
        res = mediation(units, x=_EX, m=_CX, y=_BUSINESS, n_boot=1000, seed=1, ci=ci)
        row = res[res["path"] == "indirect"].iloc[0]
        ok = np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"])
        out[f"claimed_{ci}"] = bool(row["ci_low"] > 0 or row["ci_high"] < 0) if ok else None
    return out


@claim("engagement adds to CX beyond the drivers", worlds=("null", "reciprocal"),
       targets={w: {"claimed": (0.0, 0.05)} for w in ("null", "reciprocal")})
def _engagement(panel, truth):
    """drivers.incremental_validity on unit means (aligned periods): engagement's delta
    R^2 beyond the six drivers has p < 0.05. No engagement effect is planted
    (engagement_effect = 0); measurement error in the drivers can still let the
    correlated engagement scale add a little."""
    from .drivers import incremental_validity
    from .simulate import DRIVERS

    d = panel[panel[_EX].notna()]
    units = d.groupby("unit_id")[[*DRIVERS, "engagement", _CX]].mean().reset_index()
    res = incremental_validity(units, y=_CX, drivers=list(DRIVERS), engagement="engagement")
    row = res[(res["sequence"] == "drivers first") & (res["step"] == 2)].iloc[0]
    return {"claimed": bool(row["p_val"] < 0.05) if np.isfinite(row["p_val"]) else None}


@claim("significant link EX ~ CX (one period)", worlds=("null", "reciprocal"),
       targets={w: {"ci_covers_truth": (0.93, 0.97)} for w in ("null", "reciprocal")})
def _link(panel, truth):
    """linkage.correlations(ex_composite, nps) in the last period: does the Fisher-z 95%
    CI cover the population correlation; how often is the link significant (power: the
    correlation is real in every world, through the stable traits even in the null)."""
    from .linkage import correlations

    last = panel[panel["period"] == truth["periods"][-1]]
    res = correlations(last, x=_EX, y=_CX)
    row = res.iloc[0]
    rho = truth["client"]["rho_observed"][_EX]
    ok = np.isfinite(row["ci_low"])
    return {"ci_covers_truth": bool(row["ci_low"] <= rho <= row["ci_high"]) if ok else None,
            "significant": bool(row["p_val"] < 0.05) if ok else None}
