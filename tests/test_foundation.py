"""The package installs, its CLI answers, and the environment files agree."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import exresearch
from exresearch import config
from exresearch.cli import main
from exresearch.exceptions import (
    BuildError,
    ExresearchError,
    ParameterError,
    StudyValidationError,
)

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"unpinned line in requirements.lock: {line!r}"
            pins[_name(name)] = version
    return pins


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_version_matches_pyproject():
    assert exresearch.__version__ == _pyproject()["project"]["version"]


def test_cli_version_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"exresearch {exresearch.__version__}"
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("validate", "simulate", "build"):
        assert command in out


def test_console_script_runs():
    exe = Path(sys.executable).with_name("exresearch")
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    assert "usage: exresearch" in result.stdout


def test_every_dependency_is_locked_and_satisfies_pyproject():
    from packaging.requirements import Requirement

    lock = _lock()
    project = _pyproject()["project"]
    for spec in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        req = Requirement(spec)
        name = _name(req.name)
        assert name in lock, f"{name} is in pyproject.toml but not pinned in requirements.lock"
        assert req.specifier.contains(lock[name], prereleases=True), (
            f"{name}=={lock[name]} in the lock does not satisfy {spec!r} in pyproject.toml"
        )


def test_nbconvert_is_not_a_vulnerable_release():
    from packaging.version import Version

    assert Version(_lock()["nbconvert"]) >= Version("7.17.1")


def test_environment_yml_agrees_with_lock_and_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-r requirements.lock" in pip_section
    pinned = {}
    for entry in pip_section:
        if "==" in entry:
            name, _, version = entry.partition("==")
            pinned[_name(name)] = version
    lock = _lock()
    project = _pyproject()["project"]
    direct = {_name(s) for s in [*project["dependencies"], *project["optional-dependencies"]["dev"]]}
    assert set(pinned) == direct, "environment.yml must pin exactly the direct dependencies"
    for name, version in pinned.items():
        assert lock[name] == version, f"environment.yml pins {name}=={version}, lock has {lock[name]}"


def test_installed_versions_match_lock():
    from importlib.metadata import version

    lock = _lock()
    for name in ("pandas", "numpy", "scipy", "pingouin", "statsmodels", "papermill", "nbconvert"):
        assert version(name) == lock[name], f"{name} installed {version(name)}, lock {lock[name]}"


def test_exception_tree():
    for cls in (StudyValidationError, ParameterError, BuildError):
        assert issubclass(cls, ExresearchError)
    assert issubclass(ParameterError, ValueError)


def test_study_validation_error_carries_and_prints_table():
    import pandas as pd

    problems = pd.DataFrame(
        {"file": ["clients/a/survey.csv"], "row": [3], "column": ["eng_1"], "value": ["x"],
         "problem": ["not a number"]}
    )
    err = StudyValidationError(problems)
    assert err.problems is problems
    assert "the study has 1 problem:" in str(err)
    assert "clients/a/survey.csv" in str(err) and "not a number" in str(err)


def test_config_paths_point_into_the_checkout():
    assert config.ROOT == ROOT
    assert config.NOTEBOOKS_DIR == ROOT / "notebooks"
    assert config.DEMO_STUDY == ROOT / "data" / "demo"
    assert config.DEFAULT_MIN_GROUP_SIZE == 5 and config.MIN_ALLOWED_GROUP_SIZE == 3


def test_lazy_attribute_errors_name_the_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        exresearch.nonexistent  # noqa: B018


def test_make_help_lists_every_entry_point():
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    for target in ("reports", "test", "lab", "bench", "lint"):
        assert re.search(rf"make {target}\s", out), f"make help does not list {target}"


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make reports" in readme and "make test" in readme
    assert re.search(r"^make test$", ci, re.M)
