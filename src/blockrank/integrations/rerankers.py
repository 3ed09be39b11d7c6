"""AnswerDotAI's ``rerankers``: ``BlockRankRanker`` is one of its rankers, so code written against that library's
``rank(query, docs)`` -> ``RankedResults`` API can use BlockRank in-process.

    from blockrank.integrations.rerankers import BlockRankRanker
    ranker = BlockRankRanker()                      # the shipped default; or BlockRankRanker("runs/x/final")
    ranker.rank("what causes rain?", ["...", "..."]).top_k(3)

For a BlockRank *service*, ``rerankers`` needs no adapter: its Cohere API ranker takes the endpoint,
``Reranker("blockrank", model_type="APIRanker", api_provider="cohere", api_key="unused",
url="http://HOST:PORT/v1/rerank")`` (``model_type="api"`` fails in rerankers 0.10.0 for model names it does not know).
"""

from __future__ import annotations

from rerankers.documents import Document
from rerankers.models.ranker import BaseRanker
from rerankers.results import RankedResults, Result
from rerankers.utils import prep_docs

from blockrank.reranker import Reranker


class BlockRankRanker(BaseRanker):
    """All documents go into one BlockRank prompt; scores are probabilities of relevance, given the model and the
    documents' order (the reranker's ``input_order``), comparable across queries and list sizes."""

    def __init__(self, model_name_or_path: str | Reranker | None = None, verbose: int = 0, **reranker_kwargs):
        self.reranker = (
            model_name_or_path
            if isinstance(model_name_or_path, Reranker)
            else Reranker.from_pretrained(model_name_or_path, **reranker_kwargs)
        )
        self.verbose = verbose

    def rank(self, query: str, docs, doc_ids=None, metadata=None) -> RankedResults:
        prepped: list[Document] = prep_docs(docs, doc_ids, metadata)
        ranked = self.reranker.rerank(query, [d.text for d in prepped])
        results = [Result(document=prepped[r.index], score=r.score, rank=n) for n, r in enumerate(ranked, 1)]
        return RankedResults(results=results, query=query, has_scores=True)

    def score(self, query: str, doc: str) -> float:
        """The probability that ``doc`` is relevant to ``query``, read alone."""
        return self.reranker.score(query, [doc])[0]
