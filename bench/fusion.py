"""Never worse than the list you are given? The default call per first stage, at 100 candidates (issue #44).

For each list: the first stage's own order (given), the all-MiniLM-L6-v2 rerank (minilm), the model alone
(blockrank-model), the default call, which weighs the input order (blockrank), the default call with the first
stage's scores (blockrank-fused), and the default call on each list shuffled first (blockrank-shuffled), which must
not fall below the model alone. DL19 is
the report set; DL21's dev queries (configs/dl21-dev.qids) are the training lists the fusion was chosen on.

    python bench/fusion.py [--model M] [--sets dl19-bm25,dl19-splade,dl21-dev-bm25,dl21-dev-splade] [--dtype bf16]
Runs resume from bench/results/fusion/SET/ (blockrank eval's layout); the table goes to stdout and
bench/results/fusion/summary.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from blockrank.eval import CONDENSED, evaluate, load_eval_set, make_scorers
from blockrank.files import write_text_atomic
from blockrank.train import read_qids

ROOT = Path(__file__).resolve().parents[1]
D = ROOT.parent / "shared" / "data" / "trec-dl"
SETS = {
    "dl19-bm25": (D / "dl19-bm25-top100.jsonl", D / "qrels.dl19-passage.txt", None),
    "dl19-splade": (D / "dl19-splade-top100.jsonl", D / "qrels.dl19-passage.txt", None),
    "dl21-dev-bm25": (D / "dl21-bm25-top100.jsonl", D / "qrels.dl21-passage.txt", ROOT / "configs" / "dl21-dev.qids"),
    "dl21-dev-splade": (D / "dl21-splade-top100.jsonl", D / "qrels.dl21-passage.txt", ROOT / "configs" / "dl21-dev.qids"),
}
RERANKERS = ["given", "minilm", "blockrank-model", "blockrank", "blockrank-fused", "blockrank-shuffled"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None)
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "fusion"))
    args = p.parse_args()
    scorers = make_scorers(RERANKERS, args.model, dtype=args.dtype)
    table = {}
    for name in args.sets.split(","):
        data, qrels, qids = SETS[name]
        evalset = load_eval_set(data, qrels, top_k=100, qids=read_qids(qids) if qids else None)
        report = evaluate(scorers, evalset, Path(args.out) / name, {"model": args.model, "dtype": args.dtype})
        table[name] = {
            r: {
                "nDCG@10": m["metrics"]["nDCG@10"],
                CONDENSED: m["metrics"][CONDENSED],
                "seconds_per_query": m["latency_s"]["mean"],
            }
            for r, m in report["rerankers"].items()
        }
        table[name]["machine"] = report["machine"]
    write_text_atomic(Path(args.out) / "summary.json", json.dumps(table, indent=1))
    print("| list (100 candidates) | " + " | ".join(RERANKERS) + " |")
    print("|---|" + "---|" * len(RERANKERS))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[r]['nDCG@10']:.3f} / {row[r][CONDENSED]:.3f}" for r in RERANKERS) + " |")
    print(
        "\nnDCG@10 / condensed nDCG@10; seconds per query (mean), "
        + ", ".join(f"{r} {table[name][r]['seconds_per_query']:.2f}" for r in RERANKERS[1:])
        + f" ({name}); {table[name]['machine'].get('cpu')}"
    )


if __name__ == "__main__":
    main()
