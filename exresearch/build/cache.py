"""The build's result cache: per-file validation results and per-client summaries.

An incremental rebuild after one client's data changed should cost that client's work,
not the whole study's. Two kinds of work are per file or per client and are kept here,
each under a key that is the sha256 of everything the result depends on:

* validation of one data file (:func:`exresearch.load_study` with ``cache=``): the file's
  content hash, its path in the study, what ``study.yml`` asks of it and the exresearch
  source;
* one client's summary for the synthesis and the data-quality report
  (:func:`exresearch.report.client_summaries`): the client's data files, ``study.yml``,
  the parameters that change the result and the exresearch source.

Any change of the exresearch package (every ``.py`` file), of pandas, numpy or scipy, or
of the cache format gives new keys, so an entry is never used by code that did not write
it (entries of other versions are removed by the next build: :func:`prune`). The cache
lives in the site's build folder ``DIR/.exresearch/cache/`` (never
published, never copied into a share bundle); each entry is one file written to a
temporary name and renamed, so a killed build leaves whole entries or none. Entries are
Python pickles (exact round trip of DataFrames, dtypes and ``attrs``, which parquet does
not give for object columns): trust the cache folder as you trust the ``.venv``; removing
``DIR/.exresearch/cache/`` is always safe (the next build recomputes it). Written by hand:
``joblib.Memory`` keys by a function's arguments (here a whole ``Study``), not by the
content hashes we already have.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
import uuid
from pathlib import Path

__all__ = ["ResultCache", "cache_key", "code_version", "prune", "CACHE_DIR", "CACHE_ENV"]

#: The cache inside a site folder (next to the build state).
CACHE_DIR = ".exresearch/cache"
#: Environment variable naming the cache folder for report kernels (set by the build).
CACHE_ENV = "EXRESEARCH_CACHE"
#: Bump when the layout of an entry changes.
FORMAT = 1


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 of the exresearch source and the versions of the numeric libraries."""
    import numpy
    import pandas
    import scipy

    from .plan import source_hash

    return hashlib.sha256(json.dumps(
        [FORMAT, source_hash(), pandas.__version__, numpy.__version__, scipy.__version__]
    ).encode()).hexdigest()


def cache_key(kind: str, payload) -> str:
    """The key of one entry: sha256 of ``kind``, ``payload`` (JSON) and :func:`code_version`.

    Examples
    --------
    >>> a = cache_key("validation", {"file": "clients/a/survey.csv", "sha256": "ab"})
    >>> a == cache_key("validation", {"sha256": "ab", "file": "clients/a/survey.csv"})
    True
    >>> a == cache_key("validation", {"file": "clients/a/survey.csv", "sha256": "ac"})
    False
    """
    text = json.dumps([kind, payload, code_version()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    """A folder of cache entries, one file per key (see the module docstring).

    Parameters
    ----------
    folder : str or pathlib.Path
        Where the entries live, e.g. ``DIR/.exresearch/cache``.
    kind : str
        Subfolder for one kind of entry (``"validation"``, ``"summaries"``).
    write : bool, default True
        False: entries are read, never written (a process that must not write).
    defer : bool, default False
        Keep new entries in memory until :meth:`flush` (the build validates the study
        before it may write into ``--out``: nothing is written for an invalid study).

    Examples
    --------
    >>> import tempfile
    >>> c = ResultCache(tempfile.mkdtemp(), "demo")
    >>> k = cache_key("demo", {"x": 1})
    >>> c.get(k) is None
    True
    >>> c.put(k, {"answer": 42})
    True
    >>> c.get(k)
    {'answer': 42}
    """

    def __init__(self, folder, kind: str, *, write: bool = True, defer: bool = False):
        # one subfolder per code version, so that :func:`prune` can drop the others
        self.folder = Path(folder) / kind / code_version()[:16]
        self.write = write
        self.defer = defer
        self.pending: dict = {}
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"`key` must be a sha256 hex digest, but {key!r} was passed")
        return self.folder / key[:2] / f"{key}.pkl"

    def get(self, key: str):
        """The entry stored under ``key``, or None (absent or unreadable)."""
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                value = pickle.load(fh)  # noqa: S301 - our own entries (module docstring)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError,
                IndexError, TypeError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def has(self, key: str) -> bool:
        """Whether an entry is stored under ``key`` (not read)."""
        return key in self.pending or self._path(key).is_file()

    def put(self, key: str, value) -> bool:
        """Store ``value`` under ``key`` atomically; False when not written (read-only
        cache, disk full: the cache is an optimisation, never a reason to fail)."""
        if not self.write:
            return False
        if self.defer:
            self.pending[key] = value
            return True
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
        return True

    def flush(self) -> int:
        """Write the deferred entries; return how many were written."""
        pending, self.pending, self.defer = self.pending, {}, False
        return sum(self.put(k, v) for k, v in pending.items())


def prune(folder) -> list[str]:
    """Remove the entries written by other code versions from the cache ``folder``
    (called by the build once it holds the lock); return what was removed."""
    import shutil

    folder, mine, gone = Path(folder), code_version()[:16], []
    if not folder.is_dir():
        return gone
    for kind in sorted(p for p in folder.iterdir() if p.is_dir()):
        for version in sorted(p for p in kind.iterdir() if p.is_dir() and p.name != mine):
            shutil.rmtree(version, ignore_errors=True)
            gone.append(f"{kind.name}/{version.name}")
    return gone


def from_env(kind: str) -> ResultCache | None:
    """The cache named by ``$EXRESEARCH_CACHE`` (set by the build for its kernels), or None."""
    folder = os.environ.get(CACHE_ENV, "")
    if not folder or not Path(folder).is_dir():
        return None
    return ResultCache(folder, kind)
