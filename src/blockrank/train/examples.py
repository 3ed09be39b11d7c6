"""Training examples for in-context ranking: pools of positives and hard negatives, sampled into
prompts of N documents with at least one positive, in a seeded random order.

The JSONL ICR format, read and written here, is one example a line:
``{"query", "query_id", "documents": [{"doc_id", "title", "text"}], "answer_ids": [3, 7]}`` where
``answer_ids`` are the 1-based labels of the relevant documents as they appear in the prompt.
"""

from __future__ import annotations

import json
import os
import random
import warnings
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

from blockrank.errors import ConfigError
from blockrank.eval.data import (
    Candidates,
    DataFormatError,
    Qrels,
    read_jsonl,
    read_qrels,
)
from blockrank.files import write_text_atomic
from blockrank.prompt import Document


@dataclass
class ICRExample:
    query_id: str
    query: str
    documents: list[Document]
    positives: list[int]  # 0-based indices into documents; empty for teacher-labelled lists
    teacher: list[float] | None = None  # a teacher's score per document (distillation)
    teacher_name: str | None = None  # the source's own teacher, overriding the recipe's


@dataclass
class Pool:
    """One query's relevant documents and its hard negatives (best first-stage rank first)."""

    query_id: str
    query: str
    positives: list[Document]
    negatives: list[Document] = field(default_factory=list)
    first_stage: dict[str, float] | None = None  # docid -> the first stage's score, where there was one

    @property
    def documents(self) -> list[Document]:
        return self.positives + self.negatives


def pools_from_candidates(candidates: list[Candidates], qrels: Qrels, min_grade: int = 1) -> list[Pool]:
    """Positives = candidates graded ``>= min_grade``; the other candidates are hard negatives.
    Queries with no positive among their candidates are skipped, with a count."""
    pools, skipped = [], 0
    for c in candidates:
        grades = qrels.get(c.qid, {})
        pos = [d for d in c.documents if grades.get(d.id, 0) >= min_grade]
        if not pos:
            skipped += 1
            continue
        # judged-irrelevant and unjudged candidates both serve as negatives, as in standard practice
        neg = [d for d in c.documents if grades.get(d.id, 0) < min_grade]
        pools.append(Pool(c.qid, c.query, pos, neg, _first_stage(c)))
    if skipped:
        warnings.warn(f"{skipped} of {len(candidates)} queries have no positive among their candidates; skipped", stacklevel=2)
    return pools


def unlabelled_pools(candidates: list[Candidates]) -> list[Pool]:
    """Candidate lists with no labels, in first-stage order; a teacher must score them."""
    return [Pool(c.qid, c.query, [], list(c.documents), _first_stage(c)) for c in candidates if c.documents]


def _first_stage(c: Candidates) -> dict[str, float]:
    return {d.id: s for d, s in zip(c.documents, c.scores)}


def pools_from_beir(
    corpus: dict[str, Document],
    queries: dict[str, str],
    qrels: Qrels,
    top_k: int = 100,
    min_grade: int = 1,
    exclude: AbstractSet[str] = frozenset(),
) -> list[Pool]:
    """BM25-mined hard negatives for every judged query; positives come from the qrels even when BM25 missed them.
    Documents in ``exclude`` (an evaluation split's judged ones) are neither positives nor negatives."""
    from blockrank.eval.retrieval import bm25_candidates

    corpus = {d: doc for d, doc in corpus.items() if d not in exclude}
    judged = {q: t for q, t in queries.items() if q in qrels}
    pools, skipped = [], 0
    for c in bm25_candidates(corpus, judged, top_k):
        pos_ids = [d for d, g in qrels[c.qid].items() if g >= min_grade and d in corpus]
        if not pos_ids:
            skipped += 1
            continue
        given = _first_stage(c)
        floor = min(given.values(), default=0.0)  # a positive BM25 missed scores below every retrieved one
        pools.append(
            Pool(
                c.qid,
                c.query,
                [corpus[d] for d in pos_ids],
                [d for d in c.documents if d.id not in set(pos_ids)],
                given | {d: floor - 1 for d in pos_ids if d not in given},
            )
        )
    if skipped:
        warnings.warn(f"{skipped} of {len(judged)} queries have no positive in the corpus; skipped", stacklevel=2)
    return pools


def pools_from_titles(
    corpus: dict[str, Document], n: int, seed: int = 0, top_k: int = 50, exclude: AbstractSet[str] = frozenset()
) -> list[Pool]:
    """Weak supervision without labels: a document's title is the query, its own abstract (title removed)
    the positive, BM25's other hits for the title the negatives. Documents in ``exclude`` (an evaluation
    split's judged ones) are used neither as queries nor as negatives."""
    from blockrank.eval.retrieval import bm25_candidates

    rng = random.Random(seed)
    ids = [d for d in corpus if corpus[d].title.strip() and corpus[d].text.strip() and d not in exclude]
    chosen = rng.sample(ids, min(n, len(ids)))
    stripped = {d: Document(d, corpus[d].text) for d in corpus if d not in exclude}
    pools = []
    for c in bm25_candidates(stripped, {d: corpus[d].title for d in chosen}, top_k):
        given = _first_stage(c)
        pools.append(
            Pool(
                f"title:{c.qid}",
                c.query,
                [stripped[c.qid]],
                [d for d in c.documents if d.id != c.qid],
                given | {c.qid: given.get(c.qid, min(given.values(), default=0.0) - 1)},
            )
        )
    return pools


def pools_from_synth(directory: str | os.PathLike, passages: Sequence[str] | None) -> list[Pool]:
    """The lists ``blockrank synth`` kept (``DIRECTORY/lists.jsonl``, ids only), their text read from the
    ``passages`` files they were generated from; each query's source passage is its positive."""
    from blockrank.train.synth import read_lists, read_passages

    if not passages:
        raise ConfigError(f"synth source {directory}: name the files its passages come from (passages: [...])")
    lists = read_lists(Path(directory) / "lists.jsonl", read_passages(passages))
    return [Pool(c.qid, c.query, c.documents[:1], c.documents[1:]) for c in lists]


def sample_example(pool: Pool, n_docs: int, rng: random.Random, max_positives: int = 3, hard_fraction: float = 0.5) -> ICRExample:
    """N documents: up to ``max_positives`` positives, negatives drawn half from the hardest and half
    uniformly from the rest of the pool, shuffled."""
    pos = rng.sample(pool.positives, min(len(pool.positives), max_positives, n_docs - 1 if n_docs > 1 else 1))
    want = n_docs - len(pos)
    n_hard = min(int(round(want * hard_fraction)), len(pool.negatives))
    hard, rest = pool.negatives[:n_hard], pool.negatives[n_hard:]
    neg = hard + rng.sample(rest, min(want - n_hard, len(rest)))
    docs = [(d, True) for d in pos] + [(d, False) for d in neg]
    rng.shuffle(docs)
    return ICRExample(pool.query_id, pool.query, [d for d, _ in docs], [i for i, (_, p) in enumerate(docs) if p])


NDocs = int | Sequence[int]  # a fixed list size, or an inclusive [low, high] range drawn per example


def sample_examples(
    pools: list[Pool], n_docs: NDocs, seed: int = 0, epochs: int = 1, skipped: list[int] | None = None, **kwargs
) -> list[ICRExample]:
    """Seeded examples, ``epochs`` per pool (each with a fresh sample and order). ``n_docs`` is fixed or a
    ``[low, high]`` range drawn per example; a pool with fewer documents than drawn gives no example, and
    ``skipped`` (if given) receives how many were passed over."""
    low, high = (n_docs, n_docs) if isinstance(n_docs, int) else n_docs
    if not 1 <= low <= high:
        raise ConfigError(f"n_docs {n_docs!r}: need 1 <= low <= high")
    rng = random.Random(seed)
    examples, short = [], 0
    for _ in range(epochs):
        for p in pools:
            n = rng.randint(low, high)
            if len(p.positives) + len(p.negatives) < n:
                short += 1
                continue
            examples.append(sample_example(p, n, rng, **kwargs))
    rng.shuffle(examples)
    if skipped is not None:
        skipped.append(short)
    return examples


def write_icr_jsonl(path: str | os.PathLike, examples: list[ICRExample]) -> None:
    write_text_atomic(
        path,
        "".join(
            json.dumps(
                {
                    "query": e.query,
                    "query_id": e.query_id,
                    "documents": [{"doc_id": d.id, "title": d.title, "text": d.text} for d in e.documents],
                    "answer_ids": [i + 1 for i in e.positives],
                }
            )
            + "\n"
            for e in examples
        ),
    )


def read_icr_jsonl(path: str | os.PathLike) -> list[ICRExample]:
    """Read the ICR format; an example without positives is skipped with a count, an out-of-range id is an error."""
    path = Path(path)
    out, skipped = [], 0
    for n, row in enumerate(read_jsonl(path), 1):
        try:
            docs = [Document(str(d["doc_id"]), str(d["text"]), str(d.get("title") or "")) for d in row["documents"]]
            answer = [int(a) for a in row["answer_ids"]]
            query = str(row["query"])
        except (KeyError, TypeError, ValueError) as err:
            raise DataFormatError(f"{path}, example {n}: missing or malformed field ({err})") from None
        bad = [a for a in answer if not 1 <= a <= len(docs)]
        if bad:
            raise DataFormatError(f"{path}, example {n}: answer ids {bad} out of range 1..{len(docs)}")
        if not answer:
            skipped += 1
            continue
        out.append(ICRExample(str(row.get("query_id", n)), query, docs, [a - 1 for a in answer]))
    if skipped:
        warnings.warn(f"{path}: {skipped} examples without any positive skipped", stacklevel=2)
    return out


def read_qids(path: str | os.PathLike) -> set[str]:
    """Query ids, one a line (``#`` comments allowed): e.g. the dev queries every training source leaves out."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"holdout file {path} does not exist")
    return {line.split("#")[0].strip() for line in path.read_text().splitlines()} - {""}


def test_judged(beir_dir: str | os.PathLike) -> set[str]:
    """The documents judged in a BEIR directory's test split (none without one): they stay out of training."""
    path = Path(beir_dir) / "qrels" / "test.tsv"
    return {d for judged in read_qrels(path).values() for d in judged} if path.is_file() else set()
