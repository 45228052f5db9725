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

import bisect
import itertools
import json
import re

from .exceptions import ParameterError
from .privacy import escape

__all__ = ["render_report", "render_index", "render_error_page", "render_share_index",
           "write_assets", "CSP", "INDEX_CSP", "PAGE_CSS", "SITE_CSS",
           "CSS_PATH"]

#: Content-Security-Policy of the report pages: nothing may be fetched except the site's
#: own stylesheet (``'self'``), inline styles and ``data:`` images/fonts, and no script runs at all (so markup that slipped
#: into a notebook output could not execute); links to other local pages still work.
CSP = (
    "default-src 'none'; img-src data:; font-src data:; style-src 'self' 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)

#: Where every page finds the site's one stylesheet, relative to the site (or bundle) root.
CSS_PATH = "assets/site.css"

#: Styles shared by report pages and the index: readable tables, TOC, footer.
PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main.exr-main, .exr-page { max-width: 1100px; margin: 0 auto; padding: 0 1.5rem 2rem; }
.exr-topbar { max-width: 1100px; margin: 0 auto; padding: .75rem 1.5rem; font-size: .9rem; }
.exr-topbar a { color: #1a5fb4; text-decoration: none; }
nav.exr-toc { max-width: 1100px; margin: 0 auto 1rem; padding: .5rem 1.5rem;
  border-left: 4px solid #1a5fb4; background: #f4f7fb; }
nav.exr-toc .exr-toc-title { font-size: 1rem; font-weight: 600; margin: .3rem 0; }
nav.exr-toc ul { margin: .2rem 0; padding-left: 1.2rem; }
nav.exr-toc li.exr-toc-2 { margin-left: 1rem; } nav.exr-toc li.exr-toc-3 { margin-left: 2rem; }
nav.exr-toc a { color: #1a5fb4; text-decoration: none; }
table.dataframe, table.exr-table { border-collapse: collapse; margin: .5rem 0 1rem;
  font-size: .9rem; font-variant-numeric: tabular-nums; }
table.dataframe th, table.dataframe td, table.exr-table th, table.exr-table td {
  padding: .3rem .6rem; border-bottom: 1px solid #d0d7de; text-align: right; }
table.dataframe thead th, table.exr-table thead th { background: rgba(29, 78, 137, .08);
  border-bottom: 2px solid #8c959f; }
table.dataframe tbody tr:nth-child(even), table.exr-table tbody tr:nth-child(even) {
  background: rgba(0, 0, 0, .03); }
table.exr-table td.exr-text, table.exr-table th.exr-text { text-align: left; }
.exr-status-ok { color: #1a7f37; font-weight: 600; }
.exr-status-failed { color: #cf222e; font-weight: 600; }
.exr-status-not-built { color: #57606a; }
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

# What the pages need of JupyterLab's 230 KB stylesheet, written for them (nbconvert's
# markup classes), plus the house typography.
_BASE_CSS = """
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; color: #1f2328; background: #fff; line-height: 1.5; font-size: 1rem; }
a { color: #1a5fb4; }
h1 { font-size: 1.85rem; line-height: 1.25; margin: 1rem 0 .5rem; }
h2 { font-size: 1.4rem; line-height: 1.3; margin: 2rem 0 .5rem; padding-bottom: .2rem;
  border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.15rem; margin: 1.5rem 0 .4rem; }
h4 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
p, li { max-width: 75ch; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; font-size: .85rem; background: #f6f8fa;
  padding: .5rem .75rem; border-radius: 4px; }
.jp-Cell, .jp-OutputArea, .jp-Cell-outputWrapper, .jp-OutputArea-child { margin: 0; padding: 0; }
.jp-OutputArea-prompt, .jp-Collapser, .jp-InputPrompt { display: none; }
.jp-OutputArea-output { margin: .25rem 0; }
.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"] pre { background: #fff5f5; }
.jp-RenderedImage { margin: .75rem 0 1.25rem; }
.jp-RenderedImage img { display: block; max-width: 100%; height: auto; }
abbr.exr-term { text-decoration: underline dotted #57606a; cursor: help; }
.exr-scroll { overflow-x: auto; max-width: 100%; margin: .5rem 0 1rem;
  /* scroll cue: a shadow on the side that has more to show (no script needed) */
  background: linear-gradient(to right, #fff 30%, rgba(255, 255, 255, 0)),
    linear-gradient(to right, rgba(255, 255, 255, 0), #fff 70%) 100% 0,
    radial-gradient(farthest-side at 0 50%, rgba(0, 0, 0, .25), rgba(0, 0, 0, 0)),
    radial-gradient(farthest-side at 100% 50%, rgba(0, 0, 0, .25), rgba(0, 0, 0, 0)) 100% 0;
  background-repeat: no-repeat; background-size: 40px 100%, 40px 100%, 14px 100%, 14px 100%;
  background-attachment: local, local, scroll, scroll; }
.exr-scroll table { margin: 0; border-collapse: collapse; font-size: .9rem;
  font-variant-numeric: tabular-nums; }
.exr-scroll th, .exr-scroll td { padding: .3rem .6rem; border-bottom: 1px solid #d0d7de;
  vertical-align: top; }
.exr-scroll td { text-align: right; }
.exr-scroll thead th { background: rgba(29, 78, 137, .08); border-bottom: 2px solid #8c959f;
  text-align: left; }
.exr-scroll tbody tr:nth-child(even) { background: rgba(0, 0, 0, .03); }
.exr-scroll:focus-visible, .exr-figure:focus-visible { outline: 2px solid #1a5fb4; }
.exr-scroll.exr-long { max-height: 32rem; overflow-y: auto; }
.exr-scroll.exr-long thead th { position: sticky; top: 0; background: #e8edf3; }
.exr-scroll-hint { display: none; color: #57606a; font-size: .8rem; margin: .25rem 0 0; }
table caption { caption-side: top; text-align: left; font-weight: 600; padding: .25rem 0;
  color: #1f2328; }
.exr-glossary dt { font-weight: 600; } .exr-glossary dd { margin: 0 0 .5rem 1rem; }
.exr-findings li { margin-bottom: .35rem; }
.exr-share-links li { margin: .35rem 0; }
.exr-you { border-left: 4px solid #0072B2; background: #f0f6fb; padding: .5rem .9rem; }
.exr-brief h1 { margin-top: .5rem; } .exr-brief .exr-kpis { display: flex; flex-wrap: wrap;
  gap: .75rem; }
"""

_RESPONSIVE_CSS = """
@media (max-width: 700px) {
  main.exr-main, .exr-page, .exr-topbar, nav.exr-toc, footer.exr-provenance {
    padding-left: .9rem; padding-right: .9rem; }
  h1 { font-size: 1.5rem; } h2 { font-size: 1.25rem; }
  .exr-scroll-hint { display: block; }
  .exr-figure { overflow-x: auto; }
  .exr-figure img { max-width: 760px; width: auto; }
  footer.exr-provenance dt { float: none; width: auto; }
  footer.exr-provenance dd { margin-left: 0; }
  .exr-card { min-width: 0; flex: 1 1 9rem; }
}
"""

_PRINT_CSS = """
@media print {
  @page { size: Letter; margin: 14mm 12mm 16mm; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { font-size: 10pt; }
  .exr-topbar, nav.exr-toc, .exr-scroll-hint, .exr-filter, .exr-noprint { display: none !important; }
  main.exr-main, .exr-page { max-width: none; padding: 0; }
  h1 { font-size: 18pt; margin-top: 0; } h2 { font-size: 14pt; margin-top: 1.2rem; }
  h1, h2, h3, h4, caption, summary { break-after: avoid; page-break-after: avoid; }
  caption { break-inside: avoid; page-break-inside: avoid; }
  p, li { orphans: 3; widows: 3; max-width: none; }
  .jp-RenderedImage, .exr-figure, img, tr, .exr-card, .exr-headline { break-inside: avoid;
    page-break-inside: avoid; }
  .exr-figure img { width: auto; max-width: 100%; max-height: 120mm; }
  .exr-scroll, .exr-scroll.exr-long { overflow: visible; max-height: none; background: none; }
  .exr-scroll.exr-long thead th { position: static; }
  /* a table's header row never ends a page alone: with its first rows or on the next */
  thead { display: table-header-group; break-after: avoid; page-break-after: avoid; }
  /* nor does a table's first row end a page alone, or its last row start one (a table
     of one row: nothing, else it would keep the whole table with what follows it) */
  tbody tr:first-child:not(:last-child) { break-after: avoid; page-break-after: avoid; }
  tbody tr:last-child:not(:first-child) { break-before: avoid; page-break-before: avoid; }
  table.dataframe, table.exr-table { font-size: 8.5pt; }
  footer.exr-provenance { break-before: page; max-width: none; padding: 0; }
  details.exr-files { display: none; }
  a { color: inherit; text-decoration: none; }
}
"""

#: The one stylesheet of a site (and of each share bundle): ``assets/site.css``.
SITE_CSS = _BASE_CSS + PAGE_CSS + _RESPONSIVE_CSS + _PRINT_CSS


def write_assets(root) -> str:
    """Write the site's stylesheet into ``<root>/assets/site.css``; return its path.

    Every page links it (relative to ``root``), so the CSS travels once per site and
    once per share bundle instead of inside every page.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> write_assets(root) == "assets/site.css", "table.dataframe" in (root / CSS_PATH).read_text()
    (True, True)
    """
    from pathlib import Path

    path = Path(root) / CSS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SITE_CSS, encoding="utf-8")
    return CSS_PATH


def _css_link(href: str) -> str:
    return f'<link rel="stylesheet" href="{escape(href)}">'


# nbconvert template: JupyterLab's, minus every remote script, plus our chrome.
_REPORT_TEMPLATE = r"""
{%- extends 'lab/index.html.j2' -%}
{%- block html_head -%}
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
{% set nb_title = nb.metadata.get('title', resources['metadata']['name']) | escape_html_keep_quotes %}
<title>{{nb_title}}</title>
<meta http-equiv="Content-Security-Policy" content="{{ resources.exr_csp }}">
<link rel="stylesheet" href="{{ resources.exr_css_href }}">
{%- endblock html_head -%}
{%- block body_header -%}
<body class="jp-Notebook"{% if resources.exr_print_rows %} data-exr-print-rows="{{ resources.exr_print_rows }}"{% endif %}>
{% if resources.exr_index_href %}<header class="exr-topbar"><a href="{{ resources.exr_index_href }}">&larr; All reports</a></header>{% endif %}
<!--EXR-TOC-->
<main class="exr-main">
{%- endblock body_header -%}
{% block body_footer %}
</main>
{{ resources.exr_footer }}
</body>
{% endblock body_footer %}
{% block data_png scoped %}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}"
{%- set width=output | get_metadata('width', 'image/png') -%}
{%- if width is not none %} width="{{ width | escape_html }}"{%- endif %}
{%- set height=output | get_metadata('height', 'image/png') -%}
{%- if height is not none %} height="{{ height | escape_html }}"{%- endif %}
 alt="{{ ((output | get_metadata('alt', 'image/png')) or '') | escape_html }}">
</div>
{%- endblock data_png %}
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


def _page_exporter_class(html_exporter):
    """nbconvert's HTMLExporter without its closing BeautifulSoup pass.

    ``HTMLExporter.from_notebook_node`` renders the template, then parses the whole page
    with BeautifulSoup to give images without ``alt`` a stand-in text and make every
    cell's input and output a tab stop, and serialises it again: about two thirds of
    its CPU on a client report (0.1 s). :func:`_polish` parses the page anyway, names
    every image that lacks an alt text (:data:`_NO_ALT`) and removes those tab stops,
    so the page is the same without that pass (tests/test_site.py compares both on the
    rendered reports). nbconvert offers no option to skip it; this runs the same steps
    up to the template (the filters its ``from_notebook_node`` registers first).
    """
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class PageExporter(html_exporter):
        def from_notebook_node(self, nb, resources=None, **kw):
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            highlight_code = self.filters.get(
                "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
            resources = self._init_resources(resources)
            filter_data_type = WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources)
            self.register_filter("highlight_code", highlight_code)
            self.register_filter("filter_data_type", filter_data_type)
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    return PageExporter


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
        # validate the notebook once after the preprocessors, not after each of them (12
        # schema validations, a twentieth of a client page's rendering); nbconvert's option
        c.HTMLExporter.optimistic_validation = True
        c.TagRemovePreprocessor.enabled = True
        c.TagRemovePreprocessor.remove_cell_tags = {
            "injected-parameters", "parameters", "remove_cell", "remove-cell",
        }
        c.TagRemovePreprocessor.remove_input_tags = {"remove_input", "remove-input"}
        _exporter = _page_exporter_class(HTMLExporter)(
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
    # the title is not a heading: the page's first heading is its h1
    return ('<nav class="exr-toc"><p class="exr-toc-title" id="exr-toc-title">Contents</p>'
            '<ul aria-labelledby="exr-toc-title">' + "".join(items) + "</ul></nav>")


#: nbconvert's stand-in alt text, and ours for a figure that carries none.
_NO_ALT = ("", "No description has been provided for this image")
#: Tables longer than this scroll inside a box on screen (all rows print).
LONG_TABLE_ROWS = 25
_SKIP_TERMS = {"a", "abbr", "code", "pre", "script", "style", "h1", "h2", "h3", "h4", "h5",
               "h6", "th", "caption", "nav", "title", "dt", "summary"}


def _heading_before(el) -> str:
    h = el.find_previous(["h1", "h2", "h3", "h4"])
    return " ".join(h.get_text(" ", strip=True).replace("¶", "").split()) if h else ""


def _glossary(soup, main, glossary: dict, held=None):
    """Wrap each glossary term's first use in ``<abbr title>``; return the terms used.

    The text nodes a term may be found in (not inside :data:`_SKIP_TERMS` elements, no
    comments) are listed once, in document order, and kept up to date as terms are
    wrapped (the wrapped node's text before and after the term take its place; the
    term itself is inside the ``<abbr>``): the same first uses as searching the whole
    tree again for every term, without walking every node's ancestors once per term
    (that was a third of a client report page's rendering time).
    """
    import re as _re

    from bs4 import NavigableString

    texts = list(_term_texts(main, NavigableString, held))
    used = []
    terms = sorted(glossary, key=len, reverse=True)
    joined = starts = None  # every text, NUL-separated, and where each starts in it
    for term in terms:
        single = len(term) == 1  # "r", "p": only as an italic symbol (*r*)
        pat = _re.compile(r"(?<!\w)" + _re.escape(term) + r"(?![\w²])")
        found = None
        if single:
            for at, node in enumerate(texts):
                if type(node) is _HeldText:  # a cell's text: never inside <em>
                    continue
                if node.parent.name == "em" and str(node).strip() == term:
                    found = (at, node, None)
                    break
        else:
            # the first text node the term occurs in, found by one search of all texts
            # joined by NUL (which is not \w, so the term's bounds test the same at a
            # text's ends) instead of one search per text node (50,000 on the
            # data-quality page at 300 clients); the match itself as before
            if joined is None:
                joined = "\0".join(texts)
                starts = list(itertools.accumulate((len(t) + 1 for t in texts[:-1]),
                                                   initial=0))
            hit = pat.search(joined)
            if hit:
                at = bisect.bisect_right(starts, hit.start()) - 1
                found = (at, texts[at], pat.search(str(texts[at])))
        if not found:
            continue
        at, node, m = found
        abbr = soup.new_tag("abbr", attrs={"class": "exr-term", "title": glossary[term]})
        abbr.string = term
        if type(node) is _HeldText:  # in a held table body: the same split, in its tokens
            text = str(node)
            parts = [_HeldText(text[:m.start()]), _HeldText(text[m.end():])]
            for part in parts:
                part.pieces = node.pieces
            i = next(i for i, p in enumerate(node.pieces) if p is node)
            node.pieces[i:i + 1] = [parts[0], _Markup(abbr), parts[1]]
            texts[at:at + 1] = parts
            used.append(term)
            joined = None
            continue
        if m is None:
            node.replace_with(abbr)
            texts[at:at + 1] = []
        else:
            text = str(node)
            before, after = text[:m.start()], text[m.end():]
            if before or after:
                parts = [NavigableString(before), NavigableString(after)]
                node.replace_with(parts[0], abbr, parts[1])
                texts[at:at + 1] = parts
            else:
                node.replace_with(abbr)
                texts[at:at + 1] = []
        used.append(term)
        joined = None  # the texts changed
    return used


def _term_texts(el, text_type, held=None):
    """The text nodes under ``el`` (of exactly ``text_type``: not comments or CDATA) that
    no :data:`_SKIP_TERMS` element encloses, in document order: one walk of the tree that
    does not enter those elements, instead of every text node's ancestors checked (40,000
    steps on a client report page). A table body kept out of the parse (``held``, see
    :func:`_hold_bodies`) gives its texts as :class:`_HeldText`."""
    for child in el.children:
        if type(child) is text_type:
            yield child
        elif getattr(child, "name", None) is not None and child.name not in _SKIP_TERMS:
            if child.name == _HELD_TAG and held:  # a table body kept out of the parse
                yield from held[int(child["data-k"])].texts
            else:
                yield from _term_texts(child, text_type, held)


def _section_links(soup, main) -> None:
    """``href="#section-N"`` (a finding's pointer) -> the heading numbered "N." on the page."""
    import re as _re

    numbered = {}
    for h in _descendants(main, ("h2", "h3")):
        m = _re.match(r"\s*(\d+)\.", h.get_text())
        if m and h.get("id") and m.group(1) not in numbered:
            numbered[m.group(1)] = h["id"]
    links = [a for a in _descendants(main, ("a",)) if a.get("href", "").startswith("#section-")]
    for a in links:
        target = numbered.get(a["href"][len("#section-"):])
        if target:
            a["href"] = "#" + target
        else:
            a.unwrap()  # no such section on this page: plain text, no dead link


#: Class names pandas' Styler puts on every cell (``data row3 col2``); no stylesheet of
#: the site uses them, and a page's own ``<style>`` rules are checked before one goes.
_STYLER_CLASS = re.compile(r"data|blank|col_heading|row_heading|index_name|level\d+|row\d+|col\d+")
_CSS_NAME = re.compile(r"[\w-]+")


def _named_in(name: str, sigil: str, rules: str, names: list) -> bool:
    """Whether ``sigil + name`` occurs in ``rules`` (the CSS text).

    The same answer as the substring test ``sigil + name in rules``, found by bisecting
    ``names``, the sorted runs of word characters after each ``sigil`` in ``rules``: the
    substring occurs exactly when one of them starts with ``name``. A page with large
    Styler tables (the synthesis at 300 clients) has thousands of cells and a megabyte
    of rules, where the substring test per cell took a minute.
    """
    if not _CSS_NAME.fullmatch(name):
        return sigil + name in rules
    i = bisect.bisect_left(names, name)
    return i < len(names) and names[i].startswith(name)


def _descendants(el, names: tuple) -> list:
    """``el.find_all(names)`` (the tags of those names under ``el``, in document order),
    by walking ``el.descendants`` with a name test: BeautifulSoup's matching machinery
    costs about five times as much per node, which on a page of 50,000 table cells
    (the data-quality report at 300 clients) is seconds."""
    return [d for d in el.descendants if d.name in names]  # a text node's name is None


def _in_tables(root, names: tuple, *, within: str = "table") -> list:
    """The tags named ``names`` under ``root`` that have a ``within`` element around them
    (not necessarily under ``root``), each once, in document order."""
    seen, out = set(), []
    outer = root.find_parent(within) is not None
    scopes = [root] if outer else _descendants(root, (within,))
    for scope in scopes:
        for el in _descendants(scope, names):
            if id(el) not in seen:  # a nested table's cells are under both tables
                seen.add(id(el))
                out.append(el)
    if len(scopes) > 1:  # back in document order after nested scopes
        order = {id(el): i for i, el in enumerate(_descendants(root, names))}
        out.sort(key=lambda el: order[id(el)])
    return out


def _rule_names(rules: str) -> tuple:
    """``(rules, ids, classes)``: a page's CSS text and the sorted names after each ``#``
    and ``.`` in it (what :func:`_named_in` bisects)."""
    return (rules, sorted(set(re.findall(r"#([\w-]*)", rules))),
            sorted(set(re.findall(r"\.([\w-]*)", rules))))


def _slim_tables(soup, main) -> tuple:
    """Drop the per-cell ids and class names of pandas' Styler that no CSS rule uses.

    A Styler table gives every cell ``id="T_<uuid>_row3_col2" class="data row3 col2"``
    (about 50 bytes a cell, a third of a report page's text); cells that a rule of the
    page's own ``<style>`` targets keep them. Returns the page's rules as
    :func:`_rule_names` gives them (for :func:`_write_body`).
    """
    rules = _rule_names(" ".join(s.get_text() for s in _descendants(soup, ("style",))))
    text, ids, classes = rules
    # the cells of every table under main, each once, in document order: the same
    # elements as main.find_all(["td", "th"]) less those without a table around them,
    # without a find_parent per cell (a walk to the root: at 300 clients the
    # data-quality page has 50,000 cells); find_all rather than CSS selectors
    # (soupsieve matches every node of the page against the selector)
    for el in _in_tables(main, ("td", "th")):
        ident = el.get("id")
        if ident and ident.startswith("T_") and not _named_in(ident, "#", text, ids):
            del el["id"]
        cls = el.get("class")
        if cls:
            keep = [c for c in cls
                    if not _STYLER_CLASS.fullmatch(c) or _named_in(c, ".", text, classes)]
            if keep:
                el["class"] = keep
            else:
                del el["class"]
    return rules


def slim_tables(html: str) -> str:
    """``html`` with the Styler cell ids and class names that no CSS rule uses removed.

    For a notebook's ``text/html`` output (a Styler table with its own ``<style>``); the
    report pages get the same treatment while they are rendered. The answer is the text
    BeautifulSoup gives back after :func:`_slim_tables` (its parser's entities decoded,
    its serialisation); markup of the plain form pandas' Styler writes is slimmed
    without building the tree (:func:`_slim_plain_tables`), with the same result.

    Examples
    --------
    >>> import pandas as pd
    >>> out = slim_tables(pd.DataFrame({"a": [1.5]}).style.to_html())
    >>> "row0" in out, "<td>1.500000</td>" in out
    (False, True)
    """
    from bs4 import BeautifulSoup

    if "<table" not in html:
        return html
    fast = _slim_plain_tables(html)
    if fast is not None:
        return fast
    soup = BeautifulSoup(html, "html.parser")
    _slim_tables(soup, soup)
    return str(soup)


#: The markup :func:`_slim_plain_tables` reads: a ``<style type="text/css">`` block
#: (group 1: its rules), a start tag (2: name, 3: attributes), an end tag (4: name) or
#: text without markup (5).
_PLAIN_TOKEN = re.compile(
    r'<style type="text/css">([^<]*)</style>'
    r'|<([a-z][a-z0-9]*)((?:\s+[a-z]+="[^"<>&]*")*)\s*>'
    r"|</([a-z][a-z0-9]*)>"
    r"|([^<]+)")
_PLAIN_ATTR = re.compile(r'\s+([a-z]+)="([^"<>&]*)"')
#: Elements and attributes of a Styler table (and of ``report.collapsed``'s fold).
_PLAIN_TAGS = frozenset({"table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
                         "details", "summary", "div", "span", "p", "strong", "em", "b", "i",
                         "code"})
_PLAIN_ATTRS = frozenset({"id", "class", "colspan", "rowspan"})
#: The character references text may hold (what the Styler and ``html.escape`` write),
#: and what the HTML parser makes of them.
_PLAIN_REFS = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&nbsp;": "\xa0",
               "&#34;": '"', "&#39;": "'", "&#x27;": "'"}
_REF = re.compile(r"&[^;&]*;?")
_ASCII_SPACES = "\x20\x0a\x09\x0c\x0d"


def _plain_text(text: str) -> str | None:
    """Text as BeautifulSoup writes it back (blank text as one newline or blank,
    references decoded, ``& < >`` escaped), or None when it holds a reference other
    than :data:`_PLAIN_REFS`."""
    if not text.strip(_ASCII_SPACES):  # as BeautifulSoup keeps blank text
        return "\n" if "\n" in text else " "
    if "&" in text:
        bad = []

        def ref(m):
            got = _PLAIN_REFS.get(m.group(0))
            if got is None:
                bad.append(m.group(0))
                return ""
            return got

        text = _REF.sub(ref, text)
        if bad:
            return None
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain_attrs(attrs: str, allowed) -> list | None:
    """The ``name="value"`` pairs of a start tag's attribute text, sorted by name (as
    BeautifulSoup writes them), or None for a name twice or one not in ``allowed``."""
    pairs = _PLAIN_ATTR.findall(attrs)
    if len({k for k, _ in pairs}) != len(pairs) or any(k not in allowed for k, _ in pairs):
        return None
    return sorted(pairs)


def _start_tag(name: str, pairs: list, *, cell: bool, named: dict, rules: tuple) -> str:
    """A start tag as BeautifulSoup writes it after :func:`_slim_tables`: the sorted
    ``pairs``, class lists with single blanks, and for a table ``cell`` the Styler's id and
    class names that no rule names dropped. ``rules`` is what :func:`_slim_tables`
    returns; ``named`` (class name -> kept) is filled in as names are met."""
    rules, ids, classes = rules
    shown = []
    for k, v in pairs:
        if k == "class":
            cls = v.split()
            if cell and cls:
                for c in cls:
                    if c not in named:
                        named[c] = (not _STYLER_CLASS.fullmatch(c)
                                    or _named_in(c, ".", rules, classes))
                cls = [c for c in cls if named[c]]
                if not cls:
                    continue
            v = " ".join(cls)
        elif k == "id" and cell and v.startswith("T_") and not _named_in(v, "#", rules, ids):
            continue
        shown.append(f' {k}="{v}"')
    return f"<{name}{''.join(shown)}>"


def _slim_plain_tables(html: str) -> str | None:
    """:func:`slim_tables` without a parse tree, for the markup pandas' Styler writes.

    The same text as ``str(BeautifulSoup(html, "html.parser"))`` after
    :func:`_slim_tables`: tags written back with their attributes sorted by name and
    without the blank before ``>``, class lists with single blanks, blank text (ASCII blanks only) as one newline if it holds one,
    else one blank, other text with its character references decoded and only ``&``,
    ``<`` and ``>`` escaped, the rules of the ``<style>`` blocks kept as they are, and
    each cell's Styler id and class names dropped unless a rule names them (the same
    :func:`_named_in` test). Returns None, so that the caller parses with BeautifulSoup,
    whenever ``html`` is not of that plain form: another element or attribute, another
    character reference, a comment, a void or self-closed element, tags not closed in
    order, an attribute twice. Written by hand: BeautifulSoup builds a Python object for
    every tag and string (about 3 s for the 2,700-row table of the data-quality report
    at 300 clients), and no faster parser serialises as it does.
    """
    tokens, rules, pos = [], [], 0
    for m in _PLAIN_TOKEN.finditer(html):
        if m.start() != pos:
            return None  # markup the tokens do not cover
        pos = m.end()
        tokens.append(m)
        if m.group(1) is not None:
            rules.append(m.group(1))
    if pos != len(html):
        return None
    rules = _rule_names(" ".join(rules))
    named: dict = {}  # class name -> kept (the same few names on every cell)
    out, stack = [], []
    for m in tokens:
        style, name, attrs, end, text = m.groups()
        if style is not None:
            out.append(m.group(0))
        elif text is not None:
            text = _plain_text(text)
            if text is None:
                return None
            out.append(text)
        elif end is not None:
            if not stack or stack.pop() != end:
                return None
            out.append(f"</{end}>")
        else:
            if name not in _PLAIN_TAGS:
                return None
            pairs = _plain_attrs(attrs, _PLAIN_ATTRS)
            if pairs is None:
                return None
            out.append(_start_tag(name, pairs, cell=name in ("td", "th") and "table" in stack,
                                  named=named, rules=rules))
            stack.append(name)
    if stack:
        return None
    return "".join(out)


#: Table bodies of at least this many rows are kept out of :func:`_polish`'s parse tree.
HOLD_MIN_ROWS = 20
_HELD_TAG = "exr-held"
_TBODY = re.compile(r"<tbody>(.*?)</tbody>", re.S)
_HELD = re.compile(r'<exr-held data-k="(\d+)"></exr-held>')
_HELD_ATTRS = _PLAIN_ATTRS | {"scope"}


class _HeldText(str):
    """The text of a held table body's cell, as the parse tree's text node would hold it;
    ``pieces`` is the list it stands in (a token of its :class:`_Body`), where the
    glossary puts its ``<abbr>`` (:func:`_glossary`)."""

    __slots__ = ("pieces",)


class _Markup(str):
    """Markup written as it is among a held body's texts (a glossary ``<abbr>``)."""


def _escape_text(text: str) -> str:
    """Text as BeautifulSoup writes a text node (its "minimal" formatter)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Body:
    """A table body kept out of the parse tree: its tokens, rows, widest row, cell texts."""

    __slots__ = ("tokens", "rows", "ncols", "texts", "raw")

    def __init__(self, tokens, rows, ncols, texts, raw):
        self.tokens, self.rows, self.ncols, self.texts = tokens, rows, ncols, texts
        self.raw = raw  # the markup as it was (for a body inside a comment or script)


def _read_body(chunk: str) -> _Body | None:
    """The rows of a ``<tbody>`` of plain markup (``tr``, ``td``, ``th``; the attributes and
    character references :func:`_slim_plain_tables` reads), or None for anything else."""
    tokens, stack, texts = [], [], []
    rows = ncols = cells = pos = 0
    for m in _PLAIN_TOKEN.finditer(chunk):
        if m.start() != pos:
            return None
        pos = m.end()
        style, name, attrs, end, text = m.groups()
        if style is not None:
            return None
        if text is not None:
            shown = _plain_text(text)
            if shown is None:
                return None
            if "th" not in stack and text.strip(_ASCII_SPACES):  # what the glossary reads
                node = _HeldText(_REF.sub(lambda r: _PLAIN_REFS[r.group(0)], text))
                node.pieces = [node]
                tokens.append(node.pieces)
                texts.append(node)
            else:
                tokens.append(shown)
        elif end is not None:
            if not stack or stack.pop() != end:
                return None
            tokens.append((end,))
            if end == "tr":
                ncols = max(ncols, cells)
        else:
            if name not in ("tr", "td", "th"):
                return None
            pairs = _plain_attrs(attrs, _HELD_ATTRS)
            if pairs is None:
                return None
            if name == "tr":
                if "tr" in stack:
                    return None
                rows, cells = rows + 1, 0
            else:
                cells += 1
            tokens.append((name, pairs))
            stack.append(name)
    if pos != len(chunk) or stack:
        return None
    return _Body(tokens, rows, ncols, texts, chunk)


def _hold_bodies(html: str) -> tuple[str, list]:
    """``html`` with each long table body of plain markup replaced by an empty
    ``<exr-held data-k="N">`` element, and the bodies (:class:`_Body`).

    BeautifulSoup builds a Python object for every tag and text and writes each back,
    which for the data-quality page at 300 clients (50,000 cells) is most of its
    rendering. What :func:`_polish` does to a table body (drop the Styler's unused cell
    ids and class names, ``scope="row"`` on its header cells, count its rows and
    columns, look for the first use of glossary terms) is done on the tokens instead
    (:func:`_write_body`), and the page's text is the same. Written by hand: no parser
    of the environment writes back what BeautifulSoup does.
    """
    if f"<{_HELD_TAG}" in html:
        return html, []
    bodies, out, last = [], [], 0
    for m in _TBODY.finditer(html):
        chunk = m.group(1)
        if chunk.count("<tr") < HOLD_MIN_ROWS or "<table" in chunk:
            continue
        body = _read_body(chunk)
        if body is None:
            continue
        out.append(html[last:m.start(1)])
        out.append(f'<{_HELD_TAG} data-k="{len(bodies)}"></{_HELD_TAG}>')
        last = m.end(1)
        bodies.append(body)
    if not bodies:
        return html, []
    out.append(html[last:])
    return "".join(out), bodies


def _write_body(body: _Body, *, slim: bool, scope: str | None, rules: tuple) -> str:
    """A held body as BeautifulSoup writes it after :func:`_polish`: attributes sorted by
    name, with ``slim`` the Styler's cell ids and class names that no rule of the page
    names dropped (as :func:`_slim_tables`; ``rules`` is what it returns), ``scope``
    (``"row"``, ``"col"`` or None) on header cells without one (as :func:`_polish`)."""
    out, named = [], {}
    for tok in body.tokens:
        if isinstance(tok, str):
            out.append(tok)
        elif isinstance(tok, list):  # a cell's text, maybe with a glossary term wrapped
            out.extend(p if type(p) is _Markup else _escape_text(p) for p in tok)
        elif len(tok) == 1:
            out.append(f"</{tok[0]}>")
        else:
            name, pairs = tok
            if scope and name == "th" and not any(k == "scope" and v for k, v in pairs):
                pairs = sorted([*((k, v) for k, v in pairs if k != "scope"), ("scope", scope)])
            out.append(_start_tag(name, pairs, cell=slim and name in ("td", "th"), named=named,
                                  rules=rules))
    return "".join(out)


def _polish(html: str, *, glossary: dict | None = None) -> str:
    """Accessibility and reading fixes of nbconvert's page (see :func:`render_report`).

    Long table bodies are kept out of the parse tree (:func:`_hold_bodies`).
    """
    from bs4 import BeautifulSoup

    html, bodies = _hold_bodies(html)
    soup = BeautifulSoup(html, "html.parser")
    main = soup.find("main") or soup
    rules = _slim_tables(soup, main)
    places = _descendants(soup, (_HELD_TAG,)) if bodies else []
    # the same elements as find_all("a", class_=...) and the like (see _descendants)
    for a in _descendants(soup, ("a",)):  # pilcrow links: useless tab stops
        if "anchor-link" in a.get("class", ()):
            a.decompose()
    for el in _descendants(soup, ("div",)):  # nbconvert makes every cell a tab stop
        if "tabindex" in el.attrs:
            del el["tabindex"]
    # which cells and rows have a thead or tbody around them, from one walk of each
    # such element, instead of a find_parent (a walk to the root) per cell and row
    in_thead = {id(el) for el in _in_tables(soup, ("th",), within="thead")}
    in_tbody = {id(el) for el in _in_tables(soup, ("th", "tr"), within="tbody")}
    for n, table in enumerate(_descendants(main, ("table",)), start=1):
        rows_all = _descendants(table, ("tr",))
        for th in _descendants(table, ("th",)):  # "thead th" first, then "tbody th"
            if th.get("scope"):
                continue
            if id(th) in in_thead:
                th["scope"] = "col"
            elif id(th) in in_tbody:
                th["scope"] = "row"
        caption = table.find("caption")
        if caption is None or not caption.get_text(strip=True):
            if caption is not None:
                caption.decompose()
            caption = soup.new_tag("caption")
            near = _heading_before(table)
            caption.string = f"Table {n}" + (f": {near}" if near else "")
            table.insert(0, caption)
        label = " ".join(caption.get_text(" ", strip=True).split())
        held = [bodies[int(h["data-k"])] for h in _descendants(table, (_HELD_TAG,))
                ] if bodies else []
        rows = (sum(id(tr) in in_tbody for tr in rows_all) + sum(b.rows for b in held)
                or len(rows_all))
        ncols = max((len(_descendants(tr, ("td", "th"))) for tr in rows_all), default=0)
        ncols = max([ncols, *(b.ncols for b in held)])
        wrap = soup.new_tag("div", attrs={
            "class": "exr-scroll" + (" exr-long" if rows > LONG_TABLE_ROWS else ""),
            "role": "region", "tabindex": "0", "aria-label": label})
        table.wrap(wrap)
        if ncols > 4:
            hint = soup.new_tag("p", attrs={"class": "exr-scroll-hint", "aria-hidden": "true"})
            hint.string = "Scroll sideways to see every column →"
            wrap.insert_before(hint)
    for img in _descendants(main, ("img",)):
        if img.get("alt", "") in _NO_ALT:
            near = _heading_before(img)
            img["alt"] = f"Chart in section {near}" if near else "Chart"
        box = img.find_parent("div", class_="jp-RenderedImage")
        if box is not None and "exr-figure" not in box.get("class", []):
            box["class"] = box.get("class", []) + ["exr-figure"]
            box["role"] = "region"
            box["tabindex"] = "0"  # scrolls sideways on a phone
            box["aria-label"] = "Figure: " + img["alt"][:120]
    _section_links(soup, main)
    if glossary:
        used = _glossary(soup, main, glossary, bodies)
        if used:
            sec = BeautifulSoup(
                '<section class="exr-glossary"><h2 id="Glossary">Glossary</h2><dl>'
                + "".join(f"<dt>{escape(t)}</dt><dd>{escape(glossary[t])}</dd>"
                          for t in sorted(used, key=str.lower))
                + "</dl></section>", "html.parser")
            main.append(sec)
    if not bodies:
        return str(soup)
    written = {}
    for place in places:  # what _slim_tables and the scope pass above do to a body's cells
        k = int(place["data-k"])
        under_main = main is soup or any(p is main for p in place.parents)
        table = place.find_parent("table")
        slim = under_main and table is not None
        scope = slim and (main is soup or any(p is main for p in table.parents))
        written[k] = _write_body(bodies[k], slim=slim, rules=rules, scope=None if not scope
                                 else "col" if place.find_parent("thead") else "row")
    # a placeholder that is no element (inside a comment or a script) is text written
    # back as it is: the body's markup as it was
    return _HELD.sub(lambda m: written.get(int(m.group(1)), bodies[int(m.group(1))].raw),
                     str(soup))


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
                  index_href: str | None = "../index.html",
                  css_href: str = "../" + CSS_PATH, glossary: dict | None = None) -> str:
    """Render an executed notebook as a self-contained, offline HTML report page.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The executed notebook (papermill output), failures included. Its metadata
        ``{"exresearch": {"print_max_rows": N}}`` (a positive integer; the synthesis and
        data-quality notebooks set 40) makes the page's PDF print the first and the last
        N/2 rows of a table longer than N + 10, with a line saying that the web page shows
        every row (:func:`exresearch.deliver.render_pdfs`); the page itself shows them all.
    title : str
        Page title (escaped).
    provenance : dict
        Shown in the footer, in order: label -> text, or label -> dict (shown as a
        collapsible list, e.g. input file hashes or library versions).
    index_href : str or None, default "../index.html"
        Relative link back to the site index; None for a page outside a site (no link).
    css_href : str, default "../assets/site.css"
        Relative link to the site's stylesheet (:func:`write_assets`).
    glossary : dict, optional
        Term -> definition (default :data:`exresearch.formatting.GLOSSARY`): the first
        use of each term gets a hover definition, and a glossary section lists them.

    Returns
    -------
    str
        The HTML page: no code, no parameters cells, images embedded as ``data:`` URIs
        with the alt text their figure carried (:func:`exresearch.style.figure_png`),
        a table of contents built from the markdown headings, every table captioned,
        with header scopes and inside a labelled box that scrolls sideways, no cell or
        pilcrow tab stops, and no reference to anything outside the page but the site's
        stylesheet.

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
    if glossary is None:
        from .formatting import GLOSSARY as glossary
    ours = nb.metadata.get("exresearch")
    print_rows = ours.get("print_max_rows") if isinstance(ours, dict) else None
    if print_rows is not None and (not isinstance(print_rows, int) or isinstance(
            print_rows, bool) or print_rows < 1):
        raise ParameterError("the notebook's metadata exresearch.print_max_rows must be a "
                             f"positive integer, but {print_rows!r} was found")
    resources = {
        "exr_print_rows": print_rows or "",
        "exr_csp": CSP,
        "exr_css_href": escape(css_href),
        "exr_index_href": escape(index_href) if index_href else "",
        "exr_footer": _footer(provenance),
        "metadata": {"name": str(title)},
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    body = _STYLE.sub(lambda m: m.group(1) + _CSS_COMMENT.sub("", m.group(2)) + m.group(3), body)
    body = _SCHEME_LINK.sub(r"\1", body)
    body = _polish(body, glossary=glossary)
    return body.replace("<!--EXR-TOC-->", _toc(body), 1)


def render_error_page(*, title: str, error: str, provenance: dict,
                      index_href: str | None = "../index.html",
                      css_href: str = "../" + CSS_PATH) -> str:
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
    css_href : str, default "../assets/site.css"
        Relative link to the site's stylesheet.

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
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">'
        f"<title>{escape(title)}</title>{_css_link(css_href)}</head><body>"
        + (f'<header class="exr-topbar"><a href="{escape(index_href)}">&larr; All reports'
           '</a></header>' if index_href else "") +
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
    for label, key in (("brief", "brief"), ("PDF", "pdf"), ("Excel", "workbook"),
                       ("notebook", "notebook")):
        if record.get(key):
            out += f' &middot; <a href="{escape(record[key])}">{label}</a>'
    tables = record.get("tables") or []
    if tables:
        links = " &middot; ".join(
            f'<a href="{escape(t)}" download>{escape(t.rsplit("/", 1)[-1])}</a>' for t in tables
        )
        n = len(tables)
        out += (f'<details class="exr-files"><summary>{n} table{"s" if n != 1 else ""} '
                f"(CSV)</summary>{links}</details>")
    out += f"<!--exr-extras:{escape(record.get('key') or '')}-->"
    if record.get("share"):  # the folder is what is handed over; its page shows what it holds
        folder = record["share"].rsplit("/", 1)[0] + "/"
        out += (f' <span class="exr-share">share: <a href="{escape(record["share"])}" '
                f'title="the folder to give this client (see docs/privacy.md)">'
                f"<code>{escape(folder)}</code></a></span>")
    return out


def render_index(*, study: dict, reports: list[dict], headline: list[dict],
                 provenance: dict | None = None, css_href: str = CSS_PATH) -> str:
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
    css_href : str, default "assets/site.css"
        Relative link to the site's stylesheet.

    Returns
    -------
    str
        The HTML page, with a small inline filter script and no external reference but
        the site's stylesheet.

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
        f"<tr><th scope=\"row\" class=\"exr-text\">{escape(k)}</th>"
        f"<td class=\"exr-text\">{escape(v)}</td></tr>"
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
        f"<title>{escape(name)}</title>{_css_link(css_href)}</head><body>"
        f'<main class="exr-page"><h1>{escape(name)}</h1>{summary}'
        + _scroll_table('<table class="exr-table"><caption>Study overview</caption>'
                        f"<tbody>{overview}</tbody></table>", "Study overview")
        + headline_html
        + '<h2 id="study-reports">Study reports</h2>'
        + _scroll_table(
            '<table class="exr-table"><caption>Reports across the study</caption><thead><tr>'
            '<th scope="col" class="exr-text">Report</th><th scope="col" class="exr-text">Status'
            '</th><th scope="col" class="exr-text">Files</th></tr></thead>'
            f"<tbody>{study_rows}</tbody></table>", "Reports across the study")
        + '<h2 id="client-reports">Client reports</h2>'
        + ('<p class="exr-note">This page names every client: it is for the study team. '
           "Give each client only its <code>share/&lt;id&gt;/</code> folder.</p>"
           if any(r.get("share") for r in clients) else "")
        + '<div class="exr-filter">'
        '<label>Search <input id="exr-q" type="search" placeholder="name, id or industry">'
        '</label><label>Industry <select id="exr-industry"><option value="">all</option>'
        f'{options}</select></label><span id="exr-count" role="status"></span></div>'
        + _scroll_table(
            '<table class="exr-table" id="exr-clients"><caption>One report per client'
            "</caption><thead><tr>"
            '<th scope="col" class="exr-text">Client</th><th scope="col" class="exr-text">Id</th>'
            '<th scope="col" class="exr-text">Industry</th>'
            '<th scope="col" class="exr-text">Status</th>'
            '<th scope="col" class="exr-text">Files</th><th scope="col">Run time</th></tr></thead>'
            f"<tbody>{client_rows}</tbody></table>", "One report per client", hint=True)
        + "</main>"
        + (_footer(provenance) if provenance else "")
        + f"<script>{_FILTER_JS}</script></body></html>\n"
    )


def _scroll_table(table: str, label: str, *, hint: bool = False) -> str:
    """A table inside a labelled box that scrolls sideways (keyboard-reachable)."""
    return (('<p class="exr-scroll-hint" aria-hidden="true">Scroll sideways to see every '
             "column →</p>" if hint else "")
            + f'<div class="exr-scroll" role="region" tabindex="0" aria-label="{escape(label)}">'
            f"{table}</div>")


def render_share_index(*, study_name: str, client_name: str, report: str,
                       tables: list[str], synthesis: str | None = None,
                       pseudonym: str | None = None, brief: str | None = None,
                       brief_pdf: str | None = None, pdf: str | None = None,
                       workbook: str | None = None, dictionary: str | None = None,
                       css_href: str = CSS_PATH) -> str:
    """The landing page of one client's share bundle (``share/<client_id>/index.html``).

    Names the client and lists only what the bundle holds: its executive brief, its
    report (HTML and PDF), the report's tables as one Excel workbook and as CSV files,
    and the synthesis, with the pseudonym the client carries there ("you are Client
    X"), which only this client's bundle shows. No script runs (the report pages'
    :data:`CSP`).

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
    pseudonym : str, optional
        The client's name in the synthesis (``"Client C"``).
    brief, brief_pdf, pdf, workbook, dictionary : str, optional
        Relative paths of the executive brief (HTML, PDF), the report's PDF, its Excel
        workbook and the CSVs' data dictionary, when the bundle holds them.
    css_href : str, default "assets/site.css"

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
    >>> "you are <strong>Client C</strong>" in render_share_index(
    ...     study_name="S", client_name="A", report="r.html", tables=[],
    ...     synthesis="s.html", pseudonym="Client C")
    True
    """
    def link(href, text, cls=""):
        c = f' class="{cls}"' if cls else ""
        return f'<a{c} href="{escape(href)}">{text}</a>'

    items = []
    if brief:
        items.append("<li>" + link(brief, "Executive brief", "exr-report-link")
                     + (" (" + link(brief_pdf, "PDF") + ")" if brief_pdf else "")
                     + ": the findings, where to act first, what it is worth and the loop, "
                     "on one or two pages</li>")
    items.append("<li>" + link(report, f"{escape(client_name)}: client report",
                               "exr-report-link")
                 + (" (" + link(pdf, "PDF") + ")" if pdf else "")
                 + ": every analysis, with methods and data quality</li>")
    if workbook:
        items.append("<li>" + link(workbook, "Tables in Excel")
                     + ": one sheet per table of the report</li>")
    body = (f'<ul class="exr-share-links">{"".join(items)}</ul>')
    if synthesis:
        body += ('<h2 id="synthesis">Compared with the other organisations</h2><ul '
                 'class="exr-share-links"><li>'
                 + link(synthesis, "Synthesis across clients", "exr-report-link")
                 + " (other organisations anonymised)</li></ul>")
        if pseudonym:
            body += (f'<p class="exr-you">In the synthesis, you are <strong>'
                     f"{escape(pseudonym)}</strong>. The other organisations carry letters "
                     "assigned at random, so a letter says nothing about who they are.</p>")
    if tables:
        files = " &middot; ".join(
            f'<a href="{escape(t)}" download>{escape(t.rsplit("/", 1)[-1])}</a>' for t in tables)
        body += ('<h2 id="data">Data files</h2><p>The tables at full precision, for your own '
                 "analyses (CSV, one file per table"
                 + ("; " + link(dictionary, "what each column means") if dictionary else "")
                 + f'):</p><details class="exr-files"><summary>{len(tables)} CSV file'
                 f'{"s" if len(tables) != 1 else ""}</summary>{files}</details>')
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(study_name)}: {escape(client_name)}</title>"
        f"{_css_link(css_href)}</head><body><main class=\"exr-page\">"
        f"<h1>{escape(client_name)}</h1><p>{escape(study_name)}: the reports for "
        f"{escape(client_name)}. Everything here works offline, and no other organisation "
        "is named.</p>"
        f'<h2 id="reports">Reports</h2>{body}</main></body></html>\n'
    )


def _json_default(value):
    return str(value)


def dumps_manifest(manifest: dict) -> str:
    """Serialise the manifest deterministically (sorted keys, two-space indent)."""
    return json.dumps(manifest, indent=2, sort_keys=True, default=_json_default) + "\n"
