"""``rerank-run``: resumable batch reranking of run files, locally and on a local Ray cluster."""

from __future__ import annotations

import json

import pytest

from blockrank import Reranker
from blockrank.batch import rerank_run, rerank_run_ray
from blockrank.cli import main
from blockrank.data import Candidates, read_run
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
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{j}", "title": "", "text": f"doc {j}"}) + "\n" for j in range(3)))
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "doc"}) + "\n")
    (tmp_path / "in.trec").write_text("q1 Q0 d0 1 3 bm25\nq1 Q0 d1 2 2 bm25\nq1 Q0 d2 3 1 bm25\n")
    out = tmp_path / "out.trec"
    code = main(["rerank-run", "--run", str(tmp_path / "in.trec"), "--corpus", str(tmp_path), "--out", str(out),
                 "--top-k", "2", "--model", str(tiny_model_dir), "--layer", "1"])
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
