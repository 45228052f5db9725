"""Kernels for the build: a warm zygote that forks them, and IPC kernel managers.

Nothing here outlives the build: the zygote and every kernel ask Linux to kill them
when their parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``; the zygote's parent is the
build, a forked kernel's parent the zygote), kernels talk over abstract unix sockets
(no socket file anywhere), and their connection and log files live in the build's
work folder inside ``--out``'s staging area.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from .. import config
from ..exceptions import BuildError

__all__ = ["Runtime", "kernel_manager_classes", "worker_env", "set_parent_death_signal"]

#: Environment of every kernel: one BLAS/OpenMP thread each, so ``jobs`` kernels don't
#: oversubscribe the cores; figures through the inline backend.
KERNEL_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}
#: Kernel options for batch runs: no sqlite history file per kernel.
KERNEL_ARGS = ("--HistoryManager.enabled=False",)
#: Modules the zygote imports once so that forked kernels don't.
PRELOAD = (
    "numpy", "pandas", "scipy", "scipy.stats", "scipy.optimize",
    # the two statsmodels modules the package uses (OLS, add_constant); statsmodels.api
    # and .formula.api import every model and the graphics: 0.19 s more of the start
    "statsmodels.regression.linear_model", "statsmodels.tools.tools",
    "pingouin", "matplotlib", "matplotlib.pyplot", "seaborn",
    "pyarrow", "pyarrow.parquet", "yaml", "IPython", "ipykernel.kernelapp",
    "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger", "sqlite3", "pdb",
    "matplotlib.backends.backend_agg", "PIL.Image", "exresearch",
    # what the reports still imported after the above (issue 20, bench/cells.py): PIL's
    # format plugins (Image.save loads them all), pandas' reshape, the utf-8-sig codec
    "PIL.PngImagePlugin", "PIL.BmpImagePlugin", "PIL.GifImagePlugin", "PIL.JpegImagePlugin",
    "PIL.PpmImagePlugin", "pandas.core.reshape.reshape", "encodings.utf_8_sig",
    # not pandera (0.2 s of CPU before the first report can start): only validation uses
    # it, which a report's kernel does not do (the zygote hands it the validated study)
    # and the zygote's own load does only for files not in the validation cache
)
_PR_SET_PDEATHSIG = 1
#: Start-up code of a kernel *subprocess*: die with the process that launched it, then
#: run ipykernel exactly as ``python -m ipykernel_launcher`` does.
KERNEL_BOOT = (
    "import ctypes, signal\n"
    "try:\n"
    f"    ctypes.CDLL(None).prctl({_PR_SET_PDEATHSIG}, signal.SIGKILL, 0, 0, 0)\n"
    "except Exception:\n"
    "    pass\n"
    "from ipykernel import kernelapp\n"
    "kernelapp.launch_new_instance()\n"
)


def set_parent_death_signal(parent: int | None = None) -> bool:
    """Ask Linux to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``).

    Written by hand: neither the standard library nor the pinned packages expose
    ``prctl``. When ``parent`` is given and is no longer this process's parent (it died
    before the call), the process exits at once. Returns False where unsupported.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        ok = ctypes.CDLL(None, use_errno=True).prctl(
            _PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if parent is not None and os.getppid() != parent:
        os._exit(1)
    return ok


def worker_env(base=None) -> dict:
    """The environment of a kernel: ``base`` (default ``os.environ``) plus KERNEL_ENV."""
    env = dict(os.environ if base is None else base)
    env.update(KERNEL_ENV)
    pkg_parent = str(config.PACKAGE_DIR.parent)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if pkg_parent not in paths:
        env["PYTHONPATH"] = os.pathsep.join([pkg_parent, *paths])
    return env


# --------------------------------------------------------------------------- zygote
def _install_study_cache(study_path: str, cache: str = ""):  # pragma: no cover
    """Validate the study once in the zygote and hand it to the reports it forks.

    Uses the documented hook :func:`exresearch.report.preload_study`: a forked kernel's
    ``setup_report`` then reuses the loaded study (and every client's unit panel) as long
    as no input file changed since. With ``cache`` (the build's result cache) unchanged
    files are not validated again and unchanged clients' panels and benchmark rows are
    read, not computed. The zygote runs before the build holds the lock on ``--out``, so
    what it computes anew (a changed client's panel and benchmark row) is kept in memory
    and written only when the build asks for it once it holds the lock (``{"flush":
    true}`` on stdin, :meth:`Zygote.flush_cache`). Returns that deferred cache (or None).
    """
    try:
        from exresearch import report
        from exresearch.build.cache import ResultCache
        from exresearch.study import load_study

        vcache = ResultCache(cache, "validation", write=False) if cache else None
        pcache = ResultCache(cache, "summaries", defer=True) if cache else False
        report.preload_study(load_study(Path(study_path).resolve(), cache=vcache),
                             cache=pcache)
    except Exception:  # noqa: BLE001 - no cache; the driver reports an invalid study
        return None
    return pcache or None


def _preload() -> None:  # pragma: no cover - runs in the zygote process
    import importlib

    pkg = importlib.import_module("exresearch")
    ours = sorted(f"exresearch.{m}" for m in set(getattr(pkg, "_SUBMODULES", ())) | {"report"}
                  if m not in ("build", "site", "cli"))
    for name in (*PRELOAD, *ours):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module just isn't preloaded
            pass


def _kernel_child(req: dict, zygote_pid: int) -> None:  # pragma: no cover - forked kernel
    """In the forked kernel: detach, redirect, then run ipykernel; never returns."""
    import random

    # every object inherited from the zygote out of the garbage collector's sight (moving
    # them is O(1), touching none): a full collection would walk them all and so copy,
    # page by page, everything the zygote loaded: about 12,000 page copies and 0.3 s of
    # CPU per client report (bench/results.md, B7d)
    gc.freeze()
    if sys.path[:1] != [""]:  # as ipykernel_launcher has it: the kernel's folder importable
        sys.path.insert(0, "")
    code = 0
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()  # own process group: signals to the kernel stay with it
        set_parent_death_signal(zygote_pid)  # the zygote dies -> the kernel dies
        devnull = os.open(os.devnull, os.O_RDWR)
        logfd = os.open(req.get("log") or os.devnull,
                        os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(devnull, 0)
        os.dup2(logfd, 1)
        os.dup2(logfd, 2)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        import tempfile as _tempfile

        _tempfile.tempdir = None  # the zygote's cached choice: honour the kernel's TMPDIR
        # ipykernel's parent poller too: exit when the zygote goes away
        os.environ["JPY_PARENT_PID"] = str(zygote_pid)
        random.seed()  # a fresh process would not share the zygote's RNG state
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        sys.argv = ["ipykernel_launcher", "-f", req["connection_file"]]
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance(argv=["-f", req["connection_file"], *KERNEL_ARGS])
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


def zygote_main() -> None:  # pragma: no cover - runs in the zygote process
    """The zygote: import the heavy libraries once, then fork one kernel per request.

    Protocol on stdin/stdout, one JSON object per line: the request
    ``{"connection_file", "cwd", "env", "log"}`` is answered by ``{"pid": N}`` once the
    kernel process is forked. End of stdin stops the zygote (kernels live on until
    their manager shuts them down). The zygote dies with the build (parent-death
    signal), and its kernels die with it.
    """
    parent = int(os.environ.pop("EXRESEARCH_ZYGOTE_PARENT", "0") or 0) or None
    set_parent_death_signal(parent)
    phases = []  # (name, wall, cpu): sent with "ready", shown by ``build --debug``
    w, c = time.perf_counter(), time.process_time()
    _preload()
    phases.append(("imports", time.perf_counter() - w, time.process_time() - c))
    study_path = os.environ.pop("EXRESEARCH_ZYGOTE_STUDY", "")
    cache = os.environ.pop("EXRESEARCH_ZYGOTE_CACHE", "")
    deferred = None
    if study_path:
        w, c = time.perf_counter(), time.process_time()
        deferred = _install_study_cache(study_path, cache)
        phases.append(("preload the study", time.perf_counter() - w, time.process_time() - c))
    # auto-reap exited kernels (no zombies); kernels restore the default
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    out = sys.stdout
    out.write("ready " + json.dumps(phases) + "\n")
    out.flush()
    me = os.getpid()
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("flush"):  # the build holds the lock now: write what preloading computed
            n = 0
            if deferred is not None:
                with contextlib.suppress(Exception):  # the cache never fails a build
                    n = deferred.flush()
                deferred = None
            out.write(json.dumps({"flushed": n}) + "\n")
            out.flush()
            continue
        pid = os.fork()
        if pid == 0:
            _kernel_child(req, me)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()
    # end of stdin: the build is done with us (every kernel has finished). Exit without
    # the interpreter's teardown of every module and the preloaded study (seconds on a
    # large study, which the build would wait for); nothing is left to flush.
    with contextlib.suppress(Exception):
        out.flush()
    os._exit(0)


class Zygote:
    """Driver side of the zygote process (thread-safe)."""

    def __init__(self, study_path: Path | None = None, cache: Path | None = None):
        self._lock = threading.Lock()
        self._ready = False
        self.phases: list = []  # what the zygote reported with "ready" (name, wall, cpu)
        # import warnings go to an unnamed temporary file (nothing left if killed)
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        # -P: the folder the build was started in is not put first on sys.path, so the
        # zygote imports the exresearch this build runs (worker_env's PYTHONPATH names its
        # folder first), not one in that folder (a build started inside another checkout
        # would mix two versions); kernels get it back
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-c",
             "from exresearch.build.kernels import zygote_main; zygote_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            env=dict(worker_env(), EXRESEARCH_ZYGOTE_STUDY=str(study_path or ""),
                     EXRESEARCH_ZYGOTE_CACHE=str(cache or ""),
                     EXRESEARCH_ZYGOTE_PARENT=str(os.getpid())),
            text=True, bufsize=1,
        )

    def _died(self, what: str) -> BuildError:
        try:
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace")[-2000:]
        except (OSError, ValueError):
            tail = ""
        return BuildError(f"the kernel zygote process {what}" + (f":\n{tail}" if tail else ""))

    def _wait_ready(self) -> None:  # with self._lock held
        if not self._ready:
            line = self.proc.stdout.readline()
            word, _, rest = line.strip().partition(" ")
            if word != "ready":
                raise self._died("failed to start")
            with contextlib.suppress(ValueError, TypeError):
                self.phases = [(str(n), float(w), float(c)) for n, w, c in json.loads(rest)]
            self._ready = True

    def wait_ready(self) -> None:
        """Block until the zygote has imported the libraries and loaded the study."""
        with self._lock:
            self._wait_ready()

    def spawn(self, connection_file: str, env: dict, cwd: str, logfile: str) -> int:
        with self._lock:
            self._wait_ready()
            req = {"connection_file": connection_file, "env": env, "cwd": cwd, "log": logfile}
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                raise self._died("died")
            return int(json.loads(line)["pid"])

    def flush_cache(self) -> int:
        """Ask the zygote to write the cache entries it computed while preloading the
        study (call once the build holds the lock); return how many it wrote."""
        with self._lock:
            self._wait_ready()
            self.proc.stdin.write(json.dumps({"flush": True}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                raise self._died("died")
            return int(json.loads(line).get("flushed", 0))

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
        with contextlib.suppress(OSError):
            self.log.close()


class ForkedKernel:
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
        self.send_signal(signal.SIGKILL)

    def terminate(self):
        self.send_signal(signal.SIGTERM)


# --------------------------------------------------------------------------- managers
def _fast_client_class():
    from queue import Empty

    from jupyter_client.asynchronous.client import AsyncKernelClient

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

    return FastClient


def _ipc_manager_class():
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum, Unicode

    fast_client = _fast_client_class()

    class IPCKernelManager(AsyncKernelManager):
        """Kernel manager on IPC transport over abstract unix sockets (Linux).

        Launches cannot race for TCP ports (papermill #511), and no socket file is
        left anywhere if the build is killed. ``conn_dir`` (the report's work folder)
        holds the connection file; ``live`` collects the kernels' process groups so that
        an interrupted build can kill them.
        """

        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
        ipc_dir = Unicode("")
        conn_dir: str | None = None
        live: set | None = None
        extra_env: dict | None = None  # added to the kernel's environment

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.client_factory = fast_client

        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            if sys.platform.startswith("linux") and cmd[1:3] == ["-m", "ipykernel_launcher"]:
                cmd = [cmd[0], "-c", KERNEL_BOOT, *cmd[3:]]  # dies with its launcher
            return cmd

        async def _async_finish_shutdown(self, waittime=None, pollinterval=0.1,
                                         restart=False):
            await super()._async_finish_shutdown(waittime, 0.01, restart)

        async def _async_post_start_kernel(self, **kw):
            pgid = getattr(self.provisioner, "pgid", None) or getattr(self.provisioner, "pid",
                                                                      None)
            if pgid and self.live is not None:
                self._exr_pgid = pgid
                self.live.add(pgid)
            await super()._async_post_start_kernel(**kw)

        async def _async_cleanup_resources(self, restart=False):
            if self.live is not None:
                self.live.discard(getattr(self, "_exr_pgid", None))
            await super()._async_cleanup_resources(restart=restart)

        async def _async_pre_start_kernel(self, **kw):
            token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
            base = Path(self.ipc_dir or self.conn_dir or os.getcwd())
            if sys.platform.startswith("linux") and not self.ipc_dir:
                self.ip = f"@exr-{token}"  # abstract socket: no file on disk
            else:
                self.ip = str(base / f"k{token}")
            self.connection_file = str(Path(self.conn_dir or base) / f"k{token}.json")
            kw["env"] = worker_env(kw.get("env"))
            kw["env"].update(self.extra_env or {})  # e.g. the build's result cache
            if self.conn_dir:  # the notebook's temporary files go into the work folder
                kw["env"].update(TMPDIR=self.conn_dir, TEMP=self.conn_dir, TMP=self.conn_dir)
            return await super()._async_pre_start_kernel(**kw)

    return IPCKernelManager


def _zygote_manager_class(ipc_manager):
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner

    class ZygoteProvisioner(LocalProvisioner):
        """Launch the kernel by asking the zygote to fork it."""

        zygote = None

        async def launch_kernel(self, cmd, **kwargs):
            conn = cmd[cmd.index("-f") + 1]
            env = dict(kwargs.get("env") or worker_env())
            cwd = str(kwargs.get("cwd") or os.getcwd())
            logfile = str(Path(conn).with_suffix(".log"))
            try:
                pid = self.zygote.spawn(conn, env, cwd, logfile)
            except (BuildError, OSError, ValueError, AttributeError):
                # the zygote is gone (killed, out of memory): launch a plain kernel
                return await super().launch_kernel(cmd, **kwargs)
            self.process = ForkedKernel(pid)
            self.pid = pid
            self.pgid = pid
            self.cwd = cwd
            return self.connection_info

    class ZygoteKernelManager(ipc_manager):
        """IPC kernel manager whose kernels are forked from the warm zygote."""

        zygote = None

        async def _async_pre_start_kernel(self, **kw):
            if self.provisioner is None:
                self.kernel_id = self.kernel_id or str(uuid.uuid4())
                prov = ZygoteProvisioner(
                    kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
                )
                prov.zygote = self.zygote
                self.provisioner = prov
            return await super()._async_pre_start_kernel(**kw)

    return ZygoteKernelManager


@functools.lru_cache(maxsize=1)
def kernel_manager_classes() -> dict:
    """``{"subprocess": ..., "zygote": ...}`` kernel manager classes (defined lazily:
    jupyter_client is not imported by builds that have nothing to execute)."""
    ipc = _ipc_manager_class()
    return {"subprocess": ipc, "zygote": _zygote_manager_class(ipc)}


def kernel_mode() -> str:
    mode = os.environ.get("EXRESEARCH_KERNELS", "zygote" if hasattr(os, "fork") else "")
    return mode if mode in ("zygote", "subprocess") else "subprocess"


class Runtime:
    """The kernels of one build: how they start, the zygote, the live process groups.

    Created as soon as a build knows it may execute reports, so the zygote imports the
    heavy libraries while the driver validates the study and plans the build.
    """

    def __init__(self, study_path: Path | None = None, *, kernels=None, cache=None):
        self.kernels = kernels or kernel_mode()
        self.zygote = None
        self.live: set = set()
        # the build's result cache (outside --out, see cache.py): the zygote reads it, the
        # kernels (which run once the build holds the lock) read and write it
        self.extra_env = {"EXRESEARCH_CACHE": str(cache)} if cache else {}
        try:
            if self.kernels == "zygote":
                self.zygote = Zygote(study_path, cache=cache)
        except OSError:  # cannot start it: plain kernel subprocesses instead
            self.kernels = "subprocess"

    def wait_ready(self) -> None:
        """Wait for the zygote before the reports' clocks start (so no report's run time
        includes the zygote's imports and study validation); a failed zygote is left to
        :meth:`Zygote.spawn`, whose callers fall back to kernel subprocesses."""
        if self.zygote is not None:
            try:
                self.zygote.wait_ready()
            except (BuildError, OSError, ValueError):
                pass

    def flush_cache(self) -> int:
        """Let the zygote write the result-cache entries it computed (a changed client's
        panel and benchmark row) now that the build holds the lock; 0 when there is no
        zygote or it failed (the cache is an optimisation: never a reason to fail)."""
        if self.zygote is None or not self.extra_env:
            return 0
        try:
            return self.zygote.flush_cache()
        except (BuildError, OSError, ValueError):
            return 0

    def zygote_phases(self) -> list:
        """``(name, wall, cpu)`` of the zygote's start (imports, preloading the study), as
        it reported them once ready; empty without a zygote or before it is ready."""
        return list(self.zygote.phases) if self.zygote is not None else []

    def manager_class(self, conn_dir: Path):
        """A kernel manager class for one report whose files go into ``conn_dir``."""
        base = kernel_manager_classes()[self.kernels]
        return type(base.__name__, (base,), {"conn_dir": str(conn_dir), "live": self.live,
                                             "zygote": self.zygote,
                                             "extra_env": self.extra_env})

    def kill_live(self) -> None:
        """SIGKILL every running kernel's process group (never our own)."""
        own = os.getpgrp()
        for pgid in list(self.live):
            with contextlib.suppress(OSError):
                if pgid != own:
                    os.killpg(pgid, signal.SIGKILL)
            self.live.discard(pgid)

    def close(self, *, kill: bool = False) -> None:
        """Stop the zygote: let it finish, or (``kill``, after an interrupt) at once."""
        if self.zygote is not None:
            if kill:
                self.kill_live()
                self.zygote.proc.kill()
            self.zygote.close()
            self.zygote = None
