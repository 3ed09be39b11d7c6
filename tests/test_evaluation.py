"""Evaluation harness: metric plumbing against hand-computed values, and every reranker end to end."""

from __future__ import annotations

import json
import math

import pytest

from blockrank.cli import main
from blockrank.eval.baselines import RERANKERS, FirstStage, TeacherScorer, make_scorers
from blockrank.eval.data import Candidates, DataFormatError
from blockrank.eval.evaluation import EvalSet, evaluate, load_eval_set
from blockrank.prompt import Document


def toy_set(rel: int = 1) -> EvalSet:
    docs = {k: Document(k, f"text of {k}") for k in "abcde"}
    candidates = [
        Candidates("q1", "first query", [docs["b"], docs["a"]], [2.0, 1.0]),
        Candidates("q2", "second query", [docs["c"], docs["d"], docs["e"]], [3.0, 2.0, 1.0]),
    ]
    return EvalSet("toy", candidates, {"q1": {"a": 1}, "q2": {"c": 2, "d": 1, "e": 0}}, rel)


def test_metrics_match_hand_computed_values(tmp_path):
    report = evaluate([FirstStage()], toy_set(), tmp_path)
    m = report["rerankers"]["given"]["metrics"]
    # q1: the relevant document at rank 2 -> nDCG 1/log2(3), RR 1/2; q2: ideal order -> 1, 1
    assert m["nDCG@10"] == pytest.approx((1 / math.log2(3) + 1) / 2)
    assert m["RR@10"] == pytest.approx(0.75)
    assert m["R@10"] == pytest.approx(1.0)
    per_query = report["rerankers"]["given"]["per_query"]
    assert per_query["q1"]["nDCG@10"] == pytest.approx(1 / math.log2(3))
    assert (tmp_path / "given.trec").read_text().splitlines()[0] == "q1 Q0 b 1 2.000000 given"
    assert json.loads((tmp_path / "summary.json").read_text())["queries"] == 2
    assert (tmp_path / "ndcg.png").stat().st_size > 0


def test_graded_threshold(tmp_path):
    m = evaluate([FirstStage()], toy_set(rel=2), tmp_path)["rerankers"]["given"]["metrics"]
    # with rel >= 2 only c counts for q2 and q1 has no relevant document for binary measures
    assert m["RR(rel=2)@10"] == pytest.approx(0.5)


def test_resume_skips_finished_queries(tmp_path):
    class Counting(FirstStage):
        calls = 0

        def scores(self, *args):
            Counting.calls += 1
            return super().scores(*args)

    evaluate([Counting("bm25")], toy_set(), tmp_path)
    evaluate([Counting("bm25")], toy_set(), tmp_path)
    assert Counting.calls == 2


def test_finished_teacher_evaluation_loads_no_model(tmp_path, monkeypatch):
    import blockrank.eval.encoders

    loads = []
    real = blockrank.eval.encoders.load_teacher
    monkeypatch.setattr(blockrank.eval.encoders, "load_teacher", lambda *a, **k: loads.append(a) or real(*a, **k))
    first = evaluate([TeacherScorer("bm25")], toy_set(), tmp_path)
    again = evaluate([TeacherScorer("bm25")], toy_set(), tmp_path)
    assert loads == [("bm25",)]  # the second run found every query done
    assert again["rerankers"]["bm25"]["metrics"] == first["rerankers"]["bm25"]["metrics"]


def _write_beir(root, qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n"):
    (root / "qrels").mkdir(parents=True)
    texts = {
        "d1": "the moon orbits the earth",
        "d2": "bananas are yellow fruit",
        "d3": "paris is in france",
        "d4": "the earth orbits the sun",
    }
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in texts.items()))
    (root / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "what orbits the earth"})
        + "\n"
        + json.dumps({"_id": "q2", "text": "where is paris"})
        + "\n"
    )
    (root / "qrels" / "test.tsv").write_text(qrels)


def test_all_rerankers_end_to_end(tmp_path, tiny_model_dir, capsys):
    _write_beir(tmp_path / "beir")
    code = main(
        [
            "eval",
            "--data",
            str(tmp_path / "beir"),
            "--rerankers",
            ",".join(RERANKERS),
            "--top-k",
            "3",
            "--out",
            str(tmp_path / "out"),
            "--model",
            str(tiny_model_dir),
            "--layer",
            "1",
            "--latency-ns",
            "2,3",
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["rerankers"]) == set(RERANKERS)
    given = summary["rerankers"]["given"]["metrics"]
    assert given["R@100"] == pytest.approx(1.0) and 0 < given["nDCG@10"] <= 1  # BM25 retrieves both relevant documents
    for name in RERANKERS:
        assert (tmp_path / "out" / f"{name}.trec").is_file()
    assert (tmp_path / "out" / "latency.png").is_file()
    assert "nDCG@10" in capsys.readouterr().out


def test_qrels_matching_no_query(tmp_path):
    _write_beir(tmp_path, qrels="query-id\tcorpus-id\tscore\nzz\td1\t1\n")
    with pytest.raises(DataFormatError, match="the qrels ids match no query"):
        load_eval_set(tmp_path)


def test_candidate_file_needs_qrels(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"qid": "1", "query": "q", "candidates": [{"docid": "a", "text": "x"}]}) + "\n")
    with pytest.raises(ValueError, match="give its qrels"):
        load_eval_set(path)
    (tmp_path / "q.txt").write_text("1 0 a 3\n2 0 b 1\n")
    evalset = load_eval_set(path, qrels=tmp_path / "q.txt")
    assert evalset.rel == 2 and len(evalset.candidates) == 1


def test_queries_asked_for_but_absent_are_named(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"qid": "1", "query": "q", "candidates": [{"docid": "a", "text": "x"}]}) + "\n")
    (tmp_path / "q.txt").write_text("1 0 a 1\n")
    with pytest.warns(UserWarning, match=r"1 of the 2 queries asked for .*'nope'"):
        evalset = load_eval_set(path, qrels=tmp_path / "q.txt", qids={"1", "nope"})
    assert [c.qid for c in evalset.candidates] == ["1"]


def test_empty_candidate_list(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"qid": "1", "query": "q", "candidates": []}) + "\n")
    (tmp_path / "q.txt").write_text("1 0 a 1\n")
    with pytest.raises(DataFormatError, match="1 queries have an empty candidate list"):
        load_eval_set(path, qrels=tmp_path / "q.txt")


def test_candidate_file_without_first_stage_scores_gets_bm25_order(tmp_path):
    path = tmp_path / "sentences.jsonl"
    path.write_text(
        json.dumps(
            {
                "qid": "q",
                "query": "glacier caves",
                "candidates": [
                    {"docid": "s0", "score": 0, "text": "the article's first sentence"},
                    {"docid": "s1", "score": 0, "text": "glacier caves form in the ice of glaciers"},
                    {"docid": "s2", "score": 0, "text": "caves are everywhere"},
                ],
            }
        )
        + "\n"
    )
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q 0 s1 1\n")
    (c,) = load_eval_set(path, qrels=qrels).candidates
    assert [d.id for d in c.documents] == ["s1", "s2", "s0"] and c.scores[0] > c.scores[1] > c.scores[2] == 0
    (kept,) = load_eval_set(path, qrels=qrels, first_stage="dense").candidates  # no BM25 asked for: file order
    assert [d.id for d in kept.documents] == ["s0", "s1", "s2"]


def test_wins_ties_losses_against_the_given_order_and_judged_measures(tmp_path):
    class Reversed(FirstStage):
        def scores(self, query, documents, first_stage):
            return list(range(len(documents)))  # the given order upside down

    report = evaluate([FirstStage(), Reversed("reversed")], toy_set(), tmp_path)
    given, flipped = report["rerankers"]["given"], report["rerankers"]["reversed"]
    assert given["vs_given_order"]["nDCG@10"] == {"wins": 0, "ties": 2, "losses": 0}
    # q1 gains (its relevant document moves to the top), q2 loses (its best one drops to the bottom)
    assert flipped["vs_given_order"]["nDCG@10"] == {"wins": 1, "ties": 0, "losses": 1}
    assert given["metrics"]["Judged@10"] == pytest.approx((1 / 2 + 3 / 3) / 2)  # q1 judges a, not b
    assert report["judges_non_relevant"]  # q2's e is judged 0


def test_equal_first_stage_scores_keep_the_given_order(tmp_path):
    docs = [Document(k, k) for k in "zya"]
    tied = EvalSet("tied", [Candidates("q", "q", docs, [1.0, 1.0, 1.0])], {"q": {"z": 1}}, 1)
    report = evaluate([FirstStage()], tied, tmp_path)
    assert report["rerankers"]["given"]["metrics"]["nDCG@10"] == pytest.approx(1.0)  # z stays first


def test_given_keeps_the_order_and_bm25_rescores():
    """``given`` is the candidates' own order (SPLADE++'s on a SPLADE++ list); ``bm25`` is a real BM25 rescoring."""
    given, bm25 = make_scorers(["given", "bm25"], None)
    assert isinstance(given, FirstStage) and given.name == "given"
    assert isinstance(bm25, TeacherScorer) and bm25.name == "bm25"
    docs = [Document("x", "nothing in common"), Document("y", "paris is the capital of france")]
    assert given.scores("where is paris", docs, [2.0, 1.0]) == [2.0, 1.0]
    low, high = bm25.scores("where is paris", docs, [2.0, 1.0])
    assert high > low
