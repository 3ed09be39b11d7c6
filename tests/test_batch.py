"""``rerank-run``: resumable batch reranking of run files, locally and on a local Ray cluster."""

from __future__ import annotations

import json

import pytest

from blockrank import Reranker
from blockrank.cli import main
from blockrank.eval.data import Candidates, read_run
from blockrank.eval.rerank_run import rerank_run, rerank_run_ray
from blockrank.prompt import Document


def candidates():
    return [
        Candidates(f"q{i}", f"query {i}", [Document(f"d{j}", f"document {j} about topic {i}") for j in range(4)])
        for i in range(3)
    ]


@pytest.fixture(scope="module")
def reranker(tiny_model_dir):
    return Reranker.from_pretrained(tiny_model_dir, layer=1)


def test_resumes_after_a_crash(tmp_path, reranker):
    fresh = tmp_path / "fresh.trec"
    assert rerank_run(reranker, candidates(), fresh) == 3
    lines = fresh.read_text().splitlines(keepends=True)
    # simulate a crash in the middle of writing the second query
    resumed = tmp_path / "resumed.trec"
    resumed.write_text("".join(lines[:4]) + lines[4] + lines[5][:7])
    assert rerank_run(reranker, candidates(), resumed) == 2  # q0 kept, q1 redone, q2 new
    assert read_run(resumed) == read_run(fresh)
    assert rerank_run(reranker, candidates(), resumed) == 0  # nothing left


def test_empty_candidate_list_is_an_error(tmp_path, reranker):
    with pytest.raises(ValueError, match="query q has an empty candidate list"):
        rerank_run(reranker, [Candidates("q", "x", [])], tmp_path / "o.trec")


def test_cli_with_run_and_corpus(tmp_path, tiny_model_dir):
    rows = (json.dumps({"_id": f"d{j}", "title": "", "text": f"doc {j}"}) + "\n" for j in range(3))
    (tmp_path / "corpus.jsonl").write_text("".join(rows))
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "doc"}) + "\n")
    (tmp_path / "in.trec").write_text("q1 Q0 d0 1 3 bm25\nq1 Q0 d1 2 2 bm25\nq1 Q0 d2 3 1 bm25\n")
    out = tmp_path / "out.trec"
    code = main(
        [
            "rerank-run",
            "--run",
            str(tmp_path / "in.trec"),
            "--corpus",
            str(tmp_path),
            "--out",
            str(out),
            "--top-k",
            "2",
            "--model",
            str(tiny_model_dir),
            "--layer",
            "1",
        ]
    )
    assert code == 0
    assert {d for d, _ in read_run(out)["q1"]} == {"d0", "d1"}


def test_ray_mode_matches_local(tmp_path, reranker, tiny_model_dir):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install blockrank[ray])")
    pytest.importorskip("ray.data")
    local = tmp_path / "local.trec"
    rerank_run(reranker, candidates(), local)
    distributed = tmp_path / "ray.trec"
    try:
        assert rerank_run_ray(str(tiny_model_dir), candidates(), distributed, replicas=1, reranker_kwargs={"layer": 1}) == 3
    finally:
        ray.shutdown()
    assert read_run(distributed) == read_run(local)


RANK_LLM = [  # rank_llm's retrieve-results JSON, as its retrieve step writes it
    {
        "query": "what is a glacier cave",
        "hits": [
            {"qid": 7, "docid": "d1", "rank": 1, "score": 12.5, "content": "Glacier caves form in ice."},
            {"qid": 7, "docid": "d2", "rank": 2, "score": 11.0, "content": "Stock markets fell."},
            {"qid": 7, "docid": "d3", "rank": 3, "score": 9.0, "content": "Ice caves are cold."},
        ],
    },
    {
        "query": {"text": "who wrote hamlet", "qid": "q8"},
        "hits": [
            {"qid": "q8", "docid": "h1", "rank": 2, "score": 3.0, "content": "Hamlet is a play."},
            {"qid": "q8", "docid": "h2", "rank": 1, "score": 4.0, "content": "Shakespeare wrote it."},
        ],
    },
]


def test_rank_llm_json_in_and_out(tmp_path, tiny_model_dir, reranker):
    from blockrank.eval.data import read_candidates

    src = tmp_path / "retrieve_results.json"
    src.write_text(json.dumps(RANK_LLM))
    first, second = read_candidates(src)
    assert (first.qid, first.query, [d.id for d in first.documents]) == ("7", "what is a glacier cave", ["d1", "d2", "d3"])
    assert (second.qid, [d.id for d in second.documents], second.scores) == ("q8", ["h2", "h1"], [4.0, 3.0])
    out, back = tmp_path / "run.trec", tmp_path / "reranked.json"
    assert (
        main(
            [
                "rerank-run",
                "--candidates",
                str(src),
                "--out",
                str(out),
                "--model",
                str(tiny_model_dir),
                "--layer",
                "1",
                "--rank-llm-out",
                str(back),
            ]
        )
        == 0
    )
    rows = json.loads(back.read_text())
    assert [r["query"]["qid"] for r in rows] == ["7", "q8"]
    expected = reranker.rerank(first.query, first.documents)
    assert [h["docid"] for h in rows[0]["hits"]] == [r.id for r in expected]
    assert [h["rank"] for h in rows[0]["hits"]] == [1, 2, 3] and rows[0]["hits"][0]["content"] == expected[0].document.text
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("7 0 d1 1\nq8 0 h2 1\n")
    assert main(["eval", "--data", str(src), "--qrels", str(qrels), "--rerankers", "given", "--out", str(tmp_path / "e")]) == 0
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["rerankers"]["given"]["metrics"]["nDCG@10"] == pytest.approx(1.0)


def test_the_runs_scores_count_unless_told_not_to(tmp_path, tiny_model_dir, reranker):
    """rerank-run passes each query's first-stage scores as evidence; --no-first-stage leaves them out."""
    from blockrank.eval.data import read_candidates

    src = tmp_path / "retrieve_results.json"
    src.write_text(json.dumps(RANK_LLM))
    args = ["rerank-run", "--candidates", str(src), "--model", str(tiny_model_dir), "--layer", "1", "--top-k", "2"]
    first = read_candidates(src)[0]
    assert main([*args, "--out", str(tmp_path / "with.trec")]) == 0
    expected = reranker.rerank(first.query, first.documents[:2], first_stage=first.scores[:2])
    assert read_run(tmp_path / "with.trec")["7"] == [(r.id, pytest.approx(r.score, abs=1e-4)) for r in expected]
    assert main([*args, "--out", str(tmp_path / "without.trec"), "--no-first-stage", "--input-order", "unordered"]) == 0
    expected = reranker.rerank(first.query, first.documents[:2], input_order="unordered")
    assert read_run(tmp_path / "without.trec")["7"] == [(r.id, pytest.approx(r.score, abs=1e-4)) for r in expected]
    rerank_run(reranker, candidates()[:1], tmp_path / "none.trec")  # these candidates carry no scores: order and model
    expected = reranker.rerank("query 0", candidates()[0].documents)
    assert read_run(tmp_path / "none.trec")["q0"] == [(r.id, pytest.approx(r.score, abs=1e-4)) for r in expected]


def test_malformed_rank_llm_json_is_named(tmp_path):
    from blockrank.eval.data import DataFormatError, read_candidates

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"query": "q", "hits": [{"docid": "a"}]}]))
    with pytest.raises(DataFormatError, match="entry 1: a hit has no 'content'"):
        read_candidates(bad)
    bad.write_text("[{not json")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        read_candidates(bad)
