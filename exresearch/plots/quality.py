"""Figures of data quality: reported and suppressed unit-periods per client."""

from __future__ import annotations

from ._base import _axes, _need


def plot_unit_counts(counts, *, min_group_size, ax=None):
    """Reported and suppressed unit-periods per client, as stacked bars.

    Parameters
    ----------
    counts : pandas.DataFrame
        Stacked :func:`exresearch.report.response_counts` with ``client_id``.
    min_group_size : int
        Named in the legend.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> c = pd.DataFrame({"client_id": ["a", "a", "b"], "units_reported": [3, 4, 5],
    ...                   "units_suppressed": [1, 0, 2]})
    >>> ax = plot_unit_counts(c, min_group_size=5)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['b', 'a']
    """
    _need(counts, "counts", ["client_id", "units_reported", "units_suppressed"])
    by_client = counts.groupby("client_id", sort=False)[["units_reported",
                                                         "units_suppressed"]].sum()
    ax = _axes(ax, (8, 0.35 * len(by_client) + 1.5))
    by_client.iloc[::-1].plot.barh(stacked=True, ax=ax, color=["C0", "C3"])
    ax.set_xlabel("unit-periods")
    ax.set_ylabel("")
    ax.legend(["reported", f"suppressed (fewer than {min_group_size} respondents)"], fontsize=8,
              ncol=2, loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)
    ax.figure.tight_layout()
    return ax
