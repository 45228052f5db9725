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

"The exresearch source" is that of the modules that compute the entry's kind: the import
closure of :data:`ROOTS` (:func:`import_closure`), so an upgrade of ``site.py`` or
``deliver.py`` keeps every entry. Any change of one of those modules, of the numeric
libraries (:data:`LIBRARIES`) or of the cache format gives new keys, so an entry is never
used by code that did not write it (entries of other versions are removed by the next
build: :func:`prune`).

The entries are study data (every client's checked survey, i.e. respondent-level answers,
and outcome tables), so the cache lives OUTSIDE the site folder ``--out``, where no copy,
zip or upload of the site can take it along (:func:`site_cache_dir`):
``$EXRESEARCH_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/exresearch``, else
``~/.cache/exresearch`` (as pip and matplotlib do), one subfolder per site named by the
sha256 of the resolved ``--out`` path (no readable path in the name), created with mode
0o700. ``exresearch build --cache DIR`` uses ``DIR`` instead, ``--no-cache`` no cache
(same results, slower rebuilds). A cache folder that cannot be created or written means a
build without a cache (:func:`open_site_cache`), never a failed build. Builds before this
layout kept the cache in ``DIR/.exresearch/cache/`` (:data:`OLD_CACHE_DIR`); the next
build removes it.

Each entry is one file written to a temporary name and renamed, so a killed build leaves
whole entries or none. Entries are Python pickles (exact round trip of DataFrames, dtypes
and ``attrs``, which parquet does not give for object columns): trust the cache folder as
you trust the ``.venv``; removing it (``rm -rf ~/.cache/exresearch``) is always safe (the
next build recomputes it). Written by hand: ``joblib.Memory`` keys by a function's
arguments (here a whole ``Study``), not by the content hashes we already have.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
import re
import uuid
from pathlib import Path

__all__ = ["ResultCache", "cache_key", "code_version", "import_closure", "prune", "cache_root", "site_cache_dir",
           "open_site_cache", "OLD_CACHE_DIR", "CACHE_ENV", "CACHE_DIR_ENV"]

#: Where builds before the cache moved out of the site kept it (removed by the next build).
OLD_CACHE_DIR = ".exresearch/cache"
#: Environment variable naming the folder that holds the caches of every site.
CACHE_DIR_ENV = "EXRESEARCH_CACHE_DIR"
#: Environment variable naming the cache folder for report kernels (set by the build).
CACHE_ENV = "EXRESEARCH_CACHE"
#: Bump when the layout of an entry changes.
FORMAT = 1


#: The modules whose code computes each kind of entry: an entry's key holds the source of
#: their exresearch import closure (:func:`import_closure`), not of the whole package, so
#: a change of e.g. ``site.py`` or ``deliver.py`` keeps every entry; a change of a module
#: the computation may run gives new keys. ``exresearch.study`` is a root of both: the
#: ``Study`` a summary is computed from is its object (methods, frames), not an import.
ROOTS = {
    "validation": ("exresearch.study",),
    "summaries": ("exresearch.report.summaries", "exresearch.report.clients",
                  "exresearch.study"),
}
#: The libraries whose versions are part of every key (what computes and reads entries).
LIBRARIES = ("pandas", "numpy", "scipy", "statsmodels", "pingouin", "pyarrow", "pandera")
#: Non-Python files of the package that code reads (hashed with any closure).
DATA_FILES = ("loop_power.csv",)


def _module_file(pkg: Path, name: str) -> Path | None:
    """The source file of module ``name`` (``exresearch.a.b``) under ``pkg``, or None."""
    parts = name.split(".")[1:]
    base = pkg.joinpath(*parts)
    for path in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
        if path is not None and path.is_file():
            return path
    return None


def _lazy_names(pkg: Path) -> dict:
    """``exresearch._LAZY``, read from the source (public name -> defining module)."""
    import ast

    tree = ast.parse((pkg / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None
                and "_LAZY" in ast.unparse(node.targets[0] if isinstance(node, ast.Assign)
                                           else node.target)):
            return ast.literal_eval(node.value)
    return {}


_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)",
                   re.M)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#;]*)", re.M)
_DYNAMIC = re.compile(r"\b(?:import_module|__import__)\(\s*(?:(['\"])([\w.]+)\1\s*[,)])?")
_STRING = re.compile(r"['\"]([\w.]+)['\"]")


def _imports(text: str, here: str, every: set, lazy: dict, *, top: bool) -> list | None:
    """The exresearch modules one module's source imports (see :func:`import_closure`).

    Read with regular expressions, not :mod:`ast` (parsing the 49 modules of the
    summaries' closure took 0.45 s, in every process that builds a cache key): each line
    that starts (after indentation) with ``import`` or ``from ... import`` (also inside a
    string: more modules only widen the key), so it finds every import statement.
    """
    text = text.replace("\\\n", " ")  # a statement continued with a backslash
    found = []
    for base, names in _FROM.findall(text):
        if base.startswith("."):
            level = len(base) - len(base.lstrip("."))
            up = here.split(".")
            base = ".".join([*up[:len(up) - level + 1], *filter(None, [base[level:]])])
        for item in names.strip("() \n").replace("\n", " ").split(","):
            word = item.split()[0] if item.split() else ""
            if not word or word.startswith("#"):
                continue
            sub = f"{base}.{word}"
            if sub in every:  # a module of the package
                found.append(sub)
            elif base == "exresearch" and word in lazy:
                found.append(f"exresearch.{lazy[word]}")
            else:  # a name defined (or imported) by ``base`` itself (``*``: all of them)
                found.append(base)
    for names in _IMPORT.findall(text):
        for item in names.split(","):
            word = item.split()[0] if item.split() else ""
            if word == "exresearch" and not top:
                return None  # exresearch.<any lazy name> may follow
            found.append(word)
    if not top:
        for _quote, literal in _DYNAMIC.findall(text):
            if literal and not literal.startswith("."):
                found.append(literal)
            else:  # not a literal (or relative): every module a string of this one names
                found += ["exresearch." + v.removeprefix("exresearch.").lstrip(".")
                          for v in _STRING.findall(text)]
                break
    return found


def import_closure(roots, *, package_dir=None) -> list[str] | None:
    """The exresearch modules ``roots`` may run: their imports, those modules' imports and
    so on, found statically with :mod:`ast` (imports inside functions included), with the
    packages whose ``__init__`` runs on the way; None when that cannot be told.

    Written by hand (the standard library's ``modulefinder`` skips the lazy names of
    ``exresearch/__init__.py`` and dynamic imports). Rules, each erring on the side of
    more modules:

    * ``from exresearch import load_study`` (a public name, served lazily) stands for the
      module that defines it; ``from .a import b`` for ``a`` and, if it is a module, ``a.b``;
    * a package whose ``__init__`` only runs because a module inside it is imported
      (``exresearch.build`` for ``from .build.cache import cache_key``) is in the closure,
      but its own imports are followed only when a name is taken from it: importing a
      module of the package defines functions, it runs none of them (no exresearch module
      sets a global option when imported);
    * a module with an import whose name is not a literal
      (``importlib.import_module(f"exresearch.{name}")``) is taken to import every module
      of the package that any string in it names;
    * a bare ``import exresearch`` (any lazy name may follow) gives None: the caller then
      hashes the whole package;
    * ``exresearch.build`` is left out: it runs the reports and stores the entries
      (``cache_key``, :class:`ResultCache`), it computes none of them; this module is
      hashed with every closure (:func:`_closure_source`).

    Examples
    --------
    >>> mods = import_closure(["exresearch.study"])
    >>> "exresearch.study" in mods and "exresearch" in mods, "exresearch.site" in mods
    (True, False)
    """
    from .. import config

    pkg = Path(package_dir or config.PACKAGE_DIR)
    lazy = _lazy_names(pkg)
    every = {"exresearch"}
    for p in pkg.rglob("*.py"):
        if "__pycache__" not in p.parts:
            every.add(".".join(["exresearch", *p.relative_to(pkg).with_suffix("").parts])
                      .removesuffix(".__init__"))
    seen: set = set()  # in the closure
    followed: set = set()  # ... and its imports followed
    todo = [(r, True) for r in roots]
    while todo:
        name, follow = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # a module's packages run their __init__ first
            mod = ".".join(parts[:i])
            if mod not in every:
                break
            if mod == "exresearch.build" or mod.startswith("exresearch.build."):
                break  # the build stores entries, it computes none (this module: hashed)
            seen.add(mod)
            if i < len(parts) or not follow or mod in followed:
                continue  # a package on the way: its __init__ runs, its names aren't used
            followed.add(mod)
            path = _module_file(pkg, mod)
            here = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
            found = _imports(path.read_text(encoding="utf-8"), here, every, lazy,
                             top=mod == "exresearch")
            if found is None:
                return None
            todo += [(f, True) for f in found if f.split(".")[0] == "exresearch"]
    return sorted(seen)


def _closure_source(kind: str, *, package_dir=None) -> str:
    """sha256 of the source of :data:`ROOTS`' closure for ``kind``, this module and
    :data:`DATA_FILES`; of the whole package when ``kind`` has no roots or the closure
    cannot be told. ``package_dir``: another copy of the package (tests)."""
    from .. import config
    from .plan import source_hash

    pkg = Path(package_dir or config.PACKAGE_DIR)
    mods = import_closure(ROOTS[kind], package_dir=pkg) if kind in ROOTS else None
    if mods is None:
        return source_hash(package_dir=pkg)
    h = hashlib.sha256()
    files = ([_module_file(pkg, m) for m in mods] + [pkg / f for f in DATA_FILES]
             + [pkg / "build" / "cache.py"])
    for p in sorted(f for f in files if f is not None and f.is_file()):
        h.update(p.relative_to(pkg).as_posix().encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


@functools.cache
def code_version(kind: str | None = None) -> str:
    """sha256 of the code behind one kind of entry and the numeric libraries' versions.

    ``kind`` ``"validation"`` or ``"summaries"``: the source of the modules that compute
    it (:data:`ROOTS`, :func:`import_closure`); None or any other kind: the whole
    exresearch source.
    """
    from importlib.metadata import PackageNotFoundError, version

    libs = []
    for name in LIBRARIES:  # from the installed metadata: no import of scipy for this
        try:
            libs.append(version(name))
        except PackageNotFoundError:
            libs.append(None)
    return hashlib.sha256(json.dumps([FORMAT, _closure_source(kind or ""), *libs]).encode()
                          ).hexdigest()


def _store(kind: str) -> str:
    """The cache folder (:class:`ResultCache`'s ``kind``) of an entry of ``kind``."""
    return "summaries" if kind.startswith("summary-") else kind


def cache_key(kind: str, payload) -> str:
    """The key of one entry: sha256 of ``kind``, ``payload`` (JSON) and the
    :func:`code_version` of its kind (``"validation"``; ``"summary-*"``: ``"summaries"``).

    Examples
    --------
    >>> a = cache_key("validation", {"file": "clients/a/survey.csv", "sha256": "ab"})
    >>> a == cache_key("validation", {"sha256": "ab", "file": "clients/a/survey.csv"})
    True
    >>> a == cache_key("validation", {"file": "clients/a/survey.csv", "sha256": "ac"})
    False
    """
    text = json.dumps([kind, payload, code_version(_store(kind))], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    """A folder of cache entries, one file per key (see the module docstring).

    Parameters
    ----------
    folder : str or pathlib.Path
        Where the entries live, e.g. ``site_cache_dir("reports/demo")``.
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
        self.folder = Path(folder) / kind / code_version(kind)[:16]
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


_HEX16 = re.compile(r"[0-9a-f]{16}")
_HEX2 = re.compile(r"[0-9a-f]{2}")
#: What :meth:`ResultCache.put` leaves in ``KIND/VERSION/xx/``: entries and, after a
#: crash mid-write, their temporary files. Nothing else is ever removed.
_ENTRY = re.compile(r"\.?[0-9a-f]{64}\.pkl(\.[0-9]+-[0-9a-f]{8}\.tmp)?")


def prune(folder) -> list[str]:
    """Remove the entries written by other code versions from the cache ``folder``
    (called by the build once it holds the lock); return what was removed.

    Only what :class:`ResultCache` writes is removed: files named like its entries in
    ``KIND/VERSION/xx/`` (VERSION 16 and xx 2 hex digits), then those folders if they
    are left empty. ``folder`` may be one a user named with ``--cache``: anything else
    in it (their own files and folders) is left alone.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> old = root / "validation" / ("0" * 16) / "ab" / ("ab" + "0" * 62 + ".pkl")
    >>> old.parent.mkdir(parents=True); _ = old.write_bytes(b"x")
    >>> mine = root / "validation" / ("1" * 16) / "notes.txt"  # not an entry: kept
    >>> mine.parent.mkdir(parents=True); _ = mine.write_text("keep")
    >>> prune(root), old.exists(), mine.exists()
    (['validation/0000000000000000'], False, True)
    """
    folder, gone = Path(folder), []
    if not folder.is_dir():
        return gone
    for kind in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
        mine = code_version(kind.name)[:16]
        for version in sorted(kind.iterdir()):
            if (version.name == mine or not _HEX16.fullmatch(version.name)
                    or version.is_symlink() or not version.is_dir()):
                continue
            removed = False
            for sub in sorted(version.iterdir()):
                if not (_HEX2.fullmatch(sub.name) and sub.is_dir() and not sub.is_symlink()):
                    continue
                for entry in sub.iterdir():
                    if _ENTRY.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
                        with contextlib.suppress(OSError):
                            entry.unlink()
                            removed = True
                with contextlib.suppress(OSError):
                    sub.rmdir()  # only if now empty
            with contextlib.suppress(OSError):
                version.rmdir()  # only if now empty
            if removed:
                gone.append(f"{kind.name}/{version.name}")
    return gone


def cache_root() -> Path:
    """The folder holding the result caches of every site: ``$EXRESEARCH_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/exresearch``, else ``~/.cache/exresearch``.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"EXRESEARCH_CACHE_DIR": "/tmp/exr-cache"}):
    ...     str(cache_root())
    '/tmp/exr-cache'
    """
    env = os.environ.get(CACHE_DIR_ENV, "")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "exresearch"


def site_cache_dir(out, *, root=None) -> Path:
    """The result cache of the site folder ``out``: ``root`` (default :func:`cache_root`)
    / sha256 of the resolved ``out`` path (no readable path in the name).

    Examples
    --------
    >>> d = site_cache_dir("reports/demo", root="/tmp/exr-cache")
    >>> d.parent.as_posix(), len(d.name), "demo" in d.name
    ('/tmp/exr-cache', 64, False)
    >>> d == site_cache_dir("reports/../reports/demo", root="/tmp/exr-cache")
    True
    """
    key = hashlib.sha256(str(Path(out).expanduser().resolve()).encode()).hexdigest()
    return Path(cache_root() if root is None else root) / key


def open_site_cache(folder) -> tuple[Path | None, str]:
    """Create ``folder`` (and its missing parents) with mode 0o700 and check that it can be
    written; return ``(folder, "")``, or ``(None, why)`` when it cannot (the build then
    runs without a cache: it is an optimisation, never a reason to fail).

    Examples
    --------
    >>> import tempfile
    >>> folder, why = open_site_cache(Path(tempfile.mkdtemp()) / "exresearch" / "ab")
    >>> oct(folder.stat().st_mode & 0o777), why
    ('0o700', '')
    >>> open_site_cache("/proc/exresearch-cache")[0] is None
    True
    """
    folder = Path(folder).expanduser().absolute()
    probe = folder / f".probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        missing = [p for p in [folder, *folder.parents] if not p.exists()]
        for p in reversed(missing):  # 0o700, as the XDG base directory spec asks
            p.mkdir(mode=0o700, exist_ok=True)
        if not folder.is_dir():
            raise NotADirectoryError(20, "not a folder", str(folder))
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        with contextlib.suppress(OSError):
            probe.unlink()
        return None, f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return folder, ""


def from_env(kind: str) -> ResultCache | None:
    """The cache named by ``$EXRESEARCH_CACHE`` (set by the build for its kernels), or None."""
    folder = os.environ.get(CACHE_ENV, "")
    if not folder or not Path(folder).is_dir():
        return None
    return ResultCache(folder, kind)
