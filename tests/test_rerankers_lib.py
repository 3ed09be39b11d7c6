"""AnswerDotAI's ``rerankers``: BlockRank as one of its rankers, and its Cohere API ranker against our service."""

from __future__ import annotations

import pytest

pytest.importorskip("rerankers")

from blockrank import Reranker  # noqa: E402
from blockrank.serve.background import BackgroundServer
from blockrank.serve.service import create_app  # noqa: E402

DOCS = ["Paris is the capital of France.", "Bananas are yellow.", "The Eiffel tower is in Paris."]


@pytest.fixture(scope="module")
def reranker(tiny_model_dir):
    return Reranker.from_pretrained(tiny_model_dir, layer=1, block_tokens=16)


def test_blockrank_as_a_rerankers_ranker(reranker):
    from blockrank.integrations.rerankers import BlockRankRanker

    ranked = BlockRankRanker(reranker).rank("capital of France", DOCS, doc_ids=["a", "b", "c"])
    expected = reranker.rerank("capital of France", DOCS)
    assert [r.document.doc_id for r in ranked.results] == [["a", "b", "c"][e.index] for e in expected]
    assert [r.rank for r in ranked.results] == [1, 2, 3]
    assert [r.score for r in ranked.top_k(2)] == pytest.approx([e.score for e in expected[:2]])


def test_rerankers_cohere_api_ranker_calls_our_service(reranker):
    from rerankers import Reranker as RerankersReranker

    with BackgroundServer(create_app(reranker)) as url:
        ranker = RerankersReranker(
            "blockrank", model_type="APIRanker", api_provider="cohere", api_key="unused", url=f"{url}/v1/rerank", verbose=0
        )
        ranked = ranker.rank("capital of France", DOCS)
    expected = reranker.rerank("capital of France", DOCS)
    assert [r.document.text for r in ranked.results] == [e.document.text for e in expected]
