"""HTTP reranking service: Cohere-style ``POST /rerank`` (and ``/v1/rerank``), TEI's shape too.

One worker thread owns the model, so concurrent requests never interleave inside it. Requests
wait in a bounded queue; when it is full the service answers 503 with ``Retry-After`` instead of
growing. Every invalid request gets a 4xx JSON error that names the field.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from . import __version__
from .api_schemas import (
    HEADERS,
    CohereRequest,
    CohereResponse,
    CohereV2Request,
    ErrorBody,
    TeiRequest,
    TeiResult,
)
from .defaults import Limits
from .errors import (
    DocumentTooLongError,
    InputError,
    PromptTooLongError,
    QueryTooLongError,
)
from .model import display_name
from .prompt import Document, as_documents
from .reranker import Reranker, RerankReport
from .scoring import Cancelled

logger = logging.getLogger("blockrank.service")


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None):
        self.status, self.message, self.field, self.headers = status, message, field, headers


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": what} for status, what in [
        (400, "the body is not JSON"), (413, "the body or a document is too large"),
        (422, "a field is invalid or over a limit (named in `field`)"),
        (499, "the client closed the request; the work was cancelled"),
        (503, "the queue is full; retry after `Retry-After` seconds"), (504, "the request timed out; the work was cancelled")]
}
RERANK_BODY = {"required": True, "content": {"application/json": {"schema": {"anyOf": [
    CohereRequest.model_json_schema(), TeiRequest.model_json_schema()]}}}}


def _validate(query: str, texts: list[str], field: str, limits: Limits) -> None:
    if not query.strip():
        raise ApiError(422, "query is empty", "query")
    if not texts:
        raise ApiError(422, f"{field} is empty: give at least one document", field)
    if len(texts) > limits.max_documents:
        raise ApiError(422, f"{len(texts)} documents exceed the limit of {limits.max_documents}", field)
    for i, text in enumerate(texts):
        if len(text) > limits.max_document_chars:
            raise ApiError(422, f"document has {len(text)} characters, over the limit of {limits.max_document_chars}",
                           f"{field}[{i}]")


def _documents(documents: list) -> list[Document]:
    try:
        return as_documents(documents)
    except InputError as err:  # not a list, empty, or a document without text
        index = getattr(err, "index", None)
        raise ApiError(422, str(err), "documents" if index is None else f"documents[{index}].text") from None


class Service:
    """The app's state: the reranker, its single worker thread and the queue count."""

    def __init__(self, reranker: Reranker, limits: Limits):
        self.reranker, self.limits = reranker, limits
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blockrank-worker")
        self.waiting = 0  # requests accepted and not yet answered

    async def run(self, query: str, documents: list, top_n: int | None, max_tokens: int | None,
                  truncate: bool = True, request: Request | None = None) -> RerankReport:
        """Rank on the worker. A timeout or a client that hangs up cancels the work at the model's next
        layer (or before it starts, if still queued), so the requests behind it are not held up."""
        if self.waiting >= self.limits.max_queue:
            raise ApiError(503, f"server busy: {self.waiting} requests queued", headers={"Retry-After": "1"})
        self.waiting += 1
        cancel = threading.Event()
        future = asyncio.get_running_loop().run_in_executor(
            self.pool, self._rank, query, documents, top_n, max_tokens, truncate, cancel
        )
        future.add_done_callback(_consume)  # abandoned work ends in Cancelled, which nobody awaits
        watcher = asyncio.create_task(_watch_disconnect(request, cancel)) if request is not None else None
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=self.limits.request_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, f"request took longer than {self.limits.request_timeout_s:.0f} s") from None
        except Cancelled:
            raise ApiError(499, "client closed the request") from None
        finally:
            cancel.set()  # a no-op for finished work; stops abandoned work
            if watcher is not None:
                watcher.cancel()
            self.waiting -= 1

    def _rank(self, query, documents, top_n, max_tokens, truncate, cancel: threading.Event) -> RerankReport:
        budget = min(max_tokens or self.reranker.max_tokens_per_doc, self.limits.max_tokens_per_doc)
        return self.reranker.rerank_report(query, documents, top_k=top_n, max_tokens_per_doc=budget, truncate=truncate,
                                  max_query_tokens=self.limits.max_query_tokens,
                                  max_prompt_tokens=self.limits.max_prompt_tokens, cancel=cancel)

    def info(self) -> dict:
        r = self.reranker
        return {
            "model": display_name(r.model.config.name_or_path),
            "model_type": r.model.config.model_type,
            "layer": r.layer,
            "num_layers": r.model.config.num_hidden_layers,
            "method": r.method,
            "attention": r.attention,
            "dtype": str(r.model.dtype).replace("torch.", ""),
            "device": str(r.model.device),
            "max_tokens_per_doc_default": r.max_tokens_per_doc,
            "passage_tokens": r.max_doc_tokens,
            "split": r.split,
            "limits": asdict(self.limits),
        }


def create_app(reranker: Reranker, limits: Limits | None = None) -> FastAPI:
    """The FastAPI app serving ``reranker``."""
    service = Service(reranker, limits or Limits())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.pool.shutdown(wait=True)  # finish in-flight work on shutdown

    app = FastAPI(title="BlockRank", version=__version__, lifespan=lifespan,
                  description="In-context reranking with structured sparse attention (Cohere- and TEI-compatible).")
    app.state.service = service

    app.add_middleware(BodyLimit, max_bytes=service.limits.max_body_bytes)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError):
        return _error(err.status, err.message, err.field, err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return _error(422, f"{loc}: {first['msg']}", loc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception):
        request_id = uuid.uuid4().hex[:16]  # the details stay in the server's log; the client gets the id to quote
        logger.error("request %s %s %s failed", request_id, request.method, request.url.path, exc_info=err)
        return _error(500, f"internal error (request id {request_id})", headers={"X-Request-Id": request_id})

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/info")
    async def info() -> dict:
        return service.info()

    async def cohere(body: CohereRequest, request: Request, response: Response, version: str) -> dict:
        docs = _documents(body.documents)
        texts = [d.text for d in docs]
        _validate(body.query, texts, "documents", service.limits)
        start = time.perf_counter()
        ranking = await _ranked(service, body.query, docs, body.top_n, body.max_tokens_per_doc, request=request)
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
            meta["warnings"] = [f"{'documents' if len(cut) > 1 else 'document'} {', '.join(map(str, cut))} "
                                f"{'were' if len(cut) > 1 else 'was'} truncated to {ranking.doc_limit} tokens"]
        _describe(response, service, ranking, start)
        return {"id": str(uuid.uuid4()), "results": results, "meta": meta}

    async def tei(body: TeiRequest, request: Request, response: Response) -> list[dict]:
        _validate(body.query, body.texts, "texts", service.limits)
        start = time.perf_counter()
        ranking = await _ranked(service, body.query, body.texts, None, None, truncate=body.truncate, request=request)
        out = []
        for r in ranking.results:
            item: dict[str, Any] = {"index": r.index, "score": raw_score(r, service.reranker) if body.raw_scores else r.score}
            if body.return_text:
                item["text"] = body.texts[r.index]
            out.append(item)
        _describe(response, service, ranking, start)
        return out

    @app.post("/rerank", summary="Rerank documents (Cohere body, or TEI body when 'texts' is given)",
              response_model=CohereResponse | list[TeiResult], response_model_exclude_none=True, responses=ERRORS,
              openapi_extra={"requestBody": RERANK_BODY})
    async def rerank(request: Request, response: Response):
        try:
            payload = await request.json()
        except ValueError:
            raise ApiError(400, "body is not valid JSON", "body") from None
        if not isinstance(payload, dict):
            raise ApiError(422, "body must be a JSON object", "body")
        if "texts" in payload:
            return await tei(_parse(TeiRequest, payload), request, response)
        return await cohere(_parse(CohereRequest, payload), request, response, "1")

    @app.post("/v1/rerank", summary="Cohere API v1 rerank (what cohere.Client calls)", response_model=CohereResponse,
              response_model_exclude_none=True, responses=ERRORS)
    async def rerank_v1(body: CohereRequest, request: Request, response: Response) -> dict:
        return await cohere(body, request, response, "1")

    @app.post("/v2/rerank", summary="Cohere API v2 rerank (what cohere.ClientV2 calls)", response_model=CohereResponse,
              response_model_exclude_none=True, responses=ERRORS)
    async def rerank_v2(body: CohereV2Request, request: Request, response: Response) -> dict:
        return await cohere(CohereRequest(**body.model_dump()), request, response, "2")

    return app


class BodyLimit:
    """Answers 413 to a declared body over ``max_bytes``. Plain ASGI: Starlette's BaseHTTPMiddleware would hide
    client disconnects from the handlers, and they are how abandoned work gets cancelled."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_bytes:
                response = _error(413, f"body of {int(length)} bytes exceeds {self.max_bytes}", "body")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


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


def _consume(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


async def _watch_disconnect(request: Request, cancel: threading.Event, every_s: float = 0.1) -> None:
    while not cancel.is_set():
        if await request.is_disconnected():
            cancel.set()
            return
        await asyncio.sleep(every_s)


async def _ranked(service: Service, query, documents, top_n, max_tokens, truncate: bool = True,
                  request: Request | None = None) -> RerankReport:
    try:
        return await service.run(query, documents, top_n, max_tokens, truncate, request)
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
