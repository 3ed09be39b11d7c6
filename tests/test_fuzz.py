"""Property-based fuzzing of the service from its own OpenAPI schema (schemathesis), on a loopback server."""

from __future__ import annotations

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from blockrank import Reranker  # noqa: E402
from blockrank.background import BackgroundServer  # noqa: E402
from blockrank.service import Limits, create_app  # noqa: E402


@pytest.fixture(scope="module")
def base_url(tiny_model_dir):
    reranker = Reranker.from_pretrained(tiny_model_dir, layer=1, max_doc_tokens=16)
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


def test_still_healthy_after_fuzzing(base_url):
    assert httpx.get(f"{base_url}/health").json() == {"status": "ok"}
    r = httpx.post(f"{base_url}/v2/rerank", json={"query": "q", "documents": ["a", "b"]})
    assert r.status_code == 200 and len(r.json()["results"]) == 2
