"""A notebook kernel's figures drawn in forked children while the kernel goes on.

Off unless asked (:func:`exresearch.style.use` with ``parallel_figures=True``; the
build asks for it in the synthesis's kernel through ``$EXRESEARCH_PARALLEL_FIGURES``,
:func:`exresearch.report.setup_report`). When a figure is shown, its PNG
(:func:`exresearch.style.figure_png`, the same bytes) is drawn by a child forked at
that moment - a copy of the figure as it is then - while the kernel goes on with the
next statements. The figure's ``display_data`` message is held back, and so is every
display message after it, until the child is done and something else has to go out in
order (text on stdout or stderr, an error, a cell's result) or the cell ends
(``post_execute``): then the held messages go out in their order, the figure's with its
PNG and alt text. A cell's first figure is drawn in the kernel (a cell that shows a
single figure near its end would only wait for its child). The executed notebook is
therefore the one of the synchronous route, output for output.

Whatever the child cannot do cleanly - an exception, a warning, any text on stdout or
stderr, a crash - it does not report: the figure is then drawn again in the kernel,
through IPython's own formatter call, when its turn to go out comes, so the traceback,
the warnings and the output are those of today, in the same places (the figure must not
have been changed in between: the inline backend closes what it shows). Anything
unexpected at install (no ``os.fork``, not an ipykernel shell) leaves figures drawn in
the kernel as before.

A child touches nothing but its copy of the figure and its pipe: its standard streams
and the kernel's stream objects write into a buffer, it never runs the garbage collector
(a finaliser could touch a socket of the kernel), it asks Linux to kill it when the
kernel dies (``PR_SET_PDEATHSIG``) and it ends with ``os._exit``. At most ``jobs``
children draw at once (one token each from a pipe; default: the cores this process may
use, less one); a few more may wait for a token, beyond that the kernel draws the figure
itself. Children are killed when the kernel is interrupted or exits.

Limits: during a cell, code calling IPython's display formatter itself (not through
``display``) gets placeholder bytes for a figure's PNG; a display hook registered after
this one (an ipywidgets ``Output``) does not see the figure messages held back.

No library does this: IPython's formatters and matplotlib's backends return a figure's
image synchronously, and ``multiprocessing``/``concurrent.futures`` would pickle the
figure (slow, and not every figure pickles) instead of sharing the kernel's memory.
"""

from __future__ import annotations

import atexit
import gc
import io
import os
import pickle
import signal
import sys
import threading
import warnings

__all__ = ["install", "uninstall", "active"]

_SENTINEL = b"\x00exresearch-figure-in-a-child:"
_PR_SET_PDEATHSIG = 1
#: Children that may wait for a token beyond the ``jobs`` that draw (then the kernel
#: draws): a short queue keeps the free core busy while the kernel builds the next
#: figure, a long one only holds memory.
_QUEUE = 2

_state: _Parallel | None = None


def active() -> bool:
    """Whether this kernel draws its figures in children (:func:`install` was called)."""
    return _state is not None


def install(ip=None, *, jobs: int | None = None) -> bool:
    """Draw the figures of this IPython kernel in forked children from now on.

    Parameters
    ----------
    ip : IPython shell, optional
        Default: the running one.
    jobs : int, optional
        Children that draw at once (default: the cores this process may use, less one,
        at least one).

    Returns
    -------
    bool
        True when installed (or already installed); False when this kernel cannot
        (no ``os.fork``, not an ipykernel shell, not the main thread): figures are then
        drawn in the kernel as before.

    Examples
    --------
    >>> install()  # not inside a kernel
    False
    """
    global _state
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        from .exceptions import ParameterError

        raise ParameterError(f"`jobs` must be an integer >= 1, but {jobs!r} was passed")
    if _state is not None:  # style.use() again put figure_png back: ours on top again
        _state.formatter.for_type(_state.Figure, _state.format_png)
        return True
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover
            return False
        ip = get_ipython()
    if ip is None or not hasattr(os, "fork") or not sys.platform.startswith("linux") \
            or threading.current_thread() is not threading.main_thread():
        return False
    pub, dh = getattr(ip, "display_pub", None), getattr(ip, "displayhook", None)
    if not all(hasattr(o, "register_hook") for o in (pub, dh)) \
            or not all(hasattr(pub, a) for a in ("session", "pub_socket", "topic")) \
            or not hasattr(ip, "_showtraceback"):
        return False
    if jobs is None:
        try:
            jobs = max(1, len(os.sched_getaffinity(0)) - 1)
        except (AttributeError, OSError):  # pragma: no cover
            jobs = max(1, (os.cpu_count() or 2) - 1)
    _state = _Parallel(ip, jobs)
    _state.start()
    return True


def uninstall() -> None:
    """Back to figures drawn in the kernel: send what is held, remove the hooks."""
    global _state
    if _state is not None:
        _state.stop()
        _state = None


class _Job:
    """One figure drawn by a child: its pid, the read end of its pipe, the figure."""

    __slots__ = ("pid", "fd", "fig", "result", "done")

    def __init__(self, pid, fd, fig):
        self.pid, self.fd, self.fig, self.result, self.done = pid, fd, fig, None, False


class _Parallel:
    def __init__(self, ip, jobs):
        self.ip, self.jobs = ip, jobs
        self.formatter = ip.display_formatter.formatters["image/png"]
        self.held: list = []  # [message, job or None], in the order they were sent
        self.jobs_by_key: dict = {}  # sentinel -> job, from the formatter to the hook
        self.live: list = []  # children not yet reaped
        self.flushing = False
        self.in_cell = True  # install() is called from a cell
        self.shown = 0  # figures shown in this execution
        self.streams: list = []  # (stream, its write before ours)
        self.tokens = None
        self.count = 0
        self.parent = os.getpid()

    # ---- installing ---------------------------------------------------------------
    def start(self):
        import ctypes  # noqa: F401 - imported once here, not in every child

        from matplotlib.figure import Figure
        from PIL import PngImagePlugin  # noqa: F401 - what figure_png's save imports

        self.Figure = Figure
        self.from_style = self.formatter.lookup_by_type(Figure) \
            if Figure in self.formatter.type_printers else None
        self.formatter.for_type(Figure, self.format_png)
        self.ip.display_pub.register_hook(self.on_display)
        self.ip.displayhook.register_hook(self.on_result)
        self.showtraceback = self.ip._showtraceback
        self.ip._showtraceback = self.on_traceback
        self.ip.events.register("pre_execute", self.pre_execute)
        self.ip.events.register("post_execute", self.post_execute)
        self.patch_streams()
        atexit.register(self.kill_all)

    def stop(self):
        self.flush()
        self.unpatch_streams()
        for event, cb in (("pre_execute", self.pre_execute),
                          ("post_execute", self.post_execute)):
            try:
                self.ip.events.unregister(event, cb)
            except ValueError:
                pass
        self.ip.display_pub.unregister_hook(self.on_display)
        self.ip.displayhook.unregister_hook(self.on_result)
        self.ip._showtraceback = self.showtraceback
        from .style import figure_png

        self.formatter.for_type(self.Figure, self.from_style or figure_png)
        atexit.unregister(self.kill_all)
        self.close_tokens()

    # IPython runs each cell with sys.stdout/sys.stderr's ``write`` replaced by its own
    # (``InteractiveShell._tee``) and put back after the cell: ours goes on top of it at
    # the start of each execution and comes off at its end, inside IPython's
    def patch_streams(self):
        for stream in {id(s): s for s in (sys.stdout, sys.stderr)}.values():
            before = stream.__dict__.get("write") if hasattr(stream, "__dict__") else None
            try:
                stream.write = self._writer(stream.write)
            except (AttributeError, TypeError):  # pragma: no cover - a stream we can't wrap
                continue
            self.streams.append((stream, before))

    def unpatch_streams(self):
        for stream, before in reversed(self.streams):
            if before is None:
                stream.__dict__.pop("write", None)
            else:
                stream.write = before
        self.streams = []

    def _writer(self, write):
        def write_in_order(text, *args, **kwargs):
            if self.held and not self.flushing \
                    and threading.current_thread() is threading.main_thread():
                self.flush()  # what was shown before this text goes out before it
            return write(text, *args, **kwargs)

        return write_in_order

    def pre_execute(self):
        self.in_cell, self.shown = True, 0
        if not self.streams:
            self.patch_streams()

    def post_execute(self):
        # after the inline backend's flush_figures (registered before us): every figure
        # of the cell is shown, and goes out before the kernel reports the cell done
        try:
            self.flush()
        except BaseException:  # noqa: BLE001 - an interrupt while waiting: drop, never raise
            self.kill_all()
            self.send_held(drop_figures=True)
        finally:
            self.in_cell = False
            self.unpatch_streams()

    # ---- the figure ---------------------------------------------------------------
    def draw_here(self, fig):
        """What the kernel showed before: IPython's PNG formatter calling figure_png."""
        from .style import figure_png

        f = self.formatter
        f.for_type(self.Figure, self.from_style or figure_png)
        try:
            return f(fig)
        finally:
            f.for_type(self.Figure, self.format_png)

    def format_png(self, fig):
        dh = self.ip.displayhook
        if (not self.in_cell or self.flushing or getattr(dh, "msg", None) is not None
                or getattr(dh, "is_active", False)
                or threading.current_thread() is not threading.main_thread()
                or os.getpid() != self.parent):
            return self.draw_here(fig)  # a cell's result, or outside a cell: as before
        self.shown += 1
        if self.shown == 1:
            # a cell's first figure is drawn here: in a cell that shows one figure near
            # its end the kernel would only wait for a child that draws it slower (a
            # fork, its page faults, caches it fills and loses); from the second on,
            # there is a cell's worth of figures to draw beside the kernel
            return self.draw_here(fig)
        self.reap()
        if len(self.live) >= self.jobs + _QUEUE:
            return self.draw_here(fig)  # the children are behind: the kernel draws this one
        try:
            job = self.fork(fig)
        except OSError:
            return self.draw_here(fig)
        self.count += 1
        key = _SENTINEL + str(self.count).encode()
        self.jobs_by_key[key] = job
        return key

    def fork(self, fig):
        if self.tokens is None:
            r, w = os.pipe()
            os.write(w, b"t" * self.jobs)
            self.tokens = (r, w)
        r, w = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)  # a whole PNG: the child exits at once
        except (ImportError, AttributeError, OSError):  # it then waits for the kernel to read
            pass
        try:
            pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            raise
        if pid == 0:  # pragma: no cover - the child (tests see its result)
            _child(fig, w, self.tokens, self.parent)
        os.close(w)
        job = _Job(pid, r, fig)
        self.live.append(job)
        return job

    def reap(self):
        for job in list(self.live):
            try:
                pid, _status = os.waitpid(job.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored)
                pid = job.pid
            if pid:
                self.live.remove(job)

    def wait(self, job):
        """The child's (PNG, metadata) or None; ``job.result`` "again" when it failed."""
        chunks = []
        try:
            while True:
                chunk = os.read(job.fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(job.fd)
            if job in self.live:
                try:
                    os.waitpid(job.pid, 0)
                except ChildProcessError:
                    pass
                self.live.remove(job)
        try:
            kind, value = pickle.loads(b"".join(chunks))
        except Exception:  # noqa: BLE001 - the child died before writing its answer
            kind, value = "again", None
        job.result, job.done = (value if kind == "ok" else "again"), True

    def kill_all(self):
        for job in self.live:
            try:
                os.kill(job.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for job in self.live:
            try:
                os.waitpid(job.pid, 0)
            except ChildProcessError:
                pass
            try:
                os.close(job.fd)
            except OSError:
                pass
            job.done, job.result = True, "again"
        self.live = []
        self.close_tokens()  # a killed child may have held a token

    def close_tokens(self):
        if self.tokens is not None:
            for fd in self.tokens:
                os.close(fd)
            self.tokens = None

    # ---- the messages -------------------------------------------------------------
    def on_display(self, msg):
        if self.flushing:
            return msg
        content = msg.get("content") or {}
        data = content.get("data") or {}
        png = data.get("image/png") if isinstance(data, dict) else None
        job = self.jobs_by_key.pop(png, None) if isinstance(png, bytes) else None
        if job is None and not self.held:
            return msg
        self.held.append([msg, job])  # after what is held, in order
        return None

    def on_result(self, msg):
        dh = self.ip.displayhook
        saved, dh.msg = getattr(dh, "msg", None), None  # a fallback's error is not the result's
        try:
            self.flush()
        finally:
            dh.msg = saved
        return msg

    def on_traceback(self, etype, evalue, stb):
        if self.held and not self.flushing:
            if isinstance(etype, type) and issubclass(etype, KeyboardInterrupt):
                self.kill_all()
                self.send_held(drop_figures=True)
            else:
                self.flush()
        return self.showtraceback(etype, evalue, stb)

    def flush(self):
        """Send every held message in order, each figure's once its child is done."""
        if self.flushing or not self.held:
            return
        self.send_held()

    def send_held(self, *, drop_figures=False):
        self.flushing = True
        try:
            while self.held:
                msg, job = self.held[0]
                if job is not None:
                    if not job.done and not drop_figures:
                        self.wait(job)
                    self.fill(msg, job, drop=drop_figures)
                self.held.pop(0)
                sys.stdout.flush()  # text a fallback wrote goes out before its figure
                sys.stderr.flush()
                pub = self.ip.display_pub
                pub.session.send(pub.pub_socket, msg, ident=pub.topic)
        finally:
            self.flushing = False
            self.jobs_by_key.clear()

    def fill(self, msg, job, *, drop=False):
        content = msg["content"]
        if drop and not job.done:  # an interrupt: its child is killed, its answer unread
            try:
                os.close(job.fd)
            except OSError:
                pass
            job.done = True
        res = None if drop else job.result
        if res == "again":  # drawn in the kernel as before: its error and warnings show here
            res = self.draw_here(job.fig)
        job.fig = None
        if isinstance(res, tuple) and len(res) == 2:
            data, md = res
        else:
            data, md = res, None
        if data is None:
            content["data"].pop("image/png", None)
        else:
            content["data"]["image/png"] = data
            # as IPython.display.display: the formatter's metadata, then the caller's on top
            if md is not None and "image/png" not in content["metadata"]:
                content["metadata"]["image/png"] = md


def _child(fig, w, tokens, parent):  # pragma: no cover - runs in the forked child
    """Draw ``fig`` and write ``pickle(("ok", figure_png(fig)))`` to ``w``, or "again"."""
    answer = ("again", None)
    try:
        gc.disable()  # no finaliser of the kernel's objects may run here
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            import ctypes

            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:
            os._exit(1)
        text = io.StringIO()
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:  # the kernel's stream objects would send to its sockets: into the buffer
                stream.write, stream.flush = text.write, (lambda: None)
            except (AttributeError, TypeError):
                pass
        sys.stdout = sys.stderr = text
        os.read(tokens[0], 1)  # wait for a turn to draw
        try:
            from .style import figure_png

            with warnings.catch_warnings(record=True) as seen:
                res = figure_png(fig)
        finally:
            os.write(tokens[1], b"t")
        if not seen and not text.getvalue():
            answer = ("ok", res)
    except BaseException:  # noqa: BLE001, S110 - the kernel draws it again and shows why
        pass
    try:
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(w, view):]
    finally:
        os._exit(0)
