"""Tests of exresearch.simulate: contract, determinism, errors and the generator's statistics.

Unit scores are recomputed here with plain pandas (independently of the package's
scoring code) from the CSV files, following METHODS.md: reverse items flipped as
``min + max - x``, a respondent score needs at least half the scale's items, unit means
over respondents, units with fewer than ``min_group_size`` respondents left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
import yaml

from exresearch import ParameterError
from exresearch.cli import main
from exresearch.simulate import DRIVERS, MODEL_DEFAULTS, simulate_study

LIKERT = [*DRIVERS, "engagement"]


def _config(path: Path) -> dict:
    return yaml.safe_load((path / "study.yml").read_text(encoding="utf-8"))


def _truth(path: Path) -> dict:
    return json.loads((path / "truth.json").read_text(encoding="utf-8"))


def _respondent_scores(survey: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    lo, hi = cfg["points"]
    out = survey[["unit_id", "period", "respondent_id"]].copy()
    for name, spec in cfg["scales"].items():
        items = survey[spec["items"]].astype(float)
        if spec.get("kind") == "nps":
            out[name] = items.iloc[:, 0]
            continue
        for item in spec.get("reverse", []):
            items[item] = lo + hi - items[item]
        enough = items.notna().sum(axis=1) >= len(spec["items"]) / 2
        out[name] = items.mean(axis=1).where(enough)
    return out


def _unit_panel(path: Path, client: str, cfg: dict) -> pd.DataFrame:
    folder = path / "clients" / client
    survey = pd.read_csv(folder / "survey.csv", dtype={"unit_id": str, "period": str})
    outcomes = pd.read_csv(folder / "outcomes.csv", dtype={"unit_id": str, "period": str})
    scores = _respondent_scores(survey, cfg)
    answered = scores["enps"].notna()
    scores["enps"] = (100.0 * ((scores["enps"] >= 9).astype(float)
                               - (scores["enps"] <= 6).astype(float))).where(answered)
    groups = scores.groupby(["unit_id", "period"])
    panel = groups[[*LIKERT, "enps"]].mean()  # mean of +100/0/-100 = %prom - %detr
    # a scale scored for fewer than min_group_size respondents is not reported
    panel = panel.where(groups[[*LIKERT, "enps"]].count() >= cfg["min_group_size"])
    panel["n"] = groups.size()
    panel["ex_composite"] = panel[list(DRIVERS)].mean(axis=1)
    panel = panel.join(outcomes.set_index(["unit_id", "period"]), how="outer")
    return panel.reset_index()


def _icc1(scores: pd.DataFrame, column: str) -> float:
    """ICC(1) from a one-way ANOVA on unit, k = N / J (as multilevel::ICC1)."""
    d = scores[["unit_id", column]].dropna()
    groups = d.groupby("unit_id")[column]
    n, j = len(d), groups.ngroups
    grand = d[column].mean()
    ssb = (groups.size() * (groups.mean() - grand) ** 2).sum()
    ssw = ((d[column] - groups.transform("mean")) ** 2).sum()
    msb, msw = ssb / (j - 1), ssw / (n - j)
    k = n / j
    return (msb - msw) / (msb + (k - 1) * msw)


# ------------------------------------------------------------------ contract and files


def test_small_study_files_and_config(small_study):
    names = sorted(p.relative_to(small_study).as_posix() for p in small_study.rglob("*")
                   if p.is_file())
    clients = [f"client-0{i}" for i in range(1, 6)]
    expected = sorted(["study.yml", "truth.json"]
                      + [f"clients/{c}/{f}" for c in clients
                         for f in ("survey.csv", "outcomes.csv")])
    assert names == expected

    cfg = _config(small_study)
    assert cfg["min_group_size"] == 5
    assert cfg["periods"] == ["2025Q1", "2025Q2", "2025Q3"]
    assert list(cfg["scales"]) == [*LIKERT, "enps"]
    for name in DRIVERS:
        assert 3 <= len(cfg["scales"][name]["items"]) <= 4
    assert sum(bool(cfg["scales"][s].get("reverse")) for s in DRIVERS) >= 2
    assert cfg["scales"]["engagement"]["role"] == "engagement"
    assert len(cfg["scales"]["engagement"]["items"]) == 3
    assert cfg["scales"]["enps"] == {"items": ["enps_0_10"], "points": [0, 10],
                                     "kind": "nps", "label": "Employee NPS"}
    assert {k: v["kind"] for k, v in cfg["outcomes"].items()} == {
        "nps": "cx", "csat": "cx", "revenue_growth": "business", "turnover": "business"}
    assert cfg["outcomes"]["turnover"]["higher_is_better"] is False
    assert cfg["covariates"] == ["headcount"]
    assert [c["id"] for c in cfg["clients"]] == clients
    assert [c["industry"] for c in cfg["clients"]] == [
        "retail", "banking", "hospitality", "telecom", "healthcare"]
    assert all(isinstance(c["revenue"], int) and c["revenue"] > 1e6 for c in cfg["clients"])
    assert cfg["clients"][0]["name"] == "Northwind Retail"


def test_small_study_csv_layout(small_study):
    cfg = _config(small_study)
    items = [i for s in cfg["scales"].values() for i in s["items"]]
    survey = pd.read_csv(small_study / "clients" / "client-01" / "survey.csv", dtype=str)
    assert list(survey.columns) == ["unit_id", "period", "respondent_id", *items]
    values = survey[items[:-1]].stack().dropna().astype(int)
    assert set(values.unique()) <= {1, 2, 3, 4, 5}
    assert set(survey["enps_0_10"].dropna().astype(int)) <= set(range(11))
    assert survey.duplicated(["period", "respondent_id"]).sum() == 0
    # every unit answers in every period, so no unit lacks survey data
    assert survey.groupby("period")["unit_id"].nunique().tolist() == [12, 12, 12]
    outcomes = pd.read_csv(small_study / "clients" / "client-01" / "outcomes.csv", dtype=str)
    assert list(outcomes.columns) == ["unit_id", "period", "nps", "csat", "revenue_growth",
                                      "turnover", "headcount"]
    assert len(outcomes) == 12 * 3
    assert outcomes["nps"].str.fullmatch(r"-?\d+\.\d\d").all()
    assert outcomes["headcount"].str.fullmatch(r"\d+").all()
    text = (small_study / "clients" / "client-01" / "survey.csv").read_bytes()
    assert b"\r\n" not in text and b".0," not in text


def test_small_study_passes_load_study(small_study):
    study_mod = pytest.importorskip("exresearch.study")
    study = study_mod.load_study(small_study)
    assert study.clients == [f"client-0{i}" for i in range(1, 6)]
    summary = study.summary()
    assert summary["units"].tolist() == [12] * 5
    assert summary["periods"].tolist() == [3] * 5
    assert len(study.warnings) == 0
    survey = study.survey("client-02")
    assert survey["tools_1"].dtype == np.float64
    assert study_mod.validate_study(small_study).empty


def test_truth_json_fields(small_study):
    truth = _truth(small_study)
    assert truth["arguments"] == {"n_clients": 5, "n_units": 12, "n_periods": 3,
                                  "seed": 20261122, "preset": "reciprocal"}
    assert truth["options"]["ex_to_cx"] == MODEL_DEFAULTS["ex_to_cx"]
    assert set(truth["options"]) == set(MODEL_DEFAULTS)
    pooled = truth["pooled"]
    assert pooled["ex_to_cx"] == 0.35 and pooled["tau"] == 0.1
    assert len(truth["clients"]) == 5
    for tc in truth["clients"]:
        assert set(tc["rho_observed"]) == {*DRIVERS, "engagement", "enps", "ex_composite"}
        for k, r in tc["rho_observed"].items():
            assert tc["z_observed"][k] == pytest.approx(np.arctanh(r), abs=2e-6)
            # measurement error only attenuates the latent correlation
            if k in tc["rho_latent"]:
                assert 0 < r < tc["rho_latent"][k]
        assert tc["direction"] in {"improving", "declining", "stable"}
    obs = pooled["observed"]["ex_composite"]
    assert 0.15 < obs["r_at_z_mean"] < 0.45
    assert obs["tau_z"] > 0
    betas = [tc["ex_to_cx"] for tc in truth["clients"]]
    assert len(set(betas)) == 5
    assert pooled["sample_z_mean"]["ex_composite"] == pytest.approx(
        np.mean([tc["z_observed"]["ex_composite"] for tc in truth["clients"]]), abs=1e-5)


def test_tau_zero_gives_identical_client_effects(tmp_path):
    path = simulate_study(tmp_path / "s", n_clients=3, n_units=5, n_periods=1, seed=2, tau=0.0)
    truth = _truth(path)
    assert {tc["ex_to_cx"] for tc in truth["clients"]} == {0.35}
    assert truth["pooled"]["observed"]["tools"]["tau_z"] == 0.0


# ------------------------------------------------------------------ determinism


def _all_bytes(path: Path) -> dict:
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    args = {"n_clients": 3, "n_units": 8, "n_periods": 2, "seed": 7}
    a = _all_bytes(simulate_study(tmp_path / "a", **args))
    b = _all_bytes(simulate_study(tmp_path / "b", **args))
    assert len(a) == 2 + 2 * 3
    assert a == b
    c = _all_bytes(simulate_study(tmp_path / "c", **{**args, "seed": 8}))
    assert c.keys() == a.keys()
    assert c["clients/client-01/survey.csv"] != a["clients/client-01/survey.csv"]


def test_fresh_process_gives_the_same_bytes(tmp_path):
    """No hidden state (calibration cache, hash seeds) leaks into the files."""
    args = {"n_clients": 2, "n_units": 6, "n_periods": 2, "seed": 3}
    here = _all_bytes(simulate_study(tmp_path / "here", **args))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-m", "exresearch", "simulate", str(tmp_path / "there"),
         "--clients", "2", "--units", "6", "--periods", "2", "--seed", "3"],
        check=True, env=env, capture_output=True)
    assert _all_bytes(tmp_path / "there") == here


def test_cli_simulate_then_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["simulate", str(out), "--clients", "2", "--units", "4", "--periods", "2",
                 "--seed", "1"]) == 0
    assert (out / "truth.json").is_file()
    before = _all_bytes(out)
    assert main(["simulate", str(out), "--clients", "2", "--seed", "2"]) == 2
    err = capsys.readouterr().err
    assert "`out` must be a new or empty folder" in err and "non-empty folder" in err
    assert _all_bytes(out) == before


def test_writes_into_existing_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    path = simulate_study(tmp_path / "empty", n_clients=1, n_units=3, n_periods=1)
    assert (path / "study.yml").is_file()


# ------------------------------------------------------------------ parameter errors


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_clients": 0}, "`n_clients` must be an integer >= 1, but 0 was passed"),
    ({"n_units": 1}, "`n_units` must be an integer >= 2, but 1 was passed"),
    ({"n_periods": 2.5}, "`n_periods` must be an integer >= 1, but 2.5 was passed"),
    ({"seed": -1}, "`seed` must be a non-negative integer, but -1 was passed"),
    ({"ex_to_cx_typo": 1}, "unknown model option(s) ['ex_to_cx_typo']; allowed options are"),
    ({"icc": 0.95}, "`icc` must be in [0.01, 0.9], but 0.95 was passed"),
    ({"missing_rate": "lots"}, "`missing_rate` must be a number, but 'lots' was passed"),
    ({"min_group_size": 2}, "`min_group_size` must be an integer >= 3, but 2 was passed"),
    ({"driver_weights": (1, 2)}, "`driver_weights` must be 6 non-negative numbers"),
    ({"driver_weights": {"tools": 1}}, "`driver_weights` as a dict needs exactly the keys"),
    ({"ex_to_cx": 1.5, "cx_to_ex": 1.0}, "the EX <-> CX loop is not stationary"),
    ({"tau": 0.8}, "`tau` = 0.8 is too large for `ex_to_cx` = 0.35: more than 5%"),
])
def test_parameter_errors(tmp_path, kwargs, message):
    with pytest.raises(ParameterError) as info:
        simulate_study(tmp_path / "s", **kwargs)
    assert message in str(info.value)
    assert not (tmp_path / "s").exists()


def test_refuses_file_as_out(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(ParameterError, match="is a file"):
        simulate_study(target)


def test_driver_weights_dict_accepted(tmp_path):
    weights = {"tools": 1, "empowerment": 1, "training": 0, "knowledge": 0, "leader": 2,
               "flexibility": 0}
    path = simulate_study(tmp_path / "s", n_clients=1, n_units=4, n_periods=1,
                          driver_weights=weights)
    assert _truth(path)["pooled"]["driver_weights"] == {
        "tools": 0.25, "empowerment": 0.25, "training": 0.0, "knowledge": 0.0,
        "leader": 0.5, "flexibility": 0.0}


# ------------------------------------------------------------------ generator statistics


@pytest.fixture(scope="module")
def medium_study(tmp_path_factory):
    path = simulate_study(tmp_path_factory.mktemp("medium") / "s", n_clients=8, n_units=30,
                          n_periods=2, seed=11)
    cfg = _config(path)
    surveys = {c["id"]: pd.read_csv(path / "clients" / c["id"] / "survey.csv",
                                    dtype={"unit_id": str, "period": str})
               for c in cfg["clients"]}
    return path, cfg, surveys


def test_icc1_in_documented_range(medium_study):
    path, cfg, surveys = medium_study
    truth = _truth(path)
    for scale in LIKERT:
        values = [_icc1(g, scale)
                  for survey in surveys.values()
                  for _p, g in _respondent_scores(survey, cfg).groupby("period")]
        mean = float(np.mean(values))
        assert 0.05 <= mean <= 0.25, (scale, mean)
        expected = truth["measurement"]["expected_icc1_3_items"]
        assert mean == pytest.approx(expected, abs=0.04), scale


def test_cronbach_alpha_in_documented_range(medium_study):
    _path, cfg, surveys = medium_study
    survey = pd.concat(surveys.values())
    for scale in LIKERT:
        spec = cfg["scales"][scale]
        items = survey[spec["items"]].astype(float)
        for item in spec.get("reverse", []):
            items[item] = 6 - items[item]
        alpha, _ci = pg.cronbach_alpha(items, nan_policy="listwise")
        assert 0.70 <= alpha <= 0.90, (scale, alpha)


def test_reverse_items_are_stored_reversed(medium_study):
    _path, _cfg, surveys = medium_study
    survey = pd.concat(surveys.values())
    assert survey["tools_1"].corr(survey["tools_4"]) < -0.2
    assert survey["tools_1"].corr(survey["tools_2"]) > 0.2


def test_missingness_and_small_units(medium_study):
    path, cfg, surveys = medium_study
    items = [i for s in cfg["scales"].values() for i in s["items"]]
    survey = pd.concat(surveys.values())
    rate = survey[items].isna().to_numpy().mean()
    assert rate == pytest.approx(0.03, abs=0.004)
    sizes = pd.concat([s.groupby(["unit_id", "period"]).size() for s in surveys.values()])
    small = float((sizes < 5).mean())
    assert 0.03 <= small <= 0.13
    truth = _truth(path)
    assert small == pytest.approx(
        np.mean([tc["share_small_unit_periods"] for tc in truth["clients"]]), abs=1e-6)


def test_trends_make_virtuous_cycles_and_doom_loops(tmp_path):
    path = simulate_study(tmp_path / "s", n_clients=10, n_units=3, n_periods=6, seed=5,
                          trend_sd=0.3)
    truth = _truth(path)
    directions = {tc["direction"] for tc in truth["clients"]}
    assert {"improving", "declining"} <= directions
    loops = {tc["direction"]: tc["loop"] for tc in truth["clients"]}
    assert loops["improving"] == "virtuous cycle" and loops["declining"] == "doom loop"
    for tc in truth["clients"]:
        ex, cx = tc["latent_mean_path"]["ex"], tc["latent_mean_path"]["cx"]
        assert ex[0] == cx[0] == 0.0
        # EX moves first, CX follows in the same direction one period later
        assert np.sign(ex[1]) == np.sign(tc["trend"]) and cx[1] == 0.0
        assert np.sign(cx[-1]) == np.sign(tc["trend"])


def _big_client(tmp_path, n_units=6000, n_periods=1, **options):
    path = simulate_study(tmp_path / "big", n_clients=1, n_units=n_units, n_periods=n_periods,
                          seed=3, tau=0.0, **options)
    cfg = _config(path)
    panel = _unit_panel(path, "client-01", cfg)
    return _truth(path), panel[panel["n"] >= cfg["min_group_size"]]


def test_large_client_recovers_observed_estimand(tmp_path):
    truth, panel = _big_client(tmp_path, n_units=5000, n_periods=2)
    tc = truth["clients"][0]
    scales = [*LIKERT, "enps", "ex_composite"]
    first = panel[panel["period"] == "2025Q1"].set_index("unit_id")
    second = panel[panel["period"] == "2025Q2"].set_index("unit_id")
    se = 1 / np.sqrt(len(first) - 3)
    for scale in scales:
        z = np.arctanh(first[scale].corr(first["nps"]))
        assert z == pytest.approx(tc["z_observed"][scale], abs=3.5 * se), scale
    # lagged: EX at t with NPS at t+1, and NPS at t with EX at t+1
    both = first.add_suffix("_t").join(second.add_suffix("_t1"), how="inner")
    se = 1 / np.sqrt(len(both) - 3)
    lagged = tc["lagged"]
    for scale in ("tools", "engagement", "ex_composite"):
        z = np.arctanh(both[f"{scale}_t"].corr(both["nps_t1"]))
        expected = np.arctanh(lagged["ex_then_nps"]["rho_observed"][scale])
        assert z == pytest.approx(expected, abs=3.5 * se), scale
        z = np.arctanh(both["nps_t"].corr(both[f"{scale}_t1"]))
        expected = np.arctanh(lagged["nps_then_ex"]["rho_observed"][scale])
        assert z == pytest.approx(expected, abs=3.5 * se), scale
    # CX -> business outcomes within a period
    links = tc["outcome_links"]
    for outcome in ("revenue_growth", "turnover"):
        r = first[outcome].corr(first["nps"])
        assert np.arctanh(r) == pytest.approx(np.arctanh(links[f"rho_nps_{outcome}"]),
                                              abs=3.5 / np.sqrt(len(first) - 3)), outcome
    slope = np.polyfit(first["nps"], first["revenue_growth"], 1)[0]
    assert slope == pytest.approx(links["revenue_growth_per_nps_point"], rel=0.1)
    assert links["turnover_per_nps_point"] < 0 < links["revenue_growth_per_nps_point"]
    # the planted direction shows: EX leads NPS more than NPS leads EX (default paths)
    assert (lagged["ex_then_nps"]["rho_observed"]["ex_composite"]
            > lagged["nps_then_ex"]["rho_observed"]["ex_composite"])


def _delta_r2(panel: pd.DataFrame) -> float:
    panel = panel.dropna(subset=[*DRIVERS, "engagement", "nps"])

    def r2(cols):
        x = np.column_stack([np.ones(len(panel)), panel[cols].to_numpy()])
        y = panel["nps"].to_numpy()
        beta, *_ = np.linalg.lstsq(x, y, rcond=None)
        return 1 - np.var(y - x @ beta) / np.var(y)
    return r2([*DRIVERS, "engagement"]) - r2(list(DRIVERS))


def test_engagement_adds_nothing_to_cx_by_default_but_can(tmp_path):
    # the world these thresholds were set in (no stable unit traits, which dilute the
    # lagged engagement path); test_engagement_path_in_the_default_world covers the rest
    truth0, panel0 = _big_client(tmp_path / "a", n_units=3000, preset="classic")
    truth1, panel1 = _big_client(tmp_path / "b", n_units=3000, engagement_effect=0.6,
                                 preset="classic")
    assert panel0["engagement"].corr(panel0["ex_composite"]) > 0.5
    # same seed in both: the difference is the planted lagged engagement path. A small
    # increment remains by default because the measured drivers carry error that the
    # (correlated) engagement scale partly makes up for.
    assert _delta_r2(panel0) < 0.004
    assert _delta_r2(panel1) > _delta_r2(panel0) + 0.006
    assert truth1["clients"][0]["rho_observed"]["engagement"] > 0.4
    assert truth0["clients"][0]["rho_observed"]["engagement"] < 0.3


def test_per_client_correlations_cover_truth(tmp_path):
    """Per-client 95% Fisher-z CIs of r(scale, nps) cover truth.json's z about 95% of the time."""
    hits, errors = {"ex_composite": [], "tools": []}, {"ex_composite": [], "tools": []}
    for seed in (101, 102):
        path = simulate_study(tmp_path / f"s{seed}", n_clients=60, n_units=30, n_periods=2,
                              seed=seed)
        cfg, truth = _config(path), _truth(path)
        for tc in truth["clients"]:
            panel = _unit_panel(path, tc["client_id"], cfg)
            panel = panel[panel["n"] >= 5]
            for _period, g in panel.groupby("period"):
                se = 1 / np.sqrt(len(g) - 3)
                for scale in hits:
                    err = np.arctanh(g[scale].corr(g["nps"])) - tc["z_observed"][scale]
                    hits[scale].append(abs(err) <= 1.959964 * se)
                    errors[scale].append(err)
    for scale in hits:
        assert len(hits[scale]) == 240
        coverage = float(np.mean(hits[scale]))
        assert 0.90 <= coverage <= 0.99, (scale, coverage)
        bias = float(np.mean(errors[scale]))
        assert abs(bias) < 3 * np.std(errors[scale]) / np.sqrt(len(errors[scale])) + 0.01


@pytest.mark.slow
def test_random_effects_meta_recovers_pooled_estimand(tmp_path):
    """REML pooling of per-client r covers truth.json's population z_mean at ~95%."""
    meta = pytest.importorskip("exresearch.meta")
    hits, estimates = [], []
    for seed in range(40):
        path = simulate_study(tmp_path / f"s{seed}", n_clients=10, n_units=30, n_periods=1,
                              seed=1000 + seed)
        cfg, truth = _config(path), _truth(path)
        rows = []
        for client in truth["clients"]:
            panel = _unit_panel(path, client["client_id"], cfg)
            panel = panel[panel["n"] >= 5]
            rows.append({"r": panel["ex_composite"].corr(panel["nps"]), "n": len(panel)})
        res = meta.meta_analysis(pd.DataFrame(rows), method="REML")
        target = truth["pooled"]["observed"]["ex_composite"]["r_at_z_mean"]
        hits.append(res["ci_low"] <= target <= res["ci_high"])
        estimates.append(np.arctanh(res["estimate"]))
    assert 0.85 <= np.mean(hits) <= 1.0
    z_mean = truth["pooled"]["observed"]["ex_composite"]["z_mean"]
    assert np.mean(estimates) == pytest.approx(z_mean, abs=3 * np.std(estimates) / np.sqrt(40))


# ------------------------------------------------------------------ the package's pipeline


def test_unit_panel_agrees_with_the_estimand_definition(small_study):
    """aggregate.unit_panel computes unit scores exactly as truth.json's estimand defines."""
    study_mod = pytest.importorskip("exresearch.study")
    aggregate = pytest.importorskip("exresearch.aggregate")
    study = study_mod.load_study(small_study)
    cfg = _config(small_study)
    for client in study.clients:
        mine = _unit_panel(small_study, client, cfg).set_index(["unit_id", "period"])
        theirs = aggregate.unit_panel(study, client).set_index(["unit_id", "period"])
        theirs = theirs.loc[mine.index]
        for column in [*LIKERT, "enps", "nps", "turnover", "headcount"]:
            np.testing.assert_allclose(theirs[column].to_numpy(float),
                                       mine[column].to_numpy(float), atol=1e-9,
                                       err_msg=f"{client} {column}")
        assert (theirs["suppressed"] == (mine["n"] < 5)).all()


def test_pipeline_correlation_cis_cover_truth(tmp_path):
    """load_study -> unit_panel -> linkage.correlations: 95% CIs cover truth at ~95%."""
    study_mod = pytest.importorskip("exresearch.study")
    aggregate = pytest.importorskip("exresearch.aggregate")
    linkage = pytest.importorskip("exresearch.linkage")
    path = simulate_study(tmp_path / "s", n_clients=40, n_units=30, n_periods=2, seed=77)
    study = study_mod.load_study(path)
    truth = _truth(path)
    hits, lag_hits = [], []
    for tc in truth["clients"]:
        panel = aggregate.unit_panel(study, tc["client_id"])
        for _period, g in panel.groupby("period"):
            res = linkage.correlations(g, x=["tools", "engagement", "enps"], y="nps")
            for row in res.itertuples():
                hits.append(row.ci_low <= np.tanh(tc["z_observed"][row.x]) <= row.ci_high)
        # two periods: lag 1 pairs EX at t with NPS at t+1, lag -1 NPS at t with EX at t+1
        res = linkage.lagged_correlations(panel, x=["tools", "leader"], y="nps", lags=(1, -1),
                                          periods=truth["periods"])
        for row in res.itertuples():
            key = "ex_then_nps" if row.lag == 1 else "nps_then_ex"
            target = tc["lagged"][key]["rho_observed"][row.x]
            lag_hits.append(row.ci_low <= target <= row.ci_high)
    assert len(hits) == 240 and len(lag_hits) == 160
    assert 0.90 <= np.mean(hits) <= 0.99
    assert 0.88 <= np.mean(lag_hits) <= 1.0


def test_meta_recovers_heterogeneity_and_corrected_correlation(tmp_path):
    """With tau = 0.3 and 60 clients, REML tau and the Hunter-Schmidt corrected rho match truth."""
    meta = pytest.importorskip("exresearch.meta")
    # classic: without stable unit traits, whose shared variance dilutes tau on the z scale
    path = simulate_study(tmp_path / "s", n_clients=60, n_units=40, n_periods=1, seed=31,
                          tau=0.3, preset="classic")
    cfg, truth = _config(path), _truth(path)
    rows = []
    for tc in truth["clients"]:
        panel = _unit_panel(path, tc["client_id"], cfg)
        panel = panel[panel["n"] >= 5].dropna(subset=["tools", "nps"])
        rows.append({"r": panel["tools"].corr(panel["nps"]), "n": len(panel)})
    data = pd.DataFrame(rows)
    res = meta.meta_analysis(data, method="REML")
    pooled = truth["pooled"]["observed"]["tools"]
    assert pooled["tau_z"] == pytest.approx(0.13, abs=0.02)
    # large-sample SE of a tau^2 estimate: sqrt(2 / k) * (typical v + tau^2)
    v = float(np.mean(1 / (data["n"] - 3)))
    se_tau2 = np.sqrt(2 / len(data)) * (v + pooled["tau_z"] ** 2)
    assert abs(res["tau2"] - pooled["tau_z"] ** 2) < 3 * se_tau2
    assert res["ci_low"] <= pooled["r_at_z_mean"] <= res["ci_high"]
    rel = truth["measurement"]
    hs = meta.hunter_schmidt(data, rxx=rel["unit_score_reliability"]["tools"],
                             ryy=rel["nps_reliability"])
    latent = np.mean([tc["rho_latent"]["tools"] for tc in truth["clients"]])
    assert hs["rho_ci_low"] <= latent <= hs["rho_ci_high"]
    assert hs["rho"] == pytest.approx(latent, abs=0.06)


# ------------------------------------------------------------------ realism: traits, presets


def test_presets_record_their_world(tmp_path):
    null = _truth(simulate_study(tmp_path / "n", n_clients=2, n_units=6, n_periods=3, seed=4,
                                 preset="null"))
    assert null["arguments"]["preset"] == "null"
    assert null["options"]["ex_to_cx"] == null["options"]["cx_to_ex"] == 0.0
    assert null["options"]["ex_trait_share"] == 0.5 and null["options"]["cx_trait_share"] == 0.5
    pooled = null["pooled"]
    assert pooled["traits"]["correlation_driver_cx"] == 0.4
    # six drivers correlated 0.5, each 0.4 with the CX trait: composite 0.4 * sqrt(6 / 3.5)
    assert pooled["traits"]["correlation_ex_composite_cx"] == pytest.approx(
        0.4 * np.sqrt(6 / 3.5), abs=1e-6)
    assert pooled["zero_weight_drivers"] == ["flexibility"]
    for tc in null["clients"]:
        assert tc["loop"] == "no loop"
        assert tc["paths_within"]["ex_to_cx"] == 0.0
        assert tc["paths_within"]["cx_to_weighted_ex"] == 0.0
        lag = tc["lagged"]
        # only the traits link EX and CX: EX-then-CX equals CX-then-EX, and both are > 0
        for scale in ("tools", "ex_composite"):
            a = lag["ex_then_nps"]["rho_observed"][scale]
            b = lag["nps_then_ex"]["rho_observed"][scale]
            assert a == pytest.approx(b, abs=1e-6) and a > 0.05
    default = _truth(simulate_study(tmp_path / "d", n_clients=1, n_units=6, n_periods=3, seed=4))
    tc = default["clients"][0]
    assert tc["loop"] in {"virtuous cycle", "doom loop", "reciprocal loop"}
    assert tc["paths_within"]["ex_to_cx"] > 0 and tc["paths_within"]["cx_to_weighted_ex"] > 0
    assert default["options"]["ex_to_revenue_growth"] == 0.75
    assert default["outcomes"]["ex_to_revenue_growth"] == 0.75
    classic = _truth(simulate_study(tmp_path / "c", n_clients=1, n_units=6, n_periods=3,
                                    seed=4, preset="classic"))
    assert classic["pooled"]["traits"]["correlation_weighted_ex_cx"] == 0.0
    # options given explicitly win over the preset
    mixed = _truth(simulate_study(tmp_path / "m", n_clients=1, n_units=6, n_periods=3, seed=4,
                                  preset="null", cx_to_ex=0.2))
    assert mixed["options"]["cx_to_ex"] == 0.2 and mixed["options"]["ex_to_cx"] == 0.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"preset": "bogus"}, "`preset` must be one of ['reciprocal', 'null', 'ex_leads', "
                          "'cx_leads', 'classic'], but 'bogus' was passed"),
    ({"trait_correlation": 0.9}, "`trait_correlation` must be below 0.764 in size with "
                                 "driver_correlation=0.5"),
    ({"ex_trait_share": 0.95}, "`ex_trait_share` must be in [0, 0.9], but 0.95 was passed"),
    ({"innovation_correlation": 0.8}, "`innovation_correlation` must be below 0.764 in size "
                                      "with driver_correlation=0.5 (the six driver innovations "
                                      "would not fit one CX innovation), but 0.8 was passed"),
    ({"innovation_correlation": 1.2}, "`innovation_correlation` must be in [-0.95, 0.95], "
                                      "but 1.2 was passed"),
])
def test_realism_parameter_errors(tmp_path, kwargs, message):
    with pytest.raises(ParameterError) as info:
        simulate_study(tmp_path / "s", **kwargs)
    assert message in str(info.value)
    assert not (tmp_path / "s").exists()


def test_stable_traits_and_size_dependent_noise_in_the_data(tmp_path):
    """NPS autocorrelation two periods apart = the stable share plus what the AR part keeps;
    NPS noise variance falls as 1 / headcount."""
    path = simulate_study(tmp_path / "s", n_clients=1, n_units=4000, n_periods=3, seed=8,
                          preset="null", trend_sd=0.0)
    truth = _truth(path)
    o = truth["options"]
    out = pd.read_csv(path / "clients" / "client-01" / "outcomes.csv",
                      dtype={"unit_id": str, "period": str})
    wide = out.pivot(index="unit_id", columns="period", values="nps")
    head = out.groupby("unit_id")["headcount"].first().loc[wide.index].to_numpy(float)
    inv = o["mean_headcount"] / head  # k_u^2 with outcome_noise_size_power = 0.5
    s, phi = o["cx_trait_share"], o["cx_autoregression"]
    rho2 = s + (1 - s) * phi**2  # corr of latent CX two periods apart (no cross-lags)
    var_nps = o["nps_scale"] ** 2 + o["nps_noise"] ** 2 * inv.mean()
    expected = o["nps_scale"] ** 2 * rho2 / var_nps
    r = np.corrcoef(wide["2025Q1"], wide["2025Q3"])[0, 1]
    se = (1 - expected**2) / np.sqrt(len(wide))
    assert r == pytest.approx(expected, abs=3.5 * se)
    # squared change between consecutive periods: 2 (1 - rho1) scale^2 + 2 noise^2 k_u^2
    d2 = (wide["2025Q2"] - wide["2025Q1"]).to_numpy() ** 2
    x = np.column_stack([np.ones(len(inv)), inv])
    beta, res, *_ = np.linalg.lstsq(x, d2, rcond=None)
    resid = d2 - x @ beta
    cov = np.linalg.inv(x.T @ x) * (resid @ resid) / (len(d2) - 2)
    slope_se = np.sqrt(cov[1, 1])
    assert beta[1] == pytest.approx(2 * o["nps_noise"] ** 2, abs=3.5 * slope_se)
    assert beta[1] > 4 * slope_se  # clearly more noise in small units


def test_cli_simulate_preset(tmp_path):
    out = tmp_path / "s"
    assert main(["simulate", str(out), "--clients", "1", "--units", "4", "--periods", "3",
                 "--seed", "1", "--preset", "null"]) == 0
    assert _truth(out)["arguments"]["preset"] == "null"


# ------------------------------------------------------------------ shared shocks

# sha256 of every file of two small studies written by the generator before
# `innovation_correlation` existed (commit bd6d9ce); truth.json without the option's line
_BEFORE_SHARED_SHOCKS = {
    "null": {
        "clients/client-01/outcomes.csv": "3168792048c7f6b460c6a04859b37c3be1a2bea49136e14121f2400b9fb0dce1",
        "clients/client-01/survey.csv": "c3cb6c29f5be55df396bf9a775f96aba8675f21a7150f9350c247e7eae77bf5e",
        "clients/client-02/outcomes.csv": "7d4e5722764d65b66ae7f11b74cef1f778db4c744151513614ee10a157e8e737",
        "clients/client-02/survey.csv": "a220c99d13b6aa3e5186b83a05a2f63483b00dab652c8ee9688ab07153885a27",
        "study.yml": "8fc5d0d198af5c45518d447f0cd868b00feb8a7910a44b5fa36f5214ccd1a7b3",
        "truth.json": "75b270ddeda6bdb6a811784c52eb8cb0cbcd2ca62e2245aa4e0710d9069f5b29",
    },
    "reciprocal": {
        "clients/client-01/outcomes.csv": "6d613d82e4150105c110441802056486dcc92cc19dedc2878f0e52e18a280dd1",
        "clients/client-01/survey.csv": "089788ef530cd121d509a26da61cdd99d2cebf5e2524ccf2b2ee260630e7bb97",
        "clients/client-02/outcomes.csv": "b5fe9e7ef2576dba7f0d5f765762f6d3c63210f2f8f02a21fe37af99cef234c4",
        "clients/client-02/survey.csv": "670fe739a894ec32f3869048255e938ac015024c2328698b45bc718fc7cbadb1",
        "study.yml": "8fc5d0d198af5c45518d447f0cd868b00feb8a7910a44b5fa36f5214ccd1a7b3",
        "truth.json": "5850dd080b4cca14314cb64fccaaa00ea84287baa06102d136934e8599610595",
    },
}


@pytest.mark.parametrize("preset", ["null", "reciprocal"])
def test_innovation_correlation_zero_keeps_every_byte(tmp_path, preset):
    """The default (0) draws exactly what the generator drew before the option existed;
    truth.json only gains the option's line."""
    import hashlib

    args = {"n_clients": 2, "n_units": 12, "n_periods": 3, "seed": 5, "preset": preset}
    files = _all_bytes(simulate_study(tmp_path / "a", **args))
    line = b'    "innovation_correlation": 0.0,\n'
    assert files["truth.json"].count(line) == 1
    files["truth.json"] = files["truth.json"].replace(line, b"", 1)
    digests = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
    assert digests == _BEFORE_SHARED_SHOCKS[preset]
    explicit = _all_bytes(simulate_study(tmp_path / "b", **args, innovation_correlation=0.0))
    explicit["truth.json"] = explicit["truth.json"].replace(line, b"", 1)
    assert explicit == files


def test_shared_shocks_correlate_ex_and_cx_within_units(tmp_path):
    """innovation_correlation c: in the null world (diagonal transition, within variances
    1) the stationary within-unit covariance of a driver and CX is
    c sqrt((1 - a_x^2)(1 - a_y^2)) / (1 - a_x a_y); with the traits (variance 1 each,
    correlated 0.4) the latent same-period correlation is (that + 0.4) / 2. The data
    recover truth.json's observed correlation."""
    path = simulate_study(tmp_path / "s", n_clients=1, n_units=3000, n_periods=1, seed=9,
                          preset="null", tau=0.0, innovation_correlation=0.5)
    truth = _truth(path)
    assert truth["options"]["innovation_correlation"] == 0.5
    ax, ay = MODEL_DEFAULTS["ex_autoregression"], MODEL_DEFAULTS["cx_autoregression"]
    within = 0.5 * np.sqrt((1 - ax**2) * (1 - ay**2)) / (1 - ax * ay)
    tc = truth["clients"][0]
    assert tc["rho_latent"]["tools"] == pytest.approx((within + 0.4) / 2, abs=1e-6)
    assert tc["paths_within"]["ex_to_cx"] == 0.0  # still no lagged effect
    cfg = _config(path)
    panel = _unit_panel(path, "client-01", cfg)
    panel = panel[panel["n"] >= cfg["min_group_size"]]
    z = np.arctanh(panel["ex_composite"].corr(panel["nps"]))
    assert z == pytest.approx(tc["z_observed"]["ex_composite"], abs=3.5 / np.sqrt(len(panel) - 3))
    plain = _truth(simulate_study(tmp_path / "p", n_clients=1, n_units=6, n_periods=1, seed=9,
                                  preset="null", tau=0.0))
    assert plain["clients"][0]["rho_latent"]["tools"] == pytest.approx(0.2, abs=1e-6)
    assert tc["z_observed"]["ex_composite"] > plain["clients"][0]["z_observed"]["ex_composite"] + 0.2
