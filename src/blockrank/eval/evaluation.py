"""Evaluation harness: first stage, rerankers, standard metrics (ir-measures), run files, JSON and plots.

Each reranker's run file and per-query latencies are appended query by query, so an interrupted
evaluation resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ir_measures
import torch
from tqdm import tqdm

from blockrank.errors import InputError
from blockrank.eval.data import (
    Candidates,
    DataFormatError,
    Qrels,
    candidates_from_run,
    format_run,
    read_beir,
    read_candidates,
    read_qrels,
    read_run,
)
from blockrank.eval.machine import git_commit, machine_info, pyplot
from blockrank.eval.rerank_run import finished_queries
from blockrank.eval.retrieval import retrieve
from blockrank.files import append_synced, write_text_atomic


@dataclass
class EvalSet:
    name: str
    candidates: list[Candidates]
    qrels: Qrels
    rel: int  # minimum grade that counts as relevant for binary measures


CONDENSED = "nDCG(judged_only=True)@10"  # unjudged documents dropped before ranking (fair on deep, modern lists)


def measures(rel: int) -> list:
    return [
        ir_measures.parse_measure(m)
        for m in (
            "nDCG@10",
            CONDENSED,
            "Judged@10",
            f"RR(rel={rel})@10",
            f"R(rel={rel})@10",
            f"R(rel={rel})@20",
            f"R(rel={rel})@100",
        )
    ]


def load_eval_set(
    data: str | os.PathLike,
    qrels: str | os.PathLike | None = None,
    first_stage: str = "bm25",
    top_k: int = 100,
    split: str = "test",
    run: str | os.PathLike | None = None,
    rel: int | None = None,
    limit: int | None = None,
    qids: set[str] | None = None,
) -> EvalSet:
    """A BEIR directory (first stage computed here), a candidate-list JSONL, or a TREC run over a BEIR corpus.

    ``qids`` keeps only those queries (e.g. a dev split). Queries without judgements are dropped with a
    warning; an empty result is an error.
    """
    data = Path(data)
    if data.is_dir():
        ds = read_beir(data, split)
        judged = read_qrels(qrels) if qrels else ds.qrels
        queries = {q: t for q, t in ds.queries.items() if q in judged}
        if not queries:
            raise DataFormatError(f"the qrels ids match no query of {data}: no query has judgements")
        if limit:
            queries = dict(list(queries.items())[:limit])
        if run:
            candidates = candidates_from_run(read_run(run), queries, ds.corpus, top_k)
            candidates = [c for c in candidates if c.qid in queries]
        else:
            candidates = retrieve(first_stage, ds.corpus, queries, top_k)
        name = data.name
    else:
        if qrels is None:
            raise InputError(f"{data} is a candidate file: give its qrels with --qrels")
        judged = read_qrels(qrels)
        candidates = read_candidates(data)
        if first_stage == "bm25" and all(len(set(c.scores)) <= 1 for c in candidates):
            candidates = bm25_order(candidates)
        for c in candidates:
            c.documents, c.scores = c.documents[:top_k], c.scores[:top_k]
        name = data.stem
    unjudged = [c.qid for c in candidates if c.qid not in judged]
    if unjudged:
        warnings.warn(f"{len(unjudged)} of {len(candidates)} queries have no judgements and are skipped", stacklevel=2)
    candidates = [c for c in candidates if c.qid in judged and (qids is None or c.qid in qids)]
    absent = sorted(set(qids or ()) - {c.qid for c in candidates})
    if absent:
        warnings.warn(
            f"{len(absent)} of the {len(qids or ())} queries asked for are not in {data} with judgements "
            f"(e.g. {absent[0]!r}); evaluated without them",
            stacklevel=2,
        )
    empty = [c.qid for c in candidates if not c.documents]
    if empty:
        raise DataFormatError(f"{len(empty)} queries have an empty candidate list (e.g. {empty[0]!r})")
    if limit:
        candidates = candidates[:limit]
    if not candidates:
        raise DataFormatError("no query has both candidates and judgements: the qrels ids match no query")
    if rel is None:  # TREC DL grades 0-3 count 2 and 3 as relevant; BEIR's are binary
        rel = 2 if max(g for q in judged.values() for g in q.values()) >= 3 else 1
    return EvalSet(name, candidates, {c.qid: judged[c.qid] for c in candidates}, rel)


def bm25_order(candidates: list[Candidates]) -> list[Candidates]:
    """Lists that carry no first-stage scores (e.g. WikiQA's article sentences) get BM25's, statistics taken
    over all of their documents, so ``bm25`` is a real baseline and the lists start in a meaningful order."""
    from blockrank.eval.encoders import BM25Teacher

    out = []
    for c, scores in zip(candidates, BM25Teacher().score_lists([(c.query, c.documents) for c in candidates])):
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        out.append(Candidates(c.qid, c.query, [c.documents[i] for i in order], [scores[i] for i in order]))
    return out


def run_scorer(scorer, evalset: EvalSet, out_dir: Path) -> tuple[dict, list[dict]]:
    """Rerank every query with ``scorer`` (resuming), returning the run and per-query timing rows."""
    run_path = out_dir / f"{scorer.name}.trec"
    timing_path = out_dir / f"{scorer.name}.timing.jsonl"
    expected = {c.qid: len(c.documents) for c in evalset.candidates}
    timings = {}
    if timing_path.exists():
        for line in timing_path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                timings[row["qid"]] = row
    done = finished_queries(run_path, expected) & set(timings)
    todo = [c for c in evalset.candidates if c.qid not in done]
    with run_path.open("a") as run_f, timing_path.open("a") as time_f:
        for c in tqdm(todo, desc=scorer.name, unit="query"):
            start = time.perf_counter()
            scores = scorer.scores(c.query, c.documents, c.scores)
            seconds = time.perf_counter() - start
            ranked = sorted(zip((d.id for d in c.documents), scores), key=lambda x: -x[1])
            row = {"qid": c.qid, "seconds": seconds, "tokens": scorer.tokens, "n_docs": len(c.documents)}
            append_synced(run_f, format_run(c.qid, ranked, scorer.name))
            append_synced(time_f, json.dumps(row) + "\n")
            timings[c.qid] = row
    run = {q: {d: s for d, s in ranked} for q, ranked in read_run(run_path).items() if q in expected}
    return run, [timings[c.qid] for c in evalset.candidates]


def evaluate(scorers: list, evalset: EvalSet, out_dir: str | os.PathLike, config: dict | None = None) -> dict:
    """Run every scorer, compute metrics, write run files, ``summary.json`` and ``ndcg.png``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ms = measures(evalset.rel)
    report: dict[str, Any] = {
        "dataset": evalset.name,
        "queries": len(evalset.candidates),
        "relevance_threshold": evalset.rel,
        # without judged non-relevant documents (SciFact's qrels) condensed nDCG ranks only the relevant ones
        "judges_non_relevant": any(g < evalset.rel for q in evalset.qrels.values() for g in q.values()),
        "git_commit": git_commit(),
        "machine": machine_info(_device(config)),
        "config": config or {},
        "rerankers": {},
    }
    given = per_query_metrics(ms, evalset.qrels, given_run(evalset))
    for scorer in scorers:
        run, timings = run_scorer(scorer, evalset, out_dir)
        aggregate = ir_measures.calc_aggregate(ms, evalset.qrels, run)
        per_query = per_query_metrics(ms, evalset.qrels, run)
        seconds = [t["seconds"] for t in timings]
        report["rerankers"][scorer.name] = {
            "metrics": {str(m): aggregate[m] for m in ms},
            "vs_given_order": {m: wins_ties_losses(per_query, given, m) for m in ("nDCG@10", CONDENSED)},
            "latency_s": {"mean": statistics.mean(seconds), "p50": statistics.median(seconds), "p95": _percentile(seconds, 95)},
            "tokens_per_query": statistics.mean(t["tokens"] for t in timings),
            "per_query": {
                q: per_query.get(q, {}) | {"seconds": t["seconds"]} for q, t in zip((c.qid for c in evalset.candidates), timings)
            },
        }
    write_json(out_dir / "summary.json", report)
    plot_ndcg(report, out_dir / "ndcg.png")
    return report


def given_run(evalset: EvalSet) -> dict[str, dict[str, float]]:
    """The candidates' own order as a run, scored as :class:`~blockrank.eval.baselines.FirstStage` scores it."""
    from blockrank.eval.baselines import FirstStage

    first = FirstStage()
    return {
        c.qid: {d.id: s for d, s in zip(c.documents, first.scores(c.query, c.documents, c.scores))} for c in evalset.candidates
    }


def per_query_metrics(ms: list, qrels: Qrels, run: dict) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for m in ir_measures.iter_calc(ms, qrels, run):
        out.setdefault(m.query_id, {})[str(m.measure)] = m.value
    return out


def wins_ties_losses(
    per_query: dict[str, dict[str, float]], baseline: dict[str, dict[str, float]], measure: str
) -> dict[str, int]:
    """Queries where ``measure`` beats, equals (within 1e-9) or trails the baseline's."""
    out = {"wins": 0, "ties": 0, "losses": 0}
    for qid, base in baseline.items():
        diff = per_query.get(qid, {}).get(measure, 0.0) - base.get(measure, 0.0)
        out["ties" if abs(diff) < 1e-9 else "wins" if diff > 0 else "losses"] += 1
    return out


def dev_metrics(score, sets: list[EvalSet]) -> dict[str, float]:
    """Plain and condensed nDCG@10 of ``score(query, documents) -> scores`` on each dev set (keys
    ``dev_NAME_ndcg``, ``dev_NAME_condensed``) and the mean of them all, ``dev_score``: the ship criterion."""
    ms = [ir_measures.parse_measure("nDCG@10"), ir_measures.parse_measure(CONDENSED)]
    out: dict[str, float] = {}
    for evalset in sets:
        run = {c.qid: {d.id: float(s) for d, s in zip(c.documents, score(c.query, c.documents))} for c in evalset.candidates}
        aggregate = ir_measures.calc_aggregate(ms, evalset.qrels, run)
        out[f"dev_{evalset.name}_ndcg"] = aggregate[ms[0]]
        out[f"dev_{evalset.name}_condensed"] = aggregate[ms[1]]
    out["dev_score"] = statistics.mean(out.values())
    return out


def depth_curve(
    scorers: list, evalset: EvalSet, depths: list[int], out_dir: str | os.PathLike, config: dict | None = None
) -> dict:
    """Evaluate every scorer on the first ``d`` candidates for each depth ``d`` (``OUT/depth-d/``), and
    write ``depth.json`` and ``depth.png``: nDCG@10 and condensed nDCG@10 against depth."""
    out_dir = Path(out_dir)
    curve: dict[str, dict[str, list]] = {}
    for d in depths:
        cut = EvalSet(
            evalset.name,
            [Candidates(c.qid, c.query, c.documents[:d], c.scores[:d]) for c in evalset.candidates],
            evalset.qrels,
            evalset.rel,
        )
        report = evaluate(scorers, cut, out_dir / f"depth-{d}", config)
        for name, r in report["rerankers"].items():
            row = curve.setdefault(name, {"depth": [], "nDCG@10": [], CONDENSED: []})
            row["depth"].append(d)
            for m in ("nDCG@10", CONDENSED):
                row[m].append(r["metrics"][m])
    result = {"dataset": evalset.name, "queries": len(evalset.candidates), "curve": curve}
    write_json(out_dir / "depth.json", result)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, m in zip(axes, ("nDCG@10", CONDENSED)):
        for name, row in curve.items():
            ax.plot(row["depth"], row[m], marker="o", label=name)
        ax.set(xlabel="candidates reranked", ylabel=m, xscale="log", title=f"{evalset.name}: {m}")
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.grid(True, alpha=0.3)
    axes[0].legend()
    fig.savefig(out_dir / "depth.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return result


def latency_sweep(scorers: list, candidates: Candidates, ns: list[int]) -> dict[str, list[tuple[int, float]]]:
    """Seconds per query of each scorer on the first ``n`` candidates of one query, for each ``n``."""
    out: dict[str, list[tuple[int, float]]] = {}
    for scorer in scorers:
        for n in ns:
            docs = candidates.documents[:n]
            if len(docs) < n:
                break
            start = time.perf_counter()
            scorer.scores(candidates.query, docs, candidates.scores[:n])
            out.setdefault(scorer.name, []).append((n, time.perf_counter() - start))
    return out


def _device(config: dict | None) -> torch.device:
    """The device the rerankers ran on (as ``blockrank eval --device`` chose it)."""
    return torch.device((config or {}).get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def write_json(path: Path, obj: dict) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1))


def plot_ndcg(report: dict, path: Path) -> None:
    plt = pyplot()
    names = list(report["rerankers"])
    values = [report["rerankers"][n]["metrics"]["nDCG@10"] for n in names]
    fig, ax = plt.subplots(figsize=(max(4, 1.1 * len(names)), 3.6))
    ax.bar(names, values, color="tab:blue")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set(ylabel="nDCG@10", title=f"{report['dataset']} ({report['queries']} queries)")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_latency(sweep: dict[str, list[tuple[int, float]]], path: Path, title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in sweep.items():
        ax.plot(*zip(*points), marker="o", label=name)
    ax.set(xlabel="documents per query", ylabel="seconds per query", xscale="log", yscale="log", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
