"""Headless-Chromium check of a built site: links, console, network, hostile text.

Opens ``index.html`` over ``file://``, follows every report link, and asserts that no
page logs a console error, no request leaves the machine (only ``file:`` and ``data:``
URLs), no dialog opens (a client name holding a script must stay text), and the
client filter works. Screenshots go to ``tests/_artifacts/screenshots`` (ignored by git).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOKS = Path(__file__).parent / "notebooks"
SHOTS = Path(__file__).parent / "_artifacts" / "screenshots"
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="/usr/bin/chromium is absent (`make browser` installs it)"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from exresearch import build
    from exresearch.simulate import simulate_study

    root = tmp_path_factory.mktemp("browser")
    study = simulate_study(root / "study", n_clients=3, n_units=6, n_periods=2, seed=3)
    yml = study / "study.yml"
    lines = yml.read_text().splitlines()
    # a hostile study name, client name and industry: must show as text, never run
    for i, line in enumerate(lines):
        if line.startswith("name: "):
            lines[i] = f"name: '<b>Study</b> {HOSTILE}'"
        if line.startswith("- {id: client-01,"):
            lines[i] = (f"- {{id: client-01, name: '{HOSTILE}', industry: '\"><svg onload=alert(3)>',"
                        " revenue: 1000000}")
    yml.write_text("\n".join(lines) + "\n")
    mp = pytest.MonkeyPatch()
    mp.setenv("EXRESEARCH_NOTEBOOKS", str(NOTEBOOKS))
    try:
        result = build.build_site(study, out=root / "site", jobs=2, progress=False)
    finally:
        mp.undo()
    assert result.exit_code == 0, [(r.key, r.error) for r in result.reports]
    return result


def test_site_in_headless_chromium(site):
    playwright = pytest.importorskip("playwright.sync_api")
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    requests, console_errors, dialogs, page_errors = [], [], [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"],
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.on("request", lambda r: requests.append(r.url))
            page = context.new_page()
            page.on("console", lambda m: console_errors.append((page.url, m.text))
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append((page.url, str(e))))

            def on_dialog(d):
                dialogs.append(d.message)
                d.dismiss()

            page.on("dialog", on_dialog)
            index_url = site.index.as_uri()
            page.goto(index_url, wait_until="load")
            assert "<script>" in page.title()  # the hostile study name shown as text
            page.screenshot(path=str(SHOTS / "index.png"), full_page=True)

            # the filter: free text, then industry
            rows = page.locator("#exr-clients tbody tr")
            assert rows.count() == 3
            page.fill("#exr-q", "client-02")
            assert page.locator("#exr-clients tbody tr:not([hidden])").count() == 1
            assert page.inner_text("#exr-count") == "1 of 3 client reports"
            page.fill("#exr-q", "")
            assert page.locator("#exr-clients tbody tr:not([hidden])").count() == 3

            hrefs = page.eval_on_selector_all(
                "a[href$='.html']", "els => els.map(e => e.getAttribute('href'))")
            assert sorted(hrefs) == sorted(r.html for r in site.reports)
            for href in hrefs:
                page.goto(index_url)
                page.click(f"a[href='{href}']")
                page.wait_for_load_state("load")
                assert page.url.endswith(href)
                assert page.locator("nav.exr-toc a").count() >= 1
                assert page.locator("footer.exr-provenance").count() == 1
                imgs = page.eval_on_selector_all(
                    "main img", "els => els.map(e => [e.src.slice(0, 22), e.naturalWidth])")
                assert imgs and all(src.startswith("data:image/png") and w > 0
                                    for src, w in imgs)
                page.screenshot(path=str(SHOTS / (Path(href).stem + ".png")), full_page=True)
                page.click("text=All reports")
                page.wait_for_load_state("load")
                assert page.url == index_url
        finally:
            browser.close()
    assert console_errors == []
    assert page_errors == []
    assert dialogs == []
    leaving = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert leaving == []
    assert len(list(SHOTS.glob("*.png"))) == 1 + len(site.reports)


def test_markup_slipped_into_a_report_cannot_run(tmp_path):
    """Defence in depth: even raw HTML in a notebook output stays inert (CSP)."""
    playwright = pytest.importorskip("playwright.sync_api")
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from exresearch.site import render_report

    evil = ('<script>alert("script")</script><img src="data:," onerror="alert(\'img\')">'
            '<svg onload="alert(\'svg\')"></svg>')
    nb = new_notebook(cells=[new_code_cell("x", outputs=[
        new_output("display_data", data={"text/markdown": "# Hi\n\n" + evil,
                                         "text/plain": "x"})])])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.validate(nb)
    page = tmp_path / "evil.html"
    page.write_text(render_report(nb, title="t", provenance={}))
    assert '<script>alert("script")</script>' in page.read_text()  # nbconvert keeps raw HTML
    dialogs, violations = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            pg = browser.new_page()
            pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            pg.on("console", lambda m: violations.append(m.text)
                  if "Content Security Policy" in m.text else None)
            pg.goto(page.as_uri(), wait_until="load")
            pg.wait_for_timeout(300)
        finally:
            browser.close()
    assert dialogs == []
    assert violations  # the browser refused them, and said so
