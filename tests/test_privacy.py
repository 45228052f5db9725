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
