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
FIRST_STAGES = ("bm25", "dense")  # what retrieves candidates from a corpus (blockrank.eval.retrieval)
# blockrank is the default call (the model and the input order); blockrank-model the model alone; blockrank-fused adds
# the candidates' first-stage scores; blockrank-shuffled is the default call on each list shuffled first.
RERANKERS = (
    "given",
    "minilm",
    "blockrank",
    "blockrank-model",
    "blockrank-fused",
    "blockrank-shuffled",
    "blockrank-decode",
    "blockrank-causal",
    "sliding",
    "first",
)
# What the order of the caller's documents means: a retriever's ranking ("ranked"), nothing ("unordered"), or
# "auto": ranked as far as it agrees with the model's own reading of the list (blockrank.calibration).
InputOrder = Literal["ranked", "unordered", "auto"]
INPUT_ORDERS: tuple[InputOrder, ...] = ("ranked", "unordered", "auto")
BLOCK_TOKENS = 160  # a block's length for a model that brings none of its own (an untrained base, a new recipe)
MAX_TOKENS_PER_DOC = 4096  # tokens of a document that count by default: Cohere's default, so whole documents count


@dataclass
class Limits:
    """Per-request and capacity limits of the service (``blockrank serve``'s flags default to these)."""

    max_documents: int = 1000
    max_document_chars: int = 20_000
    max_body_bytes: int = 10 * 2**20
    request_timeout_s: float = 120.0
    max_queue: int = 32
    max_tokens_per_doc: int = 4096  # Cohere's default and this server's most; past it a document is truncated (or refused)
    max_query_tokens: int = 256
    max_prompt_tokens: int = 65_536  # bounds one request's model time (~10 s for SmolLM2 on 2 CPU cores)
    input_order: InputOrder = "auto"  # what a request that does not say means by its documents' order
