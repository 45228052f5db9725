"""exresearch.deliver: workbooks, data dictionaries, briefs, share landing pages, the phase's
worker processes (no browser, but for one slow test of printing a stream of pages)."""

from __future__ import annotations

import doctest
import json
import os
import re

import openpyxl
import pandas as pd
import pytest

from exresearch import deliver
from exresearch.exceptions import ParameterError
from exresearch.privacy import write_csv
from exresearch.site import dumps_manifest, render_index, render_share_index


def test_doctests():
    res = doctest.testmod(deliver, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted >= 3 and res.failed == 0


def test_workbook_sheets_values_formats_and_no_formulas(tmp_path):
    scores = pd.DataFrame({"scale": ["=HYPERLINK(\"http://x\")", "+SUM(A1)", "@me", "tools"],
                           "mean": [3.123456789012, 2.5, float("nan"), 4.0],
                           "p_value": [1e-9, 0.04, 0.5, 1.0], "n_units": [10, 12, 9, 30],
                           "pct_favourable": [61.25, 50.0, 12.5, 99.9]})
    long_name = "a_table_name_far_longer_than_thirty_one_characters"
    path = deliver.write_workbook({"scores": scores, long_name: scores.head(1),
                                   "bad:/name?": scores.head(2)}, tmp_path / "w.xlsx",
                                  title="=cmd|' /C calc'!A0")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Contents", "scores", long_name[:31], "bad__name_", "Columns"]
    ws = wb["scores"]
    assert [c.value for c in ws[1]] == list(scores.columns)
    assert [c.value for c in ws["A"][1:]] == ["'=HYPERLINK(\"http://x\")", "'+SUM(A1)", "'@me",
                                              "tools"]
    assert all(c.data_type == "s" for c in ws["A"][1:])
    assert ws["B2"].value == 3.123456789012 and ws["B4"].value is None  # full precision
    assert ws["B2"].number_format == "0.000" and ws["C2"].number_format == "0.000"
    assert ws["D2"].number_format == "#,##0" and ws["E2"].number_format == '0.0"%"'
    assert wb["Contents"]["A1"].value == "'=cmd|' /C calc'!A0"
    assert wb["Contents"]["A5"].hyperlink.location == "'scores'!A1"
    cols = wb["Columns"]
    assert [c.value for c in cols[1]] == ["table", "column", "name", "type", "definition"]
    assert ("scores", "p_value", "p-value") in {tuple(c.value for c in r[:3]) for r in cols.iter_rows(min_row=2)}
    with pytest.raises(ParameterError, match="list was passed"):
        deliver.write_workbook({"x": [1]}, tmp_path / "x.xlsx")


def test_brief_groups_findings_and_links_sections():
    findings = pd.DataFrame({
        "finding": [1, 2, 3, 4], "topic": ["linkage", "drivers", "value", "direction"],
        "text": ["Linked <strongly>.", "Tools matter.", "Worth 1.2 million.", "EX leads."]})
    prio = pd.DataFrame({"driver": ["tools", "training", "leader"],
                         "priority": [True, True, False], "rank": [2, 1, 3]})
    page = deliver.render_brief(study_name="S", client_name="Acme & Co", findings=findings,
                                priorities=prio, labels={"tools": "Tools and technology"},
                                report_href="../reports/client-acme.html",
                                anchors={"2": "2.-Linkage", "5": "5.-Key-drivers"})
    heads = [h for h in ("What we found", "Where to act first", "What it is worth",
                         "The loop: who leads whom") if h in page]
    assert heads == ["What we found", "Where to act first", "What it is worth",
                     "The loop: who leads whom"]
    assert page.index("What we found") < page.index("Where to act first")
    assert "Linked &lt;strongly&gt;." in page and "Acme &amp; Co" in page
    assert "<strong>training, Tools and technology</strong>" in page  # rank order, labels
    assert 'href="../reports/client-acme.html#2.-Linkage"' in page
    assert 'href="../reports/client-acme.html#5.-Key-drivers"' in page
    assert "<script" not in page


def _site(tmp_path):
    """A staging folder as the build leaves it before publish_extras."""
    root = tmp_path / "site"
    (root / "reports").mkdir(parents=True)
    (root / "tables" / "client-a").mkdir(parents=True)
    report = ('<!DOCTYPE html><html><body><main class="exr-main"><h1 id="R">R</h1>'
              '<h2 id="2.-Linkage">2. Linkage</h2></main></body></html>')
    (root / "reports" / "client-a.html").write_text(report)
    (root / "reports" / "synthesis.html").write_text(report.replace("R</h1>", "Syn</h1>"))
    write_csv(pd.DataFrame({"finding": [1], "topic": ["linkage"], "text": ["Linked."]}),
              root / "tables" / "client-a" / "findings.csv")
    write_csv(pd.DataFrame({"x": ["ex"], "r": [0.123456789]}),
              root / "tables" / "client-a" / "linkage.csv")
    share = root / "share" / "a"
    (share / "reports").mkdir(parents=True)
    (share / "tables" / "client-a").mkdir(parents=True)
    for rel in ("reports/client-a.html", "reports/synthesis.html",
                "tables/client-a/findings.csv", "tables/client-a/linkage.csv"):
        (share / rel).write_bytes((root / rel).read_bytes())
    records = [
        {"key": "synthesis", "kind": "synthesis", "client_id": None, "name": "Synthesis",
         "status": "ok", "html": "reports/synthesis.html", "tables": []},
        {"key": "client-a", "kind": "client", "client_id": "a", "name": "Acme",
         "status": "ok", "html": "reports/client-a.html",
         "tables": ["tables/client-a/findings.csv", "tables/client-a/linkage.csv"]},
    ]
    (share / "index.html").write_text(render_share_index(
        study_name="S", client_name="Acme", report="reports/client-a.html",
        tables=records[1]["tables"], synthesis="reports/synthesis.html"))
    (root / "index.html").write_text(render_index(study={"name": "S"}, reports=[
        {**r, "share": "share/a/index.html" if r["client_id"] else None} for r in records],
        headline=[]))
    (root / "manifest.json").write_text(dumps_manifest({
        "study": {"name": "S", "path": str(tmp_path / "secret" / "study")},
        "reports": [{**r, "parameters": {"study_path": str(tmp_path / "secret" / "study")}}
                    for r in records]}))
    return root, records


def test_publish_extras_without_pdf(tmp_path):
    from types import SimpleNamespace

    root, records = _site(tmp_path)
    secret = tmp_path / "secret" / "study"
    (root / "notebooks").mkdir()
    (root / "notebooks" / "client-a.ipynb").write_text(json.dumps({"cells": [{"source": [
        f'study_path = "{secret}"\n', f'output_dir = "{root}/.exresearch/work/tables"']}],
        "metadata": {"papermill": {"input_path": f"{root}/x.ipynb"}}}))
    extras = deliver.publish_extras(root, records=records, pseudonyms={"a": "Client D"},
                                    pdf=False, study=SimpleNamespace(path=secret, config=None))
    assert extras["client-a"] == {"dictionary": "tables/client-a/data_dictionary.csv",
                                  "workbook": "workbooks/client-a.xlsx",
                                  "brief": "briefs/client-a.html"}
    assert (root / "assets" / "site.css").is_file()
    assert (root / "share" / "a" / "assets" / "site.css").is_file()
    wb = openpyxl.load_workbook(root / "workbooks" / "client-a.xlsx")
    assert wb.sheetnames == ["Contents", "findings", "linkage", "Columns"]
    assert wb["linkage"]["B2"].value == 0.123456789
    dd = pd.read_csv(root / extras["client-a"]["dictionary"])
    assert dd.loc[dd["column"] == "r", "name"].item() == "correlation (r)"
    brief = (root / "briefs" / "client-a.html").read_text()
    assert 'href="../reports/client-a.html#2.-Linkage"' in brief
    landing = (root / "share" / "a" / "index.html").read_text()
    assert "you are <strong>Client D</strong>" in landing
    for rel in ("briefs/client-a.html", "workbooks/client-a.xlsx", "reports/client-a.html",
                "tables/client-a/data_dictionary.csv"):
        assert f'href="{rel}"' in landing and (root / "share" / "a" / rel).is_file()
    assert "Client D" not in (root / "index.html").read_text()  # only in its own bundle
    index = (root / "index.html").read_text()
    assert 'href="workbooks/client-a.xlsx">Excel</a>' in index
    assert 'href="briefs/client-a.html">brief</a>' in index
    assert 'href="share/a/index.html"' in index and "<!--exr-extras" not in index
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["extras"] == extras
    assert str(tmp_path) not in (root / "manifest.json").read_text()
    assert manifest["study"]["path"] == "study"
    nb = (root / "notebooks" / "client-a.ipynb").read_text()
    assert str(tmp_path) not in nb
    assert "<study study>" in nb and "<site>/.exresearch/work/tables" in nb


def test_pdf_switch(monkeypatch):
    monkeypatch.setenv("EXRESEARCH_PDF", "0")
    assert deliver.pdf_enabled() is False
    assert deliver.pdf_enabled(True) is True
    monkeypatch.setenv("EXRESEARCH_PDF", "")
    monkeypatch.setenv("EXRESEARCH_CHROMIUM", "/no/such/chromium")
    assert deliver.find_chromium() is None and deliver.pdf_enabled() is False
    with pytest.raises(RuntimeError, match="apt-get install chromium"):
        deliver.render_pdfs([("a.html", "a.pdf")])


def test_skipped_pdfs_say_why(tmp_path, monkeypatch, capsys):
    """--no-pdf or EXRESEARCH_PDF=0 with Chromium installed is not "no Chromium"."""
    monkeypatch.setenv("EXRESEARCH_CHROMIUM", "/bin/sh")  # a file: Chromium "found"
    monkeypatch.delenv("EXRESEARCH_PDF", raising=False)
    root, records = _site(tmp_path)
    deliver.publish_extras(root, records=records, pdf=False, progress=True)
    assert "PDFs skipped (--no-pdf)" in capsys.readouterr().err
    monkeypatch.setenv("EXRESEARCH_PDF", "0")
    assert deliver._pdf_off_reason() == "EXRESEARCH_PDF=0"
    monkeypatch.delenv("EXRESEARCH_PDF")
    monkeypatch.setenv("EXRESEARCH_CHROMIUM", str(tmp_path / "none"))
    assert deliver._pdf_off_reason().startswith("no Chromium; apt-get install chromium")
    root2, records2 = _site(tmp_path / "second")
    deliver.publish_extras(root2, records=records2, progress=True)
    assert "PDFs skipped (no Chromium; apt-get install chromium" in capsys.readouterr().err


def test_brief_follows_the_driver_model_when_it_decides():
    findings = pd.DataFrame({"finding": [1], "topic": ["drivers"], "text": ["x"]})
    prio = pd.DataFrame({"driver": ["tools", "training"], "priority": [True, True],
                         "act_first": [False, True], "rank": [1, 2]})
    page = deliver.render_brief(study_name="S", client_name="A", findings=findings,
                                priorities=prio, report_href="r.html")
    assert "Act first on <strong>training</strong>." in page
    none = deliver.render_brief(study_name="S", client_name="A", findings=findings,
                                priorities=prio.assign(act_first=False), report_href="r.html")
    assert "<strong>" not in none  # no driver named when the model names none


def _rgb_pdf(path, pixels, *, form=False) -> None:
    """A one-page PDF holding ``pixels`` (H x W x 3 uint8) as an 8-bit RGB Flate image,
    as Chromium prints a figure (``form``: drawn by a form XObject holding it)."""
    import zlib

    h, w, _ = pixels.shape
    data = zlib.compress(pixels.tobytes())
    content = f"q {w} 0 0 {h} 0 0 cm /Im0 Do Q".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w} {h}] /Contents 4 0 R "
            "/Resources << /XObject << /Im0 5 0 R >> >> >>".encode(),
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
            f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace "
            f"/DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode /Length {len(data)} >>"
            "\nstream\n".encode() + data + b"\nendstream"]
    if form:
        outer = b"/Fm0 Do"
        objs[2] = objs[2].replace(b"/Im0 5 0 R", b"/Fm0 6 0 R").replace(b"4 0 R", b"7 0 R")
        objs.append(f"<< /Type /XObject /Subtype /Form /BBox [0 0 {w} {h}] /Resources "
                    f"<< /XObject << /Im0 5 0 R >> >> /Length {len(content)} >>\nstream\n"
                    .encode() + content + b"\nendstream")
        objs.append(b"<< /Length %d >>\nstream\n" % len(outer) + outer + b"\nendstream")
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))


def test_compact_pdf_keeps_every_pixel(tmp_path):
    import numpy as np
    from pypdf import PdfReader

    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, size=(40, 3), dtype=np.uint8)  # a chart's few colours
    rows = np.repeat(rng.integers(0, 40, size=(60, 30)), 4, axis=1)  # runs, as in charts
    pixels = palette[rows]
    pdf = tmp_path / "chart.pdf"
    _rgb_pdf(pdf, pixels)
    before = pdf.stat().st_size
    saved = deliver.compact_pdf(pdf)
    assert saved > 0 and pdf.stat().st_size == before - saved
    image = PdfReader(pdf).pages[0].images[0]
    obj = image.indirect_reference.get_object()
    assert obj["/ColorSpace"][0] == "/Indexed" and obj["/ColorSpace"][1] == "/DeviceRGB"
    assert obj["/DecodeParms"]["/Predictor"] == 15
    np.testing.assert_array_equal(np.asarray(image.image.convert("RGB")), pixels)
    assert deliver.compact_pdf(pdf) == 0  # nothing left to gain: the file is kept as it is
    # more than 256 colours (a photograph): left alone
    photo = tmp_path / "photo.pdf"
    _rgb_pdf(photo, rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8))
    raw = photo.read_bytes()
    assert deliver.compact_pdf(photo) == 0 and photo.read_bytes() == raw
    # a figure drawn through a form XObject (found by walking the resources, not the
    # pages' content streams): compacted alike, every pixel kept
    nested = tmp_path / "form.pdf"
    _rgb_pdf(nested, pixels, form=True)
    assert deliver.compact_pdf(nested) > 0
    form = PdfReader(nested).pages[0]["/Resources"]["/XObject"]["/Fm0"].get_object()
    image = form["/Resources"]["/XObject"]["/Im0"].get_object()
    assert image["/ColorSpace"][0] == "/Indexed"
    np.testing.assert_array_equal(
        np.asarray(PdfReader(nested).pages[0].images[0].image.convert("RGB")), pixels)


def test_published_notebook_has_alt_text_for_figures_and_slim_tables():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    table = pd.DataFrame({"scale": ["tools"], "mean": [3.5]}).style.to_html()
    fig = new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
                     metadata={"image/png": {"alt": "Chart: NPS by unit. Bars: A 3, B 4."}})
    nb = new_notebook(cells=[new_code_cell("plot()", outputs=[fig]), new_code_cell(
        "show()", outputs=[new_output("display_data", data={"text/html": table})])])
    text = json.dumps(nb)
    out = json.loads(deliver.notebook_without_images(text))
    assert out["cells"][0]["outputs"][0]["data"] == {
        "text/plain": "[Figure, shown on the report page: Chart: NPS by unit. Bars: A 3, B 4.]"}
    assert out["cells"][0]["source"] == "plot()"
    html = out["cells"][1]["outputs"][0]["data"]["text/html"]
    assert "<td>tools</td>" in html and "row0" not in html and "<style" in html
    assert len(html) < len(table)
    no_fig = json.dumps(new_notebook(cells=[new_code_cell("x = 1")]))
    assert deliver.notebook_without_images(no_fig) == no_fig  # nothing to do: same text


def test_pdfs_printed_when_one_page_fails_are_linked_and_compacted(tmp_path, monkeypatch,
                                                                   capsys):
    # the printer (render_pdfs) stands in: the report prints, the brief fails
    root, records = _site(tmp_path)
    seen = {}
    # (compact_pdf runs in the extras' worker processes: they log to a file)
    log = tmp_path / "compacted.log"

    def fake_render(jobs, *, tmpdir=None, workers=1, on_done=None, chromium=None):
        seen["workers"], seen["jobs"] = workers, [(h.name, p.name) for h, p in jobs]
        for _, pdf in jobs:
            if not pdf.name.endswith("-brief.pdf"):
                pdf.parent.mkdir(exist_ok=True)
                pdf.write_bytes(b"%PDF-1.4 " + pdf.name.encode())
                on_done(pdf)
        raise deliver.PdfError("1 of 3 page(s) could not be printed: client-a.html (...)",
                               [root / "pdf" / "client-a-brief.pdf"])

    monkeypatch.setattr(deliver, "render_pdfs", fake_render)
    monkeypatch.setattr(deliver, "compact_pdf", lambda path: _log(log, path.name) or 0)
    monkeypatch.setattr(deliver.os, "cpu_count", lambda: 8)
    extras = deliver.publish_extras(root, records=records, pdf=True, jobs=3)
    assert seen["workers"] == 3
    assert seen["jobs"] == [("synthesis.html", "synthesis.pdf"),
                            ("client-a.html", "client-a.pdf"),
                            ("client-a.html", "client-a-brief.pdf")]
    compacted = log.read_text().split()
    assert sorted(compacted) == ["client-a.pdf", "synthesis.pdf"]  # each printed PDF, once
    assert extras["synthesis"] == {"pdf": "pdf/synthesis.pdf"}
    assert extras["client-a"]["pdf"] == "pdf/client-a.pdf" and "brief_pdf" not in extras["client-a"]
    assert "exresearch build: 1 of 3 page(s) could not be printed: client-a.html" in \
        capsys.readouterr().err
    manifest = json.loads((root / "manifest.json").read_text())
    assert sorted(manifest["pdf_keys"]) == ["pdf/client-a.pdf", "pdf/synthesis.pdf"]  # reprinted next time
    index = (root / "index.html").read_text()
    assert 'href="pdf/client-a.pdf">PDF</a>' in index and "client-a-brief.pdf" not in index
    assert (root / "share" / "a" / "pdf" / "client-a.pdf").is_file()
    assert not (root / "share" / "a" / "pdf" / "client-a-brief.pdf").exists()
    monkeypatch.setattr(deliver.os, "cpu_count", lambda: 2)  # no more pages than cores
    deliver.publish_extras(root, records=records, pdf=True, jobs=3)
    assert seen["workers"] == 2


def _log(path, line) -> None:
    """Append a line to ``path`` (from any process: a spy inside the extras' workers)."""
    with open(path, "a") as fh:
        fh.write(f"{line}\n")


def test_render_pdfs_workers_must_be_a_positive_integer():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ParameterError, match=f"`workers` must be a positive integer, but "
                           f"{re.escape(repr(bad))} was passed"):
            deliver.render_pdfs([("a.html", "a.pdf")], workers=bad)


def test_unchanged_pages_reuse_their_pdfs_and_a_changed_page_is_printed_again(
        tmp_path, monkeypatch):
    printed = []

    def fake_render(jobs, *, tmpdir=None, workers=1, on_done=None, chromium=None):
        printed.append(sorted(p.name for _, p in jobs))
        for html, pdf in jobs:
            pdf.parent.mkdir(exist_ok=True)
            pdf.write_bytes(b"%PDF-1.4 " + html.read_bytes())
            on_done(pdf)
        return [p for _, p in jobs]

    monkeypatch.setattr(deliver, "render_pdfs", fake_render)
    monkeypatch.setattr(deliver, "compact_pdf", lambda path: 0)
    first, records = _site(tmp_path / "first")
    deliver.publish_extras(first, records=records, pdf=True, jobs=2)
    assert printed == [["client-a-brief.pdf", "client-a.pdf", "synthesis.pdf"]]
    second, _ = _site(tmp_path / "second")  # the same pages: every PDF is reused
    extras = deliver.publish_extras(second, records=records, pdf=True, previous=first, jobs=2)
    assert len(printed) == 1
    assert extras["client-a"]["pdf"] == "pdf/client-a.pdf"
    assert (second / "pdf" / "synthesis.pdf").read_bytes() == \
        (first / "pdf" / "synthesis.pdf").read_bytes()
    third, _ = _site(tmp_path / "third")  # the synthesis page changed: only it is printed
    page = third / "reports" / "synthesis.html"
    page.write_text(page.read_text().replace("Syn</h1>", "Syn 2</h1>"))
    deliver.publish_extras(third, records=records, pdf=True, previous=second, jobs=2)
    assert printed[1:] == [["synthesis.pdf"]]
    assert b"Syn 2" in (third / "pdf" / "synthesis.pdf").read_bytes()


def test_number_format_by_name_type_and_size():
    """A column's number format: p-values and shares by name, integers and columns with
    a number of 1000 or more (infinity too) with a thousands separator, other numbers
    with three decimals; NaN and missing values count as no number; text has none."""
    import numpy as np

    nf = deliver._number_format
    assert nf("p_val", pd.Series([5000.0])) == "0.000"
    assert nf("pct_missing", pd.Series([5000.0])) == '0.0"%"'
    assert nf("n", pd.Series([1, 2])) == "#,##0"
    assert nf("n", pd.Series([1, None], dtype="Int64")) == "#,##0"
    assert nf("r", pd.Series([0.5, -999.9, np.nan])) == "0.000"
    assert nf("r", pd.Series([0.5, -1000.0])) == "#,##0"
    assert nf("r", pd.Series([0.5, -np.inf])) == "#,##0"
    assert nf("r", pd.Series([np.nan, np.nan])) == "0.000"
    assert nf("r", pd.Series([2.5, None, 1500.0], dtype="Float64")) == "#,##0"
    assert nf("r", pd.Series([2.5, None], dtype="Float64")) == "0.000"
    assert nf("r", pd.Series(["1500"])) is None
    assert nf("r", pd.Series([True, False])) is None


def test_workbooks_temporary_files_stay_in_the_builds_folder(tmp_path, monkeypatch):
    """XlsxWriter's temporary files (each sheet, each part of the file) go into ``tmpdir``
    (the build's staging area), not the system's temporary folder; tempfile's folder is
    restored after, and none of the files is left."""
    import tempfile

    made = []
    real = tempfile.mkstemp

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    before = tempfile.tempdir
    root, records = _site(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    extras = deliver.publish_extras(root, records=records, pdf=False, tmpdir=work)
    assert any("workbook" in ex for ex in extras.values())
    assert made and all(os.path.dirname(name) == str(work) for _fd, name in made)
    assert tempfile.tempdir == before
    assert list(work.iterdir()) == []


def test_workbook_failure_leaves_no_file(tmp_path, monkeypatch):
    """A workbook that fails half-way leaves neither the workbook, nor its ``.tmp``, nor
    a temporary sheet file, and an earlier workbook stays as it was; the error is the
    one raised."""
    import tempfile

    class Unprintable:
        def __str__(self):
            raise RuntimeError("no text for this cell")

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    tables = {"a": pd.DataFrame({"x": range(2000)}),
              "b": pd.DataFrame({"t": ["fine"] * 500 + [Unprintable()]})}
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RuntimeError, match="no text for this cell"):
        deliver.write_workbook(tables, out / "w.xlsx")
    assert list(out.iterdir()) == [] and list(work.iterdir()) == []
    deliver.write_workbook({"a": tables["a"]}, out / "w.xlsx")
    with pytest.raises(RuntimeError, match="no text for this cell"):
        deliver.write_workbook(tables, out / "w.xlsx")
    assert [p.name for p in out.iterdir()] == ["w.xlsx"] and list(work.iterdir()) == []
    assert openpyxl.load_workbook(out / "w.xlsx").sheetnames == ["Contents", "a", "Columns"]


def _cell_as_read(c):
    """What a reader sees of one cell, as openpyxl reads it: value, type, number format,
    bold, size, underline, colour, fill, wrapping, vertical alignment, named style, link.
    A font colour of theme 1 is the default text colour, like no colour (None); a font
    without a size has the default size, 11."""
    color = c.font.color
    if color is None or (color.type == "theme" and color.theme == 1):
        color = None
    elif color.type == "theme":
        color = f"theme {color.theme}"
    else:
        color = color.rgb[-6:]
    fill = c.fill.fgColor.rgb[-6:] if c.fill.fill_type == "solid" else None
    return (c.value, c.data_type, c.number_format, bool(c.font.b), c.font.sz or 11.0,
            c.font.u, color, fill, bool(c.alignment.wrap_text), c.alignment.vertical,
            c.style, (c.hyperlink.location, c.hyperlink.ref) if c.hyperlink else None)


def _workbook_as_read(path):
    """Everything a reader of the workbook sees, as openpyxl reads it back: sheet names;
    per sheet every written cell (:func:`_cell_as_read`), the frozen panes and the width
    of each column (a ``<col>`` range of columns read as one width per column)."""
    from openpyxl.utils import get_column_letter

    wb = openpyxl.load_workbook(path)
    out = {"sheets": wb.sheetnames}
    for ws in wb.worksheets:
        cells = {}
        for row in ws.iter_rows():
            for c in row:
                if c.value is None and not c.has_style:
                    continue
                cells[c.coordinate] = _cell_as_read(c)
        widths = {}
        for d in ws.column_dimensions.values():
            for j in range(d.min, d.max + 1):
                widths[get_column_letter(j)] = d.width
        out[ws.title] = (cells, ws.freeze_panes, widths)
    return out


def _cell(v, data_type, *, number_format="General", bold=False, size=11.0, underline=None,
          color=None, fill=None, wrap=False, vertical=None, style="Normal", link=None):
    """A cell as :func:`_cell_as_read` reads it."""
    return (v, data_type, number_format, bold, size, underline, color, fill, wrap, vertical,
            style, link)


def _head(v, *, wrap=True):
    """A header cell: bold text on the DCE6F0 fill, wrapped and top-aligned on table sheets."""
    return _cell(v, "s", bold=True, fill="DCE6F0", wrap=wrap, vertical="top" if wrap else None)


def test_workbook_cells_as_a_reader_sees_them(tmp_path):
    """Every cell of representative tables as a reader sees it: numbers at the precision
    Excel keeps (16 digits), with their column's number format; text stays text when it
    reads as a formula, a number, an error code, a boolean or a link; empty cells for
    NaN, None, infinity and empty text; booleans; unicode and long text; the header style;
    the contents sheet's links; sheet names made valid and unique; widths and frozen
    panes; the Columns sheet."""
    import numpy as np
    from openpyxl.utils import get_column_letter

    from exresearch.formatting import data_dictionary, readable_name
    from exresearch.privacy import neutralise_cell

    rng = np.random.default_rng(3)
    n = 450  # more than the 200 rows the widths look at
    big = pd.DataFrame({"client": [f"Client {i % 37}" for i in range(n)], "x": "ex_index",
                        "n": rng.integers(4, 40, n), "r": rng.normal(size=n),
                        "p_val": rng.random(n), "pct_missing": 100 * rng.random(n),
                        "revenue": 1e4 * rng.random(n)})
    big.loc[3, "r"] = np.nan
    big.loc[8, "pct_missing"] = np.inf
    big.loc[9, "revenue"] = -np.inf
    big.loc[[4, 5, 6, 7], "client"] = ["=SUM(A1)", "#N/A", None, "-0.5"]
    big.loc[n - 1, "client"] = "x" * 300  # past the 200 rows the widths look at
    odd = pd.DataFrame({"flag": [True, False, None], "mix": [1, "a", 2.5],
                        "b": [True, False, True], "big": [1e6, 2.0, np.nan],
                        "#DIV/0!": ["x", "#REF!", "+a"]})
    texts = pd.DataFrame({"naïve_é": ["日本語", "emoji 😀 ok", "", "  spaced  "],
                          "t": ["123", "1e5", "http://example.com/x", "TRUE"],
                          "long": ["é" * 5000, "a\nb", "@me", "-x"]})
    small = big.head(3).assign(revenue=[10.5, 999.0, 3.0])
    tables = {"per_client_correlations": big, "odd": odd, "empty": pd.DataFrame(),
              "no_rows": big.head(0), "x/y:z" * 10: odd, "X/Y:Z" * 10: small,
              "😀" * 20: texts, "'quoted'": odd.head(1), "it's": odd.head(1)}
    sheets = ["per_client_correlations", "odd", "empty", "no_rows",
              "x_y_zx_y_zx_y_zx_y_zx_y_zx_y_zx", "X_Y_ZX_Y_ZX_Y_ZX_Y_ZX_Y_ZX_Y_~2", "😀" * 15,
              "_quoted_", "it's"]
    # number formats by column: p-values and shares by name, integers and numbers of
    # 1000 or more with a thousands separator, other numbers with three decimals
    formats = {"n": "#,##0", "r": "0.000", "p_val": "0.000", "pct_missing": '0.0"%"',
               "revenue": "#,##0", "big": "#,##0"}

    def expected_sheet(df, formats):
        cells, widths = {}, {}
        for j, col in enumerate(df.columns, start=1):
            letter = get_column_letter(j)
            cells[f"{letter}1"] = _head(neutralise_cell(col))
            # the longest of the header and the first 200 values, + 2, within 8 to 60
            longest = max([len(col)] + [len(str(v)) for v in df[col].head(200)])
            widths[letter] = min(max(longest + 2, 8), 60)
            for i, v in enumerate(df[col].tolist(), start=2):
                if v is None or v == "" or (isinstance(v, float) and not np.isfinite(v)):
                    continue
                if col in formats:
                    cells[f"{letter}{i}"] = _cell(float(f"{v:.16g}"), "n",
                                                  number_format=formats[col])
                elif isinstance(v, bool):
                    cells[f"{letter}{i}"] = _cell(v, "b")
                else:
                    cells[f"{letter}{i}"] = _cell(neutralise_cell(str(v)), "s")
        return cells, "A2", widths

    for source in ("", "Every table"):
        path = deliver.write_workbook(tables, tmp_path / "w.xlsx", title="=t", source=source)
        got = _workbook_as_read(path)
        assert got["sheets"] == ["Contents", *sheets, "Columns"]
        contents = {"A1": _cell("'=t", "s", bold=True, size=14.0),
                    **({"A2": _cell(source, "s")} if source else {}),
                    **{f"{c}4": _cell(v, "s", bold=True)
                       for c, v in zip("ABCD", ("sheet", "table", "rows", "columns"),
                                       strict=True)}}
        for row, ((name, df), sheet) in enumerate(zip(tables.items(), sheets, strict=True),
                                                  start=5):
            quoted = sheet.replace("'", "''")
            contents[f"A{row}"] = _cell(sheet, "s", size=12.0, color="theme 10",
                                        style="Hyperlink", link=(f"'{quoted}'!A1", f"A{row}"))
            contents[f"B{row}"] = _cell(neutralise_cell(readable_name(name)), "s")
            contents[f"C{row}"] = _cell(len(df), "n")
            contents[f"D{row}"] = _cell(len(df.columns), "n")
        assert got["Contents"] == (contents, None, {"A": 32, "B": 40})
        for (_name, df), sheet in zip(tables.items(), sheets, strict=True):
            assert got[sheet] == expected_sheet(
                df, {**formats, "revenue": "0.000"} if df is small else formats), sheet
        assert len(got["per_client_correlations"][0]) > 3000
        dd = data_dictionary(dict(zip(sheets, tables.values(), strict=True)))
        columns = {f"{c}1": _head(v, wrap=False) for c, v in zip("ABCDE", dd.columns,
                                                                 strict=True)}
        for i, rec in enumerate(dd.itertuples(index=False), start=2):
            for c, v in zip("ABCDE", rec, strict=True):
                if str(v):
                    columns[f"{c}{i}"] = _cell(neutralise_cell(str(v)), "s")
        assert got["Columns"] == (columns, "A2", dict(zip("ABCDE", (30, 24, 30, 10, 70),
                                                          strict=True)))
    # the cells this test is about, spelled out
    wb = openpyxl.load_workbook(path)
    ws = wb["per_client_correlations"]
    assert (ws["A6"].value, ws["A6"].data_type) == ("'=SUM(A1)", "s")
    assert (ws["A7"].value, ws["A7"].data_type) == ("#N/A", "s")
    assert ws["A8"].value is None and (ws["A9"].value, ws["A9"].data_type) == ("-0.5", "s")
    assert ws["D5"].value is None and ws["F10"].value is None and ws["G11"].value is None
    assert ws["D2"].value == float(f"{big.loc[0, 'r']:.16g}") and ws["D2"].data_type == "n"
    assert ws.column_dimensions["A"].width == 11  # "Client 36", not the 300 x's
    ws = wb["odd"]
    assert [ws[c].value for c in ("A2", "A3", "A4")] == [True, False, None]
    assert ws["A2"].data_type == "b" and ws["B2"].value == "1" and ws["B4"].value == "2.5"
    assert (ws["E1"].value, ws["E1"].data_type) == ("#DIV/0!", "s")
    ws = wb["😀" * 15]
    assert [ws[f"B{i}"].value for i in range(2, 6)] == ["123", "1e5", "http://example.com/x",
                                                       "TRUE"]
    assert all(ws[f"B{i}"].data_type == "s" and ws[f"B{i}"].hyperlink is None
               for i in range(2, 6))
    assert ws["C2"].value == "é" * 5000 and ws["A3"].value == "emoji 😀 ok"
    assert ws["A4"].value is None and ws["A5"].value == "  spaced  "
    assert ws["C3"].value == "a\nb" and ws["C4"].value == "'@me"
    assert wb["Contents"]["A13"].hyperlink.location == "'it''s'!A1"


# ---- the phase's worker processes (issue 20: the Python work on every core) -----------

def _site_files(root) -> dict:
    """What publish_extras wrote, as a reader sees it: workbooks by cell values, the other
    files by their text (the manifest without the keys that hash deliver.py)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.suffix == ".xlsx":
            wb = openpyxl.load_workbook(path)
            out[rel] = [(ws.title, [[c.value for c in row] for row in ws.iter_rows()])
                        for ws in wb.worksheets]
        elif path.is_file():
            out[rel] = path.read_bytes()
    return out


def _site_with_clients(tmp_path, n=4, study=None):
    """_site with ``n`` clients, each with findings, a driver table and a notebook that
    names ``study`` (default ``tmp_path/study``)."""
    study = study or tmp_path / "study"
    root, records = _site(tmp_path)
    (root / "notebooks").mkdir()
    for i in range(n):
        key = f"client-{i}"
        (root / "tables" / key).mkdir(parents=True, exist_ok=True)
        (root / "reports" / f"{key}.html").write_text(
            (root / "reports" / "client-a.html").read_text().replace(">R<", f">R{i}<"))
        write_csv(pd.DataFrame({"finding": [1, 2], "topic": ["linkage", "drivers"],
                                "text": [f"Linked {i}.", "=Act."]}),
                  root / "tables" / key / "findings.csv")
        write_csv(pd.DataFrame({"driver": ["tools", "training"], "act_first": [True, i % 2],
                                "rank": [2, 1]}), root / "tables" / key / "driver_priorities.csv")
        write_csv(pd.DataFrame({"x": ["ex"] * 30, "r": [0.1 * i + j for j in range(30)]}),
                  root / "tables" / key / "linkage.csv")
        (root / "notebooks" / f"{key}.ipynb").write_text(json.dumps({"cells": [{
            "cell_type": "code", "source": f'study_path = "{study}"',
            "outputs": [{"output_type": "display_data", "metadata": {},
                         "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}}]}],
            "metadata": {}}))
        records.append({"key": key, "kind": "client", "client_id": f"c{i}",
                        "name": f"Client {i}", "status": "ok", "html": f"reports/{key}.html",
                        "tables": [f"tables/{key}/{t}.csv" for t in
                                   ("findings", "driver_priorities", "linkage")]})
    records.append({"key": "failed-one", "kind": "client", "client_id": "f", "name": "F",
                    "status": "failed", "html": None, "tables": []})
    return root, records


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_processes_write_the_same_files_as_one_process(tmp_path, monkeypatch, method):
    """--jobs 2: briefs, dictionaries, workbooks and notebooks are made by worker
    processes (started by ``method``), with the same files and extras as with one."""
    from types import SimpleNamespace

    monkeypatch.setattr(deliver, "_start_method", lambda: method)
    monkeypatch.setattr(deliver.os, "cpu_count", lambda: 2)
    study = SimpleNamespace(path=tmp_path / "study", config=None)
    one, records = _site_with_clients(tmp_path / "one", study=study.path)
    two, _ = _site_with_clients(tmp_path / "two", study=study.path)
    made = {}
    for root, jobs in ((one, 1), (two, 2)):
        made[jobs] = deliver.publish_extras(root, records=records, pdf=False, jobs=jobs,
                                            study=study, tmpdir=root.parent)
    assert made[1] == made[2]
    assert made[2]["client-3"] == {"dictionary": "tables/client-3/data_dictionary.csv",
                                   "workbook": "workbooks/client-3.xlsx",
                                   "brief": "briefs/client-3.html"}
    assert "failed-one" not in made[2]
    a, b = _site_files(one), _site_files(two)
    assert sorted(a) == sorted(b)
    for rel in a:
        if rel != "manifest.json":
            assert a[rel] == b[rel], rel
    ma, mb = (json.loads(x["manifest.json"]) for x in (a, b))
    assert ma["extras"] == mb["extras"] == made[1]
    nb = (two / "notebooks" / "client-2.ipynb").read_text()
    assert str(tmp_path) not in nb and "iVBORw0KGgo" not in nb and "<study study>" in nb
    assert "Act first on <strong>tools</strong>" in (two / "briefs" / "client-0.html").read_text()


def test_worker_processes_are_used_and_keep_temporary_files_in_the_builds_folder(
        tmp_path, monkeypatch):
    """With two cores and --jobs 2 the workbooks are written by two processes other than
    this one, their XlsxWriter temporary files in ``tmpdir``; with --jobs 1, by this one."""
    import sys
    import tempfile

    log = tmp_path / "made.log"
    real = tempfile.mkstemp

    def spy(*args, **kwargs):
        fd, path = real(*args, **kwargs)
        if sys._getframe(1).f_globals["__name__"].startswith("xlsxwriter"):
            _log(log, f"{os.getpid()} {os.path.dirname(path)}")
        return fd, path

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    monkeypatch.setattr(deliver.os, "cpu_count", lambda: 2)
    work = tmp_path / "work"
    work.mkdir()
    root, records = _site_with_clients(tmp_path / "a", n=6)
    deliver.publish_extras(root, records=records, pdf=False, tmpdir=work, jobs=2)
    seen = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert {folder for _, folder in seen} == {str(work)}
    pids = {int(pid) for pid, _ in seen}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    log.unlink()
    root, records = _site_with_clients(tmp_path / "b", n=2)
    deliver.publish_extras(root, records=records, pdf=False, tmpdir=work, jobs=1)
    assert {line.split()[0] for line in log.read_text().splitlines()} == {str(os.getpid())}
    assert list(work.iterdir()) == []  # (XlsxWriter removes its own)


def test_a_failing_job_fails_the_phase_and_stops_the_workers(tmp_path, monkeypatch):
    """A workbook that cannot be written raises its error from publish_extras (as in one
    process), and no worker process is left."""
    def broken(tables, path, **kwargs):
        raise ValueError(f"cannot write {path.name}")

    monkeypatch.setattr(deliver, "write_workbook", broken)
    monkeypatch.setattr(deliver.os, "cpu_count", lambda: 2)
    root, records = _site_with_clients(tmp_path, n=3)
    before = set(_children())
    with pytest.raises(ValueError, match=r"cannot write .*\.xlsx"):
        deliver.publish_extras(root, records=records, pdf=False, jobs=2)
    assert set(_children()) - before == set()


def _children() -> list[int]:
    """This process's child processes (Linux: /proc)."""
    import pathlib

    me = str(os.getpid())
    out = []
    for d in pathlib.Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[1] == me and stat[0] not in ("Z", "X") and b"resource_tracker" not in (
                    d / "cmdline").read_bytes():  # (spawn's, one per interpreter, kept)
                out.append(int(d.name))
    return out


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_sigkill_of_the_build_ends_the_extras_workers(tmp_path, method):
    """The extras' worker processes die with the build (PR_SET_PDEATHSIG), busy or idle,
    and leave no temporary file in the system's temporary folder."""
    import signal
    import subprocess
    import sys
    import time

    systmp = tmp_path / "systmp"
    systmp.mkdir()
    script = (
        "import os, sys, time\n"
        "from exresearch import deliver\n"
        f"pool = deliver._extras_pool(2, tmpdir={str(tmp_path)!r}, method={method!r})\n"
        "busy = pool.submit(time.sleep, 120)\n"  # one busy, one idle
        "print(' '.join(str(p) for p in pool._processes), flush=True)\n"
        "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, TMPDIR=str(systmp)))
    try:
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert len(workers) == 2
        time.sleep(0.5)  # (the workers are past their start)
        assert all(_alive(p) for p in workers)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.stdout.close()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in workers if _alive(p)] == []
    assert list(systmp.iterdir()) == []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_job_stream_gives_each_page_once_to_the_printing_and_all_to_each_iterator():
    import threading

    stream = deliver._JobStream()
    shared = iter(stream)
    taken = []

    def lane():
        for job in shared:
            taken.append(job)

    lanes = [threading.Thread(target=lane) for _ in range(3)]
    for t in lanes:
        t.start()
    for i in range(50):
        stream.put(("page", i))
    stream.close()
    for t in lanes:
        t.join(timeout=10)
    assert sorted(taken) == [("page", i) for i in range(50)] and len(stream) == 50
    assert list(stream) == [("page", i) for i in range(50)]  # a new iterator: every page
    stopped = deliver._JobStream()
    stopped.put("a")
    stopped.stop()  # even the pages put and not taken are dropped
    assert list(stopped) == []


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(deliver.find_chromium() is None, reason="needs Chromium")
def test_render_pdfs_prints_a_stream_of_pages_put_while_it_prints(tmp_path):
    """The pages of a stream (the briefs, written while the reports print) are printed as
    they are put, each once, by two pages at once; the printing ends when it is closed."""
    import threading
    import time

    pages = []
    for i in range(4):
        page = tmp_path / f"p{i}.html"
        page.write_text(f"<!DOCTYPE html><html><body><h1>Page {i}</h1></body></html>")
        pages.append(page)
    stream = deliver._JobStream()
    stream.put((pages[0], tmp_path / "pdf" / "p0.pdf"))
    done = []

    def later():
        time.sleep(1.0)
        for i in (1, 2, 3):
            stream.put((pages[i], tmp_path / "pdf" / f"p{i}.pdf"))
            time.sleep(0.2)
        stream.close()

    t = threading.Thread(target=later)
    t.start()
    out = deliver.render_pdfs(stream, workers=2, on_done=done.append)
    t.join()
    assert sorted(p.name for p in done) == ["p0.pdf", "p1.pdf", "p2.pdf", "p3.pdf"]
    assert sorted(p.name for p in out) == sorted(p.name for p in done)
    assert all((tmp_path / "pdf" / f"p{i}.pdf").read_bytes().startswith(b"%PDF")
               for i in range(4))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_an_idle_pool_ends_its_workers(method):
    """Workers that got no job (every extra reused, say) end with the pool's shutdown:
    they would hold the build's files open (its lock) for as long as this process."""
    before = set(_children())
    pool = deliver._extras_pool(2, method=method)
    assert len(set(_children()) - before) >= 2
    pool.shutdown(wait=True)
    assert set(_children()) - before == set()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(deliver.find_chromium() is None, reason="needs Chromium")
@pytest.mark.parametrize("workers", [1, 2])
def test_every_page_a_lane_prints_gets_print_media_open_details_and_no_file_links(
        tmp_path, workers):
    """Print media and the preparation of the page (links to other files dropped, anchors
    kept, folded sections open) hold for every page a lane prints, not only its first
    (they are set up once per browser page, not per job)."""
    from pypdf import PdfReader

    jobs = []
    for i in range(4):
        page = tmp_path / f"p{i}.html"
        page.write_text(
            "<!DOCTYPE html><html><head><style>@media print { .screen { display: none } }"
            "</style></head><body>"
            f"<h1 id='top'>Page {i}</h1><p class='screen'>on-screen-{i}</p>"
            f"<a href='other-{i}.html'>other file {i}</a> <a href='#top'>anchor {i}</a>"
            f"<details><summary>Folded {i}</summary><p>inside-{i}</p></details>"
            "</body></html>", encoding="utf-8")
        jobs.append((page, tmp_path / "pdf" / f"p{i}.pdf"))
    out = deliver.render_pdfs(jobs, workers=workers)
    assert out == [pdf for _, pdf in jobs]
    for i, pdf in enumerate(out):
        reader = PdfReader(pdf)
        text = "".join(p.extract_text() for p in reader.pages)
        assert f"Page {i}" in text and f"inside-{i}" in text, (pdf.name, text)
        assert f"on-screen-{i}" not in text, (pdf.name, text)  # print media
        uris = [str(a.get_object().get("/A", {}).get("/URI", ""))
                for p in reader.pages for a in p.get("/Annots", []) or []]
        assert not [u for u in uris if "other" in u or u.startswith("file:")], uris


def test_workbook_says_when_a_table_is_longer_than_a_sheet(tmp_path, monkeypatch):
    """More rows than an Excel sheet holds: the sheet gets the first ones and the
    Contents sheet says so (XlsxWriter would drop the rest without a word)."""
    import openpyxl

    monkeypatch.setattr(deliver, "EXCEL_MAX_ROWS", 5)
    path = deliver.write_workbook({"long": pd.DataFrame({"n": range(8)}),
                                   "short": pd.DataFrame({"n": range(5)})}, tmp_path / "w.xlsx")
    wb = openpyxl.load_workbook(path)
    assert [c.value for c in wb["long"]["A"]] == ["n", 0, 1, 2, 3, 4]
    assert [c.value for c in wb["short"]["A"]] == ["n", 0, 1, 2, 3, 4]
    rows = {r[0]: r for r in wb["Contents"].iter_rows(min_row=5, values_only=True)}
    assert rows["long"][2:5] == (8, 1, "the sheet holds the first 5 rows (Excel's limit); "
                                       "the CSV file holds every row")
    assert rows["short"][2:4] == (5, 1) and (len(rows["short"]) < 5 or rows["short"][4] is None)


def test_page_numbers_are_a_margin_box_from_chromium_131_and_the_template_before():
    from exresearch.deliver import _PAGE_NUMBERS_CSS, _page_numbers

    css, extra = _page_numbers("156.0.8078.114")
    assert css == _PAGE_NUMBERS_CSS and extra == {}
    assert "@bottom-center" in css and 'counter(page) " / " counter(pages)' in css
    assert _page_numbers("131.0.6778.33") == (css, {})
    for old in ("130.0.6723.58", "", "HeadlessChrome/120"):
        css, extra = _page_numbers(old)
        assert css == ""
        assert extra["display_header_footer"] is True
        assert extra["header_template"] == "<div></div>"
        assert ('<span class="pageNumber"></span> / <span class="totalPages"></span>'
                in extra["footer_template"])
