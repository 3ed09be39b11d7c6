"""LangChain: ``BlockRankCompressor`` is a ``BaseDocumentCompressor`` (use it in a ContextualCompressionRetriever).

from blockrank.integrations.langchain import BlockRankCompressor
compressor = BlockRankCompressor(reranker=Reranker.from_pretrained(), top_n=5)

The documents' order counts as the reranker's ``input_order`` says (``"auto"`` by default), and when every document
carries its retriever's score in its metadata under ``first_stage_key`` (``"score"`` by default), those scores count
too (``Reranker.rerank``'s ``first_stage``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict

from blockrank.defaults import InputOrder
from blockrank.reranker import Reranker


class BlockRankCompressor(BaseDocumentCompressor):
    """Keeps the ``top_n`` most relevant documents, best first, with ``relevance_score`` (the probability of
    relevance they are ordered by) and ``model_score`` (the model's alone) in their metadata.
    ``first_stage_weight`` is deprecated and ignored."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reranker: Any
    top_n: int | None = 3
    first_stage_key: str | None = "score"
    input_order: InputOrder | None = None
    first_stage_weight: float | None = None

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if not documents:
            return []
        reranker: Reranker = self.reranker
        results = reranker.rerank(
            query,
            [d.page_content for d in documents],
            top_k=self.top_n,
            first_stage=self._first_stage(documents),
            input_order=self.input_order,
            first_stage_weight=self.first_stage_weight,
        )
        return [
            Document(
                page_content=documents[r.index].page_content,
                metadata={**documents[r.index].metadata, "relevance_score": r.score, "model_score": r.model_score},
                id=documents[r.index].id,
            )
            for r in results
        ]

    def _first_stage(self, documents: Sequence[Document]) -> list[float] | None:
        """The retriever's scores, when every document has a number under ``first_stage_key``."""
        key = self.first_stage_key
        if key is None or not all(_is_number(d.metadata.get(key)) for d in documents):
            return None
        return [float(d.metadata[key]) for d in documents]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
