"""Bounded load test of the HTTP service: N requests from C concurrent clients against a tiny random
model on loopback; prints p50/p95 latency and the error count, writes JSON.

    python bench/load.py --requests 200 --clients 8
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from blockrank import Reranker
from blockrank.model import default_model_path, use_block_attention
from blockrank.service import BackgroundServer, Limits, create_app

WORDS = "rain cloud sun river paris france banana protein cell vitamin heart blood study trial".split()


def tiny_reranker() -> Reranker:
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    return Reranker(use_block_attention(LlamaForCausalLM(config).eval()), tokenizer, layer=2, max_doc_tokens=64)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--docs", type=int, default=20, help="documents per request")
    ap.add_argument("--out", default="bench/results/load.json")
    args = ap.parse_args()

    rng = random.Random(0)
    bodies = [{"query": " ".join(rng.choices(WORDS, k=4)),
               "documents": [" ".join(rng.choices(WORDS, k=rng.randint(5, 40))) for _ in range(args.docs)],
               "top_n": 5} for _ in range(args.requests)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = list(range(args.requests))

    with BackgroundServer(create_app(tiny_reranker(), Limits(max_queue=4 * args.clients))) as url:
        def client():
            with httpx.Client(timeout=120) as http:
                while True:
                    with lock:
                        if not queue:
                            return
                        i = queue.pop()
                    start = time.perf_counter()
                    r = http.post(f"{url}/rerank", json=bodies[i])
                    ok = r.status_code == 200 and len(r.json()["results"]) == 5
                    with lock:
                        latencies.append(time.perf_counter() - start)
                        statuses[r.status_code if ok else -1] = statuses.get(r.status_code if ok else -1, 0) + 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started

    q = statistics.quantiles(latencies, n=100)
    report = {"requests": args.requests, "clients": args.clients, "docs_per_request": args.docs,
              "p50_ms": 1000 * statistics.median(latencies), "p95_ms": 1000 * q[94], "max_ms": 1000 * max(latencies),
              "throughput_rps": args.requests / wall, "statuses": statuses,
              "errors": sum(n for s, n in statuses.items() if s != 200), "threads": torch.get_num_threads()}
    print(json.dumps(report, indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
