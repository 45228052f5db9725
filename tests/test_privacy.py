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


# ------------------------------------------------------------- write_csv against the reference
def _reference_format_float(x: float) -> str:
    """``exresearch.privacy._format_float`` as it was when :func:`_reference_write_csv` was
    replaced (issue 20, i20-csv)."""
    import math

    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = repr(float(x))  # the shortest string that round-trips exactly
    return "0.0" if text == "-0.0" else text


def _reference_write_csv(df, path, *, index: bool = False):
    """``exresearch.privacy.write_csv`` before issue 20 (i20-csv), verbatim but for the
    docstring and the two helpers' names: a Python call per cell, rows through
    ``csv.writer``. The current implementation must write the same bytes."""
    import csv
    import io
    import os
    from pathlib import Path

    import numpy as np
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise ParameterError(
            f"`df` must be a pandas DataFrame, but {type(df).__name__} was passed"
        )
    path = Path(path)
    frame = df.reset_index() if index else df

    def cell(v) -> str:
        if v is None or v is pd.NA or v is pd.NaT:
            return ""
        if isinstance(v, bool | np.bool_):
            return "true" if v else "false"
        if isinstance(v, int | np.integer):
            return str(int(v))
        if isinstance(v, float | np.floating):
            return _reference_format_float(float(v))
        if isinstance(v, pd.Timestamp):
            return v.isoformat()
        return neutralise_cell(str(v))

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([neutralise_cell(str(c)) for c in frame.columns])
    columns = [frame.iloc[:, j].tolist() for j in range(frame.shape[1])]
    for i in range(len(frame)):
        writer.writerow([cell(col[i]) for col in columns])
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(buf.getvalue().encode("utf-8"))
    os.replace(tmp, path)
    return path


#: Texts that exercise quoting and the formula rule: commas, quotes, line breaks, a
#: carriage return alone, formula starts, numbers written as text (left alone), unicode.
_TEXTS = ["plain", "", " ", "a,b", "a,\nb", "x,", 'say "hi"', '"', "line\nbreak", "cr\ronly",
          "crlf\r\n", "\ttab", "tab\tinside", "=1+1", "+cmd", "@SUM(A1)", "-", "-a", "-12",
          "-0.5", "+3e-2", "-1e5", "-.5", "1e5", "=", "Acme = best", "Zürich, Ünits", "日本",
          "naïve\u2028", "'quoted'", "x" * 300, "0.1", "nan", "inf", "-inf", "true", "NaT", "None"]


def _floats(rng, n):
    """Floats of every kind: normal, tiny, subnormal, huge, integral, signed zeros,
    infinities and NaN."""
    pool = np.concatenate([
        rng.normal(size=n) / 7, rng.normal(size=n) * 1e300, rng.normal(size=n) * 1e-300,
        rng.integers(-10**6, 10**6, size=n).astype(float),
        np.array([5e-324, -5e-324, 2.2250738585072014e-308, 1e-310, 1.7976931348623157e308,
                  -1.7976931348623157e308, 0.0, -0.0, np.inf, -np.inf, np.nan, 1e16, 1e17,
                  123456789012345680.0, 0.1, 1 / 3, 1e-5, 1e-4, 100.0]),
    ])
    return rng.choice(pool, size=n)


def _column(rng, kind, n):
    """A column of ``n`` values of one kind of dtype (see ``_KINDS``)."""
    texts = rng.choice(np.array(_TEXTS, dtype=object), size=n)
    missing = rng.random(n) < 0.2
    if kind == "float64":
        return pd.Series(_floats(rng, n))
    if kind == "float32":
        with np.errstate(over="ignore"):  # huge doubles become inf, as they would in a table
            return pd.Series(_floats(rng, n).astype(np.float32))
    if kind == "float16":
        return pd.Series((rng.normal(size=n) * 100).astype(np.float16))
    if kind == "int64":
        return pd.Series(rng.choice(np.array([0, -1, 1, 2**63 - 1, -2**63, 42, -7]), size=n))
    if kind == "int8":
        return pd.Series(rng.integers(-128, 128, size=n).astype(np.int8))
    if kind == "uint64":
        return pd.Series(rng.choice(np.array([0, 1, 2**64 - 1, 2**63], dtype=np.uint64), size=n))
    if kind == "bool":
        return pd.Series(rng.random(n) < 0.5)
    if kind == "Int64":
        return pd.Series(pd.array(np.where(missing, None, rng.integers(-99, 99, size=n)).tolist(),
                                  dtype="Int64"))
    if kind == "UInt8":
        return pd.Series(pd.array(np.where(missing, None, rng.integers(0, 255, size=n)).tolist(),
                                  dtype="UInt8"))
    if kind == "boolean":
        return pd.Series(pd.array(np.where(missing, None, rng.random(n) < 0.5).tolist(),
                                  dtype="boolean"))
    if kind in ("Float64", "Float32"):
        vals = [None if m else v for m, v in zip(missing, _floats(rng, n).tolist(), strict=True)]
        with np.errstate(over="ignore"):
            return pd.Series(pd.array(vals, dtype=kind))
    if kind in ("str", "string", "string[pyarrow]", "string[python]", "str[python]"):
        dtype = {"str[python]": pd.StringDtype("python", na_value=np.nan)}.get(kind, kind)
        return pd.Series([None if m else t for m, t in zip(missing, texts, strict=True)],
                         dtype=dtype)
    if kind == "object-str":
        return pd.Series(list(texts), dtype=object)
    if kind == "object-str-none":
        return pd.Series([None if m else t for m, t in zip(missing, texts, strict=True)],
                         dtype=object)
    if kind == "object-mixed":
        pool = [1, 1.0, True, False, 0, 0.0, -0.0, np.int64(3), np.float32(0.5), np.bool_(True),
                np.float64("nan"), float("nan"), None, pd.NA, pd.NaT, np.datetime64("NaT"),
                pd.Timestamp("2024-02-29 13:45:01.5"), pd.Timedelta(-1, "s"), 1 + 2j,
                np.inf, -np.inf, 5e-324, b"bytes", (1, "=x"), "=x", "-1", "a,b", 'q"q', "",
                np.str_("-np"), 2**70, np.uint64(2**64 - 1)]
        return pd.Series([pool[i] for i in rng.integers(0, len(pool), size=n)], dtype=object)
    if kind == "category-str":
        return pd.Series(pd.Categorical([None if m else t for m, t in
                                         zip(missing, texts, strict=True)]))
    if kind == "category-int":
        return pd.Series(pd.Categorical(np.where(missing, None, rng.integers(-3, 3, size=n))
                                        .tolist(), ordered=True))
    if kind == "category-float":
        return pd.Series(pd.Categorical(np.where(missing, np.nan, _floats(rng, n))))
    if kind == "datetime":
        t = pd.Series(pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 10**9, n), "s"))
        return t.mask(missing)
    if kind == "datetime-tz":
        return _column(rng, "datetime", n).dt.tz_localize("Europe/Paris", ambiguous="NaT",
                                                            nonexistent="NaT")
    if kind == "timedelta":
        return pd.Series(pd.to_timedelta(rng.integers(-10**6, 10**6, n), "s")).mask(missing)
    if kind in ("int64[pyarrow]", "double[pyarrow]", "bool[pyarrow]"):
        base = {"int64[pyarrow]": "Int64", "double[pyarrow]": "Float64",
                "bool[pyarrow]": "boolean"}[kind]
        return _column(rng, base, n).astype(kind)
    raise AssertionError(kind)


_KINDS = ["float64", "float32", "float16", "int64", "int8", "uint64", "bool", "Int64", "UInt8",
          "boolean", "Float64", "Float32", "str", "string", "string[pyarrow]", "string[python]",
          "str[python]", "object-str", "object-str-none", "object-mixed", "category-str",
          "category-int", "category-float", "datetime", "datetime-tz", "timedelta",
          "int64[pyarrow]", "double[pyarrow]", "bool[pyarrow]"]


def _same_bytes(df, tmp_path, *, index=False):
    new = write_csv(df, tmp_path / "new.csv", index=index).read_bytes()
    old = _reference_write_csv(df, tmp_path / "old.csv", index=index).read_bytes()
    assert new == old, (new[:400], old[:400])
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary files were renamed away
    return new


@pytest.mark.parametrize("kind", _KINDS)
@pytest.mark.parametrize("n", [0, 1, 2, 57])
def test_write_csv_matches_reference_for_every_dtype(kind, n, tmp_path):
    rng = np.random.default_rng([_KINDS.index(kind), n])
    col = _column(rng, kind, n)
    # alone (one-column rules: an empty cell is written ""), and beside other columns
    _same_bytes(pd.DataFrame({"x": col}), tmp_path)
    _same_bytes(pd.DataFrame({"x": col, "-y": col, "z": np.arange(n)}), tmp_path)
    _same_bytes(pd.DataFrame({"x": col}, index=pd.Index([f"=r{i}" for i in range(n)], name="k")),
                tmp_path, index=True)


@pytest.mark.parametrize("seed", range(60))
def test_write_csv_matches_reference_on_random_frames(seed, tmp_path):
    rng = np.random.default_rng(seed)
    n = int(rng.choice([0, 1, 3, 40, 200]))
    kinds = rng.choice(_KINDS, size=int(rng.integers(1, 8)))
    names = rng.choice(np.array(["a", "a", "b", "=c", "-1", "", "d,e", 'q"', "n\nl", 7],
                                dtype=object), size=len(kinds))
    df = pd.concat([_column(rng, k, n).rename(c) for k, c in zip(kinds, names, strict=True)],
                   axis=1)
    df.columns = list(names)  # duplicates kept
    _same_bytes(df, tmp_path, index=bool(seed % 3 == 0))


def test_write_csv_matches_reference_on_special_frames(tmp_path):
    text = pd.Series(_TEXTS)
    frames = [
        pd.DataFrame(),  # no columns, no rows
        pd.DataFrame(index=range(3)),  # rows without columns: one empty line each
        pd.DataFrame({"x": pd.Series([], dtype=float)}),
        pd.DataFrame({"x": [np.nan, 1.0]}),  # one column with an empty cell
        pd.DataFrame({"": [1, 2]}),  # one column named "": header written ""
        pd.DataFrame({"t": text}),
        pd.DataFrame({"t": text, "u": text[::-1].to_numpy()}),
        pd.DataFrame({"x": [1.5, -0.0], "y": ["plain", "plain"]}),  # the fast path
        pd.DataFrame([[1, 2, 3]], columns=["a", "a", "a"]),  # duplicate names
        pd.DataFrame({("=m", 1): [0.5], ("n", 2): ["x"]}),  # tuple names
        pd.DataFrame({0: [1], 1.5: [2], None: [3]}),  # non-text names
    ]
    for df in frames:
        _same_bytes(df, tmp_path)
    assert _same_bytes(pd.DataFrame(index=range(3)), tmp_path) == b"\n\n\n\n"
    assert _same_bytes(pd.DataFrame({"x": [np.nan, 1.0]}), tmp_path) == b'x\n""\n1.0\n'
    assert _same_bytes(pd.DataFrame({"t": ["cr\ronly", "a,b"]}), tmp_path) == (
        b't\ncr\ronly\n"a,b"\n')
    assert _same_bytes(pd.DataFrame({"a,b": ["x", 'q"', "a,\nb"], "=c": [1.5, -0.0, np.nan]}),
                       tmp_path) == b'"a,b",\'=c\nx,1.5\n"q""",0.0\n"a,\nb",\n'
    # index=True: named, unnamed, a MultiIndex, a text index with formulas
    df = pd.DataFrame({"x": [0.25, -0.0, np.nan]})
    for idx in [pd.RangeIndex(3), pd.Index(["-a", "=b", "c,d"], name="k"),
                pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("=b", 1)], names=["g", None]),
                pd.CategoricalIndex(["u", "v", "u"], name="=cat")]:
        _same_bytes(df.set_axis(idx), tmp_path, index=True)


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
