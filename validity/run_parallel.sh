#!/bin/sh
# The full harness in parallel, one process per world and size (make validity runs it),
# then one results.md from the parts. Usage: validity/run_parallel.sh PYTHON REPS SEED
PY=${1:-.venv/bin/python}; REPS=${2:-200}; SEED=${3:-1}
mkdir -p validity/parts
pids=""
for w in null reciprocal ex_leads reciprocal_no_trend no_business_path; do
  for u in 30 100; do
    nice -n 10 "$PY" -m exresearch.validity --reps "$REPS" --units "$u" --seed "$SEED" \
      --worlds "$w" --chunk 10 --out "validity/parts/$w-$u.md" > "validity/parts/$w-$u.log" 2>&1 &
    pids="$pids $!"
  done
done
status=0
for p in $pids; do wait "$p" || status=1; done
[ $status -eq 0 ] || { echo "a part failed: see validity/parts/*.log"; exit 1; }
"$PY" -m exresearch.validity --merge validity/parts/*.csv --out validity/results.md
