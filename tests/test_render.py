"""A report page's rendering in the build's driver (``execute._render``, ``site._polish``):
the same pages as before issue 20's cheaper passes, and the driver's garbage collector."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from exresearch.build import execute


def _polish_with_css_selectors(html: str) -> str:
    """``site._polish`` (without a glossary) as it was before issue 20's B7e, with CSS
    selectors (soupsieve) where it now uses ``find_all``: the reference of the test below."""
    from bs4 import BeautifulSoup

    from exresearch.site import (
        _NO_ALT,
        _STYLER_CLASS,
        LONG_TABLE_ROWS,
        _heading_before,
        _named_in,
    )

    soup = BeautifulSoup(html, "html.parser")
    main = soup.find("main") or soup
    rules = " ".join(s.get_text() for s in soup.find_all("style"))
    ids = sorted(set(re.findall(r"#([\w-]*)", rules)))
    classes = sorted(set(re.findall(r"\.([\w-]*)", rules)))
    for el in main.select("table td, table th"):
        ident = el.get("id")
        if ident and ident.startswith("T_") and not _named_in(ident, "#", rules, ids):
            del el["id"]
        cls = el.get("class")
        if cls:
            keep = [c for c in cls
                    if not _STYLER_CLASS.fullmatch(c) or _named_in(c, ".", rules, classes)]
            if keep:
                el["class"] = keep
            else:
                del el["class"]
    for a in soup.select("a.anchor-link"):
        a.decompose()
    for el in soup.select("div[tabindex]"):
        del el["tabindex"]
    for n, table in enumerate(main.find_all("table"), start=1):
        for th in table.select("thead th"):
            if not th.get("scope"):
                th["scope"] = "col"
        for th in table.select("tbody th"):
            if not th.get("scope"):
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
        rows = len(table.select("tbody tr")) or len(table.find_all("tr"))
        ncols = max((len(tr.find_all(["td", "th"])) for tr in table.find_all("tr")), default=0)
        wrap = soup.new_tag("div", attrs={
            "class": "exr-scroll" + (" exr-long" if rows > LONG_TABLE_ROWS else ""),
            "role": "region", "tabindex": "0", "aria-label": label})
        table.wrap(wrap)
        if ncols > 4:
            hint = soup.new_tag("p", attrs={"class": "exr-scroll-hint", "aria-hidden": "true"})
            hint.string = "Scroll sideways to see every column →"
            wrap.insert_before(hint)
    for img in main.find_all("img"):
        if img.get("alt", "") in _NO_ALT:
            near = _heading_before(img)
            img["alt"] = f"Chart in section {near}" if near else "Chart"
        box = img.find_parent("div", class_="jp-RenderedImage")
        if box is not None and "exr-figure" not in box.get("class", []):
            box["class"] = box.get("class", []) + ["exr-figure"]
            box["role"] = "region"
            box["tabindex"] = "0"
            box["aria-label"] = "Figure: " + img["alt"][:120]
    numbered = {}
    for h in main.find_all(["h2", "h3"]):
        m = re.match(r"\s*(\d+)\.", h.get_text())
        if m and h.get("id") and m.group(1) not in numbered:
            numbered[m.group(1)] = h["id"]
    for a in main.select('a[href^="#section-"]'):
        target = numbered.get(a["href"][len("#section-"):])
        if target:
            a["href"] = "#" + target
        else:
            a.unwrap()
    return str(soup)


_LONG = "".join(f"<tr><th>u{i}</th><td id='T_x_row{i}_col0' class='data row{i} col0'>{i}</td>"
                "</tr>" for i in range(30))
PAGE = f"""<html><head><style>#T_x_row3_col0 {{color: red}} .col9 {{}}</style></head><body>
<div class="jp-Cell" tabindex="0"><p>outside main</p><a class="anchor-link x" href="#a">¶</a></div>
<main>
<h2 id="2.-Linkage">2. Linkage<a class="anchor-link" href="#2.-Linkage">¶</a></h2>
<p>See <a href="#section-2">(section 2)</a>, <a href="#section-9">(section 9)</a>,
<a href="#sections">not a pointer</a> and <a>no href</a>.</p>
<div tabindex="-1" class="jp-OutputArea"><span tabindex="0">kept: not a div</span></div>
<table><thead><tr><th></th><th scope="colgroup">a</th><th>b</th></tr></thead>
<tbody><tr><th>r1</th><td class="data row0 col9">1</td><td id="T_x_row0_col1">2</td></tr></tbody>
<tfoot><tr><th>total</th><td>3</td></tr></tfoot></table>
<h3 id="3.-Direction">3. Direction</h3>
<table><caption> </caption><tr><th>no head</th><td>1</td><td>2</td><td>3</td><td>4</td></tr>
<tr><td><table><thead><tr><th>nested</th></tr></thead><tbody><tr><td>n</td></tr></tbody>
</table></td></tr></table>
<table><caption>Long</caption><tbody>{_LONG}</tbody></table>
<td id="T_x_stray" class="data">a cell outside any table</td><th>stray head</th>
<div class="jp-RenderedImage"><img src="data:image/png;base64,AAAA"></div>
<div class="jp-RenderedImage exr-figure"><img alt="Chart: kept" src="x.png"></div>
</main></body></html>"""


def test_polish_same_page_as_with_css_selectors():
    """_polish finds its elements with find_all instead of CSS selectors; the page must be
    the same (header scopes in thead, tbody and tfoot, nested tables, a table without
    thead, captions, long tables, Styler ids and classes, cells outside tables, pilcrow
    links inside and outside main, tab stops on divs only, section pointers)."""
    from exresearch.site import _polish

    ours, reference = _polish(PAGE, glossary=None), _polish_with_css_selectors(PAGE)
    assert ours == reference
    assert 'class="anchor-link' not in ours and 'tabindex="-1"' not in ours
    assert '<th scope="col"></th>' in ours and '<th scope="row">r1</th>' in ours
    assert "<th>total</th>" in ours and 'scope="colgroup"' in ours
    assert ours.count("exr-long") == 1 and 'href="#2.-Linkage"' in ours
    assert 'id="T_x_row3_col0"' in ours and 'id="T_x_row0_col1"' not in ours
    assert '<td class="col9">1</td>' in ours and 'id="T_x_stray"' in ours


def test_redact_outputs_same_as_redact_paths(tmp_path):
    """_redact_outputs lists the machine's folders once per notebook; every string of the
    outputs and sources is redacted as redact_paths redacts it, base64 images left alone."""
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    tmp = str(tmp_path)
    texts = [f"{tmp}/tables/x.csv", f"File {sys.prefix}/lib/y.py, line 3", "/srv/me/a.txt",
             "", f"see {tmp}"]
    nb = new_notebook(cells=[new_code_cell(
        f"study_path = '{tmp}/study'", outputs=[
            new_output("stream", name="stdout", text="\n".join(texts)),
            new_output("display_data", data={"text/plain": texts[1], "text/html": texts[0],
                                             "image/png": "iVBOR/tmp/AAAA"}),
            new_output("error", ename="E", evalue=texts[2], traceback=texts)])])
    roots = {tmp: "<study>"}
    execute._redact_outputs(nb, roots)
    cell = nb.cells[0]
    assert cell.source == execute.redact_paths(f"study_path = '{tmp}/study'", roots)
    assert cell.outputs[0].text == execute.redact_paths("\n".join(texts), roots)
    assert cell.outputs[1].data["text/plain"] == execute.redact_paths(texts[1], roots)
    assert cell.outputs[1].data["text/html"] == "<study>/tables/x.csv"
    assert cell.outputs[1].data["image/png"] == "iVBOR/tmp/AAAA"
    assert cell.outputs[2].traceback == [execute.redact_paths(t, roots) for t in texts]
    assert cell.outputs[2].evalue == "…/a.txt"


def test_render_freezes_the_driver_once():
    """The first page a process renders collects and freezes what it holds (libraries,
    the exporter): later full garbage collections leave those objects alone. In a fresh
    process, as a build's driver is."""
    code = """
import gc, json
from nbformat.v4 import new_markdown_cell, new_notebook, writes
from exresearch.build import execute
before = gc.get_freeze_count()
nb = writes(new_notebook(cells=[new_markdown_cell("# Hello")]))
task = {"title": "t"}
out = execute._render(task, nb, "ok", None, {}, {})
after = gc.get_freeze_count()
execute._render(task, nb, "ok", None, {}, {})
print(json.dumps([before, after, gc.get_freeze_count(), out[2], "Hello" in out[1]]))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True)
    before, after, again, status, shown = json.loads(res.stdout.strip().splitlines()[-1])
    assert status == "ok" and shown
    assert before == 0
    assert after > 10_000  # the libraries and nbconvert's exporter
    assert again == after  # once per process
