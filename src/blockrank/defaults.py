"""Names and choices the CLI needs before anything heavy (torch, transformers) is imported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BASE_MODEL = "SmolLM2-135M-Instruct"  # the untrained base of the shipped reranker (not a reranker itself)
DEFAULT_RERANKER = "blockrank-smollm2-135m"  # the shipped adapter, in blockrank/weights/

# sparse = BlockRank, reference = the stock model with an explicit 4D mask (quadratic), causal = full attention
Mode = Literal["sparse", "reference", "causal"]
MODES: tuple[Mode, ...] = ("sparse", "reference", "causal")
# `blockrank eval --rerankers`: given keeps the candidates' own (first-stage) order, whatever retrieved them;
# minilm is the all-MiniLM-L6-v2 rerank, blockrank-causal the same model read with full causal attention.
# A teacher name (bm25, mpnet, a fusion) rescores the list instead: bm25 is BM25 over the list's own statistics.
FIRST_STAGES = ("bm25", "dense")  # what retrieves candidates from a corpus (blockrank.retrieval)
# blockrank-fused ranks by the fusion with the candidates' first-stage scores (blockrank.fusion).
RERANKERS = ("given", "minilm", "blockrank", "blockrank-fused", "blockrank-decode", "blockrank-causal", "sliding", "first")
# The first stage's share when a caller fuses its scores with BlockRank's: chosen on the held-out DL21 SPLADE++ dev
# lists (docs/results.md, "Fusion with the first stage"); over BM25 lists fusion did not help there.
FIRST_STAGE_WEIGHT = 0.3


@dataclass
class Limits:
    """Per-request and capacity limits of the service (``blockrank serve``'s flags default to these)."""

    max_documents: int = 1000
    max_document_chars: int = 20_000
    max_body_bytes: int = 10 * 2**20
    request_timeout_s: float = 120.0
    max_queue: int = 32
    max_tokens_per_doc: int = 4096  # Cohere's default; past it a document is truncated (or refused)
    max_query_tokens: int = 256
    max_prompt_tokens: int = 65_536  # bounds one request's model time (~10 s for SmolLM2 on 2 CPU cores)
