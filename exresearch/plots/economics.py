"""Figures of value and projection: the loop projected forward, and estimates with their
intervals as horizontal bars (the value of each driver, each client's top-vs-bottom gap)."""

from __future__ import annotations

import pandas as pd

from ..exceptions import ParameterError
from ._base import _axes, _need


def plot_projection(projection, *, ax=None):
    """Plot the paths of :func:`exresearch.economics.project_loop` with their uncertainty bands.

    Parameters
    ----------
    projection : pandas.DataFrame
        Output of :func:`exresearch.economics.project_loop`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is created otherwise.

    Returns
    -------
    matplotlib.axes.Axes
        One line per scenario x variable (labelled ``"<scenario>: EX"`` / ``": CX"``,
        EX solid, CX dashed; intervention blue, decline red), a shaded band per line when
        the projection has draws, and a horizontal line at 0 (no change).

    Examples
    --------
    >>> from exresearch.economics import project_loop
    >>> from exresearch.plots import plot_projection
    >>> p = project_loop(ex_to_cx=(0.3, 0.05), cx_to_ex=(0.3, 0.05), ex_ar=0.8, cx_ar=0.7,
    ...                  seed=1)
    >>> ax = plot_projection(p)
    >>> sorted(line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_"))
    ['decline: CX', 'decline: EX', 'intervention: CX', 'intervention: EX']
    """
    import matplotlib.pyplot as plt

    need = {"scenario", "period", "variable", "value", "low", "high", "label"}
    if not isinstance(projection, pd.DataFrame) or not need <= set(projection.columns):
        raise ParameterError(
            f"`projection` must be the DataFrame returned by project_loop (columns "
            f"{sorted(need)}), but {type(projection).__name__} was passed")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    from ..style import BAD, GOOD

    colours = {"intervention": GOOD, "decline": BAD}
    for (scenario, var), g in projection.groupby(["scenario", "variable"], sort=False):
        colour = colours.get(scenario, "0.3")
        ls = "-" if var == "ex" else "--"
        ax.plot(g["period"], g["value"], color=colour, ls=ls, marker="o", ms=3,
                label=f"{scenario}: {var.upper()}")
        if g["low"].notna().all():
            ax.fill_between(g["period"], g["low"], g["high"], color=colour, alpha=0.15,
                            lw=0)
    ax.axhline(0.0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("Periods after the shock")
    ax.set_ylabel("Change (SD units)")
    labels = projection.groupby("scenario", sort=False)["label"].first()
    names = {"intervention": "a rise", "decline": "a fall"}
    ax.set_title("After a one-off change of 1 SD in employee experience")
    # what each scenario does (grows / fades ...) goes into the legend, not the title
    handles, texts = ax.get_legend_handles_labels()
    texts = [f"{names.get(t.split(':')[0], t.split(':')[0])} ({labels.get(t.split(':')[0], '')}):"
             f" {t.split(': ')[1]}" if ": " in t else t for t in texts]
    ax.legend(handles, texts, fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.18),
              ncol=2, frameon=False)
    return ax


def plot_interval_bars(data, *, label, value, low, high, xlabel="", money=False, ax=None):
    """Estimates with their intervals as horizontal bars, the first row at the top.

    Used for the value of closing each driver's gap (``investment``) and for each
    client's top-vs-bottom-quarter difference.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per bar, in the order to show them (top first).
    label, value, low, high : str
        Columns: bar name, estimate, interval.
    xlabel : str, optional
    money : bool, default False
        Thousands separators on the axis.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        One bar per row, an error bar for its interval and a line at 0.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"driver": ["a", "b"], "v": [3.0, 1.0], "lo": [1.0, -1.0],
    ...                   "hi": [5.0, 2.0]})
    >>> ax = plot_interval_bars(d, label="driver", value="v", low="lo", high="hi")
    >>> [t.get_text() for t in ax.get_yticklabels()], [float(p.get_width()) for p in ax.patches]
    (['b', 'a'], [1.0, 3.0])
    """
    import matplotlib.ticker as mticker
    import numpy as np

    _need(data, "data", [label, value, low, high])
    ax = _axes(ax, (7, 0.45 * len(data) + 1.5))
    d = data.iloc[::-1]
    ax.barh(d[label], d[value], color="C0")
    ax.errorbar(d[value], np.arange(len(d)), xerr=[d[value] - d[low], d[high] - d[value]],
                fmt="none", ecolor="0.3", capsize=3)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_xlabel(xlabel)
    if money:
        ax.xaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.0f}"))
    ax.figure.tight_layout()
    return ax


def plot_value(value, *, column="money", labels=None, ax=None):
    """Bar chart of :func:`exresearch.value.value_chain`: each driver's value with its CI.

    Parameters
    ----------
    value : pandas.DataFrame
        Output of :func:`exresearch.value.value_chain`.
    column : {"money", "net", "delta_business", "delta_cx"}, default "money"
        Quantity drawn (with ``<column>_low`` / ``_high``).
    labels : mapping, optional
        Driver name -> label.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        One bar per driver (the "all drivers" row is left out), best first at the top.
        A bar whose CI excludes zero is solid blue (red when negative); a bar whose CI
        includes zero is drawn as a grey outline, hatched, and its label ends in
        "(CI includes 0)". The x axis names the currency and horizon for money.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from exresearch.value import value_chain
    >>> from exresearch.plots import plot_value
    >>> rng = np.random.default_rng(5)
    >>> d = pd.DataFrame(rng.normal(3.5, 0.5, size=(100, 3)), columns=["tools", "leader", "pay"])
    >>> d["nps"] = 20 * d.leader + rng.normal(0, 5, 100)
    >>> d["growth"] = 0.1 * d.nps + rng.normal(0, 1, 100)
    >>> v = value_chain(d, drivers=["tools", "leader", "pay"], cx="nps", business="growth",
    ...                 revenue=2e7, currency="EUR", n_boot=200, seed=1)
    >>> ax = plot_value(v)
    >>> [t.get_text() for t in ax.get_yticklabels()][-1]
    'leader'
    >>> ax.get_xlabel()
    'revenue (EUR, a year)'
    """
    import matplotlib.ticker as mticker
    import numpy as np

    need = {"driver", column, f"{column}_low", f"{column}_high"}
    lo_col = f"{column}_low" if column != "net" else "net_low"
    if not isinstance(value, pd.DataFrame) or not need <= set(value.columns):
        raise ParameterError(
            f"`value` must be the DataFrame returned by value_chain with columns "
            f"{sorted(need)}, but {type(value).__name__} was passed")
    v = value[value["driver"] != "all drivers"].iloc[::-1]
    labels = labels or {}
    ax = _axes(ax, (7, 0.45 * len(v) + 1.5))
    est, lo, hi = (v[c].to_numpy(dtype=float) for c in (column, lo_col, f"{column}_high"))
    crosses = (lo <= 0) & (hi >= 0)
    names = [labels.get(d, d) + (" (CI includes 0)" if c else "")
             for d, c in zip(v["driver"], crosses, strict=True)]
    y = np.arange(len(v))
    for yi, c, e in zip(y, crosses, est, strict=True):
        if c:  # uncertain: an outline, never a solid bar that reads as a gain
            ax.barh(yi, e, color="none", edgecolor="0.4", hatch="//", lw=1)
        else:
            ax.barh(yi, e, color="C0" if e >= 0 else "C3")
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="none", ecolor="0.2", capsize=3)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_yticks(y, names)
    if column in ("money", "net"):
        cur = v["currency"].iloc[0] if "currency" in v and isinstance(v["currency"].iloc[0], str) \
            else "currency units"
        h = float(v["horizon_years"].iloc[0]) if "horizon_years" in v else 1.0
        when = "a year" if h == 1 else f"over {h:g} years"
        ax.set_xlabel(f"{'revenue' if column == 'money' else 'net value'} ({cur}, {when})")
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(
            lambda x, _: f"{float(f'{x:.2g}'):,.0f}"))
    else:
        ax.set_xlabel(column)
    ax.set_title("Value of closing the gap to the top quarter (95% CI)", fontsize=9)
    return ax
