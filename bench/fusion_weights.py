"""Fusion with the first stage, swept over its weight (docs/results.md, "Fusion with the first stage").

    python bench/fusion_weights.py TAG [--model M] [--sets dl21-dev-splade,...] [--weights 0,0.1,...]

Each query is reranked once through the library's own path, ``Reranker.rerank_report(first_stage=...)`` at
``FIRST_STAGE_WEIGHT``; the other weights re-fuse the stored attention mass with the same ``fuse``, and the
script checks that it reproduces the library's fused scores at the default weight. Per query the mass is appended
to ``bench/results/fusion/TAG/SET.jsonl`` (a rerun resumes); the table goes to ``bench/results/fusion/TAG.json``.
Settings as bench/compare_models.sh: 100 candidates, one 64-token block per document, bf16.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import ir_measures

from blockrank.baselines import make_scorers
from blockrank.defaults import FIRST_STAGE_WEIGHT
from blockrank.evaluation import CONDENSED, EvalSet, given_run, load_eval_set, per_query_metrics, wins_ties_losses
from blockrank.examples import read_qids
from blockrank.files import append_synced, write_text_atomic
from blockrank.fusion import fuse_first_stage
from blockrank.report import machine_info

ROOT = Path(__file__).resolve().parents[1]
D = ROOT.parent / "shared" / "data" / "trec-dl"
DEV = read_qids(ROOT / "configs" / "dl21-dev.qids")
SETS = {  # name -> (candidates, qrels, qids)
    "dl21-dev-bm25": (D / "dl21-bm25-top100.jsonl", D / "qrels.dl21-passage.txt", DEV),
    "dl21-dev-splade": (D / "dl21-splade-top100.jsonl", D / "qrels.dl21-passage.txt", DEV),
    "dl19-bm25": (D / "dl19-bm25-top100.jsonl", D / "qrels.dl19-passage.txt", None),
    "dl19-splade": (D / "dl19-splade-top100.jsonl", D / "qrels.dl19-passage.txt", None),
}
MEASURES = ["nDCG@10", CONDENSED]


def masses(reranker, evalset: EvalSet, cache: Path) -> dict[str, dict]:
    """qid -> {ids, mass, first_stage, fused} for every query, reranked where the cache lacks it."""
    rows = {r["qid"]: r for r in map(json.loads, cache.read_text().splitlines())} if cache.exists() else {}
    with cache.open("a") as f:
        for c in evalset.candidates:
            if c.qid in rows:
                continue
            report = reranker.rerank_report(c.query, c.documents, first_stage=c.scores, first_stage_weight=FIRST_STAGE_WEIGHT)
            by_index = sorted(report.results, key=lambda r: r.index)
            row = {
                "qid": c.qid,
                "ids": [d.id for d in c.documents],
                "mass": [r.mass for r in by_index],
                "first_stage": c.scores,
                "fused": [r.fused for r in by_index],
            }
            append_synced(f, json.dumps(row) + "\n")
            rows[c.qid] = row
    return rows


def fused_run(rows: dict[str, dict], weight: float) -> dict[str, dict[str, float]]:
    """The fusion ``Reranker.rerank`` computes, from the stored mass."""
    return {qid: dict(zip(r["ids"], fuse_first_stage(r["first_stage"], r["mass"], weight))) for qid, r in rows.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tag")
    p.add_argument("--model", default=None, help="model or adapter (default: the shipped default)")
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--weights", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1")
    args = p.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    out = ROOT / "bench" / "results" / "fusion" / args.tag
    out.mkdir(parents=True, exist_ok=True)
    (scorer,) = make_scorers(["blockrank"], args.model, dtype="bf16", max_doc_tokens=64, split=False)
    ms = [ir_measures.parse_measure(m) for m in MEASURES]
    table: dict[str, dict] = {}
    for name in args.sets.split(","):
        data, qrels, qids = SETS[name]
        evalset = load_eval_set(data, qrels, top_k=100, qids=qids)
        rows = masses(scorer.reranker, evalset, out / f"{name}.jsonl")
        library = {q: dict(zip(r["ids"], r["fused"])) for q, r in rows.items()}
        recomputed = fused_run(rows, FIRST_STAGE_WEIGHT)
        gap = max(abs(library[q][d] - recomputed[q][d]) for q in library for d in library[q])
        assert gap < 1e-9, f"{name}: the sweep's fusion differs from Reranker.rerank's by {gap}"
        given = per_query_metrics(ms, evalset.qrels, given_run(evalset))
        table[name] = {"queries": len(rows), "given": {m: sum(g[m] for g in given.values()) / len(given) for m in MEASURES}}
        for w in weights:
            run = fused_run(rows, w)
            agg = ir_measures.calc_aggregate(ms, evalset.qrels, run)
            wtl = wins_ties_losses(per_query_metrics(ms, evalset.qrels, run), given, CONDENSED)
            table[name][str(w)] = {str(m): agg[m] for m in ms} | {"vs_given_condensed": wtl}
    print(f"nDCG@10 / condensed nDCG@10 by the first stage's weight ({args.tag}; 0 = BlockRank alone, 1 = the given order)\n")
    print("| weight | " + " | ".join(table) + " |")
    print("|---" * (len(table) + 1) + "|")
    given_cells = [f"{t['given']['nDCG@10']:.3f} / {t['given'][CONDENSED]:.3f}" for t in table.values()]
    print("| given order | " + " | ".join(given_cells) + " |")
    for w in weights:
        cells = []
        for t in table.values():
            r = t[str(w)]
            wtl = r["vs_given_condensed"]
            cells.append(f"{r['nDCG@10']:.3f} / {r[CONDENSED]:.3f} ({wtl['wins']}-{wtl['ties']}-{wtl['losses']})")
        print(f"| {w:g}{' (default)' if w == FIRST_STAGE_WEIGHT else ''} | " + " | ".join(cells) + " |")
    machine = machine_info(scorer.reranker.model.device)
    result = {"tag": args.tag, "model": args.model, "default_weight": FIRST_STAGE_WEIGHT, "machine": machine, "sets": table}
    write_text_atomic(out.parent / f"{args.tag}.json", json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
