"""The public API: ``Reranker.from_pretrained().rerank(query, documents)``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from transformers import PreTrainedModel

from .attention import MODES, Mode
from .model import default_layer, load_model
from .prompt import Document, PromptBlocks, PromptBuilder, as_documents
from .scoring import attention_scores, decode_answer, parse_ranking, ranking_scores

Method = Literal["attention", "decode"]
DocumentLike = str | Mapping[str, Any] | Document


@dataclass(frozen=True)
class Result:
    """One ranked document: its position in the caller's list, its id, its score and the document."""

    index: int
    id: str
    score: float
    document: Document


class Reranker:
    """In-context reranker over one causal LM.

    ``method="attention"`` (default) scores documents by the signal tokens' attention mass at
    ``layer`` and stops the forward there; ``method="decode"`` generates the answer list.
    ``attention`` picks the implementation: ``"sparse"`` (BlockRank, linear), ``"dense"`` (the
    reference mask, quadratic) or ``"causal"`` (ordinary full attention, the ICR baseline).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer,
        layer: int | None = None,
        method: Method = "attention",
        attention: Mode = "sparse",
        max_doc_tokens: int = 160,
        truncate: bool = True,
        batch_tokens: int = 4096,
        tail_position: int | None = None,
    ):
        if method not in ("attention", "decode"):
            raise ValueError(f"unknown method {method!r}; choose 'attention' or 'decode'")
        if attention not in MODES:
            raise ValueError(f"unknown attention {attention!r}; choose one of {', '.join(MODES)}")
        self.model = model
        self.tokenizer = tokenizer
        self.layer = default_layer(model.config) if layer is None else layer
        if not 0 <= self.layer < model.config.num_hidden_layers:
            raise ValueError(f"layer {self.layer} is outside the model's {model.config.num_hidden_layers} layers")
        self.method = method
        self.attention = attention
        self.builder = PromptBuilder(tokenizer, max_doc_tokens=max_doc_tokens, truncate=truncate)
        self.pack_kwargs = {"batch_tokens": batch_tokens, "tail_position": tail_position}

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        *,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        **kwargs,
    ) -> Reranker:
        """Load a model (``None``: the embedded default) and wrap it; ``kwargs`` go to :class:`Reranker`."""
        model, tokenizer = load_model(name_or_path, dtype=dtype, device=device)
        return cls(model, tokenizer, **kwargs)

    def prompt(self, query: str, documents: Sequence[DocumentLike]) -> PromptBlocks:
        return self.builder.build(query, documents)

    def score_blocks(self, blocks: PromptBlocks) -> torch.Tensor:
        """Scores ``[N]`` for an already built prompt, in document order (higher is more relevant)."""
        if self.method == "decode":
            answer = decode_answer(self.model, self.tokenizer, blocks, mode=self.attention, **self.pack_kwargs)
            return ranking_scores(parse_ranking(answer, len(blocks.docs)), len(blocks.docs))
        return attention_scores(self.model, blocks, self.layer, mode=self.attention, **self.pack_kwargs)

    def score(self, query: str, documents: Sequence[DocumentLike]) -> list[float]:
        """One score per document, in the caller's order."""
        return self.score_blocks(self.prompt(query, documents)).tolist()

    def rerank(self, query: str, documents: Sequence[DocumentLike], top_k: int | None = None) -> list[Result]:
        """Documents best first (ties keep the input order); ``top_k`` keeps only the best ``k``."""
        if top_k is not None and (not isinstance(top_k, int) or top_k <= 0):
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        docs = as_documents(documents)
        scores = self.score_blocks(self.prompt(query, docs))
        order = sorted(range(len(docs)), key=lambda i: -float(scores[i]))
        return [Result(i, docs[i].id, float(scores[i]), docs[i]) for i in order[:top_k]]

    def rerank_batch(
        self, queries: Sequence[str], documents: Sequence[Sequence[DocumentLike]], top_k: int | None = None
    ) -> list[list[Result]]:
        """:meth:`rerank` for many queries, each with its own documents."""
        if len(queries) != len(documents):
            raise ValueError(f"got {len(queries)} queries but {len(documents)} document lists")
        return [self.rerank(q, d, top_k=top_k) for q, d in zip(queries, documents)]
