"""Tests for exresearch.build: parallel, incremental, fault-tolerant site builds.

The end-to-end tests run the tiny notebooks in ``tests/notebooks`` (same names and
parameters as the real ones) on a small simulated study.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from exresearch import build
from exresearch.build import build_site
from exresearch.exceptions import BuildError, ParameterError, StudyValidationError

NOTEBOOKS = Path(__file__).parent / "notebooks"
#: an element that loads a resource from another machine
REMOTE = re.compile(r"<(?:script|link|img|iframe|source|video|audio|embed|object)\b[^>]*"
                    r"\b(?:src|href|data)\s*=\s*[\"']?\s*(?:https?:)?//", re.I)


@pytest.fixture(scope="module")
def base_study(tmp_path_factory):
    from exresearch.simulate import simulate_study

    return simulate_study(tmp_path_factory.mktemp("bstudy") / "study", n_clients=3, n_units=6,
                          n_periods=2, seed=7)


@pytest.fixture
def study(base_study, tmp_path):
    """A private copy of the small study (tests modify it)."""
    dest = tmp_path / "study"
    shutil.copytree(base_study, dest)
    return dest


@pytest.fixture
def env(monkeypatch):
    """Test notebooks, and a source hash that other engineers' edits cannot change."""
    monkeypatch.setenv("EXRESEARCH_NOTEBOOKS", str(NOTEBOOKS))
    monkeypatch.setattr(build, "_source_hash", lambda: "test-source")
    return monkeypatch


def _tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _outputs(nb_path: Path) -> list:
    """Every text output of an executed notebook (numbers as shown to the reader)."""
    nb = nbformat.read(nb_path, as_version=4)
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            out.append((data.get("text/plain"), data.get("text/html"), o.get("text")))
    return out


# ----------------------------------------------------------------- fast checks
def test_out_inside_study_is_refused(study, env):
    with pytest.raises(ParameterError, match="`out` must be outside the study folder"):
        build_site(study, out=study / "site")
    assert not (study / "site").exists()


def test_foreign_non_empty_out_is_refused(study, env, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("precious")
    with pytest.raises(BuildError, match="refusing to replace .*not written by `exresearch build`"):
        build_site(study, out=out)
    assert (out / "thesis.docx").read_text() == "precious"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"executor": "spark"}, r"`executor` must be one of \['local', 'dask'\], but 'spark'"),
        ({"jobs": 0}, r"`jobs` must be a positive integer, but 0 was passed"),
        ({"only": ["nobody"]}, r"`only` must name clients of the study, one of "
                               r"\['client-01', 'client-02', 'client-03'\], but 'nobody'"),
    ],
)
def test_bad_arguments_name_the_parameter(study, env, tmp_path, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        build_site(study, out=tmp_path / "site", progress=False, **kwargs)
    assert not (tmp_path / "site").exists()


def test_invalid_study_writes_nothing_and_cli_exits_2(study, env, tmp_path, capsys):
    from exresearch.cli import main

    text = (study / "study.yml").read_text()
    (study / "study.yml").write_text(text.replace("min_group_size: 5", "min_group_size: 1"))
    with pytest.raises(StudyValidationError):
        build_site(study, out=tmp_path / "site", progress=False)
    assert main(["build", str(study), "--out", str(tmp_path / "site")]) == 2
    assert "min_group_size" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["study"]


def test_missing_notebook_is_a_build_error(study, env, tmp_path):
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    shutil.copy(NOTEBOOKS / "client_report.ipynb", nb_dir)
    env.setenv("EXRESEARCH_NOTEBOOKS", str(nb_dir))
    with pytest.raises(BuildError, match=r"notebooks missing in .*\['synthesis.ipynb', "
                                         r"'data_quality.ipynb'\]; run from a source "
                                         r"checkout .* or set EXRESEARCH_NOTEBOOKS"):
        build_site(study, out=tmp_path / "site", progress=False)


def test_publish_swaps_atomically_and_cleans_dead_staging(tmp_path):
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("old")
    staging = tmp_path / ".site.exr-tmp-1-x"
    staging.mkdir()
    (staging / "index.html").write_text("new")
    build._publish(staging, out)
    assert (out / "index.html").read_text() == "new"
    assert not staging.exists()
    # a staging folder left by a killed build (dead pid) is removed, a live one is kept
    dead = tmp_path / ".site.exr-tmp-999999999-ab"
    dead.mkdir()
    live = tmp_path / f".site.exr-tmp-{os.getppid()}-cd"
    live.mkdir()
    build._cleanup_stale(out)
    assert not dead.exists()
    assert live.exists()
    # a site lost between the two renames of the fallback is restored
    shutil.rmtree(live)
    old = tmp_path / ".site.exr-old-999999999"
    out.rename(old)
    build._cleanup_stale(out)
    assert (out / "index.html").read_text() == "new"


def test_fast_path_needs_previous_state(study, env, tmp_path):
    assert build._fast_path(study.resolve(), tmp_path / "none", False, None, 0.0) is None


# ----------------------------------------------------------------- end to end
@pytest.mark.slow
def test_build_end_to_end_incremental_and_reproducible(study, env, tmp_path):
    from exresearch.study import load_study

    out = tmp_path / "site"
    res = build_site(study, out=out, jobs=2, progress=False)
    assert res.exit_code == 0, [(r.key, r.error) for r in res.reports]
    assert res.index == out.resolve() / "index.html"
    keys = ["synthesis", "data-quality", "client-client-01", "client-client-02",
            "client-client-03"]
    assert [r.key for r in res.reports] == keys
    assert sorted(res.executed) == sorted(keys)

    # manifest: every report with kind, client id, html, status, duration, parameters, hashes
    manifest = json.loads((out / "manifest.json").read_text())
    st = load_study(study)
    by_key = {r["key"]: r for r in manifest["reports"]}
    c2 = by_key["client-client-02"]
    assert c2["kind"] == "client" and c2["client_id"] == "client-02"
    assert c2["status"] == "ok" and c2["duration"] > 0
    # the study folder by name only: no absolute path of the build machine is published
    assert c2["parameters"] == {"study_path": study.name, "client_id": "client-02"}
    assert str(study.resolve()) not in (out / "manifest.json").read_text()
    assert c2["inputs"] == {k: v for k, v in st.hashes.items()
                            if k == "study.yml" or k.startswith("clients/client-02/")}
    assert by_key["synthesis"]["inputs"] == st.hashes
    # the kernels got the study validated once by the build (forked from the zygote)
    hashes = pd.read_csv(out / "tables" / "data-quality" / "hashes.csv")
    assert dict(zip(hashes["file"], hashes["sha256"], strict=True)) == st.hashes
    assert "validated by the build: True" in str(_outputs(out / "notebooks" / "data-quality.ipynb"))
    assert (out / c2["html"]).is_file()

    # the CSV written by the notebook, checked against pandas directly
    survey = pd.read_csv(study / "clients" / "client-02" / "survey.csv",
                         dtype={"unit_id": str})
    items = [c for c in survey.columns if c not in ("unit_id", "period", "respondent_id")]
    expected = survey.assign(s=survey[items].mean(axis=1)).groupby("unit_id")["s"].mean() / 3
    table = pd.read_csv(out / "tables" / "client-client-02" / "unit_means.csv",
                        dtype={"unit_id": str}).set_index("unit_id")["mean"]
    pd.testing.assert_series_equal(table, expected, check_names=False, rtol=1e-15)

    # the report page: no code, no parameters, embedded figure, TOC, provenance
    html = (out / c2["html"]).read_text()
    assert "read_csv" not in html and "client_id = " not in html
    assert 'src="data:image/png;base64,' in html
    assert '<nav class="exr-toc">' in html and 'href="#Unit-means"' in html
    assert st.config.name in html and st.hashes["clients/client-02/survey.csv"] in html
    assert "exresearch version" in html and "pandas" in html
    # the index: names, links, headline from the synthesis' headline.csv
    index = res.index.read_text()
    assert 'href="reports/client-client-02.html"' in index
    assert 'href="tables/client-client-02/unit_means.csv" download' in index
    assert "Pooled mean" in index and ">3<" in index
    assert 'id="exr-q"' in index

    # no page loads anything from the network
    for page in [res.index, *(out / "reports").glob("*.html")]:
        assert REMOTE.findall(page.read_text()) == [], page

    # nothing changed: nothing executed, no kernel (its time is bench B2's, `make bench`)
    first_csvs = {p.name + str(i): p.read_bytes()
                  for i, p in enumerate(sorted((out / "tables").rglob("*.csv")))}
    first_outputs = {k: _outputs(out / "notebooks" / f"{k}.ipynb") for k in keys}
    again = build_site(study, out=out, progress=False)
    assert again.executed == [] and again.exit_code == 0
    # the build state names the study by a hash: no absolute path in the site at all, yet
    # the fast path recognises the study and hands back its real parameters
    state_text = (out / build.STATE_FILE).read_text()
    assert str(study.resolve()) not in state_text and str(out.resolve()) not in state_text
    assert {r.key: r.parameters for r in again.reports}["client-client-02"] == {
        "study_path": str(study.resolve()), "client_id": "client-02"}

    # one client's data changed: that client, the synthesis and data quality re-run
    path = study / "clients" / "client-02" / "survey.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))  # drop the last respondent
    res3 = build_site(study, out=out, progress=False)
    assert sorted(res3.executed) == ["client-client-02", "data-quality", "synthesis"]
    hashes = pd.read_csv(out / "tables" / "data-quality" / "hashes.csv")
    new_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    assert dict(zip(hashes["file"], hashes["sha256"], strict=True))[
        "clients/client-02/survey.csv"] == new_hash
    assert (out / "reports" / "client-client-01.html").is_file()
    # the exresearch source changed: everything is stale; --only runs just that client
    env.setattr(build, "_source_hash", lambda: "edited-source")
    res4 = build_site(study, out=out, progress=False, only=["client-01"])
    assert res4.executed == ["client-client-01"]
    assert {r.key: r.executed for r in res4.reports}["synthesis"] is False

    # two forced builds of the same inputs: byte-identical CSVs, identical numbers
    path.write_text("".join(lines))
    env.setattr(build, "_source_hash", lambda: "test-source")
    res5 = build_site(study, out=out, force=True, progress=False)
    assert sorted(res5.executed) == sorted(keys)
    csvs = {p.name + str(i): p.read_bytes()
            for i, p in enumerate(sorted((out / "tables").rglob("*.csv")))}
    assert csvs == first_csvs
    assert {k: _outputs(out / "notebooks" / f"{k}.ipynb") for k in keys} == first_outputs


@pytest.mark.slow
def test_failing_client_is_reported_and_others_published(study, env, tmp_path, capsys):
    # rename client-02 to fail-02: the test notebook raises for ids starting with "fail"
    yml = study / "study.yml"
    yml.write_text(yml.read_text().replace("client-02", "fail-02"))
    (study / "clients" / "client-02").rename(study / "clients" / "fail-02")
    out = tmp_path / "site"
    res = build_site(study, out=out, jobs=2, progress=False)
    assert res.exit_code == 1
    status = {r.key: r.status for r in res.reports}
    assert status == {"synthesis": "ok", "data-quality": "ok", "client-client-01": "ok",
                      "client-fail-02": "failed", "client-client-03": "ok"}
    failed = res.failed[0]
    assert failed.error == "RuntimeError: deliberate failure for fail-02"
    # the executed notebook is kept with papermill's error marker, and rendered
    nb = nbformat.read(out / failed.notebook, as_version=4)
    assert any("An Exception was encountered" in c.source for c in nb.cells)
    assert "deliberate failure for fail-02" in (out / failed.html).read_text()
    index = (out / "index.html").read_text()
    assert "1 report(s) failed" in index
    assert "RuntimeError: deliberate failure for fail-02" in index
    assert (out / "tables" / "client-client-01" / "unit_means.csv").is_file()
    # a rebuild (here through the CLI) retries the failed report only, and exits 1
    from exresearch.cli import main

    assert main(["build", str(study), "--out", str(out), "--jobs", "1"]) == 1
    assert capsys.readouterr().out.strip() == str(out.resolve() / "index.html")
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["key"] for r in manifest["reports"] if r["executed"]] == ["client-fail-02"]


@pytest.mark.slow
def test_interrupted_build_leaves_previous_site_intact(study, env, tmp_path):
    import signal
    import subprocess
    import sys

    out = tmp_path / "site"
    assert build_site(study, out=out, only=["client-01"], progress=False).exit_code == 0
    before = _tree(out)
    assert "reports/client-client-01.html" in before

    def interrupted(staging, out):
        raise KeyboardInterrupt  # e.g. Ctrl-C just before the swap

    env.setattr(build, "_publish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_site(study, out=out, force=True, only=["client-01"], progress=False)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "study"]  # no staging left

    def killed(task, *, kernels):
        raise KeyboardInterrupt  # interrupted while reports execute

    env.undo()
    env.setenv("EXRESEARCH_NOTEBOOKS", str(NOTEBOOKS))
    env.setattr(build, "_source_hash", lambda: "test-source")
    env.setattr(build, "execute_report", killed)
    with pytest.raises(KeyboardInterrupt):
        build_site(study, out=out, force=True, progress=False)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "study"]

    # a real Ctrl-C (SIGINT) while the reports of a CLI build execute
    env.undo()
    script = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from exresearch.cli import main\n"
        f"sys.exit(main(['build', {str(study)!r}, '--out', {str(out)!r}, '--force', "
        "'--jobs', '1']))\n"
    )
    log = tmp_path / "build.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", script], stderr=fh, stdout=fh,
                                env=dict(os.environ, EXRESEARCH_NOTEBOOKS=str(NOTEBOOKS)))
    try:
        deadline = time.monotonic() + 120
        while "[1/5]" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)  # wait until reports are being executed
        assert "[1/5]" in log.read_text()
        proc.send_signal(signal.SIGINT)
        t = time.monotonic()
        rc = proc.wait(timeout=60)
        stopped_after = time.monotonic() - t
    finally:
        proc.kill()
    assert rc != 0 and "KeyboardInterrupt" in log.read_text()
    assert stopped_after < 10  # running kernels are killed, not waited for
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build.log", "site", "study"]


@pytest.mark.slow
def test_kernels_fall_back_to_subprocesses_when_the_zygote_is_gone(study, env, tmp_path):
    pids = []

    def dead(self, *args):
        pids.append(self.proc.pid)
        raise BuildError("the kernel zygote process died")

    env.setattr(build._Zygote, "spawn", dead)
    res = build_site(study, out=tmp_path / "site", only=["client-01"], progress=False)
    assert res.exit_code == 0 and res.executed == ["client-client-01"]
    assert len(pids) == 1  # the zygote was asked, and the kernel still started
    assert (tmp_path / "site" / "tables" / "client-client-01" / "unit_means.csv").is_file()


@pytest.mark.slow
def test_dask_executor_on_local_cluster(study, env, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        res = build_site(study, out=tmp_path / "site", executor="dask",
                         scheduler=cluster.scheduler_address, progress=False)
    assert res.exit_code == 0, [(r.key, r.error) for r in res.reports]
    assert len(res.executed) == 5
    assert (tmp_path / "site" / "tables" / "synthesis" / "headline.csv").is_file()
    nb = tmp_path / "site" / "notebooks" / "data-quality.ipynb"
    assert "validated by the build: False" in str(_outputs(nb))  # plain kernels on workers


def test_unreadable_state_means_no_state(tmp_path):
    site = tmp_path / "site"
    (site / ".exresearch").mkdir(parents=True)
    (site / build.STATE_FILE).write_text(json.dumps({"version": 1, "reports": [{"bogus": 1}]}))
    assert build._read_state(site) is None
    (site / build.STATE_FILE).write_text("{not json")
    assert build._read_state(site) is None
    good = {"version": 1, "reports": [{"key": "synthesis", "kind": "synthesis",
                                       "client_id": None, "name": "S", "industry": None}]}
    (site / build.STATE_FILE).write_text(json.dumps(good))
    assert build._read_state(site)["reports"][0].status == "not built"


def test_state_names_the_study_by_a_hash_and_gives_its_path_back(tmp_path):
    from exresearch.build.plan import STUDY_PLACEHOLDER, state_records, study_token
    from exresearch.build.records import STATE_VERSION, ReportRecord

    site, study = tmp_path / "site", (tmp_path / "my-study").resolve()
    (site / ".exresearch").mkdir(parents=True)
    rec = ReportRecord(key="client-a", kind="client", client_id="a", name="A", industry=None,
                       parameters={"study_path": str(study), "client_id": "a"})
    stored = state_records([rec], study)
    assert stored[0]["parameters"] == {"study_path": STUDY_PLACEHOLDER, "client_id": "a"}
    assert rec.parameters["study_path"] == str(study)  # the build's own record unchanged
    state = {"version": STATE_VERSION, "study": study_token(study), "reports": stored}
    (site / build.STATE_FILE).write_text(json.dumps(state))
    assert str(study) not in (site / build.STATE_FILE).read_text()
    back = build._read_state(site, study)["reports"][0]
    assert back.parameters == {"study_path": str(study), "client_id": "a"}
    # another study folder (or none) does not get this study's path
    other = build._read_state(site, tmp_path / "elsewhere")["reports"][0]
    assert other.parameters["study_path"] == STUDY_PLACEHOLDER
    assert build._read_state(site)["reports"][0].parameters["study_path"] == STUDY_PLACEHOLDER
    assert study_token(study) != study_token(tmp_path / "elsewhere")


def test_state_listing_paths_outside_the_site_is_ignored(tmp_path):
    site = tmp_path / "site"
    (site / ".exresearch").mkdir(parents=True)
    record = {"key": "synthesis", "kind": "synthesis", "client_id": None, "name": "S",
              "industry": None, "status": "ok", "html": "reports/synthesis.html",
              "tables": ["tables/synthesis/../../../../etc/passwd"]}
    (site / build.STATE_FILE).write_text(json.dumps({"version": 1, "reports": [record]}))
    assert build._read_state(site) is None
    record["tables"] = ["tables/synthesis/headline.csv"]
    (site / build.STATE_FILE).write_text(json.dumps({"version": 1, "reports": [record]}))
    assert build._read_state(site)["reports"][0].tables == ["tables/synthesis/headline.csv"]


def test_kernel_managers_use_ipc_transport_in_a_private_folder():
    classes = build._kernel_manager_classes()
    for cls in classes.values():
        km = cls(kernel_name="python3")
        assert km.transport == "ipc"  # no TCP ports to race for (papermill #511)
    assert issubclass(classes["zygote"], classes["subprocess"])
    env = build._worker_env({"PATH": "/usr/bin", "MPLBACKEND": "Agg"})
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert env["MPLBACKEND"] == "module://matplotlib_inline.backend_inline"


@pytest.mark.slow
def test_forked_kernels_inherit_the_zygotes_objects_frozen(study, tmp_path):
    """A forked kernel freezes what it inherited (gc.freeze) first thing: its garbage
    collector never walks the objects loaded by the zygote (the preloaded study among
    them), which would copy every page holding them from the zygote (B7d)."""
    code = ("import gc\nfrom exresearch.report import panels\n"
            "print(gc.get_freeze_count() > 10_000, len(panels._PRELOADED))")
    assert _print_in_a_forked_kernel(study, tmp_path, code) == ["True 1\n"]


def _print_in_a_forked_kernel(study, workdir, code: str) -> list:
    """Run ``code`` as a one-cell notebook in a kernel forked from a zygote that
    preloaded ``study``; return the texts its cell printed."""
    import nbformat

    from exresearch.build import execute_report
    from exresearch.build.kernels import Runtime

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "exresearch", "display_name": "x", "language": "python"}
    rt = Runtime(study, kernels="zygote")
    rt.wait_ready()
    try:
        res = execute_report({"key": "k", "kind": "client", "title": "t",
                              "notebook_json": nbformat.writes(nb), "parameters": {},
                              "provenance": {}, "timeout": None, "workdir": str(workdir)},
                             kernels=rt)
    finally:
        rt.close()
    assert res["status"] == "ok", res["error"]
    out = nbformat.reads(res["notebook"], as_version=4).cells[-1].outputs  # after papermill's
    return [o.get("text") for o in out]


@pytest.mark.slow
def test_zygote_imports_this_exresearch_not_one_in_the_current_folder(study, tmp_path,
                                                                      monkeypatch):
    """A build started inside another checkout: the zygote imports the exresearch the
    build runs (``python -P``); its kernels still have their own folder importable."""
    import exresearch

    fake = tmp_path / "other-checkout" / "exresearch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('the current folder has this one')\n")
    monkeypatch.chdir(fake.parent)
    code = ("import sys, exresearch\n"
            f"print(exresearch.__file__ == {exresearch.__file__!r}, sys.path[0] == '')")
    assert _print_in_a_forked_kernel(study, tmp_path, code) == ["True True\n"]
