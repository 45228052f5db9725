"""Shared fixtures: a seeded rng and a non-interactive matplotlib backend."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    """A seeded generator, so every random test input is reproducible."""
    return np.random.default_rng(20261125)
