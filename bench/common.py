"""Shared helpers of the benchmarks: subprocess timing, peak memory, statistics, machine.

Every timed case runs in a fresh subprocess (``run_worker``) that prints one JSON line
with its own timings; the parent also reads that child's peak resident set size from
``os.wait4`` (``ru_maxrss``), so one case's memory never leaks into another's figure.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
#: Libraries whose versions results.md records.
LIBRARIES = (
    "exresearch", "numpy", "pandas", "scipy", "pyarrow", "pandera", "pingouin",
    "statsmodels", "seaborn", "matplotlib", "papermill", "nbconvert", "nbclient",
    "ipykernel", "jupyter_client",
)
GIB = 1024 ** 3


# --------------------------------------------------------------------------- memory
def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak resident set size of this process since start or the last reset (VmHWM)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --------------------------------------------------------------------------- workers
class WorkerError(RuntimeError):
    """A benchmark subprocess failed."""


def run_worker(argv: list[str], *, env: dict | None = None, timeout: float | None = None,
               cwd: Path | None = None) -> dict:
    """Run ``python <argv>`` in a subprocess and return its JSON result.

    The worker prints its result as the last line of stdout (a JSON object). Adds
    ``wall`` (seconds, as seen by the parent, including interpreter start) and
    ``maxrss`` (bytes, the child's peak RSS from ``wait4``) to it.
    """
    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("PYTHONHASHSEED", "0")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=full_env, cwd=cwd, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise WorkerError(f"worker {argv} timed out after {timeout} s") from None
    wall = time.perf_counter() - t0
    maxrss = _child_maxrss_fallback()
    if proc.returncode != 0:
        raise WorkerError(f"worker {argv} failed ({proc.returncode}):\n{err[-4000:]}")
    lines = [ln for ln in out.strip().splitlines() if ln.startswith("{")]
    if not lines:
        raise WorkerError(f"worker {argv} printed no result:\n{out[-2000:]}\n{err[-2000:]}")
    result = json.loads(lines[-1])
    result["wall"] = wall
    result.setdefault("maxrss", maxrss)
    return result


def _child_maxrss_fallback() -> int:
    """Largest peak RSS of any waited-for child so far (an upper bound; workers report
    their own VmHWM, which is exact)."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def emit(result: dict) -> None:
    """Print a worker result as the last stdout line (see :func:`run_worker`)."""
    result = dict(result)
    result.setdefault("maxrss", peak_rss_bytes())
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- statistics
def summarise(values) -> dict:
    """Median, min, max, quartiles and n of a list of numbers."""
    v = sorted(float(x) for x in values)
    if not v:
        return {"n": 0, "median": float("nan"), "min": float("nan"), "max": float("nan")}
    out = {"n": len(v), "median": statistics.median(v), "min": v[0], "max": v[-1]}
    if len(v) >= 4:
        q = statistics.quantiles(v, n=4, method="inclusive")
        out["q1"], out["q3"] = q[0], q[2]
    return out


def fmt_seconds(x: float) -> str:
    if x != x:  # NaN
        return "n/a"
    if x >= 100:
        return f"{x:.0f} s"
    if x >= 10:
        return f"{x:.1f} s"
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1000:.0f} ms"


def fmt_stat(s: dict, fmt=fmt_seconds) -> str:
    """``median (min-max, n=N)`` for a :func:`summarise` result."""
    if not s.get("n"):
        return "n/a"
    if s["n"] == 1:
        return f"{fmt(s['median'])} (n=1)"
    return f"{fmt(s['median'])} ({fmt(s['min'])}-{fmt(s['max'])}, n={s['n']})"


def fmt_bytes(b: float) -> str:
    if b >= GIB:
        return f"{b / GIB:.2f} GiB"
    return f"{b / 1024 ** 2:.0f} MiB"


# --------------------------------------------------------------------------- machine
def loadavg() -> str:
    try:
        a, b, c = os.getloadavg()
        return f"{a:.2f} {b:.2f} {c:.2f}"
    except OSError:
        return "n/a"


def machine_info() -> dict:
    """Cores, memory, CPU model, OS, Python, library versions, commit, BLAS settings."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "exresearch", "notebooks"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "unknown", ""
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
        "commit": commit + (" (with uncommitted changes in exresearch/ or notebooks/)"
                            if dirty else ""),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(not set)"),
        "loadavg_start": loadavg(),
    }
