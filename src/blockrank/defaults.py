"""Names and choices the CLI needs before anything heavy (torch, transformers) is imported."""

from __future__ import annotations

from typing import Literal

BASE_MODEL = "SmolLM2-135M-Instruct"  # the untrained base of the shipped reranker (not a reranker itself)
DEFAULT_RERANKER = "blockrank-smollm2-135m"  # the shipped adapter, in blockrank/weights/

# sparse = BlockRank, dense = its reference (the stock model with an explicit 4D mask), causal = full attention
Mode = Literal["sparse", "dense", "causal"]
MODES: tuple[str, ...] = ("sparse", "dense", "causal")
RERANKERS = ("bm25", "dense", "blockrank", "blockrank-decode", "full", "sliding", "first")  # `blockrank eval --rerankers`
