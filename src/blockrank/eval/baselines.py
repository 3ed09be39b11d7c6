"""Rerankers to compare against, all behind one interface: ``scores(query, documents) -> list[float]``.

* :class:`FirstStage` (``given``) keeps the candidates' own order, whatever first stage made it.
* :class:`TeacherScorer` scores with a teacher: embedding cosine (``minilm``, ``mpnet``) or a fusion.
* :class:`BlockRankScorer` wraps a :class:`Reranker` (BlockRank attention or decode mode, or the
  full-causal-attention ICR baseline): as a caller gets it by default (``blockrank``: the model and the input
  order), with the first stage's scores too (``blockrank-fused``), on a shuffled copy of each list
  (``blockrank-shuffled``), or the model alone (``blockrank-model``).
* :class:`SlidingWindow` is the RankGPT-style listwise baseline: windows of 20 moved from the back
  of the list to the front in steps of 10, each window reordered by a generated permutation.
* :class:`FirstToken` is FIRST-style: one full-attention forward, documents scored by the model's
  probability of naming them as the first id of the answer.

:func:`make_scorers` builds them by name (``blockrank eval --rerankers``).
"""

from __future__ import annotations

import random
from functools import cached_property

import torch
from transformers import DynamicCache

from blockrank.defaults import RERANKERS
from blockrank.errors import InputError
from blockrank.kernel.attention import pack
from blockrank.kernel.scoring import decode_answer, forward_blocks, parse_ranking
from blockrank.reranker import Reranker


class FirstStage:
    """The given order itself (``given``): the candidates arrive in first-stage order (BM25 or dense retrieval, or a
    file's), and scoring by rank keeps equal first-stage scores in that order rather than a run file's tie-break."""

    tokens = 0

    def __init__(self, name: str = "given"):
        self.name = name

    def scores(self, query, documents, first_stage):
        return [float(len(documents) - i) for i in range(len(documents))]


class TeacherScorer:
    """A teacher from :mod:`blockrank.eval.encoders` (MiniLM, mpnet, BM25 or a fusion) used as a reranker."""

    tokens = 0

    def __init__(self, name: str, dtype: torch.dtype | None = None):
        self.name, self.dtype = name, dtype

    @cached_property
    def teacher(self):
        """Loaded at the first query, so that resuming a finished evaluation loads no model."""
        from blockrank.eval.encoders import load_teacher

        return load_teacher(self.name, dtype=self.dtype)

    def scores(self, query, documents, first_stage=None):
        return self.teacher.score_lists([(query, documents)], [first_stage])[0]


class BlockRankScorer:
    """A :class:`Reranker` scoring each list as a caller would: ``use`` is ``"default"`` (the list as given, its
    order counting as the reranker's ``input_order`` says), ``"fused"`` (with the first stage's scores too),
    ``"shuffled"`` (the default call on the list shuffled first, a fixed shuffle per list) or ``"model"`` (the
    model alone, the order ignored)."""

    def __init__(self, reranker: Reranker, name: str, use: str = "default"):
        self.reranker, self.name, self.use, self.tokens = reranker, name, use, 0

    def scores(self, query, documents, first_stage=None):
        if self.use == "fused" and first_stage is None:
            raise InputError(f"{self.name} needs the candidates' first-stage scores")
        order = list(range(len(documents)))
        if self.use == "shuffled":
            random.Random(f"{query}|{len(documents)}").shuffle(order)
        report = self.reranker.rerank_report(
            query,
            [documents[i] for i in order],
            first_stage=[first_stage[i] for i in order] if self.use == "fused" else None,
            input_order="unordered" if self.use == "model" else None,
        )
        self.tokens = report.num_tokens
        scores = [0.0] * len(documents)
        for r in report.results:
            scores[order[r.index]] = r.score
        return scores


class SlidingWindow:
    """RankGPT-style listwise reranking with a generated permutation per window (full causal attention)."""

    name = "sliding"

    def __init__(self, reranker: Reranker, window: int = 20, step: int = 10):
        if not 0 < step <= window:
            raise InputError("need 0 < step <= window")
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
                step = model(
                    torch.tensor([[t]], device=model.device),
                    position_ids=torch.tensor([[position]], device=model.device),
                    past_key_values=cache,
                    use_cache=True,
                )
                walk(prefix + (t,), torch.log_softmax(step.logits[0, -1].float(), -1), total + float(logprobs[t]), position + 1)
                cache.crop(-1)  # forget the token just fed

        walk((), root, 0.0, int(layout.position_ids[-1]) + 1)
        return [scores[tuple(seq)] for seq in ids]


def make_scorers(
    names: list[str],
    model: str | None,
    dtype: str | None = None,
    device: str | None = None,
    teacher_dtype: str = "fp32",
    **reranker_opts,
) -> list:
    """One scorer per name in :data:`RERANKERS` or a teacher (``mpnet``, ``bm25+minilm``, ...); the LM-based
    ones share one loaded ``model`` and take ``reranker_opts`` (layer, block_tokens, split, ...)."""
    from blockrank.eval.encoders import TEACHERS, is_teacher
    from blockrank.model import display_name, load_model, parse_dtype

    unknown = [n for n in names if n not in RERANKERS and not is_teacher(n)]
    if unknown:
        raise InputError(
            f"unknown rerankers {unknown}; choose from {', '.join(RERANKERS)}, or a teacher "
            f"({', '.join(TEACHERS)} or a fusion such as bm25+minilm)"
        )
    lm = None
    scorers: list = []
    for name in names:
        if name == "given":
            scorers.append(FirstStage())
            continue
        if is_teacher(name):
            scorers.append(TeacherScorer(name, parse_dtype(teacher_dtype)))
            continue
        lm = lm or load_model(model, dtype=dtype, device=device)

        def reranker(lm=lm, calibrated: bool | None = None, **kw) -> Reranker:
            return Reranker.from_loaded(lm, display_name(model or "default"), calibrated, **(reranker_opts | kw))

        scorers.append(
            {
                "blockrank": lambda: BlockRankScorer(reranker(), "blockrank"),
                "blockrank-model": lambda: BlockRankScorer(reranker(), "blockrank-model", "model"),
                "blockrank-fused": lambda: BlockRankScorer(reranker(), "blockrank-fused", "fused"),
                "blockrank-shuffled": lambda: BlockRankScorer(reranker(), "blockrank-shuffled", "shuffled"),
                "blockrank-decode": lambda: BlockRankScorer(reranker(score_by="decode"), "blockrank-decode"),
                # the calibration was fitted on BlockRank's attention, not on full causal attention's
                "blockrank-causal": lambda: BlockRankScorer(reranker(attention="causal", calibrated=False), "blockrank-causal"),
                "sliding": lambda: SlidingWindow(reranker(split=False)),  # they name documents by block
                "first": lambda: FirstToken(reranker(split=False)),
            }[name]()
        )
    return scorers
