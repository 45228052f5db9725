"""File hashing shared by study loading (provenance) and the build (fingerprints).

Kept in a module of its own that imports nothing heavy, so that the build's
nothing-changed path can hash the inputs without importing pandas.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["sha256_file", "hash_study_tree"]


def sha256_file(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_study_tree(study_path: Path) -> dict[str, str]:
    """sha256 of ``study.yml`` and every (non-hidden) file under ``clients/``, by relative path.

    Covers every file that could change what a study loads to (including files that
    ``load_study`` would reject), without parsing anything.
    """
    study_path = Path(study_path)
    out = {}
    yml = study_path / "study.yml"
    if yml.is_file():
        out["study.yml"] = sha256_file(yml)
    clients = study_path / "clients"
    if clients.is_dir():
        for dirpath, dirnames, filenames in os.walk(clients):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                p = Path(dirpath) / name
                out[p.relative_to(study_path).as_posix()] = sha256_file(p)
    return out
