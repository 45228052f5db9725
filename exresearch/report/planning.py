"""Study planning: the current design read from the study, the clients needed for a target
power, and the check of the power formula by simulation."""

from __future__ import annotations

import pandas as pd

from .panels import ex_reliability, reported_survey


def current_design(study, panels, *, roles) -> dict:
    """The study's design as the power functions take it, from its reported unit-periods.

    Parameters
    ----------
    study : exresearch.study.Study
    panels : dict
        client id -> :func:`exresearch.report.client_panel`.
    roles : Roles

    Returns
    -------
    dict
        ``clients`` (at least 2), ``units_per_client`` (median reported units per client
        and period, at least 4), ``respondents_per_unit`` (median, at least 1) and
        ``icc1_in_data`` (median over clients of the EX index's ICC(1)); the floors are
        the smallest design the power functions accept.
    """
    shown = pd.concat([p[~p["suppressed"].astype(bool) & (p["n_respondents"] > 0)]
                       .assign(client_id=c) for c, p in panels.items()], ignore_index=True)
    units = shown.groupby(["client_id", "period"])["unit_id"].nunique().median()
    icc = pd.concat([ex_reliability(reported_survey(study, c, panels[c]), cfg=study.config,
                                    roles=roles).to_frame().T for c in study.clients])
    return {"clients": max(2, len(study.clients)), "units_per_client": max(4, int(round(units))),
            "respondents_per_unit": max(1, int(round(shown["n_respondents"].median()))),
            "icc1_in_data": icc["icc1"].median()}


def clients_needed(grid, *, units, target=0.8) -> pd.DataFrame:
    """The fewest clients of a power grid that reach the target power, per number of units.

    Parameters
    ----------
    grid : pandas.DataFrame
        :func:`exresearch.power.power_grid` over ``n_clients`` and ``n_units``.
    units : list of int
        Units per client, one row each.
    target : float, default 0.8

    Returns
    -------
    pandas.DataFrame
        ``n_units, clients_for_<100 * target>pct_power`` (NaN when no number of clients of
        the grid reaches it).

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"n_clients": [5, 10, 5, 10], "n_units": [10, 10, 20, 20],
    ...                   "power": [0.3, 0.5, 0.7, 0.85]})
    >>> clients_needed(g, units=[10, 20]).values.tolist()
    [[10.0, nan], [20.0, 10.0]]
    """
    name = f"clients_for_{round(100 * target)}pct_power"
    return (grid[grid["power"] >= target].groupby("n_units")["n_clients"].min()
            .reindex(units).rename(name).reset_index())


def check_designs(design) -> list:
    """The three designs simulated to check the formula: the current one, half the
    clients (at least 3) and half the units (at least 10)."""
    k, n = design["clients"], design["units_per_client"]
    return [(k, n), (max(3, k // 2), n), (k, max(10, n // 2))]


def power_check(designs, *, r, respondents_per_unit, tau, alpha, icc, n_sims, seed):
    """Simulated power of some designs beside the formula's (``analytic_power``).

    :func:`exresearch.power.power_simulation` of each ``(clients, units)`` design (seeds
    ``seed``, ``seed + 1``, ...) with :func:`exresearch.power.power_analytic` added.
    """
    from ..power import power_analytic, power_simulation

    common = {"r": r, "respondents_per_unit": respondents_per_unit, "tau": tau,
              "alpha": alpha, "icc": icc}
    out = pd.concat([power_simulation(n_clients=k, n_units=n, n_sims=n_sims, seed=seed + i,
                                      progress=False, **common)
                     for i, (k, n) in enumerate(designs)], ignore_index=True)
    out["analytic_power"] = [power_analytic(n_clients=k, n_units=n, **common)
                             for k, n in designs]
    return out
