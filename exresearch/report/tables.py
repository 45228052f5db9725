"""Tables: written as CSV (:func:`save_table`) and shown to readers (:func:`styled`), with
one column-label vocabulary (:data:`LABELS`)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

from ..exceptions import ParameterError
from ..privacy import write_csv


def save_table(df, out, name, *, digits=None):
    """Write a table as ``<out>/<name>.csv`` and return it for display.

    Parameters
    ----------
    df : pandas.DataFrame
        The table, at full precision (the CSV keeps it).
    out : pathlib.Path
        Output folder.
    name : str
        File stem: letters, digits, ``_``, ``-`` (the build publishes only such names).
    digits : int, optional
        Round the float columns of the returned copy for display.

    Returns
    -------
    pandas.DataFrame
        ``df`` (rounded to ``digits`` when given), for the notebook to show.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,100}", str(name)):
        raise ParameterError(
            f"`name` must be a file stem of letters, digits, '_' and '-', but {name!r} was passed"
        )
    write_csv(df, Path(out) / f"{name}.csv")
    return df.round(digits) if digits is not None else df


#: The one column-label vocabulary of the reports: CSV column -> header a reader sees.
#: :func:`styled` applies it to every table it shows; a notebook passes ``rename`` only for
#: the headers that depend on the study (an outcome's label, say) or differ in one table.
LABELS = {
    # estimates and intervals
    "n": "units", "k": "clients", "n_units": "units", "n_items": "items",
    "ci_low": "95% CI low", "ci_high": "95% CI high",
    "boot_low": "bootstrap low", "boot_high": "bootstrap high",
    "pi_low": "prediction low", "pi_high": "prediction high",
    "p_val": "p", "p_corr": "p (adjusted)", "i2": "I²", "r2": "R²", "delta_r2": "R² added",
    "unit_id": "unit", "client_id": "client",
    # EX profile and spread
    "mean": "average", "pct_favourable": "% favourable", "sd_units": "spread (SD)",
    "sd": "SD", "q1": "lower quarter", "q3": "upper quarter", "range": "range (max - min)",
    "client_mean": "organisation", "diff": "difference",
    # linkage and drivers
    "r_pearson": "Pearson r", "r_spearman": "Spearman rank r",
    "impact": "impact (% of R²)", "impact_low": "95% CI low", "impact_high": "95% CI high",
    # value
    "improvement": "rise (points)", "money": "money per year", "money_ci_low": "95% CI low",
    "money_ci_high": "95% CI high", "n_top": "top-quarter units",
    "n_bottom": "bottom-quarter units", "mean_top": "top quarter",
    "mean_bottom": "bottom quarter", "diff_ci_low": "95% CI low", "diff_ci_high": "95% CI high",
    "mean_diff": "average difference", "median_diff": "median difference",
    "clients_top_better": "clients where the top quarter does better",
    # benchmark
    "better_than_pct": "better than (%)", "n_contributors": "other organisations",
    # synthesis
    "k_level": "clients", "level_r": "pooled r", "level_ci_low": "95% CI low",
    "level_ci_high": "95% CI high", "omitted": "left out", "delta": "change",
    "rbar": "mean r (observed)", "pct_explained": "% variance from sampling error",
    "rho": "corrected r", "rho_cr_low": "80% credibility low",
    "rho_cr_high": "80% credibility high",
    "trend": "EX trend", "x_to_y": "EX → CX", "x_to_y_p": "p (EX → CX)", "y_to_x": "CX → EX",
    "y_to_x_p": "p (CX → EX)",
    # responses and data quality
    "units_reported": "units reported", "units_suppressed": "units suppressed",
    "respondents_reported": "respondents in reported units", "response_rate": "response rate",
    "alpha": "reliability (alpha)", "icc1": "ICC(1)", "icc2": "ICC(2)",
    "rwg_j_mean": "agreement rwg(j)", "revenue_given": "revenue in study.yml",
    "unit_periods": "unit-periods",
    # planning
    "n_clients": "clients", "units_per_client": "units per client",
    "respondents_per_unit": "respondents per unit", "analytic_power": "formula",
    "n_sims": "simulated studies",
}


def headers(columns, rename=None) -> dict:
    """Column -> reader's header: :data:`LABELS`, then ``rename`` on top.

    A vocabulary header that two columns of one table would share (two "95% CI low",
    say) is not used; the column keeps its name unless ``rename`` gives one.

    Examples
    --------
    >>> headers(["outcome", "r", "ci_low", "p_corr"], rename={"r": "r (Pearson)"})
    {'ci_low': '95% CI low', 'p_corr': 'p (adjusted)', 'r': 'r (Pearson)'}
    >>> headers(["ci_low", "impact_low"])
    {}
    """
    rename = dict(rename or {})
    vocab = {c: LABELS[c] for c in columns if c in LABELS and c not in rename}
    taken = [vocab.get(c, rename.get(c, c)) for c in columns]
    vocab = {c: h for c, h in vocab.items() if taken.count(h) == 1}
    return {**vocab, **rename}


def styled(df, *, precision=2, caption=None, formats=None, rename=None):
    """A table for readers: rounded, no index, text left-aligned, missing shown as "–".

    Column headers come from the shared vocabulary :data:`LABELS` (see :func:`headers`).

    Parameters
    ----------
    df : pandas.DataFrame
    precision : int, default 2
        Decimals of float columns.
    caption : str, optional
        Shown above the table (escaped).
    formats : dict, optional
        Column (after renaming) -> format string or callable, overriding ``precision``.
    rename : dict, optional
        Column renames for readers, on top of :data:`LABELS`.

    Returns
    -------
    pandas.io.formats.style.Styler
        Cell text is HTML-escaped when rendered.

    Examples
    --------
    >>> import pandas as pd
    >>> st = styled(pd.DataFrame({"scale": ["a"], "mean": [3.14159], "ci_low": [2.5]}))
    >>> list(st.data.columns)
    ['scale', 'average', '95% CI low']
    >>> "&lt; 0.001" in styled(pd.DataFrame({"r": [0.5], "p": [1e-9]})).to_html()
    True
    """
    from ..formatting import fmt_p, is_p_column

    names = headers(list(df.columns), rename)
    d = df.rename(columns=names)
    fmt = {c: f"{{:.{precision}f}}" for c in d.columns if pd.api.types.is_float_dtype(d[c])}
    # p-values as readers need them: "< 0.001", never "0.000" (exresearch.formatting)
    fmt.update({names.get(c, c): (lambda v: html.escape(fmt_p(v))) for c in df.columns
                if is_p_column(c) and pd.api.types.is_numeric_dtype(df[c])})
    fmt.update(formats or {})
    st = (d.style.format(fmt, na_rep="–", escape="html").format_index(escape="html", axis=1)
          .hide(axis="index"))
    st = st.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}],
                             overwrite=False)
    # text columns left-aligned by one rule per column ("#T_<id> td.col2"), not one
    # per cell as Styler.set_properties writes: at 300 clients the data-quality page's
    # tables carried 11,000 such rules and as many ids (2.11 -> 1.52 MB of page; a
    # 2,876-row table's to_html 0.37 -> 0.21 s); the same alignment on screen and paper
    text = [c for c in d.columns if not pd.api.types.is_numeric_dtype(d[c])]
    if text:
        st = st.set_table_styles({c: [{"selector": "td", "props": [("text-align", "left")]}]
                                  for c in text}, overwrite=False)
    if caption:
        st = st.set_caption(html.escape(str(caption)))
    return st


def collapsed(table, *, summary):
    """A long table folded under a one-line summary that opens it (HTML ``<details>``).

    For tables a reader looks up rather than reads, such as every client's numbers
    behind a caterpillar plot; the page stays short, and the table is one click away
    (no script: the browser folds it).

    Parameters
    ----------
    table : pandas.io.formats.style.Styler or pandas.DataFrame
        :func:`styled` (a DataFrame is shown through it).
    summary : str
        The line shown while folded (escaped).

    Returns
    -------
    IPython.display.HTML
        ``<details class="exr-more"><summary>...</summary><table>...</details>``.

    Examples
    --------
    >>> import pandas as pd
    >>> out = collapsed(pd.DataFrame({"client": ["A & B"], "r": [0.25]}), summary="1 < 2")
    >>> out.data.startswith('<details class="exr-more"><summary>1 &lt; 2</summary>')
    True
    >>> "A &amp; B" in out.data and "0.25" in out.data
    True
    """
    from IPython.display import HTML

    if isinstance(table, pd.DataFrame):
        table = styled(table)
    if not hasattr(table, "to_html"):
        raise ParameterError("`table` must be a DataFrame or a styled table, but a "
                             f"{type(table).__name__} was passed")
    return HTML(f'<details class="exr-more"><summary>{html.escape(str(summary))}</summary>'
                f"{table.to_html()}</details>")
