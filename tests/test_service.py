"""The HTTP service, over real HTTP against uvicorn on a loopback port."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn

from blockrank import Reranker
from blockrank.service import Limits, create_app


class LiveServer:
    """uvicorn in a background thread on a free 127.0.0.1 port."""

    def __init__(self, app):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def reranker(tiny_model_dir):
    return Reranker.from_pretrained(tiny_model_dir, layer=1, max_doc_tokens=16)


@pytest.fixture(scope="module")
def url(reranker):
    limits = Limits(max_documents=5, max_document_chars=2000, max_body_bytes=20_000, max_queue=8)
    with LiveServer(create_app(reranker, limits)) as base:
        yield base


DOCS = ["Paris is the capital of France.", "Bananas are yellow.", "The Eiffel tower is in Paris."]


def test_cohere_rerank(url, reranker):
    r = httpx.post(f"{url}/rerank", json={"query": "capital of France", "documents": DOCS, "top_n": 2, "return_documents": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["results"]) == 2 and body["meta"]["tokens"] > 0
    scores = [x["relevance_score"] for x in body["results"]]
    assert scores == sorted(scores, reverse=True)
    expected = reranker.rerank("capital of France", DOCS, top_k=2)
    assert [x["index"] for x in body["results"]] == [e.index for e in expected]
    assert body["results"][0]["document"] == {"text": DOCS[expected[0].index]}


def test_v1_alias_and_dict_documents(url):
    docs = [{"text": d, "id": f"d{i}"} for i, d in enumerate(DOCS)]
    r = httpx.post(f"{url}/v1/rerank", json={"query": "q", "documents": docs, "return_documents": True})
    assert r.status_code == 200
    assert {x["document"]["id"] for x in r.json()["results"]} == {"d0", "d1", "d2"}


def test_tei_shape(url):
    r = httpx.post(f"{url}/rerank", json={"query": "capital", "texts": DOCS, "return_text": True})
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, list) and len(body) == 3 and {"index", "score", "text"} <= set(body[0])
    raw = httpx.post(f"{url}/rerank", json={"query": "capital", "texts": DOCS, "raw_scores": True}).json()
    assert all(x["score"] <= 0 for x in raw)  # log attention mass


def test_truncation_is_reported(url):
    r = httpx.post(f"{url}/rerank", json={"query": "q", "documents": ["short", "long " * 200], "max_tokens_per_doc": 8})
    assert r.json()["meta"]["truncated_documents"] == [1]
    r = httpx.post(f"{url}/rerank", json={"query": "q", "texts": ["short", "long " * 200], "truncate": False})
    assert r.status_code == 413 and "over the budget" in r.json()["error"]


@pytest.mark.parametrize(
    "body,status,field",
    [
        ({"query": "", "documents": ["a"]}, 422, "query"),
        ({"query": "q", "documents": []}, 422, "documents"),
        ({"query": "q", "documents": ["a"] * 6}, 422, "documents"),
        ({"query": "q", "documents": ["x" * 2001]}, 422, "documents[0]"),
        ({"query": "q", "documents": [{"title": "t"}]}, 422, "documents[0].text"),
        ({"query": "q", "documents": ["a"], "top_n": 0}, 422, "top_n"),
        ({"documents": ["a"]}, 422, "query"),
        ({"query": "q", "texts": "notalist"}, 422, "texts"),
        ({"query": "q", "documents": [3]}, 422, "documents.0"),
    ],
)
def test_validation_errors_name_the_field(url, body, status, field):
    r = httpx.post(f"{url}/rerank", json=body)
    assert r.status_code == status, r.text
    assert r.json()["field"].startswith(field)


def test_malformed_and_oversized_bodies(url):
    r = httpx.post(f"{url}/rerank", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["field"] == "body"
    r = httpx.post(f"{url}/rerank", json={"query": "q", "documents": ["a" * 1500] * 15})
    assert r.status_code == 413


def test_health_info_docs(url):
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    info = httpx.get(f"{url}/info").json()
    assert info["layer"] == 1 and info["limits"]["max_documents"] == 5
    assert httpx.get(f"{url}/openapi.json").status_code == 200
    assert httpx.get(f"{url}/docs").status_code == 200


def test_concurrent_requests_do_not_interfere(url, reranker):
    queries = [f"query {i}" for i in range(6)]
    expected = {q: [r.index for r in reranker.rerank(q, DOCS)] for q in queries}
    results = {}

    def call(q):
        results[q] = [x["index"] for x in httpx.post(f"{url}/rerank", json={"query": q, "documents": DOCS}, timeout=60).json()["results"]]

    threads = [threading.Thread(target=call, args=(q,)) for q in queries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected


def test_full_queue_answers_503(reranker):
    slow = threading.Event()

    class Blocking:
        """Wraps the reranker so the worker stays busy until released."""

        def __getattr__(self, name):
            return getattr(reranker, name)

        def rank(self, *args, **kwargs):
            slow.wait(10)
            return reranker.rank(*args, **kwargs)

    with LiveServer(create_app(Blocking(), Limits(max_queue=2))) as base:
        with httpx.Client(timeout=30) as client:
            statuses = []
            threads = [threading.Thread(target=lambda: statuses.append(
                client.post(f"{base}/rerank", json={"query": "q", "documents": DOCS}).status_code)) for _ in range(2)]
            for t in threads:
                t.start()
            time.sleep(0.5)
            busy = client.post(f"{base}/rerank", json={"query": "q", "documents": DOCS})
            slow.set()
            for t in threads:
                t.join()
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert statuses == [200, 200]
