"""The service through Cohere's own Python SDK (v2 and v1 clients), on a loopback port."""

from __future__ import annotations

import pytest

from blockrank import Reranker
from blockrank.serve.background import BackgroundServer
from blockrank.serve.service import Limits, create_app

cohere = pytest.importorskip("cohere")

DOCS = ["Paris is the capital of France.", "Bananas are yellow.", "The Eiffel tower is in Paris.", "Rain is wet."]


@pytest.fixture(scope="module")
def served(tiny_model_dir):
    reranker = Reranker.from_pretrained(tiny_model_dir, layer=1, block_tokens=16)
    with BackgroundServer(create_app(reranker, Limits(max_documents=5))) as url:
        yield reranker, url


def test_client_v2_rerank(served):
    reranker, url = served
    client = cohere.ClientV2(api_key="unused", base_url=url)
    response = client.rerank(model="blockrank", query="capital of France", documents=DOCS, top_n=2)
    expected = reranker.rerank("capital of France", DOCS, top_k=2)
    assert [r.index for r in response.results] == [e.index for e in expected]
    assert [r.relevance_score for r in response.results] == pytest.approx([e.score for e in expected])
    cut = client.rerank(model="blockrank", query="q", documents=["short", "long " * 100], max_tokens_per_doc=4)
    assert len(cut.results) == 2


def test_client_v1_rerank_returns_documents(served):
    _, url = served
    client = cohere.Client(api_key="unused", base_url=url)
    response = client.rerank(model="blockrank", query="capital of France", documents=DOCS, top_n=3, return_documents=True)
    assert len(response.results) == 3
    assert all(r.document.text == DOCS[r.index] for r in response.results)


def test_errors_reach_the_sdk_as_its_exceptions(served):
    _, url = served
    client = cohere.ClientV2(api_key="unused", base_url=url)
    with pytest.raises(cohere.core.ApiError) as err:
        client.rerank(model="blockrank", query="q", documents=DOCS * 2)
    assert err.value.status_code == 422 and "8 documents exceed the limit of 5" in str(err.value.body)
    with pytest.raises(cohere.UnprocessableEntityError, match="query is empty"):
        client.rerank(model="blockrank", query=" ", documents=DOCS)
