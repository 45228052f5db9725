"""Report-level glue for the parameterised notebooks (a package: one module per job).

======================  ==================================================================
module                  holds
======================  ==================================================================
``report.setup``        notebook parameters: :func:`setup_report`, :func:`check_number`,
                        :func:`check_choice`
``report.roles``        :class:`Roles`: which scale or outcome plays which part
``report.panels``       one client's panel, unit means and descriptive tables; the build's
                        preload hook (:func:`preload_study`)
``report.clients``      several clients: benchmark, per-client inputs of the synthesis,
                        pooling over clients, headline cards
``report.loop``         the loop verdict and projection inputs of a fitted cross-lagged model
``report.client``       tables derived for one report (robustness, reliability with
                        agreement, "better than"), per-client stacking, data-quality tables
``report.summaries``    each client's part of the synthesis and data quality, computed per
                        client and cached by its data's hash (:func:`synthesis_inputs`)
``report.planning``     the current design, clients needed, the simulation check of power
``report.narrative``    every sentence written from numbers, number formats, Markdown escaping
``report.findings``     the executive summary, one small function per finding
``report.tables``       :func:`save_table`, :func:`styled` and the column-label vocabulary
                        :data:`LABELS`
======================  ==================================================================

Every name is importable from ``exresearch.report`` itself.

The notebooks in ``notebooks/`` hold no ``def`` or ``class``: everything they need
beyond the analysis modules lives here. Checking the notebook parameters, assembling a
client's unit panel and per-unit means, the EX profile, the response counts and the
suppressed units of the appendix, the anonymous benchmark, the per-client inputs of the
synthesis (under pseudonyms), pooling the cross-lagged paths, the executive-summary
findings written as sentences from the computed numbers, and writing every table that a
notebook shows as a CSV file.

Conventions shared by the four notebooks (``client_report``, ``synthesis``,
``data_quality``, ``planning``):

* A Markdown cell with the title and a one-paragraph introduction, then one cell tagged
  ``parameters``, each line ``name: type = default  # meaning`` (so that
  ``papermill --help-notebook`` documents it), continued on comment lines ``#   (...)``
  to stay within about 90 characters; analysis settings are parameters with documented
  defaults. Every notebook takes ``study_path``
  (default ``"data/demo"``) and ``output_dir`` (default ``""``: ``reports/tables/<notebook>``
  in the repository); the client report also ``client_id`` (default ``""``: the study's
  first client, so the committed notebook names no client) and ``n_boot``.
* The first cell after the parameters calls :func:`quiet_known_warnings` (the specific
  warnings of :data:`KNOWN_WARNINGS`, nothing else) and :func:`setup_report`, which raises
  one :class:`~exresearch.exceptions.ParameterError` naming the allowed values.
* Each section computes what it shows in its own cells through library calls; sentences
  come from :mod:`exresearch.report.narrative`, headers from :data:`LABELS`, figures from
  :mod:`exresearch.plots`, privacy rules from :mod:`exresearch.privacy`.
* Every table shown is written with :func:`save_table` as ``<output_dir>/<name>.csv``; the
  synthesis also writes ``headline.csv`` (``label, value, note``; :func:`headline_table`),
  which ``exresearch build`` shows as cards on the site's index page.
* Every random step is seeded with ``study.config.seed``.

Two rules hold everywhere in this package:

* **Suppression.** Every respondent-level statistic (profile, reliability, agreement,
  response counts) uses only respondents of unit-periods with at least
  ``min_group_size`` respondents (:func:`reported_survey`); a suppressed unit-period
  shows up only as its id, period and the reason, never with a value or a count, and
  no total is published that would let a reader subtract their way to it.
* **Inert text.** Labels, names and ids from ``study.yml`` or the data that go into
  Markdown pass through :func:`md_escape`; tables go out through
  :func:`exresearch.privacy.write_csv` (:func:`save_table`).

Examples
--------
>>> from exresearch.report import fmt_money, md_escape
>>> fmt_money(443006.55)
'443,000'
>>> md_escape("<b>Acme</b> [x](javascript:alert(1))")
'&lt;b&gt;Acme&lt;/b&gt; \\\\[x\\\\]\\\\(javascript&#58;alert\\\\(1\\\\)\\\\)'
"""

from __future__ import annotations

# styled() returns a Styler in every report: imported with this package (jinja2 comes with it,
# ~0.05 s), so a build's zygote, which imports exresearch.report, pays it once for all reports
import pandas.io.formats.style  # noqa: F401

from .client import (
    better_than,
    client_overview,
    input_files,
    per_client,
    quality_by_client,
    reliability_agreement,
    robustness_table,
    scale_grid,
)
from .clients import (
    all_unit_means,
    benchmark_aggregates,
    benchmark_table,
    client_benchmark_rows,
    cross_lagged_by_client,
    display_names,
    headline_table,
    loops_by_client,
    per_client_correlations,
    pool_estimates,
    pool_paths,
    pooled_correlations,
    pooled_loop,
    utility_by_client,
    utility_summary,
)
from .findings import FINDING_COLUMNS, FINDINGS, executive_summary
from .loop import _trend_sd, loop_coefficients, loop_summary  # noqa: F401
from .narrative import (  # noqa: F401
    DIRECTION_LABELS,
    _strength,
    cards_markdown,
    describe_client,
    describe_heterogeneity,
    describe_incremental,
    describe_inputs,
    describe_mediation,
    describe_power,
    describe_projection,
    describe_simulation_check,
    describe_study,
    describe_suppressed,
    describe_verdict,
    describe_weak_scales,
    describe_withheld,
    evidence_verb,
    fmt_money,
    fmt_signed,
    headline_cards,
    md_escape,
    mediation_paths,
    ordinal,
)
from .panels import (  # noqa: F401
    _PANELS,
    _PRELOADED,
    _forget_preloaded,
    _preloaded,
    cache_panels,
    client_panel,
    ex_profile,
    ex_reliability,
    ex_trend,
    latest_rows,
    missingness,
    preload_study,
    reported_survey,
    response_counts,
    suppressed_units,
    unit_means,
)
from .planning import check_designs, clients_needed, current_design, power_check
from .roles import EX_INDEX, Roles, measure_roles  # noqa: F401
from .setup import (  # noqa: F401
    _NOTEBOOKS,
    KNOWN_WARNINGS,
    ReportSetup,
    _resolve_study_path,
    _studies_under,
    check_choice,
    check_int_list,
    check_names,
    check_number,
    check_number_list,
    quiet_known_warnings,
    setup_report,
)
from .summaries import (
    QualityInputs,
    SynthesisInputs,
    client_panels,
    quality_inputs,
    synthesis_inputs,
)
from .tables import LABELS, collapsed, headers, save_table, styled

__all__ = [
    "ReportSetup",
    "Roles",
    "setup_report",
    "preload_study",
    "check_number",
    "check_choice",
    "missingness",
    "ex_reliability",
    "measure_roles",
    "client_panel",
    "cache_panels",
    "unit_means",
    "reported_survey",
    "latest_rows",
    "ex_trend",
    "ex_profile",
    "response_counts",
    "suppressed_units",
    "save_table",
    "collapsed",
    "styled",
    "md_escape",
    "fmt_money",
    "fmt_signed",
    "ordinal",
    "evidence_verb",
    "loop_summary",
    "loop_coefficients",
    "describe_incremental",
    "describe_mediation",
    "executive_summary",
    "all_unit_means",
    "benchmark_aggregates",
    "client_benchmark_rows",
    "benchmark_table",
    "display_names",
    "per_client_correlations",
    "cross_lagged_by_client",
    "pool_estimates",
    "pool_paths",
    "utility_summary",
    "headline_table",
    "DIRECTION_LABELS",
    "FINDING_COLUMNS",
    "FINDINGS",
    "LABELS",
    "headers",
    "describe_verdict",
    "describe_projection",
    "describe_heterogeneity",
    "describe_suppressed",
    "describe_weak_scales",
    "describe_power",
    "describe_simulation_check",
    "describe_withheld",
    "headline_cards",
    "cards_markdown",
    "robustness_table",
    "reliability_agreement",
    "better_than",
    "per_client",
    "check_int_list",
    "quiet_known_warnings",
    "KNOWN_WARNINGS",
    "mediation_paths",
    "pooled_correlations",
    "pooled_loop",
    "loops_by_client",
    "utility_by_client",
    "check_names",
    "check_number_list",
    "quality_by_client",
    "client_overview",
    "scale_grid",
    "describe_study",
    "current_design",
    "clients_needed",
    "check_designs",
    "power_check",
    "input_files",
    "describe_client",
    "describe_inputs",
    "synthesis_inputs",
    "quality_inputs",
    "client_panels",
    "SynthesisInputs",
    "QualityInputs",
]

# doctest.testmod(exresearch.report) finds only this package's own docstrings; the examples of
# the functions defined in the submodules are listed here so that it runs them too
__test__ = {name: globals()[name] for name in __all__ if callable(globals()[name])}
