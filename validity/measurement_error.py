"""Table of validity/measurement_error.md from the harness CSVs of its two runs.

    python validity/measurement_error.py validity/measurement_error/null.csv \
        validity/measurement_error/reciprocal.csv

Prints one markdown row per event, world and size: the reports' loop label (RI-CLPM
without measurement error) beside the same verdict with each unit mean's known EX
sampling variance (``loop_direction(x_error=...)``), on the same simulated clients.
"""

import sys

import pandas as pd

from exresearch.validity import read_results

NEW = "loop label (RI-CLPM with known EX measurement error)"
OLD = "loop label (RI-CLPM, the reports' method)"
EVENTS = {
    "null": [("directional", "a direction named (FPR)"),
             ("ex_leads", "'EX leads' (FPR)"), ("cx_leads", "'CX leads' (FPR)"),
             ("reciprocal", "'reciprocal loop' (FPR)"),
             ("directional_at_0.01", "a direction named at 0.01 (FPR)"),
             ("ci_covers_zero_ex_to_cx", "95% CI of EX -> CX covers 0"),
             ("ci_covers_zero_cx_to_ex", "95% CI of CX -> EX covers 0")],
    "reciprocal": [("directional", "a direction named (power)"),
                   ("reciprocal", "'reciprocal loop' (power)"),
                   ("ex_leads", "'EX leads'"), ("cx_leads", "'CX leads'"),
                   ("says_not_reverse", "'not the other way round' (wrong)")],
}


def cell(d, claim, world, units, event):
    r = d[(d["claim"] == claim) & (d["world"] == world) & (d["n_units"] == units)
          & (d["event"] == event)]
    if r.empty:
        return "not run"
    r = r.iloc[0]
    return f"{100 * r['rate']:.1f}% ± {100 * r['mc_se']:.1f} ({int(r['n'])})"


def main(paths):
    d = pd.concat([read_results(p) for p in paths], ignore_index=True)
    print("| event | world | units | reports' RI-CLPM | with known EX error |")
    print("| --- | --- | --- | --- | --- |")
    for world, events in EVENTS.items():
        for event, label in events:
            for units in (30, 100):
                print(f"| {label} | {world} | {units} | {cell(d, OLD, world, units, event)} | "
                      f"{cell(d, NEW, world, units, event)} |")
    # fits the verdict could use (the rest: not converged or too few units -> 'no evidence')
    for world in EVENTS:
        for units in (30, 100):
            for claim in (OLD, NEW):
                r = d[(d["claim"] == claim) & (d["world"] == world) & (d["n_units"] == units)
                      & (d["event"] == "directional_at_0.05")]
                if len(r):
                    print(f"<!-- {world} {units} {claim[:40]}: usable fits "
                          f"{int(r.iloc[0]['n'])} of {int(r.iloc[0]['reps'])} -->")


if __name__ == "__main__":
    main(sys.argv[1:])
