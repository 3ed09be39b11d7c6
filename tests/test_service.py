"""The HTTP service, over real HTTP against uvicorn on a loopback port."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from blockrank import Reranker
from blockrank.serve.background import BackgroundServer as LiveServer
from blockrank.serve.service import Limits, create_app


@pytest.fixture(scope="module")
def reranker(tiny_model_dir):
    return Reranker.from_pretrained(tiny_model_dir, layer=1, block_tokens=16, max_tokens_per_doc=64)


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
    assert len(body["results"]) == 2 and body["meta"]["tokens"]["input_tokens"] > 0
    scores = [x["relevance_score"] for x in body["results"]]
    assert scores == sorted(scores, reverse=True)
    expected = reranker.rerank("capital of France", DOCS, top_k=2)
    assert [x["index"] for x in body["results"]] == [e.index for e in expected]
    assert body["results"][0]["document"] == {"text": DOCS[expected[0].index]}


def test_v1_alias_and_dict_documents(url):
    docs = [{"text": d, "id": f"d{i}"} for i, d in enumerate(DOCS)]
    r = httpx.post(f"{url}/v1/rerank", json={"query": "q", "documents": docs, "return_documents": True})
    assert r.status_code == 200
    assert all(x["document"] == {"text": DOCS[x["index"]]} for x in r.json()["results"])  # Cohere's shape: text only


def test_tei_shape(url):
    r = httpx.post(f"{url}/rerank", json={"query": "capital", "texts": DOCS, "return_text": True})
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, list) and len(body) == 3 and {"index", "score", "text"} <= set(body[0])
    raw = httpx.post(f"{url}/rerank", json={"query": "capital", "texts": DOCS, "raw_scores": True}).json()
    assert all(x["score"] <= 0 for x in raw)  # log attention mass


def test_truncation_is_reported(url):
    r = httpx.post(f"{url}/rerank", json={"query": "q", "documents": ["short", "long " * 200], "max_tokens_per_doc": 8})
    assert r.headers["X-BlockRank-Truncated"] == "1"
    assert r.json()["meta"]["warnings"] == ["document 1 was truncated to 8 tokens"]
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


def test_health_info_docs(url, tiny_model_dir):
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    info = httpx.get(f"{url}/info").json()
    assert info["layer"] == 1 and info["limits"]["max_documents"] == 5
    assert info["model"] == tiny_model_dir.name  # the model's name, not the server's path to it
    r = httpx.post(f"{url}/rerank", json={"query": "q", "documents": DOCS})
    assert r.headers["X-BlockRank-Model"] == tiny_model_dir.name
    assert httpx.get(f"{url}/openapi.json").status_code == 200
    assert httpx.get(f"{url}/docs").status_code == 200


def test_concurrent_requests_do_not_interfere(url, reranker):
    queries = [f"query {i}" for i in range(6)]
    expected = {q: [r.index for r in reranker.rerank(q, DOCS)] for q in queries}
    results = {}

    def call(q):
        body = httpx.post(f"{url}/rerank", json={"query": q, "documents": DOCS}, timeout=60).json()
        results[q] = [x["index"] for x in body["results"]]

    threads = [threading.Thread(target=call, args=(q,)) for q in queries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected


class Gate:
    """A reranker whose calls announce themselves (``entered``) and then wait until the test opens the gate."""

    def __init__(self, reranker):
        self.reranker, self.entered, self.open = reranker, threading.Semaphore(0), threading.Event()

    def __getattr__(self, name):
        return getattr(self.reranker, name)

    def rerank_report(self, *args, **kwargs):
        self.entered.release()
        assert self.open.wait(30), "the test never opened the gate"
        return self.reranker.rerank_report(*args, **kwargs)


def post_in_background(url: str, statuses: list) -> threading.Thread:
    t = threading.Thread(
        target=lambda: statuses.append(
            httpx.post(f"{url}/rerank", json={"query": "q", "documents": DOCS}, timeout=30).status_code
        )
    )
    t.start()
    return t


def test_request_timeout_answers_504(reranker):
    gate = Gate(reranker)
    try:
        with LiveServer(create_app(gate, Limits(request_timeout_s=0.2))) as base:
            r = httpx.post(f"{base}/rerank", json={"query": "q", "documents": DOCS}, timeout=30)
    finally:
        gate.open.set()
    assert r.status_code == 504 and "longer than" in r.json()["error"]


def test_graceful_shutdown_finishes_in_flight_requests(reranker):
    gate, statuses = Gate(reranker), []
    server = LiveServer(create_app(gate))
    with server as base:
        t = post_in_background(base, statuses)
        assert gate.entered.acquire(timeout=30)  # the request is in flight
        # open the gate only once shutdown has begun
        threading.Thread(target=lambda: (_wait_for(lambda: server.server.should_exit), gate.open.set())).start()
    t.join()
    assert statuses == [200]


def _wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_full_queue_answers_503(reranker):
    gate, statuses = Gate(reranker), []
    app = create_app(gate, Limits(max_queue=2))
    with LiveServer(app) as base:
        threads = [post_in_background(base, statuses) for _ in range(2)]
        assert gate.entered.acquire(timeout=30)  # one is running
        _wait_for(lambda: app.state.service.waiting == 2)  # and the other is queued behind it
        busy = httpx.post(f"{base}/rerank", json={"query": "q", "documents": DOCS}, timeout=30)
        gate.open.set()
        for t in threads:
            t.join()
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert statuses == [200, 200]


def test_query_and_prompt_token_limits(reranker):
    limits = Limits(max_query_tokens=20, max_prompt_tokens=400)
    with LiveServer(create_app(reranker, limits)) as base:
        r = httpx.post(f"{base}/rerank", json={"query": "why " * 5000, "documents": ["short"]})
        assert r.status_code == 422 and r.json()["field"] == "query"
        assert "over the limit of 20" in r.json()["error"]
        r = httpx.post(f"{base}/rerank", json={"query": "q", "documents": ["words " * 10] * 40})
        assert r.status_code == 422 and r.json()["field"] == "documents" and "over the limit of 400" in r.json()["error"]
        assert httpx.post(f"{base}/rerank", json={"query": "q", "documents": DOCS}).status_code == 200
        # split passages count: 5 documents read whole (64 tokens each, ~6 passages) are over the limit, though their
        # first blocks alone (16 tokens each) would fit; refused before the model runs
        forwards = []
        hook = reranker.model.model.layers[0].register_forward_pre_hook(lambda *_: forwards.append(1))
        try:
            r = httpx.post(f"{base}/rerank", json={"query": "q", "documents": ["words " * 100] * 5})
            assert r.status_code == 422 and r.json()["field"] == "documents" and forwards == []
            assert httpx.post(f"{base}/rerank", json={"query": "q", "documents": DOCS}).status_code == 200
            assert forwards  # the hook sees the model run
        finally:
            hook.remove()
        assert reranker.prompt("q", ["words " * 100] * 5, split=False).num_tokens < 400


class SlowLayers:
    """Makes each decoder layer of ``reranker`` take ``seconds`` for prompts longer than ``over`` tokens."""

    def __init__(self, reranker, seconds: float, over: int):
        self.hooks = [layer.register_forward_pre_hook(self.wait) for layer in reranker.model.get_decoder().layers]
        self.seconds, self.over, self.layers_run = seconds, over, 0

    def wait(self, module, args):
        if args[0].shape[:-1].numel() > self.over:  # tokens in this forward (a group of documents, or all)
            self.layers_run += 1
            time.sleep(self.seconds)

    def remove(self):
        for h in self.hooks:
            h.remove()


def test_timed_out_work_is_cancelled(tiny_model_dir):
    """A slow request that times out stops at the next layer: the request behind it is not held up."""
    reranker = Reranker.from_pretrained(tiny_model_dir, layer=2, block_tokens=16)  # 3 layers run
    slow = SlowLayers(reranker, seconds=0.6, over=200)
    try:
        with LiveServer(create_app(reranker, Limits(request_timeout_s=0.5))) as base:
            first = httpx.post(f"{base}/rerank", json={"query": "q", "documents": ["many words here"] * 40}, timeout=30)
            second = httpx.post(f"{base}/rerank", json={"query": "q", "documents": DOCS}, timeout=30)
        assert first.status_code == 504
        # uncancelled, the slow request would hold the worker for 1.8 s and the second would time out too
        assert second.status_code == 200 and slow.layers_run == 1
    finally:
        slow.remove()


def test_a_client_that_hangs_up_cancels_its_work(tiny_model_dir):
    reranker = Reranker.from_pretrained(tiny_model_dir, layer=2, block_tokens=16)
    slow = SlowLayers(reranker, seconds=0.5, over=200)
    try:
        with LiveServer(create_app(reranker)) as base:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(f"{base}/rerank", json={"query": "q", "documents": ["many words here"] * 40}, timeout=0.2)
            start = time.perf_counter()
            assert httpx.post(f"{base}/rerank", json={"query": "q", "documents": DOCS}, timeout=30).status_code == 200
            assert time.perf_counter() - start < 1.2  # not after all three 0.5 s layers of the abandoned request
            assert slow.layers_run == 1
    finally:
        slow.remove()


class Broken:
    def __init__(self, reranker):
        self.reranker = reranker

    def __getattr__(self, name):
        return getattr(self.reranker, name)

    def rerank_report(self, *args, **kwargs):
        raise RuntimeError("secret internal detail")


def test_a_bug_answers_500_with_a_request_id_and_logs_the_details(reranker, caplog):
    with LiveServer(create_app(Broken(reranker))) as base:
        r = httpx.post(f"{base}/rerank", json={"query": "q", "documents": DOCS}, timeout=30)
    request_id = r.headers["x-request-id"]
    assert r.status_code == 500 and request_id in r.json()["error"]
    assert "secret" not in r.text  # the client never sees internals
    logged = [rec for rec in caplog.records if request_id in rec.getMessage()]
    assert logged and "secret internal detail" in str(logged[0].exc_info[1])


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v2/rerank", b'{"query": "\\ud800", "documents": ["a"]}', "query"),
        ("/v1/rerank", b'{"query": "q", "documents": ["ok", "bad \\udfff"]}', "documents[1]"),
        ("/rerank", b'{"query": "q", "texts": ["\\ud83d"]}', "texts[0]"),
    ],
)
def test_text_utf8_cannot_hold_is_a_400_naming_the_field(url, path, body, field):
    r = httpx.post(f"{url}{path}", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["field"] == field and "UTF-8" in r.json()["error"]


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
def test_malformed_json_and_bad_utf8_are_400s_in_our_shape(url, path):
    for body in (b"{not json", b'{"query": "q", "documents": ["a"', b'{"query": "\xff\xfe", "documents": ["a"]}'):
        r = httpx.post(f"{url}{path}", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, (body, r.text)
        assert r.json()["field"] == "body" and set(r.json()) == {"error", "field"}


def test_unknown_paths_and_methods_answer_in_our_shape(url):
    r = httpx.get(f"{url}/v3/rerank")
    assert r.status_code == 404 and r.json() == {"error": "no such path: /v3/rerank"}
    r = httpx.get(f"{url}/v1/rerank")
    assert r.status_code == 405 and r.json() == {"error": "GET is not allowed on /v1/rerank"}


def test_a_chunked_body_is_counted_as_it_arrives(url):
    sent = []

    def chunks():
        for _ in range(2000):  # 2 MB offered against a 20 kB limit
            sent.append(1)
            yield b'{"query": "q", "documents": [' + b'"x",' * 250

    r = httpx.post(f"{url}/rerank", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["field"] == "body"
    assert len(sent) < 2000  # refused before the client had sent it all
    assert httpx.post(f"{url}/rerank", json={"query": "q", "documents": DOCS}).status_code == 200  # and the next one runs


def test_a_small_chunked_body_is_served(url, reranker):
    def chunks():
        yield b'{"query": "capital of France", '
        yield b'"documents": ["Paris is the capital of France.", "Bananas are yellow."]}'

    r = httpx.post(f"{url}/v2/rerank", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 200 and len(r.json()["results"]) == 2


def test_max_tokens_per_doc_over_the_servers_limit_is_refused(url):
    r = httpx.post(f"{url}/v2/rerank", json={"query": "q", "documents": ["a"], "max_tokens_per_doc": 10**9})
    assert r.status_code == 422 and r.json()["field"] == "max_tokens_per_doc" and "4096" in r.json()["error"]


def test_v1_rank_fields_are_honoured(url, reranker):
    docs = [{"title": "Bananas", "body": "yellow fruit", "id": "a"}, {"title": "Paris", "body": "capital of France"}]
    body = {"query": "capital of France", "documents": docs, "rank_fields": ["body", "title"], "return_documents": True}
    r = httpx.post(f"{url}/v1/rerank", json=body)
    assert r.status_code == 200, r.text
    texts = ["body: yellow fruit\ntitle: Bananas", "body: capital of France\ntitle: Paris"]
    expected = reranker.rerank("capital of France", texts)
    assert [x["index"] for x in r.json()["results"]] == [e.index for e in expected]
    assert r.json()["results"][0]["document"] == {"text": texts[expected[0].index]}
    r = httpx.post(f"{url}/v1/rerank", json={**body, "rank_fields": ["author"]})
    assert r.status_code == 422 and r.json()["field"] == "documents[0]"


def test_input_order_is_a_request_field(url, reranker):
    body = {"query": "capital of France", "documents": DOCS}
    for order in ("ranked", "unordered", "auto"):
        r = httpx.post(f"{url}/v2/rerank", json={**body, "input_order": order})
        expected = reranker.rerank("capital of France", DOCS, input_order=order)
        assert [x["index"] for x in r.json()["results"]] == [e.index for e in expected]
    r = httpx.post(f"{url}/rerank", json={"query": "q", "texts": DOCS, "input_order": "sorted"})
    assert r.status_code == 422 and r.json()["field"] == "input_order"


def test_jina_fields_in_v1_answers(url):
    r = httpx.post(f"{url}/v1/rerank", json={"model": "jina-reranker-v2", "query": "q", "documents": DOCS, "top_n": 2})
    body = r.json()
    assert body["model"] and body["usage"]["total_tokens"] > 0 and len(body["results"]) == 2
    assert "model" not in httpx.post(f"{url}/v2/rerank", json={"query": "q", "documents": DOCS}).json()
