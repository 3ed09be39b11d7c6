"""``blockrank serve``: the HTTP service."""

from __future__ import annotations

import argparse

from blockrank.cli.options import add_model_args, load_reranker
from blockrank.defaults import Limits
from blockrank.serve.allocator import SERVICE_ARENAS, cap_malloc_arenas

LIMITS = Limits()  # the service's defaults, shown by `blockrank serve --help`


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from blockrank.serve.service import create_app

    cap_malloc_arenas(args.malloc_arenas)  # before the request threads exist: each would get its own arena
    reranker = load_reranker(args)
    limits = Limits(
        max_documents=args.max_documents,
        max_document_chars=args.max_document_chars,
        max_body_bytes=args.max_body_bytes,
        request_timeout_s=args.timeout,
        max_queue=args.max_queue,
        max_tokens_per_doc=max(LIMITS.max_tokens_per_doc, reranker.max_tokens_per_doc),
        max_query_tokens=args.max_query_tokens,
        max_prompt_tokens=args.max_prompt_tokens,
        input_order=args.input_order or LIMITS.input_order,
    )
    app = create_app(reranker, limits)
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=int(args.timeout) + 5)
    return 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="HTTP service: Cohere/TEI-compatible POST /rerank")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--max-documents", type=int, default=LIMITS.max_documents, help="documents per request")
    p.add_argument("--max-document-chars", type=int, default=LIMITS.max_document_chars, help="characters per document")
    p.add_argument("--max-body-bytes", type=int, default=LIMITS.max_body_bytes)
    p.add_argument(
        "--max-query-tokens",
        type=int,
        default=LIMITS.max_query_tokens,
        help="longer queries get 422 (the query is read by every document)",
    )
    p.add_argument(
        "--max-prompt-tokens", type=int, default=LIMITS.max_prompt_tokens, help="larger prompts (all documents) get 422"
    )
    p.add_argument("--max-queue", type=int, default=LIMITS.max_queue, help="queued requests before answering 503")
    p.add_argument("--timeout", type=float, default=LIMITS.request_timeout_s, help="seconds per request before answering 504")
    p.add_argument(
        "--malloc-arenas",
        type=int,
        default=SERVICE_ARENAS,
        help="glibc malloc arenas, which bounds how far memory swings under load (0: glibc's default; "
        "MALLOC_ARENA_MAX, if set, wins)",
    )
    add_model_args(p)
    p.set_defaults(func=cmd_serve)
