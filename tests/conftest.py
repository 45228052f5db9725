"""Shared fixtures: a seeded rng and a non-interactive matplotlib backend."""

from __future__ import annotations

import os
import platform

os.environ.setdefault("MPLBACKEND", "Agg")
# Builds in tests print no PDFs unless a test asks (build_site(..., pdf=True)): printing
# every report of every test site would add minutes; test_browser.py checks the PDFs.
os.environ.setdefault("EXRESEARCH_PDF", "0")
# One OpenBLAS kernel set on every x86-64 machine (AVX2's, before numpy is imported):
# OpenBLAS picks its kernels by CPU (e.g. SkylakeX on an Intel Xeon with AVX-512), and
# they round differently in the last bits, so the tests that check results bit for bit
# against frozen hex floats (test_riclpm.py) would depend on the machine the suite runs
# on; the reference values were made with these kernels.
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _house_style_stays_in_its_test():
    """``style.use()`` (called by ``report.setup_report``) changes matplotlib's global
    rcParams; each test starts from and leaves the defaults it found."""
    import matplotlib as mpl

    with mpl.rc_context():
        yield


@pytest.fixture(scope="session", autouse=True)
def _result_cache_in_tmp(tmp_path_factory):
    """Builds keep their result cache in ``$EXRESEARCH_CACHE_DIR`` (else the user's
    ``~/.cache/exresearch``): the suite uses a temporary folder, set before any fixture
    builds a site, and inherited by the command-line builds it starts."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("xdg_cache")
    mp.setenv("XDG_CACHE_HOME", str(root))
    mp.setenv("EXRESEARCH_CACHE_DIR", str(root / "exresearch"))
    yield root / "exresearch"
    mp.undo()


def _change_one_answer(study, client: str) -> None:
    """Change one answer of ``client``'s first respondent (its first engagement item:
    1, or 2 when it is 1), so that the file's hash changes and the study stays valid."""
    survey = study / "clients" / client / "survey.csv"
    lines = survey.read_text().splitlines()
    head, row = lines[0].split(","), lines[1].split(",")
    col = head.index(next(h for h in head[3:] if h.startswith("eng")))
    row[col] = "1" if row[col] != "1" else "2"
    survey.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")


@pytest.fixture
def change_one_answer():
    """``change_one_answer(study_folder, client_id)``: one client's data changed."""
    return _change_one_answer


@pytest.fixture
def rng():
    """A seeded generator, so every random test input is reproducible."""
    return np.random.default_rng(20261125)


#: Arguments of the shared ``small_study`` fixture (tests may read them).
SMALL_STUDY_ARGS = {"n_clients": 5, "n_units": 12, "n_periods": 3, "seed": 20261122}


@pytest.fixture(scope="session")
def small_study(tmp_path_factory):
    """A small simulated study folder (5 clients x 12 units x 3 periods, fixed seed).

    Written once per test session under a temporary folder with
    :func:`exresearch.simulate.simulate_study`; holds ``study.yml``, ``truth.json`` and
    ``clients/client-0N/{survey,outcomes}.csv``. Treat it as read-only: it is shared.
    """
    from exresearch.simulate import simulate_study

    return simulate_study(tmp_path_factory.mktemp("small_study") / "study", **SMALL_STUDY_ARGS)
