"""Stored teacher scores (round trip, mismatches, resume), the depth sampler, holdout, and the dev protocol."""

from __future__ import annotations

import json

import pytest

from blockrank.errors import ConfigError
from blockrank.eval.data import Candidates, DataFormatError
from blockrank.eval.evaluation import EvalSet, dev_metrics
from blockrank.fusion import fuse
from blockrank.prompt import Document
from blockrank.train import teacher_scores
from blockrank.train.examples import Pool, sample_examples
from blockrank.train.sources import build_examples


def docs(qid: str, n: int) -> list[Document]:
    return [Document(f"{qid}-{j}", f"passage {j} about {'the query' if j == 0 else 'other things'}") for j in range(n)]


def pools(n: int = 3, size: int = 5):
    return [(f"q{i}", "the query", docs(f"q{i}", size), [float(size - j) for j in range(size)]) for i in range(n)]


def test_stored_scores_round_trip_and_fuse(tmp_path):
    path = teacher_scores.score_path(tmp_path, "src", "given")
    assert teacher_scores.compute(path, "given", pools()) == 3
    assert teacher_scores.compute(path, "given", pools()) == 0  # done: nothing recomputed
    stored = teacher_scores.read_scores(path)
    assert stored["q1"] == {"q1-0": 5.0, "q1-1": 4.0, "q1-2": 3.0, "q1-3": 2.0, "q1-4": 1.0}
    picked = [Document("q1-3", ""), Document("q1-0", "")]
    assert teacher_scores.lookup(stored, path, "q1", picked) == [2.0, 5.0]
    # a one-member teacher is z-normalised within each list too, so its targets are as sharp as a fusion's
    assert fuse([[2.0, 5.0]]) == pytest.approx([-1.0, 1.0])
    assert fuse([[1.0, 2.0, 3.0], [30.0, 10.0, 20.0]]) == pytest.approx([0.0, -0.6124, 0.6124], abs=1e-4)


def test_mismatched_score_files_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "src.given.jsonl"
    teacher_scores.compute(path, "given", pools(1))
    stored = teacher_scores.read_scores(path)
    with pytest.raises(DataFormatError, match=r"src.given.jsonl has no scores for query 'q9'"):
        teacher_scores.lookup(stored, path, "q9", docs("q9", 2))
    with pytest.raises(DataFormatError, match=r"query 'q0' has no score for 1 of its documents .*`blockrank label RECIPE`"):
        teacher_scores.lookup(stored, path, "q0", [Document("q0-1", ""), Document("other", "")])
    path.write_text(json.dumps({"qid": "q0", "docids": ["a", "b"], "scores": [1.0]}) + "\n")
    with pytest.raises(DataFormatError, match=r"src.given.jsonl, line 1 \(query q0\): 2 document ids but 1 scores"):
        teacher_scores.read_scores(path)
    with pytest.raises(ConfigError, match="unknown member 'cross'"):
        teacher_scores.members("given+cross")


def test_deeper_pools_are_scored_again_and_keep_the_shallower_rows(tmp_path):
    """A recipe with deeper pools than the stored file's: labelling adds the missing documents instead of
    leaving a file that refuses the recipe, and the shallower recipe still reads its own scores."""
    path = tmp_path / "src.given.jsonl"
    deep = [(q, "the query", documents, [10.0 - j for j in range(5)]) for q, _, documents, _ in pools(2, size=5)]
    shallow = [(q, query, documents[:3], given[:3]) for q, query, documents, given in deep]  # a score is per document
    teacher_scores.compute(path, "given", shallow)
    with pytest.raises(DataFormatError, match="has no score for 2 of its documents"):
        teacher_scores.lookup(teacher_scores.read_scores(path), path, "q0", deep[0][2])
    assert teacher_scores.compute(path, "given", deep) == 2
    assert teacher_scores.compute(path, "given", deep + shallow) == 0
    stored = teacher_scores.read_scores(path)
    for qid, _, documents, given in deep + shallow:
        assert teacher_scores.lookup(stored, path, qid, documents) == given


def test_a_torn_last_row_is_dropped_and_computed_again(tmp_path):
    path = tmp_path / "src.bm25.jsonl"
    teacher_scores.compute(path, "bm25", pools(2))
    whole = path.read_text()
    path.write_text(whole + '{"qid": "q2", "docids": ["q2-0"')  # killed mid-append
    assert teacher_scores.compute(path, "bm25", pools(3)) == 1
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["qid"] for r in rows] == ["q0", "q1", "q2"]
    assert max(range(5), key=rows[2]["scores"].__getitem__) == 0  # BM25 puts the passage naming the query first


def test_depth_sampler_draws_list_sizes_and_counts_short_lists():
    big = [Pool(f"b{i}", "q", docs(f"b{i}", 1), docs(f"x{i}", 59)) for i in range(4)]
    small = [Pool("s", "q", docs("s", 1), docs("y", 9))]
    skipped: list[int] = []
    examples = sample_examples(big + small, [20, 60], seed=0, epochs=10, skipped=skipped)
    sizes = {len(e.documents) for e in examples}
    assert min(sizes) >= 20 and max(sizes) <= 60 and len(sizes) > 10  # a spread of depths
    assert skipped == [10] and {e.query_id for e in examples} == {"b0", "b1", "b2", "b3"}  # the 10-doc pool never fits
    with pytest.raises(ConfigError, match="need 1 <= low <= high"):
        sample_examples(big, [30, 20])


def candidate_file(tmp_path, n_queries=4, size=6):
    path = tmp_path / "lists.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "qid": f"q{i}",
                    "query": "the query",
                    "candidates": [{"docid": d.id, "score": size - j, "text": d.text} for j, d in enumerate(docs(f"q{i}", size))],
                }
            )
            + "\n"
            for i in range(n_queries)
        )
    )
    return path


def test_sources_leave_out_holdout_queries_and_read_stored_labels(tmp_path):
    from blockrank.train.sources import CandidatesSource, label_sources

    source = CandidatesSource(str(candidate_file(tmp_path)), teacher="given+bm25")
    holdout = {"q1"}
    label_sources([source], None, tmp_path / "scores", seed=0, holdout=holdout)
    assert sorted(p.name for p in (tmp_path / "scores").iterdir()) == ["lists.bm25.jsonl", "lists.given.jsonl"]
    examples = build_examples([source], [3, 6], 0, scores_dir=tmp_path / "scores", holdout=holdout)
    assert {e.query_id for e in examples} == {"q0", "q2", "q3"}
    for ex in examples:  # both members put passage 0 (first in the list, and naming the query) on top
        best = max(range(len(ex.documents)), key=ex.teacher.__getitem__)
        assert ex.teacher_name == "given+bm25" and ex.documents[best].id.endswith("-0")
    with pytest.raises(ConfigError, match="no list has the n_docs=7 documents"):
        build_examples([source], 7, 0, scores_dir=tmp_path / "scores", holdout=holdout)
    with pytest.raises(DataFormatError, match="lists.given.jsonl has no scores for query 'q1'"):
        build_examples([source], 3, 0, scores_dir=tmp_path / "scores")  # q1 was held out when labelling
    with pytest.raises(ConfigError, match="compute them with `blockrank label RECIPE`"):
        build_examples([source], 3, 0, scores_dir=tmp_path / "elsewhere")


def test_labels_do_not_depend_on_which_recipe_labelled_first(tmp_path):
    """A recipe taking a slice of a source and one taking all of it share the score file; BM25's statistics are the
    whole source's either way, so the stored values are the same whoever labelled first."""
    from blockrank.train.sources import CandidatesSource, label_sources

    path = tmp_path / "lists.jsonl"
    texts = [["the query here", "some query there", "other things", "more things"], ["the query", "things", "query"]] * 3
    path.write_text(
        "".join(
            json.dumps(
                {"qid": f"q{i}", "query": "the query", "candidates": [{"docid": f"{i}-{j}", "text": t} for j, t in enumerate(ts)]}
            )
            + "\n"
            for i, ts in enumerate(texts[:5])
        )
    )
    label_sources([CandidatesSource(str(path), teacher="bm25", limit=1)], None, tmp_path / "a", seed=0)
    label_sources([CandidatesSource(str(path), teacher="bm25")], None, tmp_path / "a", seed=0)
    label_sources([CandidatesSource(str(path), teacher="bm25")], None, tmp_path / "b", seed=0)
    stored = [teacher_scores.read_scores(tmp_path / d / "lists.bm25.jsonl") for d in "ab"]
    assert stored[0] == stored[1]
    assert len((tmp_path / "a" / "lists.bm25.jsonl").read_text().splitlines()) == 5  # the slice labelled every query


def test_dev_protocol_reports_plain_and_condensed_ndcg():
    """An unjudged passage ranked first costs plain nDCG@10 but not the condensed one."""
    cands = [Candidates("q", "the query", [Document("unjudged", ""), Document("rel", ""), Document("non", "")])]
    evalset = EvalSet("dl", cands, {"q": {"rel": 2, "non": 0}}, rel=2)
    out = dev_metrics(lambda query, documents: [3.0, 2.0, 1.0], [evalset])
    assert out["dev_dl_condensed"] == pytest.approx(1.0)
    assert out["dev_dl_ndcg"] == pytest.approx(1 / 1.5849625, abs=1e-6)  # the relevant passage at rank 2
    assert out["dev_score"] == pytest.approx((out["dev_dl_ndcg"] + 1.0) / 2)
