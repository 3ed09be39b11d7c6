"""Fusion of a caller's first-stage scores with BlockRank's own (blockrank.fusion, Reranker.rerank)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from blockrank import Reranker
from blockrank.baselines import BlockRankScorer
from blockrank.defaults import FIRST_STAGE_WEIGHT
from blockrank.errors import InputError
from blockrank.fusion import check_first_stage, fuse

DOCS = ["alpha beta", "gamma", "delta epsilon zeta", "eta", "theta iota"]


@pytest.fixture(scope="module")
def reranker(tiny_model_dir):
    return Reranker.from_pretrained(tiny_model_dir, layer=1, dtype="fp32", calibrated=False)


def test_weighted_fuse():
    assert fuse([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]) == pytest.approx([0.0, 0.0, 0.0])
    assert fuse([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], [0.75, 0.25]) == pytest.approx([-0.6124, 0.0, 0.6124], abs=1e-4)
    assert fuse([[5.0], [1.0]], [0.5, 0.5]) == [0.0]


def test_weight_zero_keeps_blockrank_order_and_weight_one_the_first_stage(reranker):
    plain = reranker.rerank("query", DOCS)
    first_stage = [float(i) for i in range(len(DOCS))]  # the last document best
    own = reranker.rerank("query", DOCS, first_stage=first_stage, first_stage_weight=0.0)
    assert [r.index for r in own] == [r.index for r in plain]
    assert [r.score for r in own] == pytest.approx([r.score for r in plain])  # score stays BlockRank's
    assert all(r.fused is not None for r in own) and all(r.fused is None for r in plain)
    given = reranker.rerank("query", DOCS, first_stage=np.array(first_stage), first_stage_weight=1.0)
    assert [r.index for r in given] == [4, 3, 2, 1, 0]
    fused = reranker.rerank("query", DOCS, first_stage=torch.tensor(first_stage), top_k=2)
    assert [r.fused for r in fused] == sorted((r.fused for r in fused), reverse=True) and len(fused) == 2
    by_index = sorted(own, key=lambda r: r.index)  # the fused score is fuse() of log mass, exactly (float64)
    expected = fuse([first_stage, [math.log(r.mass) for r in by_index]], [FIRST_STAGE_WEIGHT, 1 - FIRST_STAGE_WEIGHT])
    assert [r.fused for r in fused] == pytest.approx(sorted(expected, reverse=True)[:2], abs=1e-12)


@pytest.mark.parametrize(
    ("first_stage", "weight", "message"),
    [
        ([1.0, 2.0], 0.3, r"shape \(2,\); give one score per document \(5\)"),
        ([[1.0] * 5], 0.3, "shape"),
        ([1.0, float("nan"), 0.0, 0.0, 0.0], 0.3, r"first_stage\[1\] is not a finite number"),
        (["a", "b", "c", "d", "e"], 0.3, "must be numbers"),
        ([1.0] * 5, 1.5, r"first_stage_weight must be a number in \[0, 1\]"),
        ([1.0] * 5, True, "first_stage_weight"),
    ],
)
def test_bad_first_stage_is_refused(reranker, first_stage, weight, message):
    with pytest.raises(InputError, match=message):
        reranker.rerank("query", DOCS, first_stage=first_stage, first_stage_weight=weight)


def test_check_first_stage_returns_floats():
    assert check_first_stage((1, 2, 3), 3, 0.3) == [1.0, 2.0, 3.0]


def test_fused_scorer_returns_fused_scores_in_input_order(reranker):
    scorer = BlockRankScorer(reranker, "blockrank-fused", first_stage_weight=1.0)
    scores = scorer.scores("query", DOCS, first_stage=[0.0, 4.0, 1.0, 3.0, 2.0])
    assert np.argsort(scores).tolist() == [0, 2, 4, 3, 1] and scorer.tokens > 0
    with pytest.raises(InputError, match="needs the candidates' first-stage scores"):
        scorer.scores("query", DOCS)


def test_rerank_batch_fuses_each_querys_own_scores(reranker):
    lists, scores = [DOCS, DOCS[:3]], [[0.0, 4.0, 1.0, 3.0, 2.0], [2.0, 0.0, 1.0]]
    out = reranker.rerank_batch(["q1", "q2"], lists, first_stage=scores, first_stage_weight=0.7)
    for q, docs, given, got in zip(["q1", "q2"], lists, scores, out):
        alone = reranker.rerank(q, docs, first_stage=given, first_stage_weight=0.7)
        assert [(r.index, r.fused) for r in got] == [(r.index, r.fused) for r in alone]
    with pytest.raises(InputError, match="2 queries but 1 first_stage score lists"):
        reranker.rerank_batch(["q1", "q2"], lists, first_stage=scores[:1])
    with pytest.raises(InputError, match=r"first_stage has shape \(5,\); give one score per document \(3\)"):
        reranker.rerank_batch(["q1", "q2"], lists, first_stage=[scores[0], scores[0]])
