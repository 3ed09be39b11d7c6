"""Speed benchmark: BlockRank's sparse path against the reference mask and full causal attention.

For each number of documents N (fixed length, real text) it times, interleaved and repeated:
(a) the sparse path in attention mode, (b) the reference (explicit 4D mask), (c) the standard in-context
ranking pass: the stock model with full causal attention (sdpa) over the whole prompt, all layers,
next-token logits, and (c*) the same full causal attention stopped at l* like (a), which isolates
what the sparse attention alone saves. A configuration is skipped, with the reason, where it would
exceed the memory or time limit. It also measures dense matmul GFLOP/s on the same machine to put (a)'s throughput in
context.
"""

from __future__ import annotations

import ctypes
import json
import os
import statistics
import threading
import time
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from blockrank.defaults import Mode
from blockrank.eval.machine import machine_info
from blockrank.files import write_text_atomic
from blockrank.kernel.attention import pack
from blockrank.kernel.scoring import attention_scores, forward_blocks
from blockrank.prompt import PromptBlocks
from blockrank.reranker import Reranker

CONFIGS = {
    "sparse": "(a) BlockRank sparse, to l*",
    "layer-major": "(a') the same, layer-major (every layer over all documents)",
    "reference": "(b) the reference (explicit 4D mask), to l*",
    "full": "(c) stock model, full causal sdpa, one full pass",
    "causal": "(c*) full causal sdpa, to l*",
}


@dataclass
class Measurement:
    config: str
    n_docs: int
    tokens: int
    seconds: list[float] = field(default_factory=list)
    peak_mem_mb: float | None = None
    gflop: float | None = None
    max_score_diff: float | None = None  # against (a)'s scores on the same prompt
    skipped: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


def matmul_gflops(dtype: torch.dtype, device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """Measured dense matmul throughput of this machine (the practical ceiling for (a))."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    _sync(device)
    a @ b
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def layer_shape(config) -> tuple[int, int, int, int]:
    """Heads, KV heads, head dim and the multiply-adds per token of one layer's projections and MLP."""
    h, kv = config.num_attention_heads, config.num_key_value_heads
    d = getattr(config, "head_dim", None) or config.hidden_size // h
    hidden, inter = config.hidden_size, config.intermediate_size
    return h, kv, d, hidden * (2 * h * d + 2 * kv * d) + 3 * hidden * inter  # q, o, k, v, gate/up/down


def sparse_gflop(config, blocks: PromptBlocks, layer: int) -> float:
    """Useful FLOPs of the sparse path up to layer ``layer``: projections, MLP and attention."""
    h, kv, d, linear = layer_shape(config)
    L0, T = len(blocks.prefix), blocks.num_tokens
    keys_seen = L0 * (L0 + 1) / 2  # block 0, causal
    keys_seen += sum(n * L0 + n * (n + 1) / 2 for n in map(len, blocks.docs))
    keys_seen += sum(T - len(blocks.tail) + i + 1 for i in range(len(blocks.tail)))
    per_layer = 2 * T * linear + 4 * h * d * keys_seen
    probe = 2 * T * kv * d + 2 * blocks.n_signal * config.hidden_size * h * d  # l*'s keys and signal queries
    return (layer * per_layer + probe) / 1e9


def causal_gflop(config, tokens: int, layers: int, lm_head: bool) -> float:
    """FLOPs of a full causal prefill of ``tokens`` through ``layers`` layers (+ next-token logits)."""
    h, _, d, linear = layer_shape(config)
    per_layer = 2 * tokens * linear + 4 * h * d * tokens * (tokens + 1) / 2
    return (layers * per_layer + (2 * config.hidden_size * config.vocab_size if lm_head else 0)) / 1e9


def training_gflop_per_token(config, layer: int, aux_only: bool) -> float:
    """Forward + input-gradient FLOPs per token of the linear layers one training step runs: layers 0..l* in
    aux-only mode, all of them otherwise (attention over 64-token blocks is minor)."""
    linear = layer_shape(config)[3]
    return 4 * (layer + 1 if aux_only else config.num_hidden_layers) * linear / 1e9


class PeakMemory:
    """Peak memory during a call: CUDA allocator peak, or sampled process RSS above the starting point.

    On CPU, memory that malloc kept from earlier calls is handed back to the system first; otherwise a call
    reuses it without raising the RSS and its peak reads too low."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            _release_free_memory()
            self.base = self.peak = rss_bytes()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())
        self.mb = (self.peak - self.base) / 2**20


def _release_free_memory() -> None:
    """glibc's malloc_trim(0): give free heap pages back to the system (a no-op where libc is not glibc)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_bytes() -> int:
    """This process's resident memory, in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fixed_length_blocks(reranker: Reranker, query: str, texts: list[str], n_docs: int) -> PromptBlocks:
    """N documents cut to exactly the reranker's token budget (texts are cycled; all must be long enough)."""
    blocks = text_blocks(reranker, query, texts, n_docs)
    if len(blocks.truncated) != n_docs:
        raise ValueError("benchmark texts must all exceed block_tokens so every document has the same length")
    return blocks


def text_blocks(reranker: Reranker, query: str, texts: list[str], n_docs: int) -> PromptBlocks:
    """The first N texts (cycled) as they are, one block each, cut only where they exceed the reranker's block
    length (``split=False``, so that N documents are N blocks)."""
    return reranker.prompt(query, [texts[i % len(texts)] for i in range(n_docs)], split=False)


@torch.inference_mode()
def full_prefill(model, blocks: PromptBlocks) -> torch.Tensor:
    """The stock ICR pass: full causal attention over the packed prompt, all layers, next-token logits."""
    input_ids, layout = pack(blocks, mode="causal")
    return forward_blocks(model, input_ids, layout, logits_to_keep=1).logits


def _predict(previous: Measurement | None, tokens: int, quadratic: bool) -> float | None:
    if previous is None or previous.median is None:
        return None
    return previous.median * (tokens / previous.tokens) ** (2 if quadratic else 1)


def run(
    reranker: Reranker,
    query: str,
    texts: list[str],
    ns: list[int],
    configs: list[str] = list(CONFIGS),
    repeats: int = 3,
    max_seconds: float = 300.0,
    max_memory_fraction: float = 0.5,
    progress=None,
    fixed_length: bool = True,
) -> dict:
    """Benchmark and return a JSON-able report. ``fixed_length=False`` takes the texts as they are (e.g. whole
    passages), so every pass, the full prefill included, runs on exactly the same real text."""
    make_blocks = fixed_length_blocks if fixed_length else text_blocks
    model, device = reranker.model, reranker.model.device
    total_memory = (
        torch.cuda.get_device_properties(device).total_memory
        if device.type == "cuda"
        else os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    )
    ceiling = matmul_gflops(model.dtype, device)
    results: list[Measurement] = []
    last: dict[str, Measurement] = {}
    for n in ns:
        blocks = make_blocks(reranker, query, texts, n)
        tokens = blocks.num_tokens
        row = {c: Measurement(c, n, tokens) for c in configs}
        for c, m in row.items():
            predicted = _predict(last.get(c), tokens, quadratic=c != "sparse")
            if predicted is not None and predicted > max_seconds:
                m.skipped = f"predicted {predicted:.0f} s > {max_seconds:.0f} s limit"
            elif c == "reference" and tokens**2 * model.dtype.itemsize > max_memory_fraction * total_memory:
                m.skipped = f"the {tokens}x{tokens} mask would exceed {max_memory_fraction:.0%} of memory"
        attention_scores(model, make_blocks(reranker, query, texts, 2), reranker.layer)  # warm-up
        scores = {}
        for _ in range(repeats):
            for c, m in row.items():
                if m.skipped:
                    continue
                _sync(device)
                with PeakMemory(device) as mem:
                    start = time.perf_counter()
                    if c == "full":
                        full_prefill(model, blocks)
                    elif c == "layer-major":
                        scores[c] = attention_scores(
                            model,
                            blocks,
                            reranker.layer,
                            mode="sparse",
                            grouped=False,
                            batch_tokens=reranker.batch_tokens,
                            tail_position=reranker.tail_position,
                        )
                    else:
                        scores[c] = attention_scores(
                            model,
                            blocks,
                            reranker.layer,
                            mode=typing.cast(Mode, c),
                            batch_tokens=reranker.batch_tokens,
                            tail_position=reranker.tail_position,
                        )
                    _sync(device)
                    m.seconds.append(time.perf_counter() - start)
                m.peak_mem_mb = max(m.peak_mem_mb or 0.0, mem.mb)
                if progress:
                    progress(f"N={n} {c}: {m.seconds[-1]:.2f} s")
                if m.seconds[-1] > max_seconds:
                    m.skipped = f"one run took {m.seconds[-1]:.0f} s > {max_seconds:.0f} s limit; not repeated"
        for c, m in row.items():
            m.gflop = (
                sparse_gflop(model.config, blocks, reranker.layer)
                if c in ("sparse", "layer-major", "reference")
                else causal_gflop(
                    model.config, tokens, model.config.num_hidden_layers if c == "full" else reranker.layer, lm_head=c == "full"
                )
            )
            if c != "sparse" and c in scores and "sparse" in scores:
                m.max_score_diff = float((scores[c] - scores["sparse"]).abs().max())
            if m.seconds:
                last[c] = m
            results.append(m)
    return {
        "machine": machine_info(device),
        "model": model.config.name_or_path,
        "dtype": str(model.dtype).replace("torch.", ""),
        "layer": reranker.layer,
        "doc_tokens": reranker.builder.block_tokens,
        "fixed_length": fixed_length,
        "repeats": repeats,
        "matmul_gflops": ceiling,
        "configs": CONFIGS,
        "results": [asdict(m) | {"median_s": m.median} for m in results],
    }


def summary_rows(report: dict) -> list[dict]:
    """One row per N: medians, ratio (c)/(a), sparse throughput and efficiency."""
    by_n: dict[int, dict] = {}
    for r in report["results"]:
        by_n.setdefault(r["n_docs"], {"n_docs": r["n_docs"], "tokens": r["tokens"]})[r["config"]] = r
    rows = []
    for n, row in sorted(by_n.items()):
        a = row.get("sparse")
        out = {"n_docs": n, "tokens": row["tokens"]}
        for name in CONFIGS:
            r = row.get(name)
            out[f"{name}_s"] = r["median_s"] if r else None
            out[f"{name}_mem_mb"] = r["peak_mem_mb"] if r else None
            out[f"{name}_note"] = r["skipped"] if r and r["median_s"] is None else None
            if r and r["median_s"]:  # useful FLOPs (reference: the sparse pattern's) per second
                out[f"{name}_gflops"] = r["gflop"] / r["median_s"]
                out[f"{name}_pct_of_matmul"] = 100 * out[f"{name}_gflops"] / report["matmul_gflops"]
        if row.get("reference"):
            out["reference_max_score_diff"] = row["reference"]["max_score_diff"]
        if a and a["median_s"]:
            out["ms_per_doc"] = 1000 * a["median_s"] / n
            out["tokens_per_s"] = row["tokens"] / a["median_s"]
            for name in ("full", "causal", "layer-major"):
                if row.get(name) and row[name]["median_s"]:
                    out[f"{name}_over_sparse"] = row[name]["median_s"] / a["median_s"]
        rows.append(out)
    return rows


def write_report(report: dict, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write ``stem.json`` (atomically) and ``stem.png`` (latency vs N)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report["summary"] = summary_rows(report)
    path = out_dir / f"{stem}.json"
    write_text_atomic(path, json.dumps(report, indent=1))

    from blockrank.eval.machine import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, label in CONFIGS.items():
        pts = [(r["n_docs"], r[f"{name}_s"]) for r in report["summary"] if r.get(f"{name}_s")]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="documents per query (N)",
        ylabel="seconds per query (median)",
        title=f"{Path(report['model']).name} {report['dtype']}, l*={report['layer']}, {report['machine']['device']}",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    png = out_dir / f"{stem}.png"
    fig.savefig(png, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path, png
