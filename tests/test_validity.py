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
    names one for 7 of these 39 clients (11.6% of 198 in the harness:
    validity/diagnose_riclpm.md), so this check fails it."""
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
    assert (f"| {OLD} | null | 1 | 30 | 4 | directional | 40 | {row['rate']:.3f} | "
            f"{row['mc_se']:.3f} | 0-0.05 | **NO** |") in text
    # the summary at the top: the old model's false directions, not ok
    line = next(x for x in text.splitlines()
                if x.startswith("| a direction named, plain cross-lagged regression (before)"))
    assert f"| {100 * row['rate']:.1f}% ± {100 * row['mc_se']:.1f} (40) |" in line
    assert line.endswith("| **NO** |") and "| false in null; true in reciprocal |" in line
    assert text.index("## Summary (4 periods)") < text.index("## Every event")


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


def test_study_level_claim_gets_whole_studies():
    seen = []

    @validity.claim("test: a study", worlds=("null",), level="study",
                    targets={"null": {"all_clients": (0.99, 1.0)}})
    def _study(panels, truth):
        """Every client of the study, with its truth."""
        seen.append(sorted(panels))
        return {"all_clients": len(panels) == truth["n_clients"] == len(truth["clients"])}

    try:
        res = validity.run(["test: a study"], n_units=12, n_periods=3, n_clients=3, n_reps=2,
                           seed=4)
        assert len(seen) == 2 and all(len(s) == 3 for s in seen) and seen[0] != []
        row = res.iloc[0]
        assert (row["n_clients"], row["n_units"], row["n_periods"], row["reps"], row["n"],
                row["rate"], row["ok"]) == (3, 12, 3, 2, 2, 1.0, True)
        assert validity.claims().set_index("name").loc["test: a study", "level"] == "study"
    finally:
        validity._REGISTRY.pop("test: a study", None)
    with pytest.raises(ParameterError, match=r"`level` must be one of \['client', 'study'\], "
                                             r"but 'team' was passed"):
        validity.claim("x", level="team")
    with pytest.raises(ParameterError, match=r"each `summary` row needs a 'statement'"):
        validity.claim("x", worlds=("null",), summary=({"statement": "s",
                                                        "fpr": ("moon", "e")},))
    with pytest.raises(ParameterError, match=r"`n_periods` must be a positive integer .* "
                                             r"but \[0\] was passed"):
        validity.run([LOOP], n_periods=[0])


def test_resume_runs_only_the_missing_chunks(tmp_path):
    calls = []

    @validity.claim("test: resume", worlds=("null",))
    def _count(panel, truth):
        """Counts its calls."""
        calls.append(1)
        return {"seen": True}

    out = tmp_path / "part.md"
    args = ["--claims", "test: resume", "--units", "12", "--periods", "3", "--chunk", "2",
            "--out", str(out)]
    try:
        assert validity.main([*args, "--reps", "4"]) == 0
        assert len(calls) == 4
        assert validity.main([*args, "--reps", "6", "--resume"]) == 0
        assert len(calls) == 6  # only the third chunk ran
        res = validity.read_results(out.with_suffix(".csv"))
        assert res[["reps", "n", "rate"]].values.tolist() == [[6, 6, 1.0]]
        with pytest.raises(ParameterError, match="--resume needs the --chunk of the first run"):
            validity.main([*args, "--reps", "8", "--resume", "--chunk", "4"])
    finally:
        validity._REGISTRY.pop("test: resume", None)


def test_old_csv_and_power_grid(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("claim,world,n_units,event,n,rate,mc_se,target_low,target_high,ok,"
                   "description,seconds\nc,null,30,e,10,0.1,0.095,0.0,0.05,True,d,1.0\n")
    res = validity.read_results(old)
    assert res.loc[0, ["n_clients", "n_periods", "reps", "world"]].tolist() == [1, 4, 10,
                                                                               "null"]
    both = validity.combine([res, res.assign(n=30, reps=30, rate=0.2)])
    assert both.loc[0, ["reps", "n"]].tolist() == [40, 40]
    assert both.loc[0, "rate"] == pytest.approx((1 + 6) / 40)
    grid = pd.DataFrame([{"claim": validity.POWER_GRID["claim"], "world": "reciprocal",
                          "n_clients": 1, "n_units": u, "n_periods": t, "event": e,
                          "reps": 50, "n": 50, "rate": u / 1000 + t / 100, "mc_se": 0.01,
                          "target_low": float("nan"), "target_high": float("nan"),
                          "ok": float("nan"), "description": "d", "seconds": 1.0}
                         for u in (30, 60) for t in (4, 8)
                         for e in ("directional", "reciprocal")])
    text = validity.write_results(grid, tmp_path / "r.md").read_text()
    assert "## The loop verdict at typical sizes" in text
    assert "| units | 4 periods | 8 periods |" in text
    assert "| 60 | 10.0% ± 1.0 (50) | 14.0% ± 1.0 (50) |" in text


POOLED = "pooled loop verdict (synthesis: within-unit paths pooled over clients)"


@pytest.mark.slow
def test_pooled_verdict_is_calibrated_in_the_null_world():
    """6 simulated null-world studies of 10 clients x 30 units, pooled as the synthesis
    pools them: the within-unit verdict names a direction (about 5% expected) in at most
    2 (P(> 2 of 6 | 5%) = 0.2%) and never a virtuous cycle or doom loop; the same pooling
    of the plain cross-lagged paths, biased by the stable traits, names one in at least 3
    (it did in 58 of 60 ten-client studies of validity/results.md)."""
    res = validity.run([POOLED], worlds=["null"], n_units=30, n_clients=10, n_reps=6,
                       seed=11)
    rate = res.set_index("event")["rate"]
    assert (res["n"] == 6).all() and (res["n_clients"] == 10).all()
    assert rate["directional"] <= 2 / 6 and rate["reml_directional"] <= 2 / 6
    assert rate["virtuous_or_doom"] == 0
    assert rate["ci_covers_zero_ex_to_cx"] >= 4 / 6 and rate["ci_covers_zero_cx_to_ex"] >= 4 / 6
    assert rate["clpm_directional"] >= 3 / 6


def test_loop_power_reads_the_cell_below():
    table = pd.DataFrame([{"world": w, "n_units": u, "n_periods": t, "event": e, "n": 50,
                           "rate": (0.01 if w == "null" else u / 1000 + t / 100),
                           "mc_se": 0.02}
                          for w in ("reciprocal", "null") for u in (30, 100) for t in (4, 8)
                          for e in ("directional", "reciprocal")])
    res = validity.loop_power(n_units=150, n_periods=6, table=table)
    assert res.loc[0, ["grid_units", "grid_periods", "clients"]].tolist() == [100, 4, 50]
    assert res.loc[0, "power_direction"] == pytest.approx(0.14)
    assert res.loc[0, "fpr_direction"] == pytest.approx(0.01)
    small = validity.loop_power(n_units=20, n_periods=8, table=table)
    assert small["power_direction"].isna().all() and small["grid_units"].isna().all()
    with pytest.raises(ParameterError, match=r"`n_periods` must be a positive integer, but "
                                             r"'4' was passed"):
        validity.loop_power(n_units=30, n_periods="4", table=table)



def test_doctests():
    import doctest

    try:
        res = doctest.testmod(validity, optionflags=doctest.NORMALIZE_WHITESPACE)
    finally:
        validity._REGISTRY.pop("doc example: always silent", None)
    assert res.failed == 0 and res.attempted > 0


def test_shared_shocks_world_is_wired():
    """The null_shared_shocks world simulates with correlated EX-CX innovations and no
    lagged effect, the loop claim holds it to the null world's targets, and PLAN runs it
    at 30 and 100 units."""
    panel, truth = next(validity.client_samples("null_shared_shocks", n_units=8, n_periods=3,
                                                n_reps=1, seed=3, batch=1))
    opts = truth["study"]["options"]
    assert opts["innovation_correlation"] == 0.5
    assert opts["ex_to_cx"] == opts["cx_to_ex"] == 0.0
    assert truth["client"]["paths_within"]["ex_to_cx"] == 0.0
    assert set(panel["unit_id"]) and truth["world"] == "null_shared_shocks"
    validity._load_claim_modules()
    loop = validity._REGISTRY[LOOP]
    assert "null_shared_shocks" in loop.worlds
    assert loop.targets["null_shared_shocks"]["directional"] == (0.0, 0.05)
    parts = {p["name"]: p for p in validity.PLAN}
    for u in (30, 100):
        part = parts[f"loop-null_shared_shocks-{u}"]
        assert (part["worlds"], part["units"], part["reps"]) == (["null_shared_shocks"], u, 200)
    assert parts["loop-null-30"]["reps"] == 400 and parts["loop-reciprocal-100"]["reps"] == 200
