"""House style: theme, palette, direction-aware colours, contrast, alt text, number formats."""

from __future__ import annotations

import doctest
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from exresearch import formatting, style  # noqa: E402
from exresearch.exceptions import ParameterError  # noqa: E402


@pytest.mark.parametrize("module", [style, formatting])
def test_doctests(module):
    res = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 5 and res.failed == 0


def test_theme_sets_palette_and_sizes():
    with style.theme():
        assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"] == style.OKABE_ITO
        assert matplotlib.rcParams["font.size"] == 11
        assert not matplotlib.rcParams["axes.spines.right"]


def test_okabe_ito_colours_are_distinct_and_known():
    assert len(set(style.OKABE_ITO)) == 8
    assert style.OKABE_ITO[:4] == ["#0072B2", "#E69F00", "#009E73", "#D55E00"]


@pytest.mark.parametrize("value,hib,expected", [
    (0.3, True, style.GOOD), (-0.3, True, style.BAD),
    (0.3, False, style.BAD), (-0.3, False, style.GOOD),  # turnover falling is good news
    (0.0, True, style.NEUTRAL), (float("nan"), True, style.NEUTRAL), (None, False, style.NEUTRAL),
])
def test_direction_aware_colours(value, hib, expected):
    assert style.good_bad_color(value, higher_is_better=hib) == expected


def test_direction_colours_validate():
    with pytest.raises(ParameterError, match="'yes' was passed"):
        style.good_bad_color(1, higher_is_better="yes")
    with pytest.raises(ParameterError, match="one entry per value \\(2\\), but 1 were passed"):
        style.good_bad_colors([1, 2], higher_is_better=[True])


def test_contrast_matches_wcag_reference_values():
    # WCAG 2 reference pairs: black/white 21:1, #767676 on white is the AA minimum ~4.54
    assert style.contrast_ratio("black", "white") == pytest.approx(21.0)
    assert style.contrast_ratio("#767676", "white") == pytest.approx(4.54, abs=0.01)
    assert style.contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)


def test_heatmap_text_colour_always_meets_aa():
    cmap = matplotlib.colormaps[style.DIVERGING]
    worst = min(style.contrast_ratio(cmap(v)[:3], style.text_color_for(cmap(v)[:3]))
                for v in np.linspace(0, 1, 101))
    assert worst >= 4.5


def test_alt_text_from_bars_lines_points_and_grid():
    fig, axes = plt.subplots(1, 3)
    axes[0].barh(["Tools", "Training"], [0.42, 0.18])
    axes[0].set_title("Impact")
    axes[1].plot(["2024Q1", "2024Q2", "2024Q3"], [3.1, 3.3, 3.6], label="Engagement")
    axes[1].axhline(0, ls="--")  # a reference line is not data
    axes[2].pcolormesh(np.array([[0.1, 0.5], [-0.2, 0.3]]))
    text = style.describe_figure(fig)
    plt.close(fig)
    assert text.startswith("Panel 1: Impact.")
    assert "Tools 0.420, Training 0.180" in text
    assert "Engagement from 3.10 to 3.60" in text and "line from 0" not in text
    assert "Grid of 2 rows by 2 columns, values from -0.200 to 0.500" in text


def test_figure_png_is_smaller_and_carries_alt():
    rng = np.random.default_rng(1)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(rng.normal(size=200), rng.normal(size=200))
    ax.set_title("Spread")
    data, meta = style.figure_png(fig)
    raw = io.BytesIO()
    fig.savefig(raw, format="png", bbox_inches="tight")
    plt.close(fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) < 0.8 * raw.tell()
    assert meta["alt"].startswith("Chart: Spread. 200 points")


def test_alt_text_never_breaks_a_figure():
    fig, ax = plt.subplots()
    ax.plot([np.datetime64("2024-01-01"), np.datetime64("2024-02-01")], ["a", "b"])
    data, meta = style.figure_png(fig)
    plt.close(fig)
    assert data[:4] == b"\x89PNG" and meta["alt"]


def test_number_formats():
    assert formatting.fmt_p(0.0) == "< 0.001" and formatting.fmt_p(1.65e-13) == "< 0.001"
    assert formatting.fmt_p(0.0499) == "0.050" and formatting.fmt_p(1.2) == "1.0"
    assert formatting.fmt_sig(0.1 + 0.2) == "0.300"  # no 17-digit float
    assert formatting.fmt_sig(-1234.5678) == "-1,235"
    assert formatting.fmt_sig(np.int64(7)) == "7"
    with pytest.raises(ParameterError, match="0 was passed"):
        formatting.fmt_sig(1.0, 0)
    df = pd.DataFrame({"measure": ["nps"], "r": [0.312345678], "p_value": [3e-9],
                       "pct_favourable": [61.25], "n_units": [30.0], "flag": [True]})
    shown = formatting.format_frame(df)
    assert shown.iloc[0].tolist() == ["nps", "0.312", "< 0.001", "61.2%", "30", True]
    assert df["r"].iloc[0] == 0.312345678  # the data keep full precision
    with pytest.raises(ParameterError, match="list was passed"):
        formatting.format_frame([1])


def test_data_dictionary_names_codes():
    dd = formatting.data_dictionary({"linkage": pd.DataFrame(
        {"x": ["ex"], "y": ["nps"], "r": [0.3], "ci_low": [0.1], "p": [0.01], "n": [30]})})
    assert dd["name"].tolist() == ["from", "to", "correlation (r)", "95% CI low", "p-value",
                                  "number"]
    assert dd.loc[dd["column"] == "n", "type"].item() == "integer"
    assert dd.loc[dd["column"] == "p", "definition"].item() == ""
