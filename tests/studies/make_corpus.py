"""Regenerate the study corpus used by ``tests/test_study.py``.

Run ``.venv/bin/python tests/studies/make_corpus.py`` from the repository root. It
rewrites ``tests/studies/valid`` (two clients, one CSV and one parquet) and one small
folder per problem of the input contract: each is the one-client base study below
with a single defect. The folders are committed; the tests only read them. The
``.sav`` and ``.xlsx`` files are written with pyreadstat and openpyxl (they carry a
creation time, so regenerating changes their bytes but not their content).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent

STUDY_YML = """\
name: Corpus study
seed: 7
min_group_size: 3
periods: [2025Q1, 2025Q2]
points: [1, 5]
scales:
  engagement: {items: [eng_1, eng_2, eng_3], role: engagement, label: Engagement}
  tools: {items: [tools_1, tools_2], reverse: [tools_2], label: Tools and technology}
  hostility: {items: [h_1, h_2], points: [0, 4]}
  enps: {items: [enps_0_10], points: [0, 10], kind: nps}
outcomes:
  nps: {label: Customer NPS, kind: cx}
  turnover: {label: Employee turnover (%), kind: business, higher_is_better: false}
covariates: [headcount]
publish_client_names: false
clients:
  - {id: acme, name: Acme Retail, industry: retail, revenue: 120000000}
"""

HEADER = "unit_id,period,respondent_id,eng_1,eng_2,eng_3,tools_1,tools_2,h_1,h_2,enps_0_10\n"
# rows 2..7 of the file (the header is row 1)
SURVEY = HEADER + """\
u1,2025Q1,r1,4,5,4,3,2,1,0,9
u1,2025Q1,r2,3,4,4,4,2,0,1,8
u1,2025Q1,r3,5,5,,3,1,2,1,10
u2,2025Q1,r4,2,3,2,2,4,3,2,5
u2,2025Q1,r5,3,3,3,3,3,1,1,7
u2,2025Q1,r6,4,4,5,4,2,0,0,9
"""
OUTCOMES = """\
unit_id,period,nps,turnover,headcount
u1,2025Q1,42.5,8.1,12
u2,2025Q1,30.0,11.4,9
"""

ACME = "clients/acme/"


def base() -> dict[str, str | bytes]:
    return {"study.yml": STUDY_YML, ACME + "survey.csv": SURVEY,
            ACME + "outcomes.csv": OUTCOMES}


def line(text: str, n: int, new: str) -> str:
    """Replace line ``n`` (1-based, header = 1) of ``text``."""
    lines = text.splitlines(keepends=True)
    lines[n - 1] = new + "\n"
    return "".join(lines)


def yml(old: str, new: str) -> str:
    assert old in STUDY_YML, old
    return STUDY_YML.replace(old, new)


def valid() -> dict[str, str | bytes]:
    yml_text = STUDY_YML.replace(
        "name: Corpus study", "name: Valid mini study").replace(
        "clients:\n  - {id: acme, name: Acme Retail, industry: retail, revenue: 120000000}\n",
        "clients:\n  - {id: acme, name: Acme Retail, industry: retail, revenue: 120000000}\n"
        "  - {id: beta-bank, name: Beta Bank, industry: banking}\n")
    q2 = SURVEY.replace("2025Q1", "2025Q2").replace(",r", ",q").split("\n", 1)[1]
    q2 = line(q2, 2, "u1,2025Q2,q2,4,,4,4,2,0,1,6")  # one missing answer
    files = {"study.yml": yml_text, ACME + "survey.csv": SURVEY + q2,
             ACME + "outcomes.csv": OUTCOMES + "u1,2025Q2,45.0,7.9,12\nu2,2025Q2,28.5,12.0,10\n"}
    n = 10
    survey = pd.DataFrame({
        "unit_id": ["b1"] * 5 + ["b2"] * 5, "period": "2025Q1",
        "respondent_id": [f"s{i}" for i in range(1, n + 1)],
        "eng_1": [4, 5, 3, 4, 2, 3, 4, 5, 4, 3], "eng_2": [4, 4, 3, 5, 2, 3, 3, 5, 4, 3],
        "eng_3": [5, 4, 3, 4, 1, 3, 4, 5, 4, None], "tools_1": [3, 4, 2, 3, 3, 2, 4, 4, 3, 2],
        "tools_2": [2, 2, 3, 2, 4, 3, 2, 1, 2, 3], "h_1": [0, 1, 2, 0, 3, 1, 0, 0, 1, 2],
        "h_2": [1, 0, 2, 1, 4, 1, 0, 0, 0, 2], "enps_0_10": [9, 10, 6, 8, 3, 7, 9, 10, 8, 5],
    })
    outcomes = pd.DataFrame({"unit_id": ["b1", "b2"], "period": "2025Q1",
                             "nps": [12.0, 20.0], "turnover": [15.0, 9.5],
                             "headcount": [30.0, 41.0]})
    files["clients/beta-bank/survey.parquet"] = survey.to_parquet(index=False)
    files["clients/beta-bank/outcomes.parquet"] = outcomes.to_parquet(index=False)
    return files


def corpus() -> dict[str, dict[str, str | bytes]]:
    studies = {"valid": valid()}

    def study(name, **changes):
        files = base()
        for rel, content in changes.items():
            rel = rel.replace("__", "/").replace("_DOT_", ".")
            if content is None:
                files.pop(rel)
            else:
                files[rel] = content
        studies[name] = files

    study("bom_csv", clients__acme__survey_DOT_csv="\ufeff" + SURVEY)
    study("missing_study_yml", study_DOT_yml=None)
    study("yaml_syntax_error", study_DOT_yml=yml("points: [1, 5]\n", "points: [1, 5\n"))
    study("unknown_keys", study_DOT_yml=yml("min_group_size: 3", "min_groupsize: 3").replace(
        "reverse: [tools_2]", "revrse: [tools_2]").replace("industry: retail", "industy: retail"))
    study("invalid_client_id", study_DOT_yml=STUDY_YML + "  - {id: ../outside, name: Outside}\n"
          "  - {id: Acme Retail, name: Shouting}\n",
          # a file the invalid id points at: it must never be opened
          outside__survey_DOT_csv=b"\xff\xfe not a csv \x00")
    study("client_without_data", study_DOT_yml=STUDY_YML + "  - {id: beta, name: Beta}\n")
    study("unlisted_client_folder", clients__gamma__survey_DOT_csv=SURVEY,
          clients__gamma__outcomes_DOT_csv=OUTCOMES)
    study("missing_data_file", clients__acme__survey_DOT_csv=None,
          clients__acme__surveys_DOT_csv=SURVEY)
    study("empty_file", clients__acme__survey_DOT_csv="",
          clients__acme__outcomes_DOT_csv=OUTCOMES.splitlines(keepends=True)[0])
    study("missing_columns",
          clients__acme__survey_DOT_csv="".join(  # drop the respondent_id column
              ",".join(f for i, f in enumerate(row.split(",")) if i != 2)
              for row in SURVEY.splitlines(keepends=True)),
          clients__acme__outcomes_DOT_csv="unit_id,period,nps,turnover\n"
          "u1,2025Q1,42.5,8.1\nu2,2025Q1,30.0,11.4\n")
    study("unexpected_columns", clients__acme__survey_DOT_csv="".join(
        row.rstrip("\n") + extra + "\n" for row, extra in zip(
            SURVEY.splitlines(keepends=True),
            [",tenure,role"] + [",3y,manager"] * 6, strict=True)))
    study("non_numeric",
          clients__acme__survey_DOT_csv=line(SURVEY, 3, "u1,2025Q1,r2,four,4,4,4,2,0,1,8"),
          clients__acme__outcomes_DOT_csv=line(OUTCOMES, 2, "u1,2025Q1,42.5,n.a.,12"))
    survey = line(SURVEY, 3, "u1,2025Q1,r2,3,7,4,4,2,0,1,8")
    survey = line(survey, 5, "u2,2025Q1,r4,2,3,2,2,4,5,2,5")
    survey = line(survey, 6, "u2,2025Q1,r5,3,3,3,3,3,1,1,11")
    survey = line(survey, 7, "u2,2025Q1,r6,4,4,5,0,2,0,0,9")
    study("out_of_range", clients__acme__survey_DOT_csv=survey)
    study("duplicate_respondents",
          clients__acme__survey_DOT_csv=line(SURVEY, 4, "u1,2025Q1,r2,5,5,,3,1,2,1,10"))
    study("duplicate_outcome_rows",
          clients__acme__outcomes_DOT_csv=OUTCOMES + "u1,2025Q1,40.0,8.0,12\n")
    study("unknown_periods",
          clients__acme__survey_DOT_csv=line(SURVEY, 5, "u2,2025Q4,r4,2,3,2,2,4,3,2,5"),
          clients__acme__outcomes_DOT_csv=line(OUTCOMES, 3, "u2,2025-Q1,30.0,11.4,9"))
    study("scale_items_absent", study_DOT_yml=yml("items: [tools_1, tools_2]",
                                                  "items: [tools_1, tools_2, tools_3]"))
    study("reverse_not_in_scale", study_DOT_yml=yml("reverse: [tools_2]",
                                                    "reverse: [tools_2, tools_9]"))
    study("item_in_two_scales", study_DOT_yml=yml("items: [h_1, h_2]",
                                                  "items: [h_1, h_2, eng_3]"))
    study("unit_coverage", clients__acme__outcomes_DOT_csv=line(OUTCOMES, 3,
                                                               "u3,2025Q1,30.0,11.4,9"))
    study("min_group_size_too_small", study_DOT_yml=yml("min_group_size: 3",
                                                        "min_group_size: 2"))
    study("missing_keys", study_DOT_yml=yml("name: Corpus study\n", "").split("outcomes:")[0]
          + "clients:\n  - {id: acme, name: Acme Retail, industry: retail, revenue: 120000000}\n")
    study("missing_ids", clients__acme__survey_DOT_csv=line(SURVEY, 6, ",2025Q1,,3,3,3,3,3,1,1,7"))
    study("both_formats", clients__acme__outcomes_DOT_parquet=pd.read_csv(
        __import__("io").StringIO(OUTCOMES)).to_parquet(index=False))
    study("ragged_csv", clients__acme__survey_DOT_csv=line(SURVEY, 4,
                                                          "u1,2025Q1,r3,5,5,,3,1,2,1,10,99"))
    # the broken study shown in docs/study.md: several problems at once
    survey = "".join(row.rstrip("\n") + extra + "\n" for row, extra in zip(
        SURVEY.splitlines(keepends=True), [",tenure"] + [",2"] * 6, strict=True))
    survey = line(survey, 3, "u1,2025Q1,r2,3,4,4,4,2,0,1,80,2")
    survey = line(survey, 4, "u1,2025Q1,r2,5,5,,3,1,2,1,10,2")
    survey = line(survey, 6, "u2,2025-Q1,r5,3,3,3,3,3,1,1,7,2")
    survey = line(survey, 7, "u2,2025Q1,r6,4,agree,5,4,2,0,0,9,2")
    study("several_problems", study_DOT_yml=yml("reverse: [tools_2]", "reverse: [tools_3]")
          .replace("seed: 7", "sed: 7"), clients__acme__survey_DOT_csv=survey,
          clients__acme__outcomes_DOT_csv=OUTCOMES + "u3,2025Q1,12.0,9.0,7\n")
    # ---- issue 19: file formats and validation holes
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    study("yaml_alias_bomb", study_DOT_yml=STUDY_YML + "junk:\n" + "".join(
        f"  {b}\n" for b in bomb))
    study("study_yml_too_large", study_DOT_yml=STUDY_YML + "# " + "x" * 140_000 + "\n")
    study("null_client_id", study_DOT_yml=STUDY_YML + "  - {id: null, name: Nobody}\n")
    outcomes = line(OUTCOMES, 2, "u1,2025Q1,inf,8.1,12")
    study("non_finite_outcomes", clients__acme__outcomes_DOT_csv=line(
        outcomes, 3, "u2,2025Q1,30.0,-inf,9"))
    outcomes = line(OUTCOMES, 2, "u1,2025Q1,1e308,8.1,12")
    study("implausible_outcomes", clients__acme__outcomes_DOT_csv=line(
        outcomes, 3, "u2,2025Q1,30.0,5e13,9"))
    study("negative_count", clients__acme__outcomes_DOT_csv=line(
        OUTCOMES, 3, "u2,2025Q1,30.0,11.4,-3"))
    study("ranges_override",
          study_DOT_yml=STUDY_YML + "ranges: {nps: [0, 40], headcont: [0, 100]}\n")
    between = line(SURVEY, 3, "u1,2025Q1,r2,3.5,4,4,4,2,0,1,8")
    between = line(between, 6, "u2,2025Q1,r5,3,3,3,3,3,1,1,7.5")
    study("between_scale_points", clients__acme__survey_DOT_csv=between)
    study("averaged_answers", clients__acme__survey_DOT_csv=between,
          study_DOT_yml=STUDY_YML + "averaged_answers: true\n")
    study("case_differs", clients__acme__survey_DOT_csv=SURVEY.replace(
        "unit_id,", "Unit_ID,", 1).replace(",tools_1,", ",TOOLS_1,", 1))
    study("trailing_comma", clients__acme__outcomes_DOT_csv="".join(
        row.rstrip("\n") + ",\n" for row in OUTCOMES.splitlines(keepends=True)))
    study("both_csv_and_sav", clients__acme__survey_DOT_sav=_sav(pd.read_csv(
        __import__("io").StringIO(SURVEY), dtype={"unit_id": str, "respondent_id": str})))
    study("unreadable_sav", clients__acme__survey_DOT_csv=None,
          clients__acme__survey_DOT_sav=b"$FL2 this is not really an SPSS file\x00\x01")
    survey = pd.read_csv(__import__("io").StringIO(SURVEY),
                         dtype={"unit_id": str, "respondent_id": str})
    study("spss_labels_mismatch", clients__acme__survey_DOT_csv=None,
          clients__acme__survey_DOT_sav=_sav(survey, labels={
              "eng_1": {1: "Strongly disagree", 7: "Strongly agree", 99: "No answer"}},
              missing={"eng_1": [99]}))
    study("xlsx_sheet_missing", clients__acme__survey_DOT_csv=None,
          clients__acme__survey_DOT_xlsx=_xlsx({"Responses": survey}),
          study_DOT_yml=STUDY_YML + "sheets: {survey: Answers}\n")
    return studies


def _sav(frame: pd.DataFrame, labels=None, missing=None) -> bytes:
    """The bytes of an SPSS file of ``frame`` (pyreadstat), with value labels and missing codes."""
    import tempfile

    import pyreadstat

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.sav"
        pyreadstat.write_sav(frame, path, variable_value_labels=labels or None,
                             missing_ranges=missing or None)
        return path.read_bytes()


def _xlsx(sheets: dict[str, pd.DataFrame]) -> bytes:
    """The bytes of an Excel workbook with one sheet per frame (openpyxl)."""
    import io

    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
    return buffer.getvalue()


def main() -> None:
    for name, files in corpus().items():
        folder = HERE / name
        if folder.exists():
            shutil.rmtree(folder)
        for rel, content in files.items():
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8", newline="\n")
        print(f"wrote {folder.relative_to(HERE.parents[1])}")


if __name__ == "__main__":
    main()
