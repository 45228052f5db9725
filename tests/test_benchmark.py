"""Tests for exresearch.benchmark: minimum contributors and no disclosure of other clients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exresearch import ParameterError, config
from exresearch.benchmark import BENCHMARK_COLUMNS, client_percentiles


@pytest.fixture
def aggregates(rng):
    ids = [f"client_{i:02d}" for i in range(9)]
    return pd.DataFrame({
        "client_id": ids,
        "name": [f"Company {chr(65 + i)}" for i in range(9)],
        "engagement": rng.normal(3.8, 0.3, 9),
        "nps": rng.normal(20, 10, 9),
        "r_engagement_nps": rng.normal(0.25, 0.1, 9),
    })


def test_percentile_and_contributors(aggregates):
    res = client_percentiles(aggregates, client="client_00",
                             value_columns=["engagement", "nps", "r_engagement_nps"])
    assert list(res.columns) == list(BENCHMARK_COLUMNS)
    assert res["measure"].tolist() == ["engagement", "nps", "r_engagement_nps"]
    for _, row in res.iterrows():
        others = aggregates.loc[aggregates["client_id"] != "client_00", row["measure"]]
        own = aggregates.loc[0, row["measure"]]
        assert row["value"] == own
        assert row["n_contributors"] == 8
        assert row["percentile"] == pytest.approx(100 * (others < own).sum() / 8)
        assert not row["withheld"] and row["reason"] == ""


def test_window_quartiles_by_hand():
    agg = pd.DataFrame({"client_id": list("abcdefg"),
                        "x": [5.0, 1.1, 2.3, 3.7, 4.2, 6.9, 8.4]})
    res = client_percentiles(agg, client="a", value_columns=["x"]).iloc[0]
    others = np.sort([1.1, 2.3, 3.7, 4.2, 6.9, 8.4])  # m = 6
    # positions p(m-1): 1.25 -> window [0:3], 2.5 -> [2:5] (round half up 3, centred), 3.75 -> [3:6]
    assert res["q1"] == pytest.approx(others[0:3].mean())
    assert res["median"] == pytest.approx(others[2:5].mean())
    assert res["q3"] == pytest.approx(others[3:6].mean())
    assert res["percentile"] == pytest.approx(100 * 4 / 6)


def test_minimum_contributors_rule():
    agg = pd.DataFrame({"client_id": list("abcde"),
                        "x": [1.0, 2.0, 3.0, 4.0, np.nan],   # 3 others contribute
                        "y": [1.0, 2.0, 3.0, np.nan, np.nan],  # only 2 others
                        "z": [np.nan, 2.0, 3.0, 4.0, 5.0]})   # focal has no value
    with pytest.warns(UserWarning, match=r"benchmark withheld for \['y', 'z'\]"):
        res = client_percentiles(agg, client="a", value_columns=["x", "y", "z"])
    res = res.set_index("measure")
    assert not res.loc["x", "withheld"] and res.loc["x", "percentile"] == 0.0
    assert res.loc["x", "n_contributors"] == 3
    assert np.isnan(res.loc["x", "median"])  # quartiles need >= 5 others
    assert res.loc["y", "withheld"] and np.isnan(res.loc["y", "percentile"])
    assert res.loc["y", "n_contributors"] == 2
    assert res.loc["y", "reason"] == "only 2 other client(s) contribute; at least 3 are needed"
    assert res.loc["z", "withheld"]
    assert res.loc["z", "reason"] == "this client has no value for the measure"
    assert config.MIN_BENCHMARK_CONTRIBUTORS == 3


def test_stricter_minimum_is_honoured():
    agg = pd.DataFrame({"client_id": list("abcde"), "x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    with pytest.warns(UserWarning):
        res = client_percentiles(agg, client="a", value_columns="x", min_others=5)
    assert res.loc[0, "withheld"]
    assert res.loc[0, "reason"] == "only 4 other client(s) contribute; at least 5 are needed"


@pytest.mark.parametrize("n_clients", [4, 5, 6, 7, 9, 12])
def test_no_other_client_id_name_or_value_in_output(rng, n_clients):
    agg = pd.DataFrame({
        "client_id": [f"client_{i:02d}" for i in range(n_clients)],
        "name": [f"Company {chr(65 + i)}" for i in range(n_clients)],
        "engagement": np.round(rng.normal(3.8, 0.3, n_clients), 6),
        "nps": np.round(rng.normal(20, 10, n_clients), 6),
    })
    for focal in agg["client_id"]:
        res = client_percentiles(agg, client=focal, value_columns=["engagement", "nps"])
        text = res.to_csv(index=False)
        for _, other in agg.loc[agg["client_id"] != focal].iterrows():
            assert other["client_id"] not in text
            assert other["name"] not in text
        numeric = res[["value", "percentile", "q1", "median", "q3"]].to_numpy(float)
        for col in ["engagement", "nps"]:
            other_vals = agg.loc[agg["client_id"] != focal, col].to_numpy()
            hits = np.isclose(numeric[..., None], other_vals, rtol=0, atol=1e-9)
            assert not hits.any(), (focal, col)
            # no min or max of the others either
            for extreme in (other_vals.min(), other_vals.max()):
                assert not np.isclose(numeric, extreme, atol=1e-9).any()


def test_errors_name_the_parameter(aggregates):
    with pytest.raises(ParameterError, match=r"`client` must be one of the clients in "
                                             r"`aggregates`, but 'nobody' was passed"):
        client_percentiles(aggregates, client="nobody", value_columns=["nps"])
    with pytest.raises(ParameterError, match=r"column for `value_columns` must be one of .*"
                                             r"but 'sales' was passed"):
        client_percentiles(aggregates, client="client_00", value_columns=["sales"])
    with pytest.raises(ParameterError, match=r"`min_others` must be an integer >= 3, but 2 "
                                             r"was passed"):
        client_percentiles(aggregates, client="client_00", value_columns=["nps"], min_others=2)
    dup = pd.concat([aggregates, aggregates.head(1)])
    with pytest.raises(ParameterError, match=r"one row per client .* 1 duplicated id"):
        client_percentiles(dup, client="client_00", value_columns=["nps"])


def test_client_aggregates_unit_means_then_client_means():
    from exresearch.benchmark import client_aggregates

    d = pd.DataFrame({
        "client_id": ["a", "a", "a", "a", "b", "b"],
        "unit_id": ["u1", "u1", "u2", "u3", "v1", "v2"],
        "period": ["p1", "p2", "p1", "p1", "p1", "p2"],
        "engagement": [3.0, 4.0, 5.0, np.nan, 4.2, 3.8],  # u3 suppressed
        "nps": [10.0, 20.0, 30.0, 40.0, np.nan, 5.0],
    })
    res = client_aggregates(d, value_columns=["engagement", "nps"])
    assert list(res.columns) == ["client_id", "n_units", "engagement", "nps"]
    a = res.set_index("client_id").loc["a"]
    assert a["n_units"] == 3
    assert a["engagement"] == pytest.approx((3.5 + 5.0) / 2)  # unit means, u3 left out
    assert a["nps"] == pytest.approx((15 + 30 + 40) / 3)
    p1 = client_aggregates(d, value_columns="engagement", period="p1").set_index("client_id")
    assert p1.loc["b", "engagement"] == pytest.approx(4.2) and p1.loc["b", "n_units"] == 1
    with pytest.raises(ParameterError, match=r"column for `unit` must be one of .* 'store'"):
        client_aggregates(d, value_columns="nps", unit="store")
