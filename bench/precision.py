"""bf16 vs fp32 rankings on real queries (default: the untrained base model): top-10 overlap and Kendall tau.

python bench/precision.py --queries 10 --docs 100
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from blockrank import BASE_MODEL, Reranker
from blockrank.files import write_text_atomic
from blockrank.kernel import attention_scores

DL19 = Path("../shared/data/trec-dl/dl19-bm25-top100.jsonl")


def kendall_tau(a: torch.Tensor, b: torch.Tensor) -> float:
    i, j = torch.triu_indices(len(a), len(a), 1)
    return float((torch.sign(a[i] - a[j]) * torch.sign(b[i] - b[j])).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--model", default=BASE_MODEL, help="model to compare (default: the untrained base)")
    ap.add_argument("--out", default="bench/results/precision.json")
    args = ap.parse_args()
    rows = [json.loads(line) for line in DL19.read_text().splitlines()[: args.queries]]
    fp32 = Reranker.from_pretrained(args.model, dtype="fp32", device="cpu")
    bf16 = Reranker.from_pretrained(args.model, dtype="bf16", device="cpu")
    per_query = []
    for row in rows:
        blocks = fp32.prompt(row["query"], [c["text"] for c in row["candidates"][: args.docs]])
        a = attention_scores(fp32.model, blocks, fp32.layer)
        b = attention_scores(bf16.model, blocks, bf16.layer)
        overlap = len(set(a.topk(10).indices.tolist()) & set(b.topk(10).indices.tolist()))
        per_query.append(
            {
                "qid": row["qid"],
                "top10_overlap": overlap,
                "kendall_tau": kendall_tau(a, b),
                "max_abs_diff": float((a - b).abs().max()),
            }
        )
        print(per_query[-1])
    report = {
        "queries": len(rows),
        "docs": args.docs,
        "layer": fp32.layer,
        "mean_top10_overlap": statistics.mean(q["top10_overlap"] for q in per_query),
        "min_top10_overlap": min(q["top10_overlap"] for q in per_query),
        "mean_kendall_tau": statistics.mean(q["kendall_tau"] for q in per_query),
        "per_query": per_query,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "per_query"}, indent=1))
    write_text_atomic(args.out, json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
