"""First-stage retrieval over a corpus: BM25 (bm25s) and exact dense retrieval (all-MiniLM-L6-v2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blockrank.defaults import FIRST_STAGES
from blockrank.errors import InputError
from blockrank.eval.data import Candidates
from blockrank.prompt import Document

if TYPE_CHECKING:
    import torch


def bm25_candidates(corpus: dict[str, Document], queries: dict[str, str], top_k: int) -> list[Candidates]:
    """BM25 (bm25s, English stopwords) over title + text."""
    import bm25s

    ids = list(corpus)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([corpus[i].content for i in ids], stopwords="en", show_progress=False), show_progress=False)
    qids = list(queries)
    hits, scores = retriever.retrieve(
        bm25s.tokenize([queries[q] for q in qids], stopwords="en", show_progress=False),
        k=min(top_k, len(ids)),
        show_progress=False,
    )
    return [Candidates(q, queries[q], [corpus[ids[j]] for j in hits[n]], scores[n].tolist()) for n, q in enumerate(qids)]


def dense_candidates(
    corpus: dict[str, Document],
    queries: dict[str, str],
    top_k: int,
    dtype: torch.dtype | None = None,
    max_tokens: int | None = None,
) -> list[Candidates]:
    """Exact dense retrieval with all-MiniLM-L6-v2 (cosine). The encoder is the ``minilm`` teacher's, with its
    ``dtype`` and ``max_tokens`` (default fp32, 256 tokens), so a teacher labelling the lists reuses its embeddings."""
    import torch

    from blockrank.eval.encoders import dense_encoder

    encoder = dense_encoder("minilm", "cpu", dtype, max_tokens)
    ids = list(corpus)
    doc_emb = encoder.encode([corpus[i].content for i in ids])
    qids = list(queries)
    sims = encoder.encode([queries[q] for q in qids]) @ doc_emb.T
    top = torch.topk(sims, k=min(top_k, len(ids)), dim=1)
    return [
        Candidates(q, queries[q], [corpus[ids[j]] for j in top.indices[n].tolist()], top.values[n].tolist())
        for n, q in enumerate(qids)
    ]


def retrieve(
    first_stage: str, corpus: dict[str, Document], queries: dict[str, str], top_k: int, **dense: Any
) -> list[Candidates]:
    """The top ``top_k`` of ``corpus`` for each query by a first stage named in :data:`FIRST_STAGES`
    (``dense`` holds :func:`dense_candidates`' ``dtype`` and ``max_tokens``)."""
    if first_stage == "bm25":
        return bm25_candidates(corpus, queries, top_k)
    if first_stage == "dense":
        return dense_candidates(corpus, queries, top_k, **dense)
    raise InputError(f"unknown first stage {first_stage!r}; choose {' or '.join(FIRST_STAGES)}")
