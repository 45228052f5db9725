"""File hashing shared by study loading (provenance) and the build (fingerprints).

Kept in a module of its own that imports nothing heavy, so that the build's
nothing-changed path can hash the inputs without importing pandas.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["sha256_file"]


def sha256_file(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
