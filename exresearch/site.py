"""HTML for the report site: offline report pages and the index page.

Report pages are rendered in-process with nbconvert's ``HTMLExporter`` from a
template derived from JupyterLab's (``lab``) that drops every script or font loaded
from a CDN (require.js, MathJax, mermaid, widgets), hides code and the parameters
cells, embeds images, and adds a table of contents, readable table styles, a link
back to the index and a provenance footer. Every page also carries a
Content-Security-Policy that forbids loading anything from the network, so a page
that slipped a remote reference would still make no request.

All text that comes from ``study.yml`` or the data is escaped with
:func:`exresearch.privacy.escape` before it reaches a page.

Examples
--------
>>> from exresearch.site import render_index
>>> page = render_index(study={"name": "<b>S</b>"}, reports=[], headline=[])
>>> "&lt;b&gt;S&lt;/b&gt;" in page and "<b>S</b>" not in page
True
"""

from __future__ import annotations

import json
import re

from .privacy import escape

__all__ = ["render_report", "render_index", "render_error_page", "render_share_index",
           "CSP", "INDEX_CSP", "PAGE_CSS"]

#: Content-Security-Policy of the report pages: nothing may be fetched except inline
#: styles and ``data:`` images/fonts, and no script runs at all (so markup that slipped
#: into a notebook output could not execute); links to other local pages still work.
CSP = (
    "default-src 'none'; img-src data:; font-src data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)

#: Styles shared by report pages and the index: readable tables, TOC, footer.
PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main.exr-main, .exr-page { max-width: 1100px; margin: 0 auto; padding: 0 1.5rem 2rem; }
.exr-topbar { max-width: 1100px; margin: 0 auto; padding: .75rem 1.5rem; font-size: .9rem; }
.exr-topbar a { color: #1a5fb4; text-decoration: none; }
nav.exr-toc { max-width: 1100px; margin: 0 auto 1rem; padding: .5rem 1.5rem;
  border-left: 4px solid #1a5fb4; background: #f4f7fb; }
nav.exr-toc h2 { font-size: 1rem; margin: .3rem 0; }
nav.exr-toc ul { margin: .2rem 0; padding-left: 1.2rem; }
nav.exr-toc li.exr-toc-2 { margin-left: 1rem; } nav.exr-toc li.exr-toc-3 { margin-left: 2rem; }
nav.exr-toc a { color: #1a5fb4; text-decoration: none; }
table.dataframe, table.exr-table { border-collapse: collapse; margin: .5rem 0 1rem;
  font-size: .9rem; font-variant-numeric: tabular-nums; }
table.dataframe th, table.dataframe td, table.exr-table th, table.exr-table td {
  padding: .3rem .6rem; border-bottom: 1px solid #d0d7de; text-align: right; }
table.dataframe thead th, table.exr-table thead th { background: #eef2f6;
  border-bottom: 2px solid #8c959f; }
table.dataframe tbody tr:nth-child(even), table.exr-table tbody tr:nth-child(even) {
  background: #f8f9fa; }
table.exr-table td.exr-text, table.exr-table th.exr-text { text-align: left; }
.exr-status-ok { color: #1a7f37; font-weight: 600; }
.exr-status-failed { color: #cf222e; font-weight: 600; }
.exr-status-not-built { color: #6e7781; }
.exr-error { color: #cf222e; font-family: ui-monospace, monospace; font-size: .85rem;
  white-space: pre-wrap; }
footer.exr-provenance { max-width: 1100px; margin: 2rem auto 1rem; padding: .75rem 1.5rem;
  border-top: 1px solid #d0d7de; color: #57606a; font-size: .8rem; }
footer.exr-provenance dt { font-weight: 600; float: left; clear: left; width: 11rem; }
footer.exr-provenance dd { margin-left: 11.5rem; overflow-wrap: anywhere; }
footer.exr-provenance code { font-size: .75rem; }
.exr-filter { margin: .5rem 0; display: flex; gap: 1rem; flex-wrap: wrap; }
.exr-filter input, .exr-filter select { font-size: 1rem; padding: .25rem .5rem; }
.exr-headline { display: flex; gap: 1rem; flex-wrap: wrap; margin: .5rem 0 1rem; }
.exr-card { border: 1px solid #d0d7de; border-radius: 6px; padding: .6rem .9rem;
  min-width: 10rem; background: #fff; }
.exr-card .exr-value { font-size: 1.4rem; font-weight: 600; }
.exr-card .exr-label { color: #57606a; font-size: .85rem; }
.exr-card .exr-note { color: #57606a; font-size: .75rem; }
details.exr-files { display: inline-block; margin-left: .75rem; vertical-align: top; }
details.exr-files summary { cursor: pointer; color: #57606a; }
details.exr-files[open] { display: block; margin: .3rem 0 0; }
a.exr-report-link { font-weight: 600; }
"""

# nbconvert template: JupyterLab's, minus every remote script, plus our chrome.
_REPORT_TEMPLATE = r"""
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}
<meta http-equiv="Content-Security-Policy" content="{{ resources.exr_csp }}">
{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}<style type="text/css">{{ resources.exr_css }}</style>{% endblock extra_css %}
{%- block body_header -%}
<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
{% if resources.exr_index_href %}<div class="exr-topbar"><a href="{{ resources.exr_index_href }}">&larr; All reports</a></div>{% endif %}
<!--EXR-TOC-->
<main class="exr-main">
{%- endblock body_header -%}
{% block body_footer %}
</main>
{{ resources.exr_footer }}
</body>
{% endblock body_footer %}
"""

# JupyterLab's theme CSS carries comments with URLs (credits): no request, but noise for
# anyone auditing a page for remote references, so comments inside <style> are dropped.
_STYLE = re.compile(r"(<style[^>]*>)(.*?)(</style>)", re.S | re.I)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_HEADING = re.compile(r'<h([1-3]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_TAG = re.compile(r"<[^>]+>")
#: A link with a scheme (``http:``, ``javascript:``, ``mailto:`` ...). Report pages link
#: only to anchors and to pages of the site; Markdown turns a bare URL in data text (a
#: label ``=HYPERLINK("http://x")``) into a link, so such links lose their ``href``.
_SCHEME_LINK = re.compile(r'(<a\b[^>]*?)\s+href\s*=\s*"\s*[A-Za-z][A-Za-z0-9+.-]*:[^"]*"', re.I)

_exporter = None


def _get_exporter():
    global _exporter
    if _exporter is None:
        from jinja2 import DictLoader
        from nbconvert import HTMLExporter
        from traitlets.config import Config

        c = Config()
        c.HTMLExporter.exclude_input = True
        c.HTMLExporter.exclude_input_prompt = True
        c.HTMLExporter.exclude_output_prompt = True
        c.HTMLExporter.embed_images = True
        c.TagRemovePreprocessor.enabled = True
        c.TagRemovePreprocessor.remove_cell_tags = {
            "injected-parameters", "parameters", "remove_cell", "remove-cell",
        }
        c.TagRemovePreprocessor.remove_input_tags = {"remove_input", "remove-input"}
        _exporter = HTMLExporter(
            config=c,
            template_name="lab",
            extra_loaders=[DictLoader({"exresearch_report.html.j2": _REPORT_TEMPLATE})],
            template_file="exresearch_report.html.j2",
        )
    return _exporter


def _toc(body: str) -> str:
    items = []
    for level, anchor, inner in _HEADING.findall(body):
        text = _TAG.sub("", inner).replace("¶", "").strip()
        if text:
            items.append(
                f'<li class="exr-toc-{level}"><a href="#{anchor}">{text}</a></li>'
            )
    if not items:
        return ""
    return '<nav class="exr-toc"><h2>Contents</h2><ul>' + "".join(items) + "</ul></nav>"


def _footer(provenance: dict) -> str:
    rows = []
    for key, value in provenance.items():
        if isinstance(value, dict):
            inner = "".join(
                f"<li><code>{escape(k)}</code>: <code>{escape(v)}</code></li>"
                for k, v in value.items()
            )
            shown = f"<details><summary>{len(value)} item(s)</summary><ul>{inner}</ul></details>"
        else:
            shown = escape(value)
        rows.append(f"<dt>{escape(key)}</dt><dd>{shown}</dd>")
    return (
        '<footer class="exr-provenance"><h2>Provenance</h2><dl>' + "".join(rows)
        + "</dl></footer>"
    )


def render_report(nb, *, title: str, provenance: dict,
                  index_href: str | None = "../index.html") -> str:
    """Render an executed notebook as a self-contained, offline HTML report page.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The executed notebook (papermill output), failures included.
    title : str
        Page title (escaped).
    provenance : dict
        Shown in the footer, in order: label -> text, or label -> dict (shown as a
        collapsible list, e.g. input file hashes or library versions).
    index_href : str or None, default "../index.html"
        Relative link back to the site index; None for a page outside a site (no link).

    Returns
    -------
    str
        The HTML page: no code, no parameters cells, images embedded as ``data:`` URIs,
        a table of contents built from the markdown headings, and no reference to
        anything outside the page.

    Examples
    --------
    >>> from nbformat.v4 import new_markdown_cell, new_notebook
    >>> nb = new_notebook(cells=[new_markdown_cell("# Results")])
    >>> page = render_report(nb, title="Acme", provenance={"study": "S"})
    >>> '<a href="#Results">Results</a>' in page, "https://" in page
    (True, False)
    """
    exporter = _get_exporter()
    nb = nb.copy() if hasattr(nb, "copy") else nb
    nb.metadata["title"] = str(title)
    resources = {
        "exr_csp": CSP,
        "exr_css": PAGE_CSS,
        "exr_index_href": escape(index_href) if index_href else "",
        "exr_footer": _footer(provenance),
        "metadata": {"name": str(title)},
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    body = _STYLE.sub(lambda m: m.group(1) + _CSS_COMMENT.sub("", m.group(2)) + m.group(3), body)
    body = _SCHEME_LINK.sub(r"\1", body)
    return body.replace("<!--EXR-TOC-->", _toc(body), 1)


def render_error_page(*, title: str, error: str, provenance: dict,
                      index_href: str | None = "../index.html") -> str:
    """A minimal page for a report whose notebook could not even be executed.

    Parameters
    ----------
    title : str
        Page title.
    error : str
        The error message, shown as text.
    provenance : dict
        As in :func:`render_report`.
    index_href : str or None, default "../index.html"
        Relative link back to the index; None for no link.

    Returns
    -------
    str
        HTML page.

    Examples
    --------
    >>> "&lt;b&gt;" in render_error_page(title="T", error="<b>", provenance={})
    True
    """
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(title)}</title><style>{PAGE_CSS}</style></head><body>"
        + (f'<div class="exr-topbar"><a href="{escape(index_href)}">&larr; All reports</a></div>'
           if index_href else "") +
        f'<main class="exr-main"><h1>{escape(title)}</h1>'
        f'<p class="exr-status-failed">This report failed.</p>'
        f'<pre class="exr-error">{escape(error)}</pre></main>'
        f"{_footer(provenance)}</body></html>\n"
    )


_FILTER_JS = r"""
(function () {
  var q = document.getElementById('exr-q'), ind = document.getElementById('exr-industry');
  var rows = document.querySelectorAll('#exr-clients tbody tr');
  var count = document.getElementById('exr-count');
  function apply() {
    var text = q.value.trim().toLowerCase(), industry = ind.value, shown = 0;
    rows.forEach(function (tr) {
      var ok = (!text || tr.getAttribute('data-search').indexOf(text) >= 0) &&
               (!industry || tr.getAttribute('data-industry') === industry);
      tr.hidden = !ok; if (ok) { shown += 1; }
    });
    count.textContent = shown + ' of ' + rows.length + ' client reports';
  }
  q.addEventListener('input', apply); ind.addEventListener('change', apply); apply();
})();
"""


def _script_hash(js: str) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode()


#: The index page's policy: as :data:`CSP`, plus exactly one script, its own filter
#: (allowed by hash, so no other inline script or event handler can run).
INDEX_CSP = CSP + f"; script-src 'sha256-{_script_hash(_FILTER_JS)}'"


def _status_cell(record: dict) -> str:
    status = record.get("status", "not built")
    cls = "exr-status-" + re.sub(r"[^a-z]+", "-", status.lower())
    out = f'<span class="{cls}">{escape(status)}</span>'
    if record.get("error"):
        out += f'<div class="exr-error">{escape(record["error"])}</div>'
    return out


def _links(record: dict) -> str:
    out = ""
    if record.get("html"):
        out += f'<a class="exr-report-link" href="{escape(record["html"])}">report</a>'
    tables = record.get("tables") or []
    if tables:
        links = " &middot; ".join(
            f'<a href="{escape(t)}" download>{escape(t.rsplit("/", 1)[-1])}</a>' for t in tables
        )
        n = len(tables)
        out += (f'<details class="exr-files"><summary>{n} table{"s" if n != 1 else ""} '
                f"(CSV)</summary>{links}</details>")
    if record.get("share"):  # shown, not linked: the folder is what is handed over
        folder = record["share"].rsplit("/", 1)[0] + "/"
        out += (f' <span class="exr-share" title="the folder to give this client (see '
                f'docs/privacy.md)">share: <code>{escape(folder)}</code></span>')
    return out or "&mdash;"


def render_index(*, study: dict, reports: list[dict], headline: list[dict],
                 provenance: dict | None = None) -> str:
    """Render the site's index page.

    Parameters
    ----------
    study : dict
        Overview: ``name`` and any other label -> value pairs to show (clients,
        periods, seed, built ...), all escaped.
    reports : list of dict
        One per report, as in ``manifest.json``: ``kind`` (``"client"``,
        ``"synthesis"``, ``"data_quality"``), ``client_id``, ``name``, ``industry``,
        ``status``, ``error``, ``html`` and ``tables`` (paths relative to the site),
        ``duration``.
    headline : list of dict
        Headline results from the synthesis: ``label``, ``value`` and optional
        ``note`` (see ``docs/build.md``).
    provenance : dict, optional
        Footer, as in :func:`render_report`.

    Returns
    -------
    str
        The HTML page, with a small inline filter script and no external reference.

    Examples
    --------
    >>> page = render_index(study={"name": "EX 2026", "Clients": 1}, headline=[],
    ...                     reports=[{"kind": "client", "client_id": "acme", "name": "Acme",
    ...                               "status": "ok", "html": "reports/client-acme.html"}])
    >>> 'href="reports/client-acme.html"' in page
    True
    """
    name = study.get("name", "Study")
    overview = "".join(
        f"<tr><th class=\"exr-text\">{escape(k)}</th><td class=\"exr-text\">{escape(v)}</td></tr>"
        for k, v in study.items() if k != "name"
    )
    cards = "".join(
        '<div class="exr-card">'
        f'<div class="exr-value">{escape(h.get("value", ""))}</div>'
        f'<div class="exr-label">{escape(h.get("label", ""))}</div>'
        + (f'<div class="exr-note">{escape(h["note"])}</div>' if h.get("note") else "")
        + "</div>"
        for h in headline
    )
    study_reports = [r for r in reports if r.get("kind") != "client"]
    clients = [r for r in reports if r.get("kind") == "client"]
    study_rows = "".join(
        f'<tr><td class="exr-text">{escape(r.get("name"))}</td><td class="exr-text">'
        f"{_status_cell(r)}</td><td class=\"exr-text\">{_links(r)}</td></tr>"
        for r in study_reports
    )
    industries = sorted({str(r.get("industry")) for r in clients if r.get("industry")})
    options = "".join(f'<option value="{escape(i)}">{escape(i)}</option>' for i in industries)
    client_rows = "".join(
        "<tr data-search=\"{search}\" data-industry=\"{industry}\">"
        '<td class="exr-text">{name}</td><td class="exr-text"><code>{cid}</code></td>'
        '<td class="exr-text">{industry}</td><td class="exr-text">{status}</td>'
        '<td class="exr-text">{links}</td><td>{duration}</td></tr>'.format(
            search=escape(" ".join(
                str(r.get(k) or "") for k in ("name", "client_id", "industry")
            ).lower()),
            industry=escape(r.get("industry") or ""),
            name=escape(r.get("name")),
            cid=escape(r.get("client_id")),
            status=_status_cell(r),
            links=_links(r),
            duration=("" if r.get("duration") is None else f"{r['duration']:.1f} s"),
        )
        for r in clients
    )
    n_failed = sum(r.get("status") == "failed" for r in reports)
    summary = (
        f'<p class="exr-status-failed">{n_failed} report(s) failed: see below.</p>'
        if n_failed else ""
    )
    headline_html = (
        f'<h2 id="headline">Headline results</h2><div class="exr-headline">{cards}</div>'
        if cards else ""
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">'
        f'<meta http-equiv="Content-Security-Policy" content="{INDEX_CSP}">'
        f"<title>{escape(name)}</title><style>{PAGE_CSS}</style></head><body>"
        f'<div class="exr-page"><h1>{escape(name)}</h1>{summary}'
        f'<table class="exr-table">{overview}</table>{headline_html}'
        '<h2 id="study-reports">Study reports</h2><table class="exr-table"><thead><tr>'
        '<th class="exr-text">Report</th><th class="exr-text">Status</th>'
        f'<th class="exr-text">Files</th></tr></thead><tbody>{study_rows}</tbody></table>'
        '<h2 id="client-reports">Client reports</h2>'
        + ('<p class="exr-note">This page names every client: it is for the study team. '
           "Give each client only its <code>share/&lt;id&gt;/</code> folder.</p>"
           if any(r.get("share") for r in clients) else "")
        + '<div class="exr-filter">'
        '<label>Search <input id="exr-q" type="search" placeholder="name, id or industry">'
        '</label><label>Industry <select id="exr-industry"><option value="">all</option>'
        f'{options}</select></label><span id="exr-count"></span></div>'
        '<table class="exr-table" id="exr-clients"><thead><tr>'
        '<th class="exr-text">Client</th><th class="exr-text">Id</th>'
        '<th class="exr-text">Industry</th><th class="exr-text">Status</th>'
        '<th class="exr-text">Files</th><th>Run time</th></tr></thead>'
        f"<tbody>{client_rows}</tbody></table></div>"
        + (_footer(provenance) if provenance else "")
        + f"<script>{_FILTER_JS}</script></body></html>\n"
    )


def render_share_index(*, study_name: str, client_name: str, report: str,
                       tables: list[str], synthesis: str | None = None) -> str:
    """The index page of one client's share bundle (``share/<client_id>/index.html``).

    Lists only what the bundle holds: the client's own report, its CSV tables and the
    synthesis page. No script runs (the report pages' :data:`CSP`).

    Parameters
    ----------
    study_name : str
        Study name (escaped).
    client_name : str
        This client's display name (escaped).
    report : str
        Relative path of the client's report page, e.g. ``reports/client-acme.html``.
    tables : list of str
        Relative paths of the client's CSV tables.
    synthesis : str, optional
        Relative path of the synthesis page, when it is part of the bundle.

    Returns
    -------
    str
        The HTML page.

    Examples
    --------
    >>> page = render_share_index(study_name="S", client_name="<i>A</i>",
    ...                           report="reports/client-a.html", tables=[])
    >>> "&lt;i&gt;A&lt;/i&gt;" in page and "<script" not in page
    True
    """
    items = [f'<li><a class="exr-report-link" href="{escape(report)}">'
             f"{escape(client_name)}: client report</a></li>"]
    if synthesis:
        items.append(f'<li><a class="exr-report-link" href="{escape(synthesis)}">'
                     "Synthesis across clients</a> (other organisations anonymised)</li>")
    links = " &middot; ".join(
        f'<a href="{escape(t)}" download>{escape(t.rsplit("/", 1)[-1])}</a>' for t in tables)
    if links:
        items.append(f"<li>Tables (CSV): {links}</li>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(study_name)}: {escape(client_name)}</title>"
        f"<style>{PAGE_CSS}</style></head><body><div class=\"exr-page\">"
        f"<h1>{escape(study_name)}</h1><h2>Reports for {escape(client_name)}</h2>"
        f"<ul>{''.join(items)}</ul></div></body></html>\n"
    )


def _json_default(value):
    return str(value)


def dumps_manifest(manifest: dict) -> str:
    """Serialise the manifest deterministically (sorted keys, two-space indent)."""
    return json.dumps(manifest, indent=2, sort_keys=True, default=_json_default) + "\n"
