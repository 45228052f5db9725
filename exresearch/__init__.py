"""exresearch: link employee experience to customer experience and business results.

The public functions are imported lazily (PEP 562), so ``import exresearch`` is
cheap and a notebook or the CLI only pays for the modules it uses.

Examples
--------
>>> import exresearch
>>> exresearch.__version__
'0.1.0'
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

try:
    __version__ = _dist_version("exresearch")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

from .exceptions import (  # noqa: E402  (cheap, always needed)
    BuildError,
    ExresearchError,
    ParameterError,
    StudyValidationError,
)

#: public name -> module that defines it. Each module owns its own block.
_LAZY = {
    # study input contract
    "load_study": "study",
    "validate_study": "study",
    "Study": "study",
    "summarize_problems": "study",
    "import_export": "importer",
    # simulation and planning
    "simulate_study": "simulate",
    "power_analytic": "power",
    "power_simulation": "power",
    "power_grid": "power",
    # measurement
    "score_scales": "scoring",
    "reliability": "scoring",
    "item_total": "scoring",
    "enps": "scoring",
    "pct_favourable": "scoring",
    "aggregate_units": "aggregate",
    "unit_panel": "aggregate",
    "unit_error_variances": "aggregate",
    "agreement": "aggregate",
    "icc": "aggregate",
    "rwg_j": "aggregate",
    # linkage within a client
    "correlations": "linkage",
    "correlation_table": "linkage",
    "lagged_correlations": "direction",
    "repeated_measures_correlation": "direction",
    "cross_lagged": "direction",
    "classify_loop": "direction",
    "loop_direction": "direction",
    "trend_test": "loop",
    "pool_loop": "loop",
    "verdict_words": "loop",
    "loop_power": "validity",
    "mediation": "mediation",
    "incremental_validity": "drivers",
    "relative_weights": "drivers",
    "driver_priorities": "drivers",
    "unit_consistency": "consistency",
    "standout_units": "consistency",
    "plot_correlation_heatmap": "plots",
    "plot_lagged": "plots",
    "plot_cross_lagged": "plots",
    "plot_driver_quadrant": "plots",
    "plot_unit_spread": "plots",
    "plot_heatmap": "plots",
    "plot_forest": "plots",
    "plot_projection": "plots",
    "plot_interval_bars": "plots",
    "plot_trend": "plots",
    "plot_benchmark": "plots",
    "plot_power": "plots",
    "plot_unit_counts": "plots",
    # pooling across clients
    "meta_analysis": "meta",
    "hunter_schmidt": "meta",
    "meta_regression": "meta",
    "leave_one_out": "meta",
    "pool_correlations": "meta",
    # the synthesis as a published meta-analysis (issue 17)
    "psychometric_meta": "psychometric",
    "correct_correlations": "psychometric",
    "retest_reliability": "psychometric",
    "moderator_tests": "moderators",
    "merge_groups": "moderators",
    "client_characteristics": "moderators",
    "study_characteristics": "synthesis",
    "inclusion_account": "synthesis",
    "add_composite": "synthesis",
    "psychometric_table": "synthesis",
    "study_utility": "synthesis",
    "minimum_detectable_r": "synthesis",
    "plot_forest_table": "plots",
    "plot_forest_panels": "plots",
    # benchmarks and economics
    "client_percentiles": "benchmark",
    "client_aggregates": "benchmark",
    "quartile_utility": "economics",
    "chained_effect": "economics",
    "investment_table": "economics",
    "project_loop": "economics",
    # the one driver model per client and what it is worth (issue 16)
    "driver_model": "value",
    "weight_differences": "value",
    "value_chain": "value",
    "unit_actions": "value",
    "utility_table": "value",
    "format_money": "value",
    # report-level glue of the notebooks
    "setup_report": "report",
    "measure_roles": "report",
    "client_panel": "report",
    "cache_panels": "report",
    "executive_summary": "report",
    "pool_estimates": "report",
    # batch build, site and safe publishing
    "build_site": "build",
    "BuildResult": "build",
    # one report for a researcher, notebooks without outputs
    "run_notebook": "run",
    "strip_notebook": "nbstrip",
    "write_csv": "privacy",
    "escape": "privacy",
    "pseudonyms": "privacy",
    "blank_small_groups": "privacy",
    "publishable_per_client": "privacy",
    "redact_survey_values": "privacy",
    # house style, numbers for readers, what the site delivers (docs/style.md)
    "describe_figure": "style",
    "good_bad_color": "style",
    "format_frame": "formatting",
    "data_dictionary": "formatting",
    "write_workbook": "deliver",
    "publish_extras": "deliver",
}

_SUBMODULES = {
    "config", "exceptions", "study", "readers", "importer", "simulate", "power", "scoring", "aggregate",
    "linkage", "direction", "mediation", "drivers", "consistency", "meta", "psychometric", "moderators", "synthesis", "benchmark", "economics", "plots", "build", "site", "privacy",
    "value", "run", "kernel", "nbstrip", "loop", "validity", "riclpm", "style", "formatting",
    "deliver",
}

__all__ = [
    "__version__",
    "ExresearchError",
    "StudyValidationError",
    "ParameterError",
    "BuildError",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'exresearch' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
