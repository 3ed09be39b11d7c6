"""SciFact test with the default call: all 300 claims, and the 104 whose judged abstracts no training run saw.

The default's lineage trained on SciFact train pools that held abstracts judged for 196 test claims
(bench/scifact_leak.py), so the headline is the figure on the other 104 (configs/scifact-unseen.qids); all 300 go
beside it, marked. BM25's top 100 per claim (bm25s over the corpus), whole abstracts, bf16:

    python bench/scifact.py [--model M] [--only-unseen]
The evaluation resumes from bench/results/scifact/eval/ (blockrank eval's layout); the table goes to stdout and
bench/results/scifact/summary.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from blockrank.eval import evaluate, load_eval_set, make_scorers
from blockrank.files import write_text_atomic
from blockrank.train import read_qids

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
UNSEEN = ROOT / "configs" / "scifact-unseen.qids"
RERANKERS = ["given", "minilm", "blockrank"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None)
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "scifact"))
    p.add_argument("--only-unseen", action="store_true", help="evaluate the 104 unseen claims only (a later run adds the rest)")
    args = p.parse_args()
    unseen = read_qids(UNSEEN)
    evalset = load_eval_set(SCIFACT, first_stage="bm25", top_k=100, split="test", qids=unseen if args.only_unseen else None)
    scorers = make_scorers(RERANKERS, args.model, dtype=args.dtype, teacher_dtype="bf16")
    report = evaluate(scorers, evalset, Path(args.out) / "eval", {"model": args.model, "dtype": args.dtype})
    table = {}
    for name, r in report["rerankers"].items():
        per_query = {q: m["nDCG@10"] for q, m in r["per_query"].items() if "nDCG@10" in m}
        table[name] = {
            "nDCG@10 (300)": r["metrics"]["nDCG@10"],
            "nDCG@10 (104 unseen)": statistics.mean(v for q, v in per_query.items() if q in unseen),
            "unseen_queries": sum(q in unseen for q in per_query),
            "seconds_per_query": r["latency_s"]["mean"],
        }
    summary = {"rerankers": table, "machine": report["machine"], "queries": report["queries"]}
    write_text_atomic(Path(args.out) / "summary.json", json.dumps(summary, indent=1))
    print("| SciFact test, BM25 top 100 | 104 claims no training run saw | all 300 (the default's lineage saw some) |")
    print("|---|---|---|")
    for name, row in table.items():
        print(f"| {name} | {row['nDCG@10 (104 unseen)']:.3f} | {row['nDCG@10 (300)']:.3f} |")
    print(f"\n{report['machine'].get('cpu')}, {report['machine'].get('threads')} threads, {args.dtype}")


if __name__ == "__main__":
    main()
