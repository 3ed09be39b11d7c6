"""How much SciFact test's judged abstracts in the old training pools lift a model's SciFact test score.

Until e254b7a every recipe's SciFact train source (BM25 top 50 for every train query, positives from the train
qrels) kept abstracts judged for test queries, as positives and as mined negatives, so the shipped default and every
run continued from it trained on some test-judged abstracts. This rebuilds those pools as they were and splits
SciFact test's queries into those with a judged abstract the pools held ("touched") and the rest ("clean"), then
compares models' stored nDCG@10 per query (bench/results/depth evaluations, 100 candidates) on each part.

    python bench/scifact_leak.py [TAG ...]    # candidates beside the default (default: smollm2-synth-175 avg-175)
Prints a table and writes bench/results/scifact-leak.json.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import gathered  # bench/, the script's own directory, is on sys.path

from blockrank.eval import read_beir
from blockrank.files import write_text_atomic
from blockrank.train import pools_from_beir

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
DEPTH = ROOT / "bench" / "results" / "depth"
TAGS = {"before": "the default (cd01e7a)", "smollm2-synth-175": "smollm2-synth-175", "avg-175": "avg-175 (mean of both)"}
BASELINES = {"given": "given BM25 order", "minilm": "MiniLM rerank"}


def main(tags: list[str]) -> None:
    train, test = read_beir(SCIFACT, "train"), read_beir(SCIFACT, "test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # train queries without a positive in the corpus are skipped, as in training
        pools = pools_from_beir(train.corpus, train.queries, train.qrels, top_k=50)  # no exclusion: the old pools
    positives = {d.id for p in pools for d in p.positives}
    held = positives | {d.id for p in pools for d in p.negatives}
    parts = {
        "judged abstract a train positive": {q for q, j in test.qrels.items() if positives & set(j)},
        "judged abstract in a train pool": {q for q, j in test.qrels.items() if held & set(j)},
    }
    parts["no judged abstract a train positive"] = set(test.qrels) - parts["judged abstract a train positive"]
    parts["clean (no judged abstract in a pool)"] = set(test.qrels) - parts["judged abstract in a train pool"]
    parts["all"] = set(test.qrels)
    per_query = {}
    for tag in ["before", *tags]:
        s = gathered.load(DEPTH, f"scifact-{tag}")
        if s is None:
            sys.exit(f"no SciFact evaluation scifact-{tag} under {DEPTH}: bash bench/compare_models.sh {tag} MODEL scifact")
        # the given BM25 order and the MiniLM rerank never trained on SciFact: the reference on every part
        names = ["given", "minilm", "blockrank"] if tag == "before" else ["blockrank"]
        for name in names:
            column = TAGS.get(tag, tag) if name == "blockrank" else BASELINES[name]
            per_query[column] = {q: m["nDCG@10"] for q, m in s["rerankers"][name]["per_query"].items()}
    rows = []
    print("| test queries | n | " + " | ".join(per_query) + " |")
    print("|---|---|" + "---|" * len(per_query))
    for name, qids in parts.items():
        means = {c: sum(scores.get(q, 0.0) for q in qids) / len(qids) for c, scores in per_query.items()}
        rows.append({"part": name, "queries": len(qids), "nDCG@10": means})
        print(f"| {name} | {len(qids)} | " + " | ".join(f"{m:.3f}" for m in means.values()) + " |")
    out = ROOT / "bench" / "results" / "scifact-leak.json"
    judged = {d for j in test.qrels.values() for d in j}
    write_text_atomic(
        out,
        json.dumps(
            {"test_judged_train_positives": len(positives & judged), "test_judged_in_pools": len(held & judged), "rows": rows},
            indent=1,
        )
        + "\n",
    )
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:] or ["smollm2-synth-175", "avg-175"])
