"""study.yml keys the synthesis uses: outcome ``reliability``, client ``headcount``,
top-level ``reference_sd`` (parsed, and every bad value reported with its place)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from exresearch.exceptions import StudyValidationError
from exresearch.study import load_study

VALID = Path(__file__).parent / "studies" / "valid"


def _study(tmp_path, edit):
    folder = tmp_path / "study"
    shutil.copytree(VALID, folder)
    cfg = yaml.safe_load((folder / "study.yml").read_text())
    edit(cfg)
    (folder / "study.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return folder


def test_keys_are_parsed(tmp_path):
    def edit(cfg):
        cfg["outcomes"]["nps"]["reliability"] = 0.75
        cfg["clients"][0]["headcount"] = 1200
        cfg["reference_sd"] = {"ex_index": 0.35, "nps": 12}

    config = load_study(_study(tmp_path, edit)).config
    assert config.outcomes["nps"].reliability == 0.75
    assert config.outcomes["turnover"].reliability is None
    assert config.client("acme").headcount == 1200.0
    assert config.client("beta-bank").headcount is None
    assert config.reference_sd == {"ex_index": 0.35, "nps": 12.0}


def test_defaults_without_the_keys():
    config = load_study(VALID).config
    assert config.reference_sd == {} and config.outcomes["nps"].reliability is None


def test_bad_values_are_reported_together(tmp_path):
    def edit(cfg):
        cfg["outcomes"]["nps"]["reliability"] = 1.5
        cfg["clients"][0]["headcount"] = -3
        cfg["reference_sd"] = {"ex_index": 0}

    with pytest.raises(StudyValidationError) as info:
        load_study(_study(tmp_path, edit))
    problems = info.value.problems
    text = " | ".join(problems["problem"])
    assert "reliability must be in (0, 1], got 1.5" in text
    assert "headcount must be a positive number, got -3" in text
    assert "ex_index must be a positive number, got 0" in text
    assert set(problems["column"]) >= {"outcomes.nps.reliability", "clients.0.headcount",
                                       "reference_sd.ex_index"}


def test_reference_sd_must_be_a_mapping(tmp_path):
    with pytest.raises(StudyValidationError, match="reference_sd must be a mapping"):
        load_study(_study(tmp_path, lambda cfg: cfg.update(reference_sd=[0.3])))
