"""Command line: ``blockrank rerank`` (and the other subcommands as they are registered)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

from .model import DEFAULT_MODEL, ModelLoadError, UnsupportedModelError
from .prompt import DocumentTooLongError, TruncationWarning, as_documents

USER_ERRORS = (ValueError, TypeError, KeyError, OSError, ModelLoadError, UnsupportedModelError, DocumentTooLongError)


def demo_example() -> dict[str, Any]:
    """The built-in example: a SciFact claim with its BM25 top-12 abstracts."""
    return json.loads(resources.files("blockrank").joinpath("demo/scifact-b12.json").read_text())


def parse_input(text: str, source: str) -> tuple[str | None, list]:
    """Read ``{query, documents}`` JSON, a JSON list of documents, or JSONL (one document a line)."""
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"{source} is empty")
    if stripped[0] in "{[":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None  # maybe JSONL
        if isinstance(data, dict):
            if "documents" not in data:
                raise ValueError(f"{source}: a JSON object needs a 'documents' list (and usually a 'query')")
            return data.get("query"), data["documents"]
        if isinstance(data, list):
            return None, data
    docs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            docs.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}, line {n}: not valid JSON ({err.msg})") from None
    return None, docs


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help=f"model directory, .gguf file or hub id (default: {DEFAULT_MODEL})")
    parser.add_argument("--layer", type=int, default=None, help="layer l* whose attention scores (default: 2/3 depth)")
    parser.add_argument("--method", choices=["attention", "decode"], default="attention")
    parser.add_argument("--attention", choices=["sparse", "dense", "causal"], default="sparse",
                        help="sparse = BlockRank, dense = reference mask, causal = full attention")
    parser.add_argument("--max-doc-tokens", type=int, default=160, help="token budget per document")
    parser.add_argument("--dtype", default=None, help="fp32, bf16 or fp16 (default: fp32 on CPU, bf16 on CUDA)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")


def load_reranker(args: argparse.Namespace):
    from .reranker import Reranker

    return Reranker.from_pretrained(
        args.model, dtype=args.dtype, device=args.device, layer=args.layer, method=args.method,
        attention=args.attention, max_doc_tokens=args.max_doc_tokens,
    )


def cmd_rerank(args: argparse.Namespace) -> int:
    query, documents = args.query, list(args.documents)
    if args.demo:
        demo = demo_example()
        query, documents = query or demo["query"], demo["documents"]
    elif args.file:
        source = "standard input" if args.file == "-" else args.file
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        file_query, documents = parse_input(text, source)
        query = query or file_query
    if query is None:
        raise ValueError("no query: pass --query, or a JSON file with a 'query' field, or --demo")
    if not documents:
        raise ValueError("no documents: pass them as arguments, with --file (JSON/JSONL, '-' for stdin), or --demo")

    if not isinstance(query, str) or not query.strip():
        raise ValueError("query is empty: give a non-empty query string")
    as_documents(documents)  # fail on malformed documents before the model loads

    from rich.console import Console
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    console = Console(stderr=True)
    with console.status(f"loading {args.model or DEFAULT_MODEL}"):
        reranker = load_reranker(args)
    with console.status(f"reranking {len(documents)} documents"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TruncationWarning)
        results = reranker.rerank(query, documents, top_k=args.top_k)
    for w in caught:
        console.print(f"[yellow]note:[/yellow] {w.message}")
    if args.json:
        print(json.dumps([{"rank": r + 1, "index": x.index, "id": x.id, "score": x.score,
                           "title": x.document.title, "text": x.document.text} for r, x in enumerate(results)], indent=1))
        return 0
    from rich.table import Table

    table = Table(title=f"Query: {query}", title_justify="left")
    for col in ("rank", "score", "index", "id", "document"):
        table.add_column(col, overflow="fold" if col == "document" else None)
    for rank, r in enumerate(results, 1):
        snippet = r.document.content.replace("\n", " ")
        table.add_row(str(rank), f"{r.score:.4f}", str(r.index), r.id, snippet[:100] + ("…" if len(snippet) > 100 else ""))
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blockrank", description="BlockRank in-context reranking")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("rerank", help="rerank documents for one query")
    p.add_argument("documents", nargs="*", help="documents as plain strings")
    p.add_argument("-q", "--query", help="the query")
    p.add_argument("-f", "--file", help="JSON {query, documents}, JSON list or JSONL of documents; '-' reads stdin")
    p.add_argument("--demo", action="store_true", help="rerank the built-in example (a SciFact claim, 12 abstracts)")
    p.add_argument("-k", "--top-k", type=int, default=None, help="show only the best k")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_model_args(p)
    p.set_defaults(func=cmd_rerank)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        print(f"blockrank {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
