"""Seconds per call of the document-major pass by the group cost that cuts documents into groups (issue #22).

    python bench/group_cost.py [--passages FILE] [--n 100] [--costs 0,64,128,256,1024,1000000] [--repeats 3] [--compile]

Documents of different lengths share a group padded to its longest, and every group runs all layers up to l*.
:func:`blockrank.kernel.attention.length_groups` picks the cut with the fewest padded tokens plus ``GROUP_COST`` per
group. This script times the default reranker on the same N real passages (the candidate file's first queries,
whole, cut only beyond --block-tokens) at each cost, interleaved, and prints groups, padded tokens and median
seconds. Writes bench/results/NAME.json; `python bench/report.py` puts its table in docs/lab-notes.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from blockrank.files import write_text_atomic


def table(report: dict) -> list[str]:
    """The markdown lines for one report: the machine and command, then one row per group cost."""
    m = report["machine"]
    out = [
        f"Machine: {m['cpu']}, {m['threads']} threads, torch {m['torch']}. Model `{Path(report['model']).name}` in "
        f"{report['dtype']}, l* = {report['layer']}, N = {report['n_docs']} whole passages, {report['document_tokens']} "
        f"document tokens. Measured dense matmul: {report['matmul_gflops']:.0f} GFLOP/s. Command: `{report['command']}`",
        "",
        "| group cost | groups | padded tokens | padding | median s |",
        "|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        out.append(f"| {r['group_cost']} | {r['groups']} | {r['padded_tokens']} | {r['padding']:.1%} | {r['seconds']:.2f} |")
    return out


def main() -> None:
    import blockrank.kernel.attention as attention
    from blockrank import Reranker
    from blockrank.eval import machine_info, matmul_gflops, read_candidates

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--passages", default="../shared/data/trec-dl/dl19-bm25-top100.jsonl")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--block-tokens", type=int, default=512)
    p.add_argument("--costs", default="0,64,128,256,1024,1000000")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--name", default="group-cost")
    args = p.parse_args()

    reranker = Reranker.from_pretrained(block_tokens=args.block_tokens, split=False, compile=args.compile)
    lists = read_candidates(args.passages)
    query = lists[0].query
    texts = list(dict.fromkeys(d.content for c in lists for d in c.documents))[: args.n]
    lengths = [len(d) for d in reranker.prompt(query, texts).docs]
    costs = [int(c) for c in args.costs.split(",")]
    seconds: dict[int, list[float]] = {c: [] for c in costs}
    for c in [costs[0], *costs]:  # the first call warms up (and compiles)
        attention.GROUP_COST = c
        reranker.rerank(query, texts)
    for _ in range(args.repeats):
        for c in costs:
            attention.GROUP_COST = c
            start = time.perf_counter()
            reranker.rerank(query, texts)
            seconds[c].append(time.perf_counter() - start)

    rows = []
    for c in costs:
        groups = attention.length_groups(lengths, reranker.batch_tokens, c)
        padded = sum(len(g) * lengths[g[0]] for g in groups)
        rows.append(
            {
                "group_cost": c,
                "groups": len(groups),
                "padded_tokens": padded,
                "padding": padded / sum(lengths) - 1,
                "seconds": sorted(seconds[c])[len(seconds[c]) // 2],
                "all_seconds": seconds[c],
            }
        )
    flags = " ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in vars(args).items() if v)
    report = {
        "machine": machine_info(reranker.model.device),
        "matmul_gflops": matmul_gflops(reranker.model.dtype, reranker.model.device),
        "model": reranker.model.config.name_or_path,
        "dtype": str(reranker.model.dtype).removeprefix("torch."),
        "layer": reranker.layer,
        "n_docs": len(texts),
        "document_tokens": sum(lengths),
        "command": f"python bench/group_cost.py {flags}",
        "rows": rows,
    }
    print("\n".join(table(report)))
    out = Path("bench/results") / f"{args.name}.json"
    write_text_atomic(out, json.dumps(report, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
