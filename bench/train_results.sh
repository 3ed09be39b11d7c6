#!/usr/bin/env bash
# Reproduces MODEL_CARD.md: trains the default adapter (configs/smollm2-distill.yaml, ~80 min on 2 cores),
# evaluates it beside BM25, the embedding teachers and their fusions, the previous adapter and the
# untrained base on DL19, SciFact test and WikiQA test, then writes the card.
#   bash bench/train_results.sh [all|train|ship|eval|card]
# Run from the repository root after `./setup.sh dev` (mpnet rows: see README, Train); data from ../shared/data.
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
D=../shared/data
R=bench/results/quality
RUN=runs/smollm2-distill
PREVIOUS=af70cf7  # the commit whose adapter this recipe replaced
W=src/blockrank/weights/blockrank-smollm2-135m
what="${1:-all}"
mkdir -p $R runs

if [ "$what" = all ] || [ "$what" = train ]; then
  blockrank train configs/smollm2-distill.yaml --dry-run > $R/smollm2-distill.data.json
  blockrank train configs/smollm2-distill.yaml --resume
  cp $RUN/log.jsonl $R/smollm2-distill.log.jsonl
  cp $RUN/config.json $R/smollm2-distill.config.json
fi

if [ "$what" = all ] || [ "$what" = ship ]; then
  cp $RUN/final/{adapter_config.json,adapter_model.safetensors,blockrank.json} $W/
fi

if [ "$what" = all ] || [ "$what" = eval ]; then
  mkdir -p runs/previous-adapter
  for f in adapter_config.json adapter_model.safetensors blockrank.json; do
    git show "$PREVIOUS:$W/$f" > runs/previous-adapter/$f
  done
  declare -A SET=(
    [dl19]="--data $D/trec-dl/dl19-bm25-top100.jsonl --qrels $D/trec-dl/qrels.dl19-passage.txt --top-k 100"
    [scifact]="--data $D/scifact --top-k 100"
    [wikiqa]="--data $D/wikiqa/wikiqa-test.jsonl --qrels $D/wikiqa/qrels.wikiqa-test.txt"
  )
  opts="--max-doc-tokens 64 --dtype bf16"
  lane() {  # one evaluation set after another, on one core (an evaluation resumes where it stopped)
    for s in "$@"; do
      teachers=bm25,dense,bm25+minilm
      [ "$s" = dl19 ] && teachers=bm25,dense,mpnet,bm25+minilm,bm25+mpnet,minilm+mpnet,bm25+minilm+mpnet
      blockrank eval ${SET[$s]} --rerankers $teachers --teacher-dtype bf16 --out $R/$s-teachers
      blockrank eval ${SET[$s]} $opts --rerankers blockrank --model default --out $R/$s-new
      blockrank eval ${SET[$s]} $opts --rerankers blockrank --model runs/previous-adapter --out $R/$s-previous
      blockrank eval ${SET[$s]} $opts --rerankers blockrank --model SmolLM2-135M-Instruct --out $R/$s-base
    done
  }
  # two lanes of one thread each: SciFact (the longest) beside DL19 and WikiQA
  OMP_NUM_THREADS=1 lane scifact > runs/eval-scifact.log 2>&1 &
  scifact=$!
  OMP_NUM_THREADS=1 lane dl19 wikiqa > runs/eval-dl19-wikiqa.log 2>&1
  wait $scifact
fi

if [ "$what" = all ] || [ "$what" = card ]; then
  python bench/model_card.py > MODEL_CARD.md
fi
