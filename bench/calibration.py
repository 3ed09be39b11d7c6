"""Does the returned score mean one thing at every list size, junk included? (issue #42)

Reads DL19 (a report set: never fitted on) as the default call does, in the varied lists the calibration is fitted
on (blockrank.train.calibration_lists: each list's first 5, 50 and 100 candidates, and its first 5 and 20 with junk mixed
in), and prints:
  (a) the same judged document among the first 5 and among the first 50 candidates: |score gap|, mean and max,
      for relevant (grade >= 2) and irrelevant documents;
  (b) expected calibration error (10 bins) of the judged documents of the top-100 lists;
  (c) F1 per query at one global threshold (the best on the training lists the calibration was fitted on, from
      `blockrank calibrate`'s cache) against each query's own best threshold (an oracle);
  (d) the median score of the junk mixed in (empty, very short, another query's passage);
  (e) a RAG case: "What is the capital of France?", one answer among 4 and among 49 bakery notes.

  python bench/calibration.py [--model M] [--train-cache runs/calibration/default]
Readouts are cached under runs/calibration-bench/ (resumable); the table goes to stdout and
bench/results/calibration/summary.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

import numpy as np

from blockrank import Reranker
from blockrank.calibration import best_f1, expected_calibration_error, f1_at
from blockrank.eval import machine_info, read_candidates, read_jsonl, read_qrels
from blockrank.files import write_text_atomic
from blockrank.train import collect, evidence, varied_lists

D = Path("../shared/data/trec-dl")
REL = 2
ANSWER = "Paris is the capital and most populous city of France, on the Seine in the north of the country."
NOTES = (
    "Bakery notes, {day}: {n} sourdough loaves for the market stall, feed the starter at {h} am, oven at 240 C.",
    "Reminder for {day}: order {n} kg of rye flour and butter; the croissant dough rests {h} hours in the cold room.",
    "Staff rota {day}: {n} people on the early shift from {h} am; the new mixer arrives after lunch.",
    "Cake orders for {day}: {n} birthday cakes, two with lemon icing, pick-up at {h} pm; invoice the cafe.",
)


def notes(k: int) -> list[str]:
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    rng = random.Random(k)
    return [rng.choice(NOTES).format(day=rng.choice(days), n=rng.randint(2, 60), h=rng.randint(3, 9)) for _ in range(k)]


def rag_case(reranker: Reranker) -> dict:
    out = {}
    for n in (5, 50):
        docs = notes(n - 1)
        docs.insert(n // 2, ANSWER)
        results = reranker.rerank("What is the capital of France?", docs)
        junk = [r.score for r in results if r.index != n // 2]
        out[str(n)] = {
            "answer": next(r.score for r in results if r.index == n // 2),
            "answer_rank": next(k for k, r in enumerate(results, 1) if r.index == n // 2),
            "junk_median": statistics.median(junk),
        }
    empty = reranker.rerank("What is the capital of France?", [ANSWER, "", *notes(3)])
    out["empty_document"] = next(r.score for r in empty if r.index == 1)
    return out


def scored(rows: list[dict], reranker: Reranker) -> dict[str, np.ndarray]:
    cal = reranker.calibration
    assert cal is not None, "the model has no calibration: run `blockrank calibrate` first"
    return {r["name"]: cal.probability(evidence(r, False), reranker.input_order) for r in rows}


def gaps(rows: list[dict], scores: dict[str, np.ndarray]) -> dict:
    out: dict[str, list[float]] = {"relevant": [], "irrelevant": []}
    for r in rows:
        qid, kind, k = r["name"].split("/")
        if kind != "top" or k != "5" or f"{qid}/top/50" not in scores:
            continue
        for i, label in enumerate(r["labels"]):
            if label is not None:
                gap = abs(float(scores[r["name"]][i] - scores[f"{qid}/top/50"][i]))
                out["relevant" if label else "irrelevant"].append(gap)
    return {k: {"docs": len(v), "mean": float(np.mean(v)), "max": float(np.max(v))} for k, v in out.items() if v}


def judged_lists(rows: list[dict], scores: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for r in rows:
        if "/top/" in r["name"] and len(r["labels"]) == 100:
            keep = [i for i, label in enumerate(r["labels"]) if label is not None]
            out.append((scores[r["name"]][keep], np.array([r["labels"][i] for i in keep])))
    return out


def junk(rows: list[dict], scores: dict[str, np.ndarray]) -> dict[str, float]:
    found: dict[str, list[float]] = {"empty": [], "short": [], "other query's passage": []}
    for r in rows:
        if "/junk/" not in r["name"]:
            continue
        for i, doc in enumerate(r["ids"]):
            kind = {"junk-empty": "empty", "junk-short": "short"}.get(doc)
            if kind is None and doc.startswith("junk-other-"):
                kind = "other query's passage"
            if kind:
                found[kind].append(float(scores[r["name"]][i]))
    return {k: statistics.median(v) for k, v in found.items() if v}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None)
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--train-cache", default="runs/calibration/default", help="`blockrank calibrate`'s readouts")
    p.add_argument("--out", default="bench/results/calibration/summary.json")
    args = p.parse_args()
    reranker = Reranker.from_pretrained(args.model, dtype=args.dtype, calibrated=True)
    train = [r for f in sorted(Path(args.train_cache).glob("*.jsonl")) for r in read_jsonl(f)]
    train_lists = judged_lists(train, scored(train, reranker))
    _, threshold = best_f1(np.concatenate([s for s, _ in train_lists]), np.concatenate([y for _, y in train_lists]))
    summary: dict = {"model": args.model or "default", "dtype": args.dtype, "global_threshold": threshold, "sets": {}}
    for first_stage in ("bm25", "splade"):
        name = f"dl19-{first_stage}-top100"
        qrels = read_qrels(D / "qrels.dl19-passage.txt")
        candidates = read_candidates(D / f"{name}.jsonl")
        lists = varied_lists(candidates, qrels, REL, sizes=(5, 50, 100), shuffled_sizes=(), junk_sizes=(5, 20))
        rows = collect(reranker, lists, Path("runs/calibration-bench") / f"{name}.jsonl")
        scores = scored(rows, reranker)
        lists = [(s, y) for s, y in judged_lists(rows, scores) if y.any()]
        probs, labels = np.concatenate([s for s, _ in lists]), np.concatenate([y for _, y in lists])
        summary["sets"][name] = {
            "gap_5_50": gaps(rows, scores),
            "ece": expected_calibration_error(probs, labels),
            "f1_global": float(np.mean([f1_at(s, y, threshold) for s, y in lists])),
            "f1_oracle": float(np.mean([best_f1(s, y)[0] for s, y in lists])),
            "junk_median": junk(rows, scores),
        }
    summary["rag_case"] = rag_case(reranker)
    summary["machine"] = machine_info(reranker.model.device)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(summary, indent=1))

    print(f"global threshold {threshold:.3f} (best F1 on {len(train_lists)} training lists)")
    print(
        "| DL19 top 100 | 5-vs-50 gap, relevant: mean / max | irrelevant: mean / max | ECE | F1 global / oracle | junk median |"
    )
    print("|---|---|---|---|---|---|")
    for name, s in summary["sets"].items():
        g = s["gap_5_50"]
        cells = [f"{g[k]['mean']:.3f} / {g[k]['max']:.3f} ({g[k]['docs']})" for k in ("relevant", "irrelevant")]
        cells += [f"{s['ece']:.3f}", f"{s['f1_global']:.3f} / {s['f1_oracle']:.3f}"]
        cells.append(", ".join(f"{k} {v:.3f}" for k, v in s["junk_median"].items()))
        print(f"| {name} | {' | '.join(cells)} |")
    case = summary["rag_case"]
    for n in ("5", "50"):
        c = case[n]
        answer = f"answer {c['answer']:.3f} (rank {c['answer_rank']})"
        print(f"capital of France among {n}: {answer}, notes median {c['junk_median']:.3f}")
    print(f"an empty document: {case['empty_document']:.3f}")
    print(f"\n{summary['machine'].get('cpu')}, torch {summary['machine'].get('torch')}, {args.dtype}")


if __name__ == "__main__":
    main()
