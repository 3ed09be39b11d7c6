#!/usr/bin/env bash
# Reproduces MODEL_CARD.md's "Quality at depth" (issue #19): every report set at 100 candidates with plain and
# condensed nDCG@10, Judged@10 and W/T/L against the given order; the teachers on the DL21 dev lists; a depth
# curve on DL19 SPLADE++; the stored teacher scores, the training run and the same tables after it.
#   [NAME=smollm2-depth-sci] bash bench/depth_results.sh [all|teachers|before|label|train|after|ship|card]
# NAME picks the recipe (configs/NAME.yaml, default smollm2-depth); its "after" evaluations are named after-SUFFIX,
# where SUFFIX is what NAME adds to smollm2-depth (after-sci for smollm2-depth-sci).
# Run from the repository root after `./setup.sh dev` and the mpnet wheels (README, Train); data from ../shared/data.
# An evaluation that has finished (its summary, fresh or in evaluations.json) is kept as it is; git keeps only
# bench/results/depth/evaluations.json (bench/gathered.py), not the per-evaluation directories.
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
source bench/sets.sh  # D and the report sets, SET[name]
R=bench/results/depth
NAME=${NAME:-smollm2-depth}
AFTER=after${NAME#smollm2-depth}
RUN=runs/$NAME
BEFORE=adapters/smollm2-scifact-mean  # the default this recipe continues and is compared with (shipped at cd01e7a)
W=src/blockrank/weights/blockrank-smollm2-135m
what="${1:-all}"
mkdir -p $R runs
# one 64-token block per document, as in training and in every number of this report (split passages: bench/split_results.sh)
opts="--top-k 100 --block-tokens 64 --no-split --dtype bf16 --teacher-dtype bf16"
ev() {  # ev OUT ARGS...: one evaluation, unless it is complete
  local out=$1; shift
  python bench/gathered.py --has "$(dirname "$out")" "$(basename "$out")" || blockrank eval "$@" --out "$out"
  python bench/gathered.py "$(dirname "$out")"
}
report() {  # report NAME MODEL RERANKERS: every report set and the depth curve, in two one-thread lanes (SciFact the longest)
  OMP_NUM_THREADS=1 ev $R/scifact-$1 ${SET[scifact]} $opts --rerankers $3 --model "$2" \
    > runs/report-$1-scifact.log 2>&1 &
  local scifact=$!
  for s in dl19-splade dl19-bm25 wikiqa; do
    OMP_NUM_THREADS=1 ev $R/$s-$1 ${SET[$s]} $opts --rerankers $3 --model "$2"
  done
  OMP_NUM_THREADS=1 ev $R/depth-$1 ${SET[dl19-splade]} $opts --rerankers $3 --model "$2" \
    --depths 10,20,30,50,100
  wait $scifact
}

if [ "$what" = all ] || [ "$what" = teachers ]; then  # teacher candidates on the held-out DL21 queries
  for fs in bm25 splade; do
    ev $R/teachers-dev-$fs --data $D/trec-dl/dl21-$fs-top100.jsonl --qrels $D/trec-dl/qrels.dl21-passage.txt \
      --qids configs/dl21-dev.qids --top-k 100 --teacher-dtype bf16 \
      --rerankers given,minilm,mpnet,minilm+mpnet,given+minilm,given+mpnet,given+minilm+mpnet
  done
fi

if [ "$what" = all ] || [ "$what" = before ]; then
  report before $BEFORE given,minilm,blockrank  # the baselines come from here
fi

if [ "$what" = all ] || [ "$what" = label ]; then
  blockrank label configs/$NAME.yaml  # resumable; the files are committed under configs/teacher-scores/
fi

if [ "$what" = all ] || [ "$what" = train ]; then
  blockrank train configs/$NAME.yaml --dry-run > $R/$NAME.data.json
  blockrank train configs/$NAME.yaml --resume
  cp $RUN/log.jsonl $R/$NAME.log.jsonl
  cp $RUN/config.json $R/$NAME.config.json
fi

if [ "$what" = all ] || [ "$what" = after ]; then
  report $AFTER $RUN/final given,blockrank
fi

if [ "$what" = ship ]; then  # only when the ship rule holds (MODEL_CARD.md): it replaces the packaged default
  cp $RUN/final/{adapter_config.json,adapter_model.safetensors,blockrank.json} $W/
fi

if [ "$what" = all ] || [ "$what" = card ]; then
  python bench/model_card.py > MODEL_CARD.md
fi
