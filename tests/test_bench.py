"""Smoke tests of the benchmark scripts in bench/ (not timed: speed is measured by
``make bench``, never asserted here)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import build_cases  # noqa: E402
import common  # noqa: E402
import measure  # noqa: E402
import run  # noqa: E402


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench") / "measure"
    return measure.make_study(root, n_clients=3, units=4, per_unit=12, seed=5)


def test_make_study_is_deterministic_valid_and_matches_formats(tiny_study, tmp_path):
    from exresearch.study import load_study

    again = measure.make_study(tmp_path / "again", n_clients=3, units=4, per_unit=12, seed=5)
    for cid in measure.client_ids(3):
        rel = Path("clients") / cid / "survey.csv"
        assert _sha(tiny_study["csv"] / rel) == _sha(again["csv"] / rel)
    st_csv, st_pq = load_study(tiny_study["csv"]), load_study(tiny_study["parquet"])
    assert st_csv.clients == ["c000", "c001", "c002"]
    assert list(st_csv.config.scales) == [f"scale{i}" for i in range(1, 9)]
    assert st_csv.config.scales["scale1"].reverse == ("s1_5",)
    assert st_csv.config.scales["scale2"].reverse == ()
    s = st_csv.survey("c000")
    assert len(s) == 4 * 12 and s["unit_id"].nunique() == 4
    items = s[measure.items()].to_numpy()
    assert np.nanmin(items) == 1 and np.nanmax(items) == 5
    assert 0.01 < np.isnan(items).mean() < 0.06  # about 3% missing
    # CSV and parquet copies hold the same data
    p = st_pq.survey("c000")
    np.testing.assert_array_equal(items, p[measure.items()].to_numpy())
    assert (s["respondent_id"].to_numpy() == p["respondent_id"].to_numpy()).all()


def test_fast_and_baseline_pipelines_agree(tiny_study):
    surveys = measure.read_raw(tiny_study["parquet"], "parquet")
    fast_stages, fast = measure.run_fast(surveys, measure.scale_spec())
    base_stages, base = measure.run_baseline(surveys, measure.scale_spec())
    assert set(fast_stages) == {"score_scales", "agreement", "aggregate_units"}
    assert all(v >= 0 for v in [*fast_stages.values(), *base_stages.values()])
    diffs = measure.compare(fast, base)
    assert set(diffs) == {"alpha", "icc1", "icc2", "rwg_j_mean", "unit_mean", "pct_favourable"}
    assert max(diffs.values()) < 1e-9, diffs
    # the comparison can fail: a perturbed baseline value is detected
    cid = next(iter(base))
    base[cid]["agreement"].loc["scale1", "icc1"] += 0.01
    assert measure.compare(fast, base)["icc1"] == pytest.approx(0.01)


def test_worker_reports_time_rows_and_memory(tiny_study):
    res = common.run_worker([str(BENCH / "measure.py"), "worker",
                             json.dumps({"kind": "fast", "study": str(tiny_study["parquet"]),
                                         "clients": ["c001"]})])
    assert res["kind"] == "fast" and res["rows"] == 48 and res["clients"] == 1
    assert res["seconds"] > 0 and res["wall"] > res["seconds"]
    assert res["peak"] >= res["rss_before"] > 10 * 1024 ** 2
    assert res["maxrss"] >= res["peak"]
    with pytest.raises(common.WorkerError, match="unknown kind"):
        common.run_worker([str(BENCH / "measure.py"), "worker",
                           json.dumps({"kind": "nope", "study": str(tiny_study["parquet"])})])


def test_summarise_and_formatting():
    s = common.summarise([3.0, 1.0, 2.0, 10.0])
    assert (s["n"], s["median"], s["min"], s["max"]) == (4, 2.5, 1.0, 10.0)
    assert s["q1"] == pytest.approx(1.75) and s["q3"] == pytest.approx(4.75)
    assert common.fmt_stat(common.summarise([1.5, 2.5, 2.0])) == "2.00 s (1.50 s-2.50 s, n=3)"
    assert common.fmt_stat(common.summarise([0.25])) == "250 ms (n=1)"
    assert common.fmt_bytes(3 * 1024 ** 3) == "3.00 GiB"
    info = common.machine_info()
    assert info["cores"] >= 1 and info["memory"] > 0
    assert info["versions"]["pandas"] != "not installed"


def test_parse_args_defaults_and_errors():
    a = run.parse_args([])
    assert a.preset == "full" and a.cases == list(run.ALL_CASES)
    assert a.out == BENCH / "results.md"
    a = run.parse_args(["--quick", "--cases", "b4,B3"])
    assert a.preset == "quick" and a.cases == ["B3", "B4"]
    assert a.out == BENCH / "results-partial.md"  # never overwrite the committed results
    with pytest.raises(SystemExit):
        run.parse_args(["--cases", "B3,B9"])


def test_baseline_script_runs_papermill_then_nbconvert_per_report(tmp_path):
    reports = [{"kind": "synthesis", "key": "synthesis", "params": {}},
               {"kind": "client", "key": "client-a", "params": {"client_id": "a"}}]
    text = build_cases.baseline_script(Path("/s t"), Path("/nb"), tmp_path, reports)
    lines = text.splitlines()
    pm = [ln for ln in lines if "/papermill " in ln]
    nbc = [ln for ln in lines if " nbconvert --to html " in ln]
    assert len(pm) == len(nbc) == 2
    assert "/nb/client_report.ipynb client-a.ipynb" in pm[1]
    assert "-p study_path '/s t'" in pm[1] and "-p client_id a" in pm[1]
    assert f"-p output_dir {tmp_path}/tables/client-a" in pm[1]
    assert str(common.VENV_BIN / "papermill") in pm[0]
    assert lines.index(pm[1]) < lines.index(nbc[1])


def test_import_statements_and_cell_split(tmp_path):
    nb = {"cells": [
        {"cell_type": "code", "source": "import pandas as pd\nfrom x import (a,\n    b)\n",
         "metadata": {"papermill": {"duration": 2.0}}},
        {"cell_type": "code", "source": "# check\nif 1:\n    pass\nimport numpy as np\n",
         "metadata": {"papermill": {"duration": 0.5}}},
        {"cell_type": "code", "source": "%matplotlib inline\ny = np.ones(3)\n",
         "metadata": {"papermill": {"duration": 1.0}}},
        {"cell_type": "markdown", "source": "# title", "metadata": {}},
    ]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    assert build_cases.cell_split(path) == {"setup": 2.5, "analysis": 1.0}
    assert build_cases.import_source(path) == (
        "import pandas as pd\nfrom x import (a,\n    b)\nimport numpy as np")


def test_change_one_answer_changes_the_hash_and_keeps_the_study_valid(tmp_path):
    from exresearch.simulate import simulate_study
    from exresearch.study import load_study

    study = Path(simulate_study(tmp_path / "s", n_clients=1, n_units=4, n_periods=1, seed=1))
    cid = load_study(study).clients[0]
    f = study / "clients" / cid / "survey.csv"
    seen = {_sha(f)}
    for _ in range(2):
        assert build_cases.change_one_answer(study, cid) == f"clients/{cid}/survey.csv"
        seen.add(_sha(f))
        load_study(study)  # still valid
    assert len(seen) == 3


def _check_results_md(text: str, cases) -> None:
    assert text.startswith("# exresearch benchmarks")
    assert "## Machine" in text and "Load average" in text and "pandas 3" in text
    assert ": failed" not in text  # a case that raised gets a "## Bn: failed" section
    for case in cases:
        assert f"## {case} " in text
    # every markdown table is rectangular
    table = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            table.append(line.count("|"))
        elif table:
            assert len(set(table)) == 1, table
            table = []


def _fake_results(fast_seconds=2.0, build_seconds=30.0):
    """Results in the structure the cases return (for the markdown writers)."""
    stages_f = {"score_scales": 0.5, "agreement": 1.0, "aggregate_units": 0.5}
    stages_b = {"alpha (pingouin)": 1.0, "ICC (statsmodels ANOVA)": 50.0}
    fast = [{"seconds": fast_seconds + d, "peak": 2 ** 29, "maxrss": 2 ** 30,
             "rss_before": 2 ** 28, "stages": stages_f} for d in (0.0, 0.1, -0.1)]
    base = [{"seconds": 60.0 + d, "stages": stages_b, "rows": 40_000} for d in (0, 5, -5)]
    reading = {k: [{"seconds": t, "maxrss": 2 ** 30}] for k, t in
               (("read_csv", 8.0), ("read_parquet", 1.0), ("load_csv", 20.0),
                ("load_parquet", 10.0))}
    b3 = {"size": {"n_clients": 50, "units": 200, "per_unit": 100}, "rows": 1_000_000,
          "fast": fast, "baseline": base, "baseline_clients": 2, "extrapolation": 25.0,
          "diffs": {"alpha": 1e-16, "icc1": 2e-15}, "reading": reading,
          "bytes_on_disk": {"csv": 90 * 2 ** 20, "parquet": 40 * 2 ** 20}}
    b4 = {"sizes": [
        {"size": {"n_clients": 50, "units": u, "per_unit": 100}, "rows": 10_000 * u // 2,
         "fast": [{"seconds": 0.1 * u}], "baseline": [{"seconds": 3.0 * u}],
         "extrapolation": 1.0} for u in (2, 20, 200)]}
    per = {f"client-{i}": {"papermill": 8.0, "nbconvert": 3.0} for i in range(12)}
    b1 = {"builds": [{"wall": build_seconds, "executed": 12}] * 3,
          "baseline": [{"wall": 132.0, "per_report": per, "html_files": 12}],
          "durations": {"synthesis": 3.0, "data-quality": 2.0, "client-c1": 4.0},
          "demo": {"n_clients": 10, "n_units": 30, "n_periods": 4, "seed": 1},
          "reports": 12, "nb_source": "notebooks/", "jobs": 2}
    b2 = {"settle": {"executed": 0}, "nochange": [{"wall": 0.2, "executed": 0}] * 5,
          "touched": {"wall": 0.2, "executed": 0},
          "changed": [{"wall": 8.0, "executed": 3}] * 3, "client": "c1",
          "changed_file": "clients/c1/survey.csv"}
    b5 = {"client": "c1", "nb_source": "notebooks/",
          "cold": [{"papermill_total": 10.0, "cells_setup": 4.0, "cells_analysis": 3.0,
                    "html_inprocess": 0.5, "kernel_ready": 1.5, "kernel_imports": 3.5}],
          "python_start": [0.03], "imports_plain": [3.5], "nbconvert_cli": [3.0],
          "zygote": {"duration": 3.5, "setup": 0.01, "analysis": 3.2}}
    b3l = {"size": b3["size"], "rows": 1_000_000, "reading": {
        "read_parquet": [{"seconds": t, "maxrss": 2 ** 30} for t in (0.7, 0.8, 0.6)],
        "load_parquet": [{"seconds": t, "maxrss": 2 ** 30} for t in (1.2, 1.4, 1.3)]}}
    b7 = {"client": "c1", "nb_source": "notebooks/", "forked": [0.05, 1.0, None],
          "report": {"client": "c1", "plain_total": 6.0, "cells": [
              {"index": 3, "line": "import functools", "duration": 2.0, "top": []},
              {"index": 4, "line": "panel = report.client_panel(a | b)", "duration": 2.0,
               "top": [("exresearch/value.py:385(driver_model)", 0.5, 0.1)]},
              {"index": 6, "line": "display(x)", "duration": None, "top": []}]},
          "statistics": {"correlation_table_30": [0.2, 0.3, 0.25],
                         "relative_weights_30": [1.5, 1.2, 1.4]}}
    return {"B3": b3, "B3L": b3l, "B4": b4, "B1": b1, "B2": b2, "B5": b5, "B7": b7}


def test_results_markdown_reports_ratios_and_targets(tmp_path):
    info = common.machine_info()
    info["loadavg_end"] = "1.00 1.00 1.00"
    out = tmp_path / "r.md"
    run.write_results(out, info, "full", list(run.ALL_CASES), _fake_results(), "start",
                      "end", {})
    text = out.read_text()
    _check_results_md(text, run.ALL_CASES)
    # B3: 60 s x 25 / 2 s = 750x; all three targets met
    assert "**Speed-up: 750x** (median baseline extrapolated / median exresearch; fastest " \
        "baseline run / slowest exresearch run: 655x)" in text  # 55 x 25 / 2.1
    assert "Raw reading: parquet is 8.0x as fast as CSV" in text
    assert "target >= 10x: met. Time target < 5 s: met. Memory target < 2 GiB: met." in text
    assert "| 1,000,000 | 10,000 | 20.0 s (n=1) | 20.00 us | 20.00 us | 600 s (n=1) | 600 us " \
        "| 30.0x |" in text  # marginal: (20 - 2) s / 900,000
    assert "**Speed-up: 4.40x**; floor 4x: met, target 8x: **missed**." in text  # 132 / 30
    assert "| nothing | 200 ms (200 ms-200 ms, n=5) | 0 | 0.7% |" in text
    assert "executed: 3" in text
    assert "cannot take less than the report execution times spread over 2 lanes, 4.5 s " \
        "here, so against this baseline it cannot exceed 29.3x" in text
    assert "| B3 time, 1,000,000 respondents | 2.00 s | < 5 s | met |" in text
    assert "| B3L load_study, 1,000,000 respondents (parquet), vs raw read | 1.30 s vs 700 ms: " \
        "1.86x | <= 2x | met |" in text  # medians 1.3 / 0.7
    assert "**load_study / raw read: 1.86x** (medians); target <= 2x: met." in text
    assert "Generated by `.venv/bin/python bench/run.py` (`make bench`), preset **full**" in text
    assert "| B1 build vs papermill + nbconvert loop | 4.40x | >= 8x (floor 4x) | **missed** |" \
        in text
    assert "| B4 growth 100,000 -> 1,000,000 respondents | time x10.0 for data x10 |" in text
    assert "| setup cells | 4.00 s | 10 ms |" in text
    assert "kernel start and imports are 5.00 s (38%)" in text  # (1.5 + 3.5) / (10 + 3)
    # B1 compares like with like; without a PDF build it says why
    assert "the timed builds run with `--no-pdf`" in text and "so they were not measured" in text
    # B7: cells with their forked durations, the heaviest cell's functions, the statistics
    assert "| 4 | `panel = report.client_panel(a / b)` | 2.00 s | 50% | 1.00 s |" in text
    assert "| 3 | `import functools` | 2.00 s | 50% | 0.05 s |" in text
    assert "| `exresearch/value.py:385(driver_model)` | 0.500 s | 0.100 s |" in text
    assert "Cells sum to 4.00 s (papermill in all: 6.00 s" in text
    assert "Pearson and Spearman | 250 ms (200 ms-300 ms, n=3) | < 1 s: met |" in text
    assert "5 drivers | 1.40 s (1.20 s-1.50 s, n=3) | < 1 s: **missed** |" in text
    # missed targets are said so
    run.write_results(out, info, "full", list(run.ALL_CASES),
                      _fake_results(fast_seconds=6.0, build_seconds=10.0), "s", "e",
                      {"B9": "Boom: it broke"})
    text = out.read_text()
    assert "Time target < 5 s: **missed**" in text
    assert "target 8x: met" in text  # 132 / 10
    assert "## B9: failed" in text and "Boom: it broke" in text


def test_b1_reports_the_pdf_build_separately():
    r = _fake_results()["B1"]
    text = "\n".join(run.md_b1({**r, "pdf_build": {"wall": 45.0, "executed": 12}}))
    assert "`exresearch build STUDY --out SITE --force --no-pdf`" in text
    assert "One build with PDFs" in text and "took 45.0 s (n=1), 15.0 s more than" in text
    text = "\n".join(run.md_b1({**r, "pdf_build": {"wall": 25.0, "executed": 12}}))
    assert "took 25.0 s (n=1) against 30.0 s for the median build without (less:" in text


def test_cell_profiles_pair_with_the_cells_they_time(tmp_path):
    import cells

    src = {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "a = 1\n"},
        {"cell_type": "markdown", "metadata": {}, "source": "# title"},
        {"cell_type": "code", "metadata": {}, "source": "# note\nb = a + 1\n"},
    ]}
    (tmp_path / "nb.ipynb").write_text(json.dumps(src))
    cells._notebook_with_profiler(tmp_path / "nb.ipynb", tmp_path / "p.ipynb")
    nb = json.loads((tmp_path / "p.ipynb").read_text())
    assert nb["cells"][1]["metadata"]["tags"] == ["exr-profile"]
    assert "register(\"post_run_cell\"" in nb["cells"][1]["source"]
    # as papermill writes it: injected parameters after the parameters cell, durations
    nb["cells"].insert(1, {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]},
                           "source": "a = 2\n"})
    for i, c in enumerate(nb["cells"]):
        c["metadata"]["papermill"] = {"duration": float(i)}
    (tmp_path / "done.ipynb").write_text(json.dumps(nb))
    assert cells.durations(tmp_path / "done.ipynb") == [
        {"index": 4, "line": "b = a + 1", "duration": 4.0}]


def test_report_cpu_hook_times_the_cells_after_it(tmp_path):
    """bench/report_cpu.py: the hook cell goes right after the parameters, is removed from
    the page, labels the cells it times in order, and its IPython hooks write one CPU
    record per later cell (the hook cell's own end is not one)."""
    import report_cpu

    src = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# t"},
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "a = 1\n"},
        {"cell_type": "code", "metadata": {}, "source": ["# why\n", "b = a + 1\n"]},
        {"cell_type": "markdown", "metadata": {}, "source": "text"},
        {"cell_type": "code", "metadata": {}, "source": "c = b * 2"},
    ]}
    text, labels = report_cpu.hooked_notebook(json.dumps(src), tmp_path, False)
    nb = json.loads(text)
    hook = nb["cells"][2]
    assert hook["metadata"]["tags"] == ["remove-cell"] and f"{str(tmp_path)!r}" in hook["source"]
    assert labels == ["2: b = a + 1", "4: c = b * 2"]

    class Events:
        def __init__(self):
            self.hooks = {}

        def register(self, name, fn):
            self.hooks[name] = fn

    events = Events()
    shell = type("Shell", (), {"events": events})()
    namespace = {"get_ipython": lambda: shell}
    exec(hook["source"], namespace)  # noqa: S102 - the cell as the kernel runs it
    events.hooks["post_run_cell"](None)  # the hook cell's own end: not timed
    for _ in labels:
        events.hooks["pre_run_cell"](None)
        sum(range(10 ** 5))
        events.hooks["post_run_cell"](None)
    rows = json.loads((tmp_path / "cells.json").read_text())
    assert [r["n"] for r in rows] == [0, 1]
    assert all(r["cpu"] >= 0 and r["kernel_cpu"] >= r["cpu"] for r in rows)


def test_profiled_functions_show_no_machine_folders():
    import cells

    assert cells._short("/x/.venv/lib/python3.11/site-packages/matplotlib/figure.py") == \
        "matplotlib/figure.py"
    assert cells._short("/tmp/w3/snapshot/exresearch/report/loop.py") == "exresearch/report/loop.py"
    assert cells._short("/root/.pyenv/versions/3.11.7/lib/python3.11/importlib/__init__.py") \
        == "importlib/__init__.py"


def test_figure_bench_times_both_renderers_and_checks_their_pixels(tmp_path):
    """bench/figures.py on a two-cell notebook: the figure each cell leaves open, both
    figure_png versions timed per call, identical pixels and alt text, the table."""
    import figures

    src = {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "n = 3\n"},
        {"cell_type": "code", "metadata": {}, "source":
            "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
            "ax.bar(['a', 'b'], [1, n]); ax.set_title('T')\nplt.show()\n"},
        {"cell_type": "code", "metadata": {}, "source": "m = n + 1\n"},
    ]}
    (tmp_path / "nb.ipynb").write_text(json.dumps(src))
    figs = figures.report_figures(tmp_path / "nb.ipynb", {"n": 5})
    assert [i for i, _ in figs] == [1]
    rows = figures.compare(figs, repeats=2)
    assert len(rows) == 1 and len(rows[0]["previous"]) == len(rows[0]["current"]) == 2
    assert rows[0]["same_pixels"] and rows[0]["same_alt"]
    assert rows[0]["alt"] == "Chart: T. Bars: a 1, b 5."
    md = figures.to_markdown(rows)
    assert md[2].startswith("| 1 | Chart: T. Bars: a 1, b 5. |") and "| yes, yes |" in md[2]
    assert md[-1].startswith("| all | 1 figures |") and "1/1 identical" in md[-1]
    costs = figures.cell_costs(tmp_path / "nb.ipynb", {"n": 5}, encode=lambda fig: None)
    assert [(c["index"], c["figures"]) for c in costs] == [(0, 0), (1, 1), (2, 0)]
    assert costs[2]["line"] == "m = n + 1" and all(c["cpu"] >= 0 for c in costs)
    slow = [{**c, "cpu": 2 * c["cpu"] + 0.5} for c in costs]
    table = figures.cells_markdown({"previous": [slow], "current": [costs]}, skip=1)
    assert [ln.split(" | ")[0] for ln in table[2:]] == [
        "| 1", "| 2", "| cells with figures", "| cells without figures",
        "| all cells after the imports"]
    assert table[2].startswith("| 1 | `import matplotlib.pyplot as plt` | 1 | ")
    assert all(float(ln.rstrip(" |").rsplit("| ", 1)[1]) < 1 for ln in table[2:])


@pytest.mark.slow
def test_run_tiny_measurement_cases_writes_results(tmp_path):
    out = tmp_path / "results.md"
    before = os.environ.get("PYTHONPATH")
    rc = run.main(["--preset", "tiny", "--cases", "B3,B3L,B4", "--work", str(tmp_path / "w"),
                   "--out", str(out), "--json", str(tmp_path / "r.json")])
    assert rc == 0
    assert os.environ.get("PYTHONPATH") == before  # the snapshot path is not left behind
    assert (tmp_path / "w" / "snapshot" / "exresearch" / "aggregate.py").is_file()
    text = out.read_text()
    _check_results_md(text, ["B3", "B3L", "B4"])
    assert "**load_study / raw read: " in text  # B3L ran both kinds on the tiny study
    assert "every case ran a copy of `exresearch/`" in text
    assert "**Speed-up:" in text and "Reading the files" in text
    assert text.count("| 120 |") + text.count("| 240 |") == 2  # the two B4 sizes
    raw = json.loads((tmp_path / "r.json").read_text())
    b3 = raw["results"]["B3"]
    assert b3["rows"] == 3 * 6 * 20 and b3["baseline_clients"] == 1
    assert b3["extrapolation"] == pytest.approx(3.0, rel=0.3)
    assert max(b3["diffs"].values()) < 1e-9
    assert set(b3["reading"]) == {"read_csv", "read_parquet", "load_csv", "load_parquet"}
    assert [s["rows"] for s in raw["results"]["B4"]["sizes"]] == [120, 240]


@pytest.mark.slow
def test_run_tiny_build_cases_writes_results(tmp_path, monkeypatch):
    monkeypatch.setenv("EXRESEARCH_NOTEBOOKS",
                       str(Path(__file__).resolve().parent / "notebooks"))
    out = tmp_path / "results.md"
    rc = run.main(["--preset", "tiny", "--cases", "B1,B2,B5,B7", "--work", str(tmp_path / "w"),
                   "--out", str(out), "--json", str(tmp_path / "r.json")])
    assert rc == 0
    text = out.read_text()
    _check_results_md(text, ["B1", "B2", "B5", "B7"])
    raw = json.loads((tmp_path / "r.json").read_text())["results"]
    assert raw["B1"]["reports"] == 4 and raw["B1"]["baseline"][0]["html_files"] == 4
    assert all(x["executed"] == 4 for x in raw["B1"]["builds"])
    assert all(x["executed"] == 0 for x in raw["B2"]["nochange"])
    assert raw["B2"]["touched"]["executed"] == 0
    assert all(x["executed"] == 3 for x in raw["B2"]["changed"])  # client + 2 study reports
    assert raw["B5"]["cold"][0]["imports_ok"] is True
    # B7: every code cell timed, each paired with its profile (functions found in it)
    b7 = raw["B7"]["report"]["cells"]
    assert b7 and all(c["duration"] is not None and c["top"] for c in b7)
    assert len(raw["B7"]["forked"]) == len(b7)  # the same cells in B1's build
    assert len(raw["B7"]["statistics"]["correlation_table_30"]) == 5


@pytest.mark.slow
def test_b6_scale_script_runs_and_writes_a_row_per_size(tmp_path, monkeypatch):
    import b6_scale

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("EXRESEARCH_NOTEBOOKS", str(Path(__file__).parent / "notebooks"))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    md, raw = tmp_path / "b6.md", tmp_path / "b6.json"
    assert b6_scale.main(["--sizes", "2", "--units", "6", "--periods", "2", "--jobs", "2",
                          "--md", str(md), "--json", str(raw)]) == 0
    results = json.loads(raw.read_text())["results"]
    assert [r["clients"] for r in results] == [2]
    for r in results:
        assert len(r["full"]["durations"]) == r["clients"] + 2
        assert sorted(r["full"]["executed"]) == sorted(r["full"]["durations"])
        assert r["changed"]["executed"][:2] == ["synthesis", "data-quality"]
        assert len(r["changed"]["executed"]) == 3 and r["full"]["failed"] == []
        assert r["full"]["peak_pss"] > 0
    text = md.read_text()
    assert "| 2 x 6 x 2 | 4 |" in text
    r = results[-1]  # the host's speed divided out: wall times in median client reports
    unit = r["client_report_median"]
    assert (f"full build {r['full']['wall'] / unit:.0f}, one client changed "
            f"{r['changed']['wall'] / unit:.1f}.") in text
    # the re-run reports in order, each with its run time (b6_scale's row since the cache)
    assert re.search(r"\(synthesis [\d.]+ m?s, data-quality [\d.]+ m?s, "
                     r"client-client-02 [\d.]+ m?s\)", text), text


def test_b6_benchmark_script_same_table_both_ways(tmp_path, monkeypatch, capsys):
    import b6_benchmark

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    # asserts inside that the looked-up benchmark equals the recomputed one
    assert b6_benchmark.main(["--sizes", "5", "--clients", "2", "--units", "8",
                              "--periods", "2"]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| 5 |")]
    assert len(rows) == 1 and rows[0].count("|") == 6
    assert (tmp_path / "exresearch-bench" / "b6" / "study-5x8x2" / "study.yml").is_file()


def test_b6_synthesis_script_times_every_cell(tmp_path, monkeypatch):
    import b6_synthesis

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    md, raw = tmp_path / "syn.md", tmp_path / "syn.json"
    assert b6_synthesis.main(["--sizes", "4", "--units", "10", "--periods", "2", "--runs", "2",
                              "--profile", "--md", str(md), "--json", str(raw)]) == 0
    results = json.loads(raw.read_text())
    assert [(r["clients"], r["run"]) for r in results] == [(4, 1), (4, 2)]
    nb = json.loads((b6_synthesis.ROOT / "notebooks" / "synthesis.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"
            and "parameters" not in (c.get("metadata", {}).get("tags") or [])]
    for r in results:  # one timing per code cell after the parameters, in order
        assert len(r["cells"]) == len(code)
        assert [c["index"] for c in r["cells"]] == list(range(len(code)))
        assert all(c["cpu"] >= 0 and c["wall"] > 0 for c in r["cells"])
        assert r["exresearch"].startswith(str(b6_synthesis.ROOT))
    assert results[1]["cells"][0].get("top")  # the last run is profiled
    assert "run 2 (warm cache)" in md.read_text()
    cache = tmp_path / "exresearch-bench" / "b6" / "cache-synthesis" / "summaries"
    assert any(cache.rglob("*.pkl"))  # the per-client parts went to the script's cache


def test_b6_extras_script_times_the_extras_of_a_built_site(tmp_path, monkeypatch):
    import tempfile

    import b6_extras

    from exresearch import build
    from exresearch.simulate import simulate_study

    monkeypatch.setenv("EXRESEARCH_NOTEBOOKS", str(Path(__file__).parent / "notebooks"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    study = simulate_study(tmp_path / "study", n_clients=2, n_units=6, n_periods=2, seed=3)
    site = tmp_path / "site"
    assert build.build_site(study, out=site, jobs=2, progress=False, pdf=False).exit_code == 0
    wrote = sorted(p.name for p in (site / "workbooks").iterdir())
    md = tmp_path / "x.md"
    assert b6_extras.main(["--site", str(site), "--study", str(study), "--repeat", "1",
                           "--no-pdf", "--code", f"a={b6_extras.ROOT}",
                           "--code", f"b={b6_extras.ROOT}", "--out", str(md)]) == 0
    rows = [line for line in md.read_text().splitlines() if line.startswith("| a ")
            or line.startswith("| b ")]
    assert len(rows) == 2, md.read_text()
    n = len(wrote)
    assert f"| {n}, " in rows[0] and f"| {n}, " in rows[1]  # every workbook written again
    assert "| 0, 0.00 | reference |" in rows[0] and "| 0, 0.00 | yes |" in rows[1]
    assert not list(tmp_path.glob("exr-x*"))  # its copies of the site are removed


def test_b6_extras_script_restricted_to_some_reports(tmp_path, monkeypatch):
    import tempfile

    import b6_extras

    from exresearch import build
    from exresearch.simulate import simulate_study

    monkeypatch.setenv("EXRESEARCH_NOTEBOOKS", str(Path(__file__).parent / "notebooks"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    study = simulate_study(tmp_path / "study", n_clients=2, n_units=6, n_periods=2, seed=3)
    site = tmp_path / "site"
    assert build.build_site(study, out=site, jobs=2, progress=False, pdf=False).exit_code == 0
    assert len(list((site / "workbooks").iterdir())) > 1
    md = tmp_path / "x.md"
    assert b6_extras.main(["--site", str(site), "--study", str(study), "--repeat", "1",
                           "--no-pdf", "--reports", "synthesis", "--out", str(md)]) == 0
    row = next(line for line in md.read_text().splitlines() if line.startswith("| this "))
    assert row.split(" | ")[5].startswith("1, ")  # one workbook: the synthesis's


def test_site_diff_leaves_out_build_times_styler_ids_and_run_times(tmp_path):
    import site_diff

    a, b = tmp_path / "a", tmp_path / "b"
    for site, (built, uuid, run_time, commit) in ((a, ("2026-12-03T06:00:00Z", "1a2b3", "2.5 s",
                                                       "e906113")),
                                                  (b, ("2026-12-03T07:00:01Z", "ffff0", "3.1 s",
                                                       "1b566b3"))):
        (site / "reports").mkdir(parents=True)
        (site / "reports" / "x.html").write_text(
            f'<table id="T_{uuid}"><td id="T_{uuid}_row0_col0">1</td></table><dl><dt>built'
            f"</dt><dd>{built}</dd><dt>run time</dt><dd>{run_time}</dd><dt>git commit</dt>"
            f"<dd>{commit}</dd></dl>")
        (site / "manifest.json").write_text(json.dumps(
            {"built": built, "git_commit": commit, "reports": [{"key": "x", "duration": 1.0,
                                                               "fingerprint": commit}]}))
        (site / ".exresearch").mkdir()
        (site / ".exresearch" / "state.json").write_text(built)  # the build's own: left out
    assert site_diff.main([str(a), str(b)]) == 0
    (b / "reports" / "x.html").write_text((b / "reports" / "x.html").read_text()
                                          .replace(">1<", ">2<"))
    (b / "extra.csv").write_text("a\n")
    assert site_diff.main([str(a), str(b), "--list", str(tmp_path / "la"),
                           str(tmp_path / "lb")]) == 1
    assert "reports/x.html" in (tmp_path / "lb").read_text()


def test_print_lanes_flags_wrap_launch_goto_pdf_and_context(monkeypatch):
    import asyncio

    import print_lanes
    from playwright import async_api

    calls = []

    async def fake(name, *args, **kw):
        calls.append((name, args[1:], kw))

    for cls, name in [(async_api.BrowserType, "launch"), (async_api.Page, "goto"),
                      (async_api.Page, "pdf"), (async_api.Browser, "new_context")]:
        monkeypatch.setattr(cls, name, lambda *a, _n=name, **kw: fake(_n, *a, **kw))
    print_lanes._apply_flags("--in-process-gpu no:--enable-unsafe-swiftshader "
                             "pdf:tagged=false wait:domcontentloaded media-first vp:800x600")

    page = SimpleNamespace(emulate_media=lambda **kw: fake("emulate_media", None, **kw))

    async def use():
        await async_api.BrowserType.launch(None, args=["--no-sandbox"])
        await async_api.Browser.new_context(None, bypass_csp=True)
        await async_api.Page.goto(page, "file:///x.html", wait_until="load")
        await async_api.Page.pdf(page, path="x.pdf", tagged=True)
    asyncio.run(use())
    assert calls == [
        ("launch", (), {"args": ["--no-sandbox", "--in-process-gpu"],
                        "ignore_default_args": ["--enable-unsafe-swiftshader"]}),
        ("new_context", (), {"bypass_csp": True, "viewport": {"width": 800, "height": 600}}),
        ("emulate_media", (), {"media": "print"}),
        ("goto", ("file:///x.html",), {"wait_until": "domcontentloaded"}),
        ("pdf", (), {"path": "x.pdf", "tagged": False})]


def test_print_lanes_flags_refuse_an_unknown_token():
    import print_lanes

    with pytest.raises(ValueError, match="unknown --flags tokens \\['in-process-gpu'\\]"):
        print_lanes._apply_flags("in-process-gpu")
    print_lanes._apply_flags("")  # nothing to change: nothing wrapped


def test_print_lanes_pages_alternate_reports_and_briefs_or_take_one_kind(tmp_path):
    import print_lanes

    for kind, names in [("reports", "abc"), ("briefs", "ab")]:
        (tmp_path / kind).mkdir()
        for name in names:
            (tmp_path / kind / f"{name}.html").write_text("<p>x</p>")
    (tmp_path / "big.html").write_text("<p>x</p>")

    def pages(**kw):
        return [str(Path(p).relative_to(tmp_path)) for p in
                print_lanes._site_pages(tmp_path, **kw)]
    assert pages(n=16) == ["reports/a.html", "briefs/a.html", "reports/b.html",
                           "briefs/b.html", "reports/c.html"]
    assert pages(n=3, include=["big.html"]) == ["reports/a.html", "briefs/a.html",
                                                "reports/b.html", "big.html"]
    assert pages(n=2, only="reports") == ["reports/a.html", "reports/b.html"]
    assert pages(n=16, only="briefs") == ["briefs/a.html", "briefs/b.html"]
    assert pages(n=0, include=["big.html"]) == ["big.html"]


def test_print_interleaved_tree_cpu_counts_a_busy_child_and_this_process():
    import subprocess
    import time

    import print_interleaved

    t0 = time.process_time()
    first = print_interleaved.tree_cpu()
    assert first >= t0
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.4: pass\n"
                              "time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while print_interleaved.tree_cpu() - first < 0.35 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert print_interleaved.tree_cpu() - first >= 0.35  # the child's, while it lives
    finally:
        child.kill()
        child.wait()


def test_print_interleaved_summary_pairs_the_prints():
    import print_interleaved

    s = print_interleaved.summary([1.0, 1.2, 1.1, 0.9], [0.9, 1.0, 1.2, 0.8])
    assert s["n"] == 4 and s["cheaper"] == 3
    assert s["a"] == pytest.approx(1.05) and s["b"] == pytest.approx(0.975)
    assert s["diff"] == pytest.approx(-0.075)
    assert s["se"] == pytest.approx(np.std([-0.1, -0.2, 0.1, -0.1], ddof=1) / 2)
    assert s["pct"] == pytest.approx(-0.075 / 1.05 * 100)
    with pytest.raises(ValueError, match="need two equal lists of at least 2 prints, got 2 "
                                         "and 1"):
        print_interleaved.summary([1.0, 2.0], [1.0])
