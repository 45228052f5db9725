"""exresearch.report helpers that the notebooks call, checked against the analysis modules
they wrap (the same numbers computed by hand), and the figure functions of exresearch.plots
that replaced figures drawn in notebook cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exresearch import meta, report
from exresearch.exceptions import ParameterError
from exresearch.study import load_study


@pytest.fixture(scope="module")
def study(small_study):
    return load_study(small_study)


@pytest.fixture(scope="module")
def roles(study):
    return report.measure_roles(study.config)


@pytest.fixture(scope="module")
def panels(study, roles):
    return {c: report.client_panel(study, c, roles) for c in study.clients}


# ----------------------------------------------------------------------------- vocabulary
def test_styled_uses_the_shared_vocabulary_and_rename_wins():
    df = pd.DataFrame({"outcome": ["nps"], "n": [30], "r": [0.31], "ci_low": [0.1],
                       "ci_high": [0.5], "p_corr": [0.02]})
    cols = list(report.styled(df, rename={"n": "clients"}).data.columns)
    assert cols == ["outcome", "clients", "r", "95% CI low", "95% CI high", "p (adjusted)"]


def test_headers_never_make_two_columns_alike():
    h = report.headers(["ci_low", "impact_low", "money_ci_low"])
    assert h == {}  # all three would read "95% CI low"
    assert report.headers(["ci_low", "impact_low"], rename={"ci_low": "alpha CI low"}) == {
        "impact_low": "95% CI low", "ci_low": "alpha CI low"}


# ----------------------------------------------------------------------------- parameters
def test_list_parameters_are_checked_with_the_value_in_the_message():
    assert report.check_number_list("g", "3, 5,8", lo=2, integer=True) == (3, 5, 8)
    with pytest.raises(ParameterError, match=r"`g` must be integers >= 2 .* but '1, 5' was passed"):
        report.check_number_list("g", "1, 5", lo=2, integer=True)
    with pytest.raises(ParameterError, match="but 'nan' was passed"):
        report.check_number_list("g", "nan")
    with pytest.raises(ParameterError, match="but True was passed"):
        report.check_int_list("lags", True)
    assert report.check_names("outcomes", " sales ,nps", ["nps", "sales"]) == ["sales", "nps"]
    with pytest.raises(ParameterError, match="but None was passed"):
        report.check_names("outcomes", None, ["nps"])


def test_quiet_known_warnings_silences_only_the_listed_ones():
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        report.quiet_known_warnings()
        for message, category in [
                ("meta-analysis needs at least 2 correlations, but k = 1; returning NaN",
                 UserWarning),
                ("benchmark withheld for ['nps'] (see the `reason` column)", UserWarning),
                ("a new problem", UserWarning),
                ("returning NaN", RuntimeWarning)]:  # not a UserWarning: still shown
            warnings.warn(message, category, stacklevel=2)
    assert [str(w.message) for w in seen] == ["a new problem", "returning NaN"]


# ----------------------------------------------------------------------------- several clients
def test_pooled_loop_classifies_the_pooled_paths_with_the_pooled_trend(study, roles, panels):
    from exresearch.direction import LOOP_LABELS

    names = report.display_names(study)
    by_client = report.cross_lagged_by_client(panels, x=roles.ex, y=roles.primary_cx,
                                              periods=list(study.config.periods), names=names)
    assert list(by_client["client"].unique()) == list(names.values())
    paths = report.pool_paths(by_client)
    got = report.pooled_loop(paths, by_client, roles=roles)
    per = by_client.groupby("client")[["trend_sd", "trend_se"]].first()
    trend = report.pool_estimates(per, estimate="trend_sd", se="trend_se")["estimate"]
    assert got["trend_sd"].iloc[0] == pytest.approx(trend)
    assert got["label"].iloc[0] in LOOP_LABELS


def test_pooled_correlations_follow_the_study_order(study, roles):
    means = report.all_unit_means(study, roles)
    pc = report.per_client_correlations(means, x=roles.ex_measures, y=roles.outcomes)
    pooled = report.pooled_correlations(pc, roles=roles, method="DL")
    assert list(pooled["x"].drop_duplicates()) == [x for x in roles.ex_measures if x in set(pc["x"])]
    row = pooled[(pooled["x"] == roles.ex) & (pooled["y"] == roles.primary_cx)].iloc[0]
    focus = pc[(pc["x"] == roles.ex) & (pc["y"] == roles.primary_cx)].dropna(subset=["r"])
    assert row["estimate"] == pytest.approx(meta.meta_analysis(focus, method="DL")["estimate"])


def test_utility_and_reliability_per_client(study, roles, panels):
    from exresearch.economics import quartile_utility

    names = report.display_names(study)
    means = report.all_unit_means(study, roles, panels=panels)
    u = report.utility_by_client(means, x=roles.ex, y=roles.outcomes, names=names, n_boot=100,
                                 seed=1)
    one = quartile_utility(means[means["client_id"] == study.clients[1]], x=roles.ex,
                           y=roles.outcomes, n_boot=100, seed=1)
    got = u[u["client"] == names[study.clients[1]]].drop(columns="client").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, one)



def test_headline_cards_say_the_pooled_numbers():
    roles = report.Roles(drivers=[], engagement=[], nps=[], likert=[], ex_measures=["ex"],
                         cx=["nps"], business=[], outcomes=["nps"], primary_cx="nps", money=None,
                         labels={"ex": "EX index", "nps": "NPS"})
    main = pd.Series({"estimate": 0.314, "ci_low": 0.2, "ci_high": 0.4, "k": 5, "n": 150,
                      "i2": 0.25, "pi_low": 0.05, "pi_high": 0.55})
    loop = pd.DataFrame({"label": ["EX leads"], "x_to_y": [0.12], "y_to_x": [0.01]})
    # the value card quotes the REML-pooled study utility (synthesis.study_utility)
    from exresearch import synthesis

    rng = np.random.default_rng(5)
    frames = []
    for c in "abcde":
        e = rng.normal(size=30)
        frames.append(pd.DataFrame({"client_id": c, "ex": e, "nps": 8 * e + rng.normal(0, 8, 30)}))
    util = synthesis.study_utility(pd.concat(frames), x="ex", outcomes=["nps"], method="REML")
    q = util[util["measure"] == "quartile_diff"].iloc[0]
    assert q["k"] == 5 and q["estimate"] > 5  # a real difference to quote
    cards = report.headline_cards(main=main, pooled_loop=loop, utility=util, roles=roles,
                                  n_focus=5)
    assert [c[1] for c in cards] == ["r = 0.31", "I² = 25%", "EX leads", f"{q['estimate']:.1f}"]
    assert cards[0][2] == "95% CI 0.20 to 0.40; 5 clients, 150 units"
    assert cards[3] == ("NPS: top minus bottom quarter of units on EX index",
                        f"{q['estimate']:.1f}",
                        f"pooled over 5 clients; 95% CI {q['ci_low']:.1f} to {q['ci_high']:.1f}")
    none = report.headline_cards(main=None, pooled_loop=loop, utility=util.iloc[0:0],
                                 roles=roles, n_focus=1)
    assert none == [("Pooled link: EX index and NPS", "not estimable",
                     "1 client(s) with enough units; at least 2 are needed")]
    # the older per-client average is refused with the columns it has
    old = pd.DataFrame({"y": ["nps"], "mean_diff": [8.04], "clients": [5]})
    with pytest.raises(ParameterError, match=r"study_utility .*\['y', 'mean_diff', 'clients'\]"):
        report.headline_cards(main=main, pooled_loop=loop, utility=old, roles=roles, n_focus=5)


# ----------------------------------------------------------------------------- one client, study team
def test_quality_and_overview_per_client(study, roles, panels):
    from exresearch.scoring import reliability

    surveys = {c: report.reported_survey(study, c, panels[c]) for c in study.clients}
    q = report.quality_by_client(study, surveys)
    c = study.clients[2]
    alpha = reliability(surveys[c], scales=study.config.scales, points=study.config.points)
    got = q[q["client_id"] == c].set_index("scale")["alpha"]
    assert got.to_dict() == pytest.approx(alpha.set_index("scale")["alpha"].to_dict(), nan_ok=True)
    assert {"icc1", "icc2", "rwg_j_mean"} <= set(q.columns)
    ov = report.client_overview(study, panels)
    assert list(ov["client_id"]) == study.clients and "name" not in ov.columns
    answered = panels[c][panels[c]["n_respondents"] > 0]
    assert ov.iloc[2]["units"] == answered["unit_id"].nunique()
    grid = report.scale_grid(q, "alpha", study=study, roles=roles)
    assert list(grid.index) == study.clients
    assert list(grid.columns) == [roles.label(s) for s in study.config.scales]


def test_data_quality_tables_by_client(study, panels):
    # the data-quality report's per-client tables (quality_inputs, uncached) are each
    # client's own table stacked with its client_id, clients without rows left out
    from exresearch.report.panels import missingness, response_counts, suppressed_units

    cfg = study.config
    surveys = {c: report.reported_survey(study, c, panels[c]) for c in study.clients}
    q = report.quality_inputs(study, panels=panels, cache=False)
    for got, one in [
        (q.counts, lambda c: response_counts(panels[c], periods=cfg.periods)),
        (q.missing, lambda c: missingness(surveys[c], scales=cfg.scales)),
        (q.suppressed, lambda c: suppressed_units(panels[c], min_group_size=cfg.min_group_size)),
    ]:
        assert list(dict.fromkeys(got["client_id"])) == [
            c for c in study.clients if len(one(c))]
        for c in study.clients:
            part = got[got["client_id"] == c].drop(columns="client_id").reset_index(drop=True)
            pd.testing.assert_frame_equal(part, one(c).reset_index(drop=True),
                                          check_dtype=False)
    assert len(q.suppressed)  # the fixture has suppressed units


def test_current_design_and_clients_needed(study, roles, panels):
    d = report.current_design(study, panels, roles=roles)
    assert d["clients"] == len(study.clients)
    shown = pd.concat([p[~p["suppressed"] & (p["n_respondents"] > 0)].assign(client_id=c)
                       for c, p in panels.items()])
    assert d["respondents_per_unit"] == max(1, round(shown["n_respondents"].median()))
    assert report.check_designs(d)[0] == (d["clients"], d["units_per_client"])
    g = pd.DataFrame({"n_clients": [3, 5, 3, 5], "n_units": [10, 10, 20, 20],
                      "power": [0.5, 0.95, 0.92, 0.99]})
    assert report.clients_needed(g, units=[10, 20], target=0.9).values.tolist() == [[10, 5],
                                                                                  [20, 3]]
    assert list(report.clients_needed(g, units=[10], target=0.8).columns) == [
        "n_units", "clients_for_80pct_power"]


# ----------------------------------------------------------------------------- figures
def test_figure_functions_draw_what_the_notebooks_drew():
    import matplotlib.pyplot as plt

    from exresearch import plots

    ax = plots.plot_unit_counts(pd.DataFrame({"client_id": ["a", "a", "b"],
                                              "units_reported": [3, 4, 5],
                                              "units_suppressed": [1, 0, 2]}), min_group_size=5)
    widths = sorted(float(p.get_width()) for p in ax.patches)
    assert widths == [1.0, 2.0, 5.0, 7.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()][1] == (
        "suppressed (fewer than 5 respondents)")
    plt.close("all")
    grid = pd.DataFrame({"n_clients": [5, 10], "n_units": [10, 10], "power": [0.3, 0.9]})
    ax = plots.plot_power(grid, x="n_clients", target=0.9)
    assert [line.get_ydata()[0] for line in ax.get_lines()][-1] == 0.9  # the target line
    plt.close("all")
    with pytest.raises(ParameterError, match="lacks column"):
        plots.plot_interval_bars(pd.DataFrame({"a": [1]}), label="a", value="v", low="l",
                                 high="h")


@pytest.mark.parametrize("make", [
    lambda c: pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"]}),            # the usual case
    lambda c: pd.DataFrame({"x": pd.Series([], dtype=float)}) if c == "b"  # an empty client
    else pd.DataFrame({"x": [1.5]}),
    lambda c: None if c == "a" else pd.DataFrame({"x": [3.0]}),           # a client left out
    lambda c: pd.DataFrame({"client_id": ["?"], "x": [1.0]}),             # replaced in place
    lambda c: pd.DataFrame({"x": [1.0]}) if c == "a"                      # other columns
    else pd.DataFrame({"y": [2], "x": [0.5]}),
    lambda c: None,                                                       # nothing at all
])
def test_per_client_is_assign_then_concat(make):
    """per_client adds client_id once to the stack: the same frame (columns, their order
    and dtypes, values) as assigning client_id to each client's table and stacking them."""
    from pandas.testing import assert_frame_equal

    from exresearch.report.client import per_client

    class Study:
        clients = ["a", "b", "c"]

    frames = [make(c).assign(client_id=c) for c in Study.clients if make(c) is not None]
    expected = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    got = per_client(Study, make)
    assert_frame_equal(got, expected, check_exact=True)
    assert list(got.columns) == list(expected.columns)
    if len(got):
        assert got["client_id"].tolist() == [c for c in Study.clients if make(c) is not None
                                             for _ in range(len(make(c)))]


def test_a_synthesis_part_fits_each_riclpm_once_and_gives_what_separate_fits_gave(
        tmp_path, monkeypatch):
    """The synthesis part's paths (EX -> primary CX) and within paths (EX -> each outcome)
    share one RI-CLPM per outcome (``fits=``): the same frames, bit for bit, as each
    function fitting its own models, with one fit per outcome instead of one more."""
    from exresearch import riclpm, synthesis
    from exresearch.report import summaries
    from exresearch.simulate import simulate_study

    study = load_study(simulate_study(tmp_path / "study", n_clients=1, n_units=24,
                                      n_periods=3, seed=5))
    roles = report.measure_roles(study.config)
    cid, periods = study.clients[0], list(study.config.periods)
    panel = report.client_panel(study, cid, roles)
    one = {cid: panel}
    want = {"paths": report.cross_lagged_by_client(one, x=roles.ex, y=roles.primary_cx,
                                                   periods=periods),
            "within": [synthesis.within_paths_by_client(one, x=roles.ex, y=y, periods=periods)
                       for y in roles.outcomes]}
    assert want["paths"]["estimate"].notna().all()  # fitted, not NaN with a note
    calls = []
    real = riclpm.riclpm
    monkeypatch.setattr(riclpm, "riclpm",
                        lambda *a, **k: calls.append(k["y"]) or real(*a, **k))
    part = summaries._synthesis_part(study, cid, panel, roles, n_boot=100, seed=1)
    assert roles.primary_cx in roles.outcomes
    assert calls == roles.outcomes  # one fit per outcome (there was one more, of the CX)
    pd.testing.assert_frame_equal(part["paths"], want["paths"], check_exact=True)
    assert len(part["within"]) == len(want["within"])
    for got, frame in zip(part["within"], want["within"], strict=True):
        pd.testing.assert_frame_equal(got, frame, check_exact=True)
        assert got.attrs == frame.attrs == {}
    with pytest.raises(ParameterError, match=r"`fits` are riclpm\(\) results, but "
                                             r"method='clpm'"):
        report.cross_lagged_by_client(one, x=roles.ex, y=roles.primary_cx, periods=periods,
                                      method="clpm", fits={cid: part["paths"]})
