"""Tests for exresearch.site: offline report pages and the index page."""

from __future__ import annotations

import base64
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from exresearch.exceptions import ParameterError
from exresearch.site import CSP, SITE_CSS, render_error_page, render_index, render_report

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'
# 1x1 transparent PNG
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000050001a5f645400000000049454e44ae426082"
)).decode()

_REMOTE = re.compile(
    r"<(script|link|img|iframe|source|video|audio|embed|object)\b[^>]*\b(src|href|data)\s*=\s*"
    r"[\"']?\s*(https?:)?//", re.I)


def remote_references(page: str) -> list[str]:
    """src/href attributes of loading elements that point off the machine."""
    return [m.group(0) for m in _REMOTE.finditer(page)]


def _notebook():
    params = new_code_cell('client_id = "acme"  # SECRET_PARAMETER_DEFAULT')
    params.metadata["tags"] = ["parameters"]
    injected = new_code_cell('client_id = "globex"  # INJECTED_VALUE')
    injected.metadata["tags"] = ["injected-parameters"]
    code = new_code_cell("df = compute_something_secret()\ndf", outputs=[
        new_output("execute_result", data={
            "text/html": "<table class=\"dataframe\"><tr><td>0.25</td></tr></table>",
            "text/plain": "0.25"}, execution_count=3),
    ])
    fig = new_code_cell("plot()", outputs=[
        new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
    ])
    nb = new_notebook(cells=[
        params, injected, new_markdown_cell("# Client report\n\nIntro.\n\n## Results"),
        code, new_markdown_cell("### Figure"), fig,
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def test_report_hides_code_and_parameters_and_embeds_images():
    page = render_report(_notebook(), title="Acme: client report",
                         provenance={"study": "S", "seed": 1})
    assert "compute_something_secret" not in page
    assert "SECRET_PARAMETER_DEFAULT" not in page and "INJECTED_VALUE" not in page
    assert f'src="data:image/png;base64,{PNG}' in page
    assert "<td>0.25</td>" in page
    assert "<title>Acme: client report</title>" in page


def test_report_has_toc_css_footer_and_no_network():
    page = render_report(_notebook(), title="T", provenance={
        "study": HOSTILE, "parameters": {"client_id": HOSTILE},
        "input files (sha256)": {"clients/a/survey.csv": "ab" * 32},
    })
    toc = re.search(r'<nav class="exr-toc">(.*?)</nav>', page, re.S).group(1)
    assert re.findall(r'href="#([^"]+)">([^<]+)<', toc) == [
        ("Client-report", "Client report"), ("Results", "Results"), ("Figure", "Figure"),
    ]
    for anchor in ("Client-report", "Results", "Figure"):
        assert f'id="{anchor}"' in page
    # readable-table CSS: in the site's one stylesheet, linked (not inlined in every page)
    assert '<link href="../assets/site.css" rel="stylesheet"/>' in page
    assert "table.dataframe" in SITE_CSS and "table.dataframe" not in page
    assert f'content="{CSP}"' in page
    assert remote_references(page) == []
    assert re.findall(r"https?://", page) == []  # not even in CSS comments
    assert "require.js" not in page and "mathjax" not in page.lower()
    footer = page[page.index('<footer class="exr-provenance">'):]
    assert "<script>alert(1)</script>" not in footer
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in footer
    assert "ab" * 32 in footer
    assert 'href="../index.html"' in page


def test_report_of_failed_notebook_shows_the_error():
    nb = _notebook()
    nb.cells.append(new_code_cell("boom()", outputs=[new_output(
        "error", ename="RuntimeError", evalue="deliberate <b>failure</b>",
        traceback=["RuntimeError: deliberate <b>failure</b>"])]))
    page = render_report(nb, title="T", provenance={})
    assert "deliberate &lt;b&gt;failure&lt;/b&gt;" in page
    assert "deliberate <b>failure</b>" not in page


def test_error_page_escapes():
    page = render_error_page(title=HOSTILE, error=HOSTILE, provenance={"x": HOSTILE})
    assert "<script>alert(1)</script>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 4  # title, h1, pre, footer
    assert remote_references(page) == []


def _reports():
    return [
        {"key": "synthesis", "kind": "synthesis", "client_id": None, "name": "Synthesis",
         "status": "ok", "html": "reports/synthesis.html",
         "tables": ["tables/synthesis/headline.csv"], "duration": 1.0},
        {"key": "client-a", "kind": "client", "client_id": "a", "name": HOSTILE,
         "industry": "retail", "status": "ok", "html": "reports/client-a.html",
         "tables": ["tables/client-a/unit_means.csv"], "duration": 2.25},
        {"key": "client-b", "kind": "client", "client_id": "b", "name": "Beta Bank",
         "industry": '"><script>alert(3)</script>', "status": "failed",
         "error": "RuntimeError: <img src=x onerror=alert(4)>", "html": "reports/client-b.html",
         "tables": [], "duration": 0.5},
    ]


def test_index_escapes_every_input_string():
    page = render_index(study={"name": HOSTILE, "Periods": HOSTILE}, reports=_reports(),
                        headline=[{"label": HOSTILE, "value": "0.31", "note": HOSTILE}],
                        provenance={"built": "now"})
    body = page.split("<script>")  # the only script element is our own filter
    assert len(body) == 2 and "alert" not in body[1]
    assert "<img src=x" not in page
    assert 'onerror="alert' not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
    assert remote_references(page) == []


def test_index_lists_reports_status_filters_and_downloads():
    page = render_index(study={"name": "Study 2026", "Clients": 2}, reports=_reports(),
                        headline=[{"label": "Pooled r", "value": "0.31"}])
    assert "<title>Study 2026</title>" in page
    assert "1 report(s) failed" in page
    assert 'class="exr-status-failed">failed</span>' in page
    assert "RuntimeError: &lt;img src=x onerror=alert(4)&gt;" in page
    assert 'href="reports/client-a.html"' in page
    assert 'href="tables/client-a/unit_means.csv" download' in page
    assert '<details class="exr-files"><summary>1 table (CSV)</summary>' in page
    assert 'href="reports/synthesis.html"' in page
    assert '<div class="exr-value">0.31</div><div class="exr-label">Pooled r</div>' in page
    # filter controls: free text over name/id/industry, and an industry select
    assert 'id="exr-q"' in page and 'id="exr-industry"' in page
    assert '<option value="retail">retail</option>' in page
    row = re.search(r'<tr data-search="([^"]*)" data-industry="retail">', page)
    assert row and "retail" in row.group(1) and " a " in f" {row.group(1)} "
    assert "2.2 s" in page or "2.3 s" in page


def test_nbformat_roundtrip_of_rendered_notebook_is_valid():
    nb = _notebook()
    nbformat.validate(nb)
    assert render_report(nb, title="x", provenance={}).startswith("<!DOCTYPE html>")


def test_report_is_accessible_markup():
    """Captions, header scopes, scroll boxes, no cell/pilcrow tab stops, TOC title not a
    heading, alt text from the figure's metadata, glossary terms with hover definitions."""
    nb = _notebook()
    nb.cells[2].source = "# Client report\n\nThe spread (SD) of unit scores.\n\n## Results"
    nb.cells[3].outputs[0]["data"]["text/html"] = (
        '<table class="dataframe"><thead><tr><th>scale</th><th>SD</th></tr></thead>'
        "<tbody><tr><th>tools</th><td>0.25</td></tr></tbody></table>")
    nb.cells[5].outputs[0]["metadata"] = {"image/png": {"alt": 'Chart: T. Bars: a 1, b "2".'}}
    page = render_report(nb, title="T", provenance={})
    body = page[page.index("<body"):]
    assert re.search(r"<h[1-6]", body).group(0) == "<h1"
    assert '<p class="exr-toc-title" id="exr-toc-title">Contents</p>' in page
    assert "anchor-link" not in page and "¶" not in page
    assert [t for t in re.findall(r"<[a-z]+\b[^>]*>", body) if "tabindex" in t
            and "exr-scroll" not in t and "exr-figure" not in t] == []
    assert "<caption>Table 1: Results</caption>" in page
    assert '<th scope="col">scale</th>' in page and '<th scope="row">tools</th>' in page
    assert re.search(r'<div aria-label="Table 1: Results" class="exr-scroll" role="region" '
                     r'tabindex="0">', page)
    assert """alt='Chart: T. Bars: a 1, b "2".'""" in page  # escaped by the serializer
    assert '<abbr class="exr-term" title="Standard deviation' in page
    assert page.count('class="exr-term"') == 1  # the first use only (the th is skipped)
    assert '<h2 id="Glossary">Glossary</h2><dl><dt>SD</dt>' in page


def test_image_without_alt_is_named_by_its_section():
    page = render_report(_notebook(), title="T", provenance={})
    assert 'alt="Chart in section Figure"' in page
    assert "No description has been provided" not in page


def test_site_css_has_print_and_phone_rules():
    assert "@media print" in SITE_CSS and "@media (max-width: 700px)" in SITE_CSS
    assert "nav.exr-toc" in SITE_CSS.split("@media print")[1]  # no TOC on paper
    assert "break-inside: avoid" in SITE_CSS and "break-after: avoid" in SITE_CSS
    assert "https://" not in SITE_CSS and "url(" not in SITE_CSS


def test_finding_pointers_link_to_numbered_sections():
    nb = new_notebook(cells=[new_markdown_cell(
        "# R\n\n## Executive summary\n\n1. A [(section 2)](#section-2)\n"
        "2. B [(section 9)](#section-9)\n\n## 2. Linkage to results")])
    page = render_report(nb, title="t", provenance={})
    assert '<a href="#2.-Linkage-to-results">(section 2)</a>' in page
    assert "B (section 9)" in page and 'href="#section-9"' not in page  # no dead link


def _glossary_previous(soup, main, glossary):
    """``site._glossary`` before issue 20 (B7d), verbatim: every term searched the whole
    tree again, walking each text node's ancestors. The reference of the test below."""
    import re as _re

    from bs4 import NavigableString

    from exresearch.site import _SKIP_TERMS

    used = []
    terms = sorted(glossary, key=len, reverse=True)
    for term in terms:
        single = len(term) == 1
        pat = _re.compile(r"(?<!\w)" + _re.escape(term) + r"(?![\w²])")
        found = None
        for node in main.find_all(string=True):
            if isinstance(node, NavigableString) and type(node) is not NavigableString:
                continue
            if any(p.name in _SKIP_TERMS for p in node.parents):
                continue
            if any(p.name == "abbr" for p in node.parents):
                continue
            if single:
                if node.parent.name == "em" and str(node).strip() == term:
                    found = (node, None)
                    break
                continue
            m = pat.search(str(node))
            if m:
                found = (node, m)
                break
        if not found:
            continue
        node, m = found
        abbr = soup.new_tag("abbr", attrs={"class": "exr-term", "title": glossary[term]})
        abbr.string = term
        if m is None:
            node.replace_with(abbr)
        else:
            text = str(node)
            before, after = text[:m.start()], text[m.end():]
            node.replace_with(before, abbr, after) if before or after else node.replace_with(abbr)
        used.append(term)
    return used


GLOSSARY_PAGE = """<html><head><title>SD NPS</title><style>.x{}</style></head><body>
<nav>SD eNPS</nav><main>
<h2>SD and NPS in a heading</h2>
<!-- SD in a comment --><p>Intro with no term. The <a href="#x">SD</a> link is skipped.</p>
<table><caption>SD</caption><thead><tr><th>SD</th><th>r</th></tr></thead>
<tbody><tr><td>SD of eNPS and NPS, ICC(1) then ICC(2)</td><td><em>r</em></td></tr></tbody>
</table>
<p>eNPS</p><p>NPS follows. Then R² and I² with τ, p and <em> p </em> and <em>τ</em>.</p>
<p>The 95% CI (path a, path b) is cross-lagged; rwg(j) and Cronbach's alpha; percentile.</p>
<p><code>SD</code><abbr title="x">percentile</abbr> SDs, NPSs and R²x are no terms.</p>
<dl><dt>SD</dt><dd>ICC(2) again, SD again, 95% CI again</dd></dl>
</main></body></html>"""


def test_glossary_marks_the_same_first_uses_as_before():
    """The glossary pass lists the text nodes once and keeps the list up to date; the
    page must be the same as with the previous per-term search of the whole tree (several
    terms in one text node, terms at a node's start and end, skipped elements, comments,
    italic one-letter symbols, terms that occur only inside other words)."""
    from bs4 import BeautifulSoup

    from exresearch.formatting import GLOSSARY
    from exresearch.site import _glossary

    pages = [GLOSSARY_PAGE, GLOSSARY_PAGE.replace("<p>eNPS</p>", "<p>eNPS NPS SD</p>"),
             "<main><p>SD</p><p><em>r</em></p></main>", "<main><p>nothing</p></main>"]
    for page in pages:
        soups = [BeautifulSoup(page, "html.parser") for _ in range(2)]
        used = [fn(s, s.find("main"), GLOSSARY)
                for fn, s in zip((_glossary, _glossary_previous), soups, strict=True)]
        assert used[0] == used[1]
        assert str(soups[0]) == str(soups[1])
    soup = BeautifulSoup(GLOSSARY_PAGE, "html.parser")
    used = _glossary(soup, soup.find("main"), GLOSSARY)
    assert set(used) == set(GLOSSARY)  # every term occurs on the page
    html = str(soup)
    assert '<td><abbr class="exr-term" title="' + GLOSSARY["SD"] + '">SD</abbr> of ' in html
    assert html.count('class="exr-term"') == len(GLOSSARY)
    assert "<nav>SD eNPS</nav>" in html and "<h2>SD and NPS in a heading</h2>" in html
    assert "<!-- SD in a comment -->" in html


def test_page_is_the_same_without_nbconverts_soup_pass(monkeypatch):
    """render_report skips HTMLExporter's closing BeautifulSoup pass (stand-in alt texts,
    tab stops on every cell: _polish redoes or undoes both); the pages must equal those
    of nbconvert's own HTMLExporter on notebooks with tables, figures with and without
    alt text, links with and without a scheme, headings, glossary terms, an error
    traceback with colours, raw HTML and a Markdown image."""
    from exresearch import site

    nb = _notebook()
    nb.cells[2].source = (
        "# Client report\n\nThe SD and *r* of [a site](https://example.org/x?a=1&b=2), "
        "[a section](#section-2) and <b>raw</b> HTML & <i>entities</i> &amp; 'quotes'.\n\n"
        "![a picture](data:image/png;base64," + PNG + ")\n\n## 2. Results")
    nb.cells[3].outputs[0]["data"]["text/html"] = pd_styler_html()
    nb.cells[5].outputs.append(new_output(
        "display_data", data={"image/png": PNG, "text/plain": "<Figure>"},
        metadata={"image/png": {"alt": 'Chart: "T" & <U>'}}))
    nb.cells.append(new_code_cell("1/0", outputs=[new_output(
        "error", ename="ZeroDivisionError", evalue="division by zero",
        traceback=["\x1b[0;31m---------\x1b[0m", "\x1b[0;31mZeroDivisionError\x1b[0m: "
                   "division by <zero> & 'x'"])]))
    nb.cells.append(new_markdown_cell("<div class='x' tabindex='0'>kept?</div>\n\n"
                                      "<table><tr><td>plain</td></tr></table>"))
    nb.cells.append(new_code_cell("print(1)", outputs=[new_output(
        "stream", name="stdout", text="a < b & 'c'\n")]))
    notebooks, pages = (nb, _notebook(), new_notebook()), []  # (cell ids are random)
    for wrap in (None, lambda cls: cls):  # ours, then nbconvert's own HTMLExporter
        if wrap is not None:
            monkeypatch.setattr(site, "_page_exporter_class", wrap)
        monkeypatch.setattr(site, "_exporter", None)
        pages.append([render_report(n, title="T & <t>", provenance={"study": "s"})
                      for n in notebooks])
    monkeypatch.setattr(site, "_exporter", None)
    assert type(site._get_exporter()).__name__ == "HTMLExporter"  # the reference ran
    assert pages[0] == pages[1]
    assert 'alt="Chart in section' in pages[0][1] and "ZeroDivisionError" in pages[0][0]


def pd_styler_html():
    import pandas as pd

    return pd.DataFrame({"scale": ["tools", "SD"], "r": [0.25, -0.5]}).style.set_caption(
        "A table").format({"r": "{:.2f}"}).to_html()


def _slim_tables_by_substring(soup, main):
    """The previous _slim_tables (a substring test per cell), kept as the reference."""
    from exresearch.site import _STYLER_CLASS

    rules = " ".join(s.get_text() for s in soup.find_all("style"))
    for el in main.select("table td, table th"):
        ident = el.get("id")
        if ident and ident.startswith("T_") and "#" + ident not in rules:
            del el["id"]
        classes = el.get("class")
        if classes:
            keep = [c for c in classes if not _STYLER_CLASS.fullmatch(c) or "." + c in rules]
            if keep:
                el["class"] = keep
            else:
                del el["class"]


def _slim_by_soup(html):
    """slim_tables as it was: BeautifulSoup's parse, _slim_tables, its serialisation."""
    from bs4 import BeautifulSoup

    from exresearch.site import _slim_tables

    soup = BeautifulSoup(html, "html.parser")
    _slim_tables(soup, soup)
    return str(soup)


def _styler_outputs():
    """Styler tables as the report notebooks display them, and some odd ones."""
    import numpy as np
    import pandas as pd

    from exresearch import report

    text = pd.DataFrame({
        "client_id": ["a<b", "c&d", 'q"u', "it's", "x > y", " pad  ", "é – ü", "AT&T;"],
        "scale": ["tools", "SD", "", "&amp;", "&nbsp;", "#T_x", ".data", "a\nb"],
        "alpha": [0.5, np.nan, -1e-9, 1e12, 0.25, np.inf, 3.0, 0.1],
        "p_val": [0.5, 1e-9, np.nan, 0.01, 0.2, 0.3, 0.04, 1.0],
        "n": [3, 4, 5, 6, 7, 8, 9, 10]})
    multi = pd.DataFrame(np.arange(12.0).reshape(3, 4), columns=pd.MultiIndex.from_tuples(
        [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]), index=["r1", "r2", "r3"])
    big = pd.DataFrame(np.arange(60.0).reshape(12, 5), columns=list("abcde"))
    styled = [
        report.styled(text, caption='Cap "q" & <t> – ü'),
        report.styled(text.iloc[:0], caption="empty"),
        report.styled(text, precision=0, rename={"alpha": "α & β"}),
        multi.style, multi.style.format("{:.1f}").set_caption("multi"),
        big.style.highlight_max(axis=0).set_table_styles(
            [{"selector": "td.row1", "props": "color: red"}]).format("{:.1f}"),
        big.style.background_gradient(),
        big.style.set_table_styles([{"selector": ".col_heading", "props": "color: red"},
                                    {"selector": ".row1", "props": "color: blue"}]),
        pd.DataFrame({"a": [1.5]}).style,
    ]
    html = [s.to_html() for s in styled]
    html.append(report.collapsed(report.styled(text), summary="Every client's <numbers> & more")
                .data)
    html.append(html[0] + "\n" + html[5] + html[6])  # one output, several tables
    return html


def test_slim_plain_tables_gives_what_beautifulsoup_gives():
    from exresearch.site import _slim_plain_tables, slim_tables

    for html in _styler_outputs():
        fast = _slim_plain_tables(html)
        assert fast is not None, html[:200]  # the notebooks' tables take the fast path
        assert fast == _slim_by_soup(html), html[:200]
        assert slim_tables(html) == fast
    # a cell whose id a rule names keeps it, with its classes when a rule names them
    out = _slim_plain_tables(_styler_outputs()[5])
    assert '<td class="row1">5.0</td>' in out and "<td>10.0</td>" in out


@pytest.mark.parametrize("html", [
    "<table><tr><td>1</td></tr></table><!-- a comment -->",
    '<table><tr><td class="data row0" id="T_1_row0_col0" id="x">1</td></tr></table>',
    "<table><tr><td>a<br>b</td></tr></table>",
    "<table><tr><td>a<br/>b</td></tr></table>",
    "<table><tr><td>1</tr></td></table>",
    "<table><tr><td>1</td></tr>",
    "<table><tr><td>&copy; &foo; &#169; &amp</td></tr></table>",
    '<TABLE><tr><TD class="data row0">1</TD></tr></TABLE>',
    '<table><tr><td headers="a  b" class="data row0">1</td></tr></table>',
    "<table><tr><td title='x'>1</td></tr></table>",
    '<div><style scoped>.dataframe td { color: red }</style><table class="dataframe">'
    '<tr><td class="data row0">1 < 2</td></tr></table></div>',
    "<table><tr><td>1</td></tr></table> a < b",
    '<table><tr><td class="data row0" >x</td></tr></table><style type="text/css">.row0 '
    "{ color: red }</style>",
])
def test_slim_tables_other_markup_is_parsed(html):
    from exresearch.site import _slim_plain_tables, slim_tables

    fast = _slim_plain_tables(html)
    assert fast is None or fast == _slim_by_soup(html)
    # (as before: markup without "<table" is left as it is)
    assert slim_tables(html) == (_slim_by_soup(html) if "<table" in html else html)


def test_slim_tables_a_style_after_its_table_counts():
    from exresearch.site import _slim_plain_tables

    html = ('<table><tr><td class="data row0" >x</td><td class="data row1">y</td></tr>'
            '</table><style type="text/css">.row0 { color: red }</style>')
    assert _slim_plain_tables(html) == _slim_by_soup(html)
    assert '<td class="row0">x</td><td>y</td>' in _slim_plain_tables(html)


def test_named_in_answers_as_the_substring_test(rng):
    from exresearch.site import _named_in

    alphabet = list("ab_1-") + ["#", ".", " ", "{", "}", ":"]
    for _ in range(300):
        rules = "".join(rng.choice(alphabet, size=int(rng.integers(0, 60))))
        names = {s: sorted(set(re.findall(re.escape(s) + r"([\w-]*)", rules))) for s in "#."}
        for _ in range(20):
            name = "".join(rng.choice(list("ab_1-.#"), size=int(rng.integers(1, 5))))
            for sigil in "#.":
                assert _named_in(name, sigil, rules, names[sigil]) == (sigil + name in rules)


def test_slim_tables_same_as_the_substring_pass():
    import numpy as np
    import pandas as pd
    from bs4 import BeautifulSoup

    from exresearch.site import _slim_tables

    df = pd.DataFrame(np.arange(60.0).reshape(12, 5), columns=list("abcde"))
    # a rule for the class row1 only; the highlighted and the gradient's cells have
    # rules for their ids
    styled = (df.style.highlight_max(axis=0).set_table_styles(
        [{"selector": "td.row1", "props": "color: red"}]).format("{:.1f}"))
    html = styled.to_html() + df.style.background_gradient().to_html()
    a, b = BeautifulSoup(html, "html.parser"), BeautifulSoup(html, "html.parser")
    _slim_tables(a, a)
    _slim_tables_by_substring(b, b)
    assert str(a) == str(b)
    assert '<td class="row1">5.0</td>' in str(a)  # a rule names the class row1
    assert "<td>10.0</td>" in str(a)  # no rule names row2's cells
    assert len(str(a)) < len(html) * 0.8


def test_print_max_rows_metadata_marks_the_page_body():
    nb = _notebook()
    nb.metadata["exresearch"] = {"print_max_rows": 40}
    page = render_report(nb, title="T", provenance={})
    assert '<body class="jp-Notebook" data-exr-print-rows="40">' in page
    assert "data-exr-print-rows" not in render_report(_notebook(), title="T", provenance={})
    for bad in (0, -3, 2.5, "40", True):
        nb.metadata["exresearch"] = {"print_max_rows": bad}
        with pytest.raises(ParameterError, match=r"exresearch\.print_max_rows must be a "
                           rf"positive integer, but {re.escape(repr(bad))} was found"):
            render_report(nb, title="T", provenance={})


def test_study_level_notebooks_print_forty_rows_of_long_tables():
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "notebooks"
    meta = {p.name: json.loads(p.read_text())["metadata"].get("exresearch")
            for p in root.glob("*.ipynb")}
    assert meta["synthesis.ipynb"] == meta["data_quality.ipynb"] == {"print_max_rows": 40}
    assert meta["client_report.ipynb"] is None  # a client's PDF prints every row


def test_styled_aligns_text_columns_with_one_rule_per_column():
    import pandas as pd

    from exresearch import report
    from exresearch.site import slim_tables

    df = pd.DataFrame({"client": [f"c{i}" for i in range(300)], "n": range(300),
                       "scale": ["tools"] * 300})
    html = report.styled(df).to_html()
    rules = re.findall(r"(#T_\w+ td\.col\d) \{\s*text-align: left;", html)
    assert [r.split()[-1] for r in rules] == ["td.col0", "td.col2"]
    assert "_row0_col0" not in html.split("</style>")[0]  # no rule per cell
    slim = slim_tables(html)
    assert '<td class="col0">c299</td>' in slim and "<td>299</td>" in slim
    assert "id=\"T_" not in slim.split("</style>")[1].replace('<table id="T_', "")


def _long_tables_notebook():
    """A page whose long tables exercise what _polish does to a table body."""
    import pandas as pd

    n = 30
    frame = pd.DataFrame({
        "scale": [f"scale {i} & <more>" for i in range(n)],
        "note": ["ICC(2) low" if i == 7 else ("p" if i == 3 else "ok\xa0fine") for i in range(n)],
        "r": [i / 100 for i in range(n)],
    })
    ranked = frame.set_index("scale")  # row headers: <th> cells in the body
    styled = (frame.style.format(escape="html", precision=2).set_caption("Every scale")
              .set_properties(subset=pd.IndexSlice[2, "r"], **{"color": "red"}))
    outputs = [
        ranked.style.format(escape="html").format_index(escape="html").set_caption("Ranked")
        .to_html(),                                     # th per row, Styler ids and classes
        styled.to_html(),                               # one cell a rule names: keeps its id
        frame.to_html(index=False),                     # pandas' plain to_html: no Styler ids
        # the same scale first used inside a table body: the glossary wraps it there
        pd.DataFrame({"x": ["eNPS rose"] + ["-"] * (n - 1)}).style.to_html(),
        # not plain (a link in a cell): parsed as before
        "<table><tbody>" + "".join(f'<tr><td><a href="#x">{i}</a> SD</td></tr>'
                                   for i in range(n)) + "</tbody></table>",
        # a header cell that already has a scope, one with an empty one
        "<table><tbody>" + "".join('<tr><th scope="col">a</th><th scope="">b</th>'
                                   "<td>R²</td></tr>" for _ in range(n)) + "</tbody></table>",
    ]
    cells = [new_markdown_cell("# Quality\n\nThe *r* and the SD of each scale.\n\n## 1. Tables")]
    cells += [new_code_cell("t", outputs=[new_output("display_data", data={
        "text/html": html, "text/plain": "table"})]) for html in outputs]
    return new_notebook(cells=cells)


def test_long_table_bodies_are_written_as_parsed(monkeypatch):
    """Long table bodies are kept out of the parse tree (site._hold_bodies) and written back
    by hand: the page must be byte for byte the one rendered with every body parsed (Styler
    ids and classes a rule names kept, the others dropped, scope on row headers, rows and
    columns counted for the scroll box, a glossary term whose first use is in a held cell
    wrapped there, entities and non-breaking spaces written as BeautifulSoup writes them)."""
    from exresearch import site

    nb = _long_tables_notebook()
    held = []
    real = site._hold_bodies
    monkeypatch.setattr(site, "_hold_bodies", lambda html: held.append(real(html)) or held[-1])
    page = render_report(nb, title="Q", provenance={"study": "s"})
    assert len(held[0][1]) == 5  # every long plain body held, not the one with links
    monkeypatch.setattr(site, "HOLD_MIN_ROWS", 10**9)
    assert render_report(nb, title="Q", provenance={"study": "s"}) == page
    # and what a reader gets from it
    assert '<td class="data row7 col1" id="T_' not in page
    assert re.search(r'<td><abbr class="exr-term" title="[^"]+">eNPS</abbr> rose</td>', page)
    listed = page.split('class="exr-glossary"')[1].split("</section>")[0]
    assert page.count('class="exr-term"') == listed.count("<dt>") == 5  # each term once
    assert re.search(r'<th class="row_heading level0 row0" id="T_\w+_level0_row0" '
                     r'scope="row">scale 0 &amp; &lt;more&gt;</th>', page) is None
    assert '<th scope="row">scale 0 &amp; &lt;more&gt;</th>' in page
    assert '<th scope="col">a</th><th scope="row">b</th>' in page
    assert "ok\xa0fine" in page and page.count('class="exr-scroll exr-long"') == 6


def test_long_table_body_in_a_comment_or_script_is_left_as_it_was(monkeypatch):
    """A long table body in a comment or a script is text, not markup: held or not, the
    page keeps it as it was."""
    from exresearch import site

    rows = "".join(f'<tr><td class="data row{i} col0">{i} &amp; SD</td></tr>' for i in range(25))
    html = ("<html><body><main><p>Intro</p><!-- <table><tbody>" + rows + "</tbody></table> -->"
            "<script>const t = '<table><tbody>" + rows + "</tbody></table>';</script>"
            "<table><tbody>" + rows + "</tbody></table></main></body></html>")
    assert len(site._hold_bodies(html)[1]) == 3
    page = site._polish(html, glossary={"SD": "standard deviation"})
    monkeypatch.setattr(site, "HOLD_MIN_ROWS", 10**9)
    assert site._polish(html, glossary={"SD": "standard deviation"}) == page
    assert page.count(rows) == 2  # the comment and the script, as they were
    assert '<td>0 &amp; <abbr class="exr-term" title="standard deviation">SD</abbr></td>' in page
