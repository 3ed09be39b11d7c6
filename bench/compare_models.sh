#!/usr/bin/env bash
# Report sets for one model at 100 candidates (issue #19's ship rule): DL19 BM25 and SPLADE++ top 100, SciFact test,
# one 64-token block per document, bf16, as bench/depth_results.sh does; a summary that exists is kept.
#   bash bench/compare_models.sh TAG MODEL [SETS]    (SETS default: "dl19-bm25 dl19-splade scifact")
# Writes bench/results/depth/SET-TAG/ and gathers its summary into bench/results/depth/evaluations.json (bench/gathered.py);
# run it for the default and a candidate on the same machine.
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
source bench/sets.sh  # D and the report sets, SET[name]
tag=$1 model=$2
for s in ${3:-dl19-bm25 dl19-splade scifact}; do
  python bench/gathered.py --has bench/results/depth $s-$tag || blockrank eval ${SET[$s]} --top-k 100 --block-tokens 64 --no-split --dtype bf16 \
    --rerankers blockrank ${model:+--model $model} --out bench/results/depth/$s-$tag
done
python bench/gathered.py bench/results/depth
