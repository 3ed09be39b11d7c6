# The report sets (never trained on), as `blockrank eval` arguments; sourced by the bench scripts.
D=../shared/data
declare -A SET=(
  [dl19-bm25]="--data $D/trec-dl/dl19-bm25-top100.jsonl --qrels $D/trec-dl/qrels.dl19-passage.txt"
  [dl19-splade]="--data $D/trec-dl/dl19-splade-top100.jsonl --qrels $D/trec-dl/qrels.dl19-passage.txt"
  [scifact]="--data $D/scifact"
  [wikiqa]="--data $D/wikiqa/wikiqa-test.jsonl --qrels $D/wikiqa/qrels.wikiqa-test.txt"
)
