#!/bin/sh
# The full harness (make validity): every part of exresearch.validity.PLAN, JOBS at a time,
# nice'd, each into validity/parts/<part>.csv in chunks; a part stopped early resumes where
# it stopped (--resume), a finished part is skipped. Then one validity/results.md from all
# parts. Usage: validity/run_parallel.sh [PYTHON] [JOBS] [PREFIX]
#   PREFIX runs only the parts whose name starts with it (loop-, pooled-, grid-, other-,
#   drivers-); each part's log (with its estimated time to go) is validity/parts/<part>.log.
PY=${1:-.venv/bin/python}; JOBS=${2:-2}; PREFIX=${3:-}
mkdir -p validity/parts
"$PY" -m exresearch.validity --list-parts --prefix "$PREFIX" |
  xargs -P "$JOBS" -I{} sh -c \
    'nice -n 10 "$0" -m exresearch.validity --part "$1" --resume >> "validity/parts/$1.log" 2>&1 \
     || echo "part $1 failed: see validity/parts/$1.log"' "$PY" {}
"$PY" -m exresearch.validity --merge validity/parts/*.csv --out validity/results.md \
  --power-table exresearch/loop_power.csv
