"""B6, the synthesis's moderator tests and leave-one-out at 100 and 300 clients, before and after.

The two cells of ``notebooks/synthesis.ipynb`` that grew faster than the number of
clients: the moderator tests (``moderators.moderator_tests``: one meta-regression per
client characteristic, each with a 1,000-permutation test) and the leave-one-out
sensitivity table (``meta.leave_one_out``: k reduced meta-analyses). Their inputs are
built once per study with this checkout (as the notebook builds them: unit panels,
EX-CX correlation per client, client characteristics) and pickled; then each ``--code``
checkout runs both calls in a fresh process (``PYTHONPATH``), in turn, ``--repeats``
times (A, B, A, B, ...), and the CPU time (``time.process_time``) of each call is
recorded. The results of every checkout are compared with the first's: the largest
absolute difference over the numeric columns and whether the permutation p-values are
identical.

Usage::

    nice -n 10 .venv/bin/python bench/b6_moderators.py --studies /work/studies \\
        --sizes 100,300 --code before=/tmp/before --code after=. --repeats 2

Inputs and results live in ``$TMPDIR/exresearch-bench/b6-moderators/``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT  # noqa: E402

#: Run in a fresh process with PYTHONPATH set to the measured checkout.
CHILD = r"""
import json, pickle, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from exresearch import meta, moderators
import exresearch
inp = pickle.load(open(sys.argv[1], "rb"))
out = {"exresearch": exresearch.__file__}
t = time.process_time()
mod = moderators.moderator_tests(inp["mod_data"], continuous=inp["continuous"],
                                 categorical=inp["categorical"], method="REML",
                                 seed=inp["seed"])
out["moderators_cpu"] = time.process_time() - t
t = time.process_time()
loo = meta.leave_one_out(inp["focus"], label="client", method="REML")
out["loo_cpu"] = time.process_time() - t
pickle.dump({"mod": mod, "loo": loo}, open(sys.argv[2], "wb"))
print(json.dumps(out))
"""


def prepare(study_path: Path, dst: Path) -> Path:
    """Pickle the inputs of the two cells for ``study_path`` (computed with this checkout)."""
    if dst.is_file():
        return dst
    from exresearch import moderators as exmod
    from exresearch import report
    from exresearch.study import load_study

    study = load_study(study_path)
    roles = report.measure_roles(study.config)
    names = report.display_names(study)
    panels = report.client_panels(study, roles=roles, cache=False)
    means = report.all_unit_means(study, roles, panels=panels)
    focus = report.per_client_correlations(means, x=[roles.ex], y=[roles.primary_cx],
                                           names=names).dropna(subset=["r"])
    mod_names = {"log_revenue": "revenue (log)", "log_headcount": "headcount (log)",
                 "units": "number of units", "industry_group": "industry group"}
    chars = exmod.client_characteristics(study, panels=panels, names=names)
    data = focus[["client", "r", "n"]].merge(chars.rename(columns=mod_names), on="client")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "wb") as fh:
        pickle.dump({"mod_data": data, "focus": focus[["client", "r", "n"]].reset_index(drop=True),
                     "continuous": [mod_names[c] for c in ("log_revenue", "log_headcount",
                                                           "units")],
                     "categorical": mod_names["industry_group"],
                     "seed": study.config.seed}, fh)
    return dst


def run(code: Path, inputs: Path, result: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    load0 = os.getloadavg()[0]
    # cwd outside any checkout: ``python -c`` puts the working folder first on sys.path
    done = subprocess.run([sys.executable, "-c", CHILD, str(inputs), str(result)], env=env,
                          capture_output=True, text=True, check=True,
                          cwd=tempfile.gettempdir())
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "load": load0}


def compare(a: dict, b: dict) -> dict:
    import numpy as np

    diff = 0.0
    for key in ("mod", "loo"):
        x, y = a[key].select_dtypes("number"), b[key].select_dtypes("number")
        assert list(x.columns) == list(y.columns)
        d = np.abs(x.to_numpy(float) - y.to_numpy(float))
        same_nan = (np.isnan(x.to_numpy(float)) == np.isnan(y.to_numpy(float))).all()
        assert same_nan, key
        diff = max(diff, float(np.nanmax(d)) if d.size else 0.0)
    return {"max_abs_diff": diff,
            "p_perm_identical": bool(a["mod"]["p_perm"].equals(b["mod"]["p_perm"])),
            "verdicts_identical": a["mod"]["verdict"].tolist() == b["mod"]["verdict"].tolist()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", type=Path, required=True, help="folder holding b6-N studies")
    ap.add_argument("--sizes", default="100,300")
    ap.add_argument("--code", action="append", default=[], help="LABEL=DIR (repeatable)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    codes = [(c.split("=", 1)[0], Path(c.split("=", 1)[1]).resolve()) for c in args.code] \
        or [("this checkout", ROOT)]
    root = Path(tempfile.gettempdir()) / "exresearch-bench" / "b6-moderators"
    lines = ["| clients | checkout | repeat | moderator tests CPU | leave-one-out CPU | "
             "load average |", "|---|---|---|---|---|---|"]
    checks = []
    for n in [int(s) for s in args.sizes.split(",") if s]:
        inputs = prepare(args.studies / f"b6-{n}", root / f"inputs-{n}.pkl")
        results = {}
        for rep in range(1, args.repeats + 1):
            for label, code in codes:
                res_file = root / f"result-{n}-{label}.pkl"
                r = run(code, inputs, res_file)
                results[label] = pickle.loads(res_file.read_bytes())
                assert Path(r["exresearch"]).resolve().is_relative_to(code), r["exresearch"]
                lines.append(f"| {n} | {label} | {rep} | {r['moderators_cpu']:.2f} s | "
                             f"{r['loo_cpu']:.2f} s | {r['load']:.1f} |")
                print(lines[-1], flush=True)
        first = codes[0][0]
        for label, _ in codes[1:]:
            checks.append(f"{n} clients, {label} vs {first}: "
                          f"{json.dumps(compare(results[first], results[label]))}")
            print(checks[-1], flush=True)
    print("\n".join(lines + [""] + checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
