"""File hashing shared by study loading (provenance) and the build (fingerprints).

Kept in a module of its own that imports nothing heavy, so that the build's
nothing-changed path can hash the inputs without importing pandas.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["sha256_file", "hash_study_tree", "stat_study_tree", "stats_unchanged"]


def sha256_file(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _study_files(study_path: Path):
    """(relative posix path, path) of ``study.yml`` and every non-hidden file under
    ``clients/``, in a fixed order: the files :func:`hash_study_tree` covers."""
    yml = study_path / "study.yml"
    if yml.is_file():
        yield "study.yml", yml
    clients = study_path / "clients"
    if clients.is_dir():
        for dirpath, dirnames, filenames in os.walk(clients):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                p = Path(dirpath) / name
                yield p.relative_to(study_path).as_posix(), p


def hash_study_tree(study_path: Path) -> dict[str, str]:
    """sha256 of ``study.yml`` and every (non-hidden) file under ``clients/``, by relative path.

    Covers every file that could change what a study loads to (including files that
    ``load_study`` would reject), without parsing anything.
    """
    return {rel: sha256_file(p) for rel, p in _study_files(Path(study_path))}


def stat_study_tree(study_path: Path) -> dict[str, tuple[int, int, int, int]]:
    """``(size, mtime_ns, ctime_ns, inode)`` of the files :func:`hash_study_tree` covers.

    A cheap first check that nothing changed (a sixth of the hashing's CPU at 300
    clients): writing a file changes its ctime, which ``os.utime`` cannot set back, and
    replacing it changes its inode. A file whose times are within
    :data:`RACY_NS` of when the stats were taken may have been written again in the same
    clock tick; :func:`stats_unchanged` does not trust such stats (as git's "racily
    clean" entries), so the caller hashes instead.
    """
    out = {}
    for rel, p in _study_files(Path(study_path)):
        st = os.stat(p)
        out[rel] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return out


#: File times this close (ns) to the moment their stats were taken are not trusted.
RACY_NS = 2_000_000_000


def stats_unchanged(before: dict, taken_ns: int, now: dict) -> bool:
    """Whether ``now`` (:func:`stat_study_tree`) shows the same files as ``before``,
    taken at ``taken_ns`` (``time.time_ns()`` just before), with no racily written one."""
    if before != now:
        return False
    return all(max(m, c) < taken_ns - RACY_NS for _size, m, c, _ino in before.values())
