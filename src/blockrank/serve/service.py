"""HTTP reranking service: Cohere's ``POST /v1/rerank`` and ``/v2/rerank``, and ``/rerank`` (Cohere's body, or TEI's).

The routes are module-level functions that find the runtime (:class:`blockrank.serve.worker.Service`: the model's one
worker thread and its queue) on ``app.state``. A full queue answers 503 with ``Retry-After`` instead of growing,
and every invalid request gets a 4xx JSON error that names the field.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from blockrank import __version__
from blockrank.defaults import INPUT_ORDERS, Limits
from blockrank.errors import (
    DocumentTooLongError,
    InputError,
    PromptTooLongError,
    QueryTooLongError,
    ServiceBusy,
    ServiceTimeout,
)
from blockrank.kernel.scoring import Cancelled
from blockrank.prompt import Document, as_documents
from blockrank.reranker import Reranker, RerankReport
from blockrank.serve.schemas import (
    HEADERS,
    CohereRequest,
    CohereResponse,
    CohereV1Response,
    CohereV2Request,
    ErrorBody,
    TeiRequest,
    TeiResult,
)
from blockrank.serve.worker import Service

logger = logging.getLogger("blockrank.serve.service")


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None):
        self.status, self.message, self.field, self.headers = status, message, field, headers


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": what}
    for status, what in [
        (400, "the body is not JSON"),
        (413, "the body or a document is too large"),
        (422, "a field is invalid or over a limit (named in `field`)"),
        (499, "the client closed the request; the work was cancelled"),
        (503, "the queue is full; retry after `Retry-After` seconds"),
        (504, "the request timed out; the work was cancelled"),
    ]
}
RERANK_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"anyOf": [CohereRequest.model_json_schema(), TeiRequest.model_json_schema()]}}},
}


def _encodable(text: str, field: str) -> None:
    """A string JSON allows but UTF-8 cannot hold (a lone surrogate such as ``"\\ud800"``) is refused by name."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ApiError(400, f"{field} holds a character UTF-8 cannot encode (U+{ord(text[err.start]):04X})", field) from None


def _validate(
    query: str, texts: list[str], field: str, limits: Limits, max_tokens_per_doc: int | None = None, input_order=None
) -> None:
    _encodable(query, "query")
    if input_order is not None and input_order not in INPUT_ORDERS:
        raise ApiError(422, f"input_order must be one of {', '.join(INPUT_ORDERS)}, got {input_order!r}", "input_order")
    if not query.strip():
        raise ApiError(422, "query is empty", "query")
    if not texts:
        raise ApiError(422, f"{field} is empty: give at least one document", field)
    if len(texts) > limits.max_documents:
        raise ApiError(422, f"{len(texts)} documents exceed the limit of {limits.max_documents}", field)
    if max_tokens_per_doc is not None and max_tokens_per_doc > limits.max_tokens_per_doc:
        raise ApiError(
            422,
            f"max_tokens_per_doc {max_tokens_per_doc} is over this server's limit of {limits.max_tokens_per_doc}",
            "max_tokens_per_doc",
        )
    for i, text in enumerate(texts):
        _encodable(text, f"{field}[{i}]")
        if len(text) > limits.max_document_chars:
            raise ApiError(
                422, f"document has {len(text)} characters, over the limit of {limits.max_document_chars}", f"{field}[{i}]"
            )


def _documents(documents: list, rank_fields: list[str] | None = None) -> list[Document]:
    if rank_fields is not None:
        documents = [_ranked_fields(d, rank_fields, i) for i, d in enumerate(documents)]
    try:
        return as_documents(documents)
    except InputError as err:  # not a list, empty, or a document without text
        index = getattr(err, "index", None)
        raise ApiError(422, str(err), "documents" if index is None else f"documents[{index}].text") from None


def _ranked_fields(document: str | dict, fields: list[str], i: int) -> str | dict:
    """Cohere v1's ``rank_fields``: an object document is read as its ``field: value`` lines, in the order given."""
    if not fields:
        raise ApiError(422, "rank_fields is empty: name the document fields to rank by, or leave it out", "rank_fields")
    if isinstance(document, str):
        return document  # a string document is its text field
    lines = [f"{f}: {document[f]}" for f in fields if f in document and document[f] is not None]
    if not lines:
        raise ApiError(422, f"document {i} has none of the rank_fields {fields}", f"documents[{i}]")
    return {**document, "text": "\n".join(lines)}


router = APIRouter()


def service_of(request: Request) -> Service:
    return request.app.state.service


@router.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@router.get("/info")
async def info(service: Service = Depends(service_of)) -> dict:
    return service.info()


def rerank_route(path: str, summary: str, answer: Any, **extra: Any) -> Callable:
    """A POST rerank route: its answer's model (None fields left out) and the error shapes every route shares."""
    return router.post(path, summary=summary, response_model=answer, response_model_exclude_none=True, responses=ERRORS, **extra)


@rerank_route(
    "/rerank",
    "Rerank documents (Cohere body, or TEI body when 'texts' is given)",
    CohereV1Response | list[TeiResult],
    openapi_extra={"requestBody": RERANK_BODY},
)
async def rerank(request: Request, response: Response, service: Service = Depends(service_of)):
    try:
        payload = await request.json()
    except ValueError:
        raise ApiError(400, "body is not valid JSON", "body") from None
    if not isinstance(payload, dict):
        raise ApiError(422, "body must be a JSON object", "body")
    if "texts" in payload:
        return await tei(service, _parse(TeiRequest, payload), request, response)
    return await cohere(service, _parse(CohereRequest, payload), request, response, "1")


@rerank_route("/v1/rerank", "Cohere API v1 rerank (what cohere.Client calls; Jina's clients call it too)", CohereV1Response)
async def rerank_v1(body: CohereRequest, request: Request, response: Response, service: Service = Depends(service_of)) -> dict:
    return await cohere(service, body, request, response, "1")


@rerank_route("/v2/rerank", "Cohere API v2 rerank (what cohere.ClientV2 calls)", CohereResponse)
async def rerank_v2(body: CohereV2Request, request: Request, response: Response, service: Service = Depends(service_of)) -> dict:
    return await cohere(service, CohereRequest(**body.model_dump()), request, response, "2")


async def cohere(service: Service, body: CohereRequest, request: Request, response: Response, version: str) -> dict:
    docs = _documents(body.documents, body.rank_fields)
    texts = [d.text for d in docs]
    _validate(body.query, [d.content for d in docs], "documents", service.limits, body.max_tokens_per_doc, body.input_order)
    start = time.perf_counter()
    ranking = await _ranked(
        service, body.query, docs, body.top_n, body.max_tokens_per_doc, input_order=body.input_order, request=request
    )
    results = []
    for r in ranking.results:
        item: dict[str, Any] = {"index": r.index, "relevance_score": r.score}
        if body.return_documents:
            item["document"] = {"text": texts[r.index]}
        results.append(item)
    meta: dict[str, Any] = {
        "api_version": {"version": version},
        "billed_units": {"search_units": math.ceil(len(texts) / 100)},
        "tokens": {"input_tokens": ranking.num_tokens, "output_tokens": 0},
    }
    if ranking.truncated:
        cut = ranking.truncated
        meta["warnings"] = [
            f"{'documents' if len(cut) > 1 else 'document'} {', '.join(map(str, cut))} "
            f"{'were' if len(cut) > 1 else 'was'} truncated to {ranking.doc_limit} tokens"
        ]
    _describe(response, service, ranking, start)
    answer = {"id": str(uuid.uuid4()), "results": results, "meta": meta}
    if version == "1":
        usage = {"total_tokens": ranking.num_tokens, "prompt_tokens": ranking.num_tokens}
        answer |= {"model": service.info()["model"], "usage": usage}
    return answer


async def tei(service: Service, body: TeiRequest, request: Request, response: Response) -> list[dict]:
    _validate(body.query, body.texts, "texts", service.limits, input_order=body.input_order)
    start = time.perf_counter()
    ranking = await _ranked(
        service, body.query, body.texts, None, None, truncate=body.truncate, input_order=body.input_order, request=request
    )
    out = []
    for r in ranking.results:
        item: dict[str, Any] = {"index": r.index, "score": raw_score(r, service.reranker) if body.raw_scores else r.score}
        if body.return_text:
            item["text"] = body.texts[r.index]
        out.append(item)
    _describe(response, service, ranking, start)
    return out


def create_app(reranker: Reranker, limits: Limits | None = None) -> FastAPI:
    """The FastAPI app serving ``reranker``."""
    service = Service(reranker, limits or Limits())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.pool.shutdown(wait=True)  # finish in-flight work on shutdown

    app = FastAPI(
        title="BlockRank",
        version=__version__,
        lifespan=lifespan,
        description="In-context reranking with structured sparse attention (Cohere- and TEI-compatible).",
    )
    app.state.service = service
    app.add_middleware(BodyLimit, max_bytes=service.limits.max_body_bytes)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, unexpected)
    app.include_router(router)
    return app


async def api_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, ApiError)
    return _error(err.status, err.message, err.field, err.headers)


async def http_error(request: Request, err: Exception) -> JSONResponse:
    """Starlette's own answers (unknown path, wrong method, a body it cannot decode) in our shape."""
    assert isinstance(err, HTTPException)
    messages = {404: f"no such path: {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}"}
    field = "body" if err.status_code == 400 else None
    return _error(err.status_code, messages.get(err.status_code, str(err.detail)), field, getattr(err, "headers", None))


async def invalid(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, RequestValidationError)
    first = err.errors()[0]
    if first.get("type") == "json_invalid":  # FastAPI reports malformed JSON as a validation error at a char offset
        return _error(400, f"body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})", "body")
    loc = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
    return _error(422, f"{loc}: {first['msg']}", loc)


async def unexpected(request: Request, err: Exception) -> JSONResponse:
    request_id = uuid.uuid4().hex[:16]  # the details stay in the server's log; the client gets the id to quote
    logger.error("request %s %s %s failed", request_id, request.method, request.url.path, exc_info=err)
    return _error(500, f"internal error (request id {request_id})", headers={"X-Request-Id": request_id})


class BodyLimit:
    """Answers 413 to a body over ``max_bytes``: at once when its Content-Length says so, else (a chunked body) as
    soon as the bytes received pass the limit, before anything parses them. Plain ASGI: Starlette's
    BaseHTTPMiddleware would hide client disconnects from the handlers, and they are how abandoned work gets
    cancelled."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit():
            if int(length) > self.max_bytes:
                return await self._refuse(f"body of {int(length)} bytes exceeds {self.max_bytes}", scope, receive, send)
            return await self.app(scope, receive, send)
        chunks, size = [], 0  # no declared length: read the body here, counting
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self._refuse(f"body exceeds {self.max_bytes} bytes", scope, receive, send)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: disconnects, as the handlers expect
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, message: str, scope, receive, send) -> None:
        await _error(413, message, "body", headers={"Connection": "close"})(scope, receive, send)


def raw_score(result, reranker: Reranker) -> float:
    """TEI's ``raw_scores``: the calibrated log-odds, or the log mass for a model without a calibration."""
    if reranker.calibration is None:
        return math.log(max(result.mass, 1e-30))
    p = min(max(result.score, 1e-15), 1 - 1e-15)
    return math.log(p / (1 - p))


def _describe(response: Response, service: Service, ranking: RerankReport, start: float) -> None:
    """Our details that the Cohere and TEI schemas have no field for go in headers."""
    response.headers[HEADERS["model"]] = service.info()["model"]
    response.headers[HEADERS["truncated"]] = ",".join(map(str, ranking.truncated))
    response.headers[HEADERS["latency"]] = f"{1000 * (time.perf_counter() - start):.1f}"


async def _ranked(
    service: Service,
    query,
    documents,
    top_n,
    max_tokens,
    truncate: bool = True,
    input_order: str | None = None,
    request: Request | None = None,
) -> RerankReport:
    try:
        return await service.run(query, documents, top_n, max_tokens, truncate, input_order, request)
    except ServiceBusy as err:
        raise ApiError(503, str(err), headers={"Retry-After": "1"}) from None
    except ServiceTimeout as err:
        raise ApiError(504, str(err)) from None
    except Cancelled:
        raise ApiError(499, "client closed the request") from None
    except DocumentTooLongError as err:
        raise ApiError(413, str(err), "texts") from None
    except QueryTooLongError as err:
        raise ApiError(422, str(err), "query") from None
    except PromptTooLongError as err:
        raise ApiError(422, str(err), "documents") from None
    except InputError as err:
        raise ApiError(422, str(err)) from None


def _parse(model: type[BaseModel], payload: dict) -> BaseModel:
    from pydantic import ValidationError

    try:
        return model.model_validate(payload)
    except ValidationError as err:
        raise RequestValidationError(err.errors()) from None


def _error(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    body = {"error": message} | ({"field": field} if field else {})
    return JSONResponse(status_code=status, content=body, headers=headers)
