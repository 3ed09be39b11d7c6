"""Every rerank endpoint answers in the published Cohere / TEI shape, checked three independent ways:
our strict models (no field the schema lacks, every type right), Cohere's SDK (nothing left in ``model_extra``)
and LiteLLM, a client that validates Cohere answers with its own types, through its public ``litellm.rerank``."""

from __future__ import annotations

import httpx
import pytest
from pydantic import BaseModel, TypeAdapter

from blockrank import Reranker
from blockrank.serve.background import BackgroundServer
from blockrank.serve.schemas import HEADERS, CohereResponse, CohereV1Response, TeiResult
from blockrank.serve.service import Limits, create_app

DOCS = ["Paris is the capital of France.", "Bananas are yellow.", "The Eiffel tower is in Paris.", "long " * 100]
COHERE_BODIES = [
    {"query": "capital of France", "documents": DOCS},
    {"query": "capital of France", "documents": DOCS, "top_n": 2, "return_documents": True},
    {"query": "capital", "documents": [{"text": d, "id": f"d{i}"} for i, d in enumerate(DOCS)], "return_documents": True},
    {"query": "capital", "documents": DOCS, "max_tokens_per_doc": 4},
]


@pytest.fixture(scope="module")
def served(tiny_model_dir):
    reranker = Reranker.from_pretrained(tiny_model_dir, layer=1, block_tokens=16, max_tokens_per_doc=64)
    with BackgroundServer(create_app(reranker, Limits(max_documents=8))) as url:
        yield reranker, url


CASES = [
    (path, name, body)
    for name, body in zip(["plain", "top_n+documents", "dict-documents", "truncated"], COHERE_BODIES)
    for path in ["/rerank", "/v1/rerank", "/v2/rerank"]
    # v2 takes plain-string documents and never returns them
    if not (path == "/v2/rerank" and (body.get("return_documents") or isinstance(body["documents"][0], dict)))
]


@pytest.mark.parametrize("path,name,body", CASES, ids=[f"{name}-{path}" for path, name, _ in CASES])
def test_cohere_answers_validate_strictly(served, path, name, body):
    reranker, url = served
    r = httpx.post(f"{url}{path}", json=body)
    assert r.status_code == 200, r.text
    body_json = r.json()
    if path != "/v2/rerank":  # v1 answers also carry Jina's two fields, which Jina's clients read
        jina = CohereV1Response.model_validate(body_json)
        assert jina.model and jina.usage and jina.usage.total_tokens == body_json["meta"]["tokens"]["input_tokens"]
        body_json = {k: v for k, v in body_json.items() if k not in ("model", "usage")}
    answer = CohereResponse.model_validate(body_json)  # strict: an extra or mistyped field raises
    assert answer.meta.api_version.version == ("2" if path == "/v2/rerank" else "1")
    assert answer.meta.tokens.input_tokens > 0 and answer.meta.tokens.output_tokens == 0
    assert all(x.document is not None for x in answer.results) == bool(body.get("return_documents"))
    assert r.headers[HEADERS["model"]] and float(r.headers[HEADERS["latency"]]) > 0
    budget = body.get("max_tokens_per_doc", 64)
    cut = reranker.rerank_report("capital", DOCS, max_tokens_per_doc=budget).truncated
    assert r.headers[HEADERS["truncated"]] == ",".join(map(str, cut))
    if budget == 64:  # only the last document is over the reranker's 64 tokens
        assert answer.meta.warnings == ["document 3 was truncated to 64 tokens"]
    else:
        assert answer.meta.warnings == [f"documents {', '.join(map(str, cut))} were truncated to {budget} tokens"]


def test_tei_answers_validate_strictly(served):
    _, url = served
    for body in [
        {"query": "capital", "texts": DOCS},
        {"query": "capital", "texts": DOCS, "return_text": True, "raw_scores": True},
    ]:
        r = httpx.post(f"{url}/rerank", json=body)
        ranks = TypeAdapter(list[TeiResult]).validate_python(r.json())
        assert sorted(x.index for x in ranks) == list(range(len(DOCS)))
        assert all((x.text is not None) == bool(body.get("return_text")) for x in ranks)


def _no_extras(model: BaseModel, where: str = "response", allowed: frozenset[str] = frozenset()) -> None:
    """The SDK's models accept anything and keep what they do not know in ``model_extra``: it must hold nothing but
    ``allowed``."""
    extra = set(model.model_extra or {}) - allowed
    assert not extra, f"{where} has fields outside Cohere's schema: {sorted(extra)}"
    for name, value in model:
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, BaseModel):
                _no_extras(item, f"{where}.{name}" + (f"[{i}]" if isinstance(value, list) else ""))


def test_cohere_sdk_finds_nothing_outside_its_schema(served):
    cohere = pytest.importorskip("cohere")
    _, url = served
    v2 = cohere.ClientV2(api_key="unused", base_url=url).rerank(
        model="blockrank", query="capital", documents=DOCS, max_tokens_per_doc=4
    )
    v1 = cohere.Client(api_key="unused", base_url=url).rerank(
        model="blockrank", query="capital", documents=DOCS, return_documents=True
    )
    _no_extras(v2)
    _no_extras(v1, allowed=frozenset({"model", "usage"}))  # Jina's fields on the path Jina's clients share
    assert v2.meta.tokens.input_tokens > 0 and v2.meta.warnings


@pytest.fixture(scope="module")
def litellm():
    return pytest.importorskip("litellm")  # conftest.py keeps it from fetching its price list


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_litellm_client(served, litellm, version):
    reranker, url = served
    response = litellm.rerank(
        model="cohere/rerank-english-v3.0",
        api_base=f"{url}/{version}/rerank",
        api_key="unused",
        query="capital of France",
        documents=DOCS,
        top_n=3,
        **({"return_documents": True} if version == "v1" else {}),
    )
    expected = reranker.rerank("capital of France", DOCS, top_k=3)
    assert [r["index"] for r in response.results] == [e.index for e in expected]
    assert [r["relevance_score"] for r in response.results] == pytest.approx([e.score for e in expected])
    assert response.meta["tokens"]["input_tokens"] > 0
    if version == "v1":
        assert [r["document"]["text"] for r in response.results] == [DOCS[e.index] for e in expected]


def test_litellm_infinity_provider_without_documents(served, litellm):
    """LiteLLM's infinity provider reads `document` as a string (Infinity's shape), which the Cohere shape of /rerank
    cannot give; with return_documents=False its answers parse (README, "Serve it")."""
    reranker, url = served
    response = litellm.rerank(
        model="infinity/blockrank",
        api_base=url,
        api_key="unused",
        query="capital of France",
        documents=DOCS,
        top_n=2,
        return_documents=False,
    )
    expected = reranker.rerank("capital of France", DOCS, top_k=2)
    assert [r["index"] for r in response.results] == [e.index for e in expected]
