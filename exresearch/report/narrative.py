"""Every sentence a reader sees that is written from numbers: formatting of numbers for
prose, escaping for Markdown, the verb the evidence allows, and the descriptions of
results (engagement vs experience, mediation, the loop projection, verdicts)."""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd

#: Loop labels (see :data:`exresearch.linkage.LOOP_LABELS`) under which the lagged
#: analyses support the direction EX -> CX, so that "drives" may replace "is associated with".
DIRECTION_LABELS = (
    "reciprocal loop — virtuous cycle",
    "reciprocal loop — doom loop",
    "reciprocal loop",
    "EX leads",
)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


#: URL schemes and ``www.`` that Markdown renderers turn into links (autolinks).
_URL_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(?=//)|"
                         r"\b(mailto|javascript|vbscript|data|tel):")


_WWW = re.compile(r"(?i)\b(www)\.")


def md_escape(text) -> str:
    """Make text from the data safe to put into Markdown: no HTML, no links, no emphasis.

    Parameters
    ----------
    text : object

    Returns
    -------
    str
        HTML-escaped (``& < >``; quotes are harmless in Markdown text) with Markdown
        punctuation backslash-escaped, so no tag, link, image or emphasis can be formed;
        the ``:`` after a URL scheme and the ``.`` after ``www`` become entities (they look
        the same) so that a bare URL such as ``https://x`` in a unit id or label is not
        turned into a link by the Markdown renderer.

    Examples
    --------
    >>> md_escape("O'Brien & <Sons>")
    "O'Brien &amp; &lt;Sons&gt;"
    >>> md_escape("Sales_East *1*")
    'Sales\\\\_East \\\\*1\\\\*'
    >>> md_escape("see https://x.example")
    'see https&#58;//x.example'
    """
    escaped = _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))
    escaped = _URL_SCHEME.sub(lambda m: f"{m.group(1) or m.group(2)}&#58;", escaped)
    return _WWW.sub(r"\1&#46;", escaped)


def fmt_money(x) -> str:
    """A money amount for prose: thousands rounded, millions with one decimal.

    Examples
    --------
    >>> fmt_money(1_234_567), fmt_money(-56_789), fmt_money(512.4)
    ('1.2 million', '-57,000', '512')
    """
    x = float(x)
    if not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1e6:
        return f"{x / 1e6:,.1f} million"
    if abs(x) >= 1e3:
        return f"{round(x, -3):,.0f}"
    return f"{x:,.0f}"


def fmt_signed(x, digits=2) -> str:
    """A number with an explicit sign, e.g. ``+0.21``.

    Examples
    --------
    >>> fmt_signed(0.214), fmt_signed(-3.0, 1)
    ('+0.21', '-3.0')
    """
    return f"{float(x):+.{digits}f}"


def ordinal(x) -> str:
    """A rounded number as an English ordinal.

    Examples
    --------
    >>> ordinal(11.4), ordinal(21), ordinal(2.6), ordinal(73)
    ('11th', '21st', '3rd', '73rd')
    """
    n = int(round(float(x)))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def evidence_verb(loop) -> str:
    """The verb a finding may use for the EX -> outcome link, given the lagged evidence.

    Parameters
    ----------
    loop : pandas.DataFrame, pandas.Series or str
        :func:`exresearch.direction.loop_direction` (or its row): the decision is
        :func:`exresearch.loop.verdict_words`, so "drives" needs a label naming EX -> CX
        *from a calibrated method* (the within-unit RI-CLPM; the plain cross-lagged
        regression names directions that are not there, validity/results.md). A bare
        label is taken as coming from ``loop_direction``'s default (RI-CLPM) method.

    Returns
    -------
    str
        ``"drives"`` or ``"is associated with"``.

    Examples
    --------
    >>> evidence_verb("EX leads"), evidence_verb("no evidence")
    ('drives', 'is associated with')
    >>> import pandas as pd
    >>> evidence_verb(pd.DataFrame([{"label": "EX leads", "method": "clpm"}]))
    'is associated with'
    """
    from ..loop import verdict_words

    if isinstance(loop, str):
        loop = pd.Series({"label": loop, "method": "riclpm"})
    return verdict_words(loop)["verb"]


def _strength(r):
    a = abs(r)
    return ("negligible" if a < 0.1 else "weak" if a < 0.3 else "moderate" if a < 0.5
            else "strong")


def describe_incremental(result, *, roles, outcome) -> str:
    """One or two sentences on engagement versus experience, from the numbers.

    Parameters
    ----------
    result : pandas.DataFrame
        :func:`exresearch.drivers.incremental_validity`.
    roles : Roles
    outcome : str
        Its outcome column.

    Returns
    -------
    str
        Plain text (escape for Markdown).
    """
    r = result.set_index(["sequence", "step"])
    try:
        eng_add = r.loc[("drivers first", 2)]
        drv_add = r.loc[("engagement first", 2)]
        eng_alone = r.loc[("engagement first", 1)]
    except KeyError:
        return "Engagement and the experience drivers could not be compared."
    if not np.isfinite(eng_add["delta_r2"]):
        return ("Engagement and the experience drivers could not be compared "
                f"({eng_add.get('note', '')}).")
    ol = roles.label(outcome)
    s1 = (f"On its own, engagement accounts for {100 * eng_alone['r2']:.0f}% of the differences "
          f"in {ol} between units. Added to the specific experience drivers it explains "
          f"{100 * eng_add['delta_r2']:.1f} percentage points more (p = {eng_add['p_val']:.2f}); "
          f"the drivers add {100 * drv_add['delta_r2']:.1f} points beyond engagement "
          f"(p = {drv_add['p_val']:.2f}).")
    if drv_add["p_val"] < 0.05 and eng_add["p_val"] >= 0.05:
        s2 = (" The specific experience drivers carry information that engagement does not: "
              "engaged employees are not enough, they also need what lets them serve customers "
              "well.")
    elif eng_add["p_val"] < 0.05 and drv_add["p_val"] >= 0.05:
        s2 = " Engagement carries information about customers beyond the specific drivers."
    elif eng_add["p_val"] < 0.05 and drv_add["p_val"] < 0.05:
        s2 = " Both matter: each adds to the other."
    else:
        s2 = (" With this many units neither adds clearly to the other; they largely overlap "
              "in what they say about customers.")
    return s1 + s2


def describe_mediation(result, *, roles, x, m, y) -> str:
    """Say in words how much of the EX -> business link runs through customers.

    Parameters
    ----------
    result : pandas.DataFrame
        :func:`exresearch.mediation.mediation` with one mediator.
    roles : Roles
    x, m, y : str
        EX column, CX mediator, business outcome.

    Returns
    -------
    str
        Plain text (escape for Markdown).

    Examples
    --------
    >>> import pandas as pd
    >>> res = pd.DataFrame({"path": ["a", "b", "total", "direct", "indirect"],
    ...                     "estimate": [27.8, 0.088, 3.88, 1.43, 2.45],
    ...                     "ci_low": [7.1, 0.04, 0.87, -1.35, 0.56],
    ...                     "ci_high": [48.4, 0.14, 6.88, 4.21, 5.96],
    ...                     "p_val": [0.01, 0.001, 0.013, 0.3, 0.032]})
    >>> from exresearch.report import Roles
    >>> r = Roles(drivers=[], engagement=[], nps=[], likert=[], ex_measures=["ex"], cx=["nps"],
    ...           business=["g"], outcomes=["nps", "g"], primary_cx="nps", money="g",
    ...           labels={"ex": "EX index", "nps": "Customer NPS", "g": "Revenue growth"})
    >>> print(describe_mediation(res, roles=r, x="ex", m="nps", y="g"))
    Units one point higher on the EX index have +3.88 higher Revenue growth (95% CI 0.87 to 6.88); +2.45 of it (63%) goes with their higher Customer NPS (95% CI 0.56 to 5.96), consistent with a chain from employees through customers to business results. The remaining +1.43 is not explained by Customer NPS.
    """
    r = result.set_index("path")
    try:
        tot, ind, dirc = r.loc["total"], r.loc["indirect"], r.loc["direct"]
    except KeyError:
        return "The chain from employees through customers to business results could not be estimated."
    if isinstance(ind, pd.DataFrame):
        ind = ind.iloc[0]
    if not (np.isfinite(tot["estimate"]) and np.isfinite(ind["estimate"])):
        return "The chain from employees through customers to business results could not be estimated."
    xl, ml, yl = roles.label(x), roles.label(m), roles.label(y)
    share = (f" ({100 * ind['estimate'] / tot['estimate']:.0f}%)"
             if tot["estimate"] != 0 and 0 < ind["estimate"] / tot["estimate"] <= 1 else "")
    clear = ind["ci_low"] > 0 or ind["ci_high"] < 0
    verdict = ("consistent with a chain from employees through customers to business results"
               if clear else "but the 95% CI includes zero, so the chain is not established")
    return (f"Units one point higher on the {xl} have {fmt_signed(tot['estimate'])} higher {yl} "
            f"(95% CI {tot['ci_low']:.2f} to {tot['ci_high']:.2f}); "
            f"{fmt_signed(ind['estimate'])} of it{share} goes with their higher {ml} "
            f"(95% CI {ind['ci_low']:.2f} to {ind['ci_high']:.2f}), {verdict}. "
            f"The remaining {fmt_signed(dirc['estimate'])} is not explained by {ml}.")


def describe_verdict(loop, *, detail="In detail: ") -> str:
    """The loop verdict as Markdown: the label in bold, then the reason (escaped).

    Parameters
    ----------
    loop : pandas.DataFrame
        One row with ``label`` and ``reason`` (:func:`exresearch.direction.classify_loop`).
    detail : str, default "In detail: "
        Words before the reason.

    Examples
    --------
    >>> import pandas as pd
    >>> print(describe_verdict(pd.DataFrame({"label": ["EX leads"], "reason": ["only x_y"]})))
    **Verdict: EX leads.** In detail: only x\\_y.
    """
    return (f"**Verdict: {md_escape(loop['label'].iloc[0])}.** "
            f"{detail}{md_escape(loop['reason'].iloc[0])}.")


def describe_projection(projection, *, pooled=False) -> str:
    """What remains of a one-off rise in EX after the projected periods (Markdown).

    Parameters
    ----------
    projection : pandas.DataFrame
        :func:`exresearch.economics.project_loop`.
    pooled : bool, default False
        The synthesis' wording: add what the loop means for a lasting gain.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"scenario": ["intervention", "decline"], "period": [6, 6],
    ...                   "multiplier": [0.42, 0.42], "label": ["fades", "fades"]})
    >>> describe_projection(p)
    'After 6 periods, 42% of the initial rise in EX remains (fades).'
    """
    m = projection.groupby("scenario", sort=False)[["multiplier", "label"]].first()
    share = float(m.loc["intervention", "multiplier"])
    kind = str(m.loc["intervention", "label"])
    n = int(projection["period"].max())
    if not pooled:
        return (f"After {n} periods, {share:.0%} of the initial rise in EX remains "
                f"({md_escape(kind)}).")
    return (f"After {n} periods, {share:.0%} of a one-off rise in EX remains "
            f"({md_escape(kind)}): "
            + ("the loop amplifies a change, so an improvement (or a decline) feeds itself."
               if kind != "fades" else
               "the loop passes part of a change on, but a one-off improvement fades over a "
               "few periods; a lasting gain needs lasting effort."))


def describe_heterogeneity(main, *, x_label, y_label, enough=True) -> str:
    """I², τ and Cochran's Q of a meta-analysis in words (Markdown).

    Parameters
    ----------
    main : pandas.Series
        :func:`exresearch.meta.meta_analysis`.
    x_label, y_label : str
        Readers' labels of the pair.
    enough : bool, default True
        False when fewer than two clients have a correlation.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.Series({"i2": 0.31, "tau2": 0.01, "q": 13.0, "q_p": 0.16})
    >>> describe_heterogeneity(m, x_label="EX index", y_label="NPS")[:40]
    'For EX index and NPS, I² = 31% and τ = 0'
    """
    if not enough:
        return "Fewer than two clients have enough units for a correlation: nothing to compare."
    return (f"For {md_escape(x_label)} and {md_escape(y_label)}, I² = "
            f"{100 * main['i2']:.0f}% and τ = {np.sqrt(main['tau2']):.3f} "
            f"(Q = {main['q']:.1f}, p = {main['q_p']:.3f}): "
            + ("the organisations differ more than chance would produce." if main["q_p"] < 0.05
               else "the differences between organisations are within what chance would "
                    "produce."))


def describe_suppressed(suppressed, *, min_group_size) -> str:
    """How many unit-periods a client report leaves out, and why.

    Examples
    --------
    >>> import pandas as pd
    >>> describe_suppressed(pd.DataFrame({"unit_id": ["u"]}), min_group_size=5)[:46]
    '1 unit-period(s) were not reported because few'
    """
    if suppressed.empty:
        return "No unit-period was suppressed."
    return (f"{len(suppressed)} unit-period(s) were not reported because fewer than "
            f"{min_group_size} employees answered; their survey values appear nowhere in this "
            "report.")


def describe_weak_scales(quality, *, labels, alpha_min=0.7, icc2_min=0.5) -> str:
    """Client-scale pairs with low reliability or low ICC(2), in words (Markdown).

    Parameters
    ----------
    quality : pandas.DataFrame
        ``client_id, scale, alpha, icc2`` per client and scale.
    labels : dict
        Scale -> reader's label.
    alpha_min, icc2_min : float
        The cut-offs.

    Examples
    --------
    >>> import pandas as pd
    >>> q = pd.DataFrame({"client_id": ["a"], "scale": ["s"], "alpha": [0.6], "icc2": [0.8]})
    >>> describe_weak_scales(q, labels={"s": "Scale"})
    '1 client-scale combination(s) have alpha below 0.7 or ICC(2) below 0.5: a / Scale.'
    """
    low = quality[(quality["alpha"] < alpha_min) | (quality["icc2"] < icc2_min)]
    if low.empty:
        return (f"Every scale has alpha of at least {alpha_min:g} and ICC(2) of at least "
                f"{icc2_min:g} in every client.")
    return (f"{len(low)} client-scale combination(s) have alpha below {alpha_min:g} or ICC(2) "
            f"below {icc2_min:g}: " + "; ".join(
                f"{md_escape(c)} / {md_escape(labels.get(s, s))}"
                for c, s in zip(low["client_id"], low["scale"], strict=True)) + ".")


def describe_power(*, clients, units, respondents, r, tau, power, target, icc_data, icc):
    """The planning notebook's first paragraph: the current design and its power (Markdown).

    Examples
    --------
    >>> describe_power(clients=10, units=30, respondents=8, r=0.2, tau=0.1, power=0.91,
    ...                target=0.8, icc_data=0.12, icc=0.15)[-80:]
    'nough. The data show ICC(1) of about 0.12 for the EX index (assumed here: 0.15).'
    """
    return (f"The current study has **{clients} clients** with about **{units} reported units** "
            f"each and about **{respondents} respondents per unit**. With a true link of "
            f"r = {r:.2f} that varies between clients by τ = {tau:.2f}, its power is "
            f"**{power:.0%}**"
            + (" — enough." if power >= target else f" — below the {target:.0%} target.")
            + f" The data show ICC(1) of about {icc_data:.2f} for the EX index (assumed here: "
              f"{icc:.2f}).")


def describe_simulation_check(simulated) -> str:
    """How well the power formula agrees with the simulated power.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"power": [0.5], "ci_low": [0.4], "ci_high": [0.6],
    ...                   "analytic_power": [0.55]})
    >>> describe_simulation_check(s)
    "The formula falls within the simulation's 95% interval for 1 of 1 designs; the largest difference is 0.05."
    """
    agree = int(((simulated["analytic_power"] >= simulated["ci_low"])
                 & (simulated["analytic_power"] <= simulated["ci_high"])).sum())
    gap = float((simulated["power"] - simulated["analytic_power"]).abs().max())
    return (f"The formula falls within the simulation's 95% interval for {agree} of "
            f"{len(simulated)} designs; the largest difference is {gap:.2f}.")


def describe_withheld(benchmark) -> str:
    """The measures a benchmark withholds, and why (Markdown; empty when none).

    Examples
    --------
    >>> import pandas as pd
    >>> b = pd.DataFrame({"label": ["NPS"], "withheld": [True], "reason": ["2 clients"]})
    >>> describe_withheld(b)
    'Not benchmarked: NPS (2 clients)'
    """
    w = benchmark[benchmark["withheld"].astype(bool)]
    if not len(w):
        return ""
    return "Not benchmarked: " + "; ".join(
        f"{md_escape(lab)} ({md_escape(why)})" for lab, why in zip(w["label"], w["reason"],
                                                                    strict=True))


def headline_cards(*, main, pooled_loop, utility, roles, n_focus) -> list:
    """The synthesis' headline results as ``(label, value, note)`` cards.

    Parameters
    ----------
    main : pandas.Series or None
        :func:`exresearch.meta.meta_analysis` of EX and the primary CX outcome; None when
        fewer than two clients have a correlation.
    pooled_loop : pandas.DataFrame
        The pooled loop verdict (:func:`exresearch.direction.classify_loop`).
    utility : pandas.DataFrame
        :func:`exresearch.synthesis.study_utility` of EX: its pooled top-minus-bottom
        quarter difference (``measure == "quartile_diff"``) in the primary CX outcome
        is the value card.
    roles : Roles
    n_focus : int
        Clients with a defined correlation of EX and the primary CX outcome.

    Returns
    -------
    list of tuple
        For :func:`exresearch.report.headline_table`.

    Raises
    ------
    ParameterError
        When ``utility`` lacks the columns of :func:`exresearch.synthesis.study_utility`.
    """
    ex, cx = roles.ex, roles.primary_cx
    exl, cxl = roles.label(ex), roles.label(cx)
    cards = []
    if main is not None:
        cards += [
            (f"Pooled link: {exl} and {cxl}", f"r = {main['estimate']:.2f}",
             f"95% CI {main['ci_low']:.2f} to {main['ci_high']:.2f}; {int(main['k'])} clients, "
             f"{int(main['n'])} units"),
            ("Difference between clients", f"I² = {100 * main['i2']:.0f}%",
             f"95% prediction interval for a new client {main['pi_low']:.2f} to "
             f"{main['pi_high']:.2f}"),
            ("Employee-customer loop", str(pooled_loop["label"].iloc[0]),
             f"EX → CX {fmt_signed(pooled_loop['x_to_y'].iloc[0])} SD, "
             f"CX → EX {fmt_signed(pooled_loop['y_to_x'].iloc[0])} SD per period"),
        ]
    need = ["y", "measure", "k", "estimate", "ci_low", "ci_high"]
    if not all(c in utility.columns for c in need):
        from ..exceptions import ParameterError

        raise ParameterError(
            "`utility` must be the table of exresearch.synthesis.study_utility (columns "
            f"{need}), but one with columns {list(utility.columns)} was passed")
    q = utility[(utility["y"] == cx) & (utility["measure"] == "quartile_diff")]
    if len(q) and pd.notna(q["estimate"].iloc[0]):
        q = q.iloc[0]
        cards.append((f"{cxl}: top minus bottom quarter of units on {exl}",
                      f"{q['estimate']:.1f}",
                      f"pooled over {int(q['k'])} clients; 95% CI {q['ci_low']:.1f} to "
                      f"{q['ci_high']:.1f}"))
    if main is None:
        cards.append((f"Pooled link: {exl} and {cxl}", "not estimable",
                      f"{n_focus} client(s) with enough units; at least 2 are needed"))
    return cards


def cards_markdown(cards) -> str:
    """Headline cards as a Markdown list under "Headline results".

    Examples
    --------
    >>> print(cards_markdown([("Link", "r = 0.30", "5 clients")]))
    ## Headline results
    <BLANKLINE>
    - **Link: r = 0.30** (5 clients)
    """
    return "## Headline results\n\n" + "\n".join(
        f"- **{md_escape(a)}: {md_escape(b)}** ({md_escape(c)})" for a, b, c in cards)


def mediation_paths(roles, *, x, m, y) -> dict:
    """What each path of :func:`exresearch.mediation.mediation` means, in readers' labels.

    Examples
    --------
    >>> from exresearch.report import Roles
    >>> r = Roles(drivers=[], engagement=[], nps=[], likert=[], ex_measures=["ex"], cx=["nps"],
    ...           business=["g"], outcomes=["nps", "g"], primary_cx="nps", money="g",
    ...           labels={"ex": "EX", "nps": "NPS", "g": "growth"})
    >>> mediation_paths(r, x="ex", m="nps", y="g")["indirect"]
    'EX → growth, through NPS'
    """
    xl, ml, yl = roles.label(x), roles.label(m), roles.label(y)
    return {"a": f"{xl} → {ml}", "b": f"{ml} → {yl}, at equal {xl}",
            "total": f"{xl} → {yl}, in all", "direct": f"{xl} → {yl}, not through {ml}",
            "indirect": f"{xl} → {yl}, through {ml}"}


def describe_study(study) -> str:
    """One line on what a study contains (Markdown)."""
    cfg = study.config
    return (f"**{md_escape(cfg.name)}**: {len(study.clients)} clients, periods "
            f"{md_escape(', '.join(cfg.periods))}, {len(cfg.scales)} scales, "
            f"{len(cfg.outcomes)} outcomes, minimum group size {cfg.min_group_size}, "
            f"seed {cfg.seed}.")


def describe_client(study, client_id, *, periods, n_units) -> str:
    """The line under a client report's title: client, study, periods, units (Markdown)."""
    cfg = study.config
    return (f"**{md_escape(cfg.client(client_id).name or client_id)}** · {md_escape(cfg.name)} · "
            f"periods {md_escape(periods[0])} to {md_escape(periods[-1])} · {n_units} business "
            "units with reported survey results")


def describe_inputs(files, warnings) -> tuple:
    """Two lines of the data-quality report: the input files read and the warnings count.

    Examples
    --------
    >>> describe_inputs(range(12), [])
    ('12 input files were read; their SHA-256 hashes are in `input_files.csv`.', 'No warnings.')
    """
    return (f"{len(files)} input files were read; their SHA-256 hashes are in "
            "`input_files.csv`.", f"{len(warnings)} warning(s)." if len(warnings) else
            "No warnings.")
