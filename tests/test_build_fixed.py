"""The build's fixed costs (issue 20): what a build pays besides executing notebooks.

Checked here: files are recognised as unchanged from their signature (size, mtime, ctime,
inode) and any change is still noticed (also when the mtime is set back); planning gives
each client its own inputs in one pass; the benchmark of all clients comes from the
result cache one client at a time and equals the stacked computation to the last bit;
the zygote writes the cache entries it computed only once the build holds the lock; the
build reports the time of each phase.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from exresearch import _hashing, build, report
from exresearch._hashing import TreeSnapshot, hash_study_tree, study_tree_stats
from exresearch.build.cache import ResultCache
from exresearch.study import load_study

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture(scope="module")
def base_study(tmp_path_factory):
    from exresearch.simulate import simulate_study

    return simulate_study(tmp_path_factory.mktemp("fstudy") / "study", n_clients=4,
                          n_units=8, n_periods=3, seed=11)


@pytest.fixture
def study(base_study, tmp_path):
    dest = tmp_path / "study"
    shutil.copytree(base_study, dest)
    return dest


@pytest.fixture
def settled(monkeypatch):
    """Files count as settled at once (no two-second racy window), so that the tests
    can change files right after taking a snapshot."""
    monkeypatch.setattr(_hashing, "RACY_NS", 0)


def _count_reads(monkeypatch) -> list:
    read = []
    real = _hashing.sha256_file

    def counting(path):
        read.append(Path(path).name if not Path(path).parent.name.startswith("client")
                     else f"{Path(path).parent.name}/{Path(path).name}")
        return real(path)

    monkeypatch.setattr(_hashing, "sha256_file", counting)
    return read


def _rewrite_keeping_mtime(path: Path, text: str) -> None:
    st = path.stat()
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime set back, as tools may


def _change_one_answer(study: Path, client: str, *, same_size: bool) -> Path:
    """Change the first answer of the first scale item; ``same_size`` keeps the file's
    size (a one-digit answer replaced by another), else the row grows by a character."""
    survey = study / "clients" / client / "survey.csv"
    lines = survey.read_text().splitlines()
    head, row = lines[0].split(","), lines[1].split(",")
    col = head.index(next(h for h in head[3:] if h.startswith("eng")))
    old = row[col]
    assert len(old) == 1  # a one-digit answer
    row[col] = ("1" if old != "1" else "2") if same_size else "1.0"
    _rewrite_keeping_mtime(survey, "\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    return survey


# --------------------------------------------------------------------------- signatures
def test_unchanged_files_are_recognised_without_reading_them(study, settled, monkeypatch):
    snap = TreeSnapshot.take(study)
    assert snap.hashes == hash_study_tree(study)
    assert set(snap.stats) == set(snap.hashes) and all(snap.stats.values())
    read = _count_reads(monkeypatch)
    assert snap.same(study) and read == []  # stat only
    assert hash_study_tree(study, known=snap) == snap.hashes and read == []


def test_a_change_is_noticed_when_the_mtime_is_set_back_and_the_size_differs(
        study, settled, monkeypatch):
    snap = TreeSnapshot.take(study)
    survey = _change_one_answer(study, "client-02", same_size=False)
    size, mtime = snap.stats["clients/client-02/survey.csv"][:2]
    assert survey.stat().st_mtime_ns == mtime and survey.stat().st_size != size
    read = _count_reads(monkeypatch)
    assert not snap.same(study)
    assert read == ["client-02/survey.csv"]  # only the file whose signature changed
    new = hash_study_tree(study, known=snap)
    assert new == hash_study_tree(study)
    assert new["clients/client-02/survey.csv"] != snap.hashes["clients/client-02/survey.csv"]


def test_a_change_of_the_same_size_and_mtime_is_noticed_by_its_ctime(study, settled):
    snap = TreeSnapshot.take(study)
    survey = _change_one_answer(study, "client-03", same_size=True)
    rel = "clients/client-03/survey.csv"
    sig = study_tree_stats(study)[rel]
    assert sig[0] == snap.stats[rel][0] and sig[1] == snap.stats[rel][1]  # size, mtime
    assert not snap.same(study)
    assert hash_study_tree(study, known=snap)[rel] == _hashing.sha256_file(survey)


def test_a_file_added_removed_or_replaced_is_noticed(study, settled):
    snap = TreeSnapshot.take(study)
    (study / "clients" / "client-01" / "notes.txt").write_text("x")
    assert not snap.same(study)
    (study / "clients" / "client-01" / "notes.txt").unlink()
    assert snap.same(study)
    outcomes = study / "clients" / "client-04" / "outcomes.csv"
    copy = outcomes.with_name("copy.tmp")
    shutil.copy2(outcomes, copy)  # same bytes and mtime, another inode: hashed, equal
    os.replace(copy, outcomes)
    assert snap.same(study)
    outcomes.unlink()
    assert not snap.same(study)


def test_a_file_changed_in_the_last_two_seconds_is_always_read(study, monkeypatch):
    snap = TreeSnapshot.take(study)  # the copy was just written: every file is racy
    assert all(sig is None for sig in snap.stats.values())
    read = _count_reads(monkeypatch)
    assert snap.same(study)
    assert len(read) == len(snap.hashes)  # hashed, never trusted from stat


def test_preloaded_study_is_dropped_when_a_file_changes_behind_its_mtime(study, settled):
    from exresearch.report.panels import _forget_preloaded, _preloaded

    loaded = load_study(study)
    report.preload_study(loaded, panels=False)
    try:
        assert _preloaded(study) is loaded
        _change_one_answer(study, "client-01", same_size=False)
        assert _preloaded(study) is None
    finally:
        _forget_preloaded()


# --------------------------------------------------------------------------- planning
def test_inputs_by_client_equal_the_per_client_filter():
    from exresearch.build.plan import inputs_by_client

    hashes = {"study.yml": "0", "clients/a/survey.csv": "1", "clients/a/outcomes.csv": "2",
              "clients/ab/survey.csv": "3", "clients/b/sub/x.csv": "4",
              "clients/stray.csv": "5", "clients/zz/survey.csv": "6"}
    clients = ["a", "ab", "b", "c"]
    got = inputs_by_client(hashes, clients)
    for cid in clients:
        want = {k: v for k, v in hashes.items()
                if k == "study.yml" or k.startswith(f"clients/{cid}/")}
        assert got[cid] == want and list(got[cid]) == list(want)


# --------------------------------------------------------------------------- benchmark
def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*.pkl")} if folder.is_dir() else set()


def test_benchmark_from_cached_unit_means_equals_the_stacked_computation(study, tmp_path):
    from exresearch.report.clients import (
        _BENCHMARK,
        _unit_means_by_client,
        all_unit_means,
        benchmark_aggregates,
    )

    loaded = load_study(study)
    roles = report.measure_roles(loaded.config)
    want = benchmark_aggregates(loaded, roles)
    assert want["client_id"].tolist() == ["client-01", "client-02", "client-03", "client-04"]
    cache = tmp_path / "c"
    for _ in ("cold", "warm"):
        _BENCHMARK.clear()  # computed once per study object: forget it between runs
        got = benchmark_aggregates(loaded, roles, cache=ResultCache(cache, "summaries"))
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        pd.testing.assert_frame_equal(
            _unit_means_by_client(loaded, roles, store=ResultCache(cache, "summaries")),
            all_unit_means(loaded, roles), check_exact=True)
    assert len(_entries(cache)) == 4  # one entry per client

    _change_one_answer(study, "client-02", same_size=False)
    changed = load_study(study)
    store = ResultCache(cache, "summaries")
    got = benchmark_aggregates(changed, roles, cache=store)
    assert (store.hits, store.misses) == (3, 1)  # only client-02's means are computed
    _BENCHMARK.clear()
    pd.testing.assert_frame_equal(got, benchmark_aggregates(changed, roles), check_exact=True)
    assert not got.equals(want)  # (the change moved client-02's means)


# --------------------------------------------------------------------------- the build
@pytest.fixture
def env(monkeypatch):
    """Test notebooks, and a source hash that other engineers' edits cannot change."""
    monkeypatch.setenv("EXRESEARCH_NOTEBOOKS", str(NOTEBOOKS))
    monkeypatch.setattr(build, "_source_hash", lambda: "test-source")
    return monkeypatch


@pytest.mark.slow
def test_build_phases_state_signatures_and_the_zygotes_cache_entries(study, tmp_path, env):
    """One build: every phase timed; the state records each file's signature; the zygote's
    benchmark rows and panels are written to the cache after the lock; a rebuild after a
    change that kept the file's mtime re-runs exactly that client."""
    env.setattr(_hashing, "RACY_NS", 0)
    out = tmp_path / "site"
    first = build.build_site(study, out=out, progress=False, pdf=False,
                             cache=tmp_path / "cache")
    assert first.exit_code == 0 and len(first.executed) == 6
    assert list(first.phases) == [
        "check arguments", "start the zygote", "load and validate", "plan", "lock and cache",
        "carry over", "wait for the zygote", "zygote: imports", "zygote: preload the study",
        "execute 6 report(s)", "share bundles", "index and manifest",
        "workbooks, briefs, PDFs", "build state", "publish", "clean up", "stop the zygote"]
    assert all(t["wall"] >= 0 and t["cpu"] >= 0 for t in first.phases.values())
    import json

    state = json.loads((out / ".exresearch" / "state.json").read_text())
    assert set(state["stats"]) == set(state["tree"]) == set(hash_study_tree(study))
    assert all(len(sig) == 5 for sig in state["stats"].values())
    # written by the zygote once the lock was held (the test notebooks write none):
    # every client's panel and benchmark row
    assert len(_entries(tmp_path / "cache" / "summaries")) == 8

    _change_one_answer(study, "client-03", same_size=False)  # mtime set back
    again = build.build_site(study, out=out, progress=False, pdf=False,
                             cache=tmp_path / "cache")
    assert sorted(again.executed) == ["client-client-03", "data-quality", "synthesis"]
    assert "carry over" in again.phases and "execute 3 report(s)" in again.phases
    # client-03's new panel and benchmark row
    assert len(_entries(tmp_path / "cache" / "summaries")) == 10


@pytest.mark.slow
def test_nothing_changed_rebuild_reads_no_study_file(study, tmp_path, env):
    env.setattr(_hashing, "RACY_NS", 0)
    out = tmp_path / "site"
    assert build.build_site(study, out=out, progress=False, pdf=False,
                            cache=False).exit_code == 0
    read = _count_reads(env)
    again = build.build_site(study, out=out, progress=False, pdf=False, cache=False)
    assert again.executed == [] and read == []  # stat only: the fast path read nothing


@pytest.mark.slow
def test_cli_debug_prints_the_time_of_each_phase(study, tmp_path):
    env = dict(os.environ, EXRESEARCH_NOTEBOOKS=str(NOTEBOOKS))
    res = subprocess.run(
        [sys.executable, "-m", "exresearch", "build", str(study), "--out",
         str(tmp_path / "site"), "--no-pdf", "--no-cache", "--only", "client-01", "--debug"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    at = lines.index("exresearch build: time by phase (wall, CPU of the process that ran it)")
    rows = lines[at + 1:]
    assert rows[0].lstrip().startswith("CLI start (CPU only)")
    assert any(r.lstrip().startswith("execute 1 report(s)") for r in rows)
    assert all(" s  cpu " in r for r in rows)
    quiet = subprocess.run(
        [sys.executable, "-m", "exresearch", "build", str(study), "--out",
         str(tmp_path / "site2"), "--no-pdf", "--no-cache", "--only", "client-01"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert quiet.returncode == 0 and "time by phase" not in quiet.stderr


@pytest.mark.slow
def test_the_driver_freezes_what_it_holds_and_keeps_no_frames_while_reports_run(
        study, tmp_path, env):
    # the full collections during the reports must not walk the libraries and the study
    # again and again; a long-lived caller gets them back into the collector afterwards
    import gc

    from exresearch.build import core

    seen = []
    real = core._execute

    def execute(b):
        seen.append((gc.get_freeze_count(), dict(b.study._survey), b.study.clients))
        return real(b)

    env.setattr(core, "_execute", execute)
    before = gc.get_freeze_count()
    res = build.build_site(study, out=tmp_path / "site", progress=False, pdf=False,
                           cache=False, only=["client-01"])
    assert res.exit_code == 0 and res.executed == ["client-client-01"]
    frozen, frames, clients = seen[0]
    assert frozen > before + 10_000  # the imported modules' objects, at least
    assert gc.get_freeze_count() == before
    # the driver keeps no survey or outcome frame of a study it loaded (the kernels get
    # the zygote's), only what it needs: path, config, clients, hashes
    assert frames == {} and clients == load_study(study).clients
    # a study handed in by the caller is the caller's: used as it is
    given = load_study(study)
    seen.clear()
    build.build_site(given, out=tmp_path / "site2", progress=False, pdf=False, cache=False,
                     only=["client-01"])
    assert seen[0][1].keys() == set(given.clients)


def test_share_bundles_hold_the_same_files_as_the_site_and_nothing_else(tmp_path):
    # the bundles are written without resolving every path (issue 20): each still holds
    # hard links to the site's own report, tables and synthesis page, and a path of
    # another form still goes through the check that it stays inside the site
    from types import SimpleNamespace

    from exresearch.build.sitefiles import write_share_bundles

    site = tmp_path / "site"
    recs = []
    for cid in ("a", "b-2"):
        key = f"client-{cid}"
        (site / "tables" / key).mkdir(parents=True)
        (site / "reports").mkdir(exist_ok=True)
        (site / "reports" / f"{key}.html").write_text(f"report {cid}")
        tables = [f"tables/{key}/{n}.csv" for n in ("x", "y")]
        for t in tables:
            (site / t).write_text(t)
        recs.append(SimpleNamespace(kind="client", status="ok", html=f"reports/{key}.html",
                                    client_id=cid, name=cid.upper(), key=key,
                                    tables=[*tables, f"tables/{key}/missing.csv"]))
    (site / "reports" / "synthesis.html").write_text("synthesis")
    recs.append(SimpleNamespace(kind="synthesis", status="ok", html="reports/synthesis.html",
                                client_id=None, name="Synthesis", key="synthesis", tables=[]))
    shares = write_share_bundles(site, SimpleNamespace(name="Study"), recs)
    assert shares == {"a": "share/a/index.html", "b-2": "share/b-2/index.html"}
    for cid in ("a", "b-2"):
        base = site / "share" / cid
        held = sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
        key = f"client-{cid}"
        assert held == ["index.html", f"reports/{key}.html", "reports/synthesis.html",
                        f"tables/{key}/x.csv", f"tables/{key}/y.csv"]
        for rel in held[1:]:
            assert (base / rel).samefile(site / rel), rel
        page = (base / "index.html").read_text()
        assert "missing.csv" not in page and "x.csv" in page and cid.upper() in page
    # a path not of the site's own form is checked as before (inside(): resolved)
    from exresearch.build import sitefiles

    checked = []

    def spy(root, rel):
        checked.append(rel)
        return inside(root, rel)

    inside = sitefiles.inside
    shutil.rmtree(site / "share")
    (site / "tables" / "client-a" / "odd name.csv").write_text("odd")
    recs[0].tables.append("tables/client-a/odd name.csv")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sitefiles, "inside", spy)
        sitefiles.write_share_bundles(site, SimpleNamespace(name="Study"), recs)
    assert checked == ["share/a/tables/client-a/odd name.csv"]
    assert (site / "share/a/tables/client-a/odd name.csv").read_text() == "odd"


def test_benchmark_correlations_equal_linkage_correlations_of_each_client_bit_for_bit():
    """``client_benchmark_rows``' r per client is ``linkage.correlations`` of that client's
    rows, to the last bit, including NaNs, too few units and a constant column."""
    import numpy as np

    from exresearch.linkage import correlations
    from exresearch.report.clients import _client_correlations

    rng = np.random.default_rng(3)
    frames = []
    for i, n in enumerate([30, 7, 2, 12, 25, 4]):
        ex = rng.normal(3.5, 0.4, n)
        cx = 0.3 * ex + rng.normal(0, 0.3, n)
        if i == 3:
            cx[:] = 1.25  # constant outcome
        if i == 4:
            ex[::3] = np.nan  # missing answers
            cx[1::4] = np.nan
        frames.append(pd.DataFrame({"client_id": f"c{5 - i:02d}", "ex": ex, "cx": cx}))
    means = pd.concat(frames, ignore_index=True).sample(frac=1, random_state=1)  # interleaved
    got = _client_correlations(means, x="ex", y="cx")
    want = []
    with pytest.warns(UserWarning):
        for cid, g in means.groupby("client_id", sort=True):
            want.append((cid, float(correlations(g, x="ex", y="cx")["r"].iloc[0])))
    assert [c for c, _ in got] == [c for c, _ in want] == sorted(set(means["client_id"]))
    r_got, r_want = np.array([r for _, r in got]), np.array([r for _, r in want])
    assert np.array_equal(r_got, r_want, equal_nan=True)
    assert np.isnan(r_got).sum() == 2 and np.isfinite(r_got).sum() == 4  # n=2, constant
    assert _client_correlations(means.iloc[:0], x="ex", y="cx") == []
