"""Tests for exresearch.privacy: CSV formula injection, escaping, pseudonyms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exresearch.exceptions import ParameterError
from exresearch.privacy import escape, neutralise_cell, pseudonyms, write_csv


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-0.5", "-0.5"),
        ("+3e-2", "+3e-2"),
        ("-12", "-12"),
        ("Acme = best", "Acme = best"),
        ("", ""),
        ("-", "'-"),
    ],
)
def test_neutralise_cell(value, expected):
    assert neutralise_cell(value) == expected


def test_write_csv_neutralises_text_and_keeps_numbers(tmp_path):
    df = pd.DataFrame(
        {
            "=name": ["=HYPERLINK(\"http://evil\")", "Acme", "@x", None],
            "x": [-0.5, 0.1, np.nan, 1e-20],
            "n": [1, -2, 3, 4],
            "flag": [True, False, True, False],
        }
    )
    path = write_csv(df, tmp_path / "t.csv")
    assert path.read_bytes() == (
        b"'=name,x,n,flag\n"
        b"\"'=HYPERLINK(\"\"http://evil\"\")\",-0.5,1,true\n"
        b"Acme,0.1,-2,false\n"
        b"'@x,,3,true\n"
        b",1e-20,4,false\n"
    )
    back = pd.read_csv(path)
    assert back["x"].iloc[0] == -0.5
    assert back["n"].tolist() == [1, -2, 3, 4]


def test_write_csv_round_trips_floats_exactly_and_is_deterministic(tmp_path, rng):
    x = rng.normal(size=200) / 7
    df = pd.DataFrame({"unit_id": [f"u{i:03d}" for i in range(200)], "x": x})
    a = write_csv(df, tmp_path / "a.csv").read_bytes()
    b = write_csv(df.copy(), tmp_path / "b.csv").read_bytes()
    assert a == b
    back = pd.read_csv(tmp_path / "a.csv")
    np.testing.assert_array_equal(back["x"].to_numpy(), x)
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file was renamed away


def test_write_csv_index_and_negative_zero(tmp_path):
    df = pd.DataFrame({"x": [-0.0, 2.5]}, index=pd.Index(["-a", "b"], name="k"))
    text = write_csv(df, tmp_path / "i.csv", index=True).read_text()
    assert text == "k,x\n'-a,0.0\nb,2.5\n"


def test_write_csv_rejects_non_frame(tmp_path):
    with pytest.raises(ParameterError, match="`df` must be a pandas DataFrame, but list"):
        write_csv([1, 2], tmp_path / "x.csv")


def test_escape_makes_markup_inert():
    assert escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert escape('<img src=x onerror="alert(1)">') == (
        "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    )
    assert escape("O'Brien & Co") == "O&#x27;Brien &amp; Co"
    assert escape(None) == ""
    assert escape(3.5) == "3.5"


def test_pseudonyms_follow_study_order():
    ids = [f"c{i}" for i in range(28)]
    names = pseudonyms(ids)
    assert names["c0"] == "Client A"
    assert names["c25"] == "Client Z"
    assert names["c26"] == "Client AA"
    assert names["c27"] == "Client AB"
    assert list(names) == ids
    assert pseudonyms(["zeta", "alpha"]) == {"zeta": "Client A", "alpha": "Client B"}


def test_pseudonyms_rejects_duplicates():
    with pytest.raises(ParameterError, match=r"`client_ids` must be unique, but \['a'\]"):
        pseudonyms(["a", "b", "a"])


# ----------------------------------------------------------------------------- rules as functions
def test_blank_small_groups_blanks_levels_below_the_minimum_only():
    from exresearch.privacy import blank_small_groups

    t = pd.DataFrame({"level": ["bank", "retail", "telco"], "k_level": [3, 2, 5],
                      "level_r": [0.3, 0.5, 0.2], "estimate": [0.1, 0.2, 0.3],
                      "qm_p": [0.04, 0.04, 0.04]})
    out = blank_small_groups(t, columns=["level_r", "estimate"])
    assert out["level_r"].isna().tolist() == [False, True, False]
    assert out["estimate"].isna().tolist() == [False, True, False]
    assert out["qm_p"].tolist() == [0.04] * 3  # the omnibus test is not per group
    assert t["level_r"].notna().all()  # input unchanged
    # a small reference level (the intercept) blanks every contrast
    small_ref = blank_small_groups(t.iloc[[1, 0, 2]], columns=["level_r"])
    assert small_ref["level_r"].isna().all()
    assert blank_small_groups(t.iloc[[1, 0, 2]], columns=["level_r"],
                              reference_first=False)["level_r"].isna().tolist() == [True, False, False]
    assert blank_small_groups(t, columns=["level_r"], min_size=6)["level_r"].isna().all()


def test_blank_small_groups_names_missing_columns():
    from exresearch.privacy import blank_small_groups

    with pytest.raises(ParameterError, match=r"\['level_r'\] are missing"):
        blank_small_groups(pd.DataFrame({"k_level": [1]}), columns=["level_r"])


def test_publishable_per_client_drops_industry_under_pseudonyms():
    from exresearch.privacy import publishable_per_client

    t = pd.DataFrame({"client": ["Client A", "Client B"], "industry": ["bank", "retail"],
                      "r": [0.3, 0.1]})
    assert list(publishable_per_client(t, publish_names=False).columns) == ["client", "r"]
    assert publishable_per_client(t, publish_names=True).equals(t)
    with pytest.raises(ParameterError, match="but 'no' was passed"):
        publishable_per_client(t, publish_names="no")


def test_redact_survey_values_blanks_answers_and_keeps_the_rest():
    from exresearch.privacy import redact_survey_values

    w = pd.DataFrame({"file": ["acme/survey.csv", "acme/outcomes.csv", "study.yml"],
                      "row": [3, 4, 0], "value": [5, "abc", 1.5]})
    out = redact_survey_values(w)
    assert out["value"].tolist() == ["", "abc", "1.5"]
    assert out["row"].tolist() == [3, 4, 0] and w["value"].tolist() == [5, "abc", 1.5]
    assert redact_survey_values(w.iloc[0:0]).empty
