"""``blockrank rerank`` end to end on a tiny random model."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from blockrank.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_rerank_json_from_arguments(capsys, tiny_model_dir):
    code, out, _ = run(
        capsys, "rerank", "-q", "rain", "clouds", "sun", "snow", "--model", str(tiny_model_dir), "--layer", "1", "--json"
    )
    assert code == 0
    rows = json.loads(out)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert sorted(r["text"] for r in rows) == ["clouds", "snow", "sun"]


def test_rerank_file_and_table(capsys, tiny_model_dir, tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"query": "rain", "documents": [{"id": "a", "text": "clouds"}, {"id": "b", "text": "sun"}]}))
    code, out, _ = run(capsys, "rerank", "-f", str(path), "--model", str(tiny_model_dir), "--layer", "1", "-k", "1")
    assert code == 0
    assert "Query: rain" in out and "rank" in out
    code, as_json, _ = run(capsys, "rerank", "-f", str(path), "--model", str(tiny_model_dir), "--layer", "1", "--json")
    best, other = (r["text"] for r in json.loads(as_json))
    assert best in out and other not in out  # -k 1: the table holds the top document only


def test_rerank_jsonl_from_stdin(capsys, monkeypatch, tiny_model_dir):
    monkeypatch.setattr("sys.stdin", io.StringIO('"clouds"\n{"id": "x", "text": "sun"}\n'))
    code, out, _ = run(capsys, "rerank", "-q", "rain", "-f", "-", "--model", str(tiny_model_dir), "--layer", "1", "--json")
    assert code == 0 and {r["id"] for r in json.loads(out)} == {"0", "x"}


@pytest.mark.parametrize(
    "content,match",
    [
        ('"a"\n{broken\n', "line 2: not valid JSON"),
        ('{"query": "q"}', "needs a 'documents' list"),
        ("", "is empty"),
    ],
)
def test_malformed_files(capsys, tmp_path, content, match):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    code, _, err = run(capsys, "rerank", "-q", "q", "-f", str(path))
    assert code == 2 and match in err


def test_errors_before_loading(capsys):
    assert run(capsys, "rerank", "-q", " ", "a")[0] == 2
    code, _, err = run(capsys, "rerank", "-q", "q")
    assert code == 2 and "no documents" in err
    code, _, err = run(capsys, "rerank", "-q", "q", "a", "--model", "./missing-model")
    assert code == 2 and "does not exist" in err


def test_bench_without_the_sparse_config(tmp_path, tiny_model_dir):
    """``--configs reference,full`` used to fail with ``error: 'sparse'``."""
    assert (
        main(
            [
                "bench",
                "--model",
                str(tiny_model_dir),
                "--layer",
                "1",
                "--ns",
                "2",
                "--configs",
                "reference,full",
                "--repeats",
                "1",
                "--out",
                str(tmp_path),
                "--name",
                "b",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "b.json").read_text())
    assert {r["config"] for r in report["results"]} == {"reference", "full"}


def test_help_and_argument_errors_do_not_import_torch():
    code = (
        "import sys, blockrank.cli as c; c.build_parser().format_help(); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_bench_reports_the_efficiency_of_every_pass(tmp_path, tiny_model_dir):
    assert (
        main(
            [
                "bench",
                "--model",
                str(tiny_model_dir),
                "--layer",
                "1",
                "--ns",
                "2,4",
                "--repeats",
                "1",
                "--out",
                str(tmp_path),
                "--name",
                "b",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "b.json").read_text())
    row = report["summary"][-1]
    for c in ("sparse", "layer-major", "reference", "full", "causal"):
        assert row[f"{c}_gflops"] > 0 and 0 < row[f"{c}_pct_of_matmul"]
    by = {(r["config"], r["n_docs"]): r for r in report["results"]}
    assert by["layer-major", 4]["max_score_diff"] < 1e-5  # the two sparse passes agree
    assert by["full", 4]["gflop"] > by["causal", 4]["gflop"]  # all layers and the LM head vs layers up to l*


def test_bench_on_whole_passages_runs_every_pass_on_the_same_real_text(tmp_path, tiny_model_dir):
    from blockrank.reranker import Reranker

    query, texts = "what is beta", [" ".join(["alpha", "beta", "gamma"][: i % 3 + 1]) + f" {i}" for i in range(6)]
    passages = tmp_path / "passages.jsonl"
    passages.write_text(
        json.dumps({"qid": "1", "query": query, "candidates": [{"docid": str(i), "text": t} for i, t in enumerate(texts)]}) + "\n"
    )
    assert (
        main(
            [
                "bench",
                "--model",
                str(tiny_model_dir),
                "--layer",
                "1",
                "--ns",
                "3,6",
                "--configs",
                "sparse,full",
                "--repeats",
                "1",
                "--passages",
                str(passages),
                "--out",
                str(tmp_path),
                "--name",
                "b",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "b.json").read_text())
    reranker = Reranker.from_pretrained(tiny_model_dir, layer=1)
    assert report["fixed_length"] is False
    for r in report["results"]:  # both passes see the passages as they are, uneven lengths and all
        assert r["tokens"] == reranker.prompt(query, texts[: r["n_docs"]]).num_tokens
