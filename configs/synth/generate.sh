#!/usr/bin/env bash
# Synthetic training queries (issue #19, "new queries at scale"): SmolLM2-135M-Instruct writes one query per
# passage, BM25 over the same corpus gives each query 30 candidates (its source passage first), and the
# minilm+mpnet teacher, the best on the DL21 dev BM25 lists, scores them into configs/teacher-scores/; a query
# is kept only if the teacher puts its source passage in its top 3. Only ids, queries and scores are written
# here (configs/synth/NAME/{queries,lists}.jsonl, stats.json): recipes read the text from ../shared/data
# ({type: synth, path: configs/synth/NAME, passages: [...]}).
#
# Never a report set: every passage of DL19's two candidate lists is kept out of the MS MARCO pools by text (the
# pools use MS MARCO v2 ids, DL19 v1 ids, so the id exclusions, qrels included, match nothing there; the DL19-judged
# passages outside those lists have no text here and cannot be matched), and SciFact's test-judged abstracts are kept
# out of its corpus by id, as queries' sources and as neighbours. Resumable and extendable: rerun after a kill, or raise N
# (the same seed's larger sample extends the smaller one) to add queries in a later session.
# Queries up to the first 1,000 MS MARCO-pool and 500 ANTIQUE passages of each sample were written with one fixed set
# of three shots; later ones with five shots drawn per passage (synth.STYLES), claim-style for SciFact.
# msmarco-dense relists the msmarco set's queries (the same file, linked) with 30 neighbours each from a dense first
# stage (all-MiniLM-L6-v2): passages close in meaning, the negatives a strong retriever ranks high. (100 neighbours
# would triple the stored scores, already 7 MB a member for 30.)
# msmarco-qwen writes queries for another sample of the same pools with Qwen2.5-Coder-0.5B-Instruct (its six wheels
# installed, README) instead of SmolLM2-135M: passage-specific queries where SmolLM2's are often generic ("how to
# reduce blood pressure" is 66 of its 5,602).
#   bash configs/synth/generate.sh            # THREADS (default 1), N_MSMARCO / N_MSMARCO_QWEN / N_ANTIQUE / N_SCIFACT, and
#   SETS="msmarco antique scifact" (default; also msmarco-dense, msmarco-qwen; two jobs with different SETS can run side by side)
set -euo pipefail
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${THREADS:-1}
D=../shared/data
synth() { .venv/bin/blockrank synth --scores configs/teacher-scores --candidates 30 --keep-rank 3 \
  --teacher minilm+mpnet --dtype bf16 --batch-size 16 "$@"; }  # a set's own flags come last, so they win
msmarco_pools() { synth $D/trec-dl/dl21-judged.jsonl $D/trec-dl/dl21-{bm25,splade}-top100.jsonl $D/trec-dl/dl22-{bm25,splade}-top100.jsonl \
  --exclude $D/trec-dl/dl19-bm25-top100.jsonl --exclude $D/trec-dl/dl19-splade-top100.jsonl \
  --exclude $D/trec-dl/qrels.dl19-passage.txt "$@"; }  # the DL21/DL22 pools, every DL19 passage kept out (by text)
for set in ${SETS:-msmarco antique scifact}; do case $set in
msmarco) msmarco_pools --out configs/synth/synth-msmarco-pools -n "${N_MSMARCO:-6000}" --seed 1 ;;
msmarco-dense) mkdir -p configs/synth/synth-msmarco-dense  # the msmarco set's queries, relisted (nothing generated)
  ln -sfn ../synth-msmarco-pools/queries.jsonl configs/synth/synth-msmarco-dense/queries.jsonl
  msmarco_pools --out configs/synth/synth-msmarco-dense -n "${N_MSMARCO:-6000}" --seed 1 --first-stage dense ;;
msmarco-qwen) msmarco_pools --out configs/synth/synth-msmarco-qwen -n "${N_MSMARCO_QWEN:-2500}" --seed 4 \
  --generator Qwen2.5-Coder-0.5B-Instruct ;;
antique) synth $D/antique/antique-judged.jsonl --out configs/synth/synth-antique -n "${N_ANTIQUE:-1500}" --seed 2 ;;
scifact) synth $D/scifact --exclude $D/scifact/qrels/test.tsv --out configs/synth/synth-scifact -n "${N_SCIFACT:-1500}" \
  --seed 3 --style claim ;;
*) echo "unknown set $set (msmarco, msmarco-dense, msmarco-qwen, antique, scifact)" >&2; exit 2 ;;
esac; done
