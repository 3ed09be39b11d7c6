"""The public API on the real default model and on a tiny random one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from factories import needs_data

from blockrank import Reranker, Result
from blockrank.cli.rerank import demo_example
from blockrank.kernel.scoring import parse_ranking, ranking_scores
from blockrank.settings import ModelSettings


@pytest.fixture(scope="module")
def reranker():
    return Reranker.from_pretrained(device="cpu", dtype="fp32", block_tokens=96)  # exact comparisons below


@pytest.fixture(scope="module")
def demo():
    return demo_example()


@pytest.mark.slow
def test_rerank_default_model(reranker, demo):
    import warnings

    from blockrank.prompt import TruncationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)  # whole abstracts count: split, not cut
        results = reranker.rerank(demo["query"], demo["documents"])
    assert [type(r) for r in results] == [Result] * 12
    assert sorted(r.index for r in results) == list(range(12))
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    blocks = reranker.prompt(demo["query"], demo["documents"])
    assert blocks.owner is not None and len(blocks.docs) > 12  # abstracts are longer than one 96-token block
    assert reranker.calibration is not None and all(0 < s < 1 for s in scores)  # the shipped calibration
    assert all(0 < r.model_score < 1 for r in results)  # the model's evidence alone, also a probability
    _, mass = reranker.score_and_mass(reranker.prompt(demo["query"], demo["documents"], split=False))
    assert float(mass.sum()) == pytest.approx(1.0, abs=1e-4)  # one block each: attention mass over documents
    assert {r.id for r in results} == {d["id"] for d in demo["documents"]}
    again = reranker.rerank(demo["query"], demo["documents"], top_k=3)
    assert [(r.index, r.score) for r in again] == [(r.index, r.score) for r in results[:3]]  # deterministic


DL19 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-dl"


@pytest.mark.slow
@needs_data(DL19)
def test_shipped_default_beats_bm25_on_real_queries(reranker):
    """All 43 DL19 queries, BM25's top 30 passages, the shipped settings: the reranker's nDCG@10 must clear
    BM25's order on the same candidates by 0.05 (measured: 0.597 vs 0.506; the untrained base is far below)."""
    import ir_measures

    from blockrank.eval.data import read_candidates, read_qrels

    queries = read_candidates(DL19 / "dl19-bm25-top100.jsonl")
    ours, bm25 = {}, {}
    for c in queries:
        docs = c.documents[:30]
        ranking = reranker.rerank_report(c.query, docs, max_tokens_per_doc=64)  # the training budget
        assert ranking.truncated  # reported on every call, though the warning came once
        ours[c.qid] = {r.id: r.score for r in ranking.results}
        bm25[c.qid] = {d.id: -i for i, d in enumerate(docs)}
    qrels = read_qrels(DL19 / "qrels.dl19-passage.txt")
    assert set(qrels) == set(ours)  # ir-measures averages over the qrels' queries
    ndcg = {
        name: ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10]
        for name, run in (("blockrank", ours), ("bm25", bm25))
    }
    assert ndcg["blockrank"] >= ndcg["bm25"] + 0.05, ndcg


@pytest.mark.slow
def test_efficient_path_matches_reference_on_default_model(reranker, demo):
    docs = demo["documents"][:6]
    blocks = reranker.prompt(demo["query"], docs)
    sparse = reranker.score_blocks(blocks)
    reranker.attention = "reference"
    try:
        dense = reranker.score_blocks(blocks)
    finally:
        reranker.attention = "sparse"
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-4)


def test_decode_mode_ranks_by_the_generated_answer(tiny_model_dir):
    """A tiny model scripted at its LM head to answer "3, 1]": decode mode runs the real prefill and cache,
    stops at the bracket, and ranks 3 then 1, the unnamed document last."""
    reranker = Reranker.from_pretrained(tiny_model_dir, device="cpu", layer=1, score_by="decode")
    script = reranker.tokenizer.encode("3, 1]", add_special_tokens=False)
    steps = []

    def scripted(module, args, logits):
        forced = torch.full_like(logits[:, -1], -1e4)
        forced[:, script[len(steps)]] = 0
        steps.append(logits.shape[1])
        out = logits.clone()
        out[:, -1] = forced
        return out

    reranker.model.lm_head.register_forward_hook(scripted)
    results = reranker.rerank("q", ["first doc", "second doc", "third doc"])
    assert [r.index for r in results] == [2, 0, 1]
    assert [r.score for r in results] == [1.0, 0.5, 0.0]
    assert len(steps) == len(script)  # one prefill, then one step per token, and no more after "]"


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
    with pytest.raises(ValueError, match="unknown score_by"):
        Reranker.from_pretrained(tiny_model_dir, score_by="guess")
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


def test_truncation_warns_once_per_reranker_then_logs(tiny_model_dir, caplog, recwarn):
    import logging
    import warnings

    from blockrank.prompt import TruncationWarning

    reranker = Reranker.from_pretrained(tiny_model_dir, block_tokens=8, split=False)
    long_doc = "word " * 50
    with caplog.at_level(logging.INFO, logger="blockrank"):
        for _ in range(3):
            ranking = reranker.rerank_report("q", ["short", long_doc, long_doc])
            assert ranking.truncated == [1, 2]
    caught = [w for w in recwarn if issubclass(w.category, TruncationWarning)]
    assert len(caught) == 1 and "2 of 3 documents were truncated to 8 tokens" in str(caught[0].message)
    assert sum("truncated to 8 tokens" in r.message for r in caplog.records) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Reranker.from_pretrained(tiny_model_dir, block_tokens=8, split=False).rerank_report("q", ["short"])  # silent
    with pytest.raises(ValueError, match="over the budget of 8"):
        reranker.rerank_report("q", [long_doc], truncate=False)


def test_cross_encoder_style_predict_and_rank(tiny_model_dir):
    import numpy as np
    from factories import tiny_calibration

    from blockrank.model import load_model

    lm = load_model(tiny_model_dir, dtype="fp32")
    reranker = Reranker(lm.model, lm.tokenizer, ModelSettings(layer=1, calibration=tiny_calibration(tiny_model_dir, order=2.0)))
    docs = ["Paris is in France.", "Bananas are yellow.", "Rain is wet."]
    pairs = [("q1", docs[0]), ("q2", docs[2]), ("q1", docs[1]), ("q2", docs[0])]
    scores = reranker.predict(pairs)
    assert isinstance(scores, np.ndarray) and scores.shape == (4,)
    q1 = reranker.score("q1", [docs[0], docs[1]])  # grouped by query, in pair order, read as unordered lists
    q2 = reranker.score("q2", [docs[2], docs[0]])
    np.testing.assert_allclose(scores, [q1[0], q2[0], q1[1], q2[1]], rtol=1e-6)
    assert reranker.predict(("q1", docs[0])) == pytest.approx(reranker.score("q1", [docs[0]])[0], rel=1e-6)  # one pair
    # CrossEncoder's keyword arguments: activation_fn on the log-odds, the softmax, the return types
    logits = reranker.predict(pairs, activation_fn=torch.nn.Identity(), batch_size=2, show_progress_bar=False)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), scores, rtol=1e-5)
    soft = reranker.predict(pairs[:2] + pairs[2:3], apply_softmax=True)
    assert soft[0] + soft[2] == pytest.approx(1.0) and soft[1] == pytest.approx(1.0)  # per query
    assert isinstance(reranker.predict(pairs, convert_to_tensor=True), torch.Tensor)
    assert isinstance(reranker.predict(pairs, convert_to_numpy=False), list)
    with pytest.raises(ValueError, match="pair 0 is not a"):
        reranker.predict(["just a string"])
    with pytest.raises(ValueError, match="pair 1 is not a"):
        reranker.predict([("q", "d"), ("q", 3)])
    with pytest.raises(ValueError, match="pairs is empty"):
        reranker.predict([])
    # CrossEncoder.rank's call and result: the model's scores, the documents unordered
    ranked = reranker.rank("q1", docs, top_k=2, return_documents=True, batch_size=32, show_progress_bar=False)
    expected = reranker.rerank("q1", docs, top_k=2, input_order="unordered")
    assert ranked == [{"corpus_id": e.index, "score": pytest.approx(e.score), "text": e.document.content} for e in expected]
    assert [set(r) for r in reranker.rank("q1", docs)] == [{"corpus_id", "score"}] * 3
    logits = reranker.rank("q1", docs, activation_fn=torch.nn.Identity())
    assert [r["corpus_id"] for r in logits] == [e.index for e in reranker.rerank("q1", docs, input_order="unordered")]


def test_library_limits_on_query_and_prompt_tokens(tiny_model_dir):
    from blockrank import PromptTooLongError, QueryTooLongError

    reranker = Reranker.from_pretrained(tiny_model_dir, layer=1, max_query_tokens=10, max_prompt_tokens=300)
    with pytest.raises(QueryTooLongError, match="over the limit of 10"):
        reranker.rerank("why " * 50, ["doc"])
    with pytest.raises(PromptTooLongError, match="over the limit of 300"):
        reranker.rerank("q", ["some words here"] * 40)
    assert len(reranker.rerank_report("q", ["a", "b"], max_prompt_tokens=10_000).results) == 2
    with pytest.raises(QueryTooLongError):  # the default is generous but bounded
        Reranker.from_pretrained(tiny_model_dir, layer=1).rerank("why " * 5000, ["doc"])


def _single_token_words(tokenizer, n: int) -> list[str]:
    """Words that are one token after a space, so that token passages decode to texts that encode back to them."""
    candidates = [
        "the",
        "cat",
        "sat",
        "on",
        "mat",
        "and",
        "dog",
        "ran",
        "far",
        "away",
        "from",
        "home",
        "river",
        "stone",
        "light",
        "green",
        "water",
        "house",
        "city",
        "road",
    ]
    words = [w for w in candidates if len(tokenizer.encode(" " + w, add_special_tokens=False)) == 1]
    return [words[i * 7 % len(words)] for i in range(n)]


def test_split_scores_equal_the_passages_scored_as_documents(tiny_model_dir):
    """A long document scores as its best passage, exactly as if its passages had been sent as documents."""
    reranker = Reranker.from_pretrained(tiny_model_dir, layer=1, block_tokens=16, dtype="fp32")
    tok = reranker.tokenizer
    long_doc = " ".join(_single_token_words(tok, 40))
    docs = ["a short one", long_doc, "another short one"]
    split = reranker.score("q", docs)
    ids = tok.encode(" " + long_doc, add_special_tokens=False)
    passages = [tok.decode(ids[s : s + 16]).strip() for s in (0, 14, 28)]  # stride 16 - 16 // 8
    alone = reranker.score("q", [docs[0], *passages, docs[2]])
    assert split == pytest.approx([alone[0], max(alone[1:4]), alone[4]], abs=1e-6)
    assert reranker.rerank_report("q", docs).truncated == []
    cut = reranker.rerank_report("q", docs, max_tokens_per_doc=20)
    assert cut.truncated == [1] and cut.doc_limit == 20
    with pytest.raises(ValueError, match="over the budget of 20"):
        reranker.rerank_report("q", docs, max_tokens_per_doc=20, truncate=False)
    first_block = reranker.score_blocks(reranker.prompt("q", docs, split=False)).tolist()
    assert first_block == pytest.approx(reranker.score("q", [docs[0], passages[0], docs[2]]), abs=1e-6)  # split=False


@pytest.mark.slow
def test_default_call_finds_the_answer_at_the_end_of_a_long_document():
    """Issue #20's case: the answer sits after ~550 tokens of unrelated text. Reading whole documents ranks it
    first; reading only the first block, the model cannot see the answer and ranks it below the best short one."""
    filler = (
        "The history of the town's football club goes back to 1887, when a group of railway workers met in the "
        "back room of a pub and agreed to rent a field behind the station. The early seasons were played in "
        "borrowed shirts, and the club moved grounds three times before settling at the riverside stadium in 1921. "
    )
    docs = [
        "Water is a chemical compound of two hydrogen atoms and one oxygen atom.",
        "Sea levels have been rising because of melting glaciers and warming oceans.",
        filler * 8 + "Water boils at 100 degrees Celsius (212 degrees Fahrenheit) at sea level, where air "
        "pressure is one atmosphere.",
        "Boiling is a phase change from liquid to gas that happens throughout the liquid.",
        "Celsius and Fahrenheit are two scales for measuring temperature.",
    ]
    query = "At what temperature does water boil at sea level?"
    reranker = Reranker.from_pretrained()
    ranking = reranker.rerank_report(query, docs)
    assert ranking.results[0].index == 2 and ranking.truncated == []
    first_blocks = Reranker.from_pretrained(split=False).rerank(query, docs, input_order="unordered")  # the model alone
    assert first_blocks[0].index != 2


FRANCE = "Paris is the capital and most populous city of France, on the Seine in the north of the country."


def bakery_notes(k: int) -> list[str]:
    return [
        f"Bakery notes, day {i}: {3 + i % 40} sourdough loaves for the market stall, feed the starter at {4 + i % 5} am."
        for i in range(k)
    ]


@pytest.mark.slow
def test_default_scores_mean_the_same_among_5_and_50(reranker):
    """The trust issue's RAG case: one answer among bakery notes. The notes score low at both sizes and within 0.05
    of each other, an empty document scores near 0, and the answer ranks first at both. Its own score still falls
    with the list (0.81 among 5, 0.60 among 49 near-identical notes, measured): issue #42's 0.05 is not met there."""
    import statistics

    scores = {}
    for n in (5, 50):
        docs = bakery_notes(n - 1)
        docs.insert(n // 2, FRANCE)
        results = reranker.rerank("What is the capital of France?", docs)
        assert results[0].index == n // 2
        scores[n] = (results[0].score, statistics.median(r.score for r in results[1:]))
    (answer5, junk5), (answer50, junk50) = scores[5], scores[50]
    assert answer5 > 0.5 and answer50 > 0.5 and abs(answer5 - answer50) < 0.25, scores
    assert junk5 < 0.2 and junk50 < 0.2 and abs(junk5 - junk50) < 0.05, scores
    empty = reranker.rerank("What is the capital of France?", [FRANCE, "", *bakery_notes(3)])
    assert next(r.score for r in empty if r.index == 1) < 0.1


@pytest.mark.slow
def test_a_long_documents_answer_counts_through_every_endpoint():
    """Issue #42's case: a ~1,800-token document whose answer is at its end ranks first on /v2/rerank, /v1/rerank
    and TEI's /rerank without parameters (every endpoint counts 4,096 tokens of a document by default)."""
    import httpx

    from blockrank.serve.background import BackgroundServer
    from blockrank.serve.service import create_app

    filler = (
        "The history of the town's football club goes back to 1887, when a group of railway workers met in the "
        "back room of a pub and agreed to rent a field behind the station. The early seasons were played in "
        "borrowed shirts, and the club moved grounds three times before settling at the riverside stadium in 1921. "
    )
    answer = "Water boils at 100 degrees Celsius (212 degrees Fahrenheit) at sea level, where air pressure is one atmosphere."
    docs = [
        "Water is a chemical compound of two hydrogen atoms and one oxygen atom.",
        "Sea levels have been rising because of melting glaciers and warming oceans.",
        filler * 25 + answer,
        "Boiling is a phase change from liquid to gas that happens throughout the liquid.",
        "Celsius and Fahrenheit are two scales for measuring temperature.",
    ]
    query = "At what temperature does water boil at sea level?"
    reranker = Reranker.from_pretrained()
    assert 1700 < len(reranker.tokenizer.encode(docs[2])) < 1900
    with BackgroundServer(create_app(reranker)) as url:
        for path, body in [
            ("/v2/rerank", {"query": query, "documents": docs}),
            ("/v1/rerank", {"query": query, "documents": docs}),
            ("/rerank", {"query": query, "texts": docs}),
        ]:
            r = httpx.post(f"{url}{path}", json=body, timeout=60)
            first = r.json()[0] if path == "/rerank" else r.json()["results"][0]
            assert first["index"] == 2, (path, r.text)
