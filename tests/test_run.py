"""`exresearch run NOTEBOOK -p NAME VALUE --out DIR`: one report, written only into DIR.

Argument errors are checked without executing anything (fast); two slow tests execute
the client report on the small study through the CLI: one that succeeds (files only
in DIR, the page offline like the build's) and one whose parameter the notebook
rejects (exit 1, the error on the page). What a re-run replaces is checked with the
executor replaced by fixed results.
"""

from __future__ import annotations

import doctest
import json
import re

import pytest

from exresearch import cli, config
from exresearch import run as run_module
from exresearch.exceptions import ParameterError
from exresearch.run import parse_parameters, resolve_notebook, run_notebook
from exresearch.site import CSP

DECLARED = {"study_path": "str", "client_id": "str", "n_boot": "int", "alpha": "float",
            "flag": "bool", "lags": "list[int]", "output_dir": "str"}


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_run_doctests():
    res = doctest.testmod(run_module, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 6 and res.failed == 0


def test_parameters_are_typed_by_the_notebook_declaration():
    got = parse_parameters([("client_id", "007"), ("n_boot", "300"), ("alpha", "1"),
                            ("flag", "false"), ("lags", "[0, 2]"), ("study_path", "a b")],
                           declared=DECLARED)
    assert got == {"client_id": "007", "n_boot": 300, "alpha": 1.0, "flag": False,
                   "lags": [0, 2], "study_path": "a b"}
    assert isinstance(got["alpha"], float)


def test_every_bad_parameter_is_reported_at_once():
    with pytest.raises(ParameterError) as err:
        parse_parameters([("nboot", "3"), ("n_boot", "3.5"), ("flag", "yes please"),
                          ("lags", "0"), ("output_dir", "x")], declared=DECLARED)
    assert str(err.value) == (
        "5 problems with -p: nboot: not a parameter of the notebook; its parameters are "
        "['alpha', 'client_id', 'flag', 'lags', 'n_boot', 'study_path']; "
        "n_boot: expected int, but '3.5' was passed; "
        "flag: expected bool, but 'yes please' was passed; "
        "lags: expected list[int], but '0' was passed; "
        "output_dir: cannot be set with -p: the tables go to DIR/tables/<notebook>/ "
        "(set by --out)")


def test_notebooks_are_found_by_name_or_path(tmp_path):
    nb = config.notebooks_dir() / "planning.ipynb"
    assert resolve_notebook("planning") == nb
    assert resolve_notebook("planning.ipynb") == nb
    assert resolve_notebook("notebooks/planning.ipynb") == nb
    assert resolve_notebook(nb) == nb
    with pytest.raises(ParameterError, match=r"`notebook` must be an \.ipynb file or one of "
                                             r"\['client_report', 'data_quality', 'planning', "
                                             r"'synthesis'\], but 'other/planning' was passed"):
        resolve_notebook("other/planning")


def test_cli_lists_parameters_without_running(capsys):
    assert cli.main(["run", "client_report"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("client_report.ipynb: parameters (set with -p NAME VALUE; "
                                   "add --out DIR to run)")
    assert '  client_id: str = ""' in out and "  n_boot: int = 1000" in out
    assert re.search(r"  output_dir: str = \"\"  \(set by --out\)", out)
    assert max(len(line) for line in out.splitlines()) <= 88


def test_cli_reports_bad_parameters_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["run", "client_report", "-p", "n_boot", "many", "-p", "clientid", "x",
                     "--out", str(out)])
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err == (
        "error: 2 problems with -p: n_boot: expected int, but 'many' was passed; clientid: "
        "not a parameter of the notebook; its parameters are ['client_id', 'lags', 'n_boot', "
        "'projection_periods', 'study_path']\n")


def test_out_inside_the_study_or_a_foreign_folder_is_refused(small_study, tmp_path):
    with pytest.raises(ParameterError, match=r"`out` must be outside the study folder \(inputs "
                                             r"are never written\), but '.*/results' is inside"):
        run_notebook("client_report", out=small_study / "results",
                     parameters={"study_path": str(small_study)})
    assert not (small_study / "results").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(ParameterError, match=r"`out` must be a new or empty folder, or one an "
                                             r"earlier `exresearch run` wrote, but '.*mine' "
                                             r"holds other files; choose another folder"):
        run_notebook("client_report", out=foreign, parameters={"study_path": str(small_study)})
    assert _files(foreign) == ["notes.txt"]
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(ParameterError, match=r"`out` must be a folder, but '.*a-file' is a file"):
        run_notebook("planning", out=afile, parameters={"study_path": str(small_study)})


def test_a_rerun_replaces_only_what_the_last_run_of_that_notebook_wrote(
        small_study, tmp_path, monkeypatch):
    """The writing side, with the executor replaced by one returning fixed results."""
    from exresearch import build

    results = {}

    def fake_execute(task, *, kernels="subprocess"):
        assert task["index_href"] is None and task["css_href"] == "assets/site.css"
        assert kernels == "subprocess"
        return results[task["key"]]

    monkeypatch.setattr(build, "execute_report", fake_execute)
    out = tmp_path / "out"
    params = {"study_path": str(small_study)}
    results["planning"] = {"status": "ok", "error": None, "html": "<p>1</p>",
                           "notebook": "{}", "tables": {"a.csv": b"1", "old.csv": b"x"}}
    run_notebook("planning", out=out, parameters=params)
    results["data_quality"] = {"status": "ok", "error": None, "html": "<p>dq</p>",
                               "notebook": "{}", "tables": {"q.csv": b"q"}}
    run_notebook("data_quality", out=out, parameters=params)
    (out / "notes.txt").write_text("mine")
    results["planning"] = {"status": "failed", "error": "ValueError: boom",
                           "html": "<p>2</p>", "notebook": None, "tables": {"a.csv": b"2"}}
    res = run_notebook("planning", out=out, parameters=params)
    assert res.status == "failed" and res.error == "ValueError: boom" and res.notebook is None
    assert _files(out) == [".exresearch-run.json", "assets", "assets/site.css",
                           "data_quality.html", "data_quality.ipynb",
                           "notes.txt", "planning.html", "tables", "tables/data_quality",
                           "tables/data_quality/q.csv", "tables/planning",
                           "tables/planning/a.csv"]
    assert (out / "planning.html").read_text() == "<p>2</p>"
    assert (out / "tables/planning/a.csv").read_text() == "2"
    runs = json.loads((out / ".exresearch-run.json").read_text())["runs"]
    assert runs["planning"]["files"] == ["planning.html", "assets/site.css",
                                         "tables/planning/a.csv"]
    assert runs["planning"]["status"] == "failed"
    assert runs["data_quality"]["files"] == ["data_quality.ipynb", "data_quality.html",
                                             "assets/site.css", "tables/data_quality/q.csv"]


@pytest.mark.slow
def test_run_writes_only_into_out_and_renders_like_the_build(small_study, tmp_path,
                                                             monkeypatch, capsys):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    repo_before = {d: _files(config.ROOT / d) for d in ("notebooks", "reports")}
    args = ["run", "client_report", "-p", "study_path", str(small_study), "-p", "client_id",
            "client-02", "-p", "n_boot", "100", "--out", "out"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out.splitlines()
    out = work / "out"
    assert printed[:2] == [str(out / "client_report.ipynb"), str(out / "client_report.html")]
    assert _files(work) == ["out", *[f"out/{f}" for f in _files(out)]]
    assert {d: _files(config.ROOT / d) for d in ("notebooks", "reports")} == repo_before
    files = _files(out)
    assert {".exresearch-run.json", "client_report.html", "client_report.ipynb",
            "tables", "tables/client_report", "tables/client_report/findings.csv"} <= set(files)
    marker = json.loads((out / ".exresearch-run.json").read_text())["runs"]
    assert list(marker) == ["client_report"]
    assert marker["client_report"]["status"] == "ok"
    assert marker["client_report"]["parameters"]["n_boot"] == "100"
    assert set(marker["client_report"]["files"]) == {
        f for f in files if (out / f).is_file()} - {".exresearch-run.json"}

    page = (out / "client_report.html").read_text(encoding="utf-8")
    assert f'content="{CSP}"' in page
    assert not re.search(r"""(src|href)\s*=\s*["']https?:""", page)
    assert "<script" not in page.lower()
    assert re.search(r'<link[^>]*href="assets/site\.css"', page)
    assert (out / "assets" / "site.css").is_file()
    assert "All reports" not in page  # a page on its own, not in a site
    assert "data:image/png;base64," in page  # figures embedded
    assert "client_id" not in page.split("<footer")[0]  # parameters cell hidden
    nb = json.loads((out / "client_report.ipynb").read_text(encoding="utf-8"))
    assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    assert str(tmp_path) not in json.dumps(nb["cells"][-3:])


@pytest.mark.slow
def test_a_rejected_parameter_fails_with_the_notebooks_message(small_study, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["run", "client_report", "-p", "study_path", str(small_study),
                     "-p", "client_id", "nobody", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("failed: ParameterError: `client_id` must be one of the study's "
                          "clients")
    assert "client-01" in err and "nobody" in err
    page = (out / "client_report.html").read_text(encoding="utf-8")
    assert "nobody" in page and "ParameterError" in page
    assert json.loads((out / ".exresearch-run.json").read_text())["runs"]["client_report"][
        "status"] == "failed"
