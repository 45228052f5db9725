"""What a build knows about its reports: records, results and the site layout."""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ReportRecord", "BuildResult", "Phases", "NOTEBOOKS", "STATE_FILE", "MARKER_FILE"]

#: report kind -> notebook file name in ``config.notebooks_dir()``.
NOTEBOOKS = {
    "client": "client_report.ipynb",
    "synthesis": "synthesis.ipynb",
    "data_quality": "data_quality.ipynb",
}
TITLES = {"synthesis": "Synthesis across clients", "data_quality": "Data quality"}
KEYS = {"synthesis": "synthesis", "data_quality": "data-quality"}
#: The build's own folder inside the site: state, marker, lock and staging area.
META_DIR = ".exresearch"
#: Build state (fingerprints of the published reports), inside the site folder.
STATE_FILE = f"{META_DIR}/state.json"
STATE_VERSION = 1
#: The marker by which a build recognises a site it wrote (not any ``manifest.json``).
MARKER_FILE = f"{META_DIR}/site.json"
#: Top-level entries of a site that the build writes (everything else in ``--out`` is
#: the user's and is left alone).
SITE_ENTRIES = ("reports", "notebooks", "tables", "assets", "briefs", "workbooks", "pdf", "share",
                "manifest.json", "index.html")  # (assets ... pdf: exresearch.deliver)
TABLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
TABLE_SUFFIXES = {".csv", ".json"}
#: Paths a site may list in its state file (anything else, e.g. ``..``, voids the state).
SAFE_REL = re.compile(
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


class Phases:
    """Wall and CPU time of a build's steps, in the order they ran.

    ``rows`` holds ``(name, wall seconds, CPU seconds)``; CPU is this process's
    (``time.process_time``), or the one another process reported (the zygote's).

    Examples
    --------
    >>> ph = Phases()
    >>> with ph("plan"):
    ...     pass
    >>> ph.add("zygote: imports", wall=2.0, cpu=1.5)
    >>> [name for name, _, _ in ph.rows]
    ['plan', 'zygote: imports']
    >>> ph.text().splitlines()[-1]
    '  zygote: imports            2.00 s  cpu  1.50 s'
    """

    def __init__(self):
        self.rows: list[tuple[str, float, float]] = []

    @contextlib.contextmanager
    def __call__(self, name: str):
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.add(name, wall=time.perf_counter() - w, cpu=time.process_time() - c)

    def add(self, name: str, *, wall: float, cpu: float) -> None:
        """Add a row (a phase timed elsewhere, e.g. in the zygote)."""
        self.rows.append((name, float(wall), float(cpu)))

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{name: {"wall": s, "cpu": s}}`` (a name timed twice: the sums)."""
        out: dict[str, dict[str, float]] = {}
        for name, wall, cpu in self.rows:
            d = out.setdefault(name, {"wall": 0.0, "cpu": 0.0})
            d["wall"] += wall
            d["cpu"] += cpu
        return out

    def text(self) -> str:
        """One line per phase: name, wall time, CPU time."""
        lines = ["exresearch build: time by phase (wall, CPU of the process that ran it)"]
        lines += [f"  {name:<24} {wall:6.2f} s  cpu {cpu:5.2f} s" for name, wall, cpu in self.rows]
        return "\n".join(lines)


@dataclass
class BuildResult:
    """What :func:`~exresearch.build.build_site` did.

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
    kept : list of str
        Files in ``out`` that the build did not write and left in place (site-relative).
    cache : pathlib.Path or None
        The result cache's folder (outside ``out``), None when none was used.
    phases : dict
        Wall and CPU seconds of each step of the build (:meth:`Phases.as_dict`:
        ``{"load": {"wall": 1.2, "cpu": 1.1}, ...}``); ``exresearch build --debug``
        prints them.
    """

    index: Path
    exit_code: int
    reports: list[ReportRecord]
    executed: list[str]
    duration: float
    kept: list[str] = field(default_factory=list)
    cache: Path | None = None
    phases: dict = field(default_factory=dict)

    @property
    def failed(self) -> list[ReportRecord]:
        """The reports whose notebook failed."""
        return [r for r in self.reports if r.status == "failed"]
