"""The stacked entry of the summaries (issue 20): a rebuild after one client's data changed
takes the other clients' rows from the last build's stack and reads one part; every
table must be the same as stacking every client's part without a cache (values, dtypes,
index, column order), whichever client changed, with clients added, removed or moved, and
when a client's frame has other dtypes than the others' (then every part is read)."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pandas as pd
import pytest

from exresearch import report
from exresearch.build.cache import ResultCache
from exresearch.report import summaries
from exresearch.study import load_study

N_BOOT, SEED = 100, 3
SYNTHESIS = ["means", "per_client", "per_client_c", "paths_by_client", "within_by_client",
             "utility", "reliabilities", "icc2"]
QUALITY = ["counts", "missing", "quality", "suppressed"]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    from exresearch.simulate import simulate_study

    return simulate_study(tmp_path_factory.mktemp("stack") / "study", n_clients=5,
                          n_units=8, n_periods=3, seed=11)


class _View:
    """The study with other clients, or with some clients' file hashes changed (what a
    change of their data does to their part keys), for the stack to splice."""

    def __init__(self, study, *, clients=None, touched=()):
        self._study = study
        self.clients = list(study.clients if clients is None else clients)
        self.hashes = {k: v + ("-changed" if k.split("/")[1:2] and k.split("/")[1] in touched
                               else "")
                       for k, v in study.hashes.items()}

    def __getattr__(self, name):
        return getattr(self._study, name)


def _inputs(study, cache, panels):
    roles = report.measure_roles(study.config)
    names = {c: f"shown {c}" for c in study.clients}
    syn = report.synthesis_inputs(study, roles=roles, names=names, n_boot=N_BOOT, seed=SEED,
                                  panels=panels, cache=cache)
    dq = report.quality_inputs(study, roles=roles, panels=panels, cache=cache)
    return {**{n: getattr(syn, n) for n in SYNTHESIS}, **{n: getattr(dq, n) for n in QUALITY}}


def _assert_same(got, want):
    for name, frame in want.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=True,
                                      check_index_type=True, check_column_type=True,
                                      obj=name)
        assert got[name].attrs == frame.attrs, name


def _store(folder):
    return ResultCache(folder, "summaries")


@pytest.fixture(scope="module", autouse=True)
def _each_part_computed_once():
    """Each client's synthesis and quality part computed once per study object.

    These tests are about which parts the summaries read, splice or compute (the
    ``ResultCache``'s hits and misses, the stacked frames), not about the statistics in
    a part: a part is a deterministic function of the study, the client and its panel,
    and the references below ask for the same parts again and again (about 1 s of CPU
    each, most of this module's time). So the real computation runs once per (study
    object, client) and every call gets a deep copy; the ResultCache under test is not
    touched, and :func:`odd` still changes the copies it gets. The key leaves out the
    panel and the roles, which every call here derives from the study: a later call
    must pass a panel equal to the first one's (checked), so a part that changed the
    module's panels in place would still be caught.
    """
    memo: dict = {}

    def memoised(kind, real):
        def part(study, cid, *args, **kwargs):
            base = study._study if isinstance(study, _View) else study
            key = (kind, id(base), cid, tuple(sorted(kwargs.items())))
            if key not in memo:  # the study held too, so that its id is not reused
                memo[key] = (base, copy.deepcopy(args[0]), real(study, cid, *args, **kwargs))
            pd.testing.assert_frame_equal(args[0], memo[key][1], check_exact=True)
            return copy.deepcopy(memo[key][2])
        return part

    with pytest.MonkeyPatch.context() as mp:
        for kind, fn in (("synthesis", "_synthesis_part"), ("quality", "_quality_part")):
            mp.setattr(summaries, fn, memoised(kind, getattr(summaries, fn)))
        yield


@pytest.fixture(scope="module")
def loaded(study_dir):
    study = load_study(study_dir)
    return study, report.client_panels(study, cache=False)


@pytest.mark.parametrize("changed", ["client-01", "client-03", "client-05"])
def test_one_client_changed_reads_one_part(study_dir, tmp_path, changed,
                                         change_one_answer):
    copy = tmp_path / "study"
    shutil.copytree(study_dir, copy)
    cache = tmp_path / "c"
    before = load_study(copy)
    reference = _inputs(before, False, None)
    _assert_same(_inputs(before, cache, None), reference)  # cold
    warm = _store(cache)
    _assert_same(_inputs(before, warm, None), reference)
    n = len(before.clients)
    assert (warm.hits, warm.misses) == (2 * n + 2, 0)  # the panels (twice), the two stacks

    change_one_answer(copy, changed)
    study = load_study(copy)
    want = _inputs(study, False, None)
    panels = report.client_panels(study, cache=False)
    store = _store(cache)
    got = _inputs(study, store, panels)
    # the two stacks and the changed client's two parts (computed), no other part read
    assert (store.hits, store.misses) == (2, 2)
    _assert_same(got, want)
    assert not got["per_client_c"].equals(reference["per_client_c"])
    store = _store(cache)  # the stacks written back: the next build reads them only
    _assert_same(_inputs(study, store, panels), want)
    assert (store.hits, store.misses) == (2, 0)


@pytest.mark.parametrize("clients", [
    ["client-01", "client-02", "client-03", "client-04"],  # one removed (the last)
    ["client-02", "client-03", "client-04", "client-05"],  # the first removed
    ["client-01", "client-02", "client-04", "client-05"],  # one in the middle removed
    ["client-05", "client-04", "client-03", "client-02", "client-01"],  # moved
])
def test_other_client_lists(loaded, tmp_path, clients):
    study, panels = loaded
    cache = tmp_path / "c"
    _inputs(study, cache, panels)
    view = _View(study, clients=clients)
    store = _store(cache)
    _assert_same(_inputs(view, store, panels), _inputs(view, False, panels))
    assert (store.hits, store.misses) == (2, 0)  # only the stacks read
    store = _store(cache)  # and a client back (added): its parts read, the others spliced
    _assert_same(_inputs(study, store, panels), _inputs(study, False, panels))
    assert store.hits == 2 + 2 * (len(study.clients) - len(clients)) and store.misses == 0


def test_a_client_added_to_study_yml(study_dir, tmp_path):
    """study.yml is part of every key: a client added there reads every part again."""
    copy = tmp_path / "study"
    shutil.copytree(study_dir, copy)
    shutil.rmtree(copy / "clients" / "client-05")
    yml = (copy / "study.yml").read_text()
    (copy / "study.yml").write_text("".join(
        line for line in yml.splitlines(keepends=True) if "id: client-05" not in line))
    smaller = load_study(copy)
    assert smaller.clients == ["client-01", "client-02", "client-03", "client-04"]
    cache = tmp_path / "c"
    _assert_same(_inputs(smaller, cache, None), _inputs(smaller, False, None))
    full = load_study(study_dir)
    _assert_same(_inputs(full, cache, None), _inputs(full, False, None))


# a client's frame with other dtypes: (name in the part, column, new values)
def _all_nan_object(frame, column):
    return frame.assign(**{column: pd.Series([None] * len(frame), dtype=object,
                                             index=frame.index)})


def _all_nan_float(frame, column):
    return frame.assign(**{column: np.nan})


def _empty(frame, column):
    return frame.iloc[:0].astype(object)


@pytest.fixture
def odd(monkeypatch):
    """``odd[(kind, client)] = (name, column, change)``: that client's part gets the
    change (a dtype unlike the other clients')."""
    changes: dict = {}
    for kind, fn in (("synthesis", "_synthesis_part"), ("quality", "_quality_part")):
        real = getattr(summaries, fn)

        def part(study, cid, *args, _real=real, _kind=kind, **kwargs):
            out = _real(study, cid, *args, **kwargs)
            if (_kind, cid) in changes:
                name, column, change = changes[(_kind, cid)]
                if name.endswith("]"):
                    i = int(name[name.index("[") + 1:-1])
                    name = name[:name.index("[")]
                    out[name] = [change(f, column) if j == i else f
                                 for j, f in enumerate(out[name])]
                else:
                    out[name] = None if change is None else change(out[name], column)
            return out

        monkeypatch.setattr(summaries, fn, part)
    return changes


CASES = [  # kind, name, column, change, whether the change gives another dtype
    ("synthesis", "utility", "d", _all_nan_object, True),
    ("synthesis", "within[1]", "b", _all_nan_float, False),  # all NaN, still float64
    ("synthesis", "means", "client_id", _empty, True),
    ("quality", "missing", "pct_missing", _all_nan_object, True),
    ("quality", "suppressed", "", _empty, True),
    ("quality", "agree", "", None, False),  # no agreement for the client: None
]


@pytest.mark.parametrize(("kind", "name", "column", "change", "other_dtype"), CASES)
def test_a_client_with_other_dtypes(loaded, tmp_path, odd, kind, name, column, change,
                                    other_dtype):
    study, panels = loaded
    parts = (summaries._synthesis_part(study, "client-01", panels["client-01"],
                                       report.measure_roles(study.config), n_boot=N_BOOT,
                                       seed=SEED) if kind == "synthesis"
             else summaries._quality_part(study, "client-01", panels["client-01"]))
    frame = summaries._flat(parts)[name]
    if column and column not in frame.columns:  # the first float column instead
        column = next(c for c in frame.columns if frame[c].dtype == np.float64)
    cache = tmp_path / "c"
    n = len(study.clients)

    def check(view, *, spliced):
        """One client changed since the last call: its two parts are read, and the
        other clients' from the stack, or (not spliced) every part of ``kind``."""
        store = _store(cache)
        _assert_same(_inputs(view, store, panels), _inputs(view, False, panels))
        assert store.hits + store.misses == (4 if spliced else 1 + n + 2), (
            store.hits, store.misses)

    _inputs(study, cache, panels)  # the stacks of clients with the same dtypes
    odd[(kind, "client-03")] = (name, column, change)  # client-03: a new dtype
    check(_View(study, touched=["client-03"]), spliced=not other_dtype)
    odd[(kind, "client-02")] = (name, column, change)  # client-02 as well: same dtypes
    check(_View(study, touched=["client-02", "client-03"]), spliced=True)
    del odd[(kind, "client-02")]  # client-02 as before: client-03's dtype still there
    check(_View(study, touched=["client-03"]), spliced=True)
    del odd[(kind, "client-03")]  # client-03 as before: that dtype gone
    check(study, spliced=not other_dtype)


def test_no_stack_or_an_unreadable_one(loaded, tmp_path):
    study, panels = loaded
    cache = tmp_path / "c"
    want = _inputs(study, False, panels)
    _assert_same(_inputs(study, cache, panels), want)
    stacks = sorted(p for p in cache.rglob("*.pkl")
                    if isinstance(_store(cache).get(p.stem), dict)
                    and "frames" in _store(cache).get(p.stem))
    assert len(stacks) == 2
    stacks[0].write_bytes(b"not a pickle")
    stacks[1].unlink()
    view = _View(study, touched=["client-02"])
    store = _store(cache)
    _assert_same(_inputs(view, store, panels), _inputs(view, False, panels))
    assert store.misses == 2 + 2  # both stacks, client-02's two parts
    assert store.hits == 2 * (len(study.clients) - 1)  # every other part read


def test_a_stack_of_other_parts_is_not_kept(loaded, tmp_path, odd):
    """Parts whose frames have other columns are stacked as before and kept no stack."""
    study, panels = loaded
    odd[("quality", "client-04")] = ("counts", "", lambda f, _: f.assign(extra=1.0))
    cache = tmp_path / "c"
    _assert_same(_inputs(study, cache, panels), _inputs(study, False, panels))
    store = _store(cache)
    _assert_same(_inputs(study, store, panels), _inputs(study, False, panels))
    assert (store.hits, store.misses) == (1 + len(study.clients), 1)  # no quality stack


def test_keys_hold_each_client_s_files_and_study_yml(loaded):
    """The keys (files grouped in one pass) are those of a pass over the files per
    client: entries written before stay valid."""
    from exresearch.build.cache import cache_key

    study, _ = loaded
    view = _View(study)
    view.hashes = {**study.hashes, "clients/client-011/survey.csv": "x",
                   "clients/client-01": "y", "clients-01/a.csv": "z"}
    files = summaries._client_files(view)
    for cid in study.clients:
        want = {k: v for k, v in view.hashes.items()
                if k == "study.yml" or k.startswith(f"clients/{cid}/")}
        assert files[cid] == want and len(want) == 3
        assert summaries._client_key(view, cid, "panel", drivers=["a"]) == cache_key(
            "summary-panel", {"client": cid, "files": want, "drivers": ["a"]})
        assert summaries._client_key(view, cid, "x", files=files, n=1) == cache_key(
            "summary-x", {"client": cid, "files": want, "n": 1})


def test_frames_with_a_client_id_column_are_stacked_as_per_client_does(loaded, tmp_path,
                                                                       odd):
    """per_client puts client_id in place client by client when a frame has one: from
    the stack, with each client's rows."""
    study, panels = loaded
    for cid in study.clients:
        odd[("quality", cid)] = ("missing", "", lambda f, _: f.assign(client_id="someone"))
    cache = tmp_path / "c"
    _inputs(study, cache, panels)
    view = _View(study, touched=["client-02"])
    store = _store(cache)
    got = _inputs(view, store, panels)
    assert store.hits + store.misses == 4  # spliced: the stacks and client-02's parts
    want = _inputs(view, False, panels)
    _assert_same(got, want)
    assert want["missing"]["client_id"].tolist() == [
        c for c in study.clients
        for _ in range(int((want["missing"]["client_id"] == c).sum()))]
