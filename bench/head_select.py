"""Which heads rank best? Reads bench/head_features.py dumps and scores head selections.

    python bench/head_select.py --train TRAIN.pt:QRELS[:QIDS_EXCLUDED] ... --test NAME=FEATS.pt:QRELS ...

Per head: nDCG@10 on the training lists. Then, for k heads chosen by that score on the training lists, the test
lists' nDCG@10 and condensed nDCG@10, against l*'s mean over heads (the shipped readout).
"""

from __future__ import annotations

import argparse

import ir_measures
import torch

from blockrank.eval import CONDENSED, read_qrels

NDCG = ir_measures.parse_measure("nDCG@10")
COND = ir_measures.parse_measure(CONDENSED)


def load(spec: str, exclude: bool):
    """``FEATS.pt:QRELS[:QIDS]``: the judged queries of a dump; QIDS are left out (``exclude``) or kept alone."""
    path, qrels_path, *rest = spec.split(":")
    qrels = read_qrels(qrels_path)
    listed = set(open(rest[0]).read().split()) if rest else None
    feats = {q: v for q, v in torch.load(path).items() if q in qrels and (listed is None or (q in listed) != exclude)}
    return feats, qrels


def evaluate(feats, qrels, score_fn, measures=(NDCG, COND)) -> dict:
    run = {q: {d: float(s) for d, s in zip(v["docids"], score_fn(v["mass"].float()))} for q, v in feats.items()}
    res = ir_measures.calc_aggregate(list(measures), {q: qrels[q] for q in run}, run)
    return {str(m): round(res[m], 4) for m in measures}


def heads_score(heads: list[tuple[int, int]], log: bool = False):
    idx_l = torch.tensor([h[0] for h in heads])
    idx_h = torch.tensor([h[1] for h in heads])

    def f(mass):
        x = mass[idx_l, idx_h]
        return (x.clamp_min(1e-8).log() if log else x).mean(0)

    return f


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--train", nargs="+", required=True, help="FEATS.pt:QRELS[:EXCLUDE_QIDS]")
    p.add_argument("--test", nargs="+", required=True, help="NAME=FEATS.pt:QRELS[:KEEP_QIDS]")
    p.add_argument("--ks", default="1,3,5,8,12,16,24,32")
    a = p.parse_args()
    train = [load(s, exclude=True) for s in a.train]
    tests = {s.split("=")[0]: load(s.split("=", 1)[1], exclude=False) for s in a.test}
    layers, heads = next(iter(train[0][0].values()))["mass"].shape[:2]
    last = layers - 1
    per_head = torch.zeros(layers, heads)
    for layer in range(layers):
        for h in range(heads):
            per_head[layer, h] = sum(evaluate(f, q, heads_score([(layer, h)]), (NDCG,))["nDCG@10"] for f, q in train) / len(train)
    print("per-head train nDCG@10 (rows: layer, cols: head)")
    for layer in range(layers):
        print(f"{layer:3d} " + " ".join(f"{x:.3f}" for x in per_head[layer].tolist()))
    order = sorted(((layer, h) for layer in range(layers) for h in range(heads)), key=lambda t: -per_head[t])
    rows = [("l* mean (shipped)", [(last, h) for h in range(heads)], False)]
    for k in map(int, a.ks.split(",")):
        rows.append((f"top {k} heads", order[:k], False))
        rows.append((f"top {k} heads, log", order[:k], True))
    l_order = sorted(((last, h) for h in range(heads)), key=lambda t: -per_head[t])
    for k in (3, 5):
        rows.append((f"top {k} of l*", l_order[:k], False))
    for layer in range(max(0, last - 4), last):
        rows.append((f"layer {layer} mean (stop there)", [(layer, h) for h in range(heads)], False))
    names = list(tests)
    print("| readout | train | " + " | ".join(f"{n} nDCG@10 / cond" for n in names) + " |")
    for label, hs, log in rows:
        fn = heads_score(hs, log)
        tr = sum(evaluate(f, q, fn, (NDCG,))["nDCG@10"] for f, q in train) / len(train)
        cells = []
        for n in names:
            r = evaluate(*tests[n], fn)
            cells.append(f"{r['nDCG@10']:.3f} / {r[str(COND)]:.3f}")
        print(f"| {label} | {tr:.3f} | " + " | ".join(cells) + " |")
    print("top heads:", order[:32])


if __name__ == "__main__":
    main()
