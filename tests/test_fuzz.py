"""Property-based fuzzing of the service from its own OpenAPI schema (schemathesis), on a loopback server."""

from __future__ import annotations

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from blockrank import Reranker  # noqa: E402
from blockrank.serve.background import BackgroundServer  # noqa: E402
from blockrank.serve.service import Limits, create_app  # noqa: E402


@pytest.fixture(scope="module")
def base_url(tiny_model_dir):
    reranker = Reranker.from_pretrained(tiny_model_dir, layer=1, block_tokens=16)
    limits = Limits(max_documents=20, max_document_chars=500, max_body_bytes=50_000, request_timeout_s=10)
    with BackgroundServer(create_app(reranker, limits)) as url:
        yield url


def test_api_holds_its_schema(base_url):
    """Every operation, a bounded number of generated requests each: no 5xx but the documented 503/504, and
    every response matches the schema. (Driven through hypothesis directly: schemathesis' pytest plugin does
    not run under pytest 9.)"""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /v1/rerank", "POST /v2/rerank"}
    for op in operations:

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        @given(case=op.as_strategy())
        def holds(case):
            # Schema-valid bodies may still be refused with 4xx: the token limits cannot be said in JSON Schema.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        holds()


SEEDS = [
    b'{"query": "capital of France", "documents": ["Paris is in France.", {"text": "Bananas"}], "top_n": 1}',
    b'{"query": "q", "texts": ["a", "b"], "raw_scores": true}',
    b'{"query": "q", "documents": ["a"], "max_tokens_per_doc": 4, "return_documents": true}',
]
NASTY = [b"\\ud800", b"\\udfff", b"\xff", b"\xc3", b"\x00", b"\\", b'"', b"{", b"]", b"\xed\xa0\x80", b"1e999", b"null"]


def _mutations(n: int, seed: int = 0):
    """Raw bodies near valid ones: truncated, with bytes dropped, or with bad UTF-8, lone surrogates or JSON
    punctuation spliced in (deterministic)."""
    import random

    rng = random.Random(seed)
    for _ in range(n):
        body = bytearray(rng.choice(SEEDS))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(body) + 1)
            kind = rng.random()
            if kind < 0.25:
                body = body[:at]
            elif kind < 0.5 and body:
                del body[min(at, len(body) - 1)]
            else:
                body[at:at] = rng.choice(NASTY)
        yield bytes(body)


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
def test_raw_byte_fuzzing_finds_no_5xx(base_url, path):
    """Malformed bytes, plain and chunked: every answer is a 2xx or a 4xx in our shape, never a 5xx."""
    with httpx.Client(base_url=base_url, headers={"content-type": "application/json"}) as client:
        for i, body in enumerate(_mutations(60, seed=len(path))):
            content = body if i % 2 else iter([body[: len(body) // 2], body[len(body) // 2 :]])  # odd: chunked
            r = client.post(path, content=content)
            assert r.status_code < 500, (body, r.status_code, r.text)
            if r.status_code >= 400:
                assert set(r.json()) <= {"error", "field"} and r.json()["error"], (body, r.text)


def test_still_healthy_after_fuzzing(base_url):
    assert httpx.get(f"{base_url}/health").json() == {"status": "ok"}
    r = httpx.post(f"{base_url}/v2/rerank", json={"query": "q", "documents": ["a", "b"]})
    assert r.status_code == 200 and len(r.json()["results"]) == 2
