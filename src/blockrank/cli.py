"""Command line: ``blockrank rerank`` (and the other subcommands as they are registered)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

from .allocator import SERVICE_ARENAS, cap_malloc_arenas
from .defaults import BASE_MODEL, DEFAULT_RERANKER, FIRST_STAGES, INPUT_ORDERS, MAX_TOKENS_PER_DOC, MODES, RERANKERS, Limits
from .errors import BlockRankError, InputError
from .prompt import TruncationWarning, as_documents

LIMITS = Limits()  # the service's defaults, shown by `blockrank serve --help`

# Reported in one line. Anything else is a bug and keeps its traceback.
USER_ERRORS = (BlockRankError, FileNotFoundError, IsADirectoryError, PermissionError)


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


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help=f"model directory, .gguf file or hub id (default: the shipped {DEFAULT_RERANKER}; "
        f"{BASE_MODEL} is its untrained base)",
    )
    parser.add_argument("--layer", type=int, default=None, help="layer l* whose attention scores (default: 2/3 depth)")
    parser.add_argument("--method", choices=["attention", "decode"], default="attention")
    parser.add_argument(
        "--attention",
        choices=MODES,
        default="sparse",
        help="sparse = BlockRank, reference = the same with an explicit mask, causal = full attention",
    )
    parser.add_argument(
        "--max-doc-tokens",
        type=int,
        default=None,
        help="tokens per block: a document's passage length (default: the trained model's, else 160)",
    )
    parser.add_argument(
        "--max-tokens-per-doc",
        type=int,
        default=None,
        help=f"tokens of a document that count, split into passages of --max-doc-tokens; the rest is "
        f"truncated (default {MAX_TOKENS_PER_DOC}, Cohere's)",
    )
    parser.add_argument(
        "--input-order",
        choices=INPUT_ORDERS,
        default=None,
        help="what the documents' order means: a retriever's ranking (ranked), nothing (unordered), or auto: "
        "trusted as far as it agrees with the model (default)",
    )
    parser.add_argument(
        "--no-split",
        dest="split_documents",
        action="store_false",
        help="read only each document's first --max-doc-tokens tokens (one block per document)",
    )
    parser.add_argument(
        "--dtype", default=None, help="fp32, bf16 or fp16 (default: bf16 on CUDA and on CPUs with AVX512-BF16 or AMX, else fp32)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument(
        "--batch-tokens",
        type=int,
        default=None,
        help="documents x padded length per group of the sparse pass (default: the reranker's)",
    )
    parser.add_argument(
        "--raw-scores",
        action="store_true",
        help="score by list-normalised attention mass instead of the model's calibrated probability",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the decoder layers: faster per call after a first call that compiles "
        "(tens of seconds); for services and batch runs",
    )


def load_reranker(args: argparse.Namespace):
    from .reranker import Reranker

    return Reranker.from_pretrained(
        args.model,
        dtype=args.dtype,
        device=args.device,
        layer=args.layer,
        method=args.method,
        attention=args.attention,
        max_doc_tokens=args.max_doc_tokens,
        batch_tokens=args.batch_tokens,
        max_tokens_per_doc=args.max_tokens_per_doc,
        split=args.split_documents,
        calibrated=False if args.raw_scores else None,
        compile=args.compile,
        input_order=args.input_order,
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
        knob = "--max-tokens-per-doc" if reranker.split else "--max-doc-tokens"
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


def cmd_bench(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from . import benchmark

    console = Console()
    reranker = load_reranker(args)
    if args.passages:  # the same real text for every pass: the query and passages of a candidate file
        from .data import read_candidates

        lists = read_candidates(args.passages)
        query, texts = lists[0].query, list(dict.fromkeys(d.content for c in lists for d in c.documents))
    else:
        demo = demo_example()
        query, texts = demo["query"], [d.content for d in as_documents(demo["documents"])]
    ns = [int(n) for n in args.ns.split(",")]
    configs = args.configs.split(",")
    unknown = set(configs) - set(benchmark.CONFIGS)
    if unknown:
        raise InputError(f"unknown configs {sorted(unknown)}; choose from {', '.join(benchmark.CONFIGS)}")
    report = benchmark.run(
        reranker,
        query,
        texts,
        ns,
        configs=configs,
        repeats=args.repeats,
        max_seconds=args.max_seconds,
        progress=lambda msg: console.log(msg),
        fixed_length=not args.passages,
    )
    report["command"] = "blockrank " + " ".join(sys.argv[1:]) if args.command_line is None else args.command_line
    json_path, png_path = benchmark.write_report(report, Path(args.out), args.name or f"speed-{report['dtype']}")
    m = report["machine"]
    console.print(
        f"machine: {m['cpu']}, {m['threads']} threads, {m['device']}; model {report['model']} "
        f"{report['dtype']}, l*={report['layer']}; dense matmul {report['matmul_gflops']:.0f} GFLOP/s"
    )
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    tag = {c: label.split()[0] for c, label in benchmark.CONFIGS.items()}  # "(a)", "(a')", ...
    ran = [c for c in benchmark.CONFIGS if any(r[f"{c}_s"] for r in report["summary"])]
    efficiency = Table(title="Efficiency: useful GFLOP/s (% of dense matmul)")
    latency = Table(title="Latency: median seconds per query")
    for col in ("N", "tokens", *(tag[c] for c in ran)):
        efficiency.add_column(col, justify="right")
    for col in (
        "N",
        "tokens",
        *(tag[c] for c in ran),
        "(c)/(a)",
        "(c*)/(a)",
        "(a')/(a)",
        "ms/doc (a)",
        "peak MB " + "/".join(tag[c] for c in ran),
    ):
        latency.add_column(col, justify="right")
    for r in report["summary"]:
        efficiency.add_row(
            str(r["n_docs"]),
            str(r["tokens"]),
            *(f"{r[f'{c}_gflops']:.0f} ({r[f'{c}_pct_of_matmul']:.0f}%)" if r.get(f"{c}_gflops") else "-" for c in ran),
        )
        latency.add_row(
            str(r["n_docs"]),
            str(r["tokens"]),
            *(fmt(r[f"{c}_s"], ".2f") if r[f"{c}_s"] else (r[f"{c}_note"] or "-") for c in ran),
            fmt(r.get("full_over_sparse"), ".2f"),
            fmt(r.get("causal_over_sparse"), ".2f"),
            fmt(r.get("layer-major_over_sparse"), ".2f"),
            fmt(r.get("ms_per_doc"), ".1f"),
            "/".join(fmt(r[f"{c}_mem_mb"], ".0f") for c in ran),
        )
    for c in ran:
        console.print(benchmark.CONFIGS[c])
    wide = Console(width=max(console.width, 160))
    wide.print(efficiency)
    wide.print(latency)
    diffs = [r["reference_max_score_diff"] for r in report["summary"] if r.get("reference_max_score_diff") is not None]
    if diffs:
        console.print(f"max |score(a) - score(b)| over all N: {max(diffs):.2e}")
    console.print(f"wrote {json_path} and {png_path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .service import create_app

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


def cmd_rerank_run(args: argparse.Namespace) -> int:
    from . import data, rerank_run

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
    kwargs = dict(
        dtype=args.dtype,
        device=args.device,
        layer=args.layer,
        method=args.method,
        attention=args.attention,
        max_doc_tokens=args.max_doc_tokens,
        max_tokens_per_doc=args.max_tokens_per_doc,
        split=args.split_documents,
        input_order=args.input_order,
    )
    if args.fuse_first_stage is not None:
        print("--fuse-first-stage is deprecated and changes nothing: the run's scores count by default", file=sys.stderr)
    first_stage = not args.no_first_stage
    if args.ray:
        done = rerank_run.rerank_run_ray(args.model, candidates, args.out, args.tag, args.replicas, kwargs, first_stage)
    else:
        from .reranker import Reranker

        reranker = Reranker.from_pretrained(args.model, **kwargs)
        done = rerank_run.rerank_run(reranker, candidates, args.out, args.tag, first_stage)
    print(f"reranked {done} queries ({len(candidates) - done} already done) -> {args.out}", file=sys.stderr)
    if args.rank_llm_out:
        run = data.read_run(args.out)
        data.write_rank_llm(args.rank_llm_out, candidates, {q: dict(ranked) for q, ranked in run.items()})
        print(f"wrote {args.rank_llm_out} (rank_llm retrieve-results JSON, reranked)", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from . import baselines, evaluation
    from .examples import read_qids

    names = args.rerankers.split(",")
    evalset = evaluation.load_eval_set(
        args.data,
        qrels=args.qrels,
        first_stage=args.first_stage,
        top_k=args.top_k,
        split=args.split,
        run=args.run,
        limit=args.limit,
        qids=read_qids(args.qids) if args.qids else None,
    )
    scorers = baselines.make_scorers(
        names,
        args.model,
        dtype=args.dtype,
        device=args.device,
        teacher_dtype=args.teacher_dtype,
        layer=args.layer,
        max_doc_tokens=args.max_doc_tokens,
        batch_tokens=args.batch_tokens,
        split=args.split_documents,
        max_tokens_per_doc=args.max_tokens_per_doc,
    )
    config = {k: v for k, v in vars(args).items() if k != "func"}
    if args.depths:
        depths = [int(n) for n in args.depths.split(",")]
        curve = evaluation.depth_curve(scorers, evalset, depths, args.out, config)["curve"]
        table = Table(title=f"{evalset.name}: {len(evalset.candidates)} queries, nDCG@10 / condensed nDCG@10 by depth")
        for col in ["reranker", *map(str, depths)]:
            table.add_column(col, justify="right")
        for name, row in curve.items():
            table.add_row(name, *(f"{a:.3f} / {b:.3f}" for a, b in zip(row["nDCG@10"], row[evaluation.CONDENSED])))
        Console(width=200).print(table)
        print(f"wrote {args.out}/depth.json, depth.png and depth-N/ for each depth", file=sys.stderr)
        return 0
    report = evaluation.evaluate(scorers, evalset, args.out, config)
    if args.latency_ns:
        ns = [int(n) for n in args.latency_ns.split(",")]
        sweep = evaluation.latency_sweep(scorers, evalset.candidates[0], ns)
        report["latency_sweep"] = sweep
        evaluation.plot_latency(sweep, Path(args.out) / "latency.png", f"{evalset.name}: latency vs documents")
        evaluation.write_json(Path(args.out) / "summary.json", report)
    table = Table(title=f"{evalset.name}: {report['queries']} queries, top-{args.top_k}, relevant = grade >= {evalset.rel}")
    metric_names = list(next(iter(report["rerankers"].values()))["metrics"])
    for col in ["reranker", *metric_names, "W/T/L vs given", "s/query (mean)", "p95 s", "tokens/query"]:
        table.add_column(col, justify="right")
    for name, r in report["rerankers"].items():
        wtl = r["vs_given_order"]["nDCG@10"]
        table.add_row(
            name,
            *(f"{r['metrics'][m]:.4f}" for m in metric_names),
            f"{wtl['wins']}/{wtl['ties']}/{wtl['losses']}",
            f"{r['latency_s']['mean']:.3f}",
            f"{r['latency_s']['p95']:.3f}",
            f"{r['tokens_per_query']:.0f}",
        )
    Console(width=200).print(table)
    print(f"wrote {args.out}/summary.json, run files and plots", file=sys.stderr)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibration import weights_fingerprint
    from .calibration_lists import collect, fit_calibration, varied_lists
    from .evaluation import load_eval_set
    from .examples import read_qids
    from .model import display_name, load_model
    from .reranker import Reranker, settings

    qids = read_qids(args.qids) if args.qids else None
    sets = [load_eval_set(path, args.qrels, top_k=args.top_k, rel=args.rel, qids=qids) for path in args.lists]
    lm = load_model(args.model, dtype=args.dtype, device=args.device)
    opts = dict(
        layer=args.layer,
        max_doc_tokens=args.max_doc_tokens,
        batch_tokens=args.batch_tokens,
        split=args.split_documents,
        max_tokens_per_doc=args.max_tokens_per_doc,
    )
    reranker = Reranker(lm.model, lm.tokenizer, **settings(lm.settings, **opts))
    name = display_name(args.model or "default")
    if args.out is None and not Path(lm.settings["source"]).is_dir():
        raise InputError(f"model {name!r} is not a local directory: say where to write the calibration with --out")
    rows = []
    for s in sets:
        lists = varied_lists(s.candidates, s.qrels, s.rel, seed=args.seed)
        rows += collect(reranker, lists, Path(args.cache) / name / f"{s.name}.jsonl")
    fitted_on = [f"{s.name} ({len(s.candidates)} queries, sizes 1-100, shuffled and junk copies)" for s in sets]
    cal = fit_calibration(rows, name, weights_fingerprint(lm.settings["source"]), reranker.layer, fitted_on)
    path = cal.save(args.out or lm.settings["source"])
    coef = ", ".join(f"{k} {v:+.3f}" for k, v in cal.coef.items())
    print(
        f"{path}: log-odds = {coef}, bias {cal.bias:+.3f} (input order trusted fully at rho {cal.full_agreement}); "
        f"fitted on {cal.examples} judged documents ({cal.positives} relevant) in {len(rows)} lists"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .training import Trainer, load_config

    if args.config and "=" in args.config and not Path(args.config).exists():  # no recipe, only overrides
        args.overrides, args.config = [args.config, *args.overrides], None
    cfg = load_config(args.config, args.overrides)
    if args.dry_run:
        from .sources import build_examples

        counts: list[int] = []
        unlabelled = [dataclasses.replace(src, teacher=None) for src in cfg.data]  # counts only: no scores read
        build_examples(unlabelled, cfg.n_docs, cfg.seed, cfg.max_positives, counts, holdout=cfg.holdout_qids())
        print(json.dumps([{"source": src.as_dict(), "examples": n} for src, n in zip(cfg.data, counts)], indent=1))
        print(f"{sum(counts)} examples; {cfg.max_steps or 'all'} steps x {cfg.grad_accum} per step", file=sys.stderr)
        return 0
    trainer = Trainer(cfg, resume=args.resume)
    print(f"{len(trainer.examples)} training examples, {trainer.total_steps} optimizer steps -> {cfg.out_dir}", file=sys.stderr)
    try:
        final = trainer.train()
    except KeyboardInterrupt:
        print(f"stopped; resume with: blockrank train {args.config or ''} --resume", file=sys.stderr)
        return 130
    print(f"saved {final}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint

    print(export_checkpoint(Path(args.checkpoint), Path(args.out), args.note))
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    from .averaging import average_adapters

    average_adapters(Path(args.first), Path(args.second), Path(args.out), args.weight)
    print(args.out)
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from .training import label, load_config

    try:
        added = label(load_config(args.config, args.overrides))
    except KeyboardInterrupt:
        print("stopped; run the same command again to resume", file=sys.stderr)
        return 130
    for path, n in added.items():
        print(f"{path}: {n} queries scored now", file=sys.stderr)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from .model import load_model, parse_dtype
    from .synth import QueryGenerator, synthesize
    from .teachers import load_teacher

    dtype = parse_dtype(args.dtype) if args.dtype else None
    load_teacher(args.teacher, dtype=dtype, max_tokens=args.teacher_max_tokens)  # fail before generating anything
    model, tokenizer, _ = load_model(args.generator or BASE_MODEL, dtype=args.dtype, device=args.device)
    generator = QueryGenerator(
        model, tokenizer, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, style=args.style, seed=args.seed
    )
    try:
        stats = synthesize(
            args.passages,
            args.out,
            generator,
            args.teacher,
            args.scores,
            n=args.n,
            seed=args.seed,
            k=args.candidates,
            keep_rank=args.keep_rank,
            exclude=args.exclude,
            teacher_dtype=dtype,
            teacher_max_tokens=args.teacher_max_tokens,
            first_stage=args.first_stage,
        )
    except KeyboardInterrupt:
        print("stopped; run the same command again to resume", file=sys.stderr)
        return 130
    dropped = ", ".join(f"{n} {why}" for why, n in sorted(stats.dropped.items())) or "none"
    print(
        f"{stats.generated} queries generated (dropped: {dropped}); {stats.inconsistent} failed the teacher's "
        f"consistency check; {stats.kept} kept -> {args.out}/lists.jsonl",
        file=sys.stderr,
    )
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

    p = sub.add_parser("eval", help="evaluate rerankers on BEIR / TREC DL with standard metrics")
    p.add_argument("--data", required=True, help="BEIR directory, or candidate-list JSONL / rank_llm JSON (with --qrels)")
    p.add_argument("--qrels", help="qrels file (BEIR TSV or TREC); default: the BEIR directory's split")
    p.add_argument("--run", help="first-stage TREC run over the BEIR corpus, instead of computing one")
    p.add_argument("--split", default="test")
    p.add_argument("--first-stage", choices=FIRST_STAGES, default="bm25", help="for BEIR directories")
    p.add_argument("--rerankers", default="given,blockrank", help=f"comma-separated from: {', '.join(RERANKERS)}, or a teacher")
    p.add_argument("--top-k", type=int, default=100, help="candidates reranked per query")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N queries")
    p.add_argument("--qids", default=None, help="evaluate only the query ids in this file, one a line (e.g. a dev split)")
    p.add_argument(
        "--depths",
        default=None,
        help="a depth curve: rerank the first N candidates for each N (e.g. 10,20,30,50,100), one evaluation per depth",
    )
    p.add_argument("--teacher-dtype", default="fp32", help="precision of the embedding rerankers (minilm, mpnet, fusions)")
    p.add_argument("--latency-ns", default=None, help="also time each reranker at these list sizes (e.g. 10,20,50)")
    p.add_argument("--out", required=True, help="output directory (resumes if it holds a partial run)")
    add_model_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "calibrate", help="fit the model's final score on judged training lists of every size (writes calibration.json)"
    )
    p.add_argument("--lists", nargs="+", required=True, help="candidate-list JSONL files or BEIR directories")
    p.add_argument("--qrels", default=None, help="their qrels (candidate lists need them)")
    p.add_argument("--qids", default=None, help="only these query ids (training queries; never a report set)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffles and the junk mixed into the lists")
    p.add_argument("--top-k", type=int, default=100, help="candidates per list, as users rerank them")
    p.add_argument("--rel", type=int, default=None, help="lowest relevant grade (default: 2 for graded TREC qrels, else 1)")
    p.add_argument("--cache", default="runs/calibration", help="readouts per list, resumable")
    p.add_argument("--out", default=None, help="calibration.json to write (default: into the model's directory)")
    add_model_args(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("train", help="fine-tune a BlockRank model (LM loss + auxiliary attention loss)")
    p.add_argument("config", nargs="?", help="YAML/TOML recipe (see configs/)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. lora.r=8 max_steps=10")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in out_dir")
    p.add_argument("--dry-run", action="store_true", help="print the examples each data source gives (JSON), train nothing")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="a training checkpoint as a model that loads on its own (bf16, with its scoring settings)")
    p.add_argument("checkpoint", help="runs/NAME/checkpoint-STEP (the run's config.json is read from beside it)")
    p.add_argument("out", help="output directory (written atomically)")
    p.add_argument("--note", help="a line kept in blockrank.json, e.g. which recipe and why it stopped")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("average", help="the weight-by-weight mean of two LoRA adapters of the same shape")
    p.add_argument("first", help="adapter directory")
    p.add_argument("second", help="adapter directory (its recipe and tokenizer files are copied)")
    p.add_argument("out", help="output adapter directory (written atomically)")
    p.add_argument("--weight", type=float, default=0.5, help="the second adapter's share")
    p.set_defaults(func=cmd_average)

    p = sub.add_parser("label", help="compute and store a recipe's teacher scores (resumable), so training runs no teacher")
    p.add_argument("config", help="YAML/TOML recipe (see configs/)")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("synth", help="synthetic training data for a corpus without labels (queries + teacher labels)")
    p.add_argument("passages", nargs="+", help="BEIR corpora (directory or corpus.jsonl) or candidate-list JSONLs")
    p.add_argument("--out", required=True, help="output directory (resumable: rerun to continue)")
    p.add_argument("-n", type=int, default=None, help="passages to sample (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--generator", default=None, help=f"causal LM writing the queries (few-shot) (default: {BASE_MODEL})")
    p.add_argument(
        "--style",
        default="web",
        choices=["web", "claim"],
        help="the few-shot examples: web search queries, or claims (for corpora like SciFact)",
    )
    p.add_argument("--teacher", default="minilm+mpnet", help="labels the candidates: bm25, minilm, mpnet or a fusion")
    p.add_argument(
        "--scores",
        default=None,
        help="directory of stored teacher scores (default: OUT/teacher-scores); a recipe's teacher_scores",
    )
    p.add_argument("--teacher-max-tokens", type=int, default=128, help="tokens of each passage the teacher reads")
    p.add_argument("--candidates", type=int, default=20, help="neighbours per query, its source included")
    p.add_argument(
        "--first-stage",
        default="bm25",
        choices=FIRST_STAGES,
        help="finds the neighbours: BM25, or all-MiniLM-L6-v2 (neighbours in meaning, as a strong retriever's)",
    )
    p.add_argument("--keep-rank", type=int, default=3, help="drop a query unless the teacher ranks its source this high")
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        help="candidate JSONL or qrels whose passages must not be used (evaluation sets); repeatable",
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--dtype", default=None, help="fp32 or bf16")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_synth)

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

    p = sub.add_parser("bench", help="speed: sparse vs the reference mask vs full causal attention")
    p.add_argument("--ns", default="10,20,50,100,200,500", help="numbers of documents, comma-separated")
    p.add_argument("--configs", default="sparse,layer-major,reference,full,causal")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-seconds", type=float, default=300.0, help="skip a config predicted to take longer")
    p.add_argument("--out", default="bench/results")
    p.add_argument("--name", default=None, help="file stem of the JSON and PNG (default: speed-DTYPE)")
    p.add_argument(
        "--passages",
        default=None,
        help="a candidate JSONL: rank its first query's passages (then the "
        "next queries') as they are, cut only beyond --max-doc-tokens, instead of fixed-length demo text",
    )
    p.add_argument(
        "--command-line",
        default=None,
        help="the command recorded in the JSON (default: this blockrank bench call; bench/speed.py passes its own)",
    )
    add_model_args(p)
    p.set_defaults(func=cmd_bench)
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
