"""``blockrank eval`` (quality against qrels) and ``blockrank bench`` (speed against full attention)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from blockrank.cli.options import add_model_args, load_reranker, reranker_options
from blockrank.cli.rerank import demo_example
from blockrank.defaults import FIRST_STAGES, RERANKERS
from blockrank.errors import InputError
from blockrank.prompt import as_documents


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from blockrank.eval import baselines, evaluation
    from blockrank.train.examples import read_qids

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
        **reranker_options(args),
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


def cmd_bench(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from blockrank.eval import benchmark

    console = Console()
    reranker = load_reranker(args)
    if args.passages:  # the same real text for every pass: the query and passages of a candidate file
        from blockrank.eval.data import read_candidates

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


def register(sub) -> None:
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
        "next queries') as they are, cut only beyond --block-tokens, instead of fixed-length demo text",
    )
    p.add_argument(
        "--command-line",
        default=None,
        help="the command recorded in the JSON (default: this blockrank bench call; bench/speed.py passes its own)",
    )
    add_model_args(p)
    p.set_defaults(func=cmd_bench)
