"""Execute report notebooks: one report (:func:`execute_report`) and the executors."""

from __future__ import annotations

import gc
import os
import re
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from pathlib import Path

from ..exceptions import BuildError
from .records import TABLE_NAME, TABLE_SUFFIXES

__all__ = ["execute_report", "run_local", "run_dask", "redact_paths"]

#: The directory part of an absolute path (after a blank, quote, bracket, ``=`` or an
#: ANSI colour code, as in tracebacks), e.g. ``/home/me/x/`` of ``/home/me/x/f.py``.
_ABS_DIR = re.compile(r"""(^|[\s'"(\[=,<]|\x1b\[[0-9;]*m)(/(?:[^\s/'"<>:\x1b]+/)+)""",
                      re.M)


def _machine_roots(extra: dict | None = None) -> dict:
    """Absolute folders of this machine -> what pages show instead (longest first)."""
    roots = dict(extra or {})
    for key in ("purelib", "platlib"):
        with_key = sysconfig.get_paths().get(key)
        if with_key:
            roots.setdefault(with_key, "<site-packages>")
    stdlib = sysconfig.get_paths().get("stdlib")
    if stdlib:
        roots.setdefault(stdlib, "<python>")
    from .. import config

    roots.setdefault(str(config.PACKAGE_DIR), "<exresearch>")
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix):
        roots.setdefault(p, "<python>")
    roots.setdefault(tempfile.gettempdir(), "<tmp>")
    roots.setdefault(os.path.expanduser("~"), "~")
    return dict(sorted(((k, v) for k, v in roots.items() if k and len(k) > 1),
                       key=lambda kv: -len(kv[0])))


def redact_paths(text: str, roots: dict | None = None) -> str:
    """Replace this machine's absolute folders in ``text`` (tracebacks, error messages).

    Known folders (``roots``, the Python installation, site-packages, the exresearch
    package, the temporary folder, the home folder) become short names; the folder part
    of any other absolute path becomes ``…/``, keeping the file name.

    Examples
    --------
    >>> redact_paths("File /srv/me/study/x.py:3 in f", {"/srv/me/study": "<study>"})
    'File <study>/x.py:3 in f'
    >>> redact_paths("No such file: '/data/acme/q1/survey.csv'")
    "No such file: '…/survey.csv'"
    """
    return _redact(text, _machine_roots(roots)) if text else text


def _redact(text: str, table: dict) -> str:
    """:func:`redact_paths` with the folders already listed (``_machine_roots``)."""
    for old, new in table.items():
        text = text.replace(old, new)
    return _ABS_DIR.sub(lambda m: m.group(1) + "…/", text)


def _is_binary_mime(key) -> bool:
    """Whether an output's ``data`` key names base64 data (nbformat stores every
    ``image/*`` but SVG, and ``application/pdf``, as base64 text)."""
    return isinstance(key, str) and (
        (key.startswith("image/") and not key.startswith("image/svg"))
        or key == "application/pdf")


def _redact_outputs(nb, roots: dict) -> None:
    """Redact machine paths in every output and cell source of an executed notebook.

    In place. Sources too: papermill's injected-parameters cell holds ``output_dir`` (the
    temporary tables folder) and ``study_path`` as absolute paths. Base64 data of binary
    outputs (:func:`_is_binary_mime`: ``image/png``, ...) is left as it is: it holds no
    path, and a folder name can occur in it by chance (``/tmp`` in about 1% of client
    reports' figures), which redacting would turn into a broken image; skipping it also
    saves scanning a report's ~170 KB of figure text.
    """
    def fix(value, key=None):
        if isinstance(value, str):
            return value if _is_binary_mime(key) or not value else _redact(value, table)
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v, k) for k, v in value.items()}
        return value

    from nbformat import from_dict

    # the machine's folders once, not once per string (sysconfig's paths cost ~1 ms each
    # time: a tenth of a client page's rendering); redact_paths gives the same answer
    table = _machine_roots(roots)
    for cell in nb.get("cells", []):
        if isinstance(cell.get("source"), str) and cell["source"]:
            cell["source"] = _redact(cell["source"], table)
        if cell.get("outputs"):
            cell["outputs"] = [from_dict(fix(dict(o))) for o in cell["outputs"]]


def _collect_tables(tables_dir: Path) -> dict:
    tables = {}
    for p in sorted(tables_dir.iterdir()):
        if p.is_file() and p.suffix in TABLE_SUFFIXES and TABLE_NAME.fullmatch(p.name):
            tables[p.name] = p.read_bytes()
    return tables


def _run_notebook(task, src, dest, params, work, km_class):
    """papermill on one notebook; returns (status, error)."""
    import papermill as pm

    try:
        pm.execute_notebook(
            str(src), str(dest), parameters=params, progress_bar=False,
            request_save_on_cell_execute=False, log_output=False,
            # the kernel's working folder; papermill's own ``cwd=`` would chdir the
            # whole (multi-threaded) driver process
            resources={"metadata": {"path": str(work)}},
            kernel_manager_class=km_class, execution_timeout=task.get("timeout"),
            kernel_name=task.get("kernel_name"),  # None: the notebook's own kernelspec
            start_timeout=120,
        )
    except pm.PapermillExecutionError as exc:
        return "failed", f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - kernel died, bad parameters, ...
        return "failed", f"{type(exc).__name__}: {exc}"
    return "ok", None


_FROZEN = threading.Event()
_FREEZE_LOCK = threading.Lock()


def _freeze_driver() -> None:
    """Once per process, after the page exporter is built: collect, then freeze.

    The driver holds the libraries, nbconvert's exporter and templates and the build's
    plan, which live to the end; every full garbage collection walked them all again
    (0.17-0.20 s, about one page in four: bench/results.md, B7d). ``gc.freeze()`` moves
    the objects alive now out of the collector's sight (it has no cost of its own); the
    ``gc.collect()`` first frees the garbage there is, which would otherwise stay frozen.
    Later objects (each page's parse tree, papermill's messages) are collected as before.
    """
    if _FROZEN.is_set():
        return
    with _FREEZE_LOCK:
        if not _FROZEN.is_set():
            from ..site import _get_exporter

            _get_exporter()
            gc.collect()
            gc.freeze()
            _FROZEN.set()


def _render(task, nb_text, status, error, provenance, roots):
    """(notebook text, html, status, error) of an executed notebook, paths redacted."""
    import nbformat

    from ..site import CSS_PATH, render_error_page, render_report

    _freeze_driver()
    error = redact_paths(error, roots) if error else error
    links = {"index_href": task.get("index_href", "../index.html"),
             "css_href": task.get("css_href", "../" + CSS_PATH)}
    if nb_text is None:
        html = render_error_page(title=task["title"], error=error or "no output",
                                 provenance=provenance, **links)
        return None, html, status, error
    try:
        nb = nbformat.reads(nb_text, as_version=4)
        _redact_outputs(nb, roots)
        nb_text = nbformat.writes(nb)
        html = render_report(nb, title=task["title"], provenance=provenance, **links)
    except Exception as exc:  # noqa: BLE001
        status = "failed"
        error = error or f"HTML export failed: {type(exc).__name__}: {exc}"
        html = render_error_page(title=task["title"], error=error, provenance=provenance,
                                 **links)
    return nb_text, html, status, error


def execute_report(task: dict, *, kernels="subprocess") -> dict:
    """Execute one report notebook and render it; used locally and on dask workers.

    Parameters
    ----------
    task : dict
        ``key, kind, title, notebook_json`` (the notebook text), ``parameters`` (without
        ``output_dir``), ``provenance`` (footer), ``timeout``, and optionally
        ``workdir``: the folder for its temporary files (default: a new temporary
        folder, removed afterwards), ``kernel_name`` (default: the notebook's
        kernelspec; see :func:`exresearch.kernel.kernel_for_batch`), ``index_href``
        (the page's link back to the index, default ``"../index.html"``; None: none),
        ``css_href`` (the site stylesheet, default ``"../assets/site.css"``) and ``env``
        (variables added to a ``"subprocess"`` kernel's environment, e.g. the build's
        result cache for a dask worker on the build's machine).
    kernels : {"subprocess", "zygote"} or Runtime
        How the kernel is launched: an ``ipykernel`` subprocess, or by the given build
        runtime (:class:`exresearch.build.kernels.Runtime`, e.g. forked from its zygote).

    Returns
    -------
    dict
        ``key, status ("ok"|"failed"), error, duration, html, notebook`` (executed
        notebook text) and ``tables`` (file name -> bytes written into ``output_dir``).
        Error messages, notebook outputs and the page carry no absolute path of the
        machine that ran them.

    Examples
    --------
    >>> task = {"key": "synthesis", "kind": "synthesis", "title": "Synthesis",
    ...         "notebook_json": open("notebooks/synthesis.ipynb").read(),
    ...         "parameters": {"study_path": "/abs/data/demo"}, "provenance": {},
    ...         "timeout": None}  # doctest: +SKIP
    >>> execute_report(task)["status"]  # doctest: +SKIP
    'ok'
    """
    from .kernels import kernel_manager_classes

    t0 = time.perf_counter()
    base = task.get("workdir")
    if base:
        work = Path(base) / f"{task['key'][:40]}-{uuid.uuid4().hex[:8]}"
        work.mkdir(parents=True)
    else:
        work = Path(tempfile.mkdtemp(prefix=f"exr-{task['key'][:40]}-"))
    if isinstance(kernels, str):
        km_class = type("KM", (kernel_manager_classes()[kernels],),
                        {"conn_dir": str(work), "extra_env": task.get("env") or None})
    else:
        km_class = kernels.manager_class(work)
    try:
        src, dest, tables_dir = work / "input.ipynb", work / "output.ipynb", work / "tables"
        src.write_text(task["notebook_json"], encoding="utf-8")
        tables_dir.mkdir()
        params = dict(task["parameters"], output_dir=str(tables_dir))
        status, error = _run_notebook(task, src, dest, params, work, km_class)
        duration = time.perf_counter() - t0
        provenance = dict(task["provenance"], **{"run time": f"{duration:.1f} s"})
        study = task["parameters"].get("study_path")
        roots = {str(tables_dir): f"tables/{task['key']}", str(work) + os.sep: "",
                 str(work): "."}
        if study:
            roots[str(study)] = f"<study {Path(study).name}>"
        nb_text = dest.read_text(encoding="utf-8") if dest.is_file() else None
        nb_text, html, status, error = _render(task, nb_text, status, error, provenance,
                                               roots)
        return {
            "key": task["key"], "status": status, "error": error, "duration": duration,
            "html": html, "notebook": nb_text, "tables": _collect_tables(tables_dir),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- executors
def _pkg():
    from .. import build

    return build


def run_local(tasks, jobs, on_done, runtime) -> None:
    """Run ``tasks`` ``jobs`` at a time in this process's threads, kernels from ``runtime``."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    execute = _pkg().execute_report
    runtime.wait_ready()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(execute, t, kernels=runtime): t for t in tasks}
        try:
            for fut in as_completed(futures):
                on_done(futures[fut], fut.result())
        except BaseException:  # Ctrl-C or a bug: stop now, don't finish running reports
            for f in futures:
                f.cancel()
            runtime.kill_live()
            raise


def run_dask(tasks, jobs, scheduler, on_done, *, cache=None) -> None:
    """Run ``tasks`` on a dask.distributed cluster (``scheduler``) or a LocalCluster.

    ``cache`` (the build's result-cache folder) reaches the kernels of a LocalCluster's
    workers, which run on this machine as this user; the workers of a cluster given by
    ``scheduler`` may run elsewhere, so they run without it."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - distributed is in the lock
        raise BuildError("executor='dask' needs the `distributed` package") from exc
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        # workers use their own temporary folders: --out is not theirs to write
        remote = [{k: v for k, v in t.items() if k != "workdir"} for t in tasks]
        if cluster is not None and cache:
            remote = [dict(t, env={"EXRESEARCH_CACHE": str(cache)}) for t in remote]
        futures = [client.submit(execute_report, t,
                                 key=f"exresearch-{t['key']}-{uuid.uuid4().hex}", pure=False)
                   for t in remote]
        by_key = {f.key: t for f, t in zip(futures, tasks, strict=True)}
        for fut in as_completed(futures):
            on_done(by_key[fut.key], fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
