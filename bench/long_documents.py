"""What whole documents cost: 100 documents of 4,096 tokens each (Cohere's default cap), one query (issue #42).

Documents are SciFact abstracts concatenated until each holds 4,096 tokens, so every token is real text. The default
reranker reads them whole (64-token passages, overlapping by 8: ~73 blocks a document); the script prints the
wall time of one call and the process's peak resident memory, and what the service answers to the same request
(its prompt limit refuses it with a 422 before the model runs).

    python bench/long_documents.py [--docs 100] [--tokens 4096] [--dtype bf16]
Writes bench/results/long-documents.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from blockrank import Reranker
from blockrank.defaults import Limits
from blockrank.eval import machine_info, read_corpus
from blockrank.files import write_text_atomic

SCIFACT = Path("../shared/data/scifact/corpus.jsonl")


def long_documents(reranker: Reranker, n: int, tokens: int) -> list[str]:
    abstracts = iter(d.content for d in read_corpus(SCIFACT).values())
    docs = []
    for _ in range(n):
        text, length = [], 0
        while length < tokens:
            text.append(next(abstracts))
            length += len(reranker.tokenizer.encode(" " + text[-1], add_special_tokens=False))
        ids = reranker.tokenizer.encode(" ".join(text), add_special_tokens=False)[:tokens]
        docs.append(reranker.tokenizer.decode(ids))
    return docs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--docs", type=int, default=100)
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--out", default="bench/results/long-documents.json")
    args = p.parse_args()
    reranker = Reranker.from_pretrained(dtype=args.dtype)
    docs = long_documents(reranker, args.docs, args.tokens)
    query = "Does vitamin D supplementation reduce the risk of fractures?"
    reranker.rerank(query, docs[:2])  # warm up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    report = reranker.rerank_report(query, docs)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    limits = Limits()
    summary = {
        "documents": args.docs,
        "tokens_per_document": args.tokens,
        "prompt_tokens": report.num_tokens,
        "truncated": len(report.truncated),
        "seconds": seconds,
        "peak_rss_mib": peak_mib,
        "peak_rss_mib_before_call": before / 1024,
        "service_max_prompt_tokens": limits.max_prompt_tokens,
        "service_answer": "422 (prompt over max_prompt_tokens)" if report.num_tokens > limits.max_prompt_tokens else "served",
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "machine": machine_info(reranker.model.device),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(summary, indent=1))
    print(
        f"{args.docs} documents x {args.tokens} tokens: {report.num_tokens} prompt tokens, {seconds:.1f} s, peak RSS "
        f"{peak_mib:.0f} MiB ({before / 1024:.0f} MiB before the call); the service answers {summary['service_answer']}"
    )
    print(f"{summary['machine'].get('cpu')}, {torch.get_num_threads()} threads, {args.dtype}")


if __name__ == "__main__":
    main()
