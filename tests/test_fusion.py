"""The final ranking: the model's evidence with the input order and the caller's first-stage scores
(blockrank.calibration, Reranker.rerank's input_order and first_stage)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from factories import tiny_calibration

from blockrank import Reranker
from blockrank.calibration import agreement
from blockrank.errors import InputError
from blockrank.eval.baselines import BlockRankScorer
from blockrank.fusion import check_first_stage, fuse
from blockrank.model import load_model
from blockrank.settings import ModelSettings

DOCS = ["alpha beta", "gamma", "delta epsilon zeta", "eta", "theta iota", "kappa lambda mu", "nu", "xi omicron"]


def reranker_with(tiny_model_dir, **coef) -> Reranker:
    lm = load_model(tiny_model_dir, dtype="fp32")
    return Reranker(lm.model, lm.tokenizer, ModelSettings(layer=1, calibration=tiny_calibration(tiny_model_dir, **coef)))


@pytest.fixture(scope="module")
def reranker(tiny_model_dir):
    return reranker_with(tiny_model_dir, order=3.0, first_stage=0.0)


def model_order(reranker: Reranker, docs: list[str]) -> list[int]:
    return [r.index for r in reranker.rerank("query", docs, input_order="unordered")]


def test_weighted_fuse():
    assert fuse([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]) == pytest.approx([0.0, 0.0, 0.0])
    assert fuse([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], [0.75, 0.25]) == pytest.approx([-0.6124, 0.0, 0.6124], abs=1e-4)
    assert fuse([[5.0], [1.0]], [0.5, 0.5]) == [0.0]


def test_agreement_detects_ordered_and_shuffled_lists():
    ordered = -np.arange(100.0)  # the model reads the list exactly in its order
    assert agreement(ordered) == pytest.approx(1.0) and agreement(ordered[::-1]) == pytest.approx(-1.0)
    shuffled = ordered.copy()
    random.Random(0).shuffle(shuffled)
    assert abs(agreement(shuffled)) < 0.2
    assert agreement(np.array([1.0, 0.0])) == 0.0  # too short to say


def test_an_agreeing_order_is_kept_and_an_unordered_list_gets_no_prior(reranker):
    mine = model_order(reranker, DOCS)
    # an input order that nearly agrees with the model: auto trusts it, and its order wins the close calls
    agreeing = mine[:]
    agreeing[0], agreeing[1] = agreeing[1], agreeing[0]
    docs = [DOCS[i] for i in agreeing]
    assert [r.index for r in reranker.rerank("query", docs)] == list(range(len(DOCS)))
    assert [r.index for r in reranker.rerank("query", docs, input_order="ranked")] == list(range(len(DOCS)))
    # the reverse of the model's order: auto finds no agreement and ranks as the model alone does
    reverse = [DOCS[i] for i in mine[::-1]]
    auto = reranker.rerank("query", reverse)
    assert [(r.index, r.score) for r in auto] == [
        (r.index, r.score) for r in reranker.rerank("query", reverse, input_order="unordered")
    ]
    assert [r.index for r in auto] != list(range(len(DOCS)))


def test_scores_are_sorted_probabilities_and_the_model_score_stays_available(reranker):
    results = reranker.rerank("query", DOCS, input_order="ranked")
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    alone = {r.index: r.score for r in reranker.rerank("query", DOCS, input_order="unordered")}
    assert {r.index: r.model_score for r in results} == pytest.approx(alone)
    assert [r.score for r in results] != pytest.approx([alone[r.index] for r in results])  # the order counted


def test_first_stage_scores_count_when_given(tiny_model_dir):
    reranker = reranker_with(tiny_model_dir, first_stage=1e4)
    first_stage = [float(i) for i in range(len(DOCS))]  # the last document best
    for given in (first_stage, np.array(first_stage), torch.tensor(first_stage)):
        got = reranker.rerank("query", DOCS, first_stage=given, input_order="unordered")
        assert [r.index for r in got] == list(range(len(DOCS)))[::-1]
    assert [r.index for r in reranker.rerank("query", DOCS, top_k=2, first_stage=first_stage)] == [7, 6]


def test_ties_keep_the_input_order_and_one_document_is_defined(tiny_model_dir, reranker):
    blind = reranker_with(tiny_model_dir, affinity=0.0)  # every document gets the same score: all ties
    assert [r.index for r in blind.rerank("query", DOCS, input_order="unordered")] == list(range(len(DOCS)))
    (one,) = reranker.rerank("query", ["a single document"], first_stage=[3.0])
    assert one.index == 0 and 0 < one.score < 1 and one.score == pytest.approx(one.model_score)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_order": "sorted"}, "input_order must be one of 'ranked', 'unordered', 'auto', got 'sorted'"),
        ({"first_stage": [1.0, 2.0]}, r"first_stage has shape \(2,\); give one score per document \(8\)"),
        ({"first_stage": [1.0, float("nan")] + [0.0] * 6}, r"first_stage\[1\] is not a finite number"),
        ({"first_stage": ["a"] * 8}, "first_stage must be numbers"),
    ],
)
def test_bad_arguments_are_refused(reranker, kwargs, message):
    with pytest.raises(InputError, match=message):
        reranker.rerank("query", DOCS, **kwargs)


def test_bad_reranker_default_is_refused(tiny_model_dir):
    lm = load_model(tiny_model_dir, dtype="fp32")
    with pytest.raises(InputError, match="input_order must be one of"):
        Reranker(lm.model, lm.tokenizer, ModelSettings(layer=1), input_order="sorted")  # type: ignore[arg-type]


def test_first_stage_weight_is_deprecated_and_ignored(reranker):
    plain = reranker.rerank("query", DOCS)
    with pytest.warns(DeprecationWarning, match="first_stage_weight is deprecated"):
        weighted = reranker.rerank("query", DOCS, first_stage_weight=0.3)
    assert [(r.index, r.score) for r in weighted] == [(r.index, r.score) for r in plain]


def test_check_first_stage_returns_floats():
    assert check_first_stage((1, 2, 3), 3) == [1.0, 2.0, 3.0]


def test_scorers_return_scores_in_input_order(reranker):
    for use in ("default", "fused", "shuffled", "model"):
        scores = BlockRankScorer(reranker, f"blockrank-{use}", use).scores("query", DOCS, first_stage=[0.0] * len(DOCS))
        expected = reranker.rerank("query", DOCS, input_order="unordered" if use == "model" else None)
        if use in ("default", "fused", "model"):
            assert scores == pytest.approx([s for _, s in sorted((r.index, r.score) for r in expected)])
        assert len(scores) == len(DOCS) and all(0 < s < 1 for s in scores)


def test_rerank_batch_passes_scores_and_input_order_per_query(reranker):
    lists = [DOCS[:3], DOCS[3:]]
    scores = [[0.0, 2.0, 1.0], [1.0, 0.0, 3.0, 2.0, 5.0]]
    out = reranker.rerank_batch(["q1", "q2"], lists, first_stage=scores, input_order="ranked")
    for got, q, docs, given in zip(out, ["q1", "q2"], lists, scores):
        alone = reranker.rerank(q, docs, first_stage=given, input_order="ranked")
        assert [(r.index, r.score) for r in got] == [(r.index, r.score) for r in alone]
    with pytest.raises(InputError, match="2 queries but 1 first_stage score lists"):
        reranker.rerank_batch(["q1", "q2"], lists, first_stage=scores[:1])
