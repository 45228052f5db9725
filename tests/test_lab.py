"""The researcher's path: stripping on save, the git filter, the project kernel, `make lab`.

The save-and-diff tests build a small git repository laid out like this one (the
notebooks, ``.gitattributes``, ``jupyter/``, ``exresearch/nbstrip.py`` and the
``Makefile``, whose ``git-filter`` target defines the filter), execute the client
report once, and save the executed notebook (1) through a real Jupyter server started
with the project's configuration, as JupyterLab's Ctrl+S does, and (2) by writing the
file directly, as any other editor would; then they ask git what changed.
"""

from __future__ import annotations

import doctest
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from exresearch import build, config, kernel, nbstrip

ROOT = config.ROOT
NB_DIR = config.NOTEBOOKS_DIR
NOTEBOOKS = sorted(p.name for p in NB_DIR.glob("*.ipynb"))
GIT = shutil.which("git")


def _code(source, outputs=(), count=None, **meta):
    return {"cell_type": "code", "id": "c1", "source": source, "metadata": meta,
            "outputs": list(outputs), "execution_count": count}


def _nb(*cells, **meta):
    return {"cells": list(cells), "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


# --------------------------------------------------------------------------- nbstrip
def test_nbstrip_doctests():
    res = doctest.testmod(nbstrip, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 5 and res.failed == 0


def test_strip_drops_outputs_counts_and_editor_metadata_only():
    png = {"output_type": "display_data", "data": {"image/png": "iVBOR"}, "metadata": {}}
    nb = _nb(
        _code("x = 1", outputs=[png], count=7, tags=["parameters"], scrolled=True,
              collapsed=False, execution={"iopub.status.busy": "2026"}, editable=False),
        {"cell_type": "markdown", "id": "m1", "source": "# T", "metadata": {"jupyter": {}},
         "attachments": {"a.png": {"image/png": "xx"}}},
        kernelspec=kernel.kernelspec(), title="T", papermill={"duration": 1.0},
        widgets={"state": {}},
        language_info={"name": "python", "version": "3.11.2", "mimetype": "text/x-python"})
    before = json.dumps(nb, sort_keys=True)
    clean = nbstrip.strip_notebook(nb)
    assert json.dumps(nb, sort_keys=True) == before  # input untouched
    code, md = clean["cells"]
    assert code == {"cell_type": "code", "id": "c1", "source": "x = 1", "outputs": [],
                    "execution_count": None,
                    "metadata": {"tags": ["parameters"], "editable": False}}
    assert md == {"cell_type": "markdown", "id": "m1", "source": "# T", "metadata": {},
                  "attachments": {"a.png": {"image/png": "xx"}}}
    assert clean["metadata"] == {"kernelspec": kernel.kernelspec(), "title": "T",
                                 "language_info": {"name": "python"}}
    assert nbstrip.strip_notebook(clean) == clean
    assert nbstrip.strip_notebook(_nb(_code("x", tags=[])))["cells"][0]["metadata"] == {}


def test_strip_rejects_what_is_not_a_notebook():
    with pytest.raises(ValueError, match="`nb` must be a notebook .* a list without cells"):
        nbstrip.strip_notebook([1, 2])


@pytest.mark.parametrize("name", [*[f"notebooks/{n}" for n in NOTEBOOKS],
                                  *sorted(p.relative_to(ROOT).as_posix()
                                          for p in (ROOT / "tests" / "notebooks").glob("*.ipynb"))])
def test_committed_notebooks_are_stripped_and_written_as_jupyter_writes(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    assert nbstrip.strip_text(text) == text, (
        f"{name} holds outputs, execution counts or editor metadata, or is not formatted "
        f"as Jupyter writes it: run `python3 exresearch/nbstrip.py --in-place {name}`")
    assert nbformat.writes(nbformat.reads(text, as_version=4)) + "\n" == text


def test_filter_passes_through_text_that_is_not_a_notebook():
    for data in (b"<<<<<<< HEAD\n{", b"[1, 2]", b"\xff\xfe"):
        res = subprocess.run([sys.executable, str(ROOT / "exresearch" / "nbstrip.py")],
                             input=data, capture_output=True, check=True)
        assert res.stdout == data


def test_filter_in_place_rewrites_only_what_changes(tmp_path):
    dirty = tmp_path / "a.ipynb"
    dirty.write_text(json.dumps(_nb(_code("x", outputs=[{"output_type": "stream",
                                                         "name": "stdout", "text": "s"}],
                                          count=1))))
    clean = tmp_path / "b.ipynb"
    clean.write_text(nbstrip.strip_text(dirty.read_text()))
    before = clean.stat().st_mtime_ns
    time.sleep(0.01)
    res = subprocess.run([sys.executable, str(ROOT / "exresearch" / "nbstrip.py"),
                          "--in-place", str(dirty), str(clean)],
                         capture_output=True, text=True, check=True)
    assert res.stderr == f"{dirty}: stripped\n"
    assert json.loads(dirty.read_text())["cells"][0]["outputs"] == []
    assert clean.stat().st_mtime_ns == before


# --------------------------------------------------------------------------- save and diff
def _git(repo, *args, check=True):
    return subprocess.run([GIT, "-C", str(repo), *args], capture_output=True, text=True,
                          check=check, env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1",
                                            "HOME": str(repo.parent)})


@pytest.fixture(scope="module")
def executed(small_study, tmp_path_factory):
    """The client report executed on the small study (outputs, figures, client name).

    Executed with papermill (the small study instead of the demo one), whose injected
    parameters cell is then removed: the cells are the committed ones, with outputs,
    execution counts and run metadata, as JupyterLab holds them after Run All.
    """
    out = tmp_path_factory.mktemp("executed")
    old = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        pm.execute_notebook(str(NB_DIR / "client_report.ipynb"), str(out / "cr.ipynb"),
                            parameters={"study_path": str(small_study),
                                        "client_id": "client-02", "n_boot": 200,
                                        "output_dir": str(out / "tables")},
                            progress_bar=False, cwd=str(out),
                            kernel_name=kernel.kernel_for_batch())
    finally:
        if old is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old
    nb = json.loads((out / "cr.ipynb").read_text(encoding="utf-8"))
    # as after Run All in JupyterLab: the same cells (papermill's injected one removed)
    nb["cells"] = [c for c in nb["cells"]
                   if "injected-parameters" not in c["metadata"].get("tags", [])]
    client_name = next(c["name"] for c in _study_clients(small_study)
                       if c["id"] == "client-02")
    return nb, client_name


def _study_clients(study):
    import yaml

    return yaml.safe_load((Path(study) / "study.yml").read_text())["clients"]


@pytest.fixture
def repo(tmp_path):
    """A git repository laid out like this one, filter installed by `make git-filter`."""
    if GIT is None or shutil.which("make") is None:
        pytest.fail("git and make are needed (they are for `make setup` too)")
    repo = tmp_path / "repo"
    for rel in ["Makefile", ".gitattributes", ".gitignore", "jupyter/jupyter_server_config.py",
                "exresearch/nbstrip.py", *[f"notebooks/{n}" for n in NOTEBOOKS]]:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, repo / rel)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.org")
    _git(repo, "config", "user.name", "t")
    subprocess.run(["make", "-s", "git-filter", f"PYTHON={sys.executable}"], cwd=repo,
                   check=True, capture_output=True)
    assert _git(repo, "config", "filter.exresearch-nbstrip.clean").stdout.strip() == (
        f"{sys.executable} exresearch/nbstrip.py")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "init")
    assert _git(repo, "status", "--porcelain").stdout == ""
    return repo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_git_sees_nothing(repo, client_name, *, same_bytes=True):
    if same_bytes:
        assert _git(repo, "status", "--porcelain").stdout == ""
    assert _git(repo, "diff", "--stat").stdout == ""
    _git(repo, "add", "-A")
    assert _git(repo, "status", "--porcelain").stdout == ""
    assert _git(repo, "diff", "--cached", "--stat").stdout == ""
    blob = _git(repo, "show", "HEAD:notebooks/client_report.ipynb").stdout
    assert client_name not in blob and "image/png" not in blob


@pytest.mark.slow
def test_saving_from_jupyterlab_writes_no_outputs_and_git_sees_no_change(
        repo, executed, tmp_path):
    """Ctrl+S in JupyterLab: a PUT of the executed notebook to a server run as `make lab`."""
    nb, client_name = executed
    assert client_name in json.dumps(nb) and "image/png" in json.dumps(nb)  # a real leak
    port, token = _free_port(), "exr-test-token"
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(repo / "jupyter"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "user-config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--port={port}", "--ip=127.0.0.1",
         "--no-browser", "--allow-root", f"--IdentityProvider.token={token}",
         "--ServerApp.port_retries=0", str(repo / "notebooks")],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api/contents/client_report.ipynb"
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/status", headers=headers), timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    log.flush()
                    pytest.fail("jupyter server did not start:\n"
                                + (tmp_path / "server.log").read_text()[-3000:])
                time.sleep(0.3)
        body = json.dumps({"type": "notebook", "format": "json", "content": nb}).encode()
        with urllib.request.urlopen(urllib.request.Request(
                url, data=body, method="PUT", headers=headers), timeout=60) as r:
            assert r.status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    on_disk = (repo / "notebooks" / "client_report.ipynb").read_text(encoding="utf-8")
    assert client_name not in on_disk and '"image/png"' not in on_disk
    # the build fingerprints the executed notebook as the committed one
    assert build.fingerprint(nb) == build.fingerprint(NB_DIR / "client_report.ipynb")
    assert on_disk == (ROOT / "notebooks" / "client_report.ipynb").read_text(encoding="utf-8")
    _assert_git_sees_nothing(repo, client_name)


def test_pre_save_hook_leaves_notebooks_outside_the_notebooks_folder_alone():
    hook = nbstrip.pre_save_hook_for(NB_DIR)

    class CM:
        root_dir = str(ROOT)

    def model():
        return {"type": "notebook", "content": _nb(_code("x", outputs=[{"x": 1}], count=1))}

    m = model()
    hook(m, path="scratch/mine.ipynb", contents_manager=CM())
    assert m["content"]["cells"][0]["outputs"] == [{"x": 1}]
    m = model()
    hook(m, path="notebooks/mine.ipynb", contents_manager=CM())
    assert m["content"]["cells"][0]["outputs"] == []
    m = {"type": "file", "content": "text"}
    hook(m, path="notebooks/notes.txt", contents_manager=CM())
    assert m == {"type": "file", "content": "text"}


@pytest.mark.slow
def test_saving_from_another_editor_git_still_sees_no_change(repo, executed):
    """An editor without the hook writes outputs: the clean filter keeps them out of git.

    The file's size differs from the committed one, so ``git status`` lists it until the
    next ``git add`` (git does not filter a file whose size changed to compare it); the
    diff is empty and adding it stages nothing.
    """
    nb, client_name = executed
    target = repo / "notebooks" / "client_report.ipynb"
    target.write_text(json.dumps(nb, indent=2), encoding="utf-8")
    assert client_name in target.read_text(encoding="utf-8")
    _assert_git_sees_nothing(repo, client_name, same_bytes=False)
    # a real change to the code still shows, without the outputs
    nb["cells"][1]["source"] = "# a researcher's edit\n" + "".join(nb["cells"][1]["source"])
    target.write_text(json.dumps(nb), encoding="utf-8")
    diff = _git(repo, "diff").stdout
    assert "a researcher's edit" in diff
    assert client_name not in diff and "image/png" not in diff


# --------------------------------------------------------------------------- kernel
def test_kernel_doctests():
    res = doctest.testmod(kernel)
    assert res.attempted >= 2 and res.failed == 0


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_ask_for_the_project_kernel(name):
    nb = json.loads((NB_DIR / name).read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"] == {
        "display_name": "Python (exresearch)", "language": "python", "name": "exresearch"}


def test_project_kernel_is_installed_in_this_environment():
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("exresearch")
    except NoSuchKernel:
        pytest.fail("the Jupyter kernel 'exresearch' is not installed: run `make setup`")
    assert spec.display_name == "Python (exresearch)" and spec.language == "python"
    assert Path(spec.argv[0]).parent.resolve() == Path(sys.executable).parent.resolve()
    assert "ipykernel_launcher" in spec.argv and "{connection_file}" in spec.argv
    assert kernel.kernel_for_batch() == "exresearch"


def test_batch_runs_fall_back_to_the_running_interpreter(monkeypatch):
    from jupyter_client import kernelspec as ks

    def missing(self, name):
        raise ks.NoSuchKernel(name)

    monkeypatch.setattr(ks.KernelSpecManager, "get_kernel_spec", missing)
    assert kernel.kernel_for_batch() == "python3"

    class Elsewhere:  # another environment on the same base interpreter
        argv = [os.path.realpath(sys.executable), "-m", "ipykernel_launcher"]

    monkeypatch.setattr(ks.KernelSpecManager, "get_kernel_spec", lambda self, n: Elsewhere())
    if os.path.dirname(os.path.realpath(sys.executable)) != os.path.dirname(sys.executable):
        assert kernel.kernel_for_batch() == "python3"
    Elsewhere.argv = ["/elsewhere/bin/python", "-m", "ipykernel_launcher"]
    assert kernel.kernel_for_batch() == "python3"

    class Here:
        argv = [sys.executable, "-m", "ipykernel_launcher"]

    monkeypatch.setattr(ks.KernelSpecManager, "get_kernel_spec", lambda self, n: Here())
    assert kernel.kernel_for_batch() == "exresearch"


def test_install_kernel_writes_a_spec_for_this_interpreter(tmp_path):
    folder = Path(kernel.install_kernel(prefix=str(tmp_path)))
    assert folder == tmp_path / "share" / "jupyter" / "kernels" / "exresearch"
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    assert spec["display_name"] == "Python (exresearch)"
    with pytest.raises(ValueError, match="`user` and `prefix` exclude each other, but "
                                         "user=True and prefix='/x' were passed"):
        kernel.install_kernel(user=True, prefix="/x")


# --------------------------------------------------------------------------- make lab
def _make_n(*args):
    # not the variables of a `make test` that may have started this suite
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    res = subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True,
                         text=True, check=True, env=env)
    return res.stdout


def test_make_lab_uses_the_project_config_the_port_and_allow_root_when_root():
    cmd = _make_n("lab", "PORT=8899", "LAB_ARGS=--no-browser")
    line = next(ln for ln in cmd.splitlines() if "jupyter lab" in ln or "bin/jupyter" in ln)
    whole = cmd[cmd.index("JUPYTER_CONFIG_PATH"):]
    assert f'JUPYTER_CONFIG_PATH="{ROOT}/jupyter' in cmd
    assert "--port=8899" in whole and "--no-browser" in whole and "notebooks/" in whole
    assert ("--allow-root" in whole) == (os.geteuid() == 0), line
    assert "--port=8888" in _make_n("lab")[_make_n("lab").index("JUPYTER_CONFIG_PATH"):]


def test_make_setup_installs_the_kernel_and_the_git_filter():
    cmd = _make_n("-B", "setup")
    assert "-m exresearch.kernel --prefix .venv" in cmd
    assert 'git config filter.exresearch-nbstrip.clean "python3 exresearch/nbstrip.py"' in cmd
    assert (ROOT / ".gitattributes").read_text().count("*.ipynb filter=exresearch-nbstrip") == 1


# --------------------------------------------------------------------------- the build
def _as_saved_after_run_all(executed_text: str) -> dict:
    """An executed notebook as an editor saves it after Run All: papermill's cell removed."""
    nb = json.loads(executed_text)
    nb["cells"] = [c for c in nb["cells"]
                   if "injected-parameters" not in c["metadata"].get("tags", [])]
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.11.2",
                                       "mimetype": "text/x-python"}
    return nb


@pytest.mark.slow
def test_saving_executed_notebooks_leaves_the_build_nothing_to_run(tmp_path, monkeypatch):
    """Every notebook overwritten by its executed self (outputs and all): 0 reports to run."""
    from exresearch.build import build_site
    from exresearch.build.records import KEYS
    from exresearch.build.records import NOTEBOOKS as BUILD_NOTEBOOKS
    from exresearch.simulate import simulate_study

    nb_dir = tmp_path / "notebooks"
    shutil.copytree(ROOT / "tests" / "notebooks", nb_dir)  # the build's small test notebooks
    monkeypatch.setenv("EXRESEARCH_NOTEBOOKS", str(nb_dir))
    study = simulate_study(tmp_path / "study", n_clients=3, n_units=6, n_periods=2, seed=7)
    site = tmp_path / "site"
    first = build_site(study, out=site, jobs=2)
    assert first.exit_code == 0 and len(first.executed) == 5
    for kind, name in BUILD_NOTEBOOKS.items():
        key = "client-client-01" if kind == "client" else KEYS[kind]
        nb = _as_saved_after_run_all((site / "notebooks" / f"{key}.ipynb").read_text())
        assert any(c.get("outputs") for c in nb["cells"])
        (nb_dir / name).write_text(json.dumps(nb, indent=1), encoding="utf-8")
    again = build_site(study, out=site, jobs=2)
    assert again.exit_code == 0 and again.executed == []
    # an edit to a cell's code is still seen
    nb = json.loads((nb_dir / "synthesis.ipynb").read_text())
    nb["cells"][-1]["source"] = "".join(nb["cells"][-1]["source"]) + "\n# edited"
    (nb_dir / "synthesis.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    assert build_site(study, out=site, jobs=2).executed == ["synthesis"]
