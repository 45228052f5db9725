"""The cross-client synthesis as a published meta-analysis reports it: one call per section.

Each function takes what the synthesis notebook already computed (the study, its unit
panels, the stacked unit means, per-client correlations or paths) and returns a tidy
DataFrame, written as CSV beside the report:

- :func:`study_characteristics` - Table 1 (organisations by industry group, units,
  respondents, unit-periods, periods, outcomes available);
- :func:`inclusion_account` - clients, units and unit-periods available, suppressed,
  excluded (with reasons) and included;
- :func:`add_composite` - the composite business performance outcome (Harter et al.);
- :func:`reliabilities` - per client, the reliability of every EX measure's unit means
  (ICC(2)) and of every outcome (test-retest across periods, or ``study.yml``), and the
  u ratio when ``study.yml`` gives a reference SD;
- :func:`icc2_table` - ICC(2) under its two names: of one period's unit mean and of the
  unit mean over all periods;
- :func:`psychometric_table` - bare-bones and psychometric (Hunter-Schmidt) meta-analysis
  beside the REML random-effects model for every EX measure x outcome;
- :func:`pool_paths` - the loop: each cross-lagged path pooled by random-effects
  meta-analysis from per-client estimates and SEs, with heterogeneity;
- :func:`study_utility` - utility at study level (BCG per SD of EX, top-vs-bottom
  quartile, odds of above-median performance), pooled over clients;
- :func:`minimum_detectable_r` - the smallest true correlation this study detects with
  80% power (from :func:`exresearch.power.power_analytic`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ._checks import check_column_args as _check_columns
from .config import MIN_BENCHMARK_CONTRIBUTORS
from .exceptions import ParameterError

__all__ = [
    "study_characteristics", "inclusion_account", "add_composite", "COMPOSITE",
    "reliabilities", "icc2_table", "describe_unit_reliability", "psychometric_table",
    "pooling_comparison", "describe_hs_vs_reml",
    "within_paths_by_client", "pool_paths", "study_utility", "minimum_detectable_r",
]

#: Column name of the composite performance outcome.
COMPOSITE = "composite"
_Z975 = stats.norm.ppf(0.975)


# --------------------------------------------------------------------------- Table 1
def study_characteristics(study, *, panels, roles, min_clients=MIN_BENCHMARK_CONTRIBUTORS,
                          publish_names=False) -> pd.DataFrame:
    """Table 1: the organisations by (merged) industry group, as Harter et al. report it.

    Parameters
    ----------
    study : exresearch.study.Study
    panels : dict
        client id -> unit panel (:func:`exresearch.report.client_panel`).
    roles : exresearch.report.Roles
    min_clients : int, default 3
        Industry groups are merged (:func:`exresearch.moderators.merge_groups`) until each
        has at least this many organisations, unless ``publish_names``.
    publish_names : bool, default False
        With published client names industries are shown as they are.

    Returns
    -------
    pandas.DataFrame
        One row per industry group then a ``"All organisations"`` row: ``industry``,
        ``organisations``, ``units`` (with at least one reported unit-period),
        ``respondents`` (in reported unit-periods), ``unit_periods`` (reported),
        ``periods`` (distinct periods with reported data), ``outcomes`` (outcomes with
        any value, as "name (organisations)" text).
    """
    from .moderators import merge_groups

    cfg = study.config
    ind = pd.DataFrame({"client": list(panels),
                        "industry": [cfg.client(c).industry for c in panels]})
    if publish_names:
        ind["group"] = ind["industry"].fillna("unknown")
    else:
        m = merge_groups(ind, group="industry", min_clients=min_clients)
        ind["group"] = ind["industry"].fillna("unknown").map(dict(zip(m["group"], m["merged"], strict=True)))
    # each client's counts once (numpy on its panel's columns), then summed per group:
    # a DataFrame filtered per client and per group was most of this table's second at
    # 300 clients
    parts = {c: _client_counts(panels[c], roles.outcomes) for c in panels}

    def summarise(label, clients):
        units = respondents = unit_periods = 0
        periods, outs = set(), {o: 0 for o in roles.outcomes}
        for c in clients:
            part = parts[c]
            units += part["units"]
            respondents += part["respondents"]
            unit_periods += part["unit_periods"]
            periods |= part["periods"]
            for o in part["outcomes"]:
                outs[o] += 1
        return {"industry": label, "organisations": len(clients), "units": units,
                "respondents": respondents, "unit_periods": unit_periods,
                "periods": len(periods),
                "outcomes": "; ".join(f"{roles.label(o)} ({k})" for o, k in outs.items() if k)}

    rows = [summarise(g, sub["client"].tolist()) for g, sub in ind.groupby("group", sort=True)]
    rows.append(summarise("All organisations", ind["client"].tolist()))
    return pd.DataFrame(rows)


def _client_counts(p, outcomes) -> dict:
    """One client's part of Table 1: its reported units, respondents, unit-periods and
    periods (unit-periods not suppressed), and the outcomes it has any value of."""
    shown = ~p["suppressed"].astype(bool).to_numpy()
    return {"units": p["unit_id"][shown].nunique(),
            "respondents": int(p["n_respondents"][shown].sum()),
            "unit_periods": int(shown.sum()),
            "periods": set(p["period"][shown].astype(str)),
            "outcomes": [o for o in outcomes if o in p.columns and p[o].notna().any()]}


# --------------------------------------------------------------------------- inclusion
def inclusion_account(panels, *, roles, x=None, y=None, names=None, min_units=4) -> pd.DataFrame:
    """Which clients, units and unit-periods entered the synthesis, and why not.

    Parameters
    ----------
    panels : dict
        client id -> unit panel.
    roles : exresearch.report.Roles
    x, y : str, optional
        The EX measure and outcome of the headline analysis (default ``roles.ex`` and
        ``roles.primary_cx``).
    names : dict, optional
        client id -> shown name.
    min_units : int, default 4
        Fewest units for a client's correlation (Fisher's z needs n > 3).

    Returns
    -------
    pandas.DataFrame
        One row per client and level (``"units"``, ``"unit-periods"``) plus one
        study-level ``"clients"`` row: ``client, level, available, suppressed,
        excluded, included, reason``. Unit-periods: *suppressed* below the minimum
        group size or without survey answers; *excluded* reported but without a value
        of ``y``. Units: *suppressed* when every period is; *excluded* when no reported
        period has both ``x`` and ``y``. A client is *excluded* with fewer than
        ``min_units`` included units.
    """
    x = x or roles.ex
    y = y or roles.primary_cx
    names = names or {c: c for c in panels}
    rows = []
    n_excluded_clients, reasons = 0, []
    # numpy on each panel's columns, not pandas Series operations and a groupby per
    # client: those were most of this table's CPU at 300 clients
    for c, p in panels.items():
        sup = p["suppressed"].astype(bool).to_numpy()
        has_x = p[x].notna().to_numpy() if x in p.columns else np.zeros(len(p), dtype=bool)
        has_y = p[y].notna().to_numpy() if y in p.columns else np.zeros(len(p), dtype=bool)
        no_survey = sup & (p["n_respondents"].to_numpy() == 0)
        excl = ~sup & ~(has_x & has_y)
        inc = ~sup & has_x & has_y
        why = []
        if no_survey.any():
            why.append(f"{int(no_survey.sum())} without survey answers")
        if (sup & ~no_survey).any():
            why.append(f"{int((sup & ~no_survey).sum())} below the minimum group size")
        if (~sup & ~has_y).any():
            why.append(f"{int((~sup & ~has_y).sum())} without {roles.label(y)}")
        if (~sup & has_y & ~has_x).any():
            why.append(f"{int((~sup & has_y & ~has_x).sum())} without a {roles.label(x)} score")
        rows.append({"client": names.get(c, c), "level": "unit-periods", "available": len(p),
                     "suppressed": int(sup.sum()), "excluded": int(excl.sum()),
                     "included": int(inc.sum()), "reason": "; ".join(why)})
        # per unit (as groupby("unit"): missing unit ids left out): every period
        # suppressed, any period included
        code = pd.factorize(p["unit_id"])[0]
        code, sup_u, inc_u = code[code >= 0], sup[code >= 0], inc[code >= 0]
        n_units = int(code.max()) + 1 if len(code) else 0
        all_sup = np.bincount(code, weights=~sup_u, minlength=n_units) == 0
        any_inc = np.bincount(code, weights=inc_u, minlength=n_units) > 0
        n_inc = int(any_inc.sum())
        rows.append({"client": names.get(c, c), "level": "units", "available": n_units,
                     "suppressed": int(all_sup.sum()),
                     "excluded": int((~all_sup & ~any_inc).sum()), "included": n_inc,
                     "reason": ("every period suppressed or without both measures"
                                if (~any_inc).any() else "")})
        if n_inc < min_units:
            n_excluded_clients += 1
            reasons.append(f"{names.get(c, c)}: {n_inc} units with both measures "
                           f"(at least {min_units} needed)")
    rows.insert(0, {"client": "All", "level": "clients", "available": len(panels),
                    "suppressed": 0, "excluded": n_excluded_clients,
                    "included": len(panels) - n_excluded_clients, "reason": "; ".join(reasons)})
    return pd.DataFrame(rows, columns=["client", "level", "available", "suppressed",
                                       "excluded", "included", "reason"])


# --------------------------------------------------------------------------- composite
def add_composite(means, *, outcomes, higher_is_better, by="client_id", name=COMPOSITE,
                  min_share=0.5) -> pd.DataFrame:
    """Add the composite business performance outcome: mean of standardised outcomes.

    Parameters
    ----------
    means : pandas.DataFrame
        Unit means of several clients (:func:`exresearch.report.all_unit_means`).
    outcomes : list of str
        Outcomes combined.
    higher_is_better : dict
        outcome -> bool; an outcome where lower is better enters with its sign flipped.
    by : str, default "client_id"
        Standardise within each value of this column (each client).
    name : str, default "composite"
    min_share : float, default 0.5
        A unit needs at least this share of the outcomes to get a composite.

    Returns
    -------
    pandas.DataFrame
        ``means`` with the column ``name`` added (higher is better).

    Notes
    -----
    Within each client every outcome is standardised over units,
    :math:`z_{ij} = s_j (y_{ij} - \\bar y_j)/SD_j` with :math:`s_j = \\pm 1` by direction,
    and the composite is the unit's mean of its available :math:`z_{ij}` (Harter et al.
    2002: the composite of the outcomes, each standardised, with its direction). The
    correlation with a composite is larger than the average of the correlations with
    its parts when they are positively related.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"client_id": ["a"] * 3, "nps": [10.0, 20.0, 30.0],
    ...                   "turnover": [30.0, 20.0, 10.0]})
    >>> add_composite(m, outcomes=["nps", "turnover"],
    ...               higher_is_better={"turnover": False})["composite"].tolist()
    [-1.0, 0.0, 1.0]
    """
    _check_columns(means, by=by, outcomes=list(outcomes))
    out = means.copy()
    z = pd.DataFrame(index=out.index)
    for o in outcomes:
        g = out.groupby(by)[o]
        sd = g.transform("std")
        zo = (out[o] - g.transform("mean")) / sd.where(sd > 0)
        z[o] = zo if higher_is_better.get(o, True) else -zo
    enough = z.notna().sum(axis=1) >= max(1, math.ceil(min_share * len(outcomes)))
    out[name] = z.mean(axis=1).where(enough)
    return out


# --------------------------------------------------------------------------- reliability
def reliabilities(study, *, panels, roles, names=None, outcomes=None,
                  composite=COMPOSITE) -> pd.DataFrame:
    """Per client, the artefacts of the psychometric correction.

    Parameters
    ----------
    study : exresearch.study.Study
    panels : dict
        client id -> unit panel.
    roles : exresearch.report.Roles
    names : dict, optional
        client id -> shown name.
    outcomes : list of str, optional
        Default ``roles.outcomes``.
    composite : str or None, default "composite"
        Also give the reliability of the composite of ``outcomes``
        (:func:`add_composite`) under this name; None to skip.

    Returns
    -------
    pandas.DataFrame
        One row per client x measure: ``client, measure, side`` ("ex"/"outcome"),
        ``reliability`` (EX: ICC(2) of the unit mean over all reported periods;
        outcome: ``reliability`` from ``study.yml`` if given, else the test-retest
        correlation across adjacent periods stepped up to the unit mean over periods,
        :func:`exresearch.psychometric.retest_reliability`; composite: Mosier's
        reliability of a sum of standardised parts, :math:`1 - \\sum_j (1 - r_{jj}) /
        \\sum_{jl} R_{jl}` with the parts' correlation matrix R over units),
        ``source``, ``ux`` (SD of
        the client's unit means / ``reference_sd`` of ``study.yml``, capped at 1; NaN
        without a reference) and ``sd`` (SD of the client's unit means).
    """
    from .aggregate import icc
    from .psychometric import retest_reliability
    from .report import reported_survey, unit_means
    from .scoring import score_scales

    cfg = study.config
    names = names or {c: c for c in panels}
    outcomes = list(outcomes if outcomes is not None else roles.outcomes)
    ref_sd = dict(getattr(cfg, "reference_sd", None) or {})
    rows = []
    likert = [s for s in roles.ex_measures if s in cfg.scales or s == roles.ex]
    for c, p in panels.items():
        means = unit_means(p, roles)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            survey = reported_survey(study, c, p)
            scored = score_scales(survey, scales={k: cfg.scales[k] for k in cfg.scales},
                                  points=cfg.points)
            if roles.drivers:
                scored[roles.ex] = scored[roles.drivers].mean(axis=1, skipna=False)
            for s in likert:
                if s not in scored.columns:
                    continue
                _, i2 = icc(scored.dropna(subset=[s]), unit="unit_id", value=s)
                sd = float(means[s].std()) if s in means.columns else np.nan
                ux = min(1.0, sd / ref_sd[s]) if s in ref_sd and ref_sd[s] else np.nan
                rows.append({"client": names.get(c, c), "measure": s, "side": "ex",
                             "reliability": i2, "source": "ICC(2), all periods",
                             "ux": ux, "sd": sd})
            for o in outcomes:
                spec = cfg.outcomes.get(o) if hasattr(cfg.outcomes, "get") else None
                given = getattr(spec, "reliability", None) if spec is not None else None
                sd = float(means[o].std()) if o in means.columns else np.nan
                if given is not None:
                    rel, src = float(given), "study.yml"
                elif o in p.columns:
                    rt = retest_reliability(p, y=o, periods=list(cfg.periods))
                    rel, src = rt["ryy"], f"test-retest, {int(rt['pairs'])} period pair(s)"
                else:
                    rel, src = np.nan, "not available"
                ux = min(1.0, sd / ref_sd[o]) if o in ref_sd and ref_sd[o] else np.nan
                rows.append({"client": names.get(c, c), "measure": o, "side": "outcome",
                             "reliability": rel, "source": src, "ux": ux, "sd": sd})
            if composite is not None and len(outcomes) >= 2:
                parts = [o for o in outcomes if o in means.columns]
                signed = pd.DataFrame({o: means[o] if roles.higher_is_better.get(o, True)
                                       else -means[o] for o in parts})
                R = signed.corr().to_numpy()
                rjj = np.array([r["reliability"] for r in rows[-len(outcomes):]
                                if r["measure"] in parts], dtype=float)
                rel = (1.0 - np.sum(1.0 - rjj) / np.nansum(R)
                       if len(rjj) == len(parts) and np.isfinite(rjj).all() else np.nan)
                rows.append({"client": names.get(c, c), "measure": composite,
                             "side": "outcome", "reliability": rel if rel > 0 else np.nan,
                             "source": "Mosier composite of the outcomes' reliabilities",
                             "ux": np.nan, "sd": np.nan})
    return pd.DataFrame(rows, columns=["client", "measure", "side", "reliability", "source",
                                       "ux", "sd"])


def icc2_table(study, *, panels, roles, names=None) -> pd.DataFrame:
    """ICC(2) of the EX index under both of its definitions, per client.

    Parameters
    ----------
    study : exresearch.study.Study
    panels : dict
        client id -> unit panel.
    roles : exresearch.report.Roles
    names : dict, optional

    Returns
    -------
    pandas.DataFrame
        One row per client: ``client``, ``icc1``, ``icc2_period_min``,
        ``icc2_period_max`` (ICC(2) of one period's unit mean, over the periods:
        what a client report shows per period), ``respondents_per_unit_period``,
        ``icc2_all_periods`` (ICC(2) of the unit mean over all reported periods,
        respondents of every period pooled: the reliability of the unit means the
        synthesis correlates), ``respondents_per_unit``.

    Notes
    -----
    Both are :math:`(MSB - MSW)/MSB` of a one-way ANOVA (Bliese 2000), equivalently the
    Spearman-Brown step-up :math:`k\\,ICC(1)/(1 + (k-1) ICC(1))` of ICC(1) to the mean
    group size ``k``: a unit mean over four periods rests on about four times as many
    answers as one period's, so its ICC(2) is higher. Neither is wrong; each belongs
    to the mean it describes.
    """
    from .aggregate import icc
    from .report import reported_survey
    from .scoring import score_scales

    cfg = study.config
    names = names or {c: c for c in panels}
    rows = []
    for c, p in panels.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            survey = reported_survey(study, c, p)
            scored = score_scales(survey, scales={k: cfg.scales[k] for k in roles.drivers},
                                  points=cfg.points)
            scored["_ex"] = scored[roles.drivers].mean(axis=1, skipna=False)
            scored = scored.dropna(subset=["_ex"])
            i1, i2 = icc(scored, unit="unit_id", value="_ex")
            per = []
            for _, g in scored.groupby("period"):
                if g["unit_id"].nunique() >= 2:
                    per.append((icc(g, unit="unit_id", value="_ex")[1],
                                len(g) / g["unit_id"].nunique()))
        per_vals = [v for v, _ in per if np.isfinite(v)]
        rows.append({
            "client": names.get(c, c), "icc1": i1,
            "icc2_period_min": min(per_vals) if per_vals else np.nan,
            "icc2_period_max": max(per_vals) if per_vals else np.nan,
            "respondents_per_unit_period": float(np.mean([k for _, k in per])) if per else np.nan,
            "icc2_all_periods": i2,
            "respondents_per_unit": len(scored) / max(1, scored["unit_id"].nunique()),
        })
    return pd.DataFrame(rows)


def describe_unit_reliability(quality, *, period_label, icc2_all_periods=None,
                              threshold=0.7, label=None) -> str:
    """The client appendix's sentence on unit averages, following the numbers shown.

    Parameters
    ----------
    quality : pandas.DataFrame
        One row per scale with ``scale`` and ``icc2`` (ICC(2) of one period's unit mean,
        as the client report's reliability table shows it).
    period_label : str
        The period of that table.
    icc2_all_periods : float, optional
        ICC(2) of the unit mean of the EX index over all periods (:func:`icc2_table`),
        the reliability the synthesis corrects with.
    threshold : float, default 0.7
        The rule of thumb for a reliable unit mean.
    label : callable, optional
        Scale name -> reader's label.

    Returns
    -------
    str
        Which scales meet the rule in one period, which do not, and what that means,
        naming both definitions of ICC(2).

    Examples
    --------
    >>> import pandas as pd
    >>> q = pd.DataFrame({"scale": ["tools", "leader"], "icc2": [0.75, 0.55]})
    >>> print(describe_unit_reliability(q, period_label="2025Q4", icc2_all_periods=0.86)[:90])
    ICC(2) of one period's unit averages (2025Q4) reaches 0.7 for 1 of 2 scales; below it: lea
    """
    label = label or (lambda s: s)
    q = quality.dropna(subset=["icc2"])
    ok = q[q["icc2"] >= threshold]
    low = q[q["icc2"] < threshold]
    text = (f"ICC(2) of one period's unit averages ({period_label}) reaches {threshold:g} for "
            f"{len(ok)} of {len(q)} scales")
    if len(low):
        names = ", ".join(f"{label(s)} ({v:.2f})" for s, v in zip(low["scale"], low["icc2"], strict=True))
        text += (f"; below it: {names}. A single period's unit averages of these scales "
                 "mix real differences between units with noise, so read differences between "
                 "units in one period with care")
    else:
        text += ": a single period's unit averages distinguish units reliably"
    if icc2_all_periods is not None and np.isfinite(icc2_all_periods):
        text += (f". Averaged over all periods, as the cross-client synthesis uses them, the "
                 f"EX index's unit averages have ICC(2) = {icc2_all_periods:.2f}: the same "
                 "formula, with more answers behind each average")
    return text + "."


# --------------------------------------------------------------------------- HS vs REML
def psychometric_table(per_client, *, reliab=None, client="client", method="REML",
                       range_restriction=True, ci_level=0.95, cred_level=0.80,
                       labels=None) -> pd.DataFrame:
    """Bare-bones, psychometric and random-effects meta-analysis of every x x y pair.

    Parameters
    ----------
    per_client : pandas.DataFrame
        Per-client correlations (:func:`exresearch.report.per_client_correlations`):
        ``client, x, y, n, r``.
    reliab : pandas.DataFrame, optional
        :func:`reliabilities` (``client, measure, reliability, ux``); None: no
        corrections (rho = mean r).
    client : str, default "client"
    method : {"REML", "DL", "FE"}
        The random-effects model shown beside Hunter-Schmidt.
    range_restriction : bool, default True
        Correct for direct range restriction on x where a u ratio is available.
    ci_level, cred_level : float
    labels : dict, optional
        Measure -> reader's label, for the ``corrected_for`` text.

    Returns
    -------
    pandas.DataFrame
        One row per (x, y): ``x, y``, the :data:`exresearch.psychometric.PSYCHOMETRIC_FIELDS`
        (``k, n, mean_r, sd_r, pct_var_e, ..., mean_rho, sd_rho, pct_var_artifacts,
        rho_cr_low, rho_cr_high, ...``), ``corrected_for`` (text), then the
        random-effects columns prefixed ``re_`` (``re_estimate, re_ci_low, re_ci_high,
        re_pi_low, re_pi_high, re_tau2, re_i2, re_q_p``). Pairs with fewer than two
        clients are NaN rows with ``k``.
    """
    from .meta import meta_analysis
    from .psychometric import PSYCHOMETRIC_FIELDS, psychometric_meta

    _check_columns(per_client, client=client, x="x", y="y", n="n", r="r")
    labels = labels or {}
    rows = []
    rel = None
    if reliab is not None:
        rel = reliab.set_index([reliab.columns[0] if "client" not in reliab.columns
                                else "client", "measure"])
        # each measure's rows indexed by client, split once: a lookup is then a reindex
        # on one level (a MultiIndex built per lookup was a third of this table's time)
        by_measure = ({m: g.droplevel(1) for m, g in rel.groupby(level=1, sort=False)}
                      if rel.index.is_unique else None)
    for (x, y), g in per_client.groupby(["x", "y"], sort=False):
        d = g.dropna(subset=["r", "n"])
        d = d[d["n"] > 3].copy()
        row = {"x": x, "y": y}
        corrected = []
        if rel is not None and len(d):
            def look(measure, col, d=d):
                if by_measure is not None:  # one vectorised lookup (a loop: minutes at 300)
                    if measure not in by_measure:
                        return np.full(len(d), np.nan)
                    return by_measure[measure][col].reindex(d[client].to_numpy()).to_numpy()
                keys = list(zip(d[client], [measure] * len(d), strict=True))
                return [rel[col].get(k, np.nan) if k in rel.index else np.nan for k in keys]
            d["_rxx"] = look(x, "reliability")
            d["_ryy"] = look(y, "reliability")
            d["_ux"] = look(x, "ux")
        kw = {}
        xl, yl = labels.get(x, x), labels.get(y, y)
        for col, key, label in (("_rxx", "rxx", f"unreliability of {xl}"),
                                ("_ryy", "ryy", f"unreliability of {yl}"),
                                ("_ux", "ux", f"range restriction in {xl}")):
            if key == "ux" and not range_restriction:
                continue
            if col in d.columns and pd.to_numeric(d[col], errors="coerce").between(
                    0, 1, inclusive="right").any():
                d[col] = pd.to_numeric(d[col], errors="coerce").where(
                    lambda s: (s > 0) & (s <= 1))
                kw[key] = col
                corrected.append(label)
        if len(d) >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ps = psychometric_meta(d, rxx=kw.get("rxx"), ryy=kw.get("ryy"),
                                       ux=kw.get("ux"), ci_level=ci_level,
                                       cred_level=cred_level)
                re = meta_analysis(d, method=method)
            row.update(ps.to_dict())
            row.update({f"re_{k}": re[k] for k in ("estimate", "ci_low", "ci_high", "pi_low",
                                                   "pi_high", "tau2", "i2", "q_p")})
        else:
            row.update(dict.fromkeys(PSYCHOMETRIC_FIELDS, np.nan))
            row["k"] = float(len(d))
        row["corrected_for"] = ", ".join(corrected) if corrected else "nothing"
        rows.append(row)
    cols = ["x", "y", *PSYCHOMETRIC_FIELDS, "corrected_for",
            *[f"re_{k}" for k in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high",
                                  "tau2", "i2", "q_p")]]
    return pd.DataFrame(rows).reindex(columns=cols)


def pooling_comparison(row, *, method="REML") -> pd.DataFrame:
    """Bare-bones, corrected and random-effects pooling of one pair, side by side.

    Parameters
    ----------
    row : mapping
        A row of :func:`psychometric_table`.
    method : str
        The random-effects method named in the third row.

    Returns
    -------
    pandas.DataFrame
        Three rows (``analysis``: bare-bones, corrected, random effects) with ``mean,
        ci_low, ci_high``, ``interval`` (its kind), ``int_low, int_high`` (80%
        credibility, 80% credibility, 95% prediction), ``spread`` (SD of true links:
        :math:`s_{res}`, :math:`s_\\rho`, :math:`\\tau` on Fisher's z) and
        ``explained`` (% of the observed variance that is not real: sampling error;
        sampling error and artefacts; :math:`1 - I^2`).

    Examples
    --------
    >>> import pandas as pd
    >>> row = pd.Series({"mean_r": 0.3, "ci_low": 0.2, "ci_high": 0.4, "cr_low": 0.25,
    ...     "cr_high": 0.35, "sd_res": 0.04, "pct_var_e": 60.0, "mean_rho": 0.4,
    ...     "rho_ci_low": 0.3, "rho_ci_high": 0.5, "rho_cr_low": 0.33, "rho_cr_high": 0.47,
    ...     "sd_rho": 0.05, "pct_var_artifacts": 55.0, "corrected_for": "unreliability of EX",
    ...     "re_estimate": 0.31, "re_ci_low": 0.2, "re_ci_high": 0.41, "re_pi_low": 0.1,
    ...     "re_pi_high": 0.5, "re_tau2": 0.01, "re_i2": 0.4})
    >>> pooling_comparison(row)["interval"].tolist()
    ['80% credibility', '80% credibility', '95% prediction']
    """
    return pd.DataFrame([
        {"analysis": "Bare-bones (observed r)", "mean": row["mean_r"], "ci_low": row["ci_low"],
         "ci_high": row["ci_high"], "interval": "80% credibility", "int_low": row["cr_low"],
         "int_high": row["cr_high"], "spread": row["sd_res"], "explained": row["pct_var_e"]},
        {"analysis": f"Corrected (ρ) for {row['corrected_for']}", "mean": row["mean_rho"],
         "ci_low": row["rho_ci_low"], "ci_high": row["rho_ci_high"],
         "interval": "80% credibility", "int_low": row["rho_cr_low"],
         "int_high": row["rho_cr_high"], "spread": row["sd_rho"],
         "explained": row["pct_var_artifacts"]},
        {"analysis": f"Random effects ({method}, Fisher z)", "mean": row["re_estimate"],
         "ci_low": row["re_ci_low"], "ci_high": row["re_ci_high"],
         "interval": "95% prediction", "int_low": row["re_pi_low"],
         "int_high": row["re_pi_high"], "spread": math.sqrt(row["re_tau2"]),
         "explained": 100.0 * (1.0 - row["re_i2"])}])


def describe_hs_vs_reml(row) -> str:
    """One sentence on why the credibility and the prediction interval differ.

    Parameters
    ----------
    row : mapping
        A row of :func:`psychometric_table`.

    Returns
    -------
    str
        With fewer than 30 clients (``row["k"]``) a second sentence says that the
        credibility interval is too narrow at that size, as measured by
        ``validity/psychometric.py``.

    Examples
    --------
    >>> row = {"rho_cr_low": 0.52, "rho_cr_high": 0.55, "re_pi_low": 0.32,
    ...        "re_pi_high": 0.66, "mean_rho": 0.535, "re_estimate": 0.45}
    >>> describe_hs_vs_reml(row)[:60]
    'The 80% credibility interval (0.52 to 0.55) is narrower than'
    """
    cr = f"{row['rho_cr_low']:.2f} to {row['rho_cr_high']:.2f}"
    pi = f"{row['re_pi_low']:.2f} to {row['re_pi_high']:.2f}"
    narrower = (row["rho_cr_high"] - row["rho_cr_low"]) < (row["re_pi_high"] - row["re_pi_low"])
    text = (f"The 80% credibility interval ({cr}) is "
            f"{'narrower than' if narrower else 'as wide as or wider than'} the 95% prediction "
            f"interval ({pi}) because it covers 80% rather than 95% of clients' true links, "
            "leaves out the uncertainty of the mean, and is centred on the link corrected for "
            f"measurement error ({row['mean_rho']:.2f} against {row['re_estimate']:.2f} "
            "observed).")
    k = row.get("k", np.nan) if hasattr(row, "get") else np.nan
    if np.isfinite(k) and k < 30:
        text += (f" With {int(k)} clients it is also too narrow: on simulated studies of 5 to "
                 "20 clients it held 31-54% of the clients' true links rather than 80% (the "
                 "spread of true links is often estimated as zero), so the prediction interval "
                 "is the safer range for a new client.")
    return text


# --------------------------------------------------------------------------- the loop
def within_paths_by_client(panels, *, x, y, periods, names=None, fits=None) -> pd.DataFrame:
    """Every client's within-unit cross-lagged paths (RI-CLPM), stacked, ready to pool.

    Parameters
    ----------
    panels : dict
        client id -> unit panel.
    x, y : str
        EX column and outcome column.
    periods : list of str
        Periods in time order (at least 3 for the model).
    names : dict, optional
        client id -> shown name (the ``client`` column).
    fits : dict, optional
        client id -> the :func:`exresearch.riclpm.riclpm` result of ``x`` and ``y`` on
        that client's panel over ``periods`` (its defaults otherwise), already fitted
        (e.g. for :func:`exresearch.report.cross_lagged_by_client`): taken as it is
        instead of fitting the same model again.

    Returns
    -------
    pandas.DataFrame
        ``client`` then the columns of :func:`exresearch.riclpm.riclpm` (``path, source,
        target, kind, estimate, se, ...``; paths in within-unit SD per within-unit SD).
        Clients whose model is undefined keep NaN rows with the reason in ``note``.
    """
    from .riclpm import riclpm

    names = names or {c: c for c in panels}
    fits = fits or {}
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c, p in panels.items():
            res = (fits[c].copy() if c in fits  # (a copy: a column is inserted)
                   else riclpm(p, x=x, y=y, periods=list(periods)))
            res.insert(0, "client", names.get(c, c))
            res.attrs = {}  # the per-client covariance of the two paths is not stacked
            rows.append(res)
    return pd.concat(rows, ignore_index=True)


def pool_paths(by_client, *, estimate="estimate", se="se", method="REML",
               keys=("path", "source", "target", "kind")) -> pd.DataFrame:
    """Pool each path over clients by random-effects meta-analysis (not by vote count).

    Parameters
    ----------
    by_client : pandas.DataFrame
        Per-client path estimates with standard errors, one row per client x path
        (e.g. :func:`exresearch.report.cross_lagged_by_client`, or the within-unit paths
        of the random-intercept cross-lagged model when available).
    estimate, se : str
        Columns.
    method : {"REML", "DL", "FE"}
    keys : sequence of str
        Columns identifying a path (those present are used).

    Returns
    -------
    pandas.DataFrame
        One row per path: the ``keys``, then ``k, estimate, se, ci_low, ci_high, z,
        p_val, tau2, tau, i2, q, q_p, pi_low, pi_high`` (:func:`exresearch.meta.pool_estimates`).

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"path": ["x->y"] * 3, "estimate": [0.2, 0.1, 0.15],
    ...                   "se": [0.05, 0.06, 0.05]})
    >>> round(float(pool_paths(d)["estimate"].iloc[0]), 3)
    0.156
    """
    from .meta import pool_estimates

    keys = [k for k in keys if k in by_client.columns]
    if not keys:
        raise ParameterError(f"`keys` must name columns of `by_client`, but none of "
                             f"{list(keys)!r} is among {list(by_client.columns)}")
    rows = []
    for key, g in by_client.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        s = pool_estimates(g, estimate=estimate, se=se, method=method)
        rows.append({**dict(zip(keys, key, strict=True)), **s.to_dict(),
                     "tau": math.sqrt(s["tau2"]) if np.isfinite(s["tau2"]) else np.nan})
    out = pd.DataFrame(rows)
    order = [*keys, "k", "estimate", "se", "ci_low", "ci_high", "z", "p_val", "tau2", "tau",
             "i2", "q", "q_p", "pi_low", "pi_high"]
    out = out[order]
    out["k"] = out["k"].astype(np.int64)
    return out


# --------------------------------------------------------------------------- utility
def study_utility(means, *, x, outcomes, client="client_id", method="REML",
                  higher_is_better=None, min_units=8) -> pd.DataFrame:
    """Utility at study level, pooled over clients, in each outcome's own units.

    Parameters
    ----------
    means : pandas.DataFrame
        Unit means of every client (one row per unit).
    x : str
        EX measure.
    outcomes : list of str
    client : str, default "client_id"
    method : {"REML", "DL", "FE"}
    higher_is_better : dict, optional
        outcome -> bool, for "above median" meaning better.
    min_units : int, default 8
        Fewest units with both measures for a client to contribute.

    Returns
    -------
    pandas.DataFrame
        One row per outcome and measure: ``y, measure`` (``"bcg_per_sd"``: change in
        the outcome per SD of EX, :math:`r_i SD_{y,i}`; ``"quartile_diff"``: mean of
        the top minus the bottom EX quartile of units; ``"odds_above_median"``: odds
        ratio that a top-quartile unit performs better than the client's median,
        against a bottom-quartile unit), ``k`` (clients), ``estimate, ci_low,
        ci_high, pi_low, pi_high, i2`` (pooled by ``method``; the odds ratio pooled on
        the log scale and back-transformed).

    Notes
    -----
    Brogden-Cronbach-Gleser utility: a unit one SD higher on EX is expected to be
    :math:`\\rho\\,SD_y` higher on the outcome; per client :math:`r_i SD_{y,i}` with SE
    :math:`SD_{y,i}(1 - r_i^2)/\\sqrt{n_i - 1}`. Quartile differences have the SE of a
    difference of two means. The odds ratio uses the 2 x 2 table of quartile x above
    median with 0.5 added to every cell (Haldane-Anscombe). Observed (uncorrected)
    correlations: the utility of the EX measure as it is measured.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frames = []
    >>> for c in "abc":
    ...     e = rng.normal(size=40)
    ...     frames.append(pd.DataFrame({"client_id": c, "ex": e,
    ...                                 "nps": 10 * e + rng.normal(0, 10, 40)}))
    >>> res = study_utility(pd.concat(frames), x="ex", outcomes=["nps"], method="FE")
    >>> res["measure"].tolist()
    ['bcg_per_sd', 'quartile_diff', 'odds_above_median']
    """
    from .meta import pool_estimates

    _check_columns(means, x=x, client=client, outcomes=list(outcomes))
    hib = higher_is_better or {}
    rows = []
    # each client's rows once, as numpy arrays: the per-client terms below are plain numpy
    # (pandas per group cost ~5 ms a client and outcome, seconds at 300 clients)
    groups = list(means.groupby(client, sort=False).indices.values())
    xs_all = pd.to_numeric(means[x], errors="coerce").to_numpy(float)
    for y in outcomes:
        per = {"bcg_per_sd": [], "quartile_diff": [], "odds_above_median": []}
        ys_all = pd.to_numeric(means[y], errors="coerce").to_numpy(float)
        sign = 1.0 if hib.get(y, True) else -1.0  # "better" respects the direction
        for idx in groups:
            xs, ys = xs_all[idx], ys_all[idx]
            ok = ~(np.isnan(xs) | np.isnan(ys))
            xs, ys = xs[ok], ys[ok]
            n = len(xs)
            if n < min_units:
                continue
            sdx, sdy = float(np.std(xs, ddof=1)), float(np.std(ys, ddof=1))
            if sdx == 0 or sdy == 0:
                continue
            r = float(np.corrcoef(xs, ys)[0, 1])
            per["bcg_per_sd"].append((r * sdy, sdy * (1 - r**2) / math.sqrt(n - 1)))
            q1, q3 = np.quantile(xs, [0.25, 0.75])  # linear, as pandas' quantile
            top, bot = ys[xs >= q3], ys[xs <= q1]
            if len(top) >= 2 and len(bot) >= 2:
                per["quartile_diff"].append((
                    float(top.mean() - bot.mean()),
                    math.sqrt(top.var(ddof=1) / len(top) + bot.var(ddof=1) / len(bot))))
                med = np.median(ys)
                top_better = (sign * (top - med)) > 0
                bot_better = (sign * (bot - med)) > 0
                a, b = top_better.sum() + 0.5, (~top_better).sum() + 0.5
                c, d = bot_better.sum() + 0.5, (~bot_better).sum() + 0.5
                per["odds_above_median"].append((math.log(a * d / (b * c)),
                                                 math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)))
        for measure, vals in per.items():
            d = pd.DataFrame(vals, columns=["estimate", "se"])
            s = pool_estimates(d, method=method)
            res = {k: s[k] for k in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")}
            if measure == "odds_above_median":
                res = {k: math.exp(v) if np.isfinite(v) else np.nan for k, v in res.items()}
            rows.append({"y": y, "measure": measure, "k": int(s["k"]), **res, "i2": s["i2"]})
    return pd.DataFrame(rows, columns=["y", "measure", "k", "estimate", "ci_low", "ci_high",
                                       "pi_low", "pi_high", "i2"])


# --------------------------------------------------------------------------- power
def minimum_detectable_r(*, n_clients, n_units, tau=0.0, power=0.80, alpha=0.05,
                         respondents_per_unit=None, icc=0.15) -> float:
    """Smallest true unit-level correlation the study detects with the given power.

    Parameters
    ----------
    n_clients, n_units : int
        Clients pooled and (mean) units per client.
    tau : float, default 0.0
        Between-client SD of the true Fisher z (e.g. the study's own estimate).
    power : float, default 0.80
    alpha : float, default 0.05
    respondents_per_unit, icc
        As :func:`exresearch.power.power_analytic` (attenuation by ICC(2)).

    Returns
    -------
    float
        The r at which :func:`exresearch.power.power_analytic` equals ``power``
        (root of a monotone function, by Brent's method); NaN if even r = 0.99 is
        not detected with that power.

    Examples
    --------
    >>> round(minimum_detectable_r(n_clients=10, n_units=30), 3)
    0.169
    """
    from .power import power_analytic

    if not 0 < power < 1:
        raise ParameterError(f"`power` must lie in (0, 1), but {power!r} was passed")

    def f(r):
        return power_analytic(r=r, n_clients=n_clients, n_units=n_units, tau=tau,
                              alpha=alpha, respondents_per_unit=respondents_per_unit,
                              icc=icc) - power

    if f(0.99) < 0:
        return np.nan
    return float(optimize.brentq(f, 1e-6, 0.99, xtol=1e-10))
