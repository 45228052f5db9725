"""Every figure of the reports (seaborn/matplotlib), one module per part of the analysis.

Every function takes a tidy result first (of an analysis module or of
:mod:`exresearch.report`), draws on ``ax`` if given (else on a new figure's axes) and
returns the Axes (a function that draws several panels returns the Figure).
Nothing calls ``plt.show``; matplotlib is imported inside the functions so importing this
package stays cheap.

=========================  ===============================================================
module                     figures
=========================  ===============================================================
``plots.linkage``          correlation heatmap, any labelled heatmap, lagged and
                           cross-lagged links, driver quadrant, unit spread
``plots.profile``          EX trend over periods, the anonymous benchmark
``plots.economics``        the loop projection, estimates with intervals as bars
``plots.meta``             forest plot
``plots.planning``         power curves
``plots.quality``          reported and suppressed unit-periods, client x scale heat maps
                           (compact beyond 40 clients)
``plots.synthesis``        publication forest plots (numbers beside them), small
                           multiples, caterpillar plots (many clients), heat map of
                           corrected correlations
=========================  ===============================================================
"""

from __future__ import annotations

from .economics import plot_interval_bars, plot_projection, plot_value
from .linkage import (
                      plot_correlation_heatmap,
                      plot_cross_lagged,
                      plot_driver_quadrant,
                      plot_heatmap,
                      plot_lagged,
                      plot_unit_spread,
)
from .meta import plot_forest
from .planning import plot_power
from .profile import plot_benchmark, plot_trend
from .quality import QUALITY_MAX_ROWS, plot_client_grid, plot_unit_counts
from .synthesis import (
    FOREST_MAX_ROWS,
    forest_rows,
    plot_caterpillar,
    plot_forest_panels,
    plot_forest_table,
    plot_rho_heatmap,
)

__all__ = [
    "plot_correlation_heatmap",
    "plot_lagged",
    "plot_cross_lagged",
    "plot_driver_quadrant",
    "plot_unit_spread",
    "plot_heatmap",
    "plot_client_grid",
    "QUALITY_MAX_ROWS",
    "plot_forest",
    "plot_projection",
    "plot_interval_bars",
    "plot_value",
    "plot_trend",
    "plot_benchmark",
    "plot_power",
    "plot_unit_counts",
    "FOREST_MAX_ROWS",
    "forest_rows",
    "plot_caterpillar",
    "plot_forest_table",
    "plot_forest_panels",
    "plot_rho_heatmap",
]
