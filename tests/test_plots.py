"""Tests of exresearch.plots: the drawn artists, not only that a figure appeared."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import QuadMesh
from matplotlib.patches import FancyArrowPatch

from exresearch import ParameterError, plots
from exresearch import linkage as lk

# conftest.py sets MPLBACKEND=Agg before matplotlib is imported
assert matplotlib.get_backend().lower() == "agg"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def panel(rng):
    n_units, periods = 25, ["2023", "2024", "2025"]
    ex = rng.normal(size=(n_units, 3))
    cx = 0.5 * ex + rng.normal(size=(n_units, 3))
    return pd.DataFrame({
        "unit_id": np.repeat([f"u{i}" for i in range(n_units)], 3),
        "period": np.tile(periods, n_units),
        "ex": ex.ravel(), "growth": rng.normal(size=n_units * 3) + 3,
        "cx": cx.ravel(), "sales": rng.normal(size=n_units * 3),
    })


def test_heatmap_draws_one_cell_and_label_per_pair(panel):
    tab = lk.correlation_table(panel, x=["ex", "growth"], y=["cx", "sales"], n_boot=50, seed=1,
                               unit="unit_id")
    fig, ax = plt.subplots()
    out = plots.plot_correlation_heatmap(tab, method="spearman", ax=ax)
    assert out is ax
    mesh = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(mesh) == 1 and mesh[0].get_array().size == 4
    sub = tab[tab.method == "spearman"]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 4
    assert texts[0].startswith(f"{sub.r.iloc[0]:.2f}")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ex", "growth"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cx", "sales"]
    assert "spearman" in ax.get_title()
    with pytest.raises(ParameterError, match=r"`method` must be one of \['pearson', 'spearman'\], but 'kendall'"):
        plots.plot_correlation_heatmap(tab, method="kendall")


def test_heatmap_leaves_undefined_cells_blank():
    tab = pd.DataFrame({"x": ["ex", "ex"], "y": ["cx", "sales"], "r": [0.5, np.nan],
                        "p_corr": [0.0001, np.nan]})
    ax = plots.plot_correlation_heatmap(tab)
    assert [t.get_text() for t in ax.texts] == ["0.50***"]


def test_lagged_plot_one_errorbar_per_pair(panel):
    lag = lk.lagged_correlations(panel, x="ex", y=["cx", "sales"], lags=(0, 1, 2))
    ax = plots.plot_lagged(lag)
    assert len(ax.containers) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ex → cx", "ex → sales"]
    assert list(ax.get_xticks()) == [0, 1, 2]
    line = ax.containers[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), lag[lag.y == "cx"].r)


def test_cross_lagged_diagram_has_four_arrows_and_coefficients(panel):
    cl = lk.cross_lagged(panel, x="ex", y="cx")
    fig, ax = plt.subplots()
    assert plots.plot_cross_lagged(cl, ax=ax) is ax
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 4
    texts = [t.get_text() for t in ax.texts]
    for node in ("ex\n[t]", "cx\n[t]", "ex\n[t+1]", "cx\n[t+1]"):
        assert node in texts
    for _, row in cl.iterrows():
        star = "*" if row.p_val < 0.05 else ""
        assert f"{row.estimate:.2f}{star}" in texts
    # significant paths are solid and thicker
    widths = sorted(a.get_linewidth() for a in arrows)
    n_sig = int((cl.p_val < 0.05).sum())
    assert widths.count(2.0) == n_sig


def test_cross_lagged_diagram_rejects_wrong_input():
    with pytest.raises(ParameterError, match=r"`cl` lacks column\(s\) \['kind'"):
        plots.plot_cross_lagged(pd.DataFrame({"source": [], "target": []}))


def test_driver_quadrant_points_labels_and_medians(rng):
    d = pd.DataFrame(rng.normal(3.5, 0.4, size=(40, 4)), columns=["a", "b", "c", "d"])
    d["cx"] = d.a + 0.6 * d.b + rng.normal(0, 0.3, size=40)
    pr = lk.driver_priorities(d, y="cx", drivers=list("abcd"),
                              scores={"a": 3.0, "b": 4.2, "c": 3.1, "d": 4.0}, n_boot=50, seed=1)
    ax = plots.plot_driver_quadrant(pr)
    offsets = ax.collections[0].get_offsets()
    assert len(offsets) == 4
    np.testing.assert_allclose(np.asarray(offsets)[:, 0], pr.performance)
    colors = ax.collections[0].get_facecolors()
    red = matplotlib.colors.to_rgba("#D55E00")  # the house palette's vermillion
    assert [tuple(c) == red for c in colors] == pr.priority.tolist()
    assert {t.get_text() for t in ax.texts} >= {"a", "b", "c", "d", "priority: fix first"}
    assert len(ax.lines) == 2
    assert ax.lines[0].get_xdata()[0] == pytest.approx(pr.performance.median())


def test_unit_spread_one_dot_per_unit(panel):
    one = panel[panel.period == "2025"].copy()
    one.loc[one.index[0], "growth"] = np.nan
    ax = plots.plot_unit_spread(one, scales=["ex", "growth"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ex", "growth"]
    dots = [c for c in ax.collections if len(c.get_offsets())]
    assert [len(c.get_offsets()) for c in dots] == [25, 24]
    assert ax.get_ylabel() == "Unit mean"


# ------------------------------------------------- data quality at many clients (issue 20)
def _quality_grid(n, seed=3):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.uniform(0.5, 0.95, (n, 4)), columns=["tools", "leader", "training",
                                                                  "engagement"],
                        index=[f"Client {i:03d}" for i in range(n)])


def test_client_grid_up_to_max_rows_is_the_heatmap():
    from exresearch.style import figure_pixels

    grid = _quality_grid(12)
    kw = {"fmt": ".2f", "cmap": "RdYlGn", "vmin": 0.5, "vmax": 0.9, "cbar_label": "alpha"}
    a = plots.plot_client_grid(grid, max_rows=12, **kw)
    b = plots.plot_heatmap(grid, **kw)
    assert np.array_equal(figure_pixels(a.figure), figure_pixels(b.figure))
    assert len(a.texts) == 48
    plt.close("all")


def test_client_grid_beyond_max_rows_is_compact_and_names_every_client():
    grid = _quality_grid(300)
    ax = plots.plot_client_grid(grid, max_rows=40, fmt=".2f", cmap="Oranges", vmin=0,
                                cbar_label="% missing")
    assert len(ax.texts) == 0  # no value written in a cell
    assert ax.figure.get_figheight() == pytest.approx(0.8 + 0.11 * 300)
    labels = ax.get_yticklabels()
    assert [t.get_text() for t in labels] == list(grid.index)
    assert {t.get_fontsize() for t in labels} == {5}
    assert ax.xaxis.get_major_ticks()[0].label2.get_visible()  # scale names on top too
    mesh = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(mesh) == 1 and mesh[0].get_array().shape == (300, 4)
    plt.close("all")


def test_unit_counts_compact_beyond_max_rows_and_unchanged_below():
    from exresearch.style import figure_pixels

    c = pd.DataFrame({"client_id": np.repeat([f"c{i}" for i in range(50)], 2),
                      "units_reported": 20, "units_suppressed": np.tile([0, 2], 50)})
    full = plots.plot_unit_counts(c, min_group_size=5)
    same = plots.plot_unit_counts(c, min_group_size=5, max_rows=50)
    assert np.array_equal(figure_pixels(full.figure), figure_pixels(same.figure))
    assert full.figure.get_figheight() == pytest.approx(0.35 * 50 + 1.5)
    small = plots.plot_unit_counts(c, min_group_size=5, max_rows=40)
    assert small.figure.get_figheight() == pytest.approx(0.11 * 50 + 1.5)
    assert [t.get_text() for t in small.get_yticklabels()] == [f"c{i}" for i in range(49, -1, -1)]
    assert {t.get_fontsize() for t in small.get_yticklabels()} == {5}
    assert len(small.patches) == 100  # reported and suppressed bars of every client
    plt.close("all")


@pytest.mark.parametrize("bad", [0, 2.5, True, "40"])
def test_quality_max_rows_errors_name_the_value(bad):
    with pytest.raises(ParameterError, match=rf"`max_rows` .* but {bad!r} was passed"):
        plots.plot_client_grid(_quality_grid(3), max_rows=bad)
    with pytest.raises(ParameterError, match=rf"`max_rows` .* but {bad!r} was passed"):
        plots.plot_unit_counts(pd.DataFrame({"client_id": ["a"], "units_reported": [1],
                                             "units_suppressed": [0]}),
                               min_group_size=5, max_rows=bad)


def test_compact_quality_figures_set_tick_sizes_first_with_the_same_pixels():
    """The compact figures size their client ticks before making them (cheaper than
    changing 300 ticks): the pixels of the previous order, ticks changed afterwards."""
    from exresearch.style import figure_pixels

    c = pd.DataFrame({"client_id": np.repeat([f"Client {i:03d}" for i in range(60)], 2),
                      "units_reported": np.arange(120) % 7 + 10,
                      "units_suppressed": np.tile([0, 3], 60)})
    ax = plots.plot_unit_counts(c, min_group_size=5, max_rows=40)
    by_client = c.groupby("client_id", sort=False)[["units_reported", "units_suppressed"]].sum()
    _, ref = plt.subplots(figsize=(8, 0.11 * 60 + 1.5))  # the previous order
    by_client.iloc[::-1].plot.barh(stacked=True, ax=ref, color=["C0", "C3"], width=0.8)
    ref.tick_params(axis="y", labelsize=5, length=0)
    ref.set_ylim(-0.6, 60 - 0.4)
    ref.set_xlabel("unit-periods")
    ref.set_ylabel("")
    ref.legend(["reported", "suppressed (fewer than 5 respondents)"], fontsize=8, ncol=2,
               loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)
    ref.figure.tight_layout()
    assert np.array_equal(figure_pixels(ax.figure), figure_pixels(ref.figure))

    grid = _quality_grid(60)
    kw = {"cmap": "Oranges", "vmin": 0, "cbar_label": "% missing"}
    ax = plots.plot_client_grid(grid, max_rows=40, **kw)
    _, ref = plt.subplots(figsize=(1.2 + 0.9 * 4, 0.8 + 0.11 * 60))
    plots.plot_heatmap(grid, annot=False, ax=ref, **kw)
    ref.tick_params(axis="y", labelsize=5)
    ref.tick_params(axis="x", labeltop=True)
    assert np.array_equal(figure_pixels(ax.figure), figure_pixels(ref.figure))
    assert {t.get_fontsize() for t in ax.get_yticklabels()} == {5}
    assert {t.get_fontsize() for t in ax.get_xticklabels()} == \
        {t.get_fontsize() for t in ref.get_xticklabels()}
    plt.close("all")
