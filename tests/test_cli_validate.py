"""``exresearch validate STUDY``: exit 0 with a summary, or exit 2 with every problem."""

from __future__ import annotations

from pathlib import Path

from exresearch.cli import main

STUDIES = Path(__file__).resolve().parent / "studies"


def test_valid_study_prints_a_summary(capsys):
    study = STUDIES / "valid"
    assert main(["validate", str(study)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"{study}: valid (2 clients, 4 units, 22 respondents, 2 periods)"
    assert lines[1].split() == ["client_id", "name", "industry", "units", "respondents",
                                "periods"]
    assert lines[2].split() == ["acme", "Acme", "Retail", "retail", "2", "12", "2"]
    assert lines[3].split() == ["beta-bank", "Beta", "Bank", "banking", "2", "10", "1"]
    assert len(lines) == 4


def test_invalid_study_prints_every_problem_and_exits_2(capsys):
    study = STUDIES / "out_of_range"
    assert main(["validate", str(study)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"{study}: INVALID (4 errors, 0 warnings)"
    assert lines[1].split() == ["severity", "file", "row", "column", "value", "problem"]
    assert len(lines) == 6
    assert lines[2].split()[:5] == ["error", "clients/acme/survey.csv", "3", "eng_2", "7"]
    assert lines[2].endswith("value 7 outside the scale range 1-5 of scale 'engagement'")
    assert lines[3].endswith("value 5 outside the scale range 0-4 of scale 'hostility'")
    assert lines[4].endswith("value 11 outside the scale range 0-10 of scale 'enps'")
    assert lines[5].endswith("value 0 outside the scale range 1-5 of scale 'tools'")


def test_invalid_study_lists_warnings_with_the_errors(capsys):
    assert main(["validate", str(STUDIES / "missing_keys")]) == 2
    err = capsys.readouterr().err
    assert "INVALID (2 errors, 3 warnings)" in err.splitlines()[0]
    assert "required key 'name' is missing" in err
    assert "warning   clients/acme/outcomes.csv    1  nps" in err


def test_study_yml_problems_show_the_line(capsys):
    assert main(["validate", str(STUDIES / "unknown_keys")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[2].split()[:4] == ["error", "study.yml", "3", "min_groupsize"]
    assert "did you mean 'min_group_size'?" in lines[2]


def test_warnings_do_not_fail_validation(capsys):
    study = STUDIES / "unit_coverage"
    assert main(["validate", str(study)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 warnings:"
    assert out[2].endswith("unit 'u2' has survey data but no outcomes")
    assert out[3].endswith("unit 'u3' has outcomes but no survey data")
    assert out[4] == f"{study}: valid (1 client, 2 units, 6 respondents, 2 periods)"


def test_missing_folder_exits_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert f"study folder {str(tmp_path / 'nope')!r} does not exist" in err


def test_docs_show_the_real_output_for_a_broken_study(capsys, monkeypatch):
    root = STUDIES.parents[1]
    doc = (root / "docs" / "study.md").read_text()
    command = "$ exresearch validate tests/studies/several_problems\n"
    shown = doc.split(command, 1)[1].split("```", 1)[0]
    monkeypatch.chdir(root)
    assert main(["validate", "tests/studies/several_problems"]) == 2
    assert capsys.readouterr().err == shown


def test_docs_show_the_real_output_for_the_valid_study(capsys, monkeypatch):
    root = STUDIES.parents[1]
    doc = (root / "docs" / "study.md").read_text()
    shown = doc.split("$ exresearch validate tests/studies/valid\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(root)
    assert main(["validate", "tests/studies/valid"]) == 0
    assert capsys.readouterr().out == shown
