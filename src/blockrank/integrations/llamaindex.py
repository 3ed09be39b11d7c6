"""LlamaIndex: ``BlockRankPostprocessor`` is a ``BaseNodePostprocessor`` (pass it as ``node_postprocessors``).

from blockrank.integrations.llamaindex import BlockRankPostprocessor
postprocessor = BlockRankPostprocessor(reranker=Reranker.from_pretrained(), top_n=5)

The nodes' order counts as the reranker's ``input_order`` says (``"auto"`` by default), and when every node has its
retriever's score, those scores count too (``Reranker.rerank``'s ``first_stage``).
"""

from __future__ import annotations

from typing import Any

from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from pydantic import Field

from blockrank.defaults import InputOrder
from blockrank.errors import InputError
from blockrank.reranker import Reranker


class BlockRankPostprocessor(BaseNodePostprocessor):
    """Reorders nodes by BlockRank's probability of relevance, keeps the ``top_n`` best and sets it as their
    ``score``. ``first_stage_weight`` is deprecated and ignored."""

    reranker: Any = Field(exclude=True)
    top_n: int | None = 3
    input_order: InputOrder | None = None
    first_stage_weight: float | None = None

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
        scored = all(n.score is not None for n in nodes)
        results = reranker.rerank(
            query_bundle.query_str,
            texts,
            self.top_n,
            first_stage=[float(n.score) for n in nodes] if scored else None,  # type: ignore[arg-type]
            input_order=self.input_order,
            first_stage_weight=self.first_stage_weight,
        )
        return [NodeWithScore(node=nodes[r.index].node, score=r.score) for r in results]
