"""Run the exresearch benchmarks and write ``bench/results.md`` (``make bench``).

Usage::

    .venv/bin/python bench/run.py                  # every case, full size -> bench/results.md
    .venv/bin/python bench/run.py --quick          # small sizes, 1 repeat -> bench/results-partial.md
    .venv/bin/python bench/run.py --cases B3,B4    # some cases -> bench/results-partial.md

Cases: B1 batch build vs papermill + nbconvert loop; B2 rebuild (nothing changed, one
client changed); B3 measurement at 1,000,000 respondents vs a per-client pandas /
pingouin / statsmodels loop; B4 growth of B3 with size; B5 per-report overhead.
Every timed case runs in a fresh subprocess; see ``common.py``, ``measure.py`` and
``build_cases.py``. Benchmark data are generated with a fixed seed into a temporary
folder (never into ``data/``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_cases  # noqa: E402
import cells  # noqa: E402
import measure  # noqa: E402
from common import (  # noqa: E402
    BENCH_DIR,
    GIB,
    fmt_bytes,
    fmt_seconds,
    fmt_stat,
    loadavg,
    machine_info,
    run_worker,
    summarise,
)

SEED = 20261125
ALL_CASES = ("B3", "B3L", "B4", "B1", "B2", "B5", "B7")

#: Sizes per preset. ``tiny`` is for the smoke test, ``quick`` for development.
PRESETS = {
    "full": {
        "repeats": 3,
        "b3": {"n_clients": 50, "units": 200, "per_unit": 100},
        "b3_baseline_clients": 2,
        "b4_units": (2, 20, 200),  # x 50 clients x 100 respondents: 10k, 100k, 1M
        "b4_baseline_max_rows": 100_000,  # baseline measured in full up to this size
        "demo": dict(build_cases.DEMO_ARGS),
        "b1_build_repeats": 3,
        "b1_baseline_repeats": 1,
        "b2_nochange_repeats": 5,
        "b2_change_repeats": 3,
    },
    "quick": {
        "repeats": 1,
        "b3": {"n_clients": 10, "units": 20, "per_unit": 100},
        "b3_baseline_clients": 2,
        "b4_units": (2, 20),
        "b4_baseline_max_rows": 100_000,
        "demo": {"n_clients": 3, "n_units": 8, "n_periods": 2, "seed": 20261122},
        "b1_build_repeats": 1,
        "b1_baseline_repeats": 1,
        "b2_nochange_repeats": 2,
        "b2_change_repeats": 1,
    },
    "tiny": {
        "repeats": 1,
        "b3": {"n_clients": 3, "units": 6, "per_unit": 20},
        "b3_baseline_clients": 1,
        "b4_units": (2, 4),
        "b4_baseline_max_rows": 10_000,
        "demo": {"n_clients": 2, "n_units": 6, "n_periods": 2, "seed": 20261122},
        "b1_build_repeats": 1,
        "b1_baseline_repeats": 1,
        "b2_nochange_repeats": 1,
        "b2_change_repeats": 1,
    },
}
#: Targets from issue 11.
B3_TARGET_SECONDS = 5.0
B3_TARGET_BYTES = 2 * GIB
B3_TARGET_RATIO = 10.0
B3L_TARGET_RATIO = 2.0  # issue 19: load_study within 2x the raw parquet read
B1_TARGET_RATIO = 8.0
B1_FLOOR_RATIO = 4.0
B2_TARGET_SECONDS = 2.0
#: Once timed tests (tests/test_linkage.py): statistics on 30 units, 1,000 resamples.
B7_STAT_TARGET_SECONDS = 1.0
#: B1/B2 compare like with like: the papermill + nbconvert loop prints no PDFs, so the
#: timed builds don't either; one extra build with PDFs (the default when Chromium is
#: installed) measures their cost separately.
B1_BUILD_ARGS = ("--no-pdf",)
B2_TARGET_SHARE = 0.03


def _log(msg: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def _measure_worker(spec: dict) -> dict:
    return run_worker([str(BENCH_DIR / "measure.py"), "worker", json.dumps(spec)])


# --------------------------------------------------------------------------- B3
def _data(work: Path, n_clients: int, units: int, per_unit: int) -> dict:
    root = work / f"measure-{n_clients}x{units}x{per_unit}-s{SEED}"
    return measure.make_study(root, n_clients=n_clients, units=units, per_unit=per_unit,
                              seed=SEED)


def case_b3(p: dict, work: Path) -> dict:
    size = p["b3"]
    paths = _data(work, **size)
    n_clients = size["n_clients"]
    subset = measure.client_ids(n_clients)[: p["b3_baseline_clients"]]
    dump = work / "b3-dump"
    shutil.rmtree(dump, ignore_errors=True)
    fast, base = [], []
    for i in range(p["repeats"]):
        _log(f"B3 fast run {i + 1}")
        fast.append(_measure_worker({"kind": "fast", "study": str(paths["parquet"]),
                                     "dump": str(dump) if i == 0 else None,
                                     "dump_clients": subset}))
        _log(f"B3 baseline run {i + 1} ({len(subset)} of {n_clients} clients)")
        base.append(_measure_worker({"kind": "baseline", "study": str(paths["parquet"]),
                                     "clients": subset,
                                     "dump": str(dump) if i == 0 else None}))
    diffs = measure.compare(measure.load_dump(dump, "fast"), measure.load_dump(dump, "baseline"))
    total_rows = fast[0]["rows"]
    factor = total_rows / base[0]["rows"]
    reading = {}
    for kind in ("read_csv", "read_parquet", "load_csv", "load_parquet"):
        fmt = kind.split("_")[1]
        runs = []
        for i in range(p["repeats"]):
            _log(f"B3 {kind} run {i + 1}")
            runs.append(_measure_worker({"kind": kind, "study": str(paths[fmt])}))
        reading[kind] = runs
    bytes_on_disk = {fmt: sum(f.stat().st_size for f in Path(path).rglob("survey.*"))
                     for fmt, path in paths.items()}
    return {"size": size, "rows": total_rows, "fast": fast, "baseline": base,
            "baseline_clients": len(subset), "extrapolation": factor, "diffs": diffs,
            "reading": reading, "bytes_on_disk": bytes_on_disk}


def case_b3l(p: dict, work: Path) -> dict:
    """load_study (read + full validation) vs a raw pandas read, parquet, B3's study.

    Only the two reading kinds run (no scoring, no baseline loop), alternating, each in
    a fresh process: ``--cases B3L`` measures issue 19's target on its own.
    """
    size = p["b3"]
    root = work / f"measure-{size['n_clients']}x{size['units']}x{size['per_unit']}-s{SEED}"
    paths = measure.make_study(root, **size, seed=SEED, formats=("parquet",))
    runs = {"read_parquet": [], "load_parquet": []}
    for i in range(p["repeats"]):
        for kind, out in runs.items():
            _log(f"B3L {kind} run {i + 1}")
            out.append(_measure_worker({"kind": kind, "study": str(paths["parquet"])}))
    return {"size": size, "rows": runs["load_parquet"][0]["rows"], "reading": runs}


def _b3l_ratio(r: dict) -> tuple[float, float, float]:
    med = {k: summarise([x["seconds"] for x in v])["median"] for k, v in r["reading"].items()}
    return med["load_parquet"], med["read_parquet"], med["load_parquet"] / med["read_parquet"]


def md_b3l(r: dict) -> list[str]:
    load, raw, ratio = _b3l_ratio(r)
    lines = ["## B3L load_study at scale", "",
             f"B3's study ({r['rows']:,} respondents, 40 items, {r['size']['n_clients']} "
             "clients) as parquet: `pandas.read_parquet` of every survey file vs "
             "`exresearch.load_study` (study.yml, every survey and outcomes file, hashes, "
             "every check of the input contract). Runs alternate, each in a fresh process.",
             "", "| input | time | peak RSS |", "|---|---|---|"]
    names = {"read_parquet": "parquet, `pandas.read_parquet` (raw)",
             "load_parquet": "parquet, `exresearch.load_study` (read + full validation)"}
    for kind, runs in r["reading"].items():
        lines.append(f"| {names[kind]} | {fmt_stat(summarise([x['seconds'] for x in runs]))} "
                     f"| {fmt_bytes(max(x['maxrss'] for x in runs))} |")
    lines += ["", f"**load_study / raw read: {ratio:.2f}x** (medians); target <= "
              f"{B3L_TARGET_RATIO:.0f}x: {_ok(ratio <= B3L_TARGET_RATIO)}. A file that passes "
              "one vectorised numpy pass over its numeric block skips pandera; a file with a "
              "problem goes through the pandera schema, which reports every failing cell "
              "(tests/test_study_formats.py checks both paths find the same problems).", ""]
    return lines


def case_b4(p: dict, work: Path, b3: dict | None) -> dict:
    out = []
    for units in p["b4_units"]:
        size = {**p["b3"], "units": units}
        paths = _data(work, **size)
        if b3 is not None and size == b3["size"]:
            fast, base, factor = b3["fast"], b3["baseline"], b3["extrapolation"]
        else:
            fast = []
            for i in range(p["repeats"]):
                _log(f"B4 fast, {units} units per client, run {i + 1}")
                fast.append(_measure_worker({"kind": "fast", "study": str(paths["parquet"])}))
            base = []
            factor = 1.0
            rows = fast[0]["rows"]
            clients = None
            if rows > p["b4_baseline_max_rows"]:
                k = max(1, int(size["n_clients"] * p["b4_baseline_max_rows"] / rows))
                clients = measure.client_ids(size["n_clients"])[:k]
            _log(f"B4 baseline, {units} units per client")
            base.append(_measure_worker({"kind": "baseline", "study": str(paths["parquet"]),
                                         "clients": clients}))
            factor = rows / base[0]["rows"]
        out.append({"size": size, "rows": fast[0]["rows"], "fast": fast, "baseline": base,
                    "extrapolation": factor})
    return {"sizes": out}


# --------------------------------------------------------------------------- B1, B2, B5
def case_b1(p: dict, work: Path) -> dict:
    bwork = work / "build"
    shutil.rmtree(bwork, ignore_errors=True)
    bwork.mkdir(parents=True)
    nb_dir, nb_source = build_cases.notebooks_dir(bwork)
    study = build_cases.make_demo(bwork, p["demo"])
    reports = build_cases.report_list(study)
    site = bwork / "site"
    builds = []
    baselines = []
    # baseline first, then the builds (the last build's site is what B2 and B5 use)
    for i in range(p["b1_baseline_repeats"]):
        _log(f"B1 baseline loop run {i + 1} ({len(reports)} reports)")
        baselines.append(build_cases.run_baseline(study, nb_dir, bwork, reports))
    pdf = None
    if build_cases.pdf_default():
        _log("B1 exresearch build --force with PDFs (the default), once")
        pdf = build_cases.run_build(study, site, nb_dir, force=True)
    for i in range(p["b1_build_repeats"]):
        _log(f"B1 exresearch build --force {' '.join(B1_BUILD_ARGS)} run {i + 1}")
        builds.append(build_cases.run_build(study, site, nb_dir, force=True,
                                            extra=B1_BUILD_ARGS))
    durations = build_cases.manifest_durations(site)
    return {"nb_dir": str(nb_dir), "nb_source": nb_source, "reports": len(reports),
            "jobs": os.cpu_count() or 1,
            "study": str(study), "site": str(site), "builds": builds, "baseline": baselines,
            "pdf_build": pdf, "durations": durations, "demo": p["demo"], "work": str(bwork)}


def case_b2(p: dict, work: Path, b1: dict) -> dict:
    study, site = Path(b1["study"]), Path(b1["site"])
    nb_dir = Path(b1["nb_dir"])
    # other engineers may edit exresearch/ while the benchmark runs, which changes the
    # source fingerprint; one untimed rebuild first makes the site current again
    _log("B2 settling rebuild (untimed)")
    settle = build_cases.run_build(study, site, nb_dir, force=False, extra=B1_BUILD_ARGS)
    nochange = []
    for i in range(p["b2_nochange_repeats"]):
        _log(f"B2 no-change rebuild run {i + 1}")
        nochange.append(build_cases.run_build(study, site, nb_dir, force=False,
                                              extra=B1_BUILD_ARGS))
    # mtime only: content hashes decide, so this is still "nothing changed"
    client = sorted(p.name for p in (study / "clients").iterdir() if p.is_dir())[0]
    target = next((study / "clients" / client).glob("survey.*"))
    os.utime(target)
    _log("B2 rebuild after touching a file's mtime")
    touched = build_cases.run_build(study, site, nb_dir, force=False, extra=B1_BUILD_ARGS)
    changed = []
    for i in range(p["b2_change_repeats"]):
        rel = build_cases.change_one_answer(study, client)
        _log(f"B2 rebuild after changing one answer in {rel}, run {i + 1}")
        changed.append(build_cases.run_build(study, site, nb_dir, force=False,
                                             extra=B1_BUILD_ARGS))
    durations = build_cases.manifest_durations(site)
    return {"settle": settle, "nochange": nochange, "touched": touched, "changed": changed,
            "client": client,
            "changed_file": rel, "durations_after_change": durations}


def case_b5(p: dict, work: Path, b1: dict | None) -> dict:
    if b1 is None:
        bwork = work / "build-b5"
        shutil.rmtree(bwork, ignore_errors=True)
        bwork.mkdir(parents=True)
        nb_dir, nb_source = build_cases.notebooks_dir(bwork)
        study = build_cases.make_demo(bwork, p["demo"])
        site = bwork / "site"
        build_cases.run_build(study, site, nb_dir, force=True, extra=B1_BUILD_ARGS)
    else:
        study, site, bwork = Path(b1["study"]), Path(b1["site"]), Path(b1["work"])
        nb_dir, nb_source = Path(b1["nb_dir"]), b1["nb_source"]
    client = sorted(q.name for q in (study / "clients").iterdir() if q.is_dir())[0]
    nb = nb_dir / build_cases.NOTEBOOKS["client"]
    env = build_cases._env(nb_dir)
    cold = []
    for i in range(p["repeats"]):
        _log(f"B5 ordinary kernel run {i + 1}")
        spec = {"notebook": str(nb), "work": str(bwork / "b5"),
                "parameters": {"study_path": str(study), "client_id": client,
                               "output_dir": str(bwork / "b5" / "tables")}}
        cold.append(run_worker([str(BENCH_DIR / "build_cases.py"), "b5", json.dumps(spec)],
                               env=env))
    start = []
    imports = []
    for _ in range(p["repeats"]):
        start.append(run_worker(["-c", "import json; print(json.dumps({}))"], env=env)["wall"])
        r = run_worker([str(BENCH_DIR / "build_cases.py"), "b5_imports",
                        json.dumps({"notebook": str(nb)})], env=env)
        imports.append(r["imports_plain"])
    nbconvert = [build_cases.nbconvert_cli_seconds(bwork / "b5" / "report.ipynb", env)
                 for _ in range(p["repeats"])]
    # the same report inside the build: forked from the zygote (per-cell durations)
    built_nb = site / "notebooks" / f"client-{client}.ipynb"
    zyg = build_cases.cell_split(built_nb)
    zyg["duration"] = build_cases.manifest_durations(site)[f"client-{client}"]
    return {"client": client, "nb_source": nb_source, "cold": cold, "python_start": start,
            "imports_plain": imports, "nbconvert_cli": nbconvert, "zygote": zyg}


def case_b7(p: dict, work: Path, b1: dict | None) -> dict:
    """One client report cell by cell (plain and profiled), and single statistics."""
    if b1 is None:
        bwork = work / "build-b7"
        bwork.mkdir(parents=True, exist_ok=True)
        nb_dir, nb_source = build_cases.notebooks_dir(bwork)
        study, site = build_cases.make_demo(bwork, p["demo"]), None
    else:
        study, bwork = Path(b1["study"]), Path(b1["work"])
        nb_dir, nb_source, site = Path(b1["nb_dir"]), b1["nb_source"], Path(b1["site"])
    client = sorted(q.name for q in (study / "clients").iterdir() if q.is_dir())[0]
    _log(f"B7 client report of {client}, plain and profiled")
    res = run_worker([str(BENCH_DIR / "cells.py"), str(study), "--client", client,
                      "--notebooks", str(nb_dir), "--work", str(bwork / "b7"), "--json"],
                     env=build_cases._env(nb_dir))
    forked = None
    if site is not None:  # the same report in B1's last build (forked kernel, 2 at once)
        forked = [c["duration"] for c in cells.durations(
            site / "notebooks" / f"client-{client}.ipynb")]
    _log("B7 statistics")
    stats = run_worker([str(BENCH_DIR / "cells.py"), "statistics",
                        json.dumps({"repeats": 5 * p["repeats"]})])
    return {"client": client, "nb_source": nb_source, "report": res, "forked": forked,
            "statistics": stats}


# --------------------------------------------------------------------------- markdown
def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "n/a"


def _ok(flag: bool) -> str:
    return "met" if flag else "**missed**"


def md_machine(info: dict, preset: str, cases, started: str, finished: str) -> list[str]:
    mem = fmt_bytes(info["memory"]) if info["memory"] else "unknown"
    v = info["versions"]
    lines = [
        "# exresearch benchmarks",
        "",
        f"Generated by `.venv/bin/python bench/run.py"
        f"{'' if preset == 'full' else ' --preset ' + preset}`"
        f"{' (`make bench`)' if preset == 'full' else ''}, preset **{preset}**, cases "
        f"{', '.join(cases)}; started {started}, finished {finished} (UTC).",
        "Every timed case runs in a fresh subprocess; medians and ranges are over repeated "
        "runs, and every ratio compares with a baseline measured in the same run.",
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu_model']}, {info['cores']} cores ({info['usable_cores']} usable)",
        f"- Memory: {mem}",
        f"- OS: {info['os']}; Python {info['python']}",
        f"- Load average (1, 5, 15 min) at start: {info['loadavg_start']}; at end: "
        f"{info.get('loadavg_end', 'n/a')}. The machine was shared with other work, so "
        "timings are noisy; the ranges show how much.",
        f"- `OPENBLAS_CORETYPE`: {info['openblas_coretype']}",
        f"- exresearch commit {info['commit']}; every case ran a copy of `exresearch/` "
        f"(and of the notebooks) taken at the start of the run, source sha256 "
        f"{info.get('source_sha', 'n/a')[:12]}",
        "- Versions: " + ", ".join(f"{k} {v[k]}" for k in v),
        "",
    ]
    return lines


def md_b3(r: dict) -> list[str]:
    fast = summarise([x["seconds"] for x in r["fast"]])
    base_sub = summarise([x["seconds"] for x in r["baseline"]])
    base_full = summarise([x["seconds"] * r["extrapolation"] for x in r["baseline"]])
    peak = max(x["peak"] for x in r["fast"])
    peak_proc = max(x["maxrss"] for x in r["fast"])
    data_rss = min(x["rss_before"] for x in r["fast"])
    ratio = base_full["median"] / fast["median"]
    worst = base_full["min"] / fast["max"]
    s = r["size"]
    n_units = s["n_clients"] * s["units"]
    lines = [
        "## B3 measurement at scale",
        "",
        f"{r['rows']:,} respondents, 40 items in 8 scales of 5 (1-5, 4 reverse-coded items, "
        f"3% of answers missing at random), {n_units:,} units in {s['n_clients']} clients "
        f"(about {s['per_unit']} respondents per unit, some units below the group size of "
        f"{measure.MIN_GROUP_SIZE}), one period. Per client: `score_scales`, `agreement` "
        "(Cronbach's alpha, ICC(1), ICC(2), rwg(j) mean and median per scale) and "
        "`aggregate_units` (n, mean, SD, % favourable, suppression per unit and scale). "
        "Input already in memory (reading is timed separately below); one process, one core.",
        "",
        "| | time | peak RSS |",
        "|---|---|---|",
        f"| exresearch | {fmt_stat(fast)}; CPU time "
        f"{fmt_seconds(summarise([x.get('cpu', float('nan')) for x in r['fast']])['median'])}"
        f" | {fmt_bytes(peak)} (whole process: "
        f"{fmt_bytes(peak_proc)}; before the timed part, with the interpreter, libraries "
        f"and survey frames in memory: {fmt_bytes(data_rss)}) |",
        f"| baseline, {r['baseline_clients']} of {s['n_clients']} clients (measured) | "
        f"{fmt_stat(base_sub)} | |",
        f"| baseline, all clients (linear extrapolation x{r['extrapolation']:.2f} by "
        f"respondents) | {fmt_stat(base_full)} | |",
        "",
        f"**Speed-up: {ratio:.0f}x** (median baseline extrapolated / median exresearch; "
        f"fastest baseline run / slowest exresearch run: {worst:.0f}x); "
        f"target >= {B3_TARGET_RATIO:.0f}x: {_ok(ratio >= B3_TARGET_RATIO)}. "
        f"Time target < {B3_TARGET_SECONDS:.0f} s: {_ok(fast['median'] < B3_TARGET_SECONDS)}. "
        f"Memory target < 2 GiB: {_ok(peak_proc < B3_TARGET_BYTES)}.",
        "",
        "The baseline is the straightforward per-client code: reverse-code and score with "
        "pandas (`mean(axis=1)` with the half-the-items rule), `pingouin.cronbach_alpha("
        "nan_policy='listwise')` per scale, `statsmodels` `ols('score ~ C(unit_id)').fit()` "
        "+ `anova_lm` per scale for ICC(1)/ICC(2), a `groupby` loop over units for rwg(j), "
        "and a pandas `groupby` for the unit means, SD, % favourable and suppression. "
        f"It ran on {r['baseline_clients']} of {s['n_clients']} equally sized clients "
        "because the full run would take many minutes; its cost is linear in the number "
        "of clients, so it is extrapolated by the respondent count.",
        "",
        "Where the time goes (median run, seconds summed over clients):",
        "",
        "| exresearch stage | s | baseline stage (measured subset) | s |",
        "|---|---|---|---|",
    ]
    fs = sorted(r["fast"], key=lambda x: x["seconds"])[len(r["fast"]) // 2]["stages"]
    bs = sorted(r["baseline"], key=lambda x: x["seconds"])[len(r["baseline"]) // 2]["stages"]
    fk, bk = list(fs), list(bs)
    for i in range(max(len(fk), len(bk))):
        a = f"`{fk[i]}` | {fs[fk[i]]:.2f}" if i < len(fk) else " | "
        b = f"{bk[i]} | {bs[bk[i]]:.2f}" if i < len(bk) else " | "
        lines.append(f"| {a} | {b} |")
    d = r["diffs"]
    lines += [
        "",
        "Both compute the same numbers: on the baseline's clients the largest absolute "
        "differences are " + ", ".join(f"{k} {v:.1e}" for k, v in d.items()) + ".",
        "",
        "Reading the files (all clients; not part of the time above):",
        "",
        "| input | time | peak RSS | on disk |",
        "|---|---|---|---|",
    ]
    names = {"read_csv": "CSV, `pandas.read_csv` (raw)",
             "read_parquet": "parquet, `pandas.read_parquet` (raw)",
             "load_csv": "CSV, `exresearch.load_study` (read + full validation)",
             "load_parquet": "parquet, `exresearch.load_study` (read + full validation)"}
    for kind, runs in r["reading"].items():
        st = summarise([x["seconds"] for x in runs])
        fmt = kind.split("_")[1]
        lines.append(f"| {names[kind]} | {fmt_stat(st)} | "
                     f"{fmt_bytes(max(x['maxrss'] for x in runs))} | "
                     f"{fmt_bytes(r['bytes_on_disk'][fmt])} |")
    med = {k: summarise([x["seconds"] for x in v])["median"] for k, v in r["reading"].items()}
    raw = med["read_csv"] / med["read_parquet"]
    lines += ["", f"Raw reading: parquet is {raw:.1f}x as fast as CSV. Through `load_study` "
              f"(which also validates every value with pandera) CSV takes "
              f"{fmt_seconds(med['load_csv'])} and parquet {fmt_seconds(med['load_parquet'])}"
              f", so validation, not parsing, dominates loading "
              f"({fmt_seconds(med['load_csv'] - med['read_csv'])} and "
              f"{fmt_seconds(med['load_parquet'] - med['read_parquet'])} beyond raw reading).",
              ""]
    return lines


def md_b4(r: dict) -> list[str]:
    lines = [
        "## B4 how cost grows",
        "",
        f"B3 with {r['sizes'][0]['size']['n_clients']} clients and about "
        f"{r['sizes'][0]['size']['per_unit']} respondents per unit at growing numbers of "
        "units per client. Baseline measured in full up to "
        "100,000 respondents, extrapolated by respondents where marked.",
        "",
        "| respondents | units | exresearch | per respondent | marginal per added "
        "respondent | baseline | per respondent | speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    prev = None
    for s in r["sizes"]:
        f = summarise([x["seconds"] for x in s["fast"]])
        marginal = ("" if prev is None else
                    f"{(f['median'] - prev[1]) / (s['rows'] - prev[0]) * 1e6:.2f} us")
        prev = (s["rows"], f["median"])
        b = summarise([x["seconds"] * s["extrapolation"] for x in s["baseline"]])
        units = s["size"]["n_clients"] * s["size"]["units"]
        ex = "" if s["extrapolation"] == 1 else f" (extrapolated x{s['extrapolation']:.1f})"
        lines.append(
            f"| {s['rows']:,} | {units:,} | {fmt_stat(f)} | "
            f"{f['median'] / s['rows'] * 1e6:.2f} us | {marginal} | {fmt_stat(b)}{ex} | "
            f"{b['median'] / s['rows'] * 1e6:.0f} us | {_ratio(b['median'], f['median'])} |")
    if len(r["sizes"]) >= 2:
        a, z = r["sizes"][0], r["sizes"][-1]
        fa = summarise([x["seconds"] for x in a["fast"]])["median"]
        fz = summarise([x["seconds"] for x in z["fast"]])["median"]
        lines += ["", f"From {a['rows']:,} to {z['rows']:,} respondents "
                  f"({z['rows'] / a['rows']:.0f}x) exresearch's time grows {fz / fa:.1f}x. "
                  "Per respondent the cost falls at small sizes because a fixed cost per "
                  "client and scale (Python calls, argument checks, small allocations: "
                  f"{a['size']['n_clients']} clients x 8 scales x 3 functions) dominates "
                  "there; the marginal cost of each added respondent stays about constant, "
                  "i.e. time = fixed cost + linear term.", ""]
    return lines


def md_b1(r: dict) -> list[str]:
    builds = summarise([x["wall"] for x in r["builds"]])
    base = summarise([x["wall"] for x in r["baseline"]])
    ratio = base["median"] / builds["median"]
    per = r["baseline"][0]["per_report"]
    pm = sum(v["papermill"] for v in per.values())
    nbc = sum(v["nbconvert"] for v in per.values())
    d = r["durations"]
    demo = r["demo"]
    lines = [
        "## B1 batch build of the demo study",
        "",
        f"Demo study as `make demo` writes it (`simulate_study`, {demo['n_clients']} clients x "
        f"{demo['n_units']} units x {demo['n_periods']} periods, seed {demo['seed']}), "
        f"{r['reports']} reports ({demo['n_clients']} client reports, synthesis, data "
        f"quality). Notebooks: {r['nb_source']}.",
        "",
        "| | wall time | runs |",
        "|---|---|---|",
        f"| `exresearch build STUDY --out SITE --force {' '.join(B1_BUILD_ARGS)}` "
        "(defaults otherwise: one job per core, zygote kernels, in-process HTML, Excel "
        f"workbooks) | {fmt_stat(builds)} | {builds['n']} |",
        f"| baseline: sequential shell loop, `papermill` then `jupyter nbconvert --to html` "
        f"per report | {fmt_stat(base)} | {base['n']} |",
        "",
        f"**Speed-up: {ratio:.2f}x**; floor {B1_FLOOR_RATIO:.0f}x: "
        f"{_ok(ratio >= B1_FLOOR_RATIO)}, target {B1_TARGET_RATIO:.0f}x: "
        f"{_ok(ratio >= B1_TARGET_RATIO)}.",
        "",
        *_md_pdf(r, builds["median"]),
        f"In the baseline loop, papermill took {pm:.1f} s and nbconvert {nbc:.1f} s in total "
        f"(per report: papermill {pm / len(per):.1f} s, nbconvert {nbc / len(per):.1f} s). "
        f"In the last build, report execution times (papermill, forked kernel, 2 at once) "
        f"sum to {sum(v for v in d.values() if v):.1f} s: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in d.items() if v) + ".",
        "",
    ]
    jobs = r.get("jobs") or 1
    bound = sum(v for v in d.values() if v) / jobs
    lines += [
        f"Bound: with {jobs} reports at a time, the build cannot take less than the "
        f"report execution times spread over {jobs} lanes, {bound:.1f} s here, so against "
        f"this baseline it cannot exceed {base['median'] / bound:.1f}x even with no other "
        f"overhead. The remaining {builds['median'] - bound:.1f} s of the median build are "
        "the CLI start, validating the study, starting the zygote, rendering each report's "
        "HTML in the driver (see B5) and publishing the site. The build's 2 lanes need "
        "both cores; while other processes compete for them (see the load average) it "
        "loses proportionally more than the one-process-at-a-time baseline.",
        "",
    ]
    if base["n"] == 1:
        lines += ["The baseline ran once (it is the expensive side); the builds ran "
                  f"{builds['n']} times.", ""]
    return lines


def _md_pdf(r: dict, build_median: float) -> list[str]:
    """The like-for-like note and, when Chromium is there, the cost of the PDFs."""
    text = ("Like with like: the loop writes an executed notebook and an HTML page per "
            "report, so the timed builds run with `--no-pdf` (they still write the index, "
            "the tables, the Excel workbooks and the briefs, which the loop does not).")
    pdf = r.get("pdf_build")
    if pdf is None:
        return [text + " The build prints no PDFs by default here (no Chromium or playwright), so they were not measured.", ""]
    more = pdf["wall"] - build_median
    diff = (f", {fmt_seconds(more)} more than the median build without" if more > 0 else
            f" against {fmt_seconds(build_median)} for the median build without (less: the "
            "load changed between runs more than the PDFs cost)")
    return [text + f" One build with PDFs (the default with Chromium installed: every "
            f"report and brief printed by headless Chromium) took {fmt_seconds(pdf['wall'])}"
            f" (n=1){diff}.", ""]


def md_b2(r: dict, b1: dict) -> list[str]:
    full = summarise([x["wall"] for x in b1["builds"]])["median"]
    nc = summarise([x["wall"] for x in r["nochange"]])
    ch = summarise([x["wall"] for x in r["changed"]])
    d = b1["durations"]
    c = r["client"]
    expect = sum(d.get(k) or 0 for k in (f"client-{c}", "synthesis", "data-quality"))
    executed = sorted({x["executed"] for x in r["changed"]})
    share = nc["median"] / full
    lines = [
        "## B2 incremental rebuild",
        "",
        "`exresearch build STUDY --out SITE` (no `--force`) right after B1's last build; "
        "wall time of the whole command, interpreter start included.",
        "",
        "| change | wall time | reports executed | share of full build |",
        "|---|---|---|---|",
        f"| nothing | {fmt_stat(nc)} | "
        f"{', '.join(str(x) for x in sorted({x['executed'] for x in r['nochange']}))} | "
        f"{100 * share:.1f}% |",
        f"| mtime of `clients/{c}/survey.*` touched, content unchanged | "
        f"{fmt_seconds(r['touched']['wall'])} | {r['touched']['executed']} | "
        f"{100 * r['touched']['wall'] / full:.1f}% |",
        f"| one answer changed in `{r['changed_file']}` | {fmt_stat(ch)} | "
        f"{', '.join(map(str, executed))} | {100 * ch['median'] / full:.0f}% |",
        "",
        f"Nothing changed: target < {B2_TARGET_SECONDS:.0f} s and < "
        f"{100 * B2_TARGET_SHARE:.0f}% of the full build ({fmt_seconds(full)}): "
        f"{_ok(nc['median'] < B2_TARGET_SECONDS and share < B2_TARGET_SHARE)}. "
        "The build hashes the input files and compares with the previous build's state "
        "before importing pandas or starting a kernel.",
        "",
        f"(An untimed rebuild ran first and executed {r['settle']['executed']} report(s): "
        "a non-zero count means the exresearch source changed between B1 and B2, since "
        "other work was going on in the repository.)",
        "",
        f"One client changed: that client's report, synthesis and data quality are "
        f"re-executed (executed: {', '.join(map(str, executed))}). Their execution times in "
        f"the full build sum to {expect:.1f} s (run 2 at a time); the rebuild took "
        f"{fmt_seconds(ch['median'])} including validation of the study, starting the "
        "zygote and publishing the site.",
        "",
    ]
    return lines


def md_b5(r: dict) -> list[str]:
    cold = r["cold"]

    def med(key):
        return summarise([x[key] for x in cold])["median"]

    total = med("papermill_total")
    setup = med("cells_setup")
    ana = med("cells_analysis")
    ready = med("kernel_ready")
    kimp = med("kernel_imports")
    py = summarise(r["python_start"])["median"]
    plain = summarise(r["imports_plain"])["median"]
    nbc = summarise(r["nbconvert_cli"])["median"]
    html = med("html_inprocess")
    z = r["zygote"]
    report_total = total + nbc
    rest = total - ready - kimp
    lines = [
        "## B5 per-report overhead",
        "",
        f"One client report (`client_report.ipynb`, client `{r['client']}`; notebooks: "
        f"{r['nb_source']}), {len(cold)} run(s) with an ordinary kernel.",
        "",
        "Fixed cost of a report with an ordinary kernel, measured directly:",
        "",
        "| step | time |",
        "|---|---|",
        f"| start an ipykernel until it answers | {fmt_seconds(ready)} |",
        f"| run the notebook's import statements in it | {fmt_seconds(kimp)} |",
        f"| the same imports in a plain Python process (for reference) | "
        f"{fmt_seconds(plain)} |",
        f"| a bare `python` process start (for reference) | {fmt_seconds(py)} |",
        f"| `jupyter nbconvert --to html` of the executed notebook | {fmt_seconds(nbc)} |",
        "",
        f"Of the report's {fmt_seconds(report_total)} (papermill {fmt_seconds(total)} + "
        f"nbconvert {fmt_seconds(nbc)}), kernel start and imports are "
        f"{fmt_seconds(ready + kimp)} ({100 * (ready + kimp) / report_total:.0f}%), the "
        f"nbconvert process {100 * nbc / report_total:.0f}%, and the analysis itself with "
        f"papermill's bookkeeping about {fmt_seconds(rest)} "
        f"({100 * rest / report_total:.0f}%).",
        "",
        "Per-cell durations recorded by papermill (setup = the cells with import "
        "statements, which in the real notebooks also check parameters and load the study):",
        "",
        "| | ordinary kernel (papermill default) | forked from the build's zygote |",
        "|---|---|---|",
        f"| kernel start + papermill overhead | {fmt_seconds(total - setup - ana)} | "
        f"{fmt_seconds(z['duration'] - z['setup'] - z['analysis'])} |",
        f"| setup cells | {fmt_seconds(setup)} | {fmt_seconds(z['setup'])} |",
        f"| analysis cells | {fmt_seconds(ana)} | {fmt_seconds(z['analysis'])} |",
        f"| total execution | {fmt_seconds(total)} | {fmt_seconds(z['duration'])} |",
        f"| HTML export | `jupyter nbconvert` process {fmt_seconds(nbc)} | in the build "
        f"driver {fmt_seconds(html)} |",
        "",
        "The zygote column is from B1's last build, where 2 reports run at once and share "
        "the 2 cores. Analysis cells of an ordinary kernel also carry first-use costs "
        "(modules the libraries import lazily, matplotlib's set-up) that a forked kernel "
        "has already paid in the zygote.",
        "",
        "What the build does about it: a zygote process imports numpy, pandas, scipy, "
        "statsmodels, pingouin, matplotlib, seaborn, pyarrow, pandera, ipykernel and "
        "exresearch once; every report's kernel is `os.fork`ed from it, so it is still a "
        "fresh, isolated process that exits after its report, but pays neither the "
        "interpreter start nor the imports. Kernels talk over IPC sockets (no TCP port "
        "races), run with one BLAS thread each, one per core, and HTML is rendered in the "
        "driver instead of a `jupyter nbconvert` process per report.",
        "",
    ]
    return lines


def md_b7(r: dict) -> list[str]:
    report = r["report"]
    forked = r.get("forked")
    lines = [
        "## B7 cell costs of a client report",
        "",
        f"`client_report.ipynb` for `{r['client']}` (notebooks: {r['nb_source']}), run by "
        "`bench/cells.py` with papermill in an ordinary kernel: per code cell, papermill's "
        "duration" + (" and, from B1's last build, the same cell in a kernel forked from "
        "the zygote (2 reports at once)" if forked else "") + "; then the heaviest cells' "
        "functions under cProfile (a second, profiled run; profiling slows Python code, "
        "so only the durations are timings). A cell's time includes drawing and encoding "
        "its figures (the inline backend does that after the cell's code).",
        "",
    ]
    body = cells.to_markdown(report, forked=forked)
    lines += body
    lines += [
        "Single statistics at a report's size (30 units, 1,000 bootstrap resamples, "
        "medians after one untimed first call):",
        "",
        "| statistic | time | target |",
        "|---|---|---|",
    ]
    names = {"correlation_table_30": "`linkage.correlation_table`, 3 x 2 pairs, Pearson "
                                     "and Spearman",
             "relative_weights_30": "`linkage.relative_weights`, 5 drivers"}
    for key, name in names.items():
        st = summarise(r["statistics"][key])
        lines.append(f"| {name} | {fmt_stat(st)} | < {B7_STAT_TARGET_SECONDS:.0f} s: "
                     f"{_ok(st['median'] < B7_STAT_TARGET_SECONDS)} |")
    lines += [
        "",
        "(Both were timed tests in tests/test_linkage.py until issue 20; the guide keeps "
        "speed out of tests.)",
        "",
    ]
    return lines


def md_summary(results: dict) -> list[str]:
    """One row per target of issue 11: the figure, the target and whether it is met."""
    rows = []
    if "B3" in results:
        r = results["B3"]
        fast = summarise([x["seconds"] for x in r["fast"]])["median"]
        base = summarise([x["seconds"] * r["extrapolation"] for x in r["baseline"]])["median"]
        peak = max(x["maxrss"] for x in r["fast"])
        rows += [
            (f"B3 time, {r['rows']:,} respondents", fmt_seconds(fast),
             f"< {B3_TARGET_SECONDS:.0f} s",
             fast < B3_TARGET_SECONDS),
            ("B3 peak memory", fmt_bytes(peak), "< 2 GiB", peak < B3_TARGET_BYTES),
            ("B3 speed-up vs pandas/pingouin/statsmodels loop", f"{base / fast:.0f}x",
             f">= {B3_TARGET_RATIO:.0f}x", base / fast >= B3_TARGET_RATIO),
        ]
    if "B3L" in results:
        load, raw, ratio = _b3l_ratio(results["B3L"])
        rows.append((f"B3L load_study, {results['B3L']['rows']:,} respondents (parquet), vs "
                     "raw read", f"{fmt_seconds(load)} vs {fmt_seconds(raw)}: {ratio:.2f}x",
                     f"<= {B3L_TARGET_RATIO:.0f}x", ratio <= B3L_TARGET_RATIO))
    if "B4" in results and len(results["B4"]["sizes"]) >= 2:
        a, z = results["B4"]["sizes"][-2], results["B4"]["sizes"][-1]
        ta = summarise([x["seconds"] for x in a["fast"]])["median"]
        tz = summarise([x["seconds"] for x in z["fast"]])["median"]
        growth = (tz / ta) / (z["rows"] / a["rows"])
        rows.append((f"B4 growth {a['rows']:,} -> {z['rows']:,} respondents",
                     f"time x{tz / ta:.1f} for data x{z['rows'] / a['rows']:.0f}",
                     "near-linear (at most linear)", growth <= 1.25))
    if "B1" in results:
        r = results["B1"]
        b = summarise([x["wall"] for x in r["builds"]])["median"]
        base = summarise([x["wall"] for x in r["baseline"]])["median"]
        rows.append(("B1 build vs papermill + nbconvert loop", f"{base / b:.2f}x",
                     f">= {B1_TARGET_RATIO:.0f}x (floor {B1_FLOOR_RATIO:.0f}x)",
                     base / b >= B1_TARGET_RATIO))
        if "B2" in results:
            nc = summarise([x["wall"] for x in results["B2"]["nochange"]])["median"]
            rows.append(("B2 rebuild, nothing changed",
                         f"{fmt_seconds(nc)} ({100 * nc / b:.1f}% of the build)",
                         f"< {B2_TARGET_SECONDS:.0f} s and < {100 * B2_TARGET_SHARE:.0f}%",
                         nc < B2_TARGET_SECONDS and nc / b < B2_TARGET_SHARE))
    if not rows:
        return []
    lines = ["## Targets", "", "| case | measured | target | |", "|---|---|---|---|"]
    lines += [f"| {a} | {m} | {t} | {_ok(ok)} |" for a, m, t, ok in rows]
    return [*lines, ""]


def write_results(path: Path, info: dict, preset: str, cases, results: dict, started: str,
                  finished: str, errors: dict) -> None:
    lines = md_machine(info, preset, cases, started, finished)
    lines += md_summary(results)
    if "B3" in results:
        lines += md_b3(results["B3"])
    if "B3L" in results:
        lines += md_b3l(results["B3L"])
    if "B4" in results:
        lines += md_b4(results["B4"])
    if "B1" in results:
        lines += md_b1(results["B1"])
    if "B2" in results and "B1" in results:
        lines += md_b2(results["B2"], results["B1"])
    if "B5" in results:
        lines += md_b5(results["B5"])
    if "B7" in results:
        lines += md_b7(results["B7"])
    for case, err in errors.items():
        lines += [f"## {case}: failed", "", "```", err.strip()[-3000:], "```", ""]
    path.write_text("\n".join(lines))


# --------------------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    ap.add_argument("--preset", choices=sorted(PRESETS), default=None,
                    help="size preset (full by default, quick with --quick; tiny for tests)")
    ap.add_argument("--cases", default=",".join(ALL_CASES),
                    help=f"comma-separated cases among {','.join(ALL_CASES)}")
    ap.add_argument("--out", type=Path, default=None,
                    help="results file (default bench/results.md for a full run of every "
                         "case, bench/results-partial.md otherwise)")
    ap.add_argument("--work", type=Path, default=None,
                    help="folder for generated data and sites (default: a temp folder; "
                         "measurement data are cached there between runs)")
    ap.add_argument("--json", type=Path, default=None, help="also write raw results as JSON")
    args = ap.parse_args(argv)
    cases = [c.strip().upper() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in cases if c not in ALL_CASES]
    if bad:
        ap.error(f"--cases must be among {','.join(ALL_CASES)}, but {','.join(bad)} was passed")
    args.cases = [c for c in ALL_CASES if c in cases]
    args.preset = args.preset or ("quick" if args.quick else "full")
    if args.out is None:
        full = args.preset == "full" and args.cases == list(ALL_CASES)
        args.out = BENCH_DIR / ("results.md" if full else "results-partial.md")
    if args.work is None:
        args.work = Path(tempfile.gettempdir()) / "exresearch-bench"
    return args


def snapshot_code(work: Path) -> str:
    """Copy ``exresearch/`` into ``work`` and make every subprocess import that copy.

    Other people may edit the package while the benchmark runs; the build fingerprints
    its source, so an edit between two builds would make a "nothing changed" rebuild
    re-execute everything, and the cases would measure different code. The copy comes
    first on ``PYTHONPATH`` (the editable install's finder comes after the path);
    ``EXRESEARCH_ROOT`` keeps the repository root for ``requirements.lock``. Returns the
    sha256 of the copied source.
    """
    import hashlib

    from common import ROOT

    snap = work / "snapshot"
    shutil.rmtree(snap, ignore_errors=True)
    shutil.copytree(ROOT / "exresearch", snap / "exresearch",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    h = hashlib.sha256()
    for f in sorted((snap / "exresearch").rglob("*")):
        if f.is_file():
            h.update(f.relative_to(snap).as_posix().encode() + b"\0" + f.read_bytes())
    paths = [str(snap), *[x for x in os.environ.get("PYTHONPATH", "").split(os.pathsep) if x]]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    os.environ.setdefault("EXRESEARCH_ROOT", str(ROOT))
    return h.hexdigest()


def main(argv=None) -> int:
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "EXRESEARCH_ROOT")}
    try:
        return _main(argv)
    finally:  # snapshot_code changed them; callers (tests) get their environment back
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _main(argv=None) -> int:
    args = parse_args(argv)
    p = PRESETS[args.preset]
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    info = machine_info()
    info["source_sha"] = snapshot_code(work)
    _log(f"preset {args.preset}, cases {','.join(args.cases)}, work {work}, load {loadavg()}")
    results, errors = {}, {}
    t0 = time.perf_counter()
    for case in args.cases:
        _log(f"{case} ...")
        try:
            if case == "B3":
                results[case] = case_b3(p, work)
            elif case == "B3L":
                results[case] = case_b3l(p, work)
            elif case == "B4":
                results[case] = case_b4(p, work, results.get("B3"))
            elif case == "B1":
                results[case] = case_b1(p, work)
            elif case == "B2":
                if "B1" not in results:
                    results["B1"] = case_b1(p, work)
                results[case] = case_b2(p, work, results["B1"])
            elif case == "B5":
                results[case] = case_b5(p, work, results.get("B1"))
            elif case == "B7":
                results[case] = case_b7(p, work, results.get("B1"))
        except Exception as exc:  # noqa: BLE001 - record it and carry on with other cases
            import traceback

            errors[case] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            _log(f"{case} failed: {exc}")
    info["loadavg_end"] = loadavg()
    finished = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    write_results(args.out, info, args.preset, args.cases, results, started, finished, errors)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results,
                                         "errors": errors}, indent=1, default=str))
    _log(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
