"""LangChain: ``BlockRankCompressor`` is a ``BaseDocumentCompressor`` (use it in a ContextualCompressionRetriever).

from blockrank.integrations.langchain import BlockRankCompressor
compressor = BlockRankCompressor(reranker=Reranker.from_pretrained(), top_n=5)

After a strong retriever that puts its score in each document's metadata, ``first_stage_key="score"`` orders by
a fusion of those scores with BlockRank's, the retriever weighted ``first_stage_weight`` (``Reranker.rerank``'s
``first_stage``; docs/results.md, "Fusion with the first stage").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict

from ..defaults import FIRST_STAGE_WEIGHT
from ..errors import InputError
from ..reranker import Reranker


class BlockRankCompressor(BaseDocumentCompressor):
    """Keeps the ``top_n`` most relevant documents, best first, with ``relevance_score`` in their metadata
    (BlockRank's score; with ``first_stage_key``, also ``fused_score``, the one they are ordered by)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reranker: Any
    top_n: int | None = 3
    first_stage_key: str | None = None
    first_stage_weight: float = FIRST_STAGE_WEIGHT

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if not documents:
            return []
        reranker: Reranker = self.reranker
        first_stage = None if self.first_stage_key is None else self._first_stage(documents, self.first_stage_key)
        results = reranker.rerank(
            query,
            [d.page_content for d in documents],
            top_k=self.top_n,
            first_stage=first_stage,
            first_stage_weight=self.first_stage_weight,
        )
        return [
            Document(
                page_content=documents[r.index].page_content,
                metadata={
                    **documents[r.index].metadata,
                    "relevance_score": r.score,
                    **({} if r.fused is None else {"fused_score": r.fused}),
                },
                id=documents[r.index].id,
            )
            for r in results
        ]

    @staticmethod
    def _first_stage(documents: Sequence[Document], key: str) -> list[float]:
        missing = [i for i, d in enumerate(documents) if key not in d.metadata]
        if missing:
            raise InputError(
                f"first_stage_key {key!r} is not in the metadata of {len(missing)} documents (e.g. document {missing[0]})"
            )
        return [d.metadata[key] for d in documents]
