"""B3/B4: measurement at scale (scoring, alpha, ICC(1)/ICC(2), rwg(j), unit aggregation).

Data: a deterministic synthetic study (``make_study``) of ``n_clients`` clients, each with
``units`` business units and about ``per_unit`` respondents per unit in one period, 8
scales of 5 items on 1-5 (item 5 of every other scale reverse-coded), 3% of answers
missing at random. Written twice, once as CSV and once as parquet, into a temp folder.

Pipelines (each runs in its own subprocess, see ``worker``):

* ``fast``: per client ``score_scales``, ``agreement`` (alpha, ICC(1), ICC(2), rwg(j))
  and ``aggregate_units`` of exresearch;
* ``baseline``: the straightforward per-client pandas code a researcher would write:
  ``pingouin.cronbach_alpha`` and a statsmodels one-way ANOVA (``ols(...).fit()`` +
  ``anova_lm``) per scale for ICC(1)/ICC(2), a loop over units for rwg(j), pandas
  ``mean(axis=1)`` scoring and a ``groupby`` for the unit aggregation.

Both compute the same statistics; ``compare`` checks they agree.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, peak_rss_bytes, reset_peak_rss  # noqa: E402

N_SCALES = 8
N_ITEMS = 5
POINTS = (1, 5)
PERIOD = "2025"
MIN_GROUP_SIZE = 5
MISSING_RATE = 0.03


def scale_spec() -> dict:
    """Scale name -> {items, reverse}: 8 scales of 5 items, item 5 reversed in odd scales."""
    out = {}
    for s in range(1, N_SCALES + 1):
        items = [f"s{s}_{i}" for i in range(1, N_ITEMS + 1)]
        out[f"scale{s}"] = {"items": items, "reverse": [items[-1]] if s % 2 else []}
    return out


def items() -> list[str]:
    return [i for spec in scale_spec().values() for i in spec["items"]]


def client_ids(n_clients: int) -> list[str]:
    return [f"c{c:03d}" for c in range(n_clients)]


def _client_frames(rng, cid: str, units: int, per_unit: int):
    import numpy as np
    import pandas as pd

    # unit sizes: 1 + multinomial, mean per_unit, some units below the group size
    weights = rng.gamma(4.0, 1.0, units)
    n = units * per_unit
    sizes = 1 + rng.multinomial(n - units, weights / weights.sum())
    unit_ids = np.array([f"{cid}-u{u:04d}" for u in range(units)], dtype=object)
    unit_of = np.repeat(np.arange(units), sizes)
    cols = {}
    general = rng.normal(0.0, 0.6, n)
    for _name, spec in scale_spec().items():
        unit_eff = rng.normal(0.0, 0.35, units)[unit_of]
        person = general + rng.normal(0.0, 0.8, n)
        for item in spec["items"]:
            x = np.clip(np.rint(3.2 + 0.8 * (unit_eff + person) + rng.normal(0.0, 0.7, n)),
                        1, 5)
            if item in spec["reverse"]:
                x = 6.0 - x
            x[rng.random(n) < MISSING_RATE] = np.nan
            cols[item] = x
    survey = pd.DataFrame({
        "unit_id": pd.array(unit_ids[unit_of], dtype="str"),
        "period": pd.array(np.full(n, PERIOD, dtype=object), dtype="str"),
        "respondent_id": pd.array([f"{cid}-r{i:06d}" for i in range(n)], dtype="str"),
        **cols,
    })
    outcomes = pd.DataFrame({
        "unit_id": pd.array(unit_ids, dtype="str"),
        "period": pd.array([PERIOD] * units, dtype="str"),
        "cx_score": np.round(rng.normal(50, 10, units), 2),
    })
    return survey, outcomes


def _study_yml(n_clients: int, seed: int) -> str:
    lines = [f"name: Benchmark study ({n_clients} clients)", f"seed: {seed}",
             f"min_group_size: {MIN_GROUP_SIZE}", f"periods: [{PERIOD}]",
             f"points: [{POINTS[0]}, {POINTS[1]}]", "scales:"]
    for name, spec in scale_spec().items():
        rev = f", reverse: [{', '.join(spec['reverse'])}]" if spec["reverse"] else ""
        lines.append(f"  {name}: {{items: [{', '.join(spec['items'])}]{rev}}}")
    lines += ["outcomes:", "  cx_score: {kind: cx}", "clients:"]
    lines += [f"  - {{id: {cid}}}" for cid in client_ids(n_clients)]
    return "\n".join(lines) + "\n"


def make_study(root: Path, *, n_clients: int, units: int, per_unit: int, seed: int,
               formats=("csv", "parquet")) -> dict:
    """Write the study as ``root/<fmt>/`` for each format; reuse it when already complete.

    Returns ``{fmt: path}``. Deterministic: the same arguments give the same data.
    """
    import numpy as np

    root = Path(root)
    paths = {fmt: root / fmt for fmt in formats}
    if all((p / ".complete").is_file() for p in paths.values()):
        return paths
    rng = np.random.default_rng(seed)
    for p in paths.values():
        (p / "clients").mkdir(parents=True, exist_ok=True)
        (p / "study.yml").write_text(_study_yml(n_clients, seed))
    for cid in client_ids(n_clients):
        survey, outcomes = _client_frames(rng, cid, units, per_unit)
        for fmt, p in paths.items():
            folder = p / "clients" / cid
            folder.mkdir(exist_ok=True)
            if fmt == "csv":
                survey.to_csv(folder / "survey.csv", index=False, float_format="%.0f")
                outcomes.to_csv(folder / "outcomes.csv", index=False)
            else:
                survey.to_parquet(folder / "survey.parquet", index=False)
                outcomes.to_parquet(folder / "outcomes.parquet", index=False)
    for p in paths.values():
        (p / ".complete").write_text("ok\n")
    return paths


# --------------------------------------------------------------------------- reading
def read_raw(study: Path, fmt: str, clients=None) -> dict:
    """Read every client's survey with plain pandas: client id -> DataFrame."""
    import pandas as pd

    ids = clients or sorted(p.name for p in (study / "clients").iterdir() if p.is_dir())
    out = {}
    for cid in ids:
        f = study / "clients" / cid / f"survey.{fmt}"
        if fmt == "csv":
            out[cid] = pd.read_csv(f, dtype={"unit_id": "str", "period": "str",
                                             "respondent_id": "str"})
        else:
            out[cid] = pd.read_parquet(f)
    return out


# --------------------------------------------------------------------------- pipelines
def run_fast(surveys: dict, scales: dict) -> tuple[dict, dict]:
    """exresearch per client: score_scales, agreement, aggregate_units.

    Returns ``(stage seconds, results)``; results hold per client the agreement table
    and the unit aggregation (for :func:`compare`).
    """
    import warnings

    from exresearch.aggregate import aggregate_units, agreement
    from exresearch.scoring import score_scales

    stages = {"score_scales": 0.0, "agreement": 0.0, "aggregate_units": 0.0}
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cid, survey in surveys.items():
            t = time.perf_counter()
            scores = score_scales(survey, scales=scales, points=POINTS)
            t1 = time.perf_counter()
            agr = agreement(survey, unit="unit_id", scales=scales, points=POINTS)
            t2 = time.perf_counter()
            agg = aggregate_units(survey, scales=scales, min_group_size=MIN_GROUP_SIZE,
                                  points=POINTS)
            t3 = time.perf_counter()
            stages["score_scales"] += t1 - t
            stages["agreement"] += t2 - t1
            stages["aggregate_units"] += t3 - t2
            results[cid] = {"agreement": agr, "units": agg, "n_scored": int(scores.shape[0])}
    return stages, results


def run_baseline(surveys: dict, scales: dict) -> tuple[dict, dict]:
    """The straightforward per-client pandas loop (pingouin, statsmodels, per-unit rwg)."""
    import warnings

    import numpy as np
    import pandas as pd
    import pingouin as pg
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    lo, hi = POINTS
    null_var = ((hi - lo + 1) ** 2 - 1) / 12.0
    stages = {"scoring+aggregation": 0.0, "alpha (pingouin)": 0.0,
              "ICC (statsmodels ANOVA)": 0.0, "rwg(j) (loop over units)": 0.0}
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cid, survey in surveys.items():
            rows = []
            t = time.perf_counter()
            df = survey.copy()
            for spec in scales.values():
                for item in spec["reverse"]:
                    df[item] = lo + hi - df[item]
            scores = df[["unit_id", "period"]].copy()
            for name, spec in scales.items():
                answered = df[spec["items"]].notna().sum(axis=1)
                scores[name] = df[spec["items"]].mean(axis=1).where(
                    2 * answered >= len(spec["items"]))
            stages["scoring+aggregation"] += time.perf_counter() - t
            for name, spec in scales.items():
                its = spec["items"]
                t = time.perf_counter()
                alpha, _ = pg.cronbach_alpha(data=df[its], nan_policy="listwise")
                t1 = time.perf_counter()
                d = df[["unit_id", *its]].dropna()
                d = d.assign(score=d[its].mean(axis=1))
                model = ols("score ~ C(unit_id)", data=d).fit()
                table = anova_lm(model)
                msb = table.loc["C(unit_id)", "mean_sq"]
                msw = table.loc["Residual", "mean_sq"]
                k = len(d) / d["unit_id"].nunique()
                icc1 = (msb - msw) / (msb + (k - 1) * msw)
                icc2 = (msb - msw) / msb
                t2 = time.perf_counter()
                rwgs = []
                for _, g in d.groupby("unit_id"):
                    if len(g) < 2:
                        rwgs.append(np.nan)
                        continue
                    s = g[its].var(ddof=1).mean()
                    ratio = min(s / null_var, 1.0)
                    rwgs.append(len(its) * (1 - ratio) / (len(its) * (1 - ratio) + ratio))
                rwgs = np.array(rwgs)
                t3 = time.perf_counter()
                stages["alpha (pingouin)"] += t1 - t
                stages["ICC (statsmodels ANOVA)"] += t2 - t1
                stages["rwg(j) (loop over units)"] += t3 - t2
                rows.append({"scale": name, "alpha": alpha, "icc1": icc1, "icc2": icc2,
                             "rwg_j_mean": np.nanmean(rwgs)})
            t = time.perf_counter()
            g = scores.groupby(["unit_id", "period"])
            size = g.size()
            units = []
            for name in scales:
                a = g[name].agg(["count", "mean", "std"])
                fav = (scores[name] >= hi - 1).where(scores[name].notna()).groupby(
                    [scores["unit_id"], scores["period"]]).mean() * 100
                hide = (size < MIN_GROUP_SIZE) | (a["count"] < MIN_GROUP_SIZE)
                a["pct_favourable"] = fav
                a.loc[hide, ["mean", "std", "pct_favourable"]] = np.nan
                units.append(a.assign(scale=name).reset_index())
            stages["scoring+aggregation"] += time.perf_counter() - t
            results[cid] = {"agreement": pd.DataFrame(rows).set_index("scale"),
                            "units": pd.concat(units, ignore_index=True)}
    return stages, results


def compare(fast: dict, base: dict) -> dict:
    """Largest absolute differences between the two pipelines' statistics."""
    import numpy as np

    diffs = {"alpha": 0.0, "icc1": 0.0, "icc2": 0.0, "rwg_j_mean": 0.0, "unit_mean": 0.0,
             "pct_favourable": 0.0}
    for cid, b in base.items():
        f = fast[cid]
        fa = f["agreement"].loc[b["agreement"].index]
        for col in ("alpha", "icc1", "icc2", "rwg_j_mean"):
            d = np.nanmax(np.abs(fa[col].to_numpy(float) - b["agreement"][col].to_numpy(float)))
            diffs[col] = max(diffs[col], float(d))
        fu = f["units"].set_index(["unit_id", "period", "scale"]).sort_index()
        bu = b["units"].set_index(["unit_id", "period", "scale"]).sort_index()
        bu = bu.loc[fu.index]
        for col, bcol in (("mean", "mean"), ("pct_favourable", "pct_favourable")):
            x, y = fu[col].to_numpy(float), bu[bcol].to_numpy(float)
            if not np.array_equal(np.isnan(x), np.isnan(y)):
                diffs["unit_mean" if col == "mean" else col] = float("inf")
                continue
            d = np.nanmax(np.abs(x - y)) if np.isfinite(x).any() else 0.0
            key = "unit_mean" if col == "mean" else col
            diffs[key] = max(diffs[key], float(d))
    return diffs


# --------------------------------------------------------------------------- worker
def _frames_from_results(results: dict):
    import pandas as pd

    agr, units = [], []
    for cid, r in results.items():
        agr.append(r["agreement"].reset_index().assign(client=cid))
        units.append(r["units"].assign(client=cid))
    return pd.concat(agr, ignore_index=True), pd.concat(units, ignore_index=True)


def worker(spec: dict) -> dict:
    """Run one timed case in this (fresh) process; see the module docstring.

    ``spec``: ``kind`` (``fast``, ``baseline``, ``read_csv``, ``read_parquet``,
    ``load_csv``, ``load_parquet``), ``study`` (folder of the matching format, parquet
    for the compute kinds), optional ``clients`` (subset) and ``dump`` (folder to write
    the computed statistics for :func:`compare`).
    """
    import pandas as pd  # noqa: F401  (imports are not part of any timing)

    kind = spec["kind"]
    study = Path(spec["study"])
    clients = spec.get("clients")
    res = {"kind": kind}
    if kind in ("read_csv", "read_parquet"):
        import pyarrow.parquet  # noqa: F401

        reset_peak_rss()
        t = time.perf_counter()
        frames = read_raw(study, kind.split("_")[1], clients)
        res["seconds"] = time.perf_counter() - t
        res["rows"] = int(sum(len(f) for f in frames.values()))
        res["peak"] = peak_rss_bytes()
        return res
    if kind in ("load_csv", "load_parquet"):
        import pandera.pandas  # noqa: F401
        import pyarrow.parquet  # noqa: F401

        import exresearch.study  # noqa: F401
        from exresearch.study import load_study

        reset_peak_rss()
        t = time.perf_counter()
        st = load_study(study)
        res["seconds"] = time.perf_counter() - t
        res["rows"] = int(sum(len(st.survey(c)) for c in st.clients))
        res["peak"] = peak_rss_bytes()
        return res
    # compute kinds: read (untimed), then time the pipeline
    import pingouin  # noqa: F401
    import statsmodels.formula.api  # noqa: F401

    import exresearch.aggregate  # noqa: F401

    surveys = read_raw(study, "parquet", clients)
    res["rows"] = int(sum(len(f) for f in surveys.values()))
    res["clients"] = len(surveys)
    scales = scale_spec()
    reset_peak_rss()
    res["rss_before"] = peak_rss_bytes()
    t, c = time.perf_counter(), time.process_time()
    if kind == "fast":
        stages, results = run_fast(surveys, scales)
    elif kind == "baseline":
        stages, results = run_baseline(surveys, scales)
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    res["seconds"] = time.perf_counter() - t
    res["cpu"] = time.process_time() - c  # all threads of the process
    res["peak"] = peak_rss_bytes()
    res["stages"] = stages
    if spec.get("dump"):
        keep = spec.get("dump_clients")
        if keep:
            results = {c: r for c, r in results.items() if c in keep}
        agr, units = _frames_from_results(results)
        dump = Path(spec["dump"])
        dump.mkdir(parents=True, exist_ok=True)
        agr.to_pickle(dump / f"{kind}_agreement.pkl")
        units.to_pickle(dump / f"{kind}_units.pkl")
    return res


def load_dump(dump: Path, kind: str) -> dict:
    """Read a worker's dumped statistics back into :func:`compare`'s input form."""
    import pandas as pd

    agr = pd.read_pickle(Path(dump) / f"{kind}_agreement.pkl")
    units = pd.read_pickle(Path(dump) / f"{kind}_units.pkl")
    out = {}
    for cid, a in agr.groupby("client", sort=False):
        u = units[units["client"] == cid].drop(columns="client")
        out[cid] = {"agreement": a.drop(columns="client").set_index("scale"), "units": u}
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        emit(worker(json.loads(sys.argv[2])))
    else:
        raise SystemExit("usage: measure.py worker '<json spec>'")
