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


# ---- the figure renderer: savefig's pixels with one layout pass less ----------------------
def _savefig_pixels(fig):
    """The reference: what figure_png encoded before issue 20 (savefig's tight PNG)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _fig_heatmap_colorbar():
    # long row labels and a colour bar: the tight box reaches left of the figure
    fig, ax = plt.subplots(figsize=(5.6, 6.2))
    mesh = ax.pcolormesh(np.arange(12).reshape(4, 3) / 11 - 0.5, cmap=style.DIVERGING)
    ax.set_yticks(np.arange(4) + 0.5, [f"A rather long outcome name {i}" for i in range(4)])
    for i in range(4):
        ax.text(1.5, i + 0.5, f"{i / 7:.2f}", ha="center", va="center")
    fig.colorbar(mesh, ax=ax, label="r")
    return fig


def _fig_two_panels_tight_layout():
    # fig.tight_layout() leaves a placeholder layout engine; rotated labels, legend outside
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    axes[0].scatter(np.repeat(np.arange(5), 6), np.linspace(2.5, 4.5, 30), label="units")
    axes[0].set_xticks(range(5), [f"Scale {i}" for i in range(5)])
    axes[0].tick_params(axis="x", labelrotation=30)
    axes[0].set_title("Unit scores: one dot per unit")
    axes[1].plot(["2024", "2025", "2026"], [3.1, 3.4, 3.6], label="Engagement")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def _fig_hatched_bars():
    # hatches are tiled from the canvas: a canvas of another height shifts them
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.barh([f"Driver {i} (CI includes 0)" for i in range(5)], [3e5, -1e5, 5e4, 2.9e5, 7e4],
            hatch="//", fill=False, xerr=4e5)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_title("Value of closing the gap (95% CI)")
    ax.set_xlabel("revenue (a year)")
    return fig


def _fig_constrained_suptitle():
    fig, axes = plt.subplots(2, 2, figsize=(8, 6), layout="constrained")
    for i, ax in enumerate(axes.flat):
        ax.errorbar([0.1 * i, 0.3, 0.2], range(3), xerr=0.1, fmt="o")
        ax.set_title(f"Panel {i}")
    fig.suptitle("Forest plots by outcome")
    return fig


def _fig_equal_aspect_and_figure_text():
    fig, ax = plt.subplots(figsize=(6, 5), layout="tight")
    ax.imshow(np.linspace(0, 1, 64).reshape(8, 8), cmap=style.SEQUENTIAL)
    fig.text(0.99, 0.01, "Source: simulated study", ha="left")  # outside the figure
    ax.annotate("peak", xy=(7, 7), xytext=(9, 9), arrowprops={"arrowstyle": "->"},
                annotation_clip=False)
    return fig


def _fig_arrow_at_the_edge():
    # an arrow head sized in points bounds the tight box: it must be sized for 90 dpi,
    # which matplotlib does only when the arrow is drawn
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot([0, 1], [0, 1])
    ax.annotate("peak", xy=(1.6, 0.5), xytext=(0.9, 0.5), annotation_clip=False,
                arrowprops={"arrowstyle": "->", "mutation_scale": 40})
    return fig


def _fig_text_only():
    fig = plt.figure(figsize=(4, 1))
    fig.text(0.5, 0.5, "No data for this client", ha="center")
    return fig


def _fig_titles_moved_up():
    # titles that matplotlib places above the axes' top: tick labels on top (the data-
    # quality grid's labeltop), a y offset text ("1e6"), left and right titles, twins
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    axes[0].imshow(np.arange(12.0).reshape(3, 4))
    axes[0].tick_params(axis="x", labeltop=True)
    axes[0].set_title("Grid with scale names on top")
    axes[1].plot([1, 2, 3], [1e6 + 1, 1e6 + 3, 1e6 + 2])
    axes[1].set_title("Offset text", loc="left")
    axes[1].set_title("right", loc="right")
    twin = axes[2].twiny()
    twin.plot([0, 5], [0, 1])
    axes[2].plot([0, 1], [1, 0])
    axes[2].set_title("A twin x axis on top")
    fig.tight_layout()
    return fig


FIGURES = [_fig_heatmap_colorbar, _fig_two_panels_tight_layout, _fig_hatched_bars,
           _fig_constrained_suptitle, _fig_equal_aspect_and_figure_text,
           _fig_arrow_at_the_edge, _fig_text_only, _fig_titles_moved_up]


def test_figure_pixels_places_the_titles_once(monkeypatch):
    """figure_pixels measures the tight box (which places every axes' titles, measuring
    its y axis) and then draws: the drawing keeps the titles where the measuring placed
    them instead of placing them again; matplotlib places them again afterwards."""
    from matplotlib.axes import Axes

    calls, place = [], Axes._update_title_position

    def counted(ax, renderer):
        calls.append(ax._autotitlepos)
        return place(ax, renderer)

    with style.theme():
        fig = _fig_titles_moved_up()
        expected = _savefig_pixels(_fig_titles_moved_up())
        monkeypatch.setattr(Axes, "_update_title_position", counted)
        got = style.figure_pixels(fig)
    assert np.array_equal(got, expected)
    n_axes = len(fig.axes)  # 3 and the twin
    # placed once each (the measuring); each drawn Axes called it with the switch off
    assert calls.count(True) == n_axes and calls.count(False) == n_axes
    assert all(ax._autotitlepos for ax in fig.axes)  # left as found
    plt.close("all")


@pytest.mark.parametrize("make", FIGURES, ids=lambda f: f.__name__[5:])
def test_figure_pixels_are_savefigs_and_the_figure_is_left_as_found(make):
    """The same figure, made twice: savefig's tight PNG of one, figure_pixels of the other
    (a live layout engine moves the axes a little at every save, so one figure saved
    twice can differ; made twice, both start from the same state)."""
    with style.theme():
        expected = _savefig_pixels(make())
        fig = make()
        fig.set_dpi(100)  # the saving dpi (savefig.dpi, 90) differs from the figure's
        engine, face, size = fig.get_layout_engine(), fig.get_facecolor(), fig.bbox.size
        calls, savefig = [], fig.savefig
        fig.savefig = lambda *a, **kw: calls.append(kw) or savefig(*a, **kw)
        got = style.figure_pixels(fig)
        del fig.savefig
        # one drawing, into raw pixels, of a box measured beforehand (not savefig's "tight",
        # which would lay the figure out three times, and not a PNG)
        assert [(kw["format"], type(kw["bbox_inches"]).__name__) for kw in calls] == [
            ("rgba", "Bbox")]
        assert fig.get_layout_engine() is engine and fig.get_facecolor() == face
        assert fig.dpi == 100 and tuple(fig.bbox.size) == tuple(size)
        if engine is None or not engine.__class__.__name__.startswith(("Tight", "Constr")):
            assert np.array_equal(style.figure_pixels(fig), expected)  # nothing left behind
            assert np.array_equal(_savefig_pixels(fig), expected)
    plt.close("all")
    assert got.dtype == np.uint8 and got.shape == expected.shape
    assert np.array_equal(got, expected)  # every pixel, not within a tolerance


def test_figure_png_is_the_savefig_route_quantised_with_the_same_alt():
    """Before issue 20 the PNG was savefig's, quantised (median cut, 256 colours) and saved
    with ``optimize=True`` (zlib level 9): the same palette and indices now, and at most 5%
    more bytes at zlib level 8 (level 6 would be 7% more, level 1 28%, on the demo's)."""
    from PIL import Image

    for make in FIGURES[:3]:
        with style.theme():
            fig = make()
            ref_alt = style.describe_figure(fig)
            ref = Image.fromarray(_savefig_pixels(fig)).quantize(
                colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            data, meta = style.figure_png(fig)
        plt.close(fig)
        ref_png = io.BytesIO()
        ref.save(ref_png, format="PNG", optimize=True)
        img = Image.open(io.BytesIO(data))
        assert img.mode == "P" and img.size == ref.size  # a palette PNG (issue 18)
        assert img.getpalette() == ref.getpalette()
        assert np.array_equal(np.asarray(img), np.asarray(ref))
        assert meta == {"alt": ref_alt} and ref_alt.startswith(("Chart", "Panel"))
        assert len(data) < 1.05 * ref_png.tell()


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


def _report_figures(notebook, params):
    """Every figure a report notebook draws: its code cells run in this process (Agg),
    each cell's open figures collected, as the inline backend would show them."""
    import contextlib
    import json
    import warnings

    from exresearch import config

    nb = json.loads((config.NOTEBOOKS_DIR / f"{notebook}.ipynb").read_text())
    namespace, figures = {}, []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        if "parameters" in (cell.get("metadata", {}).get("tags") or []):
            src += "\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # plt.show() on Agg; the reports' known notes
            exec(compile(src, notebook, "exec"), namespace)  # noqa: S102
        figures += [plt.figure(n) for n in plt.get_fignums()]
        plt.close("all")
    return figures


@pytest.mark.slow
@pytest.mark.parametrize("notebook", ["client_report", "data_quality", "synthesis"])
def test_every_report_figure_is_drawn_as_savefig_drew_it(notebook, small_study, tmp_path):
    """On the real figures of the reports (small study): each figure's pixels equal
    savefig's tight PNG of the same figure, and its PNG keeps the old route's alt text."""
    params = {"study_path": str(small_study), "output_dir": str(tmp_path)}
    if notebook == "client_report":
        params.update(client_id="client-02", n_boot=100)
    figures = _report_figures(notebook, params)
    assert len(figures) >= {"client_report": 6, "data_quality": 2, "synthesis": 10}[notebook]
    for fig in figures:
        alt = style.describe_figure(fig)
        engine = fig.get_layout_engine()
        assert engine is None or type(engine).__name__ == "PlaceHolderLayoutEngine"
        expected = _savefig_pixels(fig)
        assert np.array_equal(style.figure_pixels(fig), expected), alt
        assert style.figure_png(fig)[1] == {"alt": alt}


def test_a_figure_drawn_once_before_gives_the_same_png():
    """In a kernel, a figure left open to the end of its cell is first drawn by pyplot's
    ``post_execute`` hook (``draw_all``, interactive mode), then shown (figure_png): one
    full drawing thrown away. The client report shows its figures with ``plt.show()``
    inside the cell instead (B7d); that must not change a pixel."""
    with style.theme():
        drawn = _fig_two_panels_tight_layout()
        drawn.canvas.draw()  # what draw_all did before the figure was shown
        before = style.figure_png(drawn)
        after = style.figure_png(_fig_two_panels_tight_layout())
    plt.close("all")
    assert before[0][:4] == b"\x89PNG" and before == after


def test_client_report_shows_every_figure_inside_its_cell():
    """Every code cell of the client report that makes a figure shows it with
    ``plt.show()`` after the figure's last call, so no figure is left to the end of the
    cell (where the kernel would draw it once more before showing it: B7d)."""
    import json
    import re

    from exresearch import config

    nb = json.loads((config.NOTEBOOKS_DIR / "client_report.ipynb").read_text())
    makes = re.compile(r"plt\.subplots\(|plots\.plot_\w+\(|\.tight_layout\(\)")
    checked = 0
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] != "code" or not makes.search(src):
            continue
        checked += 1
        last = max(m.end() for m in makes.finditer(src))
        assert "plt.show()" in src[last:], src.splitlines()[0]
    assert checked >= 7


def _labelled(fontsize=11):
    fig, ax = plt.subplots(figsize=(4.5, 2.4))
    ax.barh(["Knowledge sharing", "Tools and technology", "Leader support"], [3.1, 2.4, 3.6])
    ax.set_title("Average by scale", fontsize=fontsize)
    ax.set_xlabel("mean (1-5)")
    return fig


def test_labels_measured_once_per_process_give_savefigs_pixels_whatever_changed_since():
    """figure_pixels keeps Agg's text extents across renderers (style._text_extents_kept):
    a label measured for one figure is not measured again for the next. The key is the
    text, the font files, size, dpi and hinting: after the fonts that "sans-serif" names,
    the hinting, or a label's size changed, a figure still gets savefig's pixels (with the
    text and size alone as the key, the new font's labels were laid out with the old
    font's extents). The method is matplotlib's own again afterwards, even after an
    error, and the memo is bounded."""
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import RendererAgg

    own = RendererAgg.__dict__["get_text_width_height_descent"]
    style._TEXT_EXTENTS.clear()
    with style.theme():
        first = _labelled()
        assert np.array_equal(style.figure_pixels(first), _savefig_pixels(first))
        kept = len(style._TEXT_EXTENTS)
        assert kept >= 5  # the three labels, the title, the axis label and ticks
        again = _labelled()
        assert np.array_equal(style.figure_pixels(again), _savefig_pixels(again))
        assert len(style._TEXT_EXTENTS) == kept  # nothing measured a second time
        for rc, size in [({"font.sans-serif": ["DejaVu Serif"]}, 11),
                         ({"text.hinting": "no_hinting"}, 11), ({}, 13)]:
            with mpl.rc_context(rc):
                fig = _labelled(size)
                assert np.array_equal(style.figure_pixels(fig), _savefig_pixels(fig)), rc
    assert RendererAgg.__dict__["get_text_width_height_descent"] is own
    with pytest.raises(ZeroDivisionError), style._text_extents_kept():
        assert RendererAgg.__dict__["get_text_width_height_descent"] is not own
        1 / 0  # noqa: B018
    assert RendererAgg.__dict__["get_text_width_height_descent"] is own
    plt.close("all")


def test_the_label_memo_starts_again_when_full(monkeypatch):
    monkeypatch.setattr(style, "_TEXT_EXTENTS_MAX", 4)
    style._TEXT_EXTENTS.clear()
    with style.theme():
        fig = _labelled()
        assert np.array_equal(style.figure_pixels(fig), _savefig_pixels(fig))
    assert 0 < len(style._TEXT_EXTENTS) <= 4
    plt.close("all")


def test_labels_are_measured_as_matplotlib_measures_them_without_its_font_lookup(monkeypatch):
    """With a matplotlib whose Agg backend lacks the font lookup the memo keys on, the
    memo stays out of the way: Agg's own measurement, nothing patched."""
    from matplotlib.backends import backend_agg
    from matplotlib.backends.backend_agg import RendererAgg

    own = RendererAgg.__dict__["get_text_width_height_descent"]
    monkeypatch.setattr(backend_agg, "_fontManager", object())
    with style._text_extents_kept():
        assert RendererAgg.__dict__["get_text_width_height_descent"] is own
    monkeypatch.undo()  # with the lookup: patched inside, restored after
    with style._text_extents_kept():
        assert RendererAgg.__dict__["get_text_width_height_descent"] is not own
    assert RendererAgg.__dict__["get_text_width_height_descent"] is own
