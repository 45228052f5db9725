"""The house style of every figure: one theme, a colour-blind-safe palette, alt text.

:func:`use` applies one matplotlib/seaborn theme (sizes chosen for a report page that
is also read on a phone, no top/right spines, light grid) with the Okabe-Ito palette,
which stays distinguishable for the common forms of colour blindness. Inside IPython
(a report notebook) it also makes every figure display as a compressed PNG that
carries an alt text written from the figure's own data (:func:`describe_figure`): the
site shows it instead of nbconvert's "No description has been provided for this image".

Colours say what a number means, whatever the outcome's direction: :func:`good_bad_color`
colours a change blue when it is good news (a rise in NPS, a fall in turnover) and
vermillion when it is bad news.

Examples
--------
>>> from exresearch import style
>>> style.OKABE_ITO[0], style.GOOD, style.BAD
('#0072B2', '#0072B2', '#D55E00')
>>> style.good_bad_color(-0.3, higher_is_better=False) == style.GOOD
True
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from .exceptions import ParameterError
from .formatting import fmt_sig

__all__ = ["OKABE_ITO", "GOOD", "BAD", "NEUTRAL", "DIVERGING", "SEQUENTIAL", "RC",
           "use", "theme", "good_bad_color", "good_bad_colors", "text_color_for",
           "contrast_ratio", "describe_figure", "figure_png", "figure_pixels",
           "PNG_COMPRESS_LEVEL"]

#: Okabe & Ito (2008) colour-blind-safe palette, in the order figures use it.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
             "#F0E442", "#000000"]
#: Good news, bad news, and neither (direction-aware colours).
GOOD, BAD, NEUTRAL = "#0072B2", "#D55E00", "#6E6E6E"
#: Colour maps: diverging (blue - white - vermillion/red, colour-blind safe) for signed
#: values such as correlations, sequential for amounts such as % missing.
DIVERGING, SEQUENTIAL = "RdBu_r", "Blues"

#: The rcParams of the house theme.
RC = {
    "figure.dpi": 90,  # 11 pt text is 14 px on screen; 90 rather than 100 dpi keeps the
    "savefig.dpi": 90,  # demo site under 12 MB (the figures are in pages, notebooks, PDFs)
    "figure.facecolor": "white",
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#E3E3E3",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "axes.edgecolor": "#555555",
    "axes.labelcolor": "#222222",
    "text.color": "#222222",
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "lines.linewidth": 2.0,
    "lines.markersize": 6,
    "svg.fonttype": "none",
}

_MAX_ALT = 900


def _rc() -> dict:
    from cycler import cycler

    return {**RC, "axes.prop_cycle": cycler(color=OKABE_ITO)}


def theme():
    """The house theme as a context manager (``with style.theme(): ...``).

    Examples
    --------
    >>> import matplotlib as mpl
    >>> with theme():
    ...     mpl.rcParams["axes.spines.top"]
    False
    """
    import matplotlib as mpl

    return mpl.rc_context(_rc())


def use(*, display: bool = True) -> None:
    """Apply the house theme for the rest of the session (a notebook calls it once).

    Parameters
    ----------
    display : bool, default True
        Inside IPython, also show every figure as a compressed PNG with an alt text
        written from its data (:func:`figure_png`).

    Examples
    --------
    >>> import matplotlib as mpl
    >>> use(display=False); mpl.rcParams["axes.prop_cycle"].by_key()["color"][1]
    '#E69F00'
    """
    import matplotlib as mpl

    try:  # seaborn's defaults first, then ours on top, so both kinds of figure match
        import seaborn as sns

        sns.set_theme(style="whitegrid", palette=OKABE_ITO)
    except ImportError:  # pragma: no cover - seaborn is a dependency
        pass
    mpl.rcParams.update(_rc())
    if display:
        _install_display()


def _install_display() -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    ip = get_ipython()
    if ip is None:
        return
    from matplotlib.figure import Figure

    # The inline backend registers its own PNG formatter when pyplot is first imported;
    # ours replaces it (same mime type), adding compression and the alt text metadata.
    with contextlib.suppress(Exception):
        import matplotlib.pyplot as plt

        plt._get_backend_mod()  # resolves (and so configures) the inline backend now
    ip.display_formatter.formatters["image/png"].for_type(Figure, figure_png)


#: zlib level of the figures' PNGs: level 8 gives 1% more bytes than level 9 (what
#: ``optimize=True`` used) on the demo client report's figures, 3% on the synthesis's, in
#: a third of its encoding time (bench/results.md, B7b).
PNG_COMPRESS_LEVEL = 8


def figure_png(fig):
    """A figure as (PNG bytes, ``{"alt": ...}``): what IPython shows for a figure.

    The pixels are those of ``fig.savefig(..., bbox_inches="tight", facecolor="white")``
    (:func:`figure_pixels`), quantised to a 256-colour palette (well under matplotlib's
    size; fewer colours would band the colour bars) and zlib-compressed at
    :data:`PNG_COMPRESS_LEVEL`; the metadata's ``alt`` is :func:`describe_figure`,
    which nbconvert writes into the ``<img alt>`` of the page.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(); _ = ax.bar(["a", "b"], [1, 2]); _ = ax.set_title("T")
    >>> data, meta = figure_png(fig)
    >>> data[:4] == b"\\x89PNG", meta["alt"]
    (True, 'Chart: T. Bars: a 1, b 2.')
    >>> plt.close(fig)
    """
    from PIL import Image

    if not fig.axes and not fig.texts:
        return None
    try:
        alt = describe_figure(fig)
    except Exception:  # noqa: BLE001 - a figure must show even if it cannot be described
        alt = "Chart."
    img = Image.fromarray(figure_pixels(fig))
    out = io.BytesIO()
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return out.getvalue(), {"alt": alt}


def figure_pixels(fig) -> np.ndarray:
    """The RGB pixels of ``fig.savefig(buf, bbox_inches="tight", facecolor="white")``.

    The same pixels as that call followed by decoding its PNG, at about two thirds of its
    CPU time: ``savefig`` lays the figure out three times for a tight box (a draw
    without rendering, the tight box, the drawing); here the tight box is measured first
    and handed to ``savefig``, which then draws once into raw RGBA (no PNG encoded
    and decoded). matplotlib offers no call that does this, so it is written here; the
    tests compare the pixels with ``savefig``'s on figures of every kind of the reports.

    Parameters
    ----------
    fig : matplotlib.figure.Figure

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape (height, width, 3), at :rc:`savefig.dpi`.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(4, 3)); _ = ax.plot([1, 2], [3, 4])
    >>> px = figure_pixels(fig); px.dtype.name, px.shape[2], px[0, 0].tolist()
    ('uint8', 3, [255, 255, 255])
    >>> plt.close(fig)
    """
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import RendererAgg

    dpi = mpl.rcParams["savefig.dpi"]
    dpi = fig.dpi if dpi == "figure" else float(dpi)
    old_dpi, old_face, engine = fig.dpi, fig.get_facecolor(), fig.get_layout_engine()
    # what savefig's own draw-without-rendering does before it measures the tight box:
    # the figure at the saving dpi on white, its layout engine (if any) run once, then
    # no engine while it is drawn (None, so that savefig needs no draw of its own)
    no_auto = {"figure.autolayout": False, "figure.constrained_layout.use": False}
    try:
        if dpi != old_dpi:
            fig.dpi = dpi
        fig.set_facecolor("white")
        if engine is not None and fig.axes:
            with contextlib.suppress(ValueError):  # as Figure.draw does
                engine.execute(fig)
        with mpl.rc_context(no_auto):
            fig.set_layout_engine(None)
        with _text_extents_kept():  # each label measured once for both renderers
            renderer = RendererAgg(int(fig.bbox.width), int(fig.bbox.height), dpi)
            _arrows_sized_for(fig, renderer)
            box = fig.get_tightbbox(renderer).padded(mpl.rcParams["savefig.pad_inches"])
            # get_tightbbox has just placed every visible axes' titles (Axes.
            # _update_title_position, which measures the whole y axis of each titled axes:
            # a fifth of a figure's CPU); the drawing would place them again from the same
            # state, to the same place: it keeps them there instead (matplotlib's own
            # switch for a title placed by hand, as rcParams["axes.titley"] sets it)
            placed = [ax for ax in fig.axes if ax._autotitlepos]
            for ax in placed:
                ax._autotitlepos = False
            buf = io.BytesIO()
            try:
                fig.savefig(buf, format="rgba", dpi=dpi, facecolor="white", bbox_inches=box)
            finally:
                for ax in placed:
                    ax._autotitlepos = True
    finally:
        with mpl.rc_context(no_auto):  # None stays None
            fig.set_layout_engine(engine)
        fig.set_facecolor(old_face)
        if fig.dpi != old_dpi:
            fig.dpi = old_dpi
    width, height = int(box.width * dpi), int(box.height * dpi)
    raw = buf.getvalue()
    if len(raw) != width * height * 4:  # pragma: no cover - savefig rounded differently
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
        from PIL import Image

        return np.asarray(Image.open(buf).convert("RGB"))
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()


#: Agg's text extents, kept across renderers by :func:`_text_extents_kept`: (text, font
#: files, size, dpi, hinting, hinting factor) -> (width, height, descent).
_TEXT_EXTENTS: dict = {}
#: Labels kept at most (a long JupyterLab session draws many); then the memo starts again.
_TEXT_EXTENTS_MAX = 20_000


@contextlib.contextmanager
def _text_extents_kept():
    """Inside it, Agg measures each label once per process instead of once per renderer.

    matplotlib keeps a label's extent per renderer (``text._get_text_metrics_with_cache``),
    and :func:`figure_pixels` uses two, the tight box's and ``savefig``'s, so each label
    was shaped by FreeType and libraqm twice (about 1 ms a label; the figures of a
    client report repeat their tick labels too). The extent depends on nothing but the
    text, the font files found for its properties, the size, the dpi and the two
    hinting settings, which make the key; everything else is Agg's own measurement, so
    the pixels are those of ``savefig`` (tests/test_style.py compares every figure of
    the reports with it). matplotlib has no cache across renderers; written here. With a
    matplotlib that lacks what it uses (the font lookup Agg itself uses), it does nothing.
    One figure at a time, as matplotlib's drawing is not thread-safe either.
    """
    import matplotlib as mpl
    from matplotlib.backends import backend_agg

    cls = backend_agg.RendererAgg
    real = cls.__dict__.get("get_text_width_height_descent")
    fonts = getattr(getattr(backend_agg, "_fontManager", None), "_find_fonts_by_props", None)
    if real is None or fonts is None:  # another matplotlib: measured as it measures
        yield
        return

    def measured(self, s, prop, ismath):
        if ismath:  # mathtext and TeX: as matplotlib measures them
            return real(self, s, prop, ismath)
        key = (s, tuple(fonts(prop)), prop.get_size_in_points(), self.dpi,
               mpl.rcParams["text.hinting"],
               mpl.rcParams["text.hinting_factor"])
        got = _TEXT_EXTENTS.get(key)
        if got is None:
            if len(_TEXT_EXTENTS) >= _TEXT_EXTENTS_MAX:
                _TEXT_EXTENTS.clear()
            got = _TEXT_EXTENTS[key] = real(self, s, prop, ismath)
        return got

    cls.get_text_width_height_descent = measured
    try:
        yield
    finally:
        cls.get_text_width_height_descent = real


def _arrows_sized_for(fig, renderer) -> None:
    """Size every arrow (``FancyArrowPatch``, an annotation's arrow) for ``renderer``.

    An arrow's head is measured in points, but matplotlib converts them to pixels only
    when the arrow is drawn (``FancyArrowPatch.draw`` sets ``_dpi_cor``; there is no
    setter): before any draw, its extent - and so a tight box that it bounds - is that
    of 72 dpi. savefig's draw without rendering sets it; this does only that part.
    """
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.text import Annotation

    scale = renderer.points_to_pixels(1.0)
    for artist in fig.findobj(lambda a: isinstance(a, FancyArrowPatch | Annotation)):
        arrow = getattr(artist, "arrow_patch", artist)
        if isinstance(arrow, FancyArrowPatch):
            arrow._dpi_cor = scale


def good_bad_color(value, *, higher_is_better: bool = True) -> str:
    """:data:`GOOD` when ``value`` is good news, :data:`BAD` when bad, else :data:`NEUTRAL`.

    Parameters
    ----------
    value : float
        A difference, change or correlation with an outcome.
    higher_is_better : bool, default True
        The outcome's direction (``False`` for turnover, complaints, ...).

    Examples
    --------
    >>> good_bad_color(0.2), good_bad_color(0.2, higher_is_better=False), good_bad_color(0)
    ('#0072B2', '#D55E00', '#6E6E6E')
    """
    if not isinstance(higher_is_better, bool | np.bool_):
        raise ParameterError(
            f"`higher_is_better` must be True or False, but {higher_is_better!r} was passed")
    try:
        v = float(value)
    except (TypeError, ValueError):
        return NEUTRAL
    if not np.isfinite(v) or v == 0:
        return NEUTRAL
    return GOOD if (v > 0) == bool(higher_is_better) else BAD


def good_bad_colors(values, *, higher_is_better=True) -> list[str]:
    """:func:`good_bad_color` for each value (``higher_is_better`` a bool or one per value).

    Examples
    --------
    >>> good_bad_colors([1, -1], higher_is_better=[True, False])
    ['#0072B2', '#0072B2']
    """
    values = list(values)
    hib = ([higher_is_better] * len(values) if isinstance(higher_is_better, bool | np.bool_)
           else list(higher_is_better))
    if len(hib) != len(values):
        raise ParameterError(f"`higher_is_better` must have one entry per value "
                             f"({len(values)}), but {len(hib)} were passed")
    return [good_bad_color(v, higher_is_better=bool(h)) for v, h in zip(values, hib, strict=True)]


def _luminance(rgb) -> float:
    c = np.asarray(rgb, dtype=float)[:3]
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def contrast_ratio(a, b) -> float:
    """WCAG 2 contrast ratio of two colours (any matplotlib colour spec).

    Examples
    --------
    >>> round(contrast_ratio("white", "black"), 1), round(contrast_ratio("#777777", "white"), 2)
    (21.0, 4.48)
    """
    from matplotlib.colors import to_rgb

    la, lb = sorted((_luminance(to_rgb(a)), _luminance(to_rgb(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_color_for(background) -> str:
    """Black-ish or white text, whichever contrasts more with ``background`` (WCAG).

    Examples
    --------
    >>> text_color_for("#f4a582"), text_color_for("#053061")
    ('black', 'white')
    """
    dark = "black"  # pure black: with white, at least 4.58:1 on any background (WCAG AA)
    return dark if contrast_ratio(background, dark) >= contrast_ratio(background, "white") \
        else "white"


# ---- alt text -------------------------------------------------------------------------

def _num(v) -> str:
    return fmt_sig(v, 3)


def _clean(text) -> str:
    return " ".join(str(text).split())


def _floats(values) -> np.ndarray:
    """Numbers of a line's data; categories (strings such as periods) become NaN."""
    out = []
    for v in np.asarray(values, dtype=object).ravel():
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(np.nan)
    return np.asarray(out, dtype=float)


def _is_reference_line(line) -> bool:
    x, y = (np.asarray(a, dtype=object).ravel() for a in line.get_data())
    yf = _floats(y)
    if len(x) == 2 and (x[0] == x[1] or yf[0] == yf[1]):
        return True
    return line.get_linestyle() in ("--", ":") and len(np.unique(yf[np.isfinite(yf)])) == 1


def _tick_labels(ax, axis):
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return {round(float(t.get_position()[0 if axis == "x" else 1]), 6): t.get_text()
            for t in ticks if t.get_text()}


def _bars(ax) -> list[str]:
    from matplotlib.container import BarContainer

    out = []
    for cont in ax.containers:
        if not isinstance(cont, BarContainer):
            continue
        horizontal = getattr(cont, "orientation", None) == "horizontal"
        labels = _tick_labels(ax, "y" if horizontal else "x")
        items = []
        for patch in cont.patches:
            if horizontal:
                pos, value = patch.get_y() + patch.get_height() / 2, patch.get_width()
            else:
                pos, value = patch.get_x() + patch.get_width() / 2, patch.get_height()
            name = labels.get(round(float(pos), 6), "")
            items.append(f"{_clean(name)} {_num(value)}".strip())
        if items:
            lab = cont.get_label()
            prefix = f"{_clean(lab)}: " if lab and not lab.startswith("_") else ""
            out.append(prefix + ", ".join(items[:12]) + (" ..." if len(items) > 12 else ""))
    return out


def _lines(ax) -> list[str]:
    out = []
    for line in ax.get_lines():
        if _is_reference_line(line):
            continue
        y = _floats(line.get_data()[1])
        ok = np.isfinite(y)
        if not ok.any():
            continue
        lab = line.get_label()
        name = _clean(lab) if lab and not lab.startswith("_") else "line"
        yv = y[ok]
        if len(yv) == 1:
            out.append(f"{name} {_num(yv[0])}")
        else:
            out.append(f"{name} from {_num(yv[0])} to {_num(yv[-1])} "
                       f"(range {_num(yv.min())} to {_num(yv.max())})")
    return out


def _collections(ax) -> list[str]:
    from matplotlib.collections import PathCollection, QuadMesh

    out = []
    for coll in ax.collections:
        if isinstance(coll, QuadMesh):
            arr = np.ma.masked_invalid(np.asarray(coll.get_array(), dtype=float))
            rows = _tick_labels(ax, "y")
            cols = _tick_labels(ax, "x")
            n_rows, n_cols = arr.shape if arr.ndim == 2 else (len(rows), len(cols))
            if arr.count():
                out.append(f"grid of {n_rows} rows by {n_cols} columns, "
                           f"values from {_num(arr.min())} to {_num(arr.max())}")
        elif isinstance(coll, PathCollection):
            offs = np.asarray(coll.get_offsets(), dtype=float)
            if len(offs):
                lab = coll.get_label()
                name = _clean(lab) + ": " if lab and not lab.startswith("_") else ""
                out.append(f"{name}{len(offs)} points, x from {_num(offs[:, 0].min())} to "
                           f"{_num(offs[:, 0].max())}, y from {_num(offs[:, 1].min())} to "
                           f"{_num(offs[:, 1].max())}")
    return out


def describe_figure(fig) -> str:
    """An alt text written from a figure's data: what it shows and its main numbers.

    Per panel: the title, the axis labels, then the bars (category and value), lines
    (first, last and range of values), scatter points (count and ranges), heat-map
    grids (size and value range) and point labels; at most about 900 characters.

    Parameters
    ----------
    fig : matplotlib.figure.Figure

    Returns
    -------
    str

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([2023, 2024, 2025], [3.1, 3.4, 3.6], label="Engagement")
    >>> _ = ax.set_title("Trend"); _ = ax.set_ylabel("score")
    >>> describe_figure(fig)
    'Chart: Trend. y axis: score. Lines: Engagement from 3.10 to 3.60 (range 3.10 to 3.60).'
    >>> plt.close(fig)
    """
    parts = []
    sup = getattr(fig, "_suptitle", None)
    if sup is not None and sup.get_text():
        parts.append(_clean(sup.get_text()) + ".")
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    for i, ax in enumerate(axes):
        bits = []
        title = " ".join(t for t in (ax.get_title("left"), ax.get_title(), ax.get_title("right"))
                         if t)
        head = f"Chart: {_clean(title)}." if title else ("Chart." if len(axes) == 1 else "")
        if len(axes) > 1:
            head = f"Panel {i + 1}" + (f": {_clean(title)}." if title else ".")
        if ax.get_xlabel():
            bits.append(f"x axis: {_clean(ax.get_xlabel())}.")
        if ax.get_ylabel():
            bits.append(f"y axis: {_clean(ax.get_ylabel())}.")
        bars = _bars(ax)
        if bars:
            bits.append("Bars: " + "; ".join(bars) + ".")
        lines = _lines(ax)
        if lines:
            bits.append("Lines: " + "; ".join(lines[:8]) + ".")
        colls = _collections(ax)
        if colls:
            bits.append("; ".join(colls).capitalize() + ".")
        texts = [_clean(t.get_text()) for t in ax.texts if t.get_text().strip()]
        if texts and not any(b.startswith("Grid") for b in colls):
            bits.append("Labels: " + ", ".join(texts[:12]) + ".")
        parts.append(" ".join(b for b in [head, *bits] if b))
    text = " ".join(p for p in parts if p).strip() or "Chart without data."
    return text if len(text) <= _MAX_ALT else text[:_MAX_ALT - 3].rstrip() + "..."
