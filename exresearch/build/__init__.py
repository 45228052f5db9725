"""Batch build: execute the report notebooks in parallel and publish an offline site.

``build_site(study, out=DIR)`` runs, with papermill, one ``client_report.ipynb`` per
client plus ``synthesis.ipynb`` and ``data_quality.ipynb`` once per study, renders each
executed notebook to HTML in-process, and publishes ``DIR/index.html``,
``DIR/manifest.json``, the report pages, the executed notebooks and the CSV tables the
notebooks wrote.

Modules (one concern each):

* :mod:`~exresearch.build.plan`: fingerprints (:func:`fingerprint` of a notebook: its
  cells' sources and tags, never outputs or metadata), build state, which reports run.
* :mod:`~exresearch.build.kernels`: the warm zygote that forks kernels, IPC kernel
  managers, parent-death signals (no kernel outlives the build).
* :mod:`~exresearch.build.execute`: one report (:func:`execute_report`), local and dask
  executors, machine paths removed from errors and pages.
* :mod:`~exresearch.build.publish`: the site marker, the lock on ``--out``, the staging
  area inside ``--out`` and the swap (works at a mount point), files the build did not
  write kept.
* :mod:`~exresearch.build.sitefiles`: index, manifest, share bundles, provenance.
* :mod:`~exresearch.build.core`: :func:`build_site`, the build as named steps.

How it is fast
    * Incremental: each report has a fingerprint (its notebook's cells, parameters,
      input file hashes, the exresearch source and ``requirements.lock``); only reports
      whose fingerprint changed (or that failed last time) are executed. When nothing at
      all changed, the build returns after hashing the files, without importing pandas,
      loading the study or starting a kernel.
    * Kernels forked from a warm "zygote" (POSIX): a helper process imports numpy,
      pandas, scipy, statsmodels, pingouin, seaborn, matplotlib and ipykernel and loads
      the study once; every report's kernel is a fresh ``os.fork`` of it. Set
      ``EXRESEARCH_KERNELS=subprocess`` for ordinary ``ipykernel`` subprocesses.
    * Reports run ``jobs`` at a time with BLAS/OpenMP limited to one thread per kernel;
      HTML is rendered in the driver with nbconvert.

Exit codes (the command line): 0 every report ok, 1 some reports failed, 2 bad input or
unusable ``--out`` (someone else's folder, another build holds its lock), 3 the machine
failed (disk full, read-only). See ``docs/build.md``.

Examples
--------
>>> from exresearch.build import build_site  # doctest: +SKIP
>>> result = build_site("data/demo", out="reports/demo")  # doctest: +SKIP
>>> result.exit_code, result.index  # doctest: +SKIP
(0, PosixPath('reports/demo/index.html'))
"""

from __future__ import annotations

from .core import build_site
from .execute import execute_report, redact_paths
from .kernels import Zygote as _Zygote  # noqa: F401
from .kernels import kernel_manager_classes as _kernel_manager_classes  # noqa: F401
from .kernels import worker_env as _worker_env  # noqa: F401
from .plan import fast_path as _fast_path  # noqa: F401
from .plan import fingerprint
from .plan import read_state as _read_state  # noqa: F401
from .plan import source_hash as _source_hash  # noqa: F401
from .publish import cleanup_stale as _cleanup_stale  # noqa: F401
from .publish import publish as _publish  # noqa: F401
from .records import MARKER_FILE, NOTEBOOKS, STATE_FILE, BuildResult, ReportRecord
from .sitefiles import combined_hash
from .sitefiles import exresearch_version as _exresearch_version  # noqa: F401
from .sitefiles import git_commit as _git_commit  # noqa: F401
from .sitefiles import inside as _inside  # noqa: F401
from .sitefiles import library_versions as _library_versions  # noqa: F401

__all__ = ["build_site", "BuildResult", "ReportRecord", "NOTEBOOKS", "STATE_FILE",
           "MARKER_FILE", "combined_hash", "execute_report", "fingerprint", "redact_paths"]

# ``_source_hash``, ``_publish`` and ``execute_report`` are looked up on this package at
# call time, so that tests can replace them with ``monkeypatch.setattr(build, ...)``.
_SEAMS = ("_source_hash", "_publish", "execute_report", "_Zygote", "_cleanup_stale",
          "_fast_path", "_read_state", "_kernel_manager_classes", "_worker_env", "_inside")
