"""The parameterised notebooks: structure, execution, parameter errors, findings, privacy.

Every notebook is executed with papermill on the shared small simulated study (about 10 s
each) and, in the slow tests, on the demo study with its default parameters. The client
report's executive-summary sentences are parsed and checked against the CSV tables the
same run wrote, and its outputs are scanned for any other client's id or name.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import papermill as pm
import pytest
import yaml

from exresearch import config
from exresearch.study import load_study
from exresearch.value import format_money

NB_DIR = config.NOTEBOOKS_DIR
NOTEBOOKS = ["client_report", "synthesis", "data_quality", "planning"]
INLINE = "module://matplotlib_inline.backend_inline"
DEMO_ARGS = {"n_clients": 10, "n_units": 30, "n_periods": 4, "seed": 20261122}


def _path(name):
    return NB_DIR / f"{name}.ipynb"


def _execute(name, out_dir: Path, **params):
    """Execute a notebook with papermill (inline figures); return (notebook, tables folder)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = out_dir / "tables"
    old = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = INLINE  # the kernel inherits it: figures become outputs
    try:
        pm.execute_notebook(str(_path(name)), str(out_dir / f"{name}.ipynb"),
                            parameters={"output_dir": str(tables), **params},
                            progress_bar=False, cwd=str(out_dir), kernel_name="python3")
    finally:
        if old is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old
    return nbformat.read(out_dir / f"{name}.ipynb", as_version=4), tables


@pytest.fixture(scope="module")
def run_small(small_study, tmp_path_factory):
    """Execute each notebook on the small study once per module (lazily)."""
    cache = {}

    def run(name):
        if name not in cache:
            params = {"study_path": str(small_study)}
            if name == "client_report":
                params.update(client_id="client-02", n_boot=300)
            if name == "planning":
                params.update(n_sims=100)
            cache[name] = _execute(name, tmp_path_factory.mktemp(name), **params)
        return cache[name]

    return run


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                parts.append(o.get("text", ""))
            for key, value in (o.get("data") or {}).items():
                if key.startswith("text/"):
                    parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def _csv_texts(tables: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(tables.glob("*.csv"))}


# ----------------------------------------------------------------------------- structure
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_clean_and_thin(name):
    nb = nbformat.read(_path(name), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for c in code:
        assert c.get("outputs") == [], f"{name}: a code cell has outputs"
        assert c.get("execution_count") is None, f"{name}: a code cell has an execution count"
        tree = ast.parse(c.source)
        bad = [n for n in ast.walk(tree)
               if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
        assert not bad, f"{name}: `def`/`class` in a notebook cell: {[b.name for b in bad]}"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: exactly one cell must be tagged `parameters`"
    assert tagged[0] is code[0], f"{name}: the parameters cell must be the first code cell"
    # the first cell after the parameters validates them
    assert "report.setup_report(" in code[1].source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_parameter_has_a_type_and_a_comment(name):
    nb = nbformat.read(_path(name), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    tree = ast.parse(cell.source)
    lines = cell.source.splitlines()
    names = []
    for node in tree.body:
        assert isinstance(node, ast.AnnAssign), (
            f"{name}: parameter cell line {node.lineno} must be `name: type = value  # meaning`")
        comment = lines[node.lineno - 1].partition("#")[2].strip()
        assert len(comment) > 15, f"{name}: {node.target.id} lacks a comment saying what it means"
        names.append(node.target.id)
    assert names[0] == "study_path" and "output_dir" in names
    # papermill --help-notebook shows every one of them with its type and help
    info = pm.inspect_notebook(str(_path(name)))
    assert list(info) == names
    for p in info.values():
        assert p["inferred_type_name"] in {"str", "int", "float", "bool"}
        assert p["help"]


def test_defaults_point_at_the_demo_study():
    defaults = {n: pm.inspect_notebook(str(_path(n))) for n in NOTEBOOKS}
    for n, params in defaults.items():
        assert json.loads(params["study_path"]["default"]) == "data/demo", n
        assert config.ROOT / "data/demo" == config.DEMO_STUDY
    # empty = the study's first client: the committed notebook names no client
    assert json.loads(defaults["client_report"]["client_id"]["default"]) == ""


# ----------------------------------------------------------------------------- execution
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_executes_on_small_study(run_small, name):
    nb, tables = run_small(name)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    streams = [o for c in nb.cells for o in c.get("outputs", [])
               if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not streams, f"{name}: stderr in the report: {streams[:1]}"
    images = sum("image/png" in (o.get("data") or {}) for c in nb.cells for o in c.get("outputs", []))
    assert images >= 2, f"{name}: expected figures"
    csvs = sorted(p.name for p in tables.glob("*.csv"))
    assert len(csvs) >= 5
    # every cell that shows a table (an HTML table output) writes it as CSV too
    for c in nb.cells:
        tables_shown = sum("<table" in "".join((o.get("data") or {}).get("text/html", ""))
                           for o in c.get("outputs", []))
        if tables_shown:
            assert c.source.count("save_table(") >= tables_shown, (
                f"{name}: a cell shows {tables_shown} table(s) but writes fewer CSVs:\n{c.source[:200]}")


def test_synthesis_headline_and_pseudonyms(run_small, small_study):
    nb, tables = run_small("synthesis")
    head = pd.read_csv(tables / "headline.csv")
    assert list(head.columns) == ["label", "value", "note"] and len(head) >= 3
    pooled = pd.read_csv(tables / "pooled_correlations.csv")
    row = pooled[(pooled["x"] == "ex_index") & (pooled["y"] == "nps")].iloc[0]
    assert head.loc[0, "value"] == f"r = {row['estimate']:.2f}"
    study = load_study(small_study)
    text = _outputs_text(nb) + "".join(_csv_texts(tables).values())
    assert "Client A" in text
    for c in study.config.clients:  # publish_client_names is false in the small study
        assert c.id not in text and c.name not in text


def _html_table(html: str) -> pd.DataFrame:
    """The first table of an HTML fragment, as text (header row -> columns)."""
    from bs4 import BeautifulSoup

    rows = [[c.get_text(strip=True) for c in tr.find_all(["th", "td"])]
            for tr in BeautifulSoup(html, "html.parser").find("table").find_all("tr")]
    return pd.DataFrame(rows[1:], columns=rows[0])


def _figure_alts(nb, marker) -> list[str]:
    """Alt texts of the figures of the cell whose source holds ``marker``."""
    cell = next(c for c in nb.cells if c.cell_type == "code" and marker in c.source)
    return [o["metadata"]["image/png"]["alt"] for o in cell.outputs
            if "image/png" in (o.get("data") or {})]


def test_synthesis_forest_plots_compact_beyond_forest_max_rows(run_small, small_study,
                                                               tmp_path):
    """Full forest plots at the default threshold; with ``forest_max_rows`` below the
    number of clients, caterpillars with every client's numbers in folded tables, and the
    same pooled values."""
    full_nb, full = run_small("synthesis")
    nb, tables = _execute("synthesis", tmp_path, study_path=str(small_study),
                          forest_max_rows=2)
    k = len(load_study(small_study).config.clients)
    assert k > 2
    full_alts = _figure_alts(full_nb, "plot_forest_table(")
    alts = _figure_alts(nb, "plot_forest_table(")
    assert len(alts) == len(full_alts) >= 2
    for a in full_alts:  # names and numbers row by row; the panels without a y label
        assert "sorted" not in a
        assert "Panel" in a or "Labels: r, 95% CI, Units, Weight" in a
    assert all(f"y axis: {k} clients, sorted" in a for a in alts)
    html = _outputs_text(nb)
    assert "<details class=\"exr-more\">" not in _outputs_text(full_nb)
    forest = pd.read_csv(tables / "forest_rows.csv")
    per_client = pd.read_csv(tables / "per_client_correlations.csv")
    shown_y = forest["y"].unique().tolist()
    assert html.count("<details class=\"exr-more\">") == len(shown_y) + 1  # + utility
    for y, g in forest.groupby("y"):  # every client's numbers, as in the per-client table
        pc = per_client[(per_client["x"] == "ex_index") & (per_client["y"] == y)]
        assert sorted(g["client"]) == sorted(pc["client"]) and len(g) == k
        assert g.set_index("client")["r"].sort_index().to_numpy() == pytest.approx(
            pc.set_index("client")["r"].sort_index().to_numpy())
        assert g["weight"].sum() == pytest.approx(100)
        assert (g["ci_low"] < g["r"]).all() and (g["r"] < g["ci_high"]).all()
    # each folded table under a caterpillar: every client, largest r first, as the CSV
    blocks = re.findall(r'<details class="exr-more">.*?</details>', html, flags=re.S)
    for y, block in zip(shown_y, blocks, strict=False):
        shown = _html_table(block)
        g = forest[forest["y"] == y]
        assert shown["organisation"].tolist() == g["client"].tolist()
        assert shown["r"].tolist() == [f"{v:.2f}" for v in g["r"]]
        assert shown["weight (%)"].tolist() == [f"{v:.1f}" for v in g["weight"]]
    # the pooled values do not depend on how the plots are drawn
    for name in ("pooled_correlations", "headline", "heterogeneity", "study_utility"):
        pd.testing.assert_frame_equal(pd.read_csv(tables / f"{name}.csv"),
                                      pd.read_csv(full / f"{name}.csv"), obj=name)
    assert (tables / "forest_rows.csv").read_text() == (full / "forest_rows.csv").read_text()


def test_data_quality_figures_compact_beyond_max_rows(run_small, small_study, tmp_path):
    """Full-size figures at the default threshold; with ``max_rows`` below the number of
    clients, compact figures (no value written in a heat-map cell), a note saying so,
    the missing answers in a folded table, and the same CSV tables byte for byte."""
    full_nb, full = run_small("data_quality")
    nb, tables = _execute("data_quality", tmp_path, study_path=str(small_study), max_rows=2)
    k = len(load_study(small_study).config.clients)
    assert k > 2
    html, full_html = _outputs_text(nb), _outputs_text(full_nb)
    assert "drawn compact" in html and "drawn compact" not in full_html
    assert "<details class=\"exr-more\">" not in full_html
    blocks = re.findall(r'<details class="exr-more">.*?</details>', html, flags=re.S)
    assert len(blocks) == 1
    shown = _html_table(blocks[0])
    missing = pd.read_csv(tables / "missingness.csv")
    assert sorted(shown["client"]) == sorted(missing["client_id"].unique()) and len(shown) == k
    # alt texts: the compact heat maps write no value in their cells
    for marker in ("scale_grid(missing", "scale_grid(quality"):
        alts, full_alts = _figure_alts(nb, marker), _figure_alts(full_nb, marker)
        assert len(alts) == len(full_alts) == 1
        assert alts[0] != full_alts[0]
    for f in sorted(full.glob("*.csv")):
        assert (tables / f.name).read_text() == f.read_text(), f.name
    assert sorted(p.name for p in tables.glob("*.csv")) == sorted(p.name for p in full.glob("*.csv"))


def test_data_quality_max_rows_error_names_the_value(small_study, tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match=r"max_rows.*1"):
        _execute("data_quality", tmp_path, study_path=str(small_study), max_rows=1)


def test_client_report_mentions_no_other_client(run_small, small_study):
    nb, tables = run_small("client_report")
    study = load_study(small_study)
    everything = json.dumps(nb) + "".join(_csv_texts(tables).values())
    assert "client-02" in everything
    for c in study.config.clients:
        if c.id != "client-02":
            assert c.id not in everything, f"other client's id {c.id} in the report"
            assert c.name not in everything, f"other client's name {c.name} in the report"


def test_client_report_shows_no_suppressed_unit_values(run_small, small_study):
    from exresearch import report

    _, tables = run_small("client_report")
    study = load_study(small_study)
    panel = report.client_panel(study, "client-02")
    sup = panel[panel["suppressed"]]
    assert len(sup), "the small study's client-02 has suppressed unit-periods"
    pairs = set(zip(sup["unit_id"], sup["period"], strict=True))
    latest = study.config.periods[-1]
    for path in tables.glob("*.csv"):
        df = pd.read_csv(path, dtype=str)
        if "unit_id" not in df.columns or path.name == "suppressed_units.csv":
            continue
        if "period" in df.columns:
            assert not set(zip(df["unit_id"], df["period"], strict=True)) & pairs, path.name
        else:  # latest-period tables
            assert not set(df["unit_id"]) & {u for u, p in pairs if p == latest}, path.name
    listed = pd.read_csv(tables / "suppressed_units.csv", dtype=str)
    assert list(listed.columns) == ["unit_id", "period", "reason"]
    assert set(zip(listed["unit_id"], listed["period"], strict=True)) == pairs


def _number(text: str) -> float:
    text = text.replace(",", "")
    return float(text.replace(" million", "")) * (1e6 if "million" in text else 1)


def test_client_report_summary_comes_first_and_matches_its_tables(run_small, small_study):
    nb, tables = run_small("client_report")
    _check_findings(nb, tables, load_study(small_study).config)


def _check_findings(nb, tables, cfg):
    """Parse the executive summary shown in the executed report and check every number
    in it against the CSV tables the same run wrote."""
    cell = next(c for c in nb.cells if "save_table(findings" in c.source)
    md = "".join(o["data"]["text/markdown"] for o in cell.outputs if "text/markdown" in o.get("data", {}))
    lines = [re.sub(r"\\(.)", r"\1", ln) for ln in md.splitlines() if re.match(r"\d\. ", ln)]
    assert 3 <= len(lines) <= 5
    # each finding links to its section (the site resolves #section-N): checked, then
    # dropped before comparing the sentences with findings.csv
    sections = [re.search(r" \[\(section (\d)\)\]\(#section-(\d)\)$", ln) for ln in lines]
    assert all(m and m.group(1) == m.group(2) for m in sections), lines
    lines = [ln[:m.start()] for ln, m in zip(lines, sections, strict=True)]
    # the summary is shown before any figure or table
    idx = nb.cells.index(cell)
    assert not any("image/png" in (o.get("data") or {}) or "<table" in str((o.get("data") or {}).get("text/html", ""))
                   for c in nb.cells[:idx] for o in c.get("outputs", []))
    findings = pd.read_csv(tables / "findings.csv")
    assert [f"{i}. {t}" for i, t in zip(findings["finding"], findings["text"], strict=True)] == lines
    text = dict(zip(findings["topic"], findings["text"], strict=True))
    labels = {k: s.label for k, s in cfg.scales.items()}

    corr = pd.read_csv(tables / "linkage_correlations.csv")
    c = corr[(corr["x"] == "ex_index") & (corr["y"] == "nps")].iloc[0]
    m = re.search(r"r = (-?\d\.\d\d)(?:, 95% CI| across (\d+) units)", text["linkage"])
    assert float(m.group(1)) == round(c["r"], 2)
    lo, hi = re.search(r"(?:95% CI |\()(-?\d\.\d\d) to (-?\d\.\d\d)\)", text["linkage"]).groups()
    assert (float(lo), float(hi)) == (round(c["ci_low"], 2), round(c["ci_high"], 2))
    assert f" {int(c['n'])} units" in text["linkage"]

    loop = pd.read_csv(tables / "loop.csv").iloc[0]
    paths = re.findall(r"([+-]\d\.\d\d) SD \(p = (\d\.\d{3})\)", text["direction"])
    # the within-unit model needs 20 units: with fewer its paths are missing and not quoted
    assert [(float(b), float(p)) for b, p in paths] == ([
        (round(loop["x_to_y"], 2), round(loop["x_to_y_p"], 3)),
        (round(loop["y_to_x"], 2), round(loop["y_to_x_p"], 3))]
        if np.isfinite(loop["x_to_y"]) else [])
    if loop["label"] == "no evidence":
        assert "associations" in text["direction"] and " drives " not in text["linkage"]

    # one driver model: the priorities table, the value table and the summary agree
    pri = pd.read_csv(tables / "driver_priorities.csv").sort_values("rank")
    inv = pd.read_csv(tables / "investment.csv")
    body = inv[inv["driver"] != "all drivers"]
    assert body["driver"].tolist() == pri["driver"].tolist()
    assert body["act_first"].tolist() == pri["act_first"].tolist()
    assert pri["act_first"].sum() <= 1 and (pri["act_first"].sum() == 0 or pri["act_first"].iloc[0])
    named = pri[pri["act_first"]]
    if "drivers" in text:
        if len(named):
            top = named.iloc[0]
            assert text["drivers"].startswith(f"Act first on {labels[top['driver']]}: ")
            assert f" in {100 * top['p_first']:.0f}% of resamples" in text["drivers"]
            assert f"{top['impact']:.0f}% of the explained" in text["drivers"]
        else:
            assert text["drivers"].startswith("No single driver can be named first for ")
            for dv in pri.loc[pri["contender"], "driver"]:
                assert labels[dv] in text["drivers"]
    if "value" in text:
        if len(named):
            row = inv[inv["driver"] == named["driver"].iloc[0]].iloc[0]
            assert f"on {labels[row['driver']]} up to" in text["value"]
            gap = re.search(r"\(\+(\d\.\d\d) points on average\)", text["value"]).group(1)
            assert float(gap) == round(row["gap"], 2)
        else:
            row = inv[inv["driver"] == "all drivers"].iloc[0]
            assert "on all drivers together" in text["value"]
        assert f"worth {row['delta_cx']:+.1f} " in text["value"]
        if np.isfinite(row["money"]):
            shown = [format_money(row[c], currency=cfg.currency)
                     for c in ("money", "money_low", "money_high")]
            assert (f"about {shown[0]} in revenue a year (95% CI {shown[1]} to {shown[2]})"
                    in text["value"])
            lo, hi = row["money_low"], row["money_high"]
        else:
            lo, hi = row["delta_business_low"], row["delta_business_high"]
            assert (f"{row['delta_business']:+.2f} on " in text["value"]
                    and f"(95% CI {lo:.2f} to {hi:.2f})" in text["value"])
        if lo <= 0 <= hi:
            assert "The range includes no gain, so the value is uncertain." in text["value"]

    if "profile" in text:
        prof = pd.read_csv(tables / "ex_profile.csv").set_index("scale")
        key = findings.set_index("topic").loc["profile", "key"].split("=")[1]
        assert f"{labels[key]} highest ({prof.loc[key, 'mean']:.2f}" in text["profile"]

    if "benchmark" in text:
        b = pd.read_csv(tables / "benchmark.csv")
        b = b[b["measure"] == "ex_index"].iloc[0]
        # peers counted, not a percentile ("100th" among 9 overstated the precision)
        m = re.fullmatch(r"Compared with (\d+) other organisations in the study, your .+ is "
                         r"(higher|lower) than (all )?(\d+) of them.*\.", text["benchmark"])
        n, pr, k = int(m.group(1)), b["percentile"], int(m.group(4))
        assert n == b["n_contributors"]
        if m.group(3):
            assert k == n and (pr >= 99.5 if m.group(2) == "higher" else pr <= 0.5)
        else:
            assert m.group(2) == "higher" and k == round(pr / 100 * n)


# ----------------------------------------------------------------------------- errors
def test_wrong_client_id_gives_one_clear_error(small_study, tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as exc:
        _execute("client_report", tmp_path, study_path=str(small_study), client_id="acme")
    assert exc.value.ename == "ParameterError"
    assert exc.value.evalue == (
        "`client_id` must be one of the study's clients ['client-01', 'client-02', 'client-03', "
        "'client-04', 'client-05'], but 'acme' was passed")
    # stopped in the first cell after the parameters (and papermill's injected ones)
    assert exc.value.exec_count == 3 and "report.setup_report(" in exc.value.source


def test_wrong_study_path_gives_one_clear_error(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as exc:
        _execute("synthesis", tmp_path, study_path=str(tmp_path / "nowhere"))
    assert exc.value.ename == "ParameterError"
    assert exc.value.evalue.startswith(
        f"`study_path` must be a folder containing study.yml, but '{tmp_path / 'nowhere'}' was passed")


# ----------------------------------------------------------------------------- slow
@pytest.fixture(scope="module")
def demo_study(tmp_path_factory):
    if (config.DEMO_STUDY / "study.yml").is_file():
        return config.DEMO_STUDY
    from exresearch.simulate import simulate_study

    return simulate_study(tmp_path_factory.mktemp("demo") / "demo", **DEMO_ARGS)


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_executes_on_demo_study_with_defaults(name, demo_study, tmp_path):
    params = {}
    if Path(demo_study) != config.DEMO_STUDY:
        params["study_path"] = str(demo_study)
    else:
        # the defaults as a reader in JupyterLab gets them: working folder notebooks/
        assert json.loads(pm.inspect_notebook(str(_path(name)))["study_path"]["default"]) == "data/demo"
    nb, tables = _execute(name, tmp_path, **params)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert len(list(tables.glob("*.csv"))) >= 5
    if name == "client_report":
        assert load_study(demo_study).clients[0] == "client-01"  # the default client
        findings = pd.read_csv(tables / "findings.csv")
        assert len(findings) == 5
        study = load_study(demo_study)
        _check_findings(nb, tables, study.config)
        text = json.dumps(nb) + "".join(_csv_texts(tables).values())
        for c in study.config.clients[1:]:
            assert c.id not in text and c.name not in text
    if name == "synthesis":
        # the demo has two clients per industry: no industry's own numbers may be shown
        # under pseudonyms (a client could back out the other one's link). Industries are
        # merged into groups of at least 3 clients before anything is shown or tested.
        assert not (tables / "moderators_industry.csv").exists()
        chars = pd.read_csv(tables / "study_characteristics.csv")
        groups = chars[chars["industry"] != "All organisations"]
        assert len(groups) >= 2 and (groups["organisations"] >= 3).all()
        assert groups["organisations"].sum() == len(load_study(demo_study).clients)
        mods = pd.read_csv(tables / "moderator_tests.csv")
        cat = mods[mods["kind"] == "categorical"].iloc[0]
        assert cat["tested"] and cat["groups"] == len(groups)
        assert 0 <= cat["p_perm"] <= 1 and np.isnan(cat["estimate"])  # no group's own r
        assert set(mods.columns).isdisjoint({"level_r", "client", "client_id"})


@pytest.mark.slow
def test_hostile_text_stays_inert(small_study, tmp_path):
    from exresearch.site import render_report

    study = tmp_path / "hostile"
    shutil.copytree(small_study, study)
    cfg = yaml.safe_load((study / "study.yml").read_text())
    cfg["name"] = "**Study** <b onmouseover=alert(0)>x</b>"
    cfg["publish_client_names"] = True
    cfg["clients"][1]["name"] = "<script>alert(1)</script>"
    cfg["scales"]["leader"]["label"] = '<img src=x onerror="alert(2)">'
    cfg["outcomes"]["nps"]["label"] = "[click](javascript:alert(3))"
    (study / "study.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    for name, params in [("client_report", {"client_id": "client-02", "n_boot": 200}),
                         ("synthesis", {"n_boot": 100}), ("data_quality", {})]:
        nb, _ = _execute(name, tmp_path / name, study_path=str(study), **params)
        html = render_report(nb, title="t", provenance={})
        for bad in ("<script>alert(1)", "<img src=x", "href=\"javascript", "<b onmouseover"):
            assert bad not in html, (name, bad)
        assert "&lt;script&gt;alert(1)" in html  # the name is shown, as text
        if name == "client_report":
            assert "&lt;img src=x onerror=" in html  # the scale label is shown, as text


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
@pytest.mark.parametrize("corpus", ["valid", "unit_coverage"])
def test_executes_on_a_tiny_study(name, corpus, tmp_path):
    """Tiny corpus studies (two units per client; a client without survey answers in the last
    period; validation warnings): most statistics are undefined, the reports still run."""
    params = {"study_path": str(config.ROOT / "tests" / "studies" / corpus)}
    if name == "client_report" and corpus == "valid":
        params["client_id"] = "beta-bank"
    nb, tables = _execute(name, tmp_path, **params)
    assert (tables / ("findings.csv" if name == "client_report" else "design.csv"
                      if name == "planning" else "headline.csv" if name == "synthesis"
                      else "clients.csv")).is_file()
    text = _outputs_text(nb)
    assert not re.search(r"\bnan\b", text.replace("NaN", "")), "a 'nan' reached the prose"


@pytest.mark.slow
def test_client_report_tables_are_byte_identical_when_run_again(run_small, small_study, tmp_path):
    """Every random step is seeded from the study seed: a second run writes the same bytes."""
    _, first = run_small("client_report")
    _, second = _execute("client_report", tmp_path, study_path=str(small_study),
                         client_id="client-02", n_boot=300)
    a, b = _csv_texts(first), _csv_texts(second)
    assert list(a) == list(b) and len(a) >= 15
    for name in a:
        assert a[name] == b[name], name
