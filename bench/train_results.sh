#!/usr/bin/env bash
# Reproduces MODEL_CARD.md: trains configs/smollm2-scifact.yaml (~80 min on 2 cores), which continues the
# previous default (configs/smollm2-continue.yaml, itself continuing configs/smollm2-distill.yaml), ships the
# mean of the two adapters (`blockrank average`), evaluates it beside BM25, the embedding teachers and
# their fusions, the run's own adapter, the two earlier defaults and the untrained base on DL19, SciFact test
# and WikiQA test, then writes the card.
#   bash bench/train_results.sh [all|train|ship|eval|card]
# Run from the repository root after `./setup.sh dev` (mpnet rows: see README, Train); data from ../shared/data.
# An evaluation whose summary.json exists is kept as it is (its latency column names the machine that made it).
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
D=../shared/data
R=bench/results/quality
NAME=smollm2-scifact
RUN=runs/$NAME
PREVIOUS=adapters/smollm2-continue  # the default this recipe continues, averages with and replaced (shipped at 3c68d68)
FIRST=adapters/smollm2-cpu          # the first shipped default (configs/smollm2-cpu.yaml, af70cf7)
W=src/blockrank/weights/blockrank-smollm2-135m
what="${1:-all}"
mkdir -p $R runs

if [ "$what" = all ] || [ "$what" = train ]; then
  blockrank train configs/$NAME.yaml --dry-run > $R/$NAME.data.json
  blockrank train configs/$NAME.yaml --resume
  cp $RUN/log.jsonl $R/$NAME.log.jsonl
  cp $RUN/config.json $R/$NAME.config.json
fi

if [ "$what" = all ] || [ "$what" = ship ]; then
  blockrank average $PREVIOUS $RUN/final runs/shipped
  cp runs/shipped/{adapter_config.json,adapter_model.safetensors,blockrank.json} $W/
fi

if [ "$what" = all ] || [ "$what" = eval ]; then
  declare -A SET=(
    [dl19]="--data $D/trec-dl/dl19-bm25-top100.jsonl --qrels $D/trec-dl/qrels.dl19-passage.txt --top-k 100"
    [scifact]="--data $D/scifact --top-k 100"
    [wikiqa]="--data $D/wikiqa/wikiqa-test.jsonl --qrels $D/wikiqa/qrels.wikiqa-test.txt"
  )
  opts="--block-tokens 64 --dtype bf16"
  ev() {  # ev OUT ARGS...: one evaluation, unless it is complete
    local out=$1; shift
    python bench/gathered.py --has $R "$(basename "$out")" || blockrank eval "$@" --out "$out"
  }
  lane() {  # one evaluation set after another, on one core (an evaluation resumes where it stopped)
    for s in "$@"; do
      teachers=given,minilm,bm25+minilm
      [ "$s" = dl19 ] && teachers=given,minilm,mpnet,bm25+minilm,bm25+mpnet,minilm+mpnet,bm25+minilm+mpnet
      ev $R/$s-teachers ${SET[$s]} --rerankers $teachers --teacher-dtype bf16
      ev $R/$s-new ${SET[$s]} $opts --rerankers blockrank --model default
      ev $R/$s-run ${SET[$s]} $opts --rerankers blockrank --model $RUN/final
      ev $R/$s-previous ${SET[$s]} $opts --rerankers blockrank --model $PREVIOUS
      ev $R/$s-first ${SET[$s]} $opts --rerankers blockrank --model $FIRST
      ev $R/$s-base ${SET[$s]} $opts --rerankers blockrank --model SmolLM2-135M-Instruct
    done
  }
  # two lanes of one thread each: SciFact (the longest) beside DL19 and WikiQA
  OMP_NUM_THREADS=1 lane scifact > runs/eval-scifact.log 2>&1 &
  scifact=$!
  OMP_NUM_THREADS=1 lane dl19 wikiqa > runs/eval-dl19-wikiqa.log 2>&1
  wait $scifact
  python bench/gathered.py $R
fi

if [ "$what" = all ] || [ "$what" = card ]; then
  python bench/model_card.py > MODEL_CARD.md
fi
