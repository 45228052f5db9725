"""The driver model's claims, registered with the validity harness (:mod:`exresearch.validity`).

Each simulated client goes through the project simulator (items, suppression,
aggregation) like a real one; its units are averaged over periods as in the client
report (:func:`exresearch.report.unit_means`) and the one driver model
(:func:`exresearch.value.driver_model`) decides "act first". ``truth.json`` plants the
latent driver weights (:data:`exresearch.simulate.MODEL_DEFAULTS`: ``flexibility`` has
weight 0, ``tools`` is the strongest). The money CI coverage needs the planted value in
observed units, which the item-level simulator does not give in closed form; it is
measured on unit-level simulated clients by ``validity/drivers.py``.
"""

from __future__ import annotations

from .validity import claim

__all__: list[str] = []

_CX = "nps"
#: Bootstrap resamples per simulated client (the reports use 1000; the rates were the same
#: at 500 in validity/drivers.py).
N_BOOT = 500


@claim("act first (one driver model)", worlds=("null", "reciprocal"),
       targets={"null": {"zero_weight_named": (0.0, 0.05)},
                "reciprocal": {"zero_weight_named": (0.0, 0.05)}},
       summary=({"statement": "a driver named 'act first' where no driver moves CX",
                 "fpr": ("null", "any_named")},
                {"statement": "a zero-weight driver named 'act first' / the strongest named",
                 "fpr": ("reciprocal", "zero_weight_named"),
                 "power": ("reciprocal", "strongest_named")}))
def _act_first(panel, truth):
    """value.driver_model of nps on the six drivers (unit means over periods): is a driver
    named "act first", is it a zero-weight driver, is it the truly strongest one?"""
    from .simulate import DRIVERS
    from .value import driver_model

    drivers = list(DRIVERS)
    units = panel.groupby("unit_id")[[*drivers, _CX]].mean().dropna().reset_index()
    if len(units) < len(drivers) + 3:
        return {"any_named": None, "zero_weight_named": None, "strongest_named": None}
    pooled = truth["study"]["pooled"]
    weights = pooled["driver_weights"]
    strongest = max(weights, key=weights.get)
    m = driver_model(units, y=_CX, drivers=drivers, n_boot=N_BOOT, seed=1)
    named = set(m.loc[m["act_first"], "driver"])
    return {"any_named": bool(named),
            "zero_weight_named": bool(named & set(pooled["zero_weight_drivers"])),
            "strongest_named": strongest in named}
