#!/usr/bin/env bash
# Issue #22's speed targets on this machine, one run each (docs/lab-notes.md, "Speed on a Xeon with AMX"). Run it on a
# quiet machine: nothing else may share the cores.
#   bash bench/speed_targets.sh [L8_MODEL] [BEFORE_CHECKOUT]
# L8_MODEL (e.g. adapters/smollm2-l8) adds the l* = 8 rows; BEFORE_CHECKOUT, a checkout of an older commit, adds
# the "before" rows from its own library and bench/speed.py. SUFFIX (default: xeon) names the result files.
set -x
export HF_HUB_OFFLINE=1
py=.venv/bin/python
s=${SUFFIX:-xeon}
P="--passages ../shared/data/trec-dl/dl19-bm25-top100.jsonl --block-tokens 512 --ns 100"
V="--ns 20,100,500 --repeats 3"
lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-120; uptime
if [ -n "${2:-}" ]; then
  PYTHONPATH=$2/src $py $2/bench/speed.py $P --configs sparse,full --repeats 3 --name speed-same-text-dl19-$s-before
  PYTHONPATH=$2/src $py $2/bench/speed.py $V --configs sparse,full --max-seconds 60 --name speed-vs-prefill-$s-before
fi
$py bench/speed.py $P --configs sparse,full --repeats 3 --name speed-same-text-dl19-$s
$py bench/speed.py $P --configs sparse,full --repeats 3 --compile --name speed-same-text-dl19-$s-compiled  # its own prefill: one run
$py bench/speed.py $V --configs sparse,full --max-seconds 60 --name speed-vs-prefill-$s
$py bench/speed.py $V --configs sparse --compile --name speed-vs-prefill-$s-compiled
if [ -n "${1:-}" ]; then
  $py bench/speed.py $V --configs sparse --model "$1" --name speed-vs-prefill-$s-l8
  $py bench/speed.py $V --configs sparse --compile --model "$1" --name speed-vs-prefill-$s-l8-compiled
fi
$py bench/profile_passes.py --name profile-$s
$py bench/profile_passes.py --compile --passes blockrank --name profile-$s-compiled
uptime
