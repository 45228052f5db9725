"""``exresearch import``: a survey-platform export and a mapping file become a study folder."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from exresearch.cli import main
from exresearch.exceptions import StudyValidationError
from exresearch.importer import import_export
from exresearch.study import load_study

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
EXPORT, MAPPING, OUTCOMES = (EXAMPLES / "platform_export.csv", EXAMPLES / "mapping.yml",
                             EXAMPLES / "outcomes.csv")
UNMAPPED = ["StartDate", "EndDate", "Status", "IPAddress", "Progress", "Duration (in seconds)",
            "RecordedDate", "Q4_TEXT"]


def _digest(*paths) -> list[str]:
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


def test_example_export_imports_end_to_end(tmp_path, capsys):
    before = _digest(EXPORT, MAPPING, OUTCOMES)
    out = tmp_path / "acme-study"
    assert main(["import", str(EXPORT), "--mapping", str(MAPPING), "--out", str(out),
                 "--outcomes", str(OUTCOMES)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"imported 40 responses from {EXPORT} into {out} (2 rows left out by "
                        "export.keep)")
    assert lines[1:4] == [f"  wrote {out / 'study.yml'}",
                          f"  wrote {out / 'clients/acme/survey.csv'}",
                          f"  wrote {out / 'clients/acme/outcomes.csv'}"]
    assert lines[4] == "8 source columns not imported: " + ", ".join(UNMAPPED)
    assert _digest(EXPORT, MAPPING, OUTCOMES) == before  # the sources are only read
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acme-study"]  # no staging left
    study = load_study(out)
    assert study.clients == ["acme"] and study.warnings.empty
    assert study.config.periods == ["2025-H1", "2025-H2"]
    assert study.config.scales["tools"].reverse == ("tools_2",)
    assert study.config.scales["enps"].kind == "nps"
    survey = study.survey("acme")
    assert list(survey.columns) == ["unit_id", "period", "respondent_id", "eng_1", "eng_2",
                                    "eng_3", "tools_1", "tools_2", "enps_0_10"]
    # every kept response, answer text turned into scale points
    raw = pd.read_csv(EXPORT, skiprows=[1, 2], dtype=str, keep_default_na=False)
    raw = raw[raw["Finished"] == "True"].reset_index(drop=True)
    points = {"Strongly disagree": 1, "Disagree": 2, "Neither agree nor disagree": 3,
              "Agree": 4, "Strongly agree": 5}
    assert survey["respondent_id"].tolist() == raw["ResponseId"].tolist()
    assert survey["unit_id"].tolist() == raw["Store"].tolist()
    assert survey["eng_1"].tolist() == raw["Q1_1"].map(points).astype(float).tolist()
    assert survey["tools_2"].tolist() == raw["Q2_2"].map(points).astype(float).tolist()
    assert survey["enps_0_10"].tolist() == raw["Q3"].astype(float).tolist()
    assert study.outcomes("acme")["nps"].tolist() == pd.read_csv(OUTCOMES)["nps"].tolist()
    assert "# source columns not imported: StartDate" in (out / "study.yml").read_text()


def _mapping(tmp_path, old, new) -> Path:
    text = MAPPING.read_text()
    assert old in text
    path = tmp_path / "mapping.yml"
    path.write_text(text.replace(old, new))
    return path


def test_mapping_problems_are_all_reported_and_nothing_is_written(tmp_path, capsys):
    mapping = _mapping(tmp_path, "unit: Store\n", "unit: store\nstudie: {}\n")
    mapping.write_text(mapping.read_text().replace("Q2_1: tools_1", "Q2_9: tools_1"))
    out = tmp_path / "out"
    assert main(["import", str(EXPORT), "--mapping", str(mapping), "--out", str(out),
                 "--outcomes", str(OUTCOMES)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"{EXPORT}: 3 problems; nothing was written"
    assert "unknown key 'studie' in the mapping file; did you mean 'study'?" in err
    assert "unit: column 'store' is not in the export; did you mean 'Store'?" in err
    assert "scales.tools.items: column 'Q2_9' is not in the export; did you mean 'Q2_2'?" in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mapping.yml"]


def test_invalid_client_id_is_refused_before_any_path_is_built(tmp_path):
    mapping = _mapping(tmp_path, "client: {id: acme,", "client: {id: ../../acme,")
    with pytest.raises(StudyValidationError) as info:
        import_export(EXPORT, mapping=mapping, out=tmp_path / "out", outcomes=OUTCOMES)
    assert info.value.problems["problem"].tolist() == [
        "client id '../../acme' is invalid: ids must match [a-z0-9][a-z0-9_-]{0,63}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mapping.yml"]


def test_data_problems_point_at_the_export_lines_and_columns(tmp_path):
    export = tmp_path / "export.csv"
    lines = EXPORT.read_text().splitlines(keepends=True)
    assert ",Agree,Agree,Neither agree nor disagree,Agree,Agree,7," in lines[3]
    lines[3] = lines[3].replace(",Agree,Agree,Neither", ",Agree,Agre,Neither", 1)  # line 4
    export.write_text("".join(lines))
    with pytest.raises(StudyValidationError) as info:
        import_export(export, mapping=MAPPING, out=tmp_path / "out", outcomes=OUTCOMES)
    problems = info.value.problems
    assert problems[["file", "row", "column", "value", "problem"]].astype(str).values.tolist() \
        == [[str(export), "4", "Q1_2", "Agre", "value 'Agre' is not a number"]]
    assert "nothing was written" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv"]


def test_out_must_be_new_or_empty(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(Exception, match="must be a new or empty folder"):
        import_export(EXPORT, mapping=MAPPING, out=out, outcomes=OUTCOMES)
    assert (out / "keep.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    import_export(EXPORT, mapping=MAPPING, out=empty, outcomes=OUTCOMES)
    assert load_study(empty).summary()["respondents"].tolist() == [40]


def test_xlsx_export_with_one_wave(tmp_path):
    raw = pd.read_csv(EXPORT, header=None, dtype=str, keep_default_na=False)
    raw = raw[(raw[10] != "2025-H2")]  # the first wave only
    export = tmp_path / "export.xlsx"
    raw.to_excel(export, header=False, index=False, engine="openpyxl")
    mapping = _mapping(tmp_path, "period: Wave ", "period: {value: 2025-H1} ")
    outcomes = tmp_path / "outcomes.csv"
    shutil.copy(OUTCOMES, outcomes)
    outcomes.write_text("".join(line for line in OUTCOMES.read_text().splitlines(True)
                                if "2025-H2" not in line))
    result = import_export(export, mapping=mapping, out=tmp_path / "out", outcomes=outcomes)
    assert (result.responses, result.dropped) == (20, 1)
    assert "Wave" in result.unmapped
    study = load_study(tmp_path / "out")
    assert study.survey("acme")["period"].unique().tolist() == ["2025-H1"]


def test_docstring_examples_run():
    import doctest

    from exresearch import importer, readers

    for module in (importer, readers):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted >= 1 and result.failed == 0, module.__name__


def test_docs_show_the_example_mapping_and_the_real_output(tmp_path, capsys, monkeypatch):
    doc = (EXAMPLES.parent / "study.md").read_text()
    section = doc.split("## Importing a survey-platform export", 1)[1]
    shown_yaml = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert shown_yaml == "".join(MAPPING.read_text().splitlines(True)[3:])  # minus the header
    shown_out = "imported" + section.split("```\nimported", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(EXAMPLES.parents[1])
    out = tmp_path / "acme-study"
    assert main(["import", "docs/examples/platform_export.csv", "--mapping",
                 "docs/examples/mapping.yml", "--outcomes", "docs/examples/outcomes.csv",
                 "--out", str(out)]) == 0
    assert capsys.readouterr().out == shown_out.replace("acme-study", str(out))


def test_spss_export_with_numeric_codes(tmp_path):
    import pyreadstat

    raw = pd.read_csv(EXPORT, skiprows=[1, 2], dtype=str, keep_default_na=False)
    points = {"Strongly disagree": 1, "Disagree": 2, "Neither agree nor disagree": 3,
              "Agree": 4, "Strongly agree": 5}
    for col in ("Q1_1", "Q1_2", "Q1_3", "Q2_1", "Q2_2"):
        raw[col] = raw[col].map(points).astype(float)
    raw["Q3"] = pd.to_numeric(raw["Q3"])
    raw["Q3"] = raw["Q3"].fillna(99.0)  # "no answer", declared user-missing below
    raw.columns = [c.replace(" ", "_").replace("(", "").replace(")", "") for c in raw.columns]
    export = tmp_path / "export.sav"
    pyreadstat.write_sav(raw, export, missing_ranges={"Q3": [99]})
    mapping = _mapping(tmp_path, "  skip_rows: [2, 3]", "  skip_rows: []")
    result = import_export(export, mapping=mapping, out=tmp_path / "out", outcomes=OUTCOMES)
    assert (result.responses, result.dropped) == (40, 2)
    ref = tmp_path / "ref"
    import_export(EXPORT, mapping=MAPPING, out=ref, outcomes=OUTCOMES)
    pd.testing.assert_frame_equal(load_study(tmp_path / "out").survey("acme"),
                                  load_study(ref).survey("acme"))
