"""Do calibrated scores keep their meaning across list sizes and queries? (issue #20)

Fits each score variant on the DL21 dev lists (configs/dl21-dev.qids, BM25 and SPLADE++ top-100, never a report
set) and reports on DL19:
  (a) the same relevant document (grade >= 2, in the BM25 top 5) scored among 5 and among 50 documents: |gap|;
  (b) relevant-vs-not F1 per query with one global threshold (the best on the dev lists) against each query's
      own best threshold (an oracle), on the judged documents of the top-100 lists;
  (c) expected calibration error (10 bins) on the same documents.
Variants: the list-normalised mass (no fit), a Platt sigmoid of log(mass) (no reference), of log(mass) + log_scale
(block 0 as the reference: what `blockrank calibrate` ships), the same fitted on the dev lists cut to 5, 20, 50 and
100 candidates (set dev-depths), and, as a reference that cannot depend on the list, a Platt sigmoid of MiniLM's
cosine (all-MiniLM-L6-v2, pointwise; its 5-vs-50 gap is 0 by construction).

  python bench/calibration.py [--model M] [--dtype fp32] [--sets dev,dev-depths,dl19-5,dl19-50,dl19-bm25,dl19-splade]
Readouts are cached per list under runs/calibration-bench/ (resumable); the table goes to stdout and
bench/results/calibration/summary.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from blockrank.calibration import best_f1, collect, expected_calibration_error, f1_at, fit
from blockrank.evaluation import load_eval_set
from blockrank.examples import read_qids
from blockrank.files import write_text_atomic
from blockrank.model import load_model
from blockrank.report import machine_info
from blockrank.reranker import Reranker, settings

D = Path("../shared/data/trec-dl")
QRELS19, QRELS21 = D / "qrels.dl19-passage.txt", D / "qrels.dl21-passage.txt"
REL = 2
# each variant's calibration input per list (None: the mass itself, no fit) and the dev sets it is fitted on
VARIANTS = {
    "mass": (None, ("dev",)),
    "platt(log mass)": (lambda r: np.array(r["log_mass"]), ("dev",)),
    "platt(log mass + log_scale)": (lambda r: np.array(r["log_mass"]) + r["log_scale"], ("dev",)),
    "platt(log mass + log_scale), dev at 5-100": (lambda r: np.array(r["log_mass"]) + r["log_scale"], ("dev", "dev-depths")),
    "platt(MiniLM cosine), pointwise reference": (lambda r: np.array(r["minilm"]), ("dev",)),
}
MINILM_SETS = ("dev", "dl19-bm25", "dl19-splade")  # where the MiniLM reference is scored (the 100-candidate lists)


def readouts(reranker: Reranker, cache: Path, sets: list[str]) -> dict[str, list[dict]]:
    """Each wanted list's readouts (computed once, cached); dev is both DL21 dev lists."""
    out: dict[str, list[dict]] = {}
    dev = read_qids("configs/dl21-dev.qids")
    plan = {
        "dev": [
            (load_eval_set(D / f"dl21-{fs}-top100.jsonl", QRELS21, top_k=100, rel=REL, qids=dev), 100, f"dev-{fs}")
            for fs in ("bm25", "splade")
        ],
        "dev-depths": [  # the same dev lists cut to 5, 20 and 50 candidates: what a fit across list sizes sees
            (load_eval_set(D / f"dl21-{fs}-top100.jsonl", QRELS21, top_k=100, rel=REL, qids=dev), depth, f"dev-{fs}-{depth}")
            for fs in ("bm25", "splade")
            for depth in (5, 20, 50)
        ],
        "dl19-5": [(load_eval_set(D / "dl19-bm25-top100.jsonl", QRELS19, top_k=100, rel=REL), 5, "dl19-bm25-5")],
        "dl19-50": [(load_eval_set(D / "dl19-bm25-top100.jsonl", QRELS19, top_k=100, rel=REL), 50, "dl19-bm25-50")],
        "dl19-bm25": [(load_eval_set(D / "dl19-bm25-top100.jsonl", QRELS19, top_k=100, rel=REL), 100, "dl19-bm25-100")],
        "dl19-splade": [(load_eval_set(D / "dl19-splade-top100.jsonl", QRELS19, top_k=100, rel=REL), 100, "dl19-splade-100")],
    }
    for name in sets:
        out[name] = []
        for s, depth, file in plan[name]:
            rows = collect(reranker, s.candidates, s.qrels, cache / f"{file}.jsonl", depth)
            if name in MINILM_SETS:
                add_minilm(rows, s.candidates, cache.parent / f"minilm-{file}.json")
            out[name] += rows
    return out


def add_minilm(rows: list[dict], candidates: list, path: Path) -> None:
    """Each row's MiniLM cosine per document (computed once, cached in ``path``)."""
    if not path.is_file():
        from blockrank.teachers import load_teacher

        docs = {c.qid: c.documents[: len(r["ids"])] for c, r in zip(candidates, rows)}  # collect's first `depth`
        scores = load_teacher("minilm").score_lists([(c.query, docs[c.qid]) for c in candidates])
        cosine = {c.qid: {d.id: x for d, x in zip(docs[c.qid], s)} for c, s in zip(candidates, scores)}
        write_text_atomic(path, json.dumps(cosine))
    cosine = json.loads(path.read_text())
    for r in rows:
        r["minilm"] = [cosine[r["qid"]][d] for d in r["ids"]]


def carries(x, rows: list[dict]) -> bool:
    """Whether every row holds variant input ``x`` (the MiniLM cosine is scored on the 100-candidate lists only)."""
    if x is None:
        return True
    try:
        for r in rows:
            x(r)
    except KeyError:
        return False
    return True


def variant_scores(rows: list[dict], x, ab: tuple[float, float] | None) -> list[np.ndarray]:
    """Per list, each document's score under one variant (the mass itself when there is no fit)."""
    if ab is None:
        return [np.exp(np.array(r["log_mass"])) for r in rows]
    a, b = ab
    return [1 / (1 + np.exp(-(a * x(r) + b))) for r in rows]


def judged(rows: list[dict], scores: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per list, the scores and 0/1 labels of its judged documents."""
    out = []
    for r, s in zip(rows, scores):
        keep = [i for i, g in enumerate(r["grades"]) if g is not None]
        out.append((s[keep], np.array([int(r["grades"][i] >= REL) for i in keep])))
    return out


def report(data: dict[str, list[dict]]) -> dict:
    table: dict[str, dict] = {}
    for name, (x, fit_on) in VARIANTS.items():
        if not all(f in data for f in fit_on):
            continue
        dev_rows = [r for f in fit_on for r in data[f]]
        ab = None
        if x is not None:
            xy = [(xi, int(g >= REL)) for r in dev_rows for xi, g in zip(x(r), r["grades"]) if g is not None]
            ab = fit(np.array([xi for xi, _ in xy]), np.array([y for _, y in xy]))
        row: dict = {"a_b": ab, "fitted_on": list(fit_on)}
        dev = judged(data["dev"], variant_scores(data["dev"], x, ab))
        _, threshold = best_f1(np.concatenate([s for s, _ in dev]), np.concatenate([y for _, y in dev]))
        row["global_threshold"] = threshold
        if "dl19-5" in data and "dl19-50" in data and carries(x, data["dl19-5"]):
            five = dict(zip((r["qid"] for r in data["dl19-5"]), variant_scores(data["dl19-5"], x, ab)))
            gaps = []
            for r, s50 in zip(data["dl19-50"], variant_scores(data["dl19-50"], x, ab)):
                for i in range(5):
                    if r["grades"][i] is not None and r["grades"][i] >= REL:
                        gaps.append(abs(float(five[r["qid"]][i]) - float(s50[i])))
            row["gap_5_50"] = {"pairs": len(gaps), "mean": float(np.mean(gaps)), "max": float(np.max(gaps))}
        for name19 in ("dl19-bm25", "dl19-splade"):
            if name19 not in data:
                continue
            lists = [(s, y) for s, y in judged(data[name19], variant_scores(data[name19], x, ab)) if y.any()]
            probs, labels = np.concatenate([s for s, _ in lists]), np.concatenate([y for _, y in lists])
            row[name19] = {
                "queries": len(lists),
                "f1_global": float(np.mean([f1_at(s, y, threshold) for s, y in lists])),
                "f1_oracle": float(np.mean([best_f1(s, y)[0] for s, y in lists])),
                "ece": expected_calibration_error(probs, labels) if x is not None else None,
            }
        table[name] = row
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None)
    p.add_argument("--dtype", default="fp32")
    p.add_argument("--sets", default="dev,dev-depths,dl19-5,dl19-50,dl19-bm25,dl19-splade")
    p.add_argument("--out", default="bench/results/calibration/summary.json")
    args = p.parse_args()
    lm = load_model(args.model, dtype=args.dtype)
    reranker = Reranker(lm.model, lm.tokenizer, **settings(lm.settings))  # the default call's settings (split)
    sets = args.sets.split(",")
    data = readouts(reranker, Path("runs/calibration-bench") / (args.model or "default"), sets)
    table = report(data)
    summary = {
        "model": args.model or "default",
        "dtype": args.dtype,
        "sets": sets,
        "machine": machine_info(lm.model.device),
        "variants": table,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(summary, indent=1))
    print("| scores | 5-vs-50 gap mean / max | DL19 BM25 F1 global / oracle | ECE | DL19 SPLADE++ F1 global / oracle | ECE |")
    print("|---|---|---|---|---|---|")
    for name, row in table.items():
        gap = row.get("gap_5_50")
        cells = [f"{gap['mean']:.3f} / {gap['max']:.3f} ({gap['pairs']} docs)" if gap else "n/a"]
        for s in ("dl19-bm25", "dl19-splade"):
            r = row.get(s)
            cells += [
                f"{r['f1_global']:.3f} / {r['f1_oracle']:.3f}" if r else "n/a",
                f"{r['ece']:.3f}" if r and r["ece"] is not None else "n/a",
            ]
        print(f"| {name} | {' | '.join(cells)} |")
    print(f"\n{summary['machine'].get('cpu')}, torch {summary['machine'].get('torch')}, {args.dtype}")


if __name__ == "__main__":
    main()
