"""Paths and defaults, in one place.

Every path the package uses is derived here from the repository root or from an
environment variable, so that no module carries a path literal of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "PACKAGE_DIR",
    "ROOT",
    "NOTEBOOKS_DIR",
    "DATA_DIR",
    "REPORTS_DIR",
    "DEMO_STUDY",
    "DEFAULT_SITE",
    "DEFAULT_MIN_GROUP_SIZE",
    "MIN_ALLOWED_GROUP_SIZE",
    "MIN_BENCHMARK_CONTRIBUTORS",
    "MIN_BENCHMARK_QUARTILE_CONTRIBUTORS",
    "BENCHMARK_QUANTILE_WINDOW",
    "CLIENT_ID_PATTERN",
    "notebooks_dir",
]

#: The installed package.
PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository root (the folder holding ``pyproject.toml``) in a source checkout.
ROOT = Path(os.environ.get("EXRESEARCH_ROOT", PACKAGE_DIR.parent)).resolve()
#: Parameterised notebooks executed by ``exresearch build``.
NOTEBOOKS_DIR = ROOT / "notebooks"
#: Raw study folders; code never writes here except the demo generator.
DATA_DIR = ROOT / "data"
#: Built report sites.
REPORTS_DIR = ROOT / "reports"
#: The simulated demo study that ``make reports`` builds.
DEMO_STUDY = DATA_DIR / "demo"
#: Where ``make reports`` publishes the demo site.
DEFAULT_SITE = REPORTS_DIR / "demo"

#: Smallest group whose values may be shown, unless ``study.yml`` sets another.
DEFAULT_MIN_GROUP_SIZE = 5
#: ``min_group_size`` values below this are rejected.
MIN_ALLOWED_GROUP_SIZE = 3
#: A benchmark is shown only when at least this many *other* clients contribute.
MIN_BENCHMARK_CONTRIBUTORS = 3
#: Benchmark quartiles of the other clients are shown only when at least this many contribute.
MIN_BENCHMARK_QUARTILE_CONTRIBUTORS = 5
#: Each benchmark quartile is the mean of this many adjacent other clients' values, so no
#: single client's value is ever shown.
BENCHMARK_QUANTILE_WINDOW = 3
#: Client ids: lower-case, digits, ``_`` and ``-``; also keeps paths inside the study.
CLIENT_ID_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"


def notebooks_dir() -> Path:
    """Return the notebooks folder, honouring ``EXRESEARCH_NOTEBOOKS`` if set."""
    return Path(os.environ.get("EXRESEARCH_NOTEBOOKS", NOTEBOOKS_DIR)).resolve()
