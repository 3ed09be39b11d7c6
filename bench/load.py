"""Soak test of the HTTP service on loopback: a fixed pool of clients, each with its own connection, sends
requests at a bounded total rate for a bounded time, mixing valid requests, oversized ones, malformed ones and
clients that disconnect before the answer.

It reports p50/p95 latency of the valid requests, the count of each status code per kind, whether every
valid request that was answered got the right ranking (the one the same reranker gives in-process), the
server's health afterwards, and the process's resident memory sampled through the run: memory is flat when
every sample over the second half is within 5% of that half's median. Like `blockrank serve`, it caps glibc's
malloc arenas first (--malloc-arenas).

    python bench/load.py --rate 20 --duration 600               # tiny random model (the service machinery)
    python bench/load.py --model default --rate 1 --duration 60   # the shipped reranker
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shlex
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import torch
from transformers import AutoTokenizer

from blockrank import Reranker
from blockrank.defaults import Limits
from blockrank.eval import rss_bytes
from blockrank.files import write_text_atomic
from blockrank.model import base_model_path
from blockrank.serve import SERVICE_ARENAS, BackgroundServer, cap_malloc_arenas, create_app

WORDS = "rain cloud sun river paris france banana protein cell vitamin heart blood study trial".split()
MIX = {"valid": 0.6, "oversized": 0.15, "malformed": 0.15, "disconnect": 0.1}


def tiny_reranker() -> Reranker:
    """The tests' tiny random Llama (tests/factories.py) with the default's tokenizer: the service machinery, not a model."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from factories import tiny_llama

    tokenizer = AutoTokenizer.from_pretrained(base_model_path())
    return Reranker(tiny_llama(vocab_size=len(tokenizer), layers=4), tokenizer, layer=2, block_tokens=64)


def memory_stats(samples: list[tuple[float, float]], duration: float) -> dict:
    """Over the second half of the stream (samples taken after it ended are left out): the median of resident
    memory (MiB), and relative to it the lowest and highest sample, the spread (max - min) and the trend (last
    quarter's mean - third quarter's). Flat means within +-5% of that median."""
    half = [(t, m) for t, m in samples if duration / 2 <= t < duration]
    if len(half) < 4:
        return {
            "rss_second_half_median_mib": None,
            "rss_second_half_low": None,
            "rss_second_half_high": None,
            "rss_second_half_spread": None,
            "rss_second_half_trend": None,
            "memory_flat": False,
        }
    values = [m for _, m in half]
    median = statistics.median(values)
    third = [m for t, m in half if t < 3 * duration / 4] or values[:1]
    last = [m for t, m in half if t >= 3 * duration / 4] or values[-1:]
    spread = (max(values) - min(values)) / median
    trend = (statistics.mean(last) - statistics.mean(third)) / median
    low, high = min(values) / median - 1, max(values) / median - 1
    return {
        "rss_second_half_median_mib": round(median, 1),
        "rss_second_half_low": round(low, 4),
        "rss_second_half_high": round(high, 4),
        "rss_second_half_spread": round(spread, 4),
        "rss_second_half_trend": round(trend, 4),
        "memory_flat": max(-low, high) <= 0.05,
    }


def valid_bodies(rng: random.Random, n: int, docs: int) -> list[dict]:
    return [
        {
            "query": " ".join(rng.choices(WORDS, k=4)),
            "documents": [" ".join(rng.choices(WORDS, k=rng.randint(5, 40))) for _ in range(docs)],
            "top_n": 5,
        }
        for _ in range(n)
    ]


def bad_request(kind: str, rng: random.Random, limits: Limits) -> dict:
    """httpx.post keyword arguments for one oversized or malformed request."""
    if kind == "oversized":
        return rng.choice(
            [
                {"json": {"query": "why " * (4 * limits.max_query_tokens), "documents": ["a short document"]}},
                {"json": {"query": "rain", "documents": ["x"] * (limits.max_documents + 1)}},
                {"json": {"query": "rain", "documents": ["word " * (limits.max_document_chars // 4)]}},
                {"content": b"{" + b" " * (limits.max_body_bytes + 1) + b"}", "headers": {"content-type": "application/json"}},
            ]
        )
    return rng.choice(
        [
            {"content": b'{"query": "rain", "documents": [', "headers": {"content-type": "application/json"}},
            {"json": {"documents": ["no query"]}},
            {"json": {"query": 7, "documents": "not a list"}},
            {"json": {"query": "rain", "documents": ["a"], "top_n": -1}},
            {"json": {"query": "rain", "documents": [{"title": "no text"}]}},
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=20, help="requests per second, all clients together")
    ap.add_argument("--clients", type=int, default=8, help="client threads, each with one keep-alive connection")
    ap.add_argument("--sample-every", type=float, default=5, help="seconds between memory samples")
    ap.add_argument("--duration", type=float, default=60, help="seconds of arrivals")
    ap.add_argument("--docs", type=int, default=20, help="documents per valid request")
    ap.add_argument("--model", default=None, help="'default', a model path or hub id; default: a tiny random model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/load.json")
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile (goes into the report)")
    ap.add_argument("--malloc-arenas", type=int, default=SERVICE_ARENAS, help="as blockrank serve's; 0: glibc's default")
    args = ap.parse_args()
    arenas_capped = cap_malloc_arenas(args.malloc_arenas)

    rng = random.Random(args.seed)
    reranker = (
        tiny_reranker() if args.model is None else Reranker.from_pretrained(None if args.model == "default" else args.model)
    )
    limits = Limits(max_queue=64)
    bodies = valid_bodies(rng, 16, args.docs)
    expected = [[r.index for r in reranker.rerank(b["query"], b["documents"])[:5]] for b in bodies]
    heavy = valid_bodies(rng, 1, 10 * args.docs)[0]  # what a disconnecting client asks for: 10x the work

    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    wrong = 0
    lock = threading.Lock()

    def send(http: httpx.Client, url: str, kind: str, i: int, request: dict) -> None:
        nonlocal wrong
        start = time.perf_counter()
        try:
            r = http.post(f"{url}/rerank", **request)
        except httpx.TimeoutException:
            with lock:
                statuses[f"{kind} gave up"] += 1
            return
        elapsed = time.perf_counter() - start
        with lock:
            statuses[f"{kind} {r.status_code}"] += 1
            if kind == "valid" and r.status_code == 200:
                latencies.append(elapsed)
                wrong += [x["index"] for x in r.json()["results"]] != expected[i]

    def client(url: str, seed: int, stop_at: float) -> None:
        """One client: Poisson think times at rate/clients, a keep-alive connection, an impatient one for hang-ups."""
        crng = random.Random(seed)
        with httpx.Client(timeout=300) as http, httpx.Client(timeout=0.05) as impatient:
            while (now := time.perf_counter()) < stop_at:
                time.sleep(min(crng.expovariate(args.rate / args.clients), max(0.0, stop_at - now)))
                if time.perf_counter() >= stop_at:
                    break
                kind = crng.choices(list(MIX), weights=list(MIX.values()))[0]
                i = crng.randrange(len(bodies))
                request = (
                    {"json": bodies[i]}
                    if kind == "valid"
                    else {"json": heavy}
                    if kind == "disconnect"
                    else bad_request(kind, crng, limits)
                )
                send(impatient if kind == "disconnect" else http, url, kind, i, request)

    memory: list[tuple[float, float]] = []
    with BackgroundServer(create_app(reranker, limits)) as url:
        with httpx.Client(timeout=300) as http:
            for i in range(3):  # warm-up, so that "before" is the steady state, not the first allocations
                send(http, url, "valid", i, {"json": bodies[i]})
        latencies.clear()
        statuses.clear()
        gc.collect()
        rss_before = rss_bytes() / 2**20

        started = time.perf_counter()
        stop_at = started + args.duration
        pool = [threading.Thread(target=client, args=(url, args.seed * 1000 + k, stop_at)) for k in range(args.clients)]
        for th in pool:
            th.start()
        next_sample = started
        while any(th.is_alive() for th in pool):
            memory.append((round(time.perf_counter() - started, 1), round(rss_bytes() / 2**20, 1)))
            next_sample += args.sample_every
            time.sleep(max(0.0, next_sample - time.perf_counter()))
        for th in pool:
            th.join()
        wall = time.perf_counter() - started
        healthy = httpx.get(f"{url}/health", timeout=10).status_code == 200
        last = httpx.post(f"{url}/rerank", json=bodies[0], timeout=60)
        healthy = healthy and [x["index"] for x in last.json()["results"]] == expected[0]
        gc.collect()
        rss_after = rss_bytes() / 2**20

    stats = memory_stats(memory, args.duration)
    answered = sum(n for k, n in statuses.items() if k == "valid 200")
    report = {
        "command": "python bench/load.py " + shlex.join(sys.argv[1:]),
        "machine_note": args.note,
        "model": args.model or "tiny random Llama (4 layers, hidden 64)",
        "rate_per_s": args.rate,
        "duration_s": args.duration,
        "clients": args.clients,
        "wall_s": round(wall, 1),
        "requests": sum(statuses.values()),
        "docs_per_valid_request": args.docs,
        "statuses": dict(sorted(statuses.items())),
        "valid_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "valid_p95_ms": round(1000 * statistics.quantiles(latencies, n=20)[18], 1) if len(latencies) > 1 else None,
        "valid_answered": answered,
        "valid_wrong": wrong,
        "healthy_after": healthy,
        "rss_mib_before": round(rss_before, 1),
        "rss_mib_after": round(rss_after, 1),
        **stats,
        "rss_mib_samples": memory,
        "threads": torch.get_num_threads(),
        "malloc_arenas": args.malloc_arenas if arenas_capped else None,
    }
    print(json.dumps(report, indent=1))
    write_text_atomic(Path(args.out), json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
