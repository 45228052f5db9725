"""The build owns only what it wrote, survives being killed, and says what went wrong.

Fast tests replace ``execute_report`` with a stand-in (no kernel), so the whole build
around it (plan, lock, staging, publishing, exit codes) runs in well under a second; the
``slow`` tests run real kernels on the tiny notebooks of ``tests/notebooks``.
"""

from __future__ import annotations

import doctest
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from exresearch import build, config
from exresearch.build import build_site, execute, plan, publish
from exresearch.exceptions import BuildEnvironmentError, BuildError, ParameterError

NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture(scope="module")
def base_study(tmp_path_factory):
    from exresearch.simulate import simulate_study

    return simulate_study(tmp_path_factory.mktemp("sstudy") / "study", n_clients=3, n_units=6,
                          n_periods=2, seed=11)


@pytest.fixture
def study(base_study, tmp_path):
    dest = tmp_path / "study"
    shutil.copytree(base_study, dest)
    return dest


def _fake_execute(task, *, kernels):
    """A report 'executed' without a kernel: one page, one table."""
    return {"key": task["key"], "status": "ok", "error": None, "duration": 0.01,
            "html": f"<html><body>{task['title']}</body></html>", "notebook": None,
            "tables": {"unit_means.csv": f"unit,mean\n{task['key']},1\n".encode()}}


@pytest.fixture
def fake(monkeypatch):
    """Test notebooks, a fixed source hash, no zygote, and the stand-in executor."""
    monkeypatch.setenv("EXRESEARCH_NOTEBOOKS", str(NOTEBOOKS))
    monkeypatch.setenv("EXRESEARCH_KERNELS", "subprocess")
    monkeypatch.setattr(build, "_source_hash", lambda: "test-source")
    monkeypatch.setattr(build, "execute_report", _fake_execute)
    return monkeypatch


def _files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".exresearch" not in p.relative_to(folder).parts}


def test_doctests():
    for mod in (plan, execute, build.sitefiles):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0 and res.attempted > 0, mod.__name__


# ----------------------------------------------------------------- fingerprints
def test_notebook_fingerprint_ignores_outputs_and_metadata_only():
    nb = json.loads((config.ROOT / "notebooks" / "client_report.ipynb").read_text())
    fp = build.fingerprint(nb)
    assert fp == build.fingerprint(config.ROOT / "notebooks" / "client_report.ipynb")
    ran = json.loads(json.dumps(nb))
    code = next(c for c in ran["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "42\n"}]
    code["execution_count"] = 7
    code["metadata"]["collapsed"] = True
    ran["metadata"]["widgets"] = {"state": {}}
    assert build.fingerprint(ran) == fp  # JupyterLab's save of a run notebook
    code["source"] = ["x = 1\n"]
    assert build.fingerprint(ran) != fp  # an edited cell
    tagged = json.loads(json.dumps(nb))
    tagged["cells"][-1].setdefault("metadata", {})["tags"] = ["remove-cell"]
    assert build.fingerprint(tagged) != fp  # a tag changes the page


# ----------------------------------------------------------------- owning --out
def test_a_folder_with_someone_elses_manifest_is_refused_with_exit_2(study, fake, tmp_path,
                                                                     capsys):
    from exresearch.cli import main

    web = tmp_path / "webapp"
    (web / "src").mkdir(parents=True)
    (web / "manifest.json").write_text('{"name":"My PWA"}')
    (web / "thesis.docx").write_text("precious")
    before = _files(web)
    with pytest.raises(BuildError, match=r"refusing to replace .*not written by `exresearch "
                                         r"build` \(no \.exresearch/site\.json\)"):
        build_site(study, out=web, progress=False)
    assert main(["build", str(study), "--out", str(web)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: refusing to replace")
    assert _files(web) == before and (web / "src").is_dir()
    assert sorted(p.name for p in web.iterdir()) == ["manifest.json", "src", "thesis.docx"]


def test_rebuild_keeps_files_it_did_not_write_and_lists_them(study, fake, tmp_path, capsys):
    out = tmp_path / "site"
    res = build_site(study, out=out, progress=False)
    assert res.exit_code == 0 and res.kept == []
    marker = json.loads((out / build.MARKER_FILE).read_text())
    assert marker["written_by"] == "exresearch build"
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref: refs/heads/gh-pages\n")
    (out / "CNAME").write_text("reports.example.org\n")
    (out / "NOTES.md").write_text("notes\n")
    (out / "reports" / "extra.html").write_text("mine")
    (out / "tables" / "synthesis" / "mine.csv").write_text("a\n1\n")
    res2 = build_site(study, out=out, force=True, progress=True)
    assert res2.kept == [".git/", "CNAME", "NOTES.md", "reports/extra.html",
                         "tables/synthesis/mine.csv"]
    assert "kept 5 file(s) it did not write: .git/, CNAME, NOTES.md" in capsys.readouterr().err
    assert (out / ".git" / "HEAD").read_text() == "ref: refs/heads/gh-pages\n"
    assert (out / "CNAME").read_text() == "reports.example.org\n"
    assert (out / "reports" / "extra.html").read_text() == "mine"
    assert (out / "tables" / "synthesis" / "mine.csv").read_text() == "a\n1\n"
    assert (out / "reports" / "client-client-01.html").is_file()
    state = json.loads((out / build.STATE_FILE).read_text())
    assert "reports/client-client-03.html" in state["files"]
    assert "CNAME" not in state["files"] and "reports/extra.html" not in state["files"]


def test_publish_never_renames_out_itself_so_a_mount_point_works(study, fake, tmp_path):
    out = tmp_path / "mnt"
    build_site(study, out=out, progress=False)
    inode = out.stat().st_ino
    real_rename, real_replace = os.rename, os.replace

    def busy(src, dst, *a, **k):  # what a mount point answers when it is renamed
        if Path(src) == out or Path(dst) == out:
            raise OSError(errno.EBUSY, "Device or resource busy", str(src))
        return real_rename(src, dst, *a, **k)

    def busy_replace(src, dst, *a, **k):
        if Path(src) == out or Path(dst) == out:
            raise OSError(errno.EBUSY, "Device or resource busy", str(src))
        return real_replace(src, dst, *a, **k)

    fake.setattr(os, "rename", busy)
    fake.setattr(os, "replace", busy_replace)
    fake.setattr(publish, "exchange", lambda a, b: False)  # the two-rename fallback too
    res = build_site(study, out=out, force=True, progress=False)
    assert res.exit_code == 0 and len(res.executed) == 5
    assert out.stat().st_ino == inode
    assert not list((out / ".exresearch" / "staging").iterdir())


def test_swap_exchanges_each_folder_atomically(tmp_path):
    out, staging = tmp_path / "site", tmp_path / "stage"
    (out / "reports").mkdir(parents=True)
    (out / "reports" / "a.html").write_text("old")
    (out / "index.html").write_text("old")
    (staging / "reports").mkdir(parents=True)
    (staging / "reports" / "a.html").write_text("new")
    (staging / "index.html").write_text("new")
    ino = (staging / "reports").stat().st_ino
    assert build._publish(staging, out) == []
    assert (out / "reports").stat().st_ino == ino  # the folder itself was swapped in
    assert (out / "reports" / "a.html").read_text() == "new"
    assert (out / "index.html").read_text() == "new" and not staging.exists()


def test_publish_owns_new_entries_but_never_replaces_a_users_entry(tmp_path):
    out, staging = tmp_path / "site", tmp_path / "stage"
    (out / ".exresearch").mkdir(parents=True)
    (out / ".exresearch" / "state.json").write_text(json.dumps(
        {"files": ["index.html", "downloads/a.pdf"]}))
    (out / "index.html").write_text("old")
    (out / "downloads").mkdir()
    (out / "downloads" / "a.pdf").write_text("old pdf")
    (out / "CNAME").write_text("mine")
    (staging / "downloads").mkdir(parents=True)  # an entry a hook added to the site
    (staging / "downloads" / "b.pdf").write_text("new pdf")
    (staging / "CNAME").write_text("the build's")
    (staging / "index.html").write_text("new")
    assert build._publish(staging, out) == ["CNAME"]
    assert (out / "CNAME").read_text() == "mine"
    assert sorted(p.name for p in (out / "downloads").iterdir()) == ["b.pdf"]
    assert (out / "index.html").read_text() == "new"


def test_second_build_into_the_same_out_exits_2_naming_the_holder(study, fake, tmp_path,
                                                                  capsys):
    from exresearch.cli import main

    out = tmp_path / "site"
    build_site(study, out=out, progress=False)
    lock = publish.SiteLock(out)  # a build in progress (here: this process)
    try:
        with pytest.raises(BuildError, match=rf"another build \(pid {os.getpid()}\) is "
                                             r"publishing into"):
            build_site(study, out=out, force=True, progress=False)
        assert main(["build", str(study), "--out", str(out), "--force"]) == 2
        assert f"another build (pid {os.getpid()})" in capsys.readouterr().err
    finally:
        lock.release(published=True)
    assert build_site(study, out=out, force=True, progress=False).exit_code == 0


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_disk_full_or_read_only_exits_3_and_keeps_the_site(study, fake, tmp_path, capsys,
                                                           code):
    from exresearch.cli import main

    out = tmp_path / "site"
    build_site(study, out=out, progress=False)
    before = _files(out)

    def full(staging, out):
        raise OSError(code, os.strerror(code), str(out / "reports" / "x.html"))

    fake.setattr(build, "_publish", full)
    with pytest.raises(BuildEnvironmentError, match=os.strerror(code)):
        build_site(study, out=out, force=True, progress=False)
    assert main(["build", str(study), "--out", str(out), "--force"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-1] == (f"error: cannot write the site into {str(out.resolve())!r}: "
                       f"{os.strerror(code)} (errno {code}); the previous site, if any, is "
                       "unchanged")
    assert _files(out) == before
    assert not list((out / ".exresearch" / "staging").iterdir())
    with pytest.raises(BuildEnvironmentError):  # --debug: the traceback
        main(["build", str(study), "--out", str(out), "--force", "--debug"])


def test_first_build_that_fails_leaves_no_folder_behind(study, fake, tmp_path):
    def full(staging, out):
        raise OSError(errno.ENOSPC, "No space left on device")

    fake.setattr(build, "_publish", full)
    with pytest.raises(BuildEnvironmentError):
        build_site(study, out=tmp_path / "new", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]


def test_failed_pages_and_errors_carry_no_machine_path(tmp_path):
    tb = ["\x1b[0;31mFileNotFoundError\x1b[0m Traceback",
          f"File \x1b[0;32m{sys.prefix}/lib/python3/site-packages/pandas/io/common.py:873\x1b[0m",
          f"File {config.PACKAGE_DIR}/study.py:12, in load",
          f"FileNotFoundError: [Errno 2] No such file: '{tmp_path}/study/clients/a/x.csv'"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "1/0", outputs=[nbformat.v4.new_output("error", ename="FileNotFoundError",
                                               evalue=tb[-1], traceback=tb)])])
    task = {"title": "Acme: client report"}
    roots = {str(tmp_path / "study"): "<study study>"}
    nb_text, html, status, error = execute._render(
        task, nbformat.writes(nb), "failed", tb[-1], {"study": "s"}, roots)
    for text in (html, nb_text, error):
        for machine in (str(tmp_path), sys.prefix, str(config.ROOT)):
            assert machine not in text
    assert "<study study>/clients/a/x.csv" in error
    assert "pandas/io/common.py" in nb_text and "common.py:873" in html


def _pickles(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.pkl"))


def test_result_cache_is_outside_out_private_and_optional(study, fake, tmp_path,
                                                          _result_cache_in_tmp):
    """The result cache (study data) is never under --out: by default one 0o700 folder
    per site in $EXRESEARCH_CACHE_DIR named by a hash; --cache DIR; --no-cache."""
    from exresearch.build.cache import site_cache_dir
    from exresearch.cli import main

    out = tmp_path / "site"
    res = build_site(study, out=out, progress=False)
    assert res.exit_code == 0
    assert res.cache == site_cache_dir(out) and res.cache.parent == _result_cache_in_tmp
    assert len(res.cache.name) == 64 and "site" not in res.cache.name  # no readable path
    assert res.cache.stat().st_mode & 0o777 == 0o700
    assert len(_pickles(res.cache / "validation")) == 2 * 3  # every client's two files
    assert not (out / ".exresearch" / "cache").exists() and _pickles(out) == []
    site = _files(out)

    custom = tmp_path / "elsewhere" / "cache"
    assert main(["build", str(study), "--out", str(tmp_path / "b"), "--cache", str(custom)]) == 0
    assert len(_pickles(custom / "validation")) == 6 and _pickles(tmp_path / "b") == []
    assert not site_cache_dir(tmp_path / "b").exists()

    assert main(["build", str(study), "--out", str(tmp_path / "c"), "--no-cache"]) == 0
    assert not site_cache_dir(tmp_path / "c").exists() and _pickles(tmp_path / "c") == []
    for other in ("b", "c"):  # the same site with any cache or none
        got = _files(tmp_path / other)
        assert sorted(got) == sorted(site)
        assert got["tables/synthesis/unit_means.csv"] == site["tables/synthesis/unit_means.csv"]

    # a cache inside --out is refused before anything is written (exit 2)
    with pytest.raises(ParameterError, match=r"must be outside --out .*, but .*/c/cache was"):
        build_site(study, out=tmp_path / "c", cache=tmp_path / "c" / "cache", progress=False)
    assert main(["build", str(study), "--out", str(tmp_path / "d"), "--cache",
                 str(tmp_path / "d" / ".cache")]) == 2
    assert not (tmp_path / "d").exists()
    with pytest.raises(SystemExit):  # one or the other
        main(["build", str(study), "--out", str(out), "--cache", str(custom), "--no-cache"])


def test_unwritable_cache_means_a_build_without_cache_said_once(study, fake, tmp_path,
                                                               capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    fake.setenv("EXRESEARCH_CACHE_DIR", str(blocker))
    out = tmp_path / "site"
    res = build_site(study, out=out, progress=True)
    assert res.exit_code == 0 and res.cache is None and len(res.executed) == 5
    err = capsys.readouterr().err
    assert err.count("exresearch build: no result cache (") == 1
    assert "building without it (same results, slower rebuilds)" in err
    assert blocker.read_text() == "x" and _pickles(out) == []
    from exresearch.cli import main  # the exit code contract is unchanged

    assert main(["build", str(study), "--out", str(out), "--force"]) == 0


def test_old_cache_inside_out_is_removed_and_said(study, fake, tmp_path, capsys):
    """A site built before the cache moved out of --out: the next build (even one with
    nothing to execute) removes DIR/.exresearch/cache/ and says so in its summary."""
    out = tmp_path / "site"
    assert build_site(study, out=out, progress=False).exit_code == 0
    old = out / ".exresearch" / "cache" / "validation" / ("0" * 16) / "ab"
    old.mkdir(parents=True)
    (old / f"{'ab' * 32}.pkl").write_bytes(b"respondent answers")
    (out / ".exresearch" / "cache" / ".gitignore").write_text("*\n")
    capsys.readouterr()
    res = build_site(study, out=out, progress=True)
    assert res.exit_code == 0 and res.executed == []  # nothing changed: nothing executed
    assert not (out / ".exresearch" / "cache").exists() and _pickles(out) == []
    err = capsys.readouterr().err
    assert ("exresearch build: removed the old result cache .exresearch/cache/ from the site "
            f"folder (study data); the cache is now outside it: {res.cache}") in err
    build_site(study, out=out, progress=True)
    assert "removed the old result cache" not in capsys.readouterr().err  # said once


def test_symlink_at_old_cache_place_is_kept_and_does_not_stop_the_fast_path(
        study, fake, tmp_path, capsys):
    """DIR/.exresearch/cache as a symlink was not written by a build: it is neither
    followed nor removed, and a rebuild with nothing changed still takes the fast path."""
    out, mine = tmp_path / "site", tmp_path / "my-folder"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert build_site(study, out=out, progress=False).exit_code == 0
    (out / ".exresearch" / "cache").symlink_to(mine, target_is_directory=True)
    capsys.readouterr()
    for _ in range(2):
        res = build_site(study, out=out, progress=True)
        assert res.exit_code == 0 and res.executed == []
        assert "nothing changed" in capsys.readouterr().err
    assert (out / ".exresearch" / "cache").is_symlink()
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "mine"


# ----------------------------------------------------------------- slow: real kernels
def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(d.name))
    found, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_leaves_no_kernel_and_no_temporary_file(study, tmp_path):
    out = tmp_path / "site"
    script = ("import sys\nfrom exresearch.cli import main\n"
              f"sys.exit(main(['build', {str(study)!r}, '--out', {str(out)!r}, "
              "'--jobs', '2']))\n")
    systmp = tmp_path / "systmp"  # the build's own system temporary folder (the real
    systmp.mkdir()                # one is shared with other processes of the machine)
    log = tmp_path / "build.log"
    env = dict(os.environ, EXRESEARCH_NOTEBOOKS=str(NOTEBOOKS), TMPDIR=str(systmp))
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", script], stderr=fh, stdout=fh, env=env)
    try:
        deadline, tree = time.monotonic() + 180, set()
        while time.monotonic() < deadline:  # the zygote and at least one kernel running
            tree = _descendants(proc.pid)
            if len(tree) >= 2 and any(_descendants(c) for c in tree):
                break
            time.sleep(0.05)
        assert len(tree) >= 2, log.read_text()
        staging = list((out / ".exresearch" / "staging").iterdir())
        assert len(staging) == 1  # the build's temporary files live inside --out
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in tree if _alive(p)] == []
    assert list(systmp.iterdir()) == []
    assert not (out / "index.html").exists()
    # the next build clears the dead build's staging area (it holds the lock, so no
    # staging folder can belong to a running build)
    lock = publish.SiteLock(out)
    try:
        publish.Staging(out).discard()
    finally:
        lock.release(published=True)
    assert list((out / ".exresearch" / "staging").iterdir()) == []


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""


def _can_print() -> bool:
    from exresearch.deliver import find_chromium

    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return find_chromium() is not None


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.skipif(not _can_print(), reason="needs Chromium and playwright")
def test_sigkill_while_pdfs_print_leaves_no_browser_and_no_profile(study, tmp_path):
    """Killed while headless Chromium prints the PDFs: no browser process, no playwright
    driver and no browser profile or artifacts folder remain (issue 20)."""
    import tempfile

    # a short --out: Chromium's temporary folder is in its staging area only when that
    # path leaves room for a unix socket (deliver._MAX_CHROMIUM_TMPDIR)
    short = Path(tempfile.mkdtemp(prefix="exr", dir="/tmp"))
    try:
        _kill_while_printing(study, tmp_path, short / "s")
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _kill_while_printing(study, tmp_path, out):
    script = ("import sys\nfrom exresearch.cli import main\n"
              f"sys.exit(main(['build', {str(study)!r}, '--out', {str(out)!r}, "
              "'--jobs', '2', '--pdf']))\n")
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    log = tmp_path / "build.log"
    env = dict(os.environ, EXRESEARCH_NOTEBOOKS=str(NOTEBOOKS), TMPDIR=str(systmp),
               EXRESEARCH_PDF="1")
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", script], stderr=fh, stdout=fh, env=env)
    try:
        deadline, tree, browser = time.monotonic() + 240, set(), []
        while time.monotonic() < deadline and proc.poll() is None:
            tree = _descendants(proc.pid)
            browser = [p for p in tree if "chrom" in Path(_cmd(p)).name]
            if browser:
                break
            time.sleep(0.02)
        assert browser, log.read_text()  # killed while Chromium runs
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [(p, _cmd(p)) for p in tree if _alive(p)] == []
    assert list(systmp.iterdir()) == []  # no playwright_chromiumdev_profile-*, artifacts
    assert not (out / "index.html").exists()
    lock = publish.SiteLock(out)  # the next build removes the dead build's staging area
    try:
        publish.Staging(out).discard()
    finally:
        lock.release(published=True)
    assert list((out / ".exresearch" / "staging").iterdir()) == []
    assert [p for p in out.rglob("*") if "playwright" in p.name or "Chromium" in p.name] == []


@pytest.mark.slow
def test_failed_report_shows_no_machine_path(study, tmp_path, monkeypatch):
    monkeypatch.setenv("EXRESEARCH_NOTEBOOKS", str(NOTEBOOKS))
    yml = study / "study.yml"
    yml.write_text(yml.read_text().replace("client-02", "fail-02"))
    (study / "clients" / "client-02").rename(study / "clients" / "fail-02")
    out = tmp_path / "site"
    res = build_site(study, out=out, only=["fail-02"], progress=False)
    assert res.exit_code == 1 and res.failed[0].error.startswith("RuntimeError")
    for page in (out / "index.html", out / "reports" / "client-fail-02.html"):
        text = page.read_text()
        assert "deliberate failure for fail-02" in text
        for machine in (str(tmp_path), sys.prefix, str(config.ROOT)):
            assert machine not in text, (page, machine)


def test_redaction_leaves_figure_data_alone(tmp_path):
    """A folder name can occur by chance in a figure's base64 text ('/tmp' in about 1% of
    client reports); redacting it would break the image. Text outputs, alt text and
    sources are still redacted."""
    import base64

    png = b"\x89PNG\r\n\x1a\n\0" + base64.b64decode("AA/tmp/tmp/root+")  # 9 + 12 bytes
    data = base64.b64encode(png).decode()
    assert "/tmp/" in data and "/root" in data
    secret = str(tmp_path / "study")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"study_path = '{secret}'", outputs=[nbformat.v4.new_output(
            "display_data", data={"image/png": data, "text/plain": f"<Figure {secret}/a>"},
            metadata={"image/png": {"alt": f"Chart of {secret}/b.csv"}})])])
    nb_text, html, status, error = execute._render(
        {"title": "T"}, nbformat.writes(nb), "ok", None, {}, {secret: "<study s>"})
    out = nbformat.reads(nb_text, as_version=4).cells[0]
    assert out.outputs[0]["data"]["image/png"] == data
    assert f"data:image/png;base64,{data}" in html
    assert out.outputs[0]["data"]["text/plain"] == "<Figure <study s>/a>"
    assert out.outputs[0]["metadata"]["image/png"]["alt"] == "Chart of <study s>/b.csv"
    assert out.source == "study_path = '<study s>'"
    assert secret not in nb_text and secret not in html and status == "ok"
