"""The public API on the real default model and on a tiny random one."""

from __future__ import annotations

import pytest
import torch

from blockrank import Reranker, Result
from blockrank.cli import demo_example
from blockrank.scoring import parse_ranking, ranking_scores


@pytest.fixture(scope="module")
def reranker():
    return Reranker.from_pretrained(device="cpu", max_doc_tokens=96)


@pytest.fixture(scope="module")
def demo():
    return demo_example()


def test_rerank_default_model(reranker, demo):
    with pytest.warns(UserWarning, match="truncated"):
        results = reranker.rerank(demo["query"], demo["documents"])
    assert [type(r) for r in results] == [Result] * 12
    assert sorted(r.index for r in results) == list(range(12))
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-4)  # attention mass over documents
    assert {r.id for r in results} == {d["id"] for d in demo["documents"]}
    with pytest.warns(UserWarning):
        again = reranker.rerank(demo["query"], demo["documents"], top_k=3)
    assert [(r.index, r.score) for r in again] == [(r.index, r.score) for r in results[:3]]  # deterministic


def test_shipped_default_ranks_the_relevant_abstract_in_its_top_three(reranker, demo):
    with pytest.warns(UserWarning, match="truncated"):
        ranking = reranker.rank(demo["query"], demo["documents"], max_doc_tokens=64)  # the training budget
    top3 = [r.id for r in ranking.results[:3]]
    assert set(top3) & set(demo["relevant"])  # the untrained base puts it fifth


def test_efficient_path_matches_reference_on_default_model(reranker, demo):
    docs = demo["documents"][:6]
    blocks = reranker.prompt(demo["query"], docs)
    sparse = reranker.score_blocks(blocks)
    reranker.attention = "dense"
    try:
        dense = reranker.score_blocks(blocks)
    finally:
        reranker.attention = "sparse"
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-4)


def test_decode_mode_returns_a_ranking(reranker):
    reranker.method = "decode"
    try:
        results = reranker.rerank("capital of France", ["Paris is the capital of France.", "Bananas are yellow."])
    finally:
        reranker.method = "attention"
    assert sorted(r.index for r in results) == [0, 1]
    assert all(0.0 <= r.score <= 1.0 for r in results)


def test_rerank_batch(tiny_model_dir):
    r = Reranker.from_pretrained(tiny_model_dir, layer=1)
    out = r.rerank_batch(["a", "b"], [["x", "y", "z"], ["u"]], top_k=2)
    assert [len(x) for x in out] == [2, 1]
    with pytest.raises(ValueError, match="2 queries but 1 document lists"):
        r.rerank_batch(["a", "b"], [["x"]])


@pytest.mark.parametrize("top_k", [0, -1, 1.5])
def test_bad_top_k(tiny_model_dir, top_k):
    r = Reranker.from_pretrained(tiny_model_dir, layer=1)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        r.rerank("q", ["a"], top_k=top_k)


def test_bad_layer_and_modes(tiny_model_dir):
    with pytest.raises(ValueError, match="outside the model's 3 layers"):
        Reranker.from_pretrained(tiny_model_dir, layer=3)
    with pytest.raises(ValueError, match="unknown method"):
        Reranker.from_pretrained(tiny_model_dir, method="guess")
    with pytest.raises(ValueError, match="unknown attention"):
        Reranker.from_pretrained(tiny_model_dir, attention="flash")


@pytest.mark.parametrize(
    "answer,expected",
    [("3, 1]", [2, 0]), ("2, 2, 9, 1", [1, 0]), ("[2][3]", [1]), ("none", []), ("1, 2] 3", [0, 1]), ("0, 4", [3])],
)
def test_parse_ranking(answer, expected):
    assert parse_ranking(answer, num_docs=4) == expected


def test_ranking_scores_order():
    assert ranking_scores([2, 0], 3).tolist() == [0.5, 0.0, 1.0]
