"""LlamaIndex: ``BlockRankPostprocessor`` is a ``BaseNodePostprocessor`` (pass it as ``node_postprocessors``).

from blockrank.integrations.llamaindex import BlockRankPostprocessor
postprocessor = BlockRankPostprocessor(reranker=Reranker.from_pretrained(), top_n=5)
"""

from __future__ import annotations

from typing import Any

from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from pydantic import Field

from ..errors import InputError
from ..reranker import Reranker


class BlockRankPostprocessor(BaseNodePostprocessor):
    """Reorders nodes by BlockRank relevance, keeps the ``top_n`` best and sets their ``score``."""

    reranker: Any = Field(exclude=True)
    top_n: int | None = 3

    @classmethod
    def class_name(cls) -> str:
        return "BlockRankPostprocessor"

    def _postprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        if query_bundle is None:
            raise InputError("BlockRankPostprocessor needs a query")
        if not nodes:
            return []
        reranker: Reranker = self.reranker
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        results = reranker.rerank(query_bundle.query_str, texts, top_k=self.top_n)
        return [NodeWithScore(node=nodes[r.index].node, score=r.score) for r in results]
