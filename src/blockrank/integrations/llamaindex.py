"""LlamaIndex: ``BlockRankPostprocessor`` is a ``BaseNodePostprocessor`` (pass it as ``node_postprocessors``).

from blockrank.integrations.llamaindex import BlockRankPostprocessor
postprocessor = BlockRankPostprocessor(reranker=Reranker.from_pretrained(), top_n=5)

After a strong retriever (SPLADE++, a good dense model), ``first_stage_weight=0.3`` orders by a fusion of the
nodes' retriever scores with BlockRank's (``Reranker.rerank``'s ``first_stage``; docs/results.md, "Fusion with
the first stage").
"""

from __future__ import annotations

from typing import Any

from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from pydantic import Field

from ..errors import InputError
from ..reranker import Reranker


class BlockRankPostprocessor(BaseNodePostprocessor):
    """Reorders nodes by BlockRank relevance, keeps the ``top_n`` best and sets their ``score`` (BlockRank's).

    ``first_stage_weight`` (None: off) fuses the nodes' incoming scores, the retriever's, into the order; every
    node must then have one.
    """

    reranker: Any = Field(exclude=True)
    top_n: int | None = 3
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
        if self.first_stage_weight is None:
            results = reranker.rerank(query_bundle.query_str, texts, top_k=self.top_n)
        else:
            unscored = [n.node.node_id for n in nodes if n.score is None]
            if unscored:
                raise InputError(
                    f"first_stage_weight fuses the retriever's node scores, but {len(unscored)} nodes have none "
                    f"(e.g. {unscored[0]!r})"
                )
            first_stage = [float(n.score) for n in nodes]  # type: ignore[arg-type]
            results = reranker.rerank(
                query_bundle.query_str, texts, self.top_n, first_stage=first_stage, first_stage_weight=self.first_stage_weight
            )
        return [NodeWithScore(node=nodes[r.index].node, score=r.score) for r in results]
