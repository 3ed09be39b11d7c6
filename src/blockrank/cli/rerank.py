"""``blockrank rerank`` (one query, from arguments, a file or the demo) and ``blockrank rerank-run`` (a run file)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

from blockrank.cli.options import add_model_args, load_reranker, reranker_options
from blockrank.defaults import DEFAULT_RERANKER
from blockrank.errors import InputError
from blockrank.prompt import TruncationWarning, as_documents


def demo_example() -> dict[str, Any]:
    """The built-in example: a SciFact claim with its BM25 top-12 abstracts."""
    return json.loads(resources.files("blockrank").joinpath("demo/scifact-b12.json").read_text())


def parse_input(text: str, source: str) -> tuple[str | None, list]:
    """Read ``{query, documents}`` JSON, a JSON list of documents, or JSONL (one document a line)."""
    stripped = text.strip()
    if not stripped:
        raise InputError(f"{source} is empty")
    if stripped[0] in "{[":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None  # maybe JSONL
        if isinstance(data, dict):
            if "documents" not in data:
                raise InputError(f"{source}: a JSON object needs a 'documents' list (and usually a 'query')")
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
            raise InputError(f"{source}, line {n}: not valid JSON ({err.msg})") from None
    return None, docs


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
        raise InputError("no query: pass --query, or a JSON file with a 'query' field, or --demo")
    if not documents:
        raise InputError("no documents: pass them as arguments, with --file (JSON/JSONL, '-' for stdin), or --demo")

    if not isinstance(query, str) or not query.strip():
        raise InputError("query is empty: give a non-empty query string")
    as_documents(documents)  # fail on malformed documents before the model loads

    from rich.console import Console
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    console = Console(stderr=True)
    with console.status(f"loading {args.model or DEFAULT_RERANKER}"):
        reranker = load_reranker(args)
    with console.status(f"reranking {len(documents)} documents"), warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)  # said below, as a note
        ranking = reranker.rerank_report(query, documents, top_k=args.top_k)
    results = ranking.results
    if ranking.truncated:
        knob = "--max-tokens-per-doc" if reranker.split else "--block-tokens"
        console.print(
            f"[yellow]note:[/yellow] {len(ranking.truncated)} of {len(documents)} documents were truncated to "
            f"{ranking.doc_limit} tokens ({knob} raises the limit)"
        )
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "rank": r + 1,
                        "index": x.index,
                        "id": x.id,
                        "score": x.score,
                        "title": x.document.title,
                        "text": x.document.text,
                    }
                    for r, x in enumerate(results)
                ],
                indent=1,
            )
        )
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


def cmd_rerank_run(args: argparse.Namespace) -> int:
    from blockrank.eval import data, rerank_run

    if args.candidates:
        candidates = data.read_candidates(args.candidates)
        for c in candidates:
            c.documents, c.scores = c.documents[: args.top_k], c.scores[: args.top_k]
    else:
        if not (args.run and args.corpus):
            raise InputError("give --run and --corpus, or --candidates")
        corpus_dir = Path(args.corpus)
        queries = data.read_queries(args.queries or corpus_dir / "queries.jsonl")
        corpus = data.read_corpus(corpus_dir / "corpus.jsonl" if corpus_dir.is_dir() else corpus_dir)
        candidates = data.candidates_from_run(data.read_run(args.run), queries, corpus, args.top_k)
    kwargs = {"dtype": args.dtype, "device": args.device} | reranker_options(args)
    if args.fuse_first_stage is not None:
        print("--fuse-first-stage is deprecated and changes nothing: the run's scores count by default", file=sys.stderr)
    first_stage = not args.no_first_stage
    if args.ray:
        done = rerank_run.rerank_run_ray(args.model, candidates, args.out, args.tag, args.replicas, kwargs, first_stage)
    else:
        from blockrank.reranker import Reranker

        reranker = Reranker.from_pretrained(args.model, **kwargs)
        done = rerank_run.rerank_run(reranker, candidates, args.out, args.tag, first_stage)
    print(f"reranked {done} queries ({len(candidates) - done} already done) -> {args.out}", file=sys.stderr)
    if args.rank_llm_out:
        run = data.read_run(args.out)
        data.write_rank_llm(args.rank_llm_out, candidates, {q: dict(ranked) for q, ranked in run.items()})
        print(f"wrote {args.rank_llm_out} (rank_llm retrieve-results JSON, reranked)", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("rerank", help="rerank documents for one query")
    p.add_argument("documents", nargs="*", help="documents as plain strings")
    p.add_argument("-q", "--query", help="the query")
    p.add_argument("-f", "--file", help="JSON {query, documents}, JSON list or JSONL of documents; '-' reads stdin")
    p.add_argument("--demo", action="store_true", help="rerank the built-in example (a SciFact claim, 12 abstracts)")
    p.add_argument("-k", "--top-k", type=int, default=None, help="show only the best k")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_model_args(p)
    p.set_defaults(func=cmd_rerank)

    p = sub.add_parser("rerank-run", help="rerank a TREC run file (or candidate lists) offline, resumably")
    p.add_argument("--run", help="first-stage TREC run file (qid Q0 docid rank score tag)")
    p.add_argument("--corpus", help="BEIR directory (corpus.jsonl, queries.jsonl) or a corpus.jsonl")
    p.add_argument("--queries", help="queries.jsonl (default: CORPUS/queries.jsonl)")
    p.add_argument(
        "--candidates",
        help="instead of --run/--corpus: candidate-list JSONL {qid, query, candidates} "
        "or rank_llm retrieve-results JSON [{query, hits}]",
    )
    p.add_argument("--rank-llm-out", help="also write the reranked lists as rank_llm retrieve-results JSON")
    p.add_argument("--out", required=True, help="output TREC run; finished queries in it are skipped")
    p.add_argument("--top-k", type=int, default=100, help="rerank the first k candidates of each query")
    p.add_argument("--tag", default="blockrank")
    p.add_argument(
        "--no-first-stage", action="store_true", help="ignore the run's scores (its order still counts, per --input-order)"
    )
    p.add_argument("--fuse-first-stage", nargs="?", type=float, const=0.0, default=None, help=argparse.SUPPRESS)
    p.add_argument("--ray", action="store_true", help="fan out over a Ray cluster (local if none is running)")
    p.add_argument("--replicas", type=int, default=1, help="model replicas (Ray actors) with --ray")
    add_model_args(p)
    p.set_defaults(func=cmd_rerank_run)
