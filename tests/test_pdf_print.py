"""Printing PDFs with several pages at once (issue 20): the same files as one page at a
time, a page that fails is reported while the others are printed.

PDFs are compared as a reader sees them: page count (``pdfinfo``), text (``pdftotext``)
and every pixel of every page (``pdftoppm``); poppler-utils must be installed.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from exresearch import deliver

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="/usr/bin/chromium is absent (`make browser` installs it)"),
    pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler-utils"),
]


def _palette_png() -> str:
    """A small chart-like palette PNG as a data: URI (what exresearch.style writes)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    rows = np.repeat(np.repeat(rng.integers(0, 12, size=(60, 40)), 12, axis=1), 4, axis=0)
    rows = rows.astype(np.uint8)
    img = Image.fromarray(rows, mode="P")
    img.putpalette(rng.integers(0, 256, size=12 * 3, dtype=np.uint8).tobytes())
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _pages(folder: Path, n: int) -> list[Path]:
    png = _palette_png()
    out = []
    for i in range(n):
        rows = "".join(f"<tr><td>client-{i:02d}-{j:03d}</td><td>{j * 0.137:.3f}</td></tr>"
                       for j in range(40 * (i + 1)))  # 1 to n pages long
        page = folder / f"page-{i}.html"
        page.write_text(
            f"<!DOCTYPE html><html><body><h1 id='top'>Report {i}</h1>"
            f"<a href='other.html'>other file</a> <a href='#top'>anchor</a>"
            f"<img alt='chart {i}' src='{png}' width='300'>"
            f"<details><summary>Folded {i}</summary><p>inside-{i}</p></details>"
            f"<table>{rows}</table></body></html>", encoding="utf-8")
        out.append(page)
    return out


def _seen(pdf: Path, tmp: Path) -> tuple:
    """(page count, text, pixels of each page) of a PDF."""
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    pages = int(next(line.split()[-1] for line in info.stdout.splitlines()
                     if line.startswith("Pages:")))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    prefix = tmp / f"px-{pdf.parent.name}-{pdf.stem}"
    subprocess.run(["pdftoppm", "-r", "40", str(pdf), str(prefix)], check=True)
    pixels = [p.read_bytes() for p in sorted(tmp.glob(f"{prefix.name}*.ppm"))]
    return pages, text, pixels


def test_several_pages_at_once_print_the_same_pdfs_as_one_page(tmp_path):
    from pypdf import PdfReader

    pages = _pages(tmp_path, 5)
    done = []
    serial = deliver.render_pdfs([(p, tmp_path / "one" / f"{p.stem}.pdf") for p in pages])
    parallel = deliver.render_pdfs([(p, tmp_path / "three" / f"{p.stem}.pdf") for p in pages],
                                   workers=3, on_done=done.append)
    assert sorted(done) == sorted(parallel)  # each PDF handed on once, when written
    px = tmp_path / "px"
    px.mkdir()
    counts = []
    for a, b in zip(serial, parallel, strict=True):
        seen_a, seen_b = _seen(a, px), _seen(b, px)
        assert seen_a == seen_b, a.name
        counts.append(seen_a[0])
        assert f"Report {a.stem[-1]}" in seen_a[1] and f"inside-{a.stem[-1]}" in seen_a[1]
        # compacted alike too (the build compacts each PDF as it is written)
        assert deliver.compact_pdf(a) > 0 and deliver.compact_pdf(b) > 0
        assert _seen(a, px) == _seen(b, px) == seen_a  # every pixel kept
        # every image pypdf finds by parsing the pages (what compact_pdf once walked) was
        # rewritten: walking the resources misses none
        images = [im for page in PdfReader(b).pages for im in page.images]
        assert images and all(im.indirect_reference.get_object()["/ColorSpace"][0]
                              == "/Indexed" for im in images)
    assert counts == sorted(counts) and counts[-1] > 1  # longer pages, more paper
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_page_that_fails_is_reported_and_the_others_are_printed(tmp_path):
    pages = _pages(tmp_path, 3)
    missing = tmp_path / "missing.html"
    jobs = [(pages[0], tmp_path / "pdf" / "a.pdf"), (missing, tmp_path / "pdf" / "m.pdf"),
            (pages[1], tmp_path / "pdf" / "b.pdf"), (pages[2], tmp_path / "pdf" / "c.pdf")]
    done = []
    with pytest.raises(deliver.PdfError, match=r"1 of 4 page\(s\) could not be printed: "
                       r"missing\.html \(missing\.html: Error: .*ERR_FILE_NOT_FOUND") as err:
        deliver.render_pdfs(jobs, workers=2, on_done=done.append)
    assert err.value.failed == [tmp_path / "pdf" / "m.pdf"]
    assert sorted(p.name for p in (tmp_path / "pdf").iterdir()) == ["a.pdf", "b.pdf", "c.pdf"]
    assert sorted(p.name for p in done) == ["a.pdf", "b.pdf", "c.pdf"]
    assert str(tmp_path) not in str(err.value)  # names pages, not this machine's folders


def test_a_page_with_print_rows_prints_both_ends_of_long_tables(tmp_path):
    """``<body data-exr-print-rows="N">`` (the study-level reports): a table longer than
    N + 10 prints its first and last N/2 rows (a ranked table keeps both ends), a line
    between them naming the rows left out and the page that shows them, and a note in
    its caption; a shorter table, and every table of a page without the attribute,
    prints whole."""

    def page(name, attr):
        long_rows = "".join(f"<tr><td>long-{j:03d}</td><td>{j}</td></tr>" for j in range(200))
        short_rows = "".join(f"<tr><td>short-{j:03d}</td><td>{j}</td></tr>" for j in range(50))
        path = tmp_path / f"{name}.html"
        path.write_text(
            f"<!DOCTYPE html><html><body{attr}><h1>{name}</h1>"
            "<table><caption>Every unit</caption><thead><tr><th>unit</th><th>n</th></tr>"
            f"</thead><tbody>{long_rows}</tbody></table>"
            f"<details><summary>Folded</summary><table><tbody>{short_rows}</tbody></table>"
            "</details></body></html>", encoding="utf-8")
        return path

    cut = page("cut", ' data-exr-print-rows="40"')
    whole = page("whole", "")
    pdfs = deliver.render_pdfs([(cut, tmp_path / "cut.pdf"), (whole, tmp_path / "whole.pdf")])
    px = tmp_path / "px"
    px.mkdir()
    (n_cut, text_cut, _), (n_whole, text_whole, _) = (_seen(p, px) for p in pdfs)
    printed = [j for j in range(200) if f"long-{j:03d}" in text_cut]
    assert printed == [*range(20), *range(180, 200)]
    words = " ".join(text_cut.split())
    assert ("Rows 21\u2013180 of 200 are left out of the print; the web page of this report "
            "(cut.html) shows every row.") in words
    assert "Every unit (printed: the first 20 and the last 20 of 200 rows)" in words
    assert words.index("long-019") < words.index("are left out") < words.index("long-180")
    assert all(f"short-{j:03d}" in text_cut for j in range(50))  # 50 <= 40 + 10: whole
    assert all(f"long-{j:03d}" in text_whole for j in range(200))
    assert "left out" not in text_whole and "(printed:" not in text_whole
    assert n_cut < n_whole


def test_every_printed_page_has_its_number_centred_in_the_bottom_margin(tmp_path):
    """The page numbers ("2 / 4") are a CSS ``@page`` margin box that render_pdfs adds
    to the page (not Chromium's header/footer template): on every page, once, centred
    on the paper, inside the 16 mm bottom margin, 8px (6 pt) type, 15.08 pt above the
    paper's edge, where the template printed them; the body stays inside its margins
    (12 mm left, 14 mm top)."""
    import re

    page = _pages(tmp_path, 5)[4]  # 200 rows: several pages
    (pdf,) = deliver.render_pdfs([(page, tmp_path / "numbers.pdf")])
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    n = int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))
    assert n >= 3
    bbox = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    pages = bbox.split("<page ")[1:]
    assert len(pages) == n
    word = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" '
                      r'yMax="([\d.]+)">([^<]*)</word>')
    mm = 72 / 25.4
    for i, text in enumerate(pages, 1):
        words = [(float(a), float(b), float(c), float(d), w)
                 for a, b, c, d, w in word.findall(text)]
        body = [w for w in words if w[3] < 792 - 16 * mm]
        foot = [w for w in words if w[3] >= 792 - 16 * mm]
        assert [w[4] for w in foot] == [str(i), "/", str(n)], i
        left, right = foot[0][0], foot[-1][2]
        assert abs((left + right) / 2 - 306) < 1.5, (i, left, right)
        assert all(abs(w[3] - (792 - 15.08)) < 0.5 for w in foot), (i, foot)
        assert all(6.5 < w[3] - w[1] < 7.5 for w in foot), (i, foot)  # 6 pt type
        assert min(w[0] for w in body) >= 12 * mm - 0.5, i
        assert min(w[1] for w in body) >= 14 * mm - 0.5, i
    plain = subprocess.run(["pdftotext", "-f", "2", "-l", "2", str(pdf), "-"],
                           capture_output=True, text=True, check=True).stdout
    assert plain.split()[-1] == f"2/{n}"  # (pdftotext's reading order: the last line)


def test_a_tables_title_caption_and_header_never_end_a_page_alone(tmp_path):
    """With the site's stylesheet, a folded table whose title, caption and header row fit
    at the foot of a page but whose first row does not starts on the next page (the
    header is repeated on every later page as before). Without ``thead``'s and
    ``summary``'s ``break-after: avoid`` and ``caption``'s ``break-inside: avoid``,
    Chromium left the title, the caption (or its first line) and the header alone at the
    foot of page 1 (from 172 mm of filler here; at 300 clients on pages 9, 11 and 21 of
    the synthesis's PDF). Every page that shows the header shows a row of the table
    below it (``pdftotext -layout``: a row's cells on one line), and the folded table's
    title and both lines of its caption are on the page of its first rows."""
    from exresearch import site

    site.write_assets(tmp_path)
    head = "".join(f"<th>heading{k}</th>" for k in range(5))
    rows = "".join(f"<tr><td>unit{j:03d}</td>"
                   + "<td>some longer text value</td>" * 5 + "</tr>" for j in range(40))
    jobs = []
    for filler in range(160, 204, 2):  # the table's start moves down page 1, 2 mm a page
        page = tmp_path / f"filler-{filler}.html"
        page.write_text(
            "<!DOCTYPE html><html><head><link rel='stylesheet' href='assets/site.css'>"
            "</head><body><main class='exr-main'><h1>Report</h1>"
            f"<div style='height:{filler}mm'></div><h2>Section</h2><p>Intro.</p>"
            "<details><summary>Foldedtitle: every unit</summary>"
            "<div class='exr-scroll' role='region'><table><caption>Captionstart: every "
            "unit's numbers, a caption long enough to take two lines of the printed page "
            "(printed: the first 20 and the last 20 of 300 rows) Captionend</caption>"
            f"<thead><tr><th>unit</th>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
            "</details>"
            "</main></body></html>", encoding="utf-8")
        jobs.append((page, tmp_path / f"filler-{filler}.pdf"))
    pdfs = deliver.render_pdfs(jobs)
    assert len(pdfs) == len(jobs)
    for pdf in pdfs:
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                              text=True, check=True).stdout
        pages = text.split("\f")[:-1]
        assert len(pages) >= 2
        first = next(k for k, t in enumerate(pages) if "unit000" in t)
        for word in ("Foldedtitle", "Captionstart", "Captionend", "heading0"):
            assert word in pages[first], (pdf.name, word)
        with_head = [k for k, t in enumerate(pages) if "heading0" in t]
        assert with_head, pdf.name
        for k in with_head:
            after = pages[k][pages[k].index("heading0"):]
            assert "unit0" in after, (pdf.name, k + 1)  # a row follows the header
        printed = sorted({int(m) for m in re.findall(r"unit(\d{3})", text)})
        assert printed == list(range(40)), pdf.name  # every row, once or more


def test_a_tables_first_row_never_ends_a_page_alone_nor_its_last_row_starts_one(tmp_path):
    """With the site's stylesheet a page break inside a table leaves at least two of its
    rows on each side: a 30-row table whose start moves down page 1 (2 mm a page) never
    leaves its header and first row alone at the foot of a page, nor its last row alone at
    the top of the next page above the following section. Without ``tbody
    tr:first-child``'s ``break-after: avoid`` Chromium printed the first row alone from
    177 to 186 mm of filler; without ``tbody tr:last-child``'s ``break-before: avoid``, the
    last row alone on page 3 from 84 to 93 mm (the 300-client synthesis's PDF had it on
    page 14). A table of one row keeps no rule: it may end a page, with the paragraph
    after it on the next (from 180 to 192 mm here); with the rules on its one row it
    always went to the next page with that paragraph."""
    from exresearch import site

    site.write_assets(tmp_path)
    head = "".join(f"<th>heading{k}</th>" for k in range(5))
    rows = "".join(f"<tr><td>unit{j:03d}</td>"
                   + "<td>some longer text value</td>" * 5 + "</tr>" for j in range(30))
    jobs = []
    for filler in [*range(76, 100, 2), *range(168, 196, 2)]:
        page = tmp_path / f"filler-{filler}.html"
        page.write_text(
            "<!DOCTYPE html><html><head><link rel='stylesheet' href='assets/site.css'>"
            "</head><body><main class='exr-main'><h1>Report</h1>"
            f"<div style='height:{filler}mm'></div><h2>Section</h2><p>Intro.</p>"
            "<div class='exr-scroll' role='region'><table class='dataframe'><caption>Every "
            f"unit</caption><thead><tr><th>unit</th>{head}</tr></thead><tbody>{rows}</tbody>"
            "</table></div><h2>Nextsection</h2><p>After the table.</p>"
            "</main></body></html>", encoding="utf-8")
        jobs.append((page, tmp_path / f"filler-{filler}.pdf"))
    for filler in range(176, 204, 4):  # a table of one row, then a paragraph
        page = tmp_path / f"one-{filler}.html"
        page.write_text(
            "<!DOCTYPE html><html><head><link rel='stylesheet' href='assets/site.css'>"
            "</head><body><main class='exr-main'><h1>Report</h1>"
            f"<div style='height:{filler}mm'></div><h2>Section</h2><p>Intro.</p>"
            "<div class='exr-scroll' role='region'><table class='dataframe'><caption>One"
            "</caption><thead><tr><th>unit</th><th>value</th></tr></thead><tbody><tr><td>"
            "solo</td><td>1.0</td></tr></tbody></table></div><p>Afterpara: "
            + "a paragraph after the table, long enough for several lines. " * 12
            + "</p></main></body></html>", encoding="utf-8")
        jobs.append((page, tmp_path / f"one-{filler}.pdf"))
    pdfs = deliver.render_pdfs(jobs)
    assert len(pdfs) == len(jobs)
    ends_a_page = 0
    for pdf in [p for p in pdfs if p.name.startswith("one-")]:
        pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                               text=True, check=True).stdout.split("\f")[:-1]
        at = {w: next(k for k, t in enumerate(pages) if w in t) for w in ("solo", "Afterpara")}
        ends_a_page += at["solo"] < at["Afterpara"]
    assert ends_a_page >= 2, ends_a_page
    split = 0
    for pdf in [p for p in pdfs if p.name.startswith("filler-")]:
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                              text=True, check=True).stdout
        per_page = [re.findall(r"unit(\d{3})", t) for t in text.split("\f")[:-1]]
        shown = [units for units in per_page if units]
        split += len(shown) > 1
        for k, units in enumerate(per_page):
            assert len(units) != 1, (pdf.name, k + 1, units)  # a row alone on a page
        assert sorted(int(u) for units in per_page for u in units) == list(range(30)), pdf.name
    assert split == len(pdfs) - 7  # every 30-row table is broken across pages somewhere
