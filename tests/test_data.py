"""IR file readers and writers."""

from __future__ import annotations

import json

import pytest

from blockrank.eval.data import (
    DataFormatError,
    candidates_from_run,
    format_run,
    read_beir,
    read_candidates,
    read_corpus,
    read_qrels,
    read_run,
    write_run,
)
from blockrank.prompt import Document


def test_run_round_trip(tmp_path):
    run = {"q1": [("d2", 3.5), ("d1", 1.25)], "q2": [("d9", 0.5)]}
    path = tmp_path / "out" / "run.trec"
    write_run(path, run, tag="t")
    assert path.read_text().splitlines()[0] == "q1 Q0 d2 1 3.500000 t"
    assert read_run(path) == run


def test_run_duplicates_and_errors(tmp_path):
    path = tmp_path / "dup.trec"
    path.write_text("q Q0 a 1 2 t\nq Q0 a 2 1 t\nq Q0 b 3 0.5 t\n")
    with pytest.warns(UserWarning, match="1 duplicate"):
        assert read_run(path) == {"q": [("a", 2.0), ("b", 0.5)]}
    path.write_text("q Q0 a 1 x t\n")
    with pytest.raises(DataFormatError, match="line 1: score 'x'"):
        read_run(path)
    path.write_text("q Q0 a 1\n")
    with pytest.raises(DataFormatError, match="expected 6 columns"):
        read_run(path)


def test_qrels_both_formats(tmp_path):
    beir = tmp_path / "test.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t0\n")
    trec = tmp_path / "qrels.txt"
    trec.write_text("19 0 p1 3\n19 0 p2 1\n")
    assert read_qrels(beir) == {"1": {"d1": 1, "d2": 0}}
    assert read_qrels(trec) == {"19": {"p1": 3, "p2": 1}}
    trec.write_text("19 0 p1 3\n19 0 p1 3 extra\n")
    with pytest.raises(DataFormatError, match="line 2: expected 3 \\(BEIR\\) or 4 \\(TREC\\) columns"):
        read_qrels(trec)


def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "a", "text": "x"}\n{oops\n')
    with pytest.raises(DataFormatError, match=r"corpus.jsonl, line 2: not valid JSON"):
        read_corpus(path)


def test_beir_directory(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "T", "text": "body"}) + "\n")
    with pytest.raises(DataFormatError, match="missing queries.jsonl, qrels/test.tsv"):
        read_beir(tmp_path)
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "what"}) + "\n")
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    ds = read_beir(tmp_path)
    assert ds.corpus["d1"] == Document("d1", "body", "T") and ds.queries == {"q1": "what"} and ds.qrels == {"q1": {"d1": 1}}


def test_candidates_file(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"qid": "1", "query": "q", "candidates": [{"docid": "a", "text": "x", "score": 2.0}]}) + "\n")
    [c] = read_candidates(path)
    assert (c.qid, c.query, c.documents[0].id, c.scores) == ("1", "q", "a", [2.0])


def test_candidates_from_run_reports_missing():
    corpus = {"a": Document("a", "x")}
    with pytest.raises(DataFormatError, match="1 run queries have no text"):
        candidates_from_run({"q": [("a", 1.0)]}, {}, corpus, 10)
    with pytest.raises(DataFormatError, match="2 run documents are not in the corpus"):
        candidates_from_run({"q": [("a", 1.0), ("b", 0.5), ("c", 0.1)]}, {"q": "text"}, corpus, 10)


def test_format_run():
    assert format_run("q", [("a", 1.0)], "tag") == "q Q0 a 1 1.000000 tag\n"
