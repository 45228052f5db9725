#!/bin/sh
# The harness run committed in validity/results.md (2026-12-02, on 2 cores shared with
# other builds): the loop, lagged-correlation, mediation, engagement and link claims with
# fewer clients than `make validity` uses (see the settings of each part in results.md).
PY=${1:-.venv/bin/python}
L="loop label (RI-CLPM, the reports' method)"
O="loop label (plain cross-lagged regression, before issue 15)"
LAG="lagged correlation CI"
MED="mediation: chain EX -> CX -> revenue growth"
ENG="engagement adds to CX beyond the drivers"
LINK="significant link EX ~ CX (one period)"
run() { # world units reps claims...
  w=$1; u=$2; n=$3; shift 3
  "$PY" -m exresearch.validity --reps "$n" --units "$u" --seed 1 --worlds "$w" --chunk 5 \
    --claims "$@" --out "validity/parts/$w-$u.md" > "validity/parts/$w-$u.log" 2>&1 &
}
run null 30 120 "$L" "$O" "$LAG" "$ENG" "$LINK"
run null 100 80 "$L" "$O"
run reciprocal 30 100 "$L" "$O" "$LAG"
run reciprocal 100 60 "$L"
run ex_leads 30 100 "$L"
run reciprocal_no_trend 30 100 "$L"
run no_business_path 30 150 "$MED"
wait
"$PY" -m exresearch.validity --merge validity/parts/*.csv --out validity/results.md
