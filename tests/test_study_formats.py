"""Issue 19: SPSS/Stata/Excel data files, and the validation holes a hostile sweep found.

Corpus folders of issue 19 (their exact rows are in ``tests/test_study.py::EXPECTED``)
are checked here through the CLI too: exit code, file, row, column and message words.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exresearch import study as study_module
from exresearch.aggregate import agreement, unit_panel
from exresearch.cli import main
from exresearch.exceptions import StudyValidationError
from exresearch.study import load_study, validate_study

STUDIES = Path(__file__).resolve().parent / "studies"
VALID = STUDIES / "valid"
SURVEY = "clients/acme/survey.csv"
OUTCOMES = "clients/acme/outcomes.csv"

# folder -> (exit code, [(stream, file, row, column, words), ...])
CLI = {
    "yaml_alias_bomb": (2, [("err", "study.yml", "19", "", "YAML anchor '&a0' at line 19")]),
    "study_yml_too_large": (2, [("err", "study.yml", "", "", "a study description is at most")]),
    "null_client_id": (2, [("err", "study.yml", "18", "clients.1.id",
                            "client 2 has an empty id")]),
    "non_finite_outcomes": (2, [("err", OUTCOMES, "2", "nps", "value inf is not a finite number"),
                                ("err", OUTCOMES, "3", "turnover", "-inf is not a finite")]),
    "implausible_outcomes": (2, [("err", OUTCOMES, "2", "nps", "outside the plausible range "
                                  "-100 to 100 of a cx outcome")]),
    "negative_count": (2, [("err", OUTCOMES, "3", "headcount", "plausible range 0 to 1e+12 of a "
                            "count")]),
    "ranges_override": (2, [("err", OUTCOMES, "2", "nps", "plausible range 0 to 40")]),
    "between_scale_points": (2, [("err", SURVEY, "3", "eng_1", "is between the points of scale "
                                  "'engagement'"),
                                 ("err", SURVEY, "6", "enps_0_10", "7.5 is between the points")]),
    "averaged_answers": (0, [("out", SURVEY, "3", "eng_1", "kept, as study.yml says answers may "
                              "be averaged")]),
    "case_differs": (2, [("err", SURVEY, "1", "Unit_ID", "did you mean 'unit_id'?"),
                         ("err", SURVEY, "1", "TOOLS_1", "did you mean 'tools_1'?")]),
    "trailing_comma": (0, [("out", OUTCOMES, "1", "", "column 6 has no name in the header")]),
    "both_csv_and_sav": (2, [("err", SURVEY, "", "", "both survey.csv and survey.sav exist")]),
    "unreadable_sav": (2, [("err", "clients/acme/survey.sav", "", "",
                            "cannot read the SPSS file")]),
    "spss_labels_mismatch": (0, [("out", "clients/acme/survey.sav", "", "eng_1",
                                  "value labels of eng_1 run from 1")]),
    "xlsx_sheet_missing": (2, [("err", "clients/acme/survey.xlsx", "", "",
                                "the workbook has no sheet 'Answers'")]),
}


def _line_with(text: str, file: str, row: str, column: str, words: str) -> str:
    for line in text.splitlines():
        cells = line.split()
        if words in line and file in cells and (not row or row in cells) \
                and (not column or column in cells):
            return line
    raise AssertionError(f"no line with {file} {row} {column} {words!r} in:\n{text}")


@pytest.mark.parametrize("folder", sorted(CLI))
def test_new_corpus_folders_through_the_cli(folder, capsys):
    code, expected = CLI[folder]
    assert main(["validate", str(STUDIES / folder)]) == code
    out, err = capsys.readouterr()
    for stream, file, row, column, words in expected:
        _line_with(err if stream == "err" else out, file, row, column, words)
    if code == 2:
        assert out == "" and "INVALID" in err.splitlines()[0]


def test_fast_path_and_pandera_find_the_same_problems(monkeypatch):
    """The numpy pass only skips pandera when pandera would find nothing."""
    folders = sorted(p for p in STUDIES.iterdir() if p.is_dir())
    fast = {f.name: validate_study(f, include_warnings=True) for f in folders}
    monkeypatch.setattr(study_module, "_clean", lambda frame, spec: False)
    for f in folders:
        slow = validate_study(f, include_warnings=True)
        pd.testing.assert_frame_equal(fast[f.name], slow, obj=f.name)


@pytest.mark.parametrize("change", [
    ("u1,2025Q1,r2,3,4,", "u1,2025Q1,r2,3,4.25,"),  # between points
    ("r2,3,4,4,4,2,0,1,8", "r2,3,4,4,4,2,0,1,inf"),  # not finite
    ("u1,2025Q1,r1,", "u1,2025Q1,r2,"),  # duplicate respondent
    ("u1,2025Q1,r1,", "u1,2025Q9,r1,"),  # unknown period
    ("u1,2025Q1,r1,", ",2025Q1,r1,"),  # empty key
])
def test_clean_pass_sends_every_kind_of_problem_to_pandera(change):
    spec = study_module._survey_spec(load_study(VALID).config)
    text = (VALID / SURVEY).read_text().replace(*change)
    assert text != (VALID / SURVEY).read_text()
    frame = pd.read_csv(pd.io.common.StringIO(text), dtype={k: "str" for k in spec.keys})
    assert study_module._clean(frame, spec) is False
    frame = pd.read_csv(VALID / SURVEY, dtype={k: "str" for k in spec.keys})
    assert study_module._clean(frame, spec) is True


# --------------------------------------------------------------------------- study.yml


def _copy_valid(tmp_path) -> Path:
    root = tmp_path / "study"
    shutil.copytree(VALID, root)
    return root


def test_periods_are_read_as_written(tmp_path):
    root = _copy_valid(tmp_path)
    yml = (root / "study.yml").read_text().replace("[2025Q1, 2025Q2]", "[2025.1, 2025.10]")
    (root / "study.yml").write_text(yml)
    for rel in (SURVEY, OUTCOMES):
        path = root / rel
        path.write_text(path.read_text().replace("2025Q1", "2025.1").replace("2025Q2", "2025.10"))
    for client in ("beta-bank",):
        for kind in ("survey", "outcomes"):
            path = root / "clients" / client / f"{kind}.parquet"
            frame = pd.read_parquet(path)
            frame["period"] = frame["period"].str.replace("2025Q1", "2025.1")
            frame.to_parquet(path, index=False)
    study = load_study(root)
    assert study.config.periods == ["2025.1", "2025.10"]
    assert study.survey("acme")["period"].unique().tolist() == ["2025.1", "2025.10"]


def test_client_id_is_read_as_written(tmp_path):
    root = _copy_valid(tmp_path)
    yml = (root / "study.yml").read_text().replace("id: acme,", "id: 007,")
    (root / "study.yml").write_text(yml)
    (root / "clients/acme").rename(root / "clients/007")
    assert load_study(root).clients == ["007", "beta-bank"]


def test_aliases_anywhere_are_refused_before_expansion(tmp_path):
    root = _copy_valid(tmp_path)
    text = (root / "study.yml").read_text()
    (root / "study.yml").write_text(text.replace("points: [1, 5]\n", "points: &p [1, 5]\n")
                                    .replace("points: [0, 4]", "points: *p"))
    rows = validate_study(root)
    assert rows[["file", "row"]].values.tolist() == [["study.yml", 5]]
    assert rows["problem"][0].startswith("YAML anchor '&p' at line 5: anchors and aliases")


def test_deeply_nested_yaml_is_a_problem_not_a_crash(tmp_path):
    root = _copy_valid(tmp_path)
    (root / "study.yml").write_text("junk: " + "[" * 50_000 + "]" * 50_000 + "\n")
    rows = validate_study(root)
    assert len(rows) == 1 and rows["file"][0] == "study.yml"
    assert "nest" in rows["problem"][0]  # libyaml's depth limit, or ours


def test_ampersand_in_a_value_is_not_an_anchor(tmp_path):
    root = _copy_valid(tmp_path)
    text = (root / "study.yml").read_text().replace("name: Beta Bank", "name: 'R&D * Bank'")
    (root / "study.yml").write_text(text)
    assert load_study(root).config.client("beta-bank").name == "R&D * Bank"


def test_unknown_key_in_another_case_suggests_the_key(tmp_path):
    root = _copy_valid(tmp_path)
    text = (root / "study.yml").read_text().replace("min_group_size:", "Min_Group_Size:")
    (root / "study.yml").write_text(text)
    rows = validate_study(root)
    assert rows["problem"][0].startswith("unknown key 'Min_Group_Size' in study.yml; did you "
                                         "mean 'min_group_size'?")


def test_ranges_and_averaged_answers_reach_the_config(tmp_path):
    root = _copy_valid(tmp_path)
    text = (root / "study.yml").read_text()
    (root / "study.yml").write_text(text + "ranges: {nps: [-50, null]}\naveraged_answers: true\n")
    config = load_study(root).config
    assert config.ranges == {"nps": (-50.0, np.inf), "turnover": (-1e12, 1e12),
                             "headcount": (0.0, 1e12)}
    assert config.averaged_answers is True
    (root / "study.yml").write_text(text + "ranges: {nps: [10, 5]}\n")
    (row,) = validate_study(root).itertuples()
    assert (row.row, row.column) == (19, "ranges.nps")  # the line after the 18 of valid
    assert row.problem.startswith("ranges.nps must be [low, high] with two finite numbers")


# --------------------------------------------------------------------------- files


def test_dangling_link_and_fifo_are_named(tmp_path, capsys):
    root = _copy_valid(tmp_path)
    (root / SURVEY).unlink()
    (root / SURVEY).symlink_to("survey-2025.csv")
    (root / OUTCOMES).unlink()
    os.mkfifo(root / OUTCOMES)  # never opened: opening a FIFO would block
    rows = validate_study(root)
    assert rows[["file", "problem"]].values.tolist() == [
        [SURVEY, "survey.csv is a symbolic link to a file that does not exist "
                 "(survey-2025.csv)"],
        [OUTCOMES, "outcomes.csv is not a regular file (a FIFO, socket or device); the "
                   "outcomes data must be a regular file"]]
    assert main(["validate", str(root)]) == 2
    err = capsys.readouterr().err
    _line_with(err, SURVEY, "", "", "survey.csv is a symbolic link to a file that does not")
    _line_with(err, OUTCOMES, "", "", "outcomes.csv is not a regular file")


# --------------------------------------------------------------------------- formats


def _write(frame: pd.DataFrame, path: Path, **kw) -> None:
    import pyreadstat

    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".sav":
        pyreadstat.write_sav(frame, path, **kw)
    elif path.suffix == ".dta":
        pyreadstat.write_dta(frame, path, **kw)
    elif path.suffix == ".xlsx":
        frame.to_excel(path, index=False, engine="openpyxl")
    else:
        frame.to_csv(path, index=False)


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    from exresearch.simulate import simulate_study

    return simulate_study(tmp_path_factory.mktemp("sim") / "study", n_clients=2, n_units=6,
                          n_periods=2, seed=19)


@pytest.mark.parametrize("ext", ["parquet", "sav", "dta", "xlsx"])
def test_every_format_gives_the_results_of_the_csv(small_study, tmp_path, ext):
    """The same study in each format: same frames, same agreement and unit panel."""
    base = load_study(small_study)
    root = tmp_path / ext
    shutil.copytree(small_study, root)
    for cid in base.clients:
        for kind in ("survey", "outcomes"):
            (root / "clients" / cid / f"{kind}.csv").unlink()
            frame = getattr(base, kind)(cid)
            _write(frame, root / "clients" / cid / f"{kind}.{ext}")
    other = load_study(root)
    assert other.warnings.empty
    for cid in base.clients:
        pd.testing.assert_frame_equal(other.survey(cid), base.survey(cid))
        pd.testing.assert_frame_equal(other.outcomes(cid), base.outcomes(cid))
        config = base.config
        points = {name: s.points for name, s in config.scales.items()}
        a = agreement(base.survey(cid), unit="unit_id", scales=config.scales, points=points)
        b = agreement(other.survey(cid), unit="unit_id", scales=config.scales, points=points)
        pd.testing.assert_frame_equal(a, b, rtol=1e-12, atol=1e-12)
        pd.testing.assert_frame_equal(unit_panel(other, cid), unit_panel(base, cid),
                                      rtol=1e-12, atol=1e-12)
    rel = f"clients/{base.clients[0]}/survey.{ext}"
    assert rel in other.hashes


def test_spss_user_missing_codes_are_missing_and_labels_are_offered(tmp_path):
    import pyreadstat

    root = _copy_valid(tmp_path)
    survey = pd.read_csv(root / SURVEY, dtype={"unit_id": str, "respondent_id": str})
    survey.loc[0, "eng_1"] = 99  # "no answer", declared user-missing
    (root / SURVEY).unlink()
    pyreadstat.write_sav(survey, root / "clients/acme/survey.sav",
                         column_labels={"eng_1": "I am proud to work here"},
                         variable_value_labels={"eng_1": {1: "Strongly disagree",
                                                          5: "Strongly agree", 99: "No answer"}},
                         missing_ranges={"eng_1": [99]})
    study = load_study(root)
    assert np.isnan(study.survey("acme").loc[0, "eng_1"])
    assert study.survey("acme")["eng_1"].iloc[1:].tolist() == survey["eng_1"].iloc[1:].tolist()
    assert study.item_labels == {"eng_1": "I am proud to work here"}
    assert study.warnings.empty


def test_stata_numeric_keys_and_a_word_in_an_item(tmp_path):
    import pyreadstat

    root = _copy_valid(tmp_path)
    survey = pd.read_csv(root / SURVEY, dtype={"unit_id": str, "respondent_id": str})
    survey["unit_id"] = survey["unit_id"].str[1:].astype(float)  # 1.0, 2.0: codes
    (root / SURVEY).unlink()
    pyreadstat.write_dta(survey, root / "clients/acme/survey.dta")
    text = (root / OUTCOMES).read_text().replace("u1,", "1,").replace("u2,", "2,")
    (root / OUTCOMES).write_text(text)
    study = load_study(root)
    assert study.survey("acme")["unit_id"].unique().tolist() == ["1", "2"]


def test_xlsx_named_sheet_na_text_and_words(tmp_path):
    root = _copy_valid(tmp_path)
    survey = pd.read_csv(root / SURVEY, dtype=str, keep_default_na=False)
    survey.loc[0, "eng_1"] = "N/A"
    survey.loc[1, "eng_2"] = "agree"
    (root / SURVEY).unlink()
    with pd.ExcelWriter(root / "clients/acme/survey.xlsx", engine="openpyxl") as writer:
        pd.DataFrame({"note": ["cover sheet"]}).to_excel(writer, sheet_name="About",
                                                         index=False)
        survey.to_excel(writer, sheet_name="Responses", index=False)
    text = (root / "study.yml").read_text()
    (root / "study.yml").write_text(text + "sheets: {survey: Responses}\n")
    rows = validate_study(root)
    assert rows[["file", "row", "column", "problem"]].astype(str).values.tolist() == [
        ["clients/acme/survey.xlsx", "3", "eng_2", "value 'agree' is not a number"]]
    survey.loc[1, "eng_2"] = "4"
    with pd.ExcelWriter(root / "clients/acme/survey.xlsx", engine="openpyxl") as writer:
        survey.to_excel(writer, sheet_name="Responses", index=False)
    study = load_study(root)
    assert np.isnan(study.survey("acme").loc[0, "eng_1"])
    assert study.survey("acme").loc[1, "eng_2"] == 4.0


def test_load_study_error_lists_new_problems():
    with pytest.raises(StudyValidationError) as info:
        load_study(STUDIES / "non_finite_outcomes")
    assert info.value.problems["problem"].tolist() == [
        "value inf is not a finite number", "value -inf is not a finite number"]


# --------------------------------------------------------------------------- many problems


def _many_problems(tmp_path, n: int) -> Path:
    root = _copy_valid(tmp_path)
    lines = (root / SURVEY).read_text().splitlines(keepends=True)
    body = "".join(f"u1,2025Q1,x{i},9,5,4,3,2,1,0,9\n" for i in range(n))  # eng_1 = 9
    (root / SURVEY).write_text(lines[0] + body)
    return root


def test_validate_caps_printed_problems_and_counts_them_by_kind(tmp_path, capsys):
    root = _many_problems(tmp_path, 300)
    assert main(["validate", str(root), "--max-problems", "5"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{root}: INVALID (300 errors, 1 warning)"
    assert len([line for line in err if line.startswith("error ")]) == 5
    assert err[7] == ("... 296 more not shown (--max-problems 5; --problems-csv FILE writes "
                      "them all). All problems by kind:")
    assert err[8].split() == ["severity", "file", "column", "kind", "count", "first", "row"]
    assert err[9].split()[:3] == ["error", SURVEY, "eng_1"]
    assert err[9].endswith("300          2")
    assert "value # outside the scale range #-# of scale '...'" in err[9]
    assert err[10].split()[:3] == ["warning", OUTCOMES, "unit_id"]
    assert len(err) == 11


def test_problems_csv_holds_every_problem(tmp_path, capsys):
    root = _many_problems(tmp_path, 300)
    target = tmp_path / "problems.csv"
    assert main(["validate", str(root), "--problems-csv", str(target)]) == 2
    assert "301 problems written to" in capsys.readouterr().err
    table = pd.read_csv(target)
    assert list(table.columns) == ["file", "row", "column", "value", "problem", "severity"]
    assert len(table) == 301 and table["row"].iloc[:300].tolist() == list(range(2, 302))
    # never overwritten, never written into the study
    assert main(["validate", str(root), "--problems-csv", str(target)]) == 2
    assert "must name a new file" in capsys.readouterr().err
    assert main(["validate", str(root), "--problems-csv", str(root / "p.csv")]) == 2
    assert "must be outside the study folder" in capsys.readouterr().err
    assert not (root / "p.csv").exists()


def test_huge_header_field_is_a_problem_not_a_crash(tmp_path):
    root = _copy_valid(tmp_path)
    path = root / SURVEY
    path.write_text(path.read_text().replace("unit_id,", "unit_id" + "x" * 200_000 + ",", 1))
    rows = validate_study(root)
    assert rows[["file", "row"]].astype(str).values.tolist() == [[SURVEY, "1"]]
    assert rows["problem"][0] == ("cannot parse the CSV header: field larger than field limit "
                                  "(131072)")


def test_overflowing_number_is_not_finite(tmp_path):
    root = _copy_valid(tmp_path)
    path = root / OUTCOMES
    path.write_text(path.read_text().replace("42.5", "1e999"))
    rows = validate_study(root)
    assert rows[["row", "column", "problem"]].astype(str).values.tolist() == [
        ["2", "nps", "value inf is not a finite number"]]
