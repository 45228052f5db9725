"""The executive summary: a list of small finding functions, each writing one sentence
from one table of the client report."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..loop import CALIBRATED_METHODS
from .narrative import _strength, evidence_verb, fmt_money, fmt_signed

#: Columns of :func:`executive_summary`.
FINDING_COLUMNS = ("finding", "topic", "text", "table", "key", "column", "value")


def executive_summary(*, correlations, loop, priorities=None, investment=None,
                      benchmark=None, profile=None, roles, n_units, tables=None,
                      max_findings=5) -> pd.DataFrame:
    """The three to five findings that matter for a client, written from its results.

    Each finding is one sentence (or two) built from the numbers of one of the report's
    tables; ``table``, ``key``, ``column`` and ``value`` say which number, so a reader (or
    a test) can check the sentence against the CSV file.

    Parameters
    ----------
    correlations : pandas.DataFrame
        Unit-level correlations (:func:`exresearch.linkage.correlation_table`, one
        method), with rows ``x == roles.ex``.
    loop : pandas.DataFrame
        :func:`exresearch.direction.loop_direction` of ``roles.ex`` and ``roles.primary_cx``.
    priorities : pandas.DataFrame, optional
        :func:`exresearch.drivers.driver_priorities` for ``roles.primary_cx``.
    investment : pandas.DataFrame, optional
        :func:`exresearch.value.value_chain` of the same drivers, data and seed (or the
        older :func:`exresearch.economics.investment_table`, best first).
    benchmark : pandas.DataFrame, optional
        :func:`benchmark_table`.
    profile : pandas.DataFrame, optional
        :func:`ex_profile`; its highest and lowest rated scale make a finding when fewer
        than ``max_findings`` others could be written.
    roles : Roles
    n_units : int
        Units with a reported EX score (for the first sentence).
    tables : dict, optional
        CSV stems of the tables, keys ``correlations, loop, priorities, investment,
        benchmark, profile`` (defaults: ``linkage_correlations, loop, driver_priorities,
        investment, benchmark, ex_profile``).
    max_findings : int, default 5
        At most this many findings, in the order linkage, direction, drivers, value,
        benchmark, profile.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FINDING_COLUMNS`: ``finding`` (1..), ``topic``, ``text`` (plain
        text; escape with :func:`md_escape` for Markdown), ``table`` (CSV stem), ``key``
        (``"col=value;..."`` selecting the row), ``column`` and ``value`` (the headline
        number of the finding, full precision).

    Notes
    -----
    Wording follows the evidence: cross-sectional links are "associated with"; "drives"
    is used only when the cross-lagged analysis supports EX -> CX
    (:data:`DIRECTION_LABELS`); an effect whose 95% CI includes zero is called
    uncertain; money is stated as "worth ... if the link is causal" unless the direction
    is supported.
    """
    t = dict(_TABLES)
    t.update(tables or {})
    label = str(loop["label"].iloc[0]) if loop is not None and len(loop) else "no evidence"
    ctx = _Context(roles=roles, ex=roles.ex, cx=roles.primary_cx, exl=roles.label(roles.ex),
                   cxl=roles.label(roles.primary_cx), label=label,
                   verb=evidence_verb(loop if loop is not None and len(loop) else label),
                   calibrated=bool(loop is not None and len(loop) and "method" in loop.columns
                                   and loop["method"].iloc[0] in CALIBRATED_METHODS))
    given = {"correlations": correlations, "loop": loop, "priorities": priorities,
             "investment": investment, "benchmark": benchmark, "profile": profile}
    rows = []
    for topic, source, write in FINDINGS:
        if topic == "profile" and len(rows) >= max_findings:
            continue  # the profile only fills a free place
        data = given[source]
        found = write(data, ctx) if data is not None and len(data) else None
        if found is not None:
            text, key, column, value = found
            rows.append({"finding": len(rows) + 1, "topic": topic, "text": text,
                         "table": t[source], "key": key, "column": column,
                         "value": float(value)})
    out = pd.DataFrame(rows[:max_findings], columns=list(FINDING_COLUMNS))
    out["finding"] = out["finding"].astype(np.int64)
    return out


@dataclass
class _Context:
    """What every finding needs besides its table: roles, labels and the lagged verdict."""

    roles: object
    ex: str
    cx: str
    exl: str
    cxl: str
    label: str
    verb: str
    calibrated: bool = False  # the verdict comes from the within-unit model (RI-CLPM)


def finding_linkage(correlations, ctx):
    """The link between EX and the primary CX outcome (``linkage_correlations``)."""
    c = correlations[(correlations["x"] == ctx.ex) & (correlations["y"] == ctx.cx)]
    if not (len(c) and np.isfinite(c["r"].iloc[0])):
        return None
    row = c.iloc[0]
    r, lo, hi = float(row["r"]), float(row["ci_low"]), float(row["ci_high"])
    good = r > 0 if ctx.roles.higher_is_better.get(ctx.cx, True) else r < 0
    direction = "better" if good else "worse"
    if lo > 0 or hi < 0:
        text = (f"Units with a better employee experience have {direction} {ctx.cxl}: "
                f"across {int(row['n'])} units, the {ctx.exl} {ctx.verb} {ctx.cxl} "
                f"(r = {r:.2f}, 95% CI {lo:.2f} to {hi:.2f}), a {_strength(r)} link.")
    else:
        text = (f"The link between the {ctx.exl} and {ctx.cxl} is uncertain in this client: "
                f"r = {r:.2f} across {int(row['n'])} units, but the 95% CI "
                f"({lo:.2f} to {hi:.2f}) includes no link at all.")
    return text, f"x={ctx.ex};y={ctx.cx}", "r", r


#: What each loop label lets the direction finding say (``{cxl}`` and ``{paths}`` filled in).
_DIRECTION_TEXT = {
    "reciprocal loop — virtuous cycle":
        "Employee and customer experience reinforce each other over time ({paths}), "
        "and with the EX trend up, this is a virtuous cycle.",
    "reciprocal loop — doom loop":
        "Employee and customer experience reinforce each other over time ({paths}), "
        "and with the EX trend down, this is a doom loop: decline feeds decline.",
    "reciprocal loop":
        "Employee and customer experience reinforce each other over time ({paths}), "
        "a reinforcing loop.",
    "EX leads":
        "Changes in employee experience come before changes in {cxl}{not_reverse} "
        "({paths}): improving EX is likely to pay off in the following period.{open}",
    "CX leads":
        "Changes in {cxl} come before changes in employee experience{not_reverse} "
        "({paths}): customer results shape how employees feel, so read the EX links as "
        "associations.{open}",
}
_NO_DIRECTION = ("The data do not show which comes first ({paths}), so the links in this "
                 "report are associations, not proof that EX causes customer results.")
_NOT_ESTIMABLE = ("Which comes first, employee or customer experience, cannot be estimated "
                  "from these data (too few units followed over consecutive periods), so read "
                  "the links in this report as associations.")


def finding_direction(loop, ctx):
    """Which comes first over time (``loop``)."""
    lp = loop.iloc[0]
    b1, p1, b2, p2 = (float(lp["x_to_y"]), float(lp["x_to_y_p"]), float(lp["y_to_x"]),
                      float(lp["y_to_x_p"]))
    if not (math.isfinite(b1) and math.isfinite(b2)):
        return _NOT_ESTIMABLE, f"x={ctx.ex};y={ctx.cx}", "x_to_y", b1
    paths = (f"{ctx.exl} → next period's {ctx.cxl}: {fmt_signed(b1)} SD (p = {p1:.3f}); "
             f"{ctx.cxl} → next period's {ctx.exl}: {fmt_signed(b2)} SD (p = {p2:.3f})")
    template = _DIRECTION_TEXT.get(ctx.label, _NO_DIRECTION)
    if ctx.label.startswith("reciprocal loop") and ctx.label not in _DIRECTION_TEXT:
        template = _DIRECTION_TEXT["reciprocal loop"]
    # "not the other way round" only when the difference of the paths was tested
    # (direction.classify_loop: reverse_ruled_out); otherwise say the reverse is open
    ruled_out = bool(lp.get("reverse_ruled_out", False))
    power = float(lp.get("reverse_power", np.nan))
    other = (f"{ctx.cxl} → {ctx.exl}" if ctx.label == "EX leads" else f"{ctx.exl} → {ctx.cxl}")
    open_ = ("" if ruled_out else
             f" The reverse path ({other}) was not detected, which does not show it is absent"
             + (f": these data had {100 * power:.0f}% power to detect one as large."
                if math.isfinite(power) else "."))
    text = template.format(paths=paths, cxl=ctx.cxl,
                           not_reverse=", not the other way round" if ruled_out else "",
                           open=open_)
    if ctx.verb != "drives" and ctx.label != "no evidence" and not ctx.calibrated:
        text += (" The model behind this verdict does not separate stable differences "
                 "between units from change within them, so read it as an association.")
    elif ctx.label != "no evidence":
        # validity/calibrate_riclpm.md: where a unit's EX and CX share shocks within a
        # period, the within-unit model names a direction for 13-21% of clients without one
        text += (" Timing within units is evidence of direction, not proof: a shock that "
                 "hits employees and customers in the same period, measured by surveys, "
                 "can produce the same pattern.")
    return text, f"x={ctx.ex};y={ctx.cx}", "x_to_y", b1


def finding_drivers(priorities, ctx):
    """Where to act first (``driver_priorities``).

    With the one driver model (an ``act_first`` column), "act first" is said only of a
    credibly first driver, otherwise the drivers that cannot be separated are named
    (:func:`exresearch.value.describe_priorities`).
    """
    if "act_first" in priorities.columns:
        from ..value import describe_priorities

        found = describe_priorities(priorities, cx_label=ctx.cxl, label=ctx.roles.label)
        if found is None:
            return None
        return found["text"], f"driver={found['driver']}", found["column"], found["value"]
    if not np.isfinite(priorities["impact"]).any():
        return None
    top = priorities.sort_values("rank").iloc[0]
    d = ctx.roles.label(top["driver"])
    imp, lo, hi = float(top["impact"]), float(top["impact_low"]), float(top["impact_high"])
    if bool(top["priority"]):
        text = (f"Act first on {d}: it accounts for {imp:.0f}% of the explained differences "
                f"in {ctx.cxl} between units (95% CI {lo:.0f}% to {hi:.0f}%) and, at "
                f"{float(top['performance']):.2f}, scores in the lower half of the drivers.")
    else:
        text = (f"No driver is both important for {ctx.cxl} and weak: the most important, "
                f"{d} ({imp:.0f}% of the explained differences, 95% CI {lo:.0f}% to "
                f"{hi:.0f}%), already scores {float(top['performance']):.2f}; keep it there.")
    return text, f"driver={top['driver']}", "impact", imp


def finding_value(investment, ctx):
    """What closing the gap to the top quarter is worth (``investment``).

    A :func:`exresearch.value.value_chain` table (a ``p_first`` column) values the
    act-first driver of the same model, or all drivers together when none is named
    (:func:`exresearch.value.describe_value`), in the study's currency and horizon.
    """
    if "p_first" in investment.columns:
        from ..value import describe_value

        business = ctx.roles.money or (ctx.roles.business[0] if ctx.roles.business else "")
        found = describe_value(investment, cx_label=ctx.cxl,
                               business_label=ctx.roles.label(business) if business else
                               "the business outcome", label=ctx.roles.label,
                               causal=ctx.verb == "drives")
        if found is None:
            return None
        return found["text"], f"driver={found['driver']}", found["column"], found["value"]
    best = investment.iloc[0]
    d = ctx.roles.label(best["driver"])
    has_money = "money" in investment.columns and np.isfinite(best.get("money", np.nan))
    col = "money" if has_money else "delta_business"
    val = float(best[col])
    if not np.isfinite(val):
        return None
    lo, hi = float(best[f"{col}_ci_low"]), float(best[f"{col}_ci_high"])
    if has_money:
        amount = (f"about {fmt_money(val)} a year in revenue (95% CI {fmt_money(lo)} "
                  f"to {fmt_money(hi)})")
    else:
        amount = f"{fmt_signed(val)} on the business outcome (95% CI {lo:.2f} to {hi:.2f})"
    cond = ("" if ctx.verb == "drives" else
            " if the link is causal (the lagged analysis does not show that yet)")
    text = (f"Bringing every unit below the top quarter on {d} up to the top-quarter "
            f"level (+{float(best['improvement']):.2f} points on average) would be "
            f"worth {fmt_signed(float(best['delta_cx']), 1)} {ctx.cxl} points and "
            f"{amount}{cond}.")
    if lo <= 0 <= hi:
        text += " The range includes no gain, so treat it as a rough estimate."
    return text, f"driver={best['driver']}", col, val


def finding_benchmark(benchmark, ctx):
    """Where the client stands among the others (``benchmark``)."""
    b = benchmark[(benchmark["measure"] == ctx.ex) & ~benchmark["withheld"].astype(bool)]
    if not (len(b) and np.isfinite(b["percentile"].iloc[0])):
        return None
    pr = float(b["percentile"].iloc[0])
    m = int(b["n_contributors"].iloc[0])
    # with a handful of peers a percentile ("100th") overstates precision: count them
    k = int(round(pr / 100 * m))
    if pr >= 99.5:
        where = f"higher than all {m} of them"
    elif pr <= 0.5:
        where = f"lower than all {m} of them"
    else:
        pos = ("above most" if pr >= 60 else "below most" if pr <= 40 else "in the middle")
        where = f"higher than {k} of them ({pos})"
    text = (f"Compared with {m} other organisations in the study, your {ctx.exl} is "
            f"{where}.")
    return text, f"measure={ctx.ex}", "percentile", pr


def finding_profile(profile, ctx):
    """The highest and lowest rated scale (``ex_profile``), when there is room."""
    roles = ctx.roles
    pr = profile[profile["scale"].isin(roles.likert)].dropna(subset=["mean"])
    if len(pr) < 2:
        return None
    hi, lo = pr.loc[pr["mean"].idxmax()], pr.loc[pr["mean"].idxmin()]
    text = (f"In {hi['period']}, employees rate {roles.label(hi['scale'])} highest "
            f"({float(hi['mean']):.2f} on the {roles.points[0]}-{roles.points[1]} "
            f"scale) and {roles.label(lo['scale'])} lowest ({float(lo['mean']):.2f}).")
    return text, f"scale={hi['scale']}", "mean", hi["mean"]


#: Default CSV stem of each input table.
_TABLES = {"correlations": "linkage_correlations", "loop": "loop",
           "priorities": "driver_priorities", "investment": "investment",
           "benchmark": "benchmark", "profile": "ex_profile"}

#: The findings in the order they are written: (topic, input table, function). Each function
#: takes its table and the context and returns ``(text, key, column, value)`` or None.
FINDINGS = (
    ("linkage", "correlations", finding_linkage),
    ("direction", "loop", finding_direction),
    ("drivers", "priorities", finding_drivers),
    ("value", "investment", finding_value),
    ("benchmark", "benchmark", finding_benchmark),
    ("profile", "profile", finding_profile),
)
