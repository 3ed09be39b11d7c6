"""LangChain: ``BlockRankCompressor`` is a ``BaseDocumentCompressor`` (use it in a ContextualCompressionRetriever).

from blockrank.integrations.langchain import BlockRankCompressor
compressor = BlockRankCompressor(reranker=Reranker.from_pretrained(), top_n=5)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict

from ..reranker import Reranker


class BlockRankCompressor(BaseDocumentCompressor):
    """Keeps the ``top_n`` most relevant documents, best first, with ``relevance_score`` in their metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reranker: Any
    top_n: int | None = 3

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if not documents:
            return []
        reranker: Reranker = self.reranker
        results = reranker.rerank(query, [d.page_content for d in documents], top_k=self.top_n)
        return [
            Document(
                page_content=documents[r.index].page_content,
                metadata={**documents[r.index].metadata, "relevance_score": r.score},
                id=documents[r.index].id,
            )
            for r in results
        ]
