"""The lab's commands: ``calibrate``, ``train``, ``export``, ``average``, ``label`` and ``synth``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from blockrank.cli.options import add_model_args, reranker_options
from blockrank.defaults import BASE_MODEL, FIRST_STAGES
from blockrank.errors import InputError


def cmd_calibrate(args: argparse.Namespace) -> int:
    from blockrank.calibration import weights_fingerprint
    from blockrank.eval.evaluation import load_eval_set
    from blockrank.model import display_name, load_model
    from blockrank.reranker import Reranker
    from blockrank.train.calibration_lists import collect, fit_calibration, varied_lists
    from blockrank.train.examples import read_qids

    qids = read_qids(args.qids) if args.qids else None
    sets = [load_eval_set(path, args.qrels, top_k=args.top_k, rel=args.rel, qids=qids) for path in args.lists]
    lm = load_model(args.model, dtype=args.dtype, device=args.device)
    name = display_name(args.model or "default")
    reranker = Reranker.from_loaded(lm, name, calibrated=False, **reranker_options(args))
    source = lm.settings.source or ""
    if args.out is None and not Path(source).is_dir():
        raise InputError(f"model {name!r} is not a local directory: say where to write the calibration with --out")
    rows = []
    for s in sets:
        lists = varied_lists(s.candidates, s.qrels, s.rel, seed=args.seed)
        rows += collect(reranker, lists, Path(args.cache) / name / f"{s.name}.jsonl")
    fitted_on = [f"{s.name} ({len(s.candidates)} queries, sizes 1-100, shuffled and junk copies)" for s in sets]
    cal = fit_calibration(rows, name, weights_fingerprint(source), reranker.layer, fitted_on)
    path = cal.save(args.out or source)
    coef = ", ".join(f"{k} {v:+.3f}" for k, v in cal.coef.items())
    print(
        f"{path}: log-odds = {coef}, bias {cal.bias:+.3f} (input order trusted fully at z {1 + cal.full_agreement}); "
        f"fitted on {cal.examples} judged documents ({cal.positives} relevant) in {len(rows)} lists"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from blockrank.train.training import Trainer, load_config

    if args.config and "=" in args.config and not Path(args.config).exists():  # no recipe, only overrides
        args.overrides, args.config = [args.config, *args.overrides], None
    cfg = load_config(args.config, args.overrides)
    if args.dry_run:
        from blockrank.train.sources import build_examples

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
    from blockrank.train.export import export_checkpoint

    print(export_checkpoint(Path(args.checkpoint), Path(args.out), args.note))
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    from blockrank.train.averaging import average_adapters

    average_adapters(Path(args.first), Path(args.second), Path(args.out), args.weight)
    print(args.out)
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from blockrank.train.training import load_config, store_teacher_scores

    try:
        added = store_teacher_scores(load_config(args.config, args.overrides))
    except KeyboardInterrupt:
        print("stopped; run the same command again to resume", file=sys.stderr)
        return 130
    for path, n in added.items():
        print(f"{path}: {n} queries scored now", file=sys.stderr)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from blockrank.eval.encoders import load_teacher
    from blockrank.model import load_model, parse_dtype
    from blockrank.train.synth import QueryGenerator, synthesize

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


def register(sub) -> None:
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
