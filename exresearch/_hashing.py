"""File hashing shared by study loading (provenance) and the build (fingerprints).

Kept in a module of its own that imports nothing heavy, so that the build's
nothing-changed path can hash the inputs without importing pandas.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

__all__ = ["sha256_file", "hash_study_tree", "study_tree_stats", "TreeSnapshot"]

#: A file whose last change (mtime or ctime) is this close to the moment its signature
#: was taken is "racy": a write in the same timestamp tick could leave the signature
#: unchanged (file systems with coarse timestamps), so it is always hashed again (the
#: rule git's index uses).
RACY_NS = 2_000_000_000


def sha256_file(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tree_files(study_path: Path):
    """``(relative path, path)`` of ``study.yml`` and every (non-hidden) file under
    ``clients/``, in a fixed order."""
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


def _signature(st: os.stat_result, now_ns: int) -> tuple | None:
    """What identifies a file's content without reading it: size, mtime, ctime, inode
    and device. Writing a file changes its ctime (which no user can set back, unlike
    mtime); None for a racy file (changed within :data:`RACY_NS` of ``now_ns``)."""
    if max(st.st_mtime_ns, st.st_ctime_ns) >= now_ns - RACY_NS:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def study_tree_stats(study_path: Path) -> dict[str, tuple | None]:
    """The signature (size, mtime, ctime, inode, device) of every file
    :func:`hash_study_tree` hashes, by relative path, from ``stat`` alone (no file is
    read); None for a file changed in the last two seconds (always hashed again)."""
    study_path = Path(study_path)
    now = time.time_ns()
    return {rel: _signature(p.stat(), now) for rel, p in _tree_files(study_path)}


def hash_study_tree(study_path: Path, *, known=None) -> dict[str, str]:
    """sha256 of ``study.yml`` and every (non-hidden) file under ``clients/``, by relative path.

    Covers every file that could change what a study loads to (including files that
    ``load_study`` would reject), without parsing anything.

    Parameters
    ----------
    study_path : pathlib.Path
    known : TreeSnapshot, optional
        Signatures and hashes taken earlier: a file whose signature (size, mtime, ctime,
        inode, device: :func:`study_tree_stats`) is unchanged keeps its hash without being
        read; any other file is hashed.
    """
    study_path = Path(study_path)
    if known is None:
        return {rel: sha256_file(p) for rel, p in _tree_files(study_path)}
    now = time.time_ns()
    out = {}
    for rel, p in _tree_files(study_path):
        sig = _signature(p.stat(), now)
        old = known.hashes.get(rel)
        if sig is not None and old is not None and known.stats.get(rel) == sig:
            out[rel] = old
        else:
            out[rel] = sha256_file(p)
    return out


class TreeSnapshot:
    """The signatures and sha256 of a study's files at one moment (:meth:`take`), to
    tell later, mostly from ``stat`` alone, whether any file changed (:meth:`same`).

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "study.yml").write_text("name: x")
    >>> snap = TreeSnapshot.take(root)
    >>> snap.same(root)
    True
    >>> _ = (root / "study.yml").write_text("name: y")
    >>> snap.same(root)
    False
    """

    def __init__(self, stats: dict, hashes: dict):
        self.stats, self.hashes = stats, hashes

    @classmethod
    def take(cls, study_path: Path) -> TreeSnapshot:
        """Signatures first, then hashes: a file written in between has a newer ctime
        than its signature says, so the next :meth:`same` hashes it again."""
        stats = study_tree_stats(study_path)
        return cls(stats, hash_study_tree(study_path))

    def same(self, study_path: Path) -> bool:
        """True when every file is the one of the snapshot: same set of paths, same
        signatures, or, where a signature differs or is racy, the same sha256."""
        stats = study_tree_stats(study_path)
        if stats.keys() != self.hashes.keys():
            return False
        if all(sig is not None and self.stats.get(rel) == sig for rel, sig in stats.items()):
            return True
        return hash_study_tree(study_path, known=self) == self.hashes
