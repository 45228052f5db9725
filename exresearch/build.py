"""Batch build: execute the report notebooks in parallel and publish an offline site.

``build_site(study, out=DIR)`` runs, with papermill, one ``client_report.ipynb`` per
client plus ``synthesis.ipynb`` and ``data_quality.ipynb`` once per study, renders each
executed notebook to HTML in-process, and publishes ``DIR/index.html``,
``DIR/manifest.json``, the report pages, the executed notebooks and the CSV tables the
notebooks wrote.

How it is fast
    * Incremental: each report has a fingerprint (its notebook, parameters, input file
      hashes, the exresearch source and ``requirements.lock``); only reports whose
      fingerprint changed (or that failed last time) are executed. When nothing at all
      changed, the build returns after hashing the files, without importing pandas,
      loading the study or starting a kernel.
    * Kernels forked from a warm "zygote": on POSIX, a helper process imports numpy,
      pandas, scipy, statsmodels, pingouin, seaborn, matplotlib and ipykernel once;
      every report's kernel is a fresh process forked from it (``os.fork``), so it pays
      neither interpreter start-up nor those imports, yet each notebook still runs in
      its own isolated process that exits afterwards. The kernels listen on IPC
      (unix socket) transport in a private folder, so parallel launches can never race
      for TCP ports (papermill #511). Set ``EXRESEARCH_KERNELS=subprocess`` to launch
      ordinary ``ipykernel`` subprocesses instead (still IPC).
    * Reports run ``jobs`` at a time (default: one per core) with BLAS/OpenMP limited to
      one thread per kernel; HTML is rendered in the driver with nbconvert, no
      ``jupyter nbconvert`` subprocess.

Fault tolerance and atomic publishing
    A failing notebook is kept (papermill marks the failing cell) and rendered, the
    index shows the error, the other reports carry on, and the build returns exit code
    1. The new site is assembled in a hidden sibling folder and swapped in with one
    rename (``renameat2(RENAME_EXCHANGE)`` on Linux), so an interrupted build leaves
    the previous site untouched.

Examples
--------
>>> from exresearch.build import build_site  # doctest: +SKIP
>>> result = build_site("data/demo", out="reports/demo")  # doctest: +SKIP
>>> result.exit_code, result.index  # doctest: +SKIP
(0, PosixPath('reports/demo/index.html'))
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import config
from ._hashing import hash_study_tree, sha256_file
from .exceptions import BuildError, ParameterError

__all__ = ["build_site", "BuildResult", "ReportRecord", "NOTEBOOKS", "STATE_FILE",
           "combined_hash"]

log = logging.getLogger(__name__)

#: report kind -> notebook file name in ``config.notebooks_dir()``.
NOTEBOOKS = {
    "client": "client_report.ipynb",
    "synthesis": "synthesis.ipynb",
    "data_quality": "data_quality.ipynb",
}
_TITLES = {"synthesis": "Synthesis across clients", "data_quality": "Data quality"}
_KEYS = {"synthesis": "synthesis", "data_quality": "data-quality"}
#: Build state (fingerprints of the published reports), inside the site folder.
STATE_FILE = ".exresearch/state.json"
_STATE_VERSION = 1
#: Environment of every kernel: one BLAS/OpenMP thread each, so ``jobs`` kernels don't
#: oversubscribe the cores; figures through the inline backend.
_KERNEL_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}
#: Kernel options for batch runs: no sqlite history file per kernel.
_KERNEL_ARGS = ("--HistoryManager.enabled=False",)
#: Modules the zygote imports once so that forked kernels don't.
_PRELOAD = (
    "numpy", "pandas", "scipy", "scipy.stats", "scipy.optimize", "statsmodels.api",
    "statsmodels.formula.api", "pingouin", "matplotlib", "matplotlib.pyplot", "seaborn",
    "pyarrow", "pyarrow.parquet", "yaml", "pandera", "IPython", "ipykernel.kernelapp",
    "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger", "sqlite3", "pdb",
    "matplotlib.backends.backend_agg", "PIL.Image", "exresearch",
)
#: Versions shown in every report's provenance footer.
_LIBRARIES = (
    "numpy", "pandas", "scipy", "statsmodels", "pingouin", "seaborn", "matplotlib",
    "papermill", "nbconvert", "nbclient", "ipykernel",
)
_TABLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_TABLE_SUFFIXES = {".csv", ".json"}
#: Paths a site may list in its state file (anything else, e.g. ``..``, voids the state).
_SAFE_REL = re.compile(
    r"(reports/[a-z0-9_-]+\.html|notebooks/[a-z0-9_-]+\.ipynb"
    r"|tables/[a-z0-9_-]+/[A-Za-z0-9][A-Za-z0-9._-]{0,127})"
)


@dataclass
class ReportRecord:
    """One report of the site, as listed in ``manifest.json``."""

    key: str
    kind: str
    client_id: str | None
    name: str
    industry: str | None
    status: str = "not built"  # "ok", "failed" or "not built"
    error: str | None = None
    executed: bool = False  # executed in this build (False: reused or not built)
    duration: float | None = None
    html: str | None = None
    notebook: str | None = None
    tables: list[str] = field(default_factory=list)
    parameters: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    fingerprint: str | None = None
    built_at: str | None = None


@dataclass
class BuildResult:
    """What :func:`build_site` did.

    Attributes
    ----------
    index : pathlib.Path
        The published ``index.html``.
    exit_code : int
        0 when every report is ok, 1 when at least one failed.
    reports : list of ReportRecord
        Every report of the site.
    executed : list of str
        Keys of the reports executed by this build (empty when nothing changed).
    duration : float
        Wall time of the build in seconds.
    """

    index: Path
    exit_code: int
    reports: list[ReportRecord]
    executed: list[str]
    duration: float

    @property
    def failed(self) -> list[ReportRecord]:
        """The reports whose notebook failed."""
        return [r for r in self.reports if r.status == "failed"]


# --------------------------------------------------------------------------- hashing
_hash_tree = hash_study_tree


def _source_hash() -> str:
    """Hash of the exresearch package source (every .py and template file)."""
    h = hashlib.sha256()
    pkg = config.PACKAGE_DIR
    files = sorted(
        p for p in pkg.rglob("*")
        if p.is_file() and (p.suffix == ".py" or "templates" in p.parts)
        and "__pycache__" not in p.parts
    )
    for p in files:
        h.update(p.relative_to(pkg).as_posix().encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def _env_fingerprint(nb_dir: Path) -> dict:
    lock = config.ROOT / "requirements.lock"
    return {
        "source": _source_hash(),
        "lock": sha256_file(lock) if lock.is_file() else None,
        "notebooks": {
            name: sha256_file(nb_dir / name) if (nb_dir / name).is_file() else None
            for name in sorted(NOTEBOOKS.values())
        },
        "python": sys.version.split()[0],
    }


def _fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- state
def _read_state(out: Path) -> dict | None:
    try:
        state = json.loads((out / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
        return None
    try:  # a state file we cannot read back is treated as no state: everything re-runs
        state["reports"] = [ReportRecord(**r) for r in state.get("reports", [])]
    except TypeError:
        return None
    for r in state["reports"]:  # paths are reused for copying: only our own layout
        if not all(_SAFE_REL.fullmatch(rel) for rel in [r.html, r.notebook, *r.tables] if rel):
            return None
    return state


def _check_paths(study_path: Path, out: Path) -> None:
    if out == study_path or study_path in out.parents:
        raise ParameterError(
            f"`out` must be outside the study folder (inputs are never written), but "
            f"{str(out)!r} is inside {str(study_path)!r}"
        )
    if out in study_path.parents:
        raise ParameterError(
            f"`out` must not contain the study folder, but {str(out)!r} contains "
            f"{str(study_path)!r}"
        )
    if out.exists():
        if not out.is_dir():
            raise BuildError(f"`out` must be a folder, but {str(out)!r} is a file")
        made_by_us = (out / STATE_FILE).is_file() or (out / "manifest.json").is_file()
        if not made_by_us and any(out.iterdir()):
            raise BuildError(
                f"refusing to replace {str(out)!r}: it is not empty and was not written by "
                "`exresearch build` (no manifest.json); choose an empty or new folder"
            )


def _check_only(only, clients) -> list[str] | None:
    if only is None:
        return None
    if isinstance(only, str):
        only = [only]
    only = [str(c) for c in only]
    for cid in only:
        if cid not in clients:
            raise ParameterError(
                f"`only` must name clients of the study, one of {list(clients)}, but "
                f"{cid!r} was passed"
            )
    return only


def _fast_path(study_path: Path, out: Path, force: bool, only, t0: float) -> BuildResult | None:
    """Return the current site's result when no input changed at all, else None."""
    if force:
        return None
    state = _read_state(out)
    if state is None or not (out / "index.html").is_file():
        return None
    if state.get("study_path") != str(study_path):
        return None
    reports = state["reports"]
    if not reports or any(r.status != "ok" for r in reports):
        return None
    if any(not (out / r.html).is_file() for r in reports if r.html):
        return None
    _check_only(only, state.get("clients", []))
    if state.get("env") != _env_fingerprint(config.notebooks_dir()):
        return None
    if state.get("tree") != _hash_tree(study_path):
        return None
    return BuildResult(index=out / "index.html", exit_code=0, reports=reports, executed=[],
                       duration=time.perf_counter() - t0)


# --------------------------------------------------------------------------- kernels
def _worker_env(base=None) -> dict:
    env = dict(os.environ if base is None else base)
    env.update(_KERNEL_ENV)
    pkg_parent = str(config.PACKAGE_DIR.parent)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if pkg_parent not in paths:
        env["PYTHONPATH"] = os.pathsep.join([pkg_parent, *paths])
    return env


def _install_study_cache(study_path: str) -> None:  # pragma: no cover - in the zygote
    """Validate the study once in the zygote and hand it to the reports it forks.

    Uses the documented hook :func:`exresearch.report.preload_study`: a forked kernel's
    ``setup_report`` then reuses the loaded study (and every client's unit panel) as long
    as no input file changed since.
    """
    try:
        from exresearch import report
        from exresearch.study import load_study

        report.preload_study(load_study(Path(study_path).resolve()))
    except Exception:  # noqa: BLE001 - no cache; the driver reports an invalid study
        return


def _zygote_main() -> None:  # pragma: no cover - runs in the zygote process
    """The zygote: import the heavy libraries once, then fork one kernel per request.

    Protocol on stdin/stdout, one JSON object per line: the request
    ``{"connection_file", "cwd", "env", "log"}`` is answered by ``{"pid": N}`` once the
    kernel process is forked. End of stdin stops the zygote (kernels live on until
    their manager shuts them down).
    """
    import importlib
    import random
    import signal

    pkg = importlib.import_module("exresearch")
    ours = sorted(f"exresearch.{m}" for m in set(getattr(pkg, "_SUBMODULES", ())) | {"report"}
                  if m not in ("build", "site", "cli"))
    for name in (*_PRELOAD, *ours):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module just isn't preloaded
            pass
    study_path = os.environ.pop("EXRESEARCH_ZYGOTE_STUDY", "")
    if study_path:
        _install_study_cache(study_path)
    # auto-reap exited kernels (no zombies); kernels restore the default below
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.setsid()  # own process group: signals to the kernel stay with it
                devnull = os.open(os.devnull, os.O_RDWR)
                logfd = os.open(req.get("log") or os.devnull,
                                os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.dup2(devnull, 0)
                os.dup2(logfd, 1)
                os.dup2(logfd, 2)
                os.chdir(req["cwd"])
                os.environ.clear()
                os.environ.update(req["env"])
                # ipykernel's parent poller: exit when the zygote goes away
                os.environ["JPY_PARENT_PID"] = str(os.getppid())
                random.seed()  # a fresh process would not share the zygote's RNG state
                if "numpy" in sys.modules:
                    sys.modules["numpy"].random.seed()
                sys.argv = ["ipykernel_launcher", "-f", req["connection_file"]]
                from ipykernel.kernelapp import IPKernelApp

                IPKernelApp.launch_instance(argv=["-f", req["connection_file"], *_KERNEL_ARGS])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0
            except BaseException:  # noqa: BLE001
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()


class _Zygote:
    """Driver side of the zygote process (thread-safe)."""

    def __init__(self, workdir: Path, study_path: Path | None = None):
        self.workdir = workdir
        self._lock = threading.Lock()
        self._ready = False
        self.log = workdir / "zygote.log"  # import warnings go here, not to the terminal
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c",
                 "from exresearch.build import _zygote_main; _zygote_main()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=str(workdir),
                env=dict(_worker_env(), EXRESEARCH_ZYGOTE_STUDY=str(study_path or "")),
                text=True, bufsize=1,
            )

    def _died(self, what: str) -> BuildError:
        try:
            tail = self.log.read_text(errors="replace")[-2000:]
        except OSError:
            tail = ""
        return BuildError(f"the kernel zygote process {what}" + (f":\n{tail}" if tail else ""))

    def spawn(self, connection_file: str, env: dict, cwd: str, logfile: str) -> int:
        with self._lock:
            if not self._ready:
                line = self.proc.stdout.readline()
                if line.strip() != "ready":
                    raise self._died("failed to start")
                self._ready = True
            req = {"connection_file": connection_file, "env": env, "cwd": cwd, "log": logfile}
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                raise self._died("died")
            return int(json.loads(line)["pid"])

    def close(self) -> None:
        if not self._ready:  # never used (nothing to run, invalid study): don't wait
            self.proc.kill()
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdout.close()


class _ForkedKernel:
    """A Popen-like handle on a kernel forked by the zygote (not our child)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = 0
            except PermissionError:  # pid reused by someone else's process
                self.returncode = 0
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum):
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def kill(self):
        import signal

        self.send_signal(signal.SIGKILL)

    def terminate(self):
        import signal

        self.send_signal(signal.SIGTERM)


_runtime = threading.local()  # per report: the folder of its kernel's IPC sockets


def _kernel_manager_classes():
    """Kernel manager classes (defined lazily: jupyter_client is not needed on no-op builds)."""
    global _KM_CLASSES
    try:
        return _KM_CLASSES
    except NameError:
        pass
    from queue import Empty

    from jupyter_client.asynchronous.client import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner
    from traitlets import CaselessStrEnum, Unicode

    class FastClient(AsyncKernelClient):
        """jupyter_client's readiness handshake without its fixed 0.2 s waits.

        The stock ``wait_for_ready`` waits 0.2 s for an IOPub message after the
        kernel_info reply and then drains IOPub until 0.2 s pass in silence: at least
        0.2-0.4 s per kernel, a third of a forked kernel's whole life. Here both waits
        poll in short steps; stray IOPub messages are harmless because nbclient only
        reads those whose parent is its own request.
        """

        async def wait_for_ready(self, timeout=None):
            deadline = time.time() + (float("inf") if timeout is None else timeout)
            while True:
                self.kernel_info()
                try:
                    msg = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    msg = None
                if msg is not None and msg["msg_type"] == "kernel_info_reply":
                    try:
                        await self.iopub_channel.get_msg(timeout=0.05)
                    except Empty:
                        pass  # IOPub not connected yet: ask again
                    else:
                        self._handle_kernel_info_reply(msg)
                        break
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.time() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
            while True:  # drain what is already queued on IOPub
                try:
                    await self.iopub_channel.get_msg(timeout=0.02)
                except Empty:
                    break

    class IPCKernelManager(AsyncKernelManager):
        """Kernel manager on IPC transport, in a private folder: launches cannot race."""

        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
        ipc_dir = Unicode("")

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.client_factory = FastClient

        async def _async_finish_shutdown(self, waittime=None, pollinterval=0.1,
                                         restart=False):
            await super()._async_finish_shutdown(waittime, 0.01, restart)

        async def _async_post_start_kernel(self, **kw):
            pgid = getattr(self.provisioner, "pgid", None) or getattr(self.provisioner, "pid",
                                                                      None)
            if pgid:
                self._exr_pgid = pgid
                _LIVE_KERNELS.add(pgid)
            await super()._async_post_start_kernel(**kw)

        async def _async_cleanup_resources(self, restart=False):
            _LIVE_KERNELS.discard(getattr(self, "_exr_pgid", None))
            await super()._async_cleanup_resources(restart=restart)

        async def _async_pre_start_kernel(self, **kw):
            base = Path(self.ipc_dir or _ipc_dir())
            token = uuid.uuid4().hex[:12]
            self.ip = str(base / f"k{token}")
            self.connection_file = str(base / f"k{token}.json")
            kw["env"] = _worker_env(kw.get("env"))
            return await super()._async_pre_start_kernel(**kw)

    class ZygoteProvisioner(LocalProvisioner):
        """Launch the kernel by asking the zygote to fork it."""

        zygote = None

        async def launch_kernel(self, cmd, **kwargs):
            conn = cmd[cmd.index("-f") + 1]
            env = dict(kwargs.get("env") or _worker_env())
            cwd = str(kwargs.get("cwd") or os.getcwd())
            logfile = str(Path(conn).with_suffix(".log"))
            try:
                pid = self.zygote.spawn(conn, env, cwd, logfile)
            except (BuildError, OSError, ValueError):
                # the zygote is gone (killed, out of memory): launch a plain kernel
                return await super().launch_kernel(cmd, **kwargs)
            self.process = _ForkedKernel(pid)
            self.pid = pid
            self.pgid = pid
            self.cwd = cwd
            return self.connection_info

    class ZygoteKernelManager(IPCKernelManager):
        """IPC kernel manager whose kernels are forked from the warm zygote."""

        async def _async_pre_start_kernel(self, **kw):
            if self.provisioner is None:
                self.kernel_id = self.kernel_id or str(uuid.uuid4())
                prov = ZygoteProvisioner(
                    kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
                )
                prov.zygote = _zygote_for_kernels()
                self.provisioner = prov
            return await super()._async_pre_start_kernel(**kw)

    _KM_CLASSES = {"subprocess": IPCKernelManager, "zygote": ZygoteKernelManager}
    return _KM_CLASSES


_ACTIVE = {"ipc_dir": None, "zygote": None}
#: Process groups of the kernels running now, killed if the build is interrupted.
_LIVE_KERNELS: set = set()


def _kill_live_kernels() -> None:
    import signal

    own = os.getpgrp()
    for pgid in list(_LIVE_KERNELS):
        with contextlib.suppress(OSError):
            if pgid == own:  # never our own process group
                continue
            os.killpg(pgid, signal.SIGKILL)
        _LIVE_KERNELS.discard(pgid)


def _ipc_dir() -> str:
    mine = getattr(_runtime, "ipc_dir", None)  # set by execute_report for its thread
    if mine:
        return mine
    if _ACTIVE["ipc_dir"] is None:
        _ACTIVE["ipc_dir"] = tempfile.mkdtemp(prefix="exr-ipc-")
    return _ACTIVE["ipc_dir"]


def _zygote_for_kernels() -> _Zygote:
    if _ACTIVE["zygote"] is None:
        raise BuildError("no kernel zygote is running")
    return _ACTIVE["zygote"]


# --------------------------------------------------------------------------- one report
def _library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _git_commit() -> str:
    try:
        res = subprocess.run(
            ["git", "-C", str(config.ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else "unknown"


def execute_report(task: dict, *, kernels: str = "subprocess") -> dict:
    """Execute one report notebook and render it; used locally and on dask workers.

    Parameters
    ----------
    task : dict
        ``key, kind, title, notebook_json`` (the notebook text), ``parameters`` (without
        ``output_dir``), ``provenance`` (footer), ``timeout``.
    kernels : {"subprocess", "zygote"}
        How the kernel is launched: an ``ipykernel`` subprocess, or forked from the
        zygote of the current build.

    Returns
    -------
    dict
        ``key, status ("ok"|"failed"), error, duration, html, notebook`` (executed
        notebook text) and ``tables`` (file name -> bytes written into ``output_dir``).

    Examples
    --------
    >>> task = {"key": "synthesis", "kind": "synthesis", "title": "Synthesis",
    ...         "notebook_json": open("notebooks/synthesis.ipynb").read(),
    ...         "parameters": {"study_path": "/abs/data/demo"}, "provenance": {},
    ...         "timeout": None}  # doctest: +SKIP
    >>> execute_report(task)["status"]  # doctest: +SKIP
    'ok'
    """
    import nbformat
    import papermill as pm

    from .site import render_error_page, render_report

    km_class = _kernel_manager_classes()[kernels]
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f"exr-{task['key'][:40]}-"))
    # sockets in a short private path (unix socket paths are limited to ~107 bytes)
    _runtime.ipc_dir = tempfile.mkdtemp(prefix="exr-ipc-")
    try:
        src = work / "input.ipynb"
        src.write_text(task["notebook_json"], encoding="utf-8")
        dest = work / "output.ipynb"
        tables_dir = work / "tables"
        tables_dir.mkdir()
        params = dict(task["parameters"], output_dir=str(tables_dir))
        status, error = "ok", None
        try:
            pm.execute_notebook(
                str(src), str(dest), parameters=params, progress_bar=False,
                request_save_on_cell_execute=False, log_output=False,
                # the kernel's working folder; papermill's own ``cwd=`` would chdir the
                # whole (multi-threaded) driver process
                resources={"metadata": {"path": str(work)}},
                kernel_manager_class=km_class, execution_timeout=task.get("timeout"),
                start_timeout=120,
            )
        except pm.PapermillExecutionError as exc:
            status, error = "failed", f"{exc.ename}: {exc.evalue}"
        except Exception as exc:  # noqa: BLE001 - kernel died, bad parameters, ...
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        duration = time.perf_counter() - t0
        provenance = dict(task["provenance"], **{"run time": f"{duration:.1f} s"})
        tables = {}
        for p in sorted(tables_dir.iterdir()):
            if p.is_file() and p.suffix in _TABLE_SUFFIXES and _TABLE_NAME.fullmatch(p.name):
                tables[p.name] = p.read_bytes()
        nb_text = dest.read_text(encoding="utf-8") if dest.is_file() else None
        if nb_text is not None:  # published: the tables folder as on the site, no temp paths
            nb_text = _scrub_paths(nb_text, {str(tables_dir): f"tables/{task['key']}",
                                             str(work) + os.sep: ""})
        if nb_text is not None:
            try:
                html = render_report(nbformat.reads(nb_text, as_version=4),
                                     title=task["title"], provenance=provenance)
            except Exception as exc:  # noqa: BLE001
                status = "failed"
                error = error or f"HTML export failed: {type(exc).__name__}: {exc}"
                html = render_error_page(title=task["title"], error=error,
                                         provenance=provenance)
        else:
            html = render_error_page(title=task["title"], error=error or "no output",
                                     provenance=provenance)
        return {
            "key": task["key"], "status": status, "error": error, "duration": duration,
            "html": html, "notebook": nb_text, "tables": tables,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(_runtime.ipc_dir, ignore_errors=True)
        _runtime.ipc_dir = None


# --------------------------------------------------------------------------- executors
def _kernel_mode() -> str:
    mode = os.environ.get("EXRESEARCH_KERNELS", "zygote" if hasattr(os, "fork") else "")
    return mode if mode in ("zygote", "subprocess") else "subprocess"


class _LocalRuntime:
    """Private IPC folder and (when forking kernels) the zygote, for one local build.

    Created as soon as a build knows it may execute reports, so the zygote imports the
    heavy libraries while the driver validates the study and plans the build.
    """

    def __init__(self, study_path: Path | None = None):
        if _ACTIVE["ipc_dir"] is not None:
            raise BuildError("another build is running in this process")
        self.kernels = _kernel_mode()
        self.ipc = tempfile.mkdtemp(prefix="exr-ipc-")
        self.zygote = None
        _ACTIVE["ipc_dir"] = self.ipc
        try:
            if self.kernels == "zygote":
                self.zygote = _Zygote(Path(self.ipc), study_path)
        except OSError:  # cannot start it: plain kernel subprocesses instead
            self.kernels = "subprocess"
        _ACTIVE["zygote"] = self.zygote

    def close(self) -> None:
        if self.zygote is not None:
            self.zygote.close()
        _ACTIVE["zygote"] = None
        _ACTIVE["ipc_dir"] = None
        shutil.rmtree(self.ipc, ignore_errors=True)


def _run_local(tasks, jobs, on_done, runtime: _LocalRuntime):
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(execute_report, t, kernels=runtime.kernels): t for t in tasks}
        try:
            for fut in as_completed(futures):
                on_done(futures[fut], fut.result())
        except BaseException:  # Ctrl-C or a bug: stop now, don't finish running reports
            for f in futures:
                f.cancel()
            _kill_live_kernels()
            raise


def _run_dask(tasks, jobs, scheduler, on_done):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - distributed is in the lock
        raise BuildError("executor='dask' needs the `distributed` package") from exc
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = [client.submit(execute_report, t, key=f"exresearch-{t['key']}-{uuid.uuid4().hex}",
                                 pure=False) for t in tasks]
        by_key = {f.key: t for f, t in zip(futures, tasks, strict=True)}
        for fut in as_completed(futures):
            on_done(by_key[fut.key], fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------- publishing
def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def _publish(staging: Path, out: Path) -> None:
    """Swap the assembled site into ``out`` and remove the old one."""
    if not out.exists():
        os.rename(staging, out)
        return
    if _exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)  # staging now holds the old site
        return
    old = out.with_name(f".{out.name}.exr-old-{os.getpid()}")
    os.rename(out, old)
    os.rename(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _cleanup_stale(out: Path) -> None:
    """Remove staging folders of dead builds; restore a site lost between two renames."""
    parent = out.parent
    if not parent.is_dir():
        return
    for p in parent.glob(f".{out.name}.exr-*"):
        m = re.search(r"\.exr-(tmp|old)-(\d+)", p.name)
        if not m:
            continue
        pid = int(m.group(2))
        alive = True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            alive = False
        except PermissionError:
            pass
        if alive and pid != os.getpid():
            continue
        if m.group(1) == "old" and not out.exists():
            os.rename(p, out)
        else:
            shutil.rmtree(p, ignore_errors=True)


def _read_headline(tables_dir: Path) -> list[dict]:
    import csv

    path = tables_dir / "headline.csv"
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return [{k: (v or "").lstrip("'") if k else v for k, v in r.items()}
                for r in rows if r.get("label")]
    path = tables_dir / "headline.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return []
        if isinstance(data, list):
            return [d for d in data if isinstance(d, dict) and "label" in d]
    return []


# --------------------------------------------------------------------------- build
def _load(study):
    if hasattr(study, "clients") and hasattr(study, "config"):
        return study
    from .study import load_study

    return load_study(Path(study))


def build_site(study, *, out, jobs=None, force=False, only=None, executor="local",
               scheduler=None, progress=True, pdf=None) -> BuildResult:
    """Execute every report notebook of a study and publish the site in ``out``.

    Parameters
    ----------
    study : str, pathlib.Path or Study
        Study folder (validated with :func:`exresearch.load_study`; an invalid study
        raises ``StudyValidationError`` before anything is written) or a loaded Study.
    out : str or pathlib.Path
        Site folder. Created, or replaced atomically when it holds a previous build;
        a non-empty folder not written by a build is refused (``BuildError``). It must
        not be inside the study folder.
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

    Returns
    -------
    BuildResult
        ``index`` (path of index.html), ``exit_code`` (0 ok, 1 some report failed),
        ``reports`` (one :class:`ReportRecord` per report), ``executed``, ``duration``.

    Notes
    -----
    A report is executed when its fingerprint changed: the sha256 of its notebook, its
    parameters, its input files (a client report: that client's files and study.yml;
    synthesis and data quality: every file), the exresearch source and
    ``requirements.lock``; or when it failed or is missing in the previous site.

    Examples
    --------
    >>> from exresearch import build_site
    >>> result = build_site("data/demo", out="reports/demo")  # doctest: +SKIP
    >>> result.exit_code, [r.key for r in result.failed]  # doctest: +SKIP
    (0, [])
    >>> build_site("data/demo", out="reports/demo").executed  # nothing changed  # doctest: +SKIP
    []
    """
    t0 = time.perf_counter()
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
    out = Path(out).expanduser().resolve()
    if hasattr(study, "path") and hasattr(study, "config"):
        study_path = Path(study.path).resolve()
    else:
        study_path = Path(study).expanduser().resolve()
    _check_paths(study_path, out)
    _cleanup_stale(out)

    if not (hasattr(study, "path") and hasattr(study, "config")):
        fast = _fast_path(study_path, out, force, only, t0)
        if fast is not None:
            if progress:
                print(f"exresearch build: nothing changed, {out / 'index.html'} is up to date "
                      f"({fast.duration:.2f} s)", file=sys.stderr)
            return fast

    runtime = _LocalRuntime(study_path) if executor == "local" else None
    try:
        return _build(study, study_path, out, jobs, force, only, executor, scheduler,
                      progress, runtime, t0, pdf=pdf)
    finally:
        if runtime is not None:
            runtime.close()


def _build(study, study_path, out, jobs, force, only, executor, scheduler, progress,
           runtime, t0, pdf=None) -> BuildResult:
    study = _load(study)  # raises StudyValidationError: nothing written yet
    clients = list(study.clients)
    for cid in clients:
        if not re.fullmatch(config.CLIENT_ID_PATTERN, str(cid)):
            raise BuildError(f"client id {cid!r} does not match {config.CLIENT_ID_PATTERN}")
    only = _check_only(only, clients)
    nb_dir = config.notebooks_dir()
    missing = [n for n in NOTEBOOKS.values() if not (nb_dir / n).is_file()]
    if missing:
        raise BuildError(
            f"notebooks missing in {nb_dir}: {missing}; run from a source checkout "
            "(pip install -e .) or set EXRESEARCH_NOTEBOOKS to the folder holding them")
    env_fp = _env_fingerprint(nb_dir)
    tree = _hash_tree(study_path)
    hashes = dict(getattr(study, "hashes", None) or tree)
    cfg = study.config
    prev_state = _read_state(out) or {}
    prev = {r.key: r for r in prev_state.get("reports", [])}

    # ---- plan
    built_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    common_prov = {
        "study": cfg.name,
        "seed": getattr(cfg, "seed", None),
        "exresearch version": _exresearch_version(),
        "git commit": _git_commit(),
        "python": sys.version.split()[0],
        "libraries": _library_versions(),
        "built": built_at,
    }
    records: list[ReportRecord] = []
    for kind in ("synthesis", "data_quality", "client"):
        ids = clients if kind == "client" else [None]
        for cid in ids:
            key = f"client-{cid}" if cid else _KEYS[kind]
            params = {"study_path": str(study_path)}
            if cid:
                params["client_id"] = cid
                inputs = {k: v for k, v in hashes.items()
                          if k == "study.yml" or k.startswith(f"clients/{cid}/")}
                spec = cfg.client(cid) if hasattr(cfg, "client") else None
                name = getattr(spec, "name", None) or cid
                industry = getattr(spec, "industry", None)
            else:
                inputs = dict(hashes)
                name, industry = _TITLES[kind], None
            fp = _fingerprint({
                "kind": kind, "notebook": env_fp["notebooks"][NOTEBOOKS[kind]],
                "parameters": params, "inputs": inputs, "source": env_fp["source"],
                "lock": env_fp["lock"], "python": env_fp["python"],
            })
            records.append(ReportRecord(key=key, kind=kind, client_id=cid, name=str(name),
                                        industry=industry, parameters=params,
                                        inputs=inputs, fingerprint=fp))

    def wanted(r: ReportRecord) -> bool:
        return only is None or (r.kind == "client" and r.client_id in only)

    def reusable(r: ReportRecord) -> bool:
        p = prev.get(r.key)
        return (p is not None and p.status == "ok" and p.fingerprint == r.fingerprint
                and p.html is not None and (out / p.html).is_file())

    to_run = [r for r in records if wanted(r) and (force or not reusable(r))]
    # longest first (by the previous build's run time; unknown ones first), so the
    # slowest report does not start last and leave the other workers idle
    to_run.sort(key=lambda r: -(getattr(prev.get(r.key), "duration", None) or float("inf")))

    # ---- assemble in a sibling staging folder
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.exr-tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        run_keys = {r.key for r in to_run}
        for r in records:
            if r.key in run_keys:
                continue
            p = prev.get(r.key)
            if p is None or p.html is None or not (out / p.html).is_file():
                continue  # not built (only=...) and never built before
            for rel in [p.html, p.notebook, *p.tables]:
                if rel and (out / rel).is_file():
                    _link_or_copy(out / rel, staging / rel)
            keep = asdict(p)
            keep.update(executed=False, name=r.name, industry=r.industry)
            if p.fingerprint != r.fingerprint:
                keep["status"] = p.status  # kept from an earlier build (only=...)
            r.__dict__.update(keep)

        by_key = {r.key: r for r in records}
        tasks = []
        for r in to_run:
            nb_path = nb_dir / NOTEBOOKS[r.kind]
            title = (f"{r.name}: client report" if r.kind == "client" else r.name)
            prov = dict(common_prov)
            prov.update(_page_provenance(r, study_path))
            tasks.append({
                "key": r.key, "kind": r.kind, "title": title,
                "notebook_json": nb_path.read_text(encoding="utf-8"),
                "parameters": r.parameters, "provenance": prov, "timeout": None,
            })

        bar = None
        if progress and tasks:
            from tqdm import tqdm

            bar = tqdm(total=len(tasks), desc="reports", unit="report", file=sys.stderr)
        done = [0]

        def on_done(task, res):
            r = by_key[task["key"]]
            html_rel = f"reports/{r.key}.html"
            _inside(staging, html_rel).parent.mkdir(exist_ok=True)
            _inside(staging, html_rel).write_text(res["html"], encoding="utf-8")
            nb_rel = None
            if res["notebook"] is not None:
                nb_rel = f"notebooks/{r.key}.ipynb"
                _inside(staging, nb_rel).parent.mkdir(exist_ok=True)
                _inside(staging, nb_rel).write_text(res["notebook"], encoding="utf-8")
            tables = []
            for name, data in sorted(res["tables"].items()):
                if not _TABLE_NAME.fullmatch(name):
                    continue  # (a dask worker's answer is checked again here)
                rel = f"tables/{r.key}/{name}"
                _inside(staging, rel).parent.mkdir(parents=True, exist_ok=True)
                _inside(staging, rel).write_bytes(data)
                tables.append(rel)
            r.status, r.error, r.duration = res["status"], res["error"], res["duration"]
            r.html, r.notebook, r.tables = html_rel, nb_rel, tables
            r.executed, r.built_at = True, built_at
            done[0] += 1
            line = (f"[{done[0]}/{len(tasks)}] {r.status:<6} {r.key} "
                    f"({r.duration:.1f} s)" + (f": {r.error}" if r.error else ""))
            if bar is not None:
                bar.write(line, file=sys.stderr)
                bar.update(1)
            elif progress:
                print(line, file=sys.stderr)
            log.info(line)

        try:
            if tasks:
                if executor == "dask":
                    _run_dask(tasks, jobs, scheduler, on_done)
                else:
                    _run_local(tasks, jobs, on_done, runtime)
        finally:
            if bar is not None:
                bar.close()

        # ---- index, manifest, state
        headline = []
        syn = by_key.get("synthesis")
        if syn is not None and syn.status == "ok":
            headline = _read_headline(staging / "tables" / syn.key)
        shares = _write_share_bundles(staging, cfg, records)
        _write_site_files(staging, study, cfg, clients, records, headline, common_prov,
                          shares)
        # stylesheet, Excel workbooks, briefs, PDFs, share landing pages (exresearch.deliver)
        from .deliver import publish_extras

        publish_extras(staging, records=records, study=study, previous=out, pdf=pdf,
                       progress=progress)
        state = {
            "version": _STATE_VERSION, "study_path": str(study_path), "clients": clients,
            "env": env_fp, "tree": tree, "reports": [asdict(r) for r in records],
        }
        (staging / STATE_FILE).parent.mkdir(parents=True, exist_ok=True)
        (staging / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True))
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    exit_code = 1 if any(r.status == "failed" for r in records) else 0
    result = BuildResult(index=out / "index.html", exit_code=exit_code, reports=records,
                         executed=[r.key for r in to_run], duration=time.perf_counter() - t0)
    if progress:
        n_failed = len(result.failed)
        print(f"exresearch build: {len(to_run)} executed, {len(records) - len(to_run)} reused, "
              f"{n_failed} failed, {result.duration:.1f} s -> {result.index}", file=sys.stderr)
    return result


def _exresearch_version() -> str:
    from . import __version__

    return __version__


def _inside(root: Path, rel: str) -> Path:
    """``root / rel``, refusing any path that would leave ``root`` (``..``, absolute)."""
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()) or target == root.resolve():
        raise BuildError(f"refusing to write {rel!r} outside the site folder {root}")
    return root / rel


def _scrub_paths(text: str, replacements: dict) -> str:
    """Replace absolute paths (as they appear inside JSON strings) in a notebook's text."""
    for old, new in replacements.items():
        if old:
            text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
    return text


def combined_hash(inputs: dict) -> str:
    """One sha256 over every ``path -> sha256`` pair of ``inputs`` (sorted by path).

    Lets a page shared with clients prove which inputs it was built from without
    naming them (the study team's ``manifest.json`` keeps the hash of every file).

    Examples
    --------
    >>> combined_hash({"b": "2", "a": "1"}) == combined_hash({"a": "1", "b": "2"})
    True
    """
    h = hashlib.sha256()
    for path in sorted(inputs):
        h.update(f"{path}\0{inputs[path]}\n".encode())
    return h.hexdigest()


def _page_provenance(r: ReportRecord, study_path: Path) -> dict:
    """The footer lines specific to one report: no absolute path, no other client.

    A client report lists its own input files (``study.yml`` and its own folder); a
    study-wide report (synthesis, data quality) gives one combined hash of all inputs,
    because its file names would name every client.
    """
    params = {k: v for k, v in r.parameters.items() if k != "study_path"}
    out = {"study folder": study_path.name}
    if params:
        out["parameters"] = params
    if r.kind == "client":
        out["input files (sha256)"] = dict(r.inputs)
    else:
        out["inputs (combined sha256)"] = (
            f"{combined_hash(r.inputs)} ({len(r.inputs)} files; each listed in the study "
            "team's manifest.json)")
    return out


def _write_share_bundles(staging: Path, cfg, records) -> dict:
    """``share/<client_id>/``: what may be handed to one client, self-contained.

    Holds an index page, the client's report, its CSV tables and the synthesis page
    (clients under pseudonyms unless ``publish_client_names``), laid out as on the site
    (``reports/``, ``tables/client-<id>/``) so every link works offline. Nothing else:
    no other client's report or tables, no data-quality report, no executed notebook, no
    manifest. Returns ``{client_id: "share/<id>/index.html"}`` for the bundles written.
    """
    from .site import render_share_index

    syn = next((r for r in records if r.kind == "synthesis"), None)
    syn_ok = (syn is not None and syn.status == "ok" and syn.html
              and (staging / syn.html).is_file())
    shares = {}
    for r in records:
        if r.kind != "client" or r.status != "ok" or not r.html:
            continue
        if not (staging / r.html).is_file() or not re.fullmatch(config.CLIENT_ID_PATTERN,
                                                                str(r.client_id)):
            continue
        base = f"share/{r.client_id}"
        files = [r.html, *r.tables] + ([syn.html] if syn_ok else [])
        for rel in files:
            if (staging / rel).is_file():
                dst = _inside(staging, f"{base}/{rel}")
                dst.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(staging / rel, dst)
        page = render_share_index(
            study_name=cfg.name, client_name=r.name, report=r.html,
            tables=[t for t in r.tables if (staging / t).is_file()],
            synthesis=syn.html if syn_ok else None)
        _inside(staging, f"{base}/index.html").write_text(page, encoding="utf-8")
        shares[r.client_id] = f"{base}/index.html"
    return shares


def _write_site_files(staging, study, cfg, clients, records, headline, prov,
                      shares=None) -> None:
    from .site import dumps_manifest, render_index

    shares = shares or {}

    periods = list(getattr(cfg, "periods", []) or [])
    overview = {
        "name": cfg.name,
        "Clients": len(clients),
        "Periods": ", ".join(map(str, periods)),
        "Seed": getattr(cfg, "seed", ""),
        "Built": prov["built"],
    }
    reports = [asdict(r) for r in records]
    for rep in reports:
        if rep["kind"] == "client" and rep["client_id"] in shares:
            rep["share"] = shares[rep["client_id"]]
    page = render_index(study=overview, reports=reports, headline=headline, provenance={
        "exresearch version": prov["exresearch version"], "git commit": prov["git commit"],
        "built": prov["built"], "libraries": prov["libraries"],
    })
    (staging / "index.html").write_text(page, encoding="utf-8")
    manifest = {
        "study": {"name": cfg.name, "path": str(Path(study.path).resolve()),
                  "seed": getattr(cfg, "seed", None), "clients": clients},
        "built": prov["built"],
        "exresearch_version": prov["exresearch version"],
        "git_commit": prov["git commit"],
        "headline": headline,
        "share": dict(shares),
        "reports": [
            {k: r[k] for k in ("key", "kind", "client_id", "name", "status", "error",
                               "duration", "html", "notebook", "tables", "parameters",
                               "inputs", "executed", "built_at", "fingerprint")}
            for r in reports
        ],
    }
    (staging / "manifest.json").write_text(dumps_manifest(manifest), encoding="utf-8")
