"""The validity harness (exresearch.validity), reduced: small runs that are stable yet
tight enough to catch a miscalibrated verdict.

The full-size runs are `make validity` (validity/results.md). Here 40 simulated 30-unit
clients of the null world (stable unit traits, no cross-lagged effect): a directional
label from the RI-CLPM verdict (about 5% expected) must appear in at most 7 of them,
while the plain cross-lagged regression that the reports used before (about 37% at 30
units) must exceed that, showing the check can fail. P(> 7 of 40 | 5%) < 0.1%;
P(<= 7 of 40 | 37%) < 0.1%. The same clients also check the RI-CLPM's own tests at 5%
against the model with lavaan's defaults that the verdicts used before calibration.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from exresearch import ParameterError, validity

LOOP = "loop label (RI-CLPM, the reports' method)"
OLD = "loop label (plain cross-lagged regression, before issue 15)"
UNCALIBRATED = "within-unit paths (RI-CLPM with lavaan's defaults, before calibration)"


@pytest.fixture(scope="module")
def null_run():
    return validity.run([LOOP, OLD, UNCALIBRATED], worlds=["null"], n_units=30, n_reps=40,
                        seed=11, batch=40)


def _rate(res, claim, event):
    row = res[(res["claim"] == claim) & (res["event"] == event)].iloc[0]
    return row


def test_riclpm_verdict_is_calibrated_in_the_null_world(null_run):
    row = _rate(null_run, LOOP, "directional")
    assert row["n"] == 40 and row["world"] == "null" and row["n_units"] == 30
    assert row["rate"] <= 7 / 40
    assert row["mc_se"] == pytest.approx(math.sqrt(row["rate"] * (1 - row["rate"]) / 40))
    assert (row["target_low"], row["target_high"]) == (0.0, 0.05)


def test_plain_cross_lagged_verdict_fails_the_same_check(null_run):
    row = _rate(null_run, OLD, "directional")
    assert row["rate"] > 7 / 40
    assert row["ok"] is False or not row["ok"]


def test_riclpm_tests_at_five_percent_are_calibrated_and_lavaan_defaults_are_not(null_run):
    """At alpha 0.05 (loop.RICLPM_ALPHA) the calibrated RI-CLPM (equal innovations, t
    reference) names a direction in at most 5 of the 40 null-world clients (P(> 5 of 40 |
    5%) = 1.4%) and its 95% path intervals cover 0 for at least 90% of them; the same
    model with lavaan's defaults (free innovations, z), which the reports used before,
    names one for 7 of these 39 clients (12-18% in the harness: validity/diagnose_riclpm.md),
    so this check fails it."""
    from exresearch.loop import RICLPM_ALPHA

    assert RICLPM_ALPHA == 0.05
    new = _rate(null_run, LOOP, "directional_at_0.05")
    assert new["n"] >= 38 and new["rate"] <= 5 / 40
    assert (new["target_low"], new["target_high"]) == (0.0, 0.05)
    assert _rate(null_run, LOOP, "directional")["rate"] == pytest.approx(
        _rate(null_run, LOOP, "directional_at_0.05")["rate"], abs=1 / 38)
    covered = [_rate(null_run, LOOP, f"ci_covers_zero_{k}") for k in ("ex_to_cx", "cx_to_ex")]
    assert sum(r["rate"] * r["n"] for r in covered) / sum(r["n"] for r in covered) >= 0.90
    old = _rate(null_run, UNCALIBRATED, "directional_at_0.05")
    assert old["n"] >= 38 and old["rate"] > 5 / 40


def test_write_results_markdown(null_run, tmp_path):
    path = validity.write_results(null_run, tmp_path / "v" / "results.md",
                                  command="pytest", settings={"reps": 40})
    text = path.read_text()
    assert text.startswith("# Validity of the claims the reports make")
    assert "- command: `pytest`" in text and "reps = 40" in text
    row = _rate(null_run, OLD, "directional")
    assert (f"| {OLD} | null | 30 | directional | 40 | {row['rate']:.3f} | "
            f"{row['mc_se']:.3f} | 0-0.05 | **NO** |") in text


def test_register_a_claim_and_run_it(tmp_path):
    calls = []

    @validity.claim("test: units seen", worlds=("null",),
                    targets={"null": {"thirty_units": (0.99, 1.0)}})
    def _units(panel, truth):
        """Every client has the units asked for."""
        calls.append(truth["client"]["client_id"])
        return {"thirty_units": panel["unit_id"].nunique() == truth["n_units"],
                "undefined": None}

    try:
        res = validity.run(["test: units seen"], n_units=12, n_periods=3, n_reps=3, seed=2,
                           batch=2)
        assert len(calls) == 3
        row = res[res["event"] == "thirty_units"].iloc[0]
        assert (row["n"], row["rate"], row["ok"]) == (3, 1.0, True)
        assert res[res["event"] == "undefined"].iloc[0]["n"] == 0
        listed = validity.claims()
        assert "Every client has the units asked for." in listed["description"].tolist()
    finally:
        validity._REGISTRY.pop("test: units seen", None)


def test_registry_errors():
    with pytest.raises(ParameterError, match=r"`worlds` must be keys of WORLDS .*\['moon'\]"):
        validity.claim("x", worlds=("moon",))
    with pytest.raises(ParameterError, match=r"`targets` names worlds \['reciprocal'\]"):
        validity.claim("x", worlds=("null",), targets={"reciprocal": {}})
    with pytest.raises(ParameterError, match=r"unknown claim\(s\) \['nope'\]"):
        validity.run(["nope"])
    assert isinstance(validity.claims(), pd.DataFrame)
