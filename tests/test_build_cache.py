"""Incremental work per file and per client (issue 20): the validation cache, the
per-client summaries of the synthesis and data quality, and a rebuild after one client's
data changed giving the same tables as a build from scratch."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exresearch import report, synthesis
from exresearch.build.cache import ResultCache, cache_key, prune
from exresearch.exceptions import StudyValidationError
from exresearch.study import load_study

ROOT = Path(__file__).resolve().parents[1]
VALID = ROOT / "tests" / "studies" / "valid"


def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*.pkl")} if folder.is_dir() else set()


def _same_study(a, b) -> None:
    assert a.clients == b.clients and a.hashes == b.hashes and a.item_labels == b.item_labels
    for cid in a.clients:
        pd.testing.assert_frame_equal(a.survey(cid), b.survey(cid), check_exact=True)
        pd.testing.assert_frame_equal(a.outcomes(cid), b.outcomes(cid), check_exact=True)
    pd.testing.assert_frame_equal(a.warnings, b.warnings, check_exact=True)


# --------------------------------------------------------------------------- the store
def test_doctests():
    import doctest

    from exresearch.build import cache

    res = doctest.testmod(cache, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 0


def test_cache_entries_are_atomic_files_and_keys_checked(tmp_path):
    c = ResultCache(tmp_path, "t")
    key = cache_key("t", {"a": 1})
    assert c.put(key, {"x": pd.DataFrame({"v": [1.5, np.nan]})})
    assert [p.name for p in (tmp_path / "t").rglob("*")
            if p.is_file()] == [f"{key}.pkl"]  # no temporary file left
    pd.testing.assert_frame_equal(c.get(key)["x"], pd.DataFrame({"v": [1.5, np.nan]}))
    c._path(key).write_bytes(b"truncated")
    assert c.get(key) is None  # an unreadable entry is a miss, not an error
    with pytest.raises(ValueError, match=r"`key` must be a sha256 hex digest, but '\.\./x'"):
        c.get("../x")
    deferred = ResultCache(tmp_path, "d", defer=True)
    assert deferred.put(key, 1) and not (tmp_path / "d").exists()
    assert deferred.flush() == 1 and ResultCache(tmp_path, "d").get(key) == 1
    assert not ResultCache(tmp_path, "r", write=False).put(key, 1)
    assert not (tmp_path / "r").exists()
    # entries of another exresearch version are removed by the next build
    old = tmp_path / "t" / ("0" * 16) / key[:2] / f"{key}.pkl"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x")
    assert prune(tmp_path) == [f"t/{'0' * 16}"]
    assert not old.exists() and c.get(key) is None and c.has(key)  # (truncated above)


def test_cache_folder_follows_the_environment_and_is_private(tmp_path, monkeypatch):
    from exresearch.build.cache import cache_root, open_site_cache, site_cache_dir

    monkeypatch.setenv("EXRESEARCH_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("EXRESEARCH_CACHE_DIR")
    assert cache_root() == tmp_path / "xdg" / "exresearch"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: absolute only
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "exresearch"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == tmp_path / "home" / ".cache" / "exresearch"
    site = site_cache_dir(tmp_path / "reports" / "demo")
    assert site.parent == cache_root() and len(site.name) == 64
    assert str(tmp_path) not in site.name and site != site_cache_dir(tmp_path / "reports" / "x")
    folder, why = open_site_cache(site)
    assert folder == site and why == ""
    for p in (site, site.parent, site.parent.parent):  # every folder it made: 0o700
        assert p.stat().st_mode & 0o777 == 0o700, p
    assert list(site.iterdir()) == []  # the write probe is gone
    (tmp_path / "file").write_text("x")
    folder, why = open_site_cache(tmp_path / "file" / "sub")
    assert folder is None and why.startswith("Not a directory") and str(tmp_path) in why


# --------------------------------------------------------------------------- validation
def test_validation_cache_revalidates_only_changed_files(tmp_path):
    study = tmp_path / "study"
    shutil.copytree(VALID, study)
    files = sorted(k for k in load_study(study).hashes if k != "study.yml")
    cache = ResultCache(tmp_path / "cache", "validation")
    _same_study(load_study(study, cache=cache), load_study(study))
    assert (cache.hits, cache.misses) == (0, len(files))
    warm = ResultCache(tmp_path / "cache", "validation")
    _same_study(load_study(study, cache=warm), load_study(study))
    assert (warm.hits, warm.misses) == (len(files), 0)

    # one answer changed: that file alone is read and checked again
    survey = study / "clients" / "acme" / "survey.csv"
    survey.write_text(survey.read_text().replace("u1,2025Q1,r1,4,5,4", "u1,2025Q1,r1,3,5,4", 1))
    again = ResultCache(tmp_path / "cache", "validation")
    fresh = load_study(study)
    _same_study(load_study(study, cache=again), fresh)
    assert (again.hits, again.misses) == (len(files) - 1, 1)
    assert fresh.survey("acme").loc[0, "eng_1"] == 3.0

    # the checks across files still run on cached files: a unit without outcomes
    outcomes = study / "clients" / "acme" / "outcomes.csv"
    outcomes.write_text("\n".join(line for line in outcomes.read_text().splitlines()
                                  if not line.startswith("u2,")) + "\n")
    cached = load_study(study, cache=ResultCache(tmp_path / "cache", "validation"))
    assert "unit 'u2' has survey data but no outcomes" in set(cached.warnings["problem"])
    _same_study(cached, load_study(study))

    # an invalid file is reported exactly as without the cache, and never cached
    survey.write_text(survey.read_text().replace("u1,2025Q1,r1,3,5,4", "u1,2025Q1,r1,9,5,4", 1))
    with pytest.raises(StudyValidationError) as plain:
        load_study(study)
    for _ in range(2):
        with pytest.raises(StudyValidationError) as through:
            load_study(study, cache=ResultCache(tmp_path / "cache", "validation"))
        pd.testing.assert_frame_equal(through.value.problems, plain.value.problems)
    assert "value 9 outside the scale range 1-5 of scale 'engagement'" in set(
        plain.value.problems["problem"])


def test_validation_cache_follows_study_yml(tmp_path):
    """What study.yml asks of a file is part of its key, not study.yml's bytes."""
    study = tmp_path / "study"
    shutil.copytree(VALID, study)
    load_study(study, cache=ResultCache(tmp_path / "cache", "validation"))
    yml = study / "study.yml"
    yml.write_text(yml.read_text() + "\n# a comment: the files' checks did not change\n")
    warm = ResultCache(tmp_path / "cache", "validation")
    load_study(study, cache=warm)
    assert (warm.hits, warm.misses) == (4, 0)
    text = yml.read_text()
    assert "min_group_size: 3" in text
    yml.write_text(text.replace("min_group_size: 3", "min_group_size: 4"))
    other = ResultCache(tmp_path / "cache", "validation")
    load_study(study, cache=other)
    assert (other.hits, other.misses) == (4, 0)  # group size: not a check of the files
    yml.write_text(yml.read_text().replace("points: [1, 5]", "points: [1, 7]"))
    wider = ResultCache(tmp_path / "cache", "validation")
    load_study(study, cache=wider)
    assert (wider.hits, wider.misses) == (2, 2)  # the surveys' range changed, not outcomes'


# --------------------------------------------------------------------------- summaries
@pytest.fixture(scope="module")
def sim_study(tmp_path_factory):
    from exresearch.simulate import simulate_study

    return simulate_study(tmp_path_factory.mktemp("cache") / "study", n_clients=4,
                          n_units=10, n_periods=3, seed=7)


def _stacked(study, roles, names, *, n_boot, seed):
    """The per-client tables as the notebooks computed them before, over the whole study."""
    cfg, ex, cx = study.config, roles.ex, roles.primary_cx
    panels = {c: report.client_panel(study, c, roles) for c in study.clients}
    means = report.all_unit_means(study, roles, panels=panels)
    ind = {c: cfg.client(c).industry for c in study.clients}
    means_c = synthesis.add_composite(means, outcomes=roles.outcomes,
                                      higher_is_better=roles.higher_is_better)
    surveys = {c: report.reported_survey(study, c, panels[c]) for c in study.clients}
    m = cfg.min_group_size
    per_client_c = report.per_client_correlations(
        means_c, x=roles.ex_measures, y=[*roles.outcomes, synthesis.COMPOSITE], names=names,
        industries=ind)
    return {
        "means": means,
        "per_client": per_client_c[per_client_c["y"] != synthesis.COMPOSITE],
        "per_client_c": per_client_c,
        "paths_by_client": report.cross_lagged_by_client(
            panels, x=ex, y=cx, periods=list(cfg.periods), names=names),
        "within_by_client": pd.concat([
            synthesis.within_paths_by_client(panels, x=ex, y=y, periods=list(cfg.periods),
                                             names=names).assign(outcome=y)
            for y in roles.outcomes], ignore_index=True),
        "utility": report.utility_by_client(means, x=ex, y=roles.outcomes, names=names,
                                            n_boot=n_boot, seed=seed),
        "reliabilities": synthesis.reliabilities(study, panels=panels, roles=roles,
                                                 names=names),
        "icc2": synthesis.icc2_table(study, panels=panels, roles=roles, names=names),
        "counts": report.per_client(study, lambda c: report.response_counts(
            panels[c], periods=cfg.periods)),
        "missing": report.per_client(study, lambda c: report.missingness(
            surveys[c], scales=cfg.scales)),
        "quality": report.quality_by_client(study, surveys),
        "suppressed": report.per_client(study, lambda c: report.suppressed_units(
            panels[c], min_group_size=m)),
    }


def test_summaries_equal_the_stacked_tables_with_and_without_cache(sim_study, tmp_path):
    study = load_study(sim_study)
    roles, names = report.measure_roles(study.config), report.display_names(study)
    want = _stacked(study, roles, names, n_boot=100, seed=3)
    for cache in (False, tmp_path / "c", tmp_path / "c"):  # none, cold, warm
        syn = report.synthesis_inputs(study, roles=roles, names=names, n_boot=100, seed=3,
                                      cache=cache)
        dq = report.quality_inputs(study, roles=roles, cache=cache)
        for name, frame in want.items():
            got = getattr(syn, name, None)
            got = getattr(dq, name) if got is None else got
            pd.testing.assert_frame_equal(got, frame, check_exact=True, obj=name)
    # one entry per client for its panel, its synthesis part and its quality part, and
    # the two stacks of those parts (test_summaries_stack.py)
    assert len(_entries(tmp_path / "c")) == 3 * len(study.clients) + 2


def test_summaries_recompute_only_the_changed_client(sim_study, tmp_path):
    study_dir = tmp_path / "study"
    shutil.copytree(sim_study, study_dir)
    cache = tmp_path / "c"
    report.synthesis_inputs(load_study(study_dir), n_boot=100, seed=3, cache=cache)
    before = _entries(cache)
    survey = study_dir / "clients" / "client-02" / "survey.csv"
    lines = survey.read_text().splitlines()
    head, row = lines[0].split(","), lines[1].split(",")
    col = head.index(next(h for h in head[3:] if h.startswith("eng")))
    row[col] = "1" if row[col] != "1" else "2"
    survey.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    study = load_study(study_dir)
    got = report.synthesis_inputs(study, n_boot=100, seed=3, cache=cache)
    assert len(_entries(cache) - before) == 2  # client-02's panel and synthesis part
    roles = report.measure_roles(study.config)
    want = _stacked(study, roles, report.display_names(study), n_boot=100, seed=3)
    pd.testing.assert_frame_equal(got.per_client_c, want["per_client_c"], check_exact=True)
    pd.testing.assert_frame_equal(got.within_by_client, want["within_by_client"],
                                  check_exact=True)


def test_cache_from_environment(sim_study, tmp_path, monkeypatch):
    study = load_study(sim_study)
    monkeypatch.setenv("EXRESEARCH_CACHE", str(tmp_path / "missing"))
    report.client_panels(study)  # a cache folder that does not exist is not used
    assert not (tmp_path / "missing").exists()
    (tmp_path / "env").mkdir()
    monkeypatch.setenv("EXRESEARCH_CACHE", str(tmp_path / "env"))
    report.client_panels(study)
    assert len(_entries(tmp_path / "env")) == len(study.clients)


# --------------------------------------------------------------------------- the build


@pytest.mark.slow
def test_one_client_changed_rebuild_equals_a_build_from_scratch(sim_study, tmp_path,
                                                                monkeypatch,
                                                                change_one_answer):
    """The real notebooks: after one client's data changed, the rebuild re-runs that
    client, the synthesis and data quality; they compute only that client's part (the
    others' come from the cache), and every table equals a run without any cache."""
    from exresearch.build import build_site, execute_report
    from exresearch.build.cache import CACHE_DIR_ENV, site_cache_dir
    from exresearch.build.records import NOTEBOOKS
    from exresearch.config import notebooks_dir
    from exresearch.kernel import kernel_for_batch

    monkeypatch.delenv("EXRESEARCH_NOTEBOOKS", raising=False)
    monkeypatch.delenv("EXRESEARCH_CACHE", raising=False)
    study = tmp_path / "study"
    shutil.copytree(sim_study, study)
    out = tmp_path / "site"
    first = build_site(study, out=out, progress=False, pdf=False)
    assert first.exit_code == 0
    cache = first.cache  # outside the site, where the rules say (conftest: a tmp folder)
    assert cache == site_cache_dir(out) and cache.parent == Path(os.environ[CACHE_DIR_ENV])
    assert not (out / ".exresearch" / "cache").exists() and not list(out.rglob("*.pkl"))
    validation, summaries = _entries(cache / "validation"), _entries(cache / "summaries")
    # each client's panel, unit means (the benchmark: the zygote, once the lock is held),
    # synthesis part and quality part; the stacks of the synthesis and quality parts
    assert len(validation) == 2 * 4 and len(summaries) == 4 * 4 + 2
    assert (cache / ".gitignore").read_text().endswith("\n*\n")  # study data: never committed
    manifest = (out / "manifest.json").read_text()
    assert ".exresearch" not in manifest and not list((out / "share").rglob(".exresearch"))
    workbook = out / "workbooks" / "client-client-01.xlsx"
    inode = workbook.stat().st_ino

    change_one_answer(study, "client-02")
    result = build_site(study, out=out, progress=False, pdf=False)
    assert result.exit_code == 0 and result.cache == cache
    assert sorted(result.executed) == ["client-client-02", "data-quality", "synthesis"]
    assert not list(out.rglob("*.pkl"))  # nothing under --out holds study data
    assert len(_entries(cache / "validation") - validation) == 1  # client-02's survey
    # its panel, unit means and two parts
    assert len(_entries(cache / "summaries") - summaries) == 4
    assert workbook.stat().st_ino == inode  # an unchanged report's workbook is reused
    assert (out / "workbooks" / "synthesis.xlsx").is_file()

    for kind, key in (("synthesis", "synthesis"), ("data_quality", "data-quality")):
        task = {"key": key, "kind": kind, "title": key, "provenance": {}, "timeout": None,
                "notebook_json": (notebooks_dir() / NOTEBOOKS[kind]).read_text(),
                "parameters": {"study_path": str(study)}, "kernel_name": kernel_for_batch()}
        fresh = execute_report(task, kernels="subprocess")  # no cache, no zygote
        assert fresh["status"] == "ok", fresh["error"]
        built = sorted(p.name for p in (out / "tables" / key).iterdir()
                       if p.name != "data_dictionary.csv")
        assert built == sorted(fresh["tables"])
        for name, data in fresh["tables"].items():
            if not name.endswith(".csv"):
                assert (out / "tables" / key / name).read_bytes() == data, name
                continue
            want = pd.read_csv(io.BytesIO(data))
            got = pd.read_csv(out / "tables" / key / name)
            pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12,
                                          atol=1e-12, obj=f"{key}/{name}")


def test_prune_removes_only_what_the_cache_wrote(tmp_path):
    # `--cache DIR` may name a user's own folder: pruning other versions' entries must
    # leave every file and folder the cache did not write, even ones shaped like it
    from exresearch.build.cache import ResultCache, cache_key, code_version, prune

    key = cache_key("validation", {"x": 1})
    user = {
        "thesis/chapter1/draft.docx": b"mine",
        "projects/analysis/results.csv": b"a,b\n",
        f"validation/{'0' * 16}/notes.txt": b"keep",
        f"validation/{'0' * 16}/ab/readme.md": b"keep",
        f"validation/{'0' * 16}/ab/{'f' * 64}.pkl.bak": b"keep",
        f"validation/not-a-version/{key[:2]}/{key}.pkl": b"keep",
    }
    for rel, data in user.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    old = tmp_path / "validation" / ("1" * 16) / key[:2] / f"{key}.pkl"
    stale_tmp = old.with_name(f".{key}.pkl.123-0a1b2c3d.tmp")
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x")
    stale_tmp.write_bytes(b"x")
    current = ResultCache(tmp_path, "validation")
    assert current.put(key, 1)
    assert prune(tmp_path) == [f"validation/{'1' * 16}"]
    assert not old.exists() and not stale_tmp.exists()
    assert not (tmp_path / "validation" / ("1" * 16)).exists()  # emptied, so removed
    for rel, data in user.items():
        assert (tmp_path / rel).read_bytes() == data, rel
    assert (tmp_path / "validation" / code_version("validation")[:16]).is_dir()
    assert current.get(key) == 1
    assert prune(tmp_path) == []  # nothing left to remove


def _env_task(key):
    """A one-cell notebook that shows the result cache its kernel was given."""
    import nbformat

    from exresearch.kernel import kernel_for_batch

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os\n'cache: ' + os.environ.get('EXRESEARCH_CACHE', 'none')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return {"key": key, "kind": "synthesis", "title": key, "provenance": {},
            "timeout": 120, "notebook_json": nbformat.writes(nb), "parameters": {},
            "kernel_name": kernel_for_batch()}


@pytest.mark.slow
def test_dask_workers_on_this_machine_get_the_result_cache(tmp_path):
    # a LocalCluster's workers run here, as this user: their kernels read and write the
    # build's result cache; a cluster named by its scheduler may run elsewhere: none
    from distributed import LocalCluster

    from exresearch.build.execute import run_dask

    cache = tmp_path / "cache"
    got = {}

    def on_done(task, res):
        assert res["status"] == "ok", res["error"]
        got[task["key"]] = res["notebook"]

    import re

    run_dask([_env_task("local")], 1, None, on_done, cache=cache)
    def shown(nb_text):  # the cell's output (its source has "'cache: ' + ...")
        return [v for v in re.findall(r"'cache: ([^']*)'", nb_text) if v]

    local = shown(got["local"])  # (the published notebook redacts /tmp/... as <tmp>)
    assert len(local) == 1 and local[0].endswith(f"/{tmp_path.name}/cache")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        run_dask([_env_task("remote")], 1, cluster.scheduler_address, on_done, cache=cache)
    assert shown(got["remote"]) == ["none"]


# --------------------------------------------------------------------------- code keys
def _package_copy(tmp_path) -> Path:
    from exresearch import config

    pkg = tmp_path / "exresearch"
    shutil.copytree(config.PACKAGE_DIR, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def _edit(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")


def test_summaries_key_follows_the_modules_they_use_not_the_whole_package(tmp_path):
    # an upgrade touching site.py or deliver.py must not make every client's part of the
    # synthesis be computed again; one touching a module the summaries run must
    from exresearch.build.cache import _closure_source

    pkg = _package_copy(tmp_path)
    before = {k: _closure_source(k, package_dir=pkg) for k in ("summaries", "validation")}
    for rel in ("site.py", "deliver.py", "cli.py", "build/core.py", "build/sitefiles.py"):
        _edit(pkg / rel)
        assert {k: _closure_source(k, package_dir=pkg)
                for k in ("summaries", "validation")} == before, rel
    # used by the summaries only (panels, the statistics under them): validation keeps
    for rel in ("report/panels.py", "report/summaries.py", "psychometric.py",
                "direction.py", "report/__init__.py"):
        old = _closure_source("summaries", package_dir=pkg)
        _edit(pkg / rel)
        assert _closure_source("summaries", package_dir=pkg) != old, rel
        assert _closure_source("validation", package_dir=pkg) == before["validation"], rel
    # used by both (the Study object, its readers, the cache itself, the package's data)
    for rel in ("study.py", "readers.py", "__init__.py", "build/cache.py", "loop_power.csv"):
        old = {k: _closure_source(k, package_dir=pkg) for k in ("summaries", "validation")}
        _edit(pkg / rel)
        for k in ("summaries", "validation"):
            assert _closure_source(k, package_dir=pkg) != old[k], (rel, k)


def test_import_closure_rules(tmp_path):
    from exresearch.build.cache import _closure_source, import_closure

    pkg = _package_copy(tmp_path)
    mods = import_closure(["exresearch.report.summaries"], package_dir=pkg)
    # lazy imports inside functions count (study -> readers), so do the packages on the way
    assert {"exresearch.readers", "exresearch.report", "exresearch"} <= set(mods)
    assert not {"exresearch.site", "exresearch.deliver", "exresearch.build.core"} & set(mods)
    # a public name of the package stands for its module; a non-literal import_module for
    # every module its strings name; a bare ``import exresearch`` for the whole package
    (pkg / "report" / "summaries.py").write_text(
        "def f():\n    from .. import simulate_study, site\n", encoding="utf-8")
    assert {"exresearch.simulate", "exresearch.site"} <= set(
        import_closure(["exresearch.report.summaries"], package_dir=pkg))
    (pkg / "report" / "summaries.py").write_text(
        "import importlib\nNAMES = ('deliver',)\n"
        "def f(n):\n    return importlib.import_module(f'exresearch.{n}')\n", encoding="utf-8")
    assert "exresearch.deliver" in import_closure(["exresearch.report.summaries"],
                                                  package_dir=pkg)
    (pkg / "report" / "summaries.py").write_text("def f():\n    import exresearch\n",
                                                  encoding="utf-8")
    assert import_closure(["exresearch.report.summaries"], package_dir=pkg) is None
    whole = _closure_source("summaries", package_dir=pkg)
    _edit(pkg / "site.py")  # now every file counts
    assert _closure_source("summaries", package_dir=pkg) != whole


def test_entries_are_kept_under_their_kind_s_code_version(tmp_path):
    import hashlib
    import json

    from exresearch.build.cache import code_version

    assert code_version("summaries") != code_version()  # (the whole package's)
    for kind, store in (("summary-panel", "summaries"), ("validation", "validation")):
        key = cache_key(kind, {"x": 1})
        text = json.dumps([kind, {"x": 1}, code_version(store)], sort_keys=True, default=str)
        assert key == hashlib.sha256(text.encode()).hexdigest()
        cache = ResultCache(tmp_path, store)
        assert cache.put(key, 1)
        assert (tmp_path / store / code_version(store)[:16] / key[:2] / f"{key}.pkl").is_file()
    assert prune(tmp_path) == []  # both are current


def test_walk_files_lists_what_rglob_lists(tmp_path):
    # the build state's file list and the foreign-file check walk the site with scandir
    from exresearch.build.publish import foreign_files, walk_files

    root = tmp_path / "site"
    for rel in ("reports/a.html", "tables/a-b/x.csv", "tables/a/y.csv", "share/a/.hidden",
                "index.html", ".exresearch/state.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / "tables" / "link.csv").symlink_to(root / "index.html")
    (root / "tables" / "dirlink").symlink_to(root / "reports")  # not followed
    (root / "tables" / "broken").symlink_to(root / "nowhere")
    want = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert walk_files(root) == want
    assert "tables/dirlink/a.html" not in want and "tables/link.csv" in want
    assert "tables/broken" in walk_files(root, links=True)
    written = ["reports/a.html", "tables/a/y.csv", "index.html"]
    top, inner = foreign_files(root, written)
    # what the rglob of each of the build's folders gave, in pathlib's order
    old = [p.relative_to(root).as_posix() for name in ("reports", "share", "tables")
           for p in sorted((root / name).rglob("*")) if p.is_file() or p.is_symlink()]
    assert inner == [f for f in old if f not in written]
    assert inner == ["share/a/.hidden", "tables/a-b/x.csv", "tables/broken", "tables/dirlink",
                     "tables/link.csv"] and top == []
