"""Fitting the final score: lists of every size users send, with the junk they send, made from judged training lists.

A calibrated score must mean the same whatever else is in the list, so the fit sees each judged list at many sizes
(its first 1 to 100 candidates, as a retriever's top k), shuffled copies (input whose order says nothing), and copies
with junk mixed in: passages from another query's list, empty and very short documents, and near duplicates of a
judged document (which keep its label). :func:`collect` reads each list once with the reranker and keeps the raw
readout, so :func:`fit_calibration` can refit without running the model again. Every list is fitted twice, with
and without its first-stage scores, so one calibration serves callers who have them and callers who do not.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blockrank.calibration import CALLER_FEATURES, FEATURES, Calibration, Evidence, features, fit
from blockrank.eval.data import Candidates, Qrels, read_jsonl
from blockrank.files import append_synced
from blockrank.prompt import Document

SIZES = (1, 2, 3, 5, 10, 20, 50, 100)
SHUFFLED_SIZES = (5, 20, 50)
JUNK_SIZES = (2, 5, 10, 20)
# (full_agreement, order weight, first-stage weight) candidates for the caller's evidence
CALLER_GRID = [
    (full, order, first_stage)
    for full in (1.0, 2.0, 3.0)
    for order in (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
    for first_stage in (0.0, 0.05, 0.1, 0.2)
]
SHORT_JUNK = ("ok", "N/A", "Loading...", "[deleted]", "Click here to read more.", "Thanks!", "?", "-", "See above.", "TBD")


@dataclass(frozen=True)
class VariedList:
    """One list to read: documents in the order given, their labels (1, 0, or None unjudged), the retriever's scores
    in that order."""

    name: str
    query: str
    documents: list[Document]
    labels: list[int | None]
    first_stage: list[float]


def _junk(
    rng: random.Random, docs: list[Document], labels: list[int | None], others: list[Document]
) -> tuple[Document, int | None]:
    kind = rng.choice(("other", "other", "empty", "short", "duplicate"))
    if kind == "other":
        other = rng.choice(others)
        return Document(f"junk-other-{other.id}", other.text, other.title), 0
    if kind == "empty":
        return Document("junk-empty", ""), 0
    if kind == "short":
        return Document("junk-short", rng.choice(SHORT_JUNK)), 0
    i = rng.randrange(len(docs))
    words = docs[i].text.split()
    if len(words) > 3:
        del words[rng.randrange(len(words))]
    return Document(f"{docs[i].id}-dup", " ".join(words), docs[i].title), labels[i]


def varied_lists(
    candidates: list[Candidates],
    qrels: Qrels,
    rel: int,
    seed: int = 0,
    sizes: tuple[int, ...] = SIZES,
    shuffled_sizes: tuple[int, ...] = SHUFFLED_SIZES,
    junk_sizes: tuple[int, ...] = JUNK_SIZES,
) -> Iterator[VariedList]:
    """The varied lists of every judged list in ``candidates`` (grade >= ``rel`` is relevant): its first k
    candidates for k in ``sizes``, shuffled for k in ``shuffled_sizes``, with junk for k in ``junk_sizes``."""
    rng = random.Random(seed)
    pool = [d for c in candidates for d in c.documents]
    for c in candidates:
        judged = qrels.get(c.qid, {})
        if not any(g >= rel for g in judged.values()):
            continue
        labels = [None if d.id not in judged else int(judged[d.id] >= rel) for d in c.documents]
        scores = list(c.scores) if c.scores else [float(-r) for r in range(len(c.documents))]
        own = {d.id for d in c.documents}
        others = [d for d in pool if d.id not in judged and d.id not in own]
        for k in sorted(set(sizes) | set(shuffled_sizes) | set(junk_sizes)):
            if k > len(c.documents):
                continue
            if k in sizes:
                yield VariedList(f"{c.qid}/top/{k}", c.query, c.documents[:k], labels[:k], scores[:k])
            if k in shuffled_sizes:
                order = rng.sample(range(k), k)
                yield VariedList(
                    f"{c.qid}/shuffled/{k}",
                    c.query,
                    [c.documents[i] for i in order],
                    [labels[i] for i in order],
                    [scores[i] for i in order],
                )
            if k in junk_sizes:
                docs, labs = list(c.documents[:k]), list(labels[:k])
                for _ in range(max(1, k // 4)):
                    doc, label = _junk(rng, c.documents[:k], labels[:k], others)
                    at = rng.randrange(len(docs) + 1)
                    docs.insert(at, doc)
                    labs.insert(at, label)
                # the retriever ranked the mixed list in this order: its scores, spread over the new length
                spread = np.interp(np.linspace(0, k - 1, len(docs)), np.arange(k), scores[:k]).tolist()
                yield VariedList(f"{c.qid}/junk/{k}", c.query, docs, labs, spread)


def collect(reranker, lists: Iterator[VariedList], path: str | os.PathLike) -> list[dict]:
    """Read every list with ``reranker`` and keep its raw readout, one JSONL row a list in ``path`` (appended as it
    goes; rows already there are kept, so an interrupted run resumes)."""
    path = Path(path)
    done = {r["name"]: r for r in read_jsonl(path)} if path.is_file() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with open(path, "a", encoding="utf-8") as f:
        for v in lists:
            if v.name not in done:
                blocks = reranker.prompt(v.query, v.documents)
                ev = Evidence.of(reranker.readout(blocks), blocks)
                done[v.name] = {
                    "name": v.name,
                    "ids": [d.id for d in v.documents],
                    "labels": v.labels,
                    "first_stage": v.first_stage,
                    "log_mass": ev.log_mass.tolist(),
                    "affinity": ev.affinity.tolist(),
                    "blocks": ev.blocks,
                    "lengths": blocks.lengths,
                }
                append_synced(f, json.dumps(done[v.name]) + "\n")
            rows.append(done[v.name])
    return rows


def evidence(row: dict, with_first_stage: bool) -> Evidence:
    """The :class:`~blockrank.calibration.Evidence` of one collected row."""
    return Evidence(
        affinity=np.array(row["affinity"]),
        log_mass=np.array(row["log_mass"]),
        blocks=row["blocks"],
        lengths=np.array(row["lengths"], dtype=np.float64),
        first_stage=np.array(row["first_stage"], dtype=np.float64) if with_first_stage else None,
    )


def examples(rows: list[dict], full_agreement: float) -> tuple[np.ndarray, np.ndarray]:
    """Features and 0/1 labels of every judged document of ``rows``, each list with and without its first stage,
    its order read as ``"auto"`` (shuffled lists agree with the model only by chance, so their order counts little)."""
    x, y = [], []
    for row in rows:
        judged = [i for i, label in enumerate(row["labels"]) if label is not None]
        for with_first_stage in (False, True):
            x.append(features(evidence(row, with_first_stage), "auto", full_agreement)[judged])
            y += [row["labels"][i] for i in judged]
    return np.concatenate(x), np.array(y, dtype=np.float64)


def ndcg10(rows: list[dict], cal: Calibration, with_first_stage: bool) -> float:
    """Mean binary nDCG@10 of the calibrated ranking over the full-depth lists among ``rows`` (unjudged: not relevant)."""
    values = []
    for row in rows:
        if "/top/" not in row["name"] or len(row["labels"]) < 100:
            continue
        labels = np.array([label or 0 for label in row["labels"]], dtype=np.float64)
        if not labels.any():
            continue
        score = cal.log_odds(evidence(row, with_first_stage), "auto")
        gains = labels[np.argsort(-score, kind="stable")[:10]]
        ideal = np.sort(labels)[::-1][:10]
        discount = 1 / np.log2(np.arange(2, 12))
        values.append(float(gains @ discount[: len(gains)] / (ideal @ discount[: len(ideal)])))
    return float(np.mean(values)) if values else 0.0


def fit_calibration(rows: list[dict], model: str, weights: str, layer: int, fitted_on: list[str]) -> Calibration:
    """Fit the final score on ``rows``: the model's coefficients by likelihood, the caller's (how much the input
    order and the first stage count, and at what agreement the order counts fully) by the nDCG@10 of the ranking
    on the lists' full depth, over :data:`CALLER_GRID`: the likeliest weights for those trust the model as far as
    it knows the lists, which a fit on training lists overstates."""
    model_features = [i for i, f in enumerate(FEATURES) if f not in CALLER_FEATURES]
    caller = [FEATURES.index(f) for f in CALLER_FEATURES]
    best: tuple[float, Calibration] | None = None
    fitted = {full: examples(rows, full) for full in {full for full, _, _ in CALLER_GRID}}  # features per scale, once
    for full, order, first_stage in CALLER_GRID:
        x, y = fitted[full]
        offset = x[:, caller] @ np.array([order, first_stage])
        w, b = fit(x[:, model_features], y, offset=offset)
        coef = dict(zip([FEATURES[i] for i in model_features], map(float, w))) | {"order": order, "first_stage": first_stage}
        cal = Calibration(
            coef=coef,
            bias=b,
            full_agreement=full,
            model=model,
            weights=weights,
            layer=layer,
            fitted_on=fitted_on,
            examples=len(y) // 2,
            positives=int(y.sum()) // 2,
        )
        quality = (ndcg10(rows, cal, False) + ndcg10(rows, cal, True)) / 2
        if best is None or quality > best[0]:
            best = (quality, cal)
    assert best is not None
    return best[1]
