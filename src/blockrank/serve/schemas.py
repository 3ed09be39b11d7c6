"""The wire formats the service speaks: Cohere's rerank API (v1 and v2) and Hugging Face TEI's ``/rerank``.

Response models are strict (``extra="forbid"``) and follow the published schemas field for field, so a client
that validates against those schemas accepts every answer. The service's own details (model name, truncated
documents, latency) travel where the schemas leave room: Cohere's ``meta.warnings`` and response headers
(``HEADERS``). Request models accept what the published APIs accept and ignore fields we do not use.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

HEADERS = {"model": "X-BlockRank-Model", "truncated": "X-BlockRank-Truncated", "latency": "X-BlockRank-Latency-Ms"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- Cohere ------------------------------------------------------------------------------------------------------


class CohereRequest(BaseModel):
    """Cohere API v1 (``cohere.Client.rerank``): documents are strings or objects with ``text``, or with the
    ``rank_fields`` to read, in order. ``input_order`` is our extension (:data:`blockrank.defaults.INPUT_ORDERS`)."""

    query: str
    documents: list[str | dict[str, Any]]
    top_n: int | None = Field(default=None, gt=0)
    return_documents: bool = False
    max_tokens_per_doc: int | None = Field(default=None, gt=0)
    rank_fields: list[str] | None = None
    model: str | None = None
    input_order: str | None = None


class CohereV2Request(BaseModel):
    """Cohere API v2 (``cohere.ClientV2.rerank``): plain-string documents, no ``return_documents``."""

    query: str
    documents: list[str]
    top_n: int | None = Field(default=None, gt=0)
    max_tokens_per_doc: int | None = Field(default=None, gt=0)
    model: str | None = None
    input_order: str | None = None


class CohereDocument(Strict):
    text: str


class CohereResult(Strict):
    index: int
    relevance_score: float
    document: CohereDocument | None = None  # v1 only, with return_documents


class ApiVersion(Strict):
    version: str
    is_deprecated: bool | None = None
    is_experimental: bool | None = None


class BilledUnits(Strict):
    images: int | float | None = None
    input_tokens: int | float | None = None
    image_tokens: int | float | None = None
    text_tokens: int | float | None = None
    output_tokens: int | float | None = None
    search_units: int | float | None = None
    classifications: int | float | None = None


class Tokens(Strict):
    input_tokens: int | float | None = None
    output_tokens: int | float | None = None


class ApiMeta(Strict):
    api_version: ApiVersion | None = None
    billed_units: BilledUnits | None = None
    tokens: Tokens | None = None
    warnings: list[str] | None = None


class CohereResponse(Strict):
    id: str | None = None
    results: list[CohereResult]
    meta: ApiMeta | None = None


class JinaUsage(Strict):
    total_tokens: int
    prompt_tokens: int


class CohereV1Response(CohereResponse):
    """``/v1/rerank`` is also Jina's path, and Jina's clients read ``model`` and ``usage`` (Cohere's ignore them)."""

    model: str | None = None
    usage: JinaUsage | None = None


# --- TEI ---------------------------------------------------------------------------------------------------------


class TeiRequest(BaseModel):
    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool = True
    input_order: str | None = None


class TeiResult(Strict):
    index: int
    score: float
    text: str | None = None


class ErrorBody(BaseModel):
    error: str
    field: str | None = None
