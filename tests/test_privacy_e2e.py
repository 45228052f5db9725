"""End-to-end privacy check: an adversarial study built into a site, then every file scanned.

The study (4 clients x 8 units x 2 periods, simulated then rewritten) carries script and
HTML in every free-text field (study name, client names, industries, scale and outcome
labels, unit ids), spreadsheet formulas in a label and in unit ids, a unit of exactly 4
respondents next to a unit of exactly 5, and unit ids shared by all clients (U001-U004)
beside ids unique to each client (tokens ``ZU<c>``). After one build, the scans check:

* each client's report, CSV tables and share bundle name no other client (id, name,
  unique unit ids) and show no other client's unit-level values;
* no respondent id and no value of the suppressed unit reaches any published file;
* the respondents published for a period are exactly those of reported units (no total
  from which the suppressed unit's size could be subtracted);
* no HTML page contains input markup unescaped, every CSV cell is formula-safe;
* benchmarks only come from >= 3 other clients; share bundles are self-contained;
* no absolute or temporary path and no other client's file name on a shared page;
* in headless Chromium (``browser`` mark), no dialog opens and no script runs on any page.

Ids that try path traversal are refused before anything is written (exit code 2).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from exresearch import config

NOTEBOOKS_DIR = Path(__file__).parent / "notebooks"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
CLIENTS = ["client-01", "client-02", "client-03", "client-04"]
SMALL, FIVE = "ZU3S", "ZU3F"  # client-03: a unit of exactly 4 and one of exactly 5


def _name(i):  # unique token ZorblaxN inside hostile markup
    return f"Zorblax{i} {SCRIPT if i % 2 else IMG}"


def _unit_map(i):
    """Client i's units: U001-U004 shared by every client, the rest unique (ZU<i>...)."""
    unique = [f"ZU{i}A", f"ZU{i}B", f"<img src=x onerror=alert({i})>ZU{i}H",
              f"=1+1ZU{i}Q"]
    if i == 3:
        unique = [SMALL, FIVE, f"<script>alert(3)</script>ZU{i}H", f"@SUM(1)ZU{i}Q"]
    return dict(zip([f"U{k:03d}" for k in range(1, 9)], ["U001", "U002", "U003", "U004",
                                                           *unique], strict=True))


def make_adversarial_study(root: Path) -> Path:
    """Write the adversarial study under ``root/study`` and return its path."""
    from exresearch.simulate import simulate_study

    study = simulate_study(root / "study", n_clients=4, n_units=8, n_periods=2, seed=11)
    (study / "truth.json").unlink(missing_ok=True)
    cfg = yaml.safe_load((study / "study.yml").read_text())
    cfg["name"] = f"Study {SCRIPT} {IMG}"
    for i, c in enumerate(cfg["clients"], start=1):
        c["name"] = _name(i)
        c["industry"] = f'Ind{i} "><svg onload=alert({i})>'
    for k, (name, spec) in enumerate(cfg["scales"].items()):
        spec["label"] = (f'=HYPERLINK("http://x") {name}' if name == "tools"
                         else f"{name} <img src=x onerror=alert({10 + k})>")
    for name, spec in cfg["outcomes"].items():
        spec["label"] = f"{name} <script>alert(20)</script>"
    (study / "study.yml").write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    for i, cid in enumerate(CLIENTS, start=1):
        units = _unit_map(i)
        survey = pd.read_csv(study / "clients" / cid / "survey.csv", dtype=str)
        outcomes = pd.read_csv(study / "clients" / cid / "outcomes.csv", dtype=str)
        survey["respondent_id"] = [f"RSPX{i}-{k:05d}" for k in range(len(survey))]
        if i == 3:  # the two largest units become the unit of 4 and the unit of 5
            sizes = survey.groupby("unit_id").size().sort_values(ascending=False)
            big = list(sizes.index[:2])
            others = [u for u in units if u not in big]
            names = [v for v in units.values() if v not in (SMALL, FIVE)]
            units = {big[0]: SMALL, big[1]: FIVE, **dict(zip(others, names, strict=True))}
            keep = survey.groupby(["unit_id", "period"]).cumcount()
            limit = survey["unit_id"].map({big[0]: 4, big[1]: 5}).fillna(10**9)
            survey = survey[keep < limit].copy()
            # the unit of 4 answers near the bottom of every scale, so its means (about
            # 1.1-1.4) are like no reported unit's and a leak of them can be found; on a
            # scale starting at 0 (eNPS 0-10) it answers from 1 up, so that every planted
            # mean lies above 1, where no published correlation can be
            small = survey["unit_id"] == big[0]
            rank = survey.groupby(["unit_id", "period"]).cumcount()
            bump = small & (rank < survey["period"].map({p: k + 1 for k, p in
                                                         enumerate(cfg["periods"])}))
            for spec in cfg["scales"].values():
                lo, hi = spec.get("points", [1, 5])
                base = lo if lo >= 1 else lo + 1  # scored as ``base`` after reversal
                for j, item in enumerate(spec["items"]):
                    rev = item in spec.get("reverse", [])
                    survey.loc[small, item] = str(lo + hi - base if rev else base)
                    if j == 0:  # one step up for 1 (first period) or 2 respondents
                        survey.loc[bump, item] = str(lo + hi - base - 1 if rev else base + 1)
        survey["unit_id"] = survey["unit_id"].map(units)
        outcomes["unit_id"] = outcomes["unit_id"].map(units)
        assert survey["unit_id"].notna().all() and outcomes["unit_id"].notna().all()
        survey.to_csv(study / "clients" / cid / "survey.csv", index=False)
        outcomes.to_csv(study / "clients" / cid / "outcomes.csv", index=False)
    return study


@pytest.fixture(scope="module")
def adversarial(tmp_path_factory):
    from exresearch import build

    root = tmp_path_factory.mktemp("adversarial")
    study = make_adversarial_study(root)
    mp = pytest.MonkeyPatch()
    mp.setenv("EXRESEARCH_NOTEBOOKS", str(config.NOTEBOOKS_DIR))
    try:
        result = build.build_site(study, out=root / "site", jobs=2, progress=False)
    finally:
        mp.undo()
    assert result.exit_code == 0, [(r.key, r.error) for r in result.reports]
    return study, root / "site", result


_DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]+")
_NB_IMAGE = re.compile(r'"image/(png|jpeg)": "[^"]*"')


def _text(path: Path) -> str:
    """A published file's text without embedded images (base64 is not text to scan).

    An Excel workbook is scanned as the XML of its parts (cell values, shared strings,
    sheet names); any other binary file type fails here, so a new kind of published
    file cannot slip past the scans unread.
    """
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as z:
            raw = "\n".join(z.read(n).decode("utf-8") for n in z.namelist()
                            if n.endswith((".xml", ".rels")))
    else:
        raw = path.read_text(encoding="utf-8")
    return _NB_IMAGE.sub('"image": ""', _DATA_URI.sub("data:", raw))


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".exresearch" not in p.parts)


def _client_files(site: Path, cid: str) -> list[Path]:
    return [site / "reports" / f"client-{cid}.html", *_files(site / "tables" / f"client-{cid}"),
            *_files(site / "share" / cid)]


def _forms(text: str) -> set[str]:
    """How a string can appear in a published file: raw, HTML-escaped, JSON-escaped."""
    import html

    return {text, html.escape(text), html.escape(text, quote=False), json.dumps(text)[1:-1]}


def _own_tokens(i):
    return [f"client-0{i}", f"Zorblax{i}", f"ZU{i}", f"Ind{i} "]


# ----------------------------------------------------------------------------- isolation
@pytest.mark.slow
def test_client_files_name_no_other_client(adversarial):
    _, site, _ = adversarial
    for i, cid in enumerate(CLIENTS, start=1):
        files = _client_files(site, cid)
        assert site / "share" / cid / "index.html" in files
        for f in files:
            text = _text(f)
            for o in range(1, 5):
                if o == i:
                    continue
                for token in (f"client-0{o}", f"Zorblax{o}", f"ZU{o}"):
                    assert token not in text, (cid, f.relative_to(site), token)
                if f.name != "synthesis.html":  # the synthesis compares industries
                    assert f"Ind{o} " not in text, (cid, f.relative_to(site))
        # the client's own files do name it and its units (the scan is not vacuous)
        own = "".join(_text(f) for f in files)
        assert f"Zorblax{i}" in own and f"ZU{i}" in own


@pytest.mark.slow
def test_share_bundle_is_self_contained(adversarial):
    _, site, result = adversarial
    manifest = json.loads((site / "manifest.json").read_text())
    assert manifest["share"] == {c: f"share/{c}/index.html" for c in CLIENTS}
    for cid in CLIENTS:
        bundle = site / "share" / cid
        rels = {p.relative_to(bundle).as_posix() for p in _files(bundle)}
        tables = {p.relative_to(site).as_posix() for p in _files(site / "tables" / f"client-{cid}")}
        assert tables and {t for t in rels if t.startswith("tables/")} == tables
        assert rels == {"index.html", f"reports/client-{cid}.html", "reports/synthesis.html",
                        "assets/site.css", f"briefs/client-{cid}.html",
                        f"workbooks/client-{cid}.xlsx", *tables}
        for page in [p for p in _files(bundle) if p.suffix == ".html"]:
            for href in re.findall(r'href="([^"#]+)"', page.read_text()):
                assert not re.match(r"[a-z]+:", href), (page, href)  # no other scheme
                target = (page.parent / href).resolve()
                assert target.is_relative_to(bundle.resolve()) and target.is_file(), (page, href)
        assert (bundle / "reports" / f"client-{cid}.html").read_bytes() == \
            (site / "reports" / f"client-{cid}.html").read_bytes()


# ----------------------------------------------------------------------------- respondents
@pytest.mark.slow
def test_no_respondent_ids_or_suppressed_values_anywhere(adversarial):
    from exresearch.scoring import score_scales
    from exresearch.study import load_study

    study_path, site, _ = adversarial
    study = load_study(study_path)
    survey = study.survey("client-03")
    small = survey[survey["unit_id"] == SMALL]
    assert small.groupby("period").size().tolist() == [4, 4]
    assert survey[survey["unit_id"] == FIVE].groupby("period").size().tolist() == [5, 5]
    scored = score_scales(small, scales=study.config.scales, points=study.config.points)
    # values that some reported unit also has (means of 4 answers are simple fractions,
    # so 3.9375 can be another unit's mean too) would be false alarms
    legit = set()
    for cid in CLIENTS:
        s = study.survey(cid)
        sizes = s.groupby(["unit_id", "period"])["respondent_id"].transform("size")
        rep = score_scales(s[sizes >= study.config.min_group_size],
                           scales=study.config.scales, points=study.config.points)
        for keys in (["unit_id", "period"], ["unit_id"]):
            legit |= {f"{v:.3f}" for v in rep.groupby(keys)[list(study.config.scales)]
                      .mean().to_numpy().ravel() if pd.notna(v)}
    values = set()
    for scale in study.config.scales:
        for v in [*scored.groupby("period")[scale].mean(), scored[scale].mean()]:
            if (pd.notna(v) and abs(100 * v - round(100 * v)) > 1e-6  # 4.5 is too common
                    and f"{v:.3f}" not in legit):
                values |= {repr(float(v)), f"{v:.4f}", f"{v:.3f}"}
    assert len(values) >= 12  # e.g. 1.0625, 1.0833, 1.125, 1.1667, 1.0938 in three forms
    # every planted value is above 1: no published correlation (|r| <= 1, shown to 3
    # digits in the forest plots' alt text) can be mistaken for one, so none is tolerated
    assert all(float(v) > 1 for v in values), sorted(values)
    everything = _files(site)
    assert any(p.suffix == ".ipynb" for p in everything)
    for f in everything:
        text = _text(f)
        assert "RSPX" not in text, f.relative_to(site)
        found = sorted(v for v in values if re.search(rf"(?<![\d.]){re.escape(v)}(?!\d)", text))
        assert not found, (f.relative_to(site), found)
    # table rows (HTML, CSV) about the unit of 4 carry no number
    for page in [p for p in everything if p.suffix == ".html"]:
        for tr in re.findall(r"<tr\b.*?</tr>", _text(page), re.S):
            if SMALL in tr:
                cells = [re.sub(r"<[^>]+>", "", c).strip()
                         for c in re.findall(r"<t[dh]\b[^>]*>(.*?)</t[dh]>", tr, re.S)]
                nums = [c for c in cells if re.fullmatch(r"[-+−]?[\d,]+(\.\d+)?%?", c)]
                assert not nums, (page.relative_to(site), cells)
    for f in [p for p in everything if p.suffix == ".csv"]:
        for row in csv.reader(io.StringIO(f.read_text())):
            if SMALL in row:
                nums = [c for c in row if re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", c)]
                assert not nums, (f.relative_to(site), row)


@pytest.mark.slow
def test_published_respondent_counts_leave_no_difference(adversarial):
    from exresearch.study import load_study

    study_path, site, _ = adversarial
    study = load_study(study_path)
    m = study.config.min_group_size
    for cid, folder in [("client-03", "client-client-03"), (None, "data-quality")]:
        counts = pd.read_csv(site / "tables" / folder / "response_counts.csv")
        if cid is None:
            counts = counts[counts["client_id"] == "client-03"]
        sizes = study.survey("client-03").groupby(["period", "unit_id"]).size()
        for _, row in counts.iterrows():
            per = sizes.loc[row["period"]]
            assert row["respondents_reported"] == per[per >= m].sum()
            assert row["respondents_reported"] != per.sum()  # the unit of 4 is not added in
            assert row["units_suppressed"] >= 1
    # no published table of the client report gives a period's full total
    totals = study.survey("client-03").groupby("period").size().astype(str).to_dict()
    for f in _files(site / "tables" / "client-client-03"):
        for row in csv.DictReader(io.StringIO(f.read_text())):
            for col, cell in row.items():
                if "respond" in (col or "") and cell == totals.get(row.get("period")):
                    pytest.fail(f"{f.name}: {col}={cell} is the full total of {row['period']}")


# ----------------------------------------------------------------------------- hostile text
@pytest.mark.slow
def test_markup_escaped_and_csv_formula_safe(adversarial):
    _, site, _ = adversarial
    pages = [p for p in _files(site) if p.suffix == ".html"]
    # index, 6 reports, 4 briefs; per share bundle 2 reports + its brief + its index
    assert len(pages) == 7 + 4 + 4 * 4
    raw = ["<script>alert", "<img src=x", "<svg onload", "onerror=alert(1)>Z"]
    for page in pages:
        text = _text(page)
        for bad in raw:
            assert bad not in text, (page.relative_to(site), bad)
        assert "&lt;script&gt;alert(" in text or "&lt;img src=x" in text, page  # shown as text
    index = (site / "index.html").read_text()
    assert all(f"Zorblax{i} " in index for i in range(1, 5))
    assert "it is for the study team" in index
    # each client's row links the folder to hand over (its landing page)
    assert ('share: <a href="share/client-03/index.html" ' in index
            and "<code>share/client-03/</code></a>" in index)
    formula_cells = 0
    for f in [p for p in _files(site) if p.suffix == ".csv"]:
        for row in csv.reader(io.StringIO(f.read_text(encoding="utf-8"))):
            for cell in row:
                if cell.startswith(("=", "+", "-", "@", "\t", "\r")):
                    assert re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|-?inf", cell), \
                        (f.relative_to(site), cell)
                formula_cells += cell.startswith(("'=", "'@"))
    assert formula_cells > 0  # the hostile label and unit ids did reach some CSV, neutralised


@pytest.mark.slow
def test_no_paths_or_other_clients_files_on_pages(adversarial):
    study_path, site, _ = adversarial
    for page in [p for p in _files(site) if p.suffix == ".html"]:
        text = _text(page)
        assert str(study_path) not in text and "/tmp/" not in text, page.relative_to(site)
        assert str(site) not in text
    syn = (site / "reports" / "synthesis.html").read_text()
    assert "clients/" not in syn and "inputs (combined sha256)" in syn
    own = (site / "reports" / "client-client-02.html").read_text()
    assert "clients/client-02/survey.csv" in own and "study folder" in own
    for nb in _files(site / "notebooks"):
        text = nb.read_text()
        assert "exr-" not in text and '"tables/' in text, nb.name  # no temporary folder
    # no file anywhere in --out holds an absolute path of the build machine: the build's
    # own folder .exresearch/ (state, marker, lock, result cache) is scanned too, the
    # cache's pickles as bytes (a pickle stores text as UTF-8)
    everything = sorted(p for p in site.rglob("*") if p.is_file())
    assert site / ".exresearch" / "state.json" in everything
    for f in everything:
        text = _text(f) if ".exresearch" not in f.parts else f.read_bytes().decode(
            "utf-8", "replace")
        for root in (str(study_path), str(study_path.resolve()), str(site.resolve()), "/tmp/"):
            assert root not in text, (f.relative_to(site), root)


@pytest.mark.slow
def test_benchmarks_only_from_three_or_more_others(adversarial):
    _, site, _ = adversarial
    for cid in CLIENTS:
        bench = pd.read_csv(site / "tables" / f"client-{cid}" / "benchmark.csv")
        assert len(bench) and set(bench["client_id"]) == {cid}
        shown = bench[~bench["withheld"]]
        assert (shown["n_contributors"] >= config.MIN_BENCHMARK_CONTRIBUTORS).all()
        few = bench["n_contributors"] < config.MIN_BENCHMARK_QUARTILE_CONTRIBUTORS
        assert bench.loc[few, ["q1", "median", "q3"]].isna().all().all()


# ----------------------------------------------------------------------------- validation
@pytest.mark.slow
@pytest.mark.parametrize("bad_id", ["../evil", "a/../../b", "/abs"])
def test_path_traversal_ids_exit_2_and_write_nothing(tmp_path, bad_id):
    study = tmp_path / "study"
    shutil.copytree(Path(__file__).parent / "studies" / "valid", study)
    cfg = yaml.safe_load((study / "study.yml").read_text())
    cfg["clients"][0]["id"] = bad_id
    (study / "study.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = {p for p in tmp_path.parent.rglob("*")}
    res = subprocess.run([sys.executable, "-m", "exresearch", "build", str(study),
                          "--out", str(tmp_path / "site")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2, res.stderr
    assert f"client id '{bad_id}' is invalid" in res.stdout + res.stderr
    assert not (tmp_path / "site").exists()
    assert {p for p in tmp_path.parent.rglob("*")} == before
    assert not list(tmp_path.parent.parent.glob("evil*"))


# ----------------------------------------------------------------------------- browser
@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="/usr/bin/chromium is absent")
def test_no_script_runs_on_any_page(adversarial):
    playwright = pytest.importorskip("playwright.sync_api")
    _, site, _ = adversarial
    pages = [p for p in _files(site) if p.suffix == ".html"]
    dialogs, errors, requests = [], [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"])
        try:
            context = browser.new_context()
            context.on("request", lambda r: requests.append(r.url))
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append((page.url, d.message)), d.dismiss()))
            page.on("pageerror", lambda e: errors.append((page.url, str(e))))
            for f in pages:
                page.goto(f.as_uri(), wait_until="load")
                page.wait_for_timeout(50)
                # no element from input text became live markup
                assert page.locator("img[src='x'], svg[onload], script:not([src])").count() \
                    == (1 if f == site / "index.html" else 0), f
        finally:
            browser.close()
    assert dialogs == []
    assert errors == []
    assert [u for u in requests if not u.startswith(("file://", "data:"))] == []


# ----------------------------------------------------------------------------- helpers
def test_writes_outside_the_site_are_refused(tmp_path):
    from exresearch.build import _inside
    from exresearch.exceptions import BuildError

    assert _inside(tmp_path, "share/acme/index.html") == tmp_path / "share/acme/index.html"
    for rel in ["../x.html", "share/../../x", "/etc/passwd", "."]:
        with pytest.raises(BuildError, match="outside the site folder"):
            _inside(tmp_path, rel)


def test_combined_hash_is_order_free_and_sensitive_to_every_file():
    from exresearch.build import combined_hash

    a = {"study.yml": "1" * 64, "clients/x/survey.csv": "2" * 64}
    assert combined_hash(a) == combined_hash(dict(reversed(list(a.items()))))
    assert combined_hash(a) != combined_hash({**a, "clients/x/survey.csv": "3" * 64})
    assert combined_hash(a) != combined_hash({"study.yml": "1" * 64})
    assert re.fullmatch(r"[0-9a-f]{64}", combined_hash(a))


def test_share_index_escapes_and_runs_no_script():
    from exresearch.site import CSP, render_share_index

    page = render_share_index(study_name=SCRIPT, client_name=IMG,
                              report="reports/client-a.html",
                              tables=["tables/client-a/x.csv"], synthesis="reports/synthesis.html")
    assert SCRIPT not in page and IMG not in page and "<script" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;: client report" in page
    assert f'content="{CSP}"' in page and "script-src" not in page
    assert re.findall(r'href="([^"]+)"', page) == [  # the bundle's one shared stylesheet first
        "assets/site.css", "reports/client-a.html", "reports/synthesis.html",
        "tables/client-a/x.csv"]


def test_report_page_links_with_a_scheme_lose_their_target():
    from nbformat.v4 import new_markdown_cell, new_notebook

    from exresearch.site import render_report

    nb = new_notebook(cells=[new_markdown_cell(
        "# T\n\nrate =HYPERLINK(\"http://x\") and [y](javascript:alert(1)) and [z](#T)")])
    page = render_report(nb, title="t", provenance={})
    assert 'href="http' not in page and 'href="javascript' not in page
    assert 'href="#T"' in page
