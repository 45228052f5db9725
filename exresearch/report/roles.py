"""Which scales and outcomes play which part in a report (:class:`Roles` from ``study.yml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Name of the composite EX column added by :func:`client_panel`.
EX_INDEX = "ex_index"


@dataclass
class Roles:
    """Which scales and outcomes play which part in a report (from ``study.yml``).

    Attributes
    ----------
    drivers : list of str
        Likert scales without a role on the study's answer range: the specific EX drivers
        (a scale with its own range is in ``ex_measures`` but not a driver).
    engagement : list of str
        Likert scales with ``role: engagement``.
    nps : list of str
        eNPS scales (``kind: nps``).
    likert : list of str
        ``drivers + engagement`` (scales on the common answer range).
    ex_measures : list of str
        ``["ex_index"]`` (when there are drivers), then drivers, engagement, Likert scales
        on another answer range, and eNPS.
    cx, business : list of str
        Outcomes by kind.
    outcomes : list of str
        Every outcome, in ``study.yml`` order.
    primary_cx : str or None
        The first CX outcome (else the first outcome): the outcome of the driver and loop
        analyses.
    money : str or None
        The business outcome measured as revenue growth in % (its name or label contains
        "revenue"), which turns into money with the client's ``revenue``.
    labels : dict
        Column -> label for readers (``ex_index`` included).
    higher_is_better : dict
        Outcome -> bool.
    points : tuple
        The Likert answer range.
    """

    drivers: list
    engagement: list
    nps: list
    likert: list
    ex_measures: list
    cx: list
    business: list
    outcomes: list
    primary_cx: str | None
    money: str | None
    labels: dict = field(default_factory=dict)
    higher_is_better: dict = field(default_factory=dict)
    points: tuple = (1, 5)

    @property
    def ex(self) -> str:
        """The overall EX measure: ``ex_index`` if there are drivers, else the first scale."""
        return self.ex_measures[0]

    def label(self, name) -> str:
        """Reader's label of a column (the name itself when it has none)."""
        return str(self.labels.get(name, name))

    def relabel(self, frame, *columns):
        """A copy of ``frame`` whose ``columns`` hold readers' labels instead of names.

        Examples
        --------
        >>> import pandas as pd
        >>> r = Roles(drivers=[], engagement=[], nps=[], likert=[], ex_measures=["ex"],
        ...           cx=["nps"], business=[], outcomes=["nps"], primary_cx="nps", money=None,
        ...           labels={"ex": "EX index", "nps": "Customer NPS"})
        >>> r.relabel(pd.DataFrame({"x": ["ex"], "y": ["nps"], "r": [0.3]}), "x", "y").values.tolist()
        [['EX index', 'Customer NPS', 0.3]]
        """
        return frame.assign(**{c: frame[c].map(self.label) for c in columns})


def measure_roles(cfg) -> Roles:
    """Sort a study's scales and outcomes into the parts they play in the reports.

    Parameters
    ----------
    cfg : exresearch.study.StudyConfig
        ``study.config``.

    Returns
    -------
    Roles

    Examples
    --------
    >>> from exresearch.config import ROOT
    >>> from exresearch.study import load_study
    >>> roles = measure_roles(load_study(ROOT / "tests" / "studies" / "valid").config)
    >>> roles.primary_cx
    'nps'
    """
    drivers, engagement, nps, other = [], [], [], []
    labels = {}
    for name, spec in cfg.scales.items():
        labels[name] = getattr(spec, "label", None) or name
        own = tuple(getattr(spec, "points", None) or cfg.points)
        if getattr(spec, "kind", "likert") == "nps":
            nps.append(name)
        elif getattr(spec, "role", None) == "engagement":
            engagement.append(name)
        elif own == tuple(cfg.points):
            drivers.append(name)
        else:  # another answer range: not averaged into the EX index
            other.append(name)
    outcomes = list(cfg.outcomes)
    cx = [o for o, s in cfg.outcomes.items() if s.kind == "cx"]
    business = [o for o, s in cfg.outcomes.items() if s.kind == "business"]
    hib = {o: bool(getattr(s, "higher_is_better", True)) for o, s in cfg.outcomes.items()}
    for o, s in cfg.outcomes.items():
        labels[o] = getattr(s, "label", None) or o
    money = next((o for o in business if hib[o] and (
        "revenue" in o.lower() or "revenue" in str(labels[o]).lower())), None)
    ex_measures = ([EX_INDEX] if drivers else []) + drivers + engagement + other + nps
    if drivers:
        labels[EX_INDEX] = "EX index"
    return Roles(
        drivers=drivers, engagement=engagement, nps=nps, likert=drivers + engagement,
        ex_measures=ex_measures, cx=cx, business=business, outcomes=outcomes,
        primary_cx=(cx[0] if cx else (outcomes[0] if outcomes else None)), money=money,
        labels=labels, higher_is_better=hib, points=tuple(cfg.points),
    )
