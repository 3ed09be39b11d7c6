#!/usr/bin/env bash
# Reproduces MODEL_CARD.md: trains the shipped adapter and its lambda=0 ablation (in parallel, one
# core each: about an hour on a 2-core CPU), evaluates both next to BM25 and the untrained base with
# the same code and settings (about 20 min), then writes the card.
#   bash bench/train_results.sh [all|train|eval|card]
# Run from the repository root after `./setup.sh dev`; data from ../shared/data (see its README).
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
D=../shared/data
R=bench/results/train
what="${1:-all}"

if [ "$what" = all ] || [ "$what" = train ]; then
  mkdir -p runs
  blockrank train configs/smollm2-cpu.yaml > runs/train-main.log 2>&1 &
  blockrank train configs/smollm2-cpu.yaml aux_weight=0 out_dir=runs/smollm2-cpu-lm-only > runs/train-lm-only.log 2>&1 &
  wait
  mkdir -p $R src/blockrank/weights/blockrank-smollm2-135m
  cp runs/smollm2-cpu/final/{adapter_config.json,adapter_model.safetensors,blockrank.json} src/blockrank/weights/blockrank-smollm2-135m/
  for run in smollm2-cpu smollm2-cpu-lm-only; do
    cp runs/$run/log.jsonl $R/$run.log.jsonl
    cp runs/$run/config.json $R/$run.config.json
  done
fi

if [ "$what" = all ] || [ "$what" = eval ]; then
  # Every model scores with the same prompt, 64-token documents (the training budget), bf16, attention
  # mode. SciFact: the first 50 test queries, BM25 top-50 (CPU time).
  DL19="--data $D/trec-dl/dl19-bm25-top100.jsonl --qrels $D/trec-dl/qrels.dl19-passage.txt --top-k 100"
  SCIFACT="--data $D/scifact --top-k 50 --limit 50"
  opts="--max-doc-tokens 64 --dtype bf16"
  base=SmolLM2-135M-Instruct trained=runs/smollm2-cpu/final lmonly=runs/smollm2-cpu-lm-only/final
  mkdir -p $R
  ( blockrank eval $SCIFACT $opts --rerankers bm25,blockrank --model $base --out $R/scifact-base
    blockrank eval $DL19 $opts --rerankers bm25,blockrank --model $base --out $R/dl19-base
    blockrank eval $DL19 $opts --rerankers blockrank --model $lmonly --out $R/dl19-lm-only ) > $R/lane1.log 2>&1 &
  ( blockrank eval $SCIFACT $opts --rerankers blockrank --model $trained --out $R/scifact-trained
    blockrank eval $DL19 $opts --rerankers blockrank --model $trained --out $R/dl19-trained
    blockrank eval $SCIFACT $opts --rerankers blockrank --model $lmonly --out $R/scifact-lm-only ) > $R/lane2.log 2>&1 &
  wait
fi

if [ "$what" = all ] || [ "$what" = card ]; then
  python bench/model_card.py > MODEL_CARD.md
fi
