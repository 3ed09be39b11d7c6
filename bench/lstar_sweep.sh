#!/usr/bin/env bash
# Zero-shot l* sweep (issue #19): an untrained base (MODEL, default SmolLM2-135M-Instruct) read at each layer, on the
# held-out DL21 dev queries (configs/dl21-dev.qids) at 100 candidates from both first stages, one 64-token block per
# document, bf16.
#   [MODEL=NAME R=DIR] bash bench/lstar_sweep.sh [LAYERS]  (default 4 6 8 10 12 14 16 20; done evaluations are kept)
# Writes R/dl21-{bm25,splade}-lLAYER/summary.json (R default bench/results/lstar) and prints the table
# (bench/lstar_table.py). The bigger offline base: MODEL=Qwen2.5-Coder-0.5B-Instruct R=bench/results/lstar-qwen.
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
D=../shared/data
R=${R:-bench/results/lstar}
for layer in ${@:-4 6 8 10 12 14 16 20}; do
  for fs in bm25 splade; do
    out=$R/dl21-$fs-l$layer
    [ -f $out/summary.json ] || blockrank eval --data $D/trec-dl/dl21-$fs-top100.jsonl \
      --qrels $D/trec-dl/qrels.dl21-passage.txt --qids configs/dl21-dev.qids --top-k 100 --block-tokens 64 \
      --no-split --dtype bf16 --rerankers blockrank --model ${MODEL:-SmolLM2-135M-Instruct} --layer $layer --out $out
  done
done
python bench/lstar_table.py $R
