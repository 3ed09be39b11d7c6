#!/usr/bin/env bash
# Whole documents (issue #20): the default reranker with documents split into passages against the same reranker
# reading only each document's first block (--no-split), on the report sets at 100 candidates.
#   bash bench/split_results.sh [dl19|scifact|wikiqa|table] [DTYPE]   (DTYPE: fp32 default; bf16 where the CPU has it)
# Two one-thread lanes (split and no-split side by side, so both see the same machine load); THREADS=2 runs them
# one after the other on two threads instead (a quiet machine; the split run finishes in half the time). Run from the
# repository root after `./setup.sh dev`; data from ../shared/data. An evaluation whose summary.json exists is kept.
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
source bench/sets.sh  # D and the report sets, SET[name]
R=bench/results/split
what="${1:-dl19}"
dtype="${2:-fp32}"
mkdir -p $R
ev() {  # ev OUT ARGS...: one evaluation of the default reranker, unless it is complete
  local out=$1; shift
  [ -f "$out/summary.json" ] || OMP_NUM_THREADS=${THREADS:-1} blockrank eval "$@" --top-k 100 --dtype "$dtype" --rerankers blockrank \
    --out "$out" > "$out.log" 2>&1
}
pair() {  # pair SET: split and no-split side by side (one after the other with THREADS=2)
  if [ "${THREADS:-1}" = 1 ]; then
    ev $R/$1-split-$dtype ${SET[$1]} &
    ev $R/$1-first-block-$dtype ${SET[$1]} --no-split
    wait
  else
    ev $R/$1-first-block-$dtype ${SET[$1]} --no-split
    ev $R/$1-split-$dtype ${SET[$1]}
  fi
}
case "$what" in
  dl19) pair dl19-bm25; pair dl19-splade ;;
  scifact|wikiqa) pair "$what" ;;
  table) ;;
  *) echo "unknown: $what" >&2; exit 2 ;;
esac
python bench/split_table.py $R
