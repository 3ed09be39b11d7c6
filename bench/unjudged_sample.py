"""Print the passages no assessor judged that a reranker puts in its top 10, for a sample of queries, to be read.

Issue #19 asks whether such passages are relevant ones the judgement pool missed or look-alikes the model is drawn
to. Make the run files with `blockrank eval ... --qids QIDS --rerankers blockrank,minilm --out DIR`, then

    python bench/unjudged_sample.py CANDIDATES QRELS QIDS DIR [RERANKER ...]

It prints, per query, each reranker's count of unjudged and of grade >= 2 passages in its top 10, and the first
reranker's top 10 with grade ('?' = unjudged), first-stage rank and the start of the text; then the totals as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from blockrank.eval import read_candidates, read_qrels, read_run


def main(candidates: str, qrels_path: str, qids_path: str, runs: str, rerankers: list[str]) -> None:
    qrels = read_qrels(qrels_path)
    lists = {c.qid: c for c in read_candidates(candidates)}
    ranked = {name: read_run(Path(runs) / f"{name}.trec") for name in rerankers}
    totals = {name: {"unjudged": 0, "relevant": 0, "top10": 0} for name in rerankers}
    for qid in Path(qids_path).read_text().split():
        judged, found = qrels.get(qid, {}), lists[qid]
        text = {d.id: d.text for d in found.documents}
        first_stage = {d.id: i + 1 for i, d in enumerate(found.documents)}
        print(f"\n=== {qid}: {found.query}")
        for name in rerankers:
            top = [docid for docid, _ in ranked[name][qid][:10]]
            unjudged = sum(d not in judged for d in top)
            relevant = sum(judged.get(d, 0) >= 2 for d in top)
            totals[name] = {
                "unjudged": totals[name]["unjudged"] + unjudged,
                "relevant": totals[name]["relevant"] + relevant,
                "top10": totals[name]["top10"] + len(top),
            }
            print(f"  {name}: unjudged {unjudged}/{len(top)}, grade >= 2 {relevant}/{len(top)}")
        for i, (docid, _) in enumerate(ranked[rerankers[0]][qid][:10], 1):
            print(f"   #{i} [{judged.get(docid, '?')}] first stage #{first_stage[docid]}: {text[docid][:200]}")
    print(json.dumps(totals))


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    main(*sys.argv[1:5], sys.argv[5:] or ["blockrank", "minilm"])
