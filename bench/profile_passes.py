"""Where the time goes: the BlockRank call against the stock full prefill of the same prompt (issue #22).

    python bench/profile_passes.py [--passages FILE] [--n 100] [--dtype bf16] [--repeats 3] [--name NAME] [--model M]

Both passes run under torch.profiler on the same text: N passages of the candidate file's first queries, one
block each (cut only beyond --block-tokens). (a) is the whole `Reranker.rerank` call, tokenization included;
(c) is the stock model (never compiled) over the packed prompt with full causal attention, all layers, next-token logits. Each
operator's own (self) CPU time goes into a bucket by its name; what no operator accounts for is Python and
framework overhead. Prints one table and writes bench/results/profile/NAME.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

from blockrank import Reranker
from blockrank.eval import full_prefill, machine_info, matmul_gflops, read_candidates
from blockrank.files import write_text_atomic

# operator name -> bucket; names not listed count as "other operators"
BUCKETS = {
    "matmuls": (
        "aten::mm",
        "aten::addmm",
        "aten::bmm",
        "aten::baddbmm",
        "aten::linear",
        "aten::matmul",
        "aten::einsum",
        "mkldnn",
        "onednn",
    ),
    "attention": (
        "scaled_dot_product",
        "flash_attention",
        "aten::_efficient_attention",
        "aten::softmax",
        "aten::_softmax",
        "aten::logsumexp",
        "aten::logaddexp",
        "aten::exp",
    ),
    "norms, rotary, activations": (
        "aten::rsqrt",
        "aten::pow",
        "aten::mean",
        "aten::mul",
        "aten::add",
        "aten::silu",
        "aten::neg",
        "aten::cos",
        "aten::sin",
        "aten::sub",
        "aten::div",
        "aten::sigmoid",
    ),
    "compiled kernels (fused element-wise)": ("## Call CompiledFxGraph", "Torch-Compiled Region"),
    "gathers, padding, copies": (
        "aten::index",
        "aten::index_put",
        "aten::masked_select",
        "aten::nonzero",
        "aten::cat",
        "aten::copy_",
        "aten::_to_copy",
        "aten::to",
        "aten::zeros",
        "aten::fill_",
        "aten::clone",
        "aten::contiguous",
        "aten::where",
        "aten::masked_fill",
        "aten::repeat_interleave",
        "aten::embedding",
        "aten::index_select",
        "aten::gather",
        "aten::empty",
        "aten::full",
        "aten::arange",
        "aten::stack",
        "aten::triu",
        "aten::scatter",
        "aten::index_add",
    ),
}
ORDER = [*BUCKETS, "other operators", "tokenization", "Python and framework"]


def bucket(op: str) -> str:
    for name, prefixes in BUCKETS.items():
        if any(op.startswith(p) or p in op for p in prefixes):
            return name
    return "other operators"


def timed(fn, repeats: int) -> float:
    """Median wall seconds per call, without the profiler."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def profiled(fn, repeats: int) -> tuple[float, dict[str, float], dict[str, float]]:
    """Wall seconds per call under the profiler, seconds per call by bucket, and the 15 costliest operators."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        wall = (time.perf_counter() - start) / repeats
    by_bucket = dict.fromkeys(ORDER, 0.0)
    ops = {}
    for e in prof.key_averages():
        seconds = e.self_cpu_time_total / 1e6 / repeats
        by_bucket[bucket(e.key)] += seconds
        ops[e.key] = seconds
    by_bucket["Python and framework"] = max(0.0, wall - sum(by_bucket.values()))
    top = dict(sorted(ops.items(), key=lambda kv: -kv[1])[:15])
    return wall, by_bucket, top


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--passages", default="../shared/data/trec-dl/dl19-bm25-top100.jsonl")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--block-tokens", type=int, default=512)
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--model", default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--passes", default="blockrank,prefill")
    p.add_argument("--compile", action="store_true", help="compile the BlockRank pass's layers (the prefill stays stock)")
    p.add_argument("--name", default=None)
    p.add_argument("--out", default="bench/results/profile")
    args = p.parse_args()

    reranker = Reranker.from_pretrained(
        args.model, dtype=args.dtype, block_tokens=args.block_tokens, split=False, compile=args.compile
    )
    stock = Reranker.from_pretrained(args.model, dtype=args.dtype) if args.compile else reranker
    lists = read_candidates(args.passages)
    query = lists[0].query
    texts = list(dict.fromkeys(d.content for c in lists for d in c.documents))[: args.n]
    blocks = reranker.prompt(query, texts)
    start = time.perf_counter()
    for _ in range(args.repeats):
        reranker.prompt(query, texts)
    tokenize_s = (time.perf_counter() - start) / args.repeats

    passes = {
        "blockrank": lambda: reranker.rerank(query, texts),
        "prefill": lambda: full_prefill(stock.model, blocks),
    }
    flags = " ".join(
        f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
        for k, v in vars(args).items()
        if v not in (None, False) and k != "out"
    )
    device = reranker.model.device
    report = {
        "machine": machine_info(device),
        "matmul_gflops": matmul_gflops(reranker.model.dtype, device),
        "model": reranker.model.config.name_or_path,
        "dtype": args.dtype,
        "layer": reranker.layer,
        "n_docs": len(texts),
        "tokens": blocks.num_tokens,
        "repeats": args.repeats,
        "command": f"python bench/profile_passes.py {flags}",
        "passes": {},
    }
    for name in args.passes.split(","):
        passes[name]()  # warm-up: allocator, kernels, first-call caches
        plain = timed(passes[name], args.repeats)
        wall, by_bucket, top = profiled(passes[name], args.repeats)
        if name == "blockrank":  # tokenization runs no operator: it sits inside the Python share
            by_bucket["tokenization"] = tokenize_s
            by_bucket["Python and framework"] = max(0.0, by_bucket["Python and framework"] - tokenize_s)
        report["passes"][name] = {"seconds": wall, "seconds_unprofiled": plain, "buckets_s": by_bucket, "top_ops_s": top}

    m = report["machine"]
    print(
        f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}; {report['model']} {args.dtype}, l*={report['layer']}; "
        f"N={len(texts)}, {blocks.num_tokens} tokens; dense matmul {report['matmul_gflops']:.0f} GFLOP/s"
    )
    names = list(report["passes"])
    print("| share of time | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for b in ORDER:
        cells = []
        for n in names:
            r = report["passes"][n]
            cells.append(f"{100 * r['buckets_s'][b] / r['seconds']:.1f}% ({1000 * r['buckets_s'][b]:.0f} ms)")
        print(f"| {b} | " + " | ".join(cells) + " |")
    print("| **total, profiled** | " + " | ".join(f"{report['passes'][n]['seconds']:.2f} s" for n in names) + " |")
    print(
        "| total, median without the profiler | "
        + " | ".join(f"{report['passes'][n]['seconds_unprofiled']:.2f} s" for n in names)
        + " |"
    )
    for n in names:
        print(
            f"\n{n}, costliest operators (ms per call): "
            + ", ".join(f"{op} {1000 * s:.0f}" for op, s in report["passes"][n]["top_ops_s"].items())
        )
    name = args.name or f"profile-n{len(texts)}-{args.dtype}"
    path = Path(args.out) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(report, indent=1))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
