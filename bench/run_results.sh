#!/usr/bin/env bash
# Reproduces every number in docs/lab-notes.md and bench/results/ (on a 2-core CPU: about an hour).
# Run from the repository root after `./setup.sh dev`; data from ../shared/data (see its README).
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
D=../shared/data
R=bench/results
what="${1:-all}"

if [ "$what" = all ] || [ "$what" = speed ]; then
  # the group size of the document-major pass, then every pass of the default reranker at its default settings
  for g in 256 512 1024 2048 4096; do
    python bench/speed.py --ns 100,500 --configs sparse --batch-tokens $g --repeats 3 --name groups-$g
  done
  python bench/speed.py --ns 10,20,50,100,200,500,1000 --repeats 3 --max-seconds 60 --name speed-default
  # BlockRank against the full prefill alone; peak memory of the default pass alone; and the same real text
  # (whole DL19 passages) for BlockRank and the full prefill
  python bench/speed.py --ns 20,100,500 --configs sparse,full --repeats 3 --max-seconds 60 --name speed-vs-prefill
  python bench/speed.py --ns 100,500,1000 --configs sparse --repeats 1 --name speed-memory
  python bench/speed.py --passages $D/trec-dl/dl19-bm25-top100.jsonl --block-tokens 512 --ns 100 --configs sparse,full \
    --repeats 3 --name speed-same-text-dl19
fi

if [ "$what" = all ] || [ "$what" = precision ]; then
  python bench/precision.py --queries 10 --docs 100
fi

if [ "$what" = all ] || [ "$what" = load ]; then
  python bench/load.py --rate 20 --duration 60 --note "Nothing else ran on the machine."
  python bench/load.py --rate 20 --duration 150 --out bench/results/load-150.json  # does memory keep growing?
fi

if [ "$what" = all ] || [ "$what" = eval ]; then
  DL19="--data $D/trec-dl/dl19-bm25-top100.jsonl --qrels $D/trec-dl/qrels.dl19-passage.txt --dtype bf16"
  blockrank eval $DL19 --model SmolLM2-135M-Instruct --rerankers given,minilm,blockrank,blockrank-causal --top-k 100 --out $R/eval/dl19 --latency-ns 10,20,50,100
  blockrank eval $DL19 --model SmolLM2-135M-Instruct --rerankers given,blockrank,blockrank-decode,first,sliding --top-k 100 --limit 10 --out $R/eval/dl19-first10
  blockrank eval --data $D/scifact --rerankers given --top-k 100 --out $R/eval/scifact
  blockrank eval --data $D/scifact --first-stage dense --rerankers given --top-k 100 --out $R/eval/scifact-dense
  blockrank eval --data $D/scifact --model SmolLM2-135M-Instruct --rerankers given,minilm,blockrank,blockrank-causal --top-k 50 --limit 30 --dtype bf16 --out $R/eval/scifact-first30
  blockrank eval --data $D/scifact --model SmolLM2-135M-Instruct --rerankers given,sliding,blockrank-decode,first --top-k 50 --limit 10 --dtype bf16 --out $R/eval/scifact-first10
  python bench/gathered.py $R/eval
fi
python bench/report.py --update docs/lab-notes.md  # the measured sections; the ones written by hand stay
