"""``build_site``: the build as a sequence of named steps."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .. import config
from ..exceptions import BuildEnvironmentError, ParameterError
from .plan import Plan, fast_path, make_plan, state_records, study_token
from .publish import (
    SiteLock,
    Staging,
    check_out,
    cleanup_stale,
    environment_error,
    link_or_copy,
    walk_files,
)
from .records import NOTEBOOKS, STATE_FILE, STATE_VERSION, TABLE_NAME, BuildResult, Phases
from .sitefiles import (
    common_provenance,
    inside,
    page_provenance,
    read_headline,
    write_share_bundles,
    write_site_files,
)

__all__ = ["build_site"]

log = logging.getLogger("exresearch.build")


def _pkg():
    from .. import build

    return build


@dataclass
class _Build:
    """What the steps of one build share."""

    study: object
    study_path: Path
    out: Path
    jobs: int
    force: bool
    only: object
    executor: str
    scheduler: str | None
    progress: bool
    t0: float
    pdf: bool | None = None
    cache: Path | None = None
    cache_note: str = ""
    old_cache_removed: bool = False
    runtime: object = None
    plan: Plan | None = None
    staging: Staging | None = None
    built_at: str = ""
    prov: dict = field(default_factory=dict)
    kept: list = field(default_factory=list)
    phases: Phases = field(default_factory=Phases)

    def say(self, line: str) -> None:
        if self.progress:
            print(line, file=sys.stderr)
        log.info(line)


#: What the driver imports to execute reports and write the site (papermill, nbclient,
#: nbconvert, xlsxwriter, the report package): imported in a thread while the driver waits
#: for the zygote, not after it (the zygote imports and preloads meanwhile). The driver
#: joins the thread before it goes on, so no module is imported by two threads at once.
WARM_IMPORTS = ("papermill", "nbformat", "nbclient", "jupyter_client.asynchronous.client",
                "nbconvert", "xlsxwriter", "exresearch.site", "exresearch.build.execute",
                "exresearch.deliver", "exresearch.report")


def _warm_imports():
    """Start importing :data:`WARM_IMPORTS` in a thread; return the thread (join it)."""
    import importlib
    import threading

    def run():
        for name in WARM_IMPORTS:
            with contextlib.suppress(Exception):  # (a missing one is imported, and fails, later)
                importlib.import_module(name)

    thread = threading.Thread(target=run, name="exresearch-warm-imports", daemon=True)
    thread.start()
    return thread


# --------------------------------------------------------------------------- steps
def _check_arguments(executor, jobs) -> int:
    if executor not in ("local", "dask"):
        raise ParameterError(
            f"The value for `executor` must be one of ['local', 'dask'], but {executor!r} "
            "was passed"
        )
    if jobs is None:  # the cores this process may use (affinity/cgroup-aware where possible)
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        jobs = jobs or os.cpu_count() or 1
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ParameterError(f"`jobs` must be a positive integer, but {jobs!r} was passed")
    return jobs


def _load(study, cache=None):
    if hasattr(study, "clients") and hasattr(study, "config"):
        return study
    from ..study import load_study

    return load_study(Path(study), cache=cache)


def _without_frames(study):
    """The study as the driver needs it once the build is planned: path, config, clients,
    hashes, warnings; no survey or outcome frames (the reports' kernels get the zygote's
    study). The frames of a study the build loaded itself are then freed: 130 MiB of the
    driver's memory for the rest of the build at 300 clients x 30 units x 4 periods."""
    from ..study import Study

    return Study(study.path, study.config, {}, {}, study.hashes, study.warnings,
                 item_labels=study.item_labels)


def _give_back_freed_memory() -> bool:
    """Hand the memory of freed objects back to the system (glibc's ``malloc_trim``).

    The study's frames are many small blocks: once freed, glibc keeps their pages for
    later allocations, so the process stays as large as before (130 MiB at 300 clients)
    unless trimmed. Written by hand with ctypes: Python has no binding. False where
    there is no glibc (the memory then stays reserved, nothing else changes).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _cache_folder(cache, out: Path) -> Path | None:
    """The result cache's folder for the site ``out`` (nothing created yet): ``cache``
    (a folder), None (the default, outside ``out``: :func:`.cache.site_cache_dir`) or
    False (no cache)."""
    from .cache import site_cache_dir

    if cache is False:
        return None
    if cache is None:
        folder = site_cache_dir(out)
    elif isinstance(cache, str | os.PathLike) and str(cache):
        folder = Path(cache).expanduser()
    else:
        raise ParameterError(f"`cache` must be a folder, None or False, but {cache!r} was passed")
    folder = folder.resolve()
    if folder == out or out in folder.parents:  # study data one copy away from publication
        raise ParameterError(
            f"The result cache holds the clients' raw answers and must be outside --out "
            f"({out}), but {folder} was passed"
        )
    return folder


def _validation_cache(folder: Path | None):
    """The validation cache in ``folder``, read now and written once the lock is held
    (nothing is written for an invalid study, nor before the lock); None without one."""
    from .cache import ResultCache

    return None if folder is None else ResultCache(folder, "validation", defer=True)


def _open_cache(b: _Build, vcache) -> None:
    """Once the lock is held: remove a cache an earlier build left inside ``out``, create
    the cache folder (or go on without one, said once), drop other versions' entries."""
    import shutil

    from .cache import OLD_CACHE_DIR, open_site_cache, prune

    old = b.out / OLD_CACHE_DIR  # inside the build's own .exresearch/: written by a build
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
        b.old_cache_removed = True
    if b.cache is None:
        return
    folder, why = open_site_cache(b.cache)
    if folder is None:
        b.cache_note = (f"exresearch build: no result cache ({why}); building without it "
                        "(same results, slower rebuilds)")
        if b.progress:
            print(b.cache_note, file=sys.stderr)
        log.warning(b.cache_note)
        b.cache = None
        if b.runtime is not None:
            b.runtime.extra_env = {}  # the kernels: no cache either
        return
    ignore = folder / ".gitignore"  # it holds the clients' raw answers: never committed
    if not ignore.is_file():
        with contextlib.suppress(OSError):  # (an optimisation: never a reason to fail)
            ignore.write_text("# exresearch build: raw study data, never commit\n*\n")
    prune(folder)  # entries of other exresearch versions
    if vcache is not None:
        vcache.flush()


def _carry_over(b: _Build) -> None:
    """Hard-link the pages, notebooks and tables of reused reports into the staging site."""
    run_keys = {r.key for r in b.plan.to_run}
    out, site = b.out, b.staging.site
    for r in b.plan.records:
        if r.key in run_keys:
            continue
        p = b.plan.prev.get(r.key)
        if p is None or p.html is None or not (out / p.html).is_file():
            continue  # not built (only=...) and never built before
        for rel in [p.html, p.notebook, *p.tables]:
            if rel and (out / rel).is_file():
                link_or_copy(out / rel, site / rel)
        keep = asdict(p)
        keep.update(executed=False, name=r.name, industry=r.industry)
        if p.fingerprint != r.fingerprint:
            keep["status"] = p.status  # kept from an earlier build (only=...)
        r.__dict__.update(keep)


def _tasks(b: _Build) -> list[dict]:
    from ..kernel import kernel_for_batch

    nb_dir = config.notebooks_dir()
    kernel_name = kernel_for_batch() if b.plan.to_run else None
    tasks = []
    for r in b.plan.to_run:
        prov = dict(b.prov)
        prov.update(page_provenance(r, b.study_path))
        tasks.append({
            "key": r.key, "kind": r.kind,
            "title": f"{r.name}: client report" if r.kind == "client" else r.name,
            "notebook_json": (nb_dir / NOTEBOOKS[r.kind]).read_text(encoding="utf-8"),
            "parameters": r.parameters, "provenance": prov, "timeout": None,
            "workdir": str(b.staging.work), "kernel_name": kernel_name,
        })
    return tasks


def _store(b: _Build, r, res: dict) -> None:
    """Write one executed report's page, notebook and tables into the staging site."""
    site = b.staging.site
    html_rel = f"reports/{r.key}.html"
    inside(site, html_rel).parent.mkdir(exist_ok=True)
    inside(site, html_rel).write_text(res["html"], encoding="utf-8")
    nb_rel = None
    if res["notebook"] is not None:
        nb_rel = f"notebooks/{r.key}.ipynb"
        inside(site, nb_rel).parent.mkdir(exist_ok=True)
        inside(site, nb_rel).write_text(res["notebook"], encoding="utf-8")
    tables = []
    for name, data in sorted(res["tables"].items()):
        if not TABLE_NAME.fullmatch(name):
            continue  # (a dask worker's answer is checked again here)
        rel = f"tables/{r.key}/{name}"
        inside(site, rel).parent.mkdir(parents=True, exist_ok=True)
        inside(site, rel).write_bytes(data)
        tables.append(rel)
    r.status, r.error, r.duration = res["status"], res["error"], res["duration"]
    r.html, r.notebook, r.tables = html_rel, nb_rel, tables
    r.executed, r.built_at = True, b.built_at


def _execute(b: _Build) -> None:
    """Run the stale reports, storing each as it finishes."""
    tasks = _tasks(b)
    if not tasks:
        return
    by_key = {r.key: r for r in b.plan.records}
    bar = None
    if b.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc="reports", unit="report", file=sys.stderr)
    done = [0]

    def on_done(task, res):
        r = by_key[task["key"]]
        _store(b, r, res)
        done[0] += 1
        line = (f"[{done[0]}/{len(tasks)}] {r.status:<6} {r.key} "
                f"({r.duration:.1f} s)" + (f": {r.error}" if r.error else ""))
        if bar is not None:
            bar.write(line, file=sys.stderr)
            bar.update(1)
        log.info(line)

    try:
        if b.executor == "dask":
            from .execute import run_dask

            run_dask(tasks, b.jobs, b.scheduler, on_done, cache=b.cache)
        else:
            from .execute import run_local

            run_local(tasks, b.jobs, on_done, b.runtime)
    finally:
        if bar is not None:
            bar.close()


def _write_site(b: _Build) -> None:
    """Index, manifest, share bundles and the build state, into the staging site."""
    site, plan, cfg, ph = b.staging.site, b.plan, b.study.config, b.phases
    records = plan.records
    headline = []
    syn = next((r for r in records if r.key == "synthesis"), None)
    if syn is not None and syn.status == "ok":
        headline = read_headline(site / "tables" / syn.key)
    with ph("share bundles"):
        shares = write_share_bundles(site, cfg, records)
    with ph("index and manifest"):
        write_site_files(site, b.study, cfg, plan.clients, records, headline, b.prov, shares)
    # stylesheet, Excel workbooks, briefs, PDFs, share landing pages (exresearch.deliver)
    from ..deliver import publish_extras

    with ph("workbooks, briefs, PDFs"):
        publish_extras(site, records=records, study=b.study, previous=b.out, pdf=b.pdf,
                       progress=b.progress, tmpdir=b.staging.work, jobs=b.jobs)
    with ph("build state"):
        _write_state(b)


def _write_state(b: _Build) -> None:
    """The build state (what the next build compares with) and the list of files."""
    site, plan, records = b.staging.site, b.plan, b.plan.records
    files = [f for f in walk_files(site) if not f.startswith(".")]
    # no absolute path in the site, this file included: the study by a hash of its path
    state = {
        "version": STATE_VERSION, "study": study_token(b.study_path), "clients": plan.clients,
        "env": plan.env, "tree": plan.tree, "stats": plan.stats or {},
        "reports": state_records(records, b.study_path),
        "files": files,
    }
    (site / STATE_FILE).parent.mkdir(parents=True, exist_ok=True)
    (site / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True))


def _publish_site(b: _Build) -> None:
    b.kept = _pkg()._publish(b.staging.site, b.out) or []


def _summary(b: _Build) -> BuildResult:
    records, to_run = b.plan.records, b.plan.to_run
    exit_code = 1 if any(r.status == "failed" for r in records) else 0
    result = BuildResult(index=b.out / "index.html", exit_code=exit_code, reports=records,
                         executed=[r.key for r in to_run], duration=time.perf_counter() - b.t0,
                         kept=list(b.kept), cache=b.cache, phases=b.phases.as_dict())
    if b.kept:
        shown = ", ".join(b.kept[:10]) + (f" and {len(b.kept) - 10} more"
                                          if len(b.kept) > 10 else "")
        b.say(f"exresearch build: kept {len(b.kept)} file(s) it did not write: {shown}")
    if b.old_cache_removed:
        b.say("exresearch build: removed the old result cache .exresearch/cache/ from the "
              "site folder (study data); the cache is now outside it"
              + (f": {b.cache}" if b.cache else " (none: --no-cache)"))
    b.say(f"exresearch build: {len(to_run)} executed, {len(records) - len(to_run)} reused, "
          f"{len(result.failed)} failed, {result.duration:.1f} s -> {result.index}")
    return result


def _build(b: _Build) -> BuildResult:
    """The build once the arguments are checked: the steps, in order."""
    vcache = _validation_cache(b.cache)
    ph = b.phases
    loaded_here = not (hasattr(b.study, "clients") and hasattr(b.study, "config"))
    with ph("load and validate"):
        b.study = _load(b.study, vcache)  # raises StudyValidationError: nothing written yet
    with ph("plan"):
        b.plan = make_plan(b.study, b.study_path, b.out, force=b.force, only=b.only)
    b.built_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    b.prov = common_provenance(b.study.config, b.built_at)
    lock = SiteLock(b.out)  # a second build into ``out`` stops here (exit 2)
    published = False
    try:
        with ph("lock and cache"):
            _open_cache(b, vcache)
            b.staging = Staging(b.out)
        if loaded_here:  # (after the validation cache's flush: it held the new frames too)
            b.study = _without_frames(b.study)
            _give_back_freed_memory()
        frozen = False
        try:
            with ph("carry over"):
                _carry_over(b)
            if b.runtime is not None and b.plan.to_run:
                warm = _warm_imports()
                with ph("wait for the zygote"):
                    b.runtime.wait_ready()
                    b.runtime.flush_cache()  # under the lock: its new cache entries
                    warm.join()
                for name, wall, cpu in b.runtime.zygote_phases():
                    ph.add(f"zygote: {name}", wall=wall, cpu=cpu)
            # what the driver holds by now (the libraries, the study) lives as long as the
            # build: out of the garbage collector's sight, so that the full collections
            # while reports run do not walk it each time (0.17-0.20 s each at 300 clients,
            # one every fourth page or so); given back when the build ends
            frozen = bool(b.plan.to_run)
            if frozen:
                gc.freeze()
            with ph(f"execute {len(b.plan.to_run)} report(s)"):
                _execute(b)
            _write_site(b)  # (its steps are phases of their own)
            with ph("publish"):
                _publish_site(b)
            published = True
        finally:
            if frozen:
                gc.unfreeze()  # a long-lived caller (a notebook, tests) collects them again
            with ph("clean up"):
                b.staging.discard()
    except OSError as exc:  # disk full, read-only, ...: the machine, not the input
        raise environment_error(exc, b.out) from exc
    finally:
        lock.release(published=published)
    return _summary(b)


def build_site(study, *, out, jobs=None, force=False, only=None, executor="local",
               scheduler=None, progress=True, pdf=None, cache=None) -> BuildResult:
    """Execute every report notebook of a study and publish the site in ``out``.

    Parameters
    ----------
    study : str, pathlib.Path or Study
        Study folder (validated with :func:`exresearch.load_study`; an invalid study
        raises ``StudyValidationError`` before anything is written) or a loaded Study.
    out : str or pathlib.Path
        Site folder: new, empty, or a site written by an earlier build (recognised by its
        marker ``.exresearch/site.json``); anything else is refused (``BuildError``). It
        must not be inside the study folder. Files in it that the build did not write are
        kept (``BuildResult.kept``).
    jobs : int, optional
        Reports executed at once (default: number of cores).
    force : bool, default False
        Re-execute every report even when its inputs did not change.
    only : list of str, optional
        Execute only these clients' reports; the other reports of a previous build are
        kept as they are, synthesis and data quality are not executed.
    executor : {"local", "dask"}, default "local"
        Run reports on this machine, or as tasks of a dask.distributed cluster.
    scheduler : str, optional
        Dask scheduler address (``tcp://host:8786``) for ``executor="dask"``; without
        it a LocalCluster of ``jobs`` worker processes is started.
    progress : bool, default True
        Show a progress bar and a line per finished report on stderr.
    pdf : bool, optional
        Print every report and brief to PDF with headless Chromium (default: when
        Chromium is installed and ``$EXRESEARCH_PDF`` is not ``0``); see
        :func:`exresearch.deliver.publish_extras`.
    cache : str, pathlib.Path or False, optional
        The result cache (validated files, per-client summaries; study data) is kept
        outside ``out``: by default in ``$EXRESEARCH_CACHE_DIR``, else
        ``$XDG_CACHE_HOME/exresearch``, else ``~/.cache/exresearch``, one subfolder
        (mode 0o700) per site named by the sha256 of ``out``'s path
        (:func:`exresearch.build.cache.site_cache_dir`); a folder: use it (refused inside
        ``out``); False: no cache (same results). A folder that cannot be created or
        written: the build runs without a cache and says so. An old cache inside
        ``out`` (``.exresearch/cache/``) is removed.

    Returns
    -------
    BuildResult
        ``index`` (path of index.html), ``exit_code`` (0 ok, 1 some report failed),
        ``reports`` (one :class:`ReportRecord` per report), ``executed``, ``duration``,
        ``kept``, ``cache`` (the result cache's folder, None when none was used).

    Raises
    ------
    StudyValidationError, ParameterError, BuildError
        Bad input or unusable ``out`` (another build holds its lock, it is someone
        else's folder): the command line exits 2. Nothing is written.
    BuildEnvironmentError
        The machine failed (disk full, read-only ``out``): exit 3. The previous site
        is unchanged.

    Notes
    -----
    A report is executed when its fingerprint changed: its notebook's cells (see
    :func:`exresearch.build.fingerprint`), its parameters, its input files (a client
    report: that client's files and study.yml; synthesis and data quality: every
    file), the exresearch source and ``requirements.lock``; or when it failed or is
    missing in the previous site.

    Examples
    --------
    >>> from exresearch import build_site
    >>> result = build_site("data/demo", out="reports/demo")  # doctest: +SKIP
    >>> result.exit_code, [r.key for r in result.failed]  # doctest: +SKIP
    (0, [])
    >>> build_site("data/demo", out="reports/demo").executed  # nothing changed  # doctest: +SKIP
    []
    """
    t0, c0 = time.perf_counter(), time.process_time()
    jobs = _check_arguments(executor, jobs)
    out = Path(out).expanduser().resolve()
    if hasattr(study, "path") and hasattr(study, "config"):
        study_path = Path(study.path).resolve()
    else:
        study_path = Path(study).expanduser().resolve()
    check_out(study_path, out)
    try:
        cleanup_stale(out)
    except OSError as exc:
        raise environment_error(exc, out) from exc
    from .cache import OLD_CACHE_DIR

    cache_dir = _cache_folder(cache, out)
    # a full build removes it (under the lock); a symlink there is not the build's own
    # (it is neither followed nor removed), so it must not cost the nothing-changed path
    old_cache = (out / OLD_CACHE_DIR).is_dir() and not (out / OLD_CACHE_DIR).is_symlink()
    if not (hasattr(study, "path") and hasattr(study, "config")) and not old_cache:
        fast = fast_path(study_path, out, force, only, t0)
        if fast is not None:
            if progress:
                print(f"exresearch build: nothing changed, {out / 'index.html'} is up to date "
                      f"({fast.duration:.2f} s)", file=sys.stderr)
            return fast
    b = _Build(study=study, study_path=study_path, out=out, jobs=jobs, force=force,
               only=only, executor=executor, scheduler=scheduler, progress=progress, t0=t0,
               pdf=pdf, cache=cache_dir)
    b.phases.add("check arguments", wall=time.perf_counter() - t0, cpu=time.process_time() - c0)
    if executor == "local":
        from .kernels import Runtime

        try:
            with b.phases("start the zygote"):
                b.runtime = Runtime(study_path, cache=cache_dir)
        except OSError as exc:
            raise BuildEnvironmentError(f"cannot start the kernels: {exc}") from exc
    try:
        result = _build(b)
    except BaseException:  # Ctrl-C, a failure: no waiting for the zygote
        if b.runtime is not None:
            b.runtime.close(kill=True)
        raise
    if b.runtime is not None:
        with b.phases("stop the zygote"):
            b.runtime.close()
        result.phases = b.phases.as_dict()
    return result
