"""Synthetic queries: filtering, resumable generation, candidates, consistency filtering, the CLI."""

from __future__ import annotations

import json

import pytest

from blockrank.errors import ConfigError, InputError
from blockrank.eval.data import DataFormatError
from blockrank.prompt import Document
from blockrank.train import synth


@pytest.mark.parametrize(
    "raw, query, reason",
    [
        ("what causes glacier caves to form?\nmore text", "what causes glacier caves to form?", None),
        ('Query: "glacier cave formation"', "glacier cave formation", None),
        ("   ", None, "empty"),
        ("??", None, "empty"),
        (" ".join(["word"] * 30), None, "overlong"),
        ("a glacier cave is a cave formed within the ice", None, "copied"),
    ],
)
def test_clean_query(raw, query, reason):
    passage = "A glacier cave is a cave formed within the ice of a glacier."
    assert synth.clean_query(raw, passage) == (query, reason)


class Scripted:
    """Stands in for QueryGenerator: answers from a script, counting calls."""

    batch_size = 2

    def __init__(self, answers):
        self.answers, self.calls, self.keys = answers, [], []

    def generate(self, passages, keys=None):
        self.calls.append(len(passages))
        self.keys += keys
        return [self.answers[p] for p in passages]


CORPUS = {
    f"p{i}": Document(f"p{i}", text)
    for i, text in enumerate(
        [
            "Glaciers carve caves when meltwater flows through the ice.",
            "The stock market fell sharply on Monday after the report.",
            "Penguins live in the southern hemisphere, mostly in Antarctica.",
            "Volcanoes erupt when magma rises through the crust.",
        ]
    )
}
ANSWERS = {
    CORPUS["p0"].content: "how do glacier caves form",
    CORPUS["p1"].content: "",
    CORPUS["p2"].content: "where do penguins live",
    CORPUS["p3"].content: "why do volcanoes erupt",
}


def test_generation_appends_drops_and_resumes(tmp_path):
    out = tmp_path / "queries.jsonl"
    gen = Scripted(ANSWERS)
    stats = synth.SynthStats()
    queries = synth.generate_queries(gen, dict(list(CORPUS.items())[:2]), out, stats)
    assert queries == {"p0": "how do glacier caves form"} and stats.dropped == {"empty": 1}
    assert gen.keys == ["p0", "p1"]  # each passage's id picks its shots
    out.write_text(out.read_text() + '{"pid": "p2", "que')  # a torn line from a crash
    gen = Scripted(ANSWERS)
    stats = synth.SynthStats()
    queries = synth.generate_queries(gen, CORPUS, out, stats)
    assert gen.calls == [2]  # only p2 and p3 were generated again
    assert sorted(queries) == ["p0", "p2", "p3"] and stats.generated == 3 and stats.dropped == {"empty": 1}


def test_candidates_consistency_filter_and_stored_lists(tmp_path):
    queries = {"p0": "glacier caves meltwater", "p2": "stock market report"}  # the second is inconsistent
    lists = synth.build_candidates(queries, CORPUS, k=3)
    assert [c.documents[0].id for c in lists] == ["p0", "p2"] and all(len(c.documents) == 3 for c in lists)
    stats = synth.SynthStats()
    kept = synth.score_and_filter(lists, "bm25", tmp_path / "scores", "mine", keep_rank=1, stats=stats)
    assert [c.qid for c in kept] == ["synth:p0"] and stats.inconsistent == 1
    stored = [json.loads(x) for x in (tmp_path / "scores" / "mine.bm25.jsonl").read_text().splitlines()]
    assert [r["qid"] for r in stored] == ["synth:p0", "synth:p2"]  # every list is scored, kept or not
    synth.write_lists(kept, tmp_path / "lists.jsonl")
    assert "Glaciers" not in (tmp_path / "lists.jsonl").read_text()  # ids only, never passage text
    again = synth.read_lists(tmp_path / "lists.jsonl", CORPUS)
    assert [(c.qid, c.query, [d.id for d in c.documents]) for c in again] == [
        (c.qid, c.query, [d.id for d in c.documents]) for c in kept
    ]
    with pytest.raises(DataFormatError, match="p0.*none of the passage files"):
        synth.read_lists(tmp_path / "lists.jsonl", {k: v for k, v in CORPUS.items() if k != "p0"})


def test_dense_first_stage_finds_neighbours_in_meaning():
    """No word in common with the query, yet the dense first stage ranks the passage about it next to the source."""
    queries = {"p3": "lava eruption"}
    (words,) = synth.build_candidates(queries, CORPUS, k=2)
    (meaning,) = synth.build_candidates(queries, CORPUS, k=4, first_stage="dense")
    assert words.documents[0].id == meaning.documents[0].id == "p3"  # the source first either way
    assert len(meaning.documents) == 4 and meaning.documents[-1].id == "p1"  # the stock market: furthest in meaning
    with pytest.raises(InputError, match="unknown first stage 'splade'"):
        synth.build_candidates(queries, CORPUS, k=2, first_stage="splade")


def test_a_larger_sample_extends_the_smaller_one():
    passages = {f"p{i}": Document(f"p{i}", "text") for i in range(50)}
    small, large = synth.sample(passages, 5, seed=3), synth.sample(passages, 30, seed=3)
    assert list(large)[:5] == list(small) and len(large) == 30 and synth.sample(passages, None, 3) == passages


def test_a_synth_source_trains_with_its_source_passage_positive(tmp_path):
    from blockrank.train.sources import SynthSource, build_examples

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": d.id, "text": d.text}) + "\n" for d in CORPUS.values()))
    out = tmp_path / "mine"
    lists = synth.build_candidates({"p0": "glacier caves meltwater", "p3": "volcano magma"}, CORPUS, k=3)
    synth.write_lists(synth.score_and_filter(lists, "bm25", tmp_path / "scores", out.name, keep_rank=1), out / "lists.jsonl")
    src = SynthSource(str(out), passages=(str(corpus),), teacher="bm25")
    examples = build_examples([src], 3, seed=0, scores_dir=tmp_path / "scores")
    assert sorted(ex.query_id for ex in examples) == ["synth:p0", "synth:p3"]
    for ex in examples:
        assert [ex.documents[i].id for i in ex.positives] == [ex.query_id.removeprefix("synth:")]
        assert ex.teacher is not None and len(ex.teacher) == 3
    with pytest.raises(ConfigError, match="passages"):
        build_examples([SynthSource(str(out))], 3, seed=0)


@pytest.mark.parametrize("style", sorted(synth.STYLES))
def test_prompt_draws_its_shots_by_passage_id_and_seed(style):
    generator = synth.QueryGenerator(None, _Tokenizer(), style=style, seed=1)
    prompts = {pid: generator.prompt("the passage", pid) for pid in "abcdefgh"}
    assert prompts["a"] == synth.QueryGenerator(None, _Tokenizer(), style=style, seed=1).prompt("the passage", "a")
    assert len(set(prompts.values())) > 1  # passages differ in their shots
    assert all(
        p.count("Query:") == synth.SHOTS_PER_PROMPT + 1 and p.endswith("Passage: the passage\nQuery:") for p in prompts.values()
    )
    assert (
        synth.QueryGenerator(None, _Tokenizer(), style=style, seed=2).prompt("the passage", "a") != prompts["a"]
        or synth.QueryGenerator(None, _Tokenizer(), style=style, seed=3).prompt("the passage", "a") != prompts["a"]
    )


def test_unknown_query_style_is_refused():
    with pytest.raises(InputError, match="unknown query style 'poetry'"):
        synth.QueryGenerator(None, _Tokenizer(), style="poetry")


class _Tokenizer:
    padding_side, pad_token_id, eos_token = "right", 0, "</s>"


def test_query_generator_continues_a_few_shot_prompt_greedily(tiny_model_dir):
    """Each passage's prompt holds its seeded shots and then the passage; the answer is the model's greedy
    continuation of that prompt, at most ``max_new_tokens`` long."""
    from blockrank.model import load_model

    model, tokenizer, _ = load_model(tiny_model_dir, dtype="fp32")
    generator = synth.QueryGenerator(model, tokenizer, max_new_tokens=4, batch_size=2)
    passages, keys = ["short", "a longer passage"], ["p0", "p1"]
    for passage, key, text in zip(passages, keys, generator.generate(passages, keys)):
        prompt = generator.prompt(passage, key)
        assert prompt.endswith(f"Passage: {passage}\nQuery:") and prompt.count("Passage: ") == synth.SHOTS_PER_PROMPT + 1
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        greedy = model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert text == tokenizer.decode(greedy[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def test_batched_generation_with_left_padding_equals_one_at_a_time(tiny_model_dir):
    """The blockrank attention implementation must honour the padding mask outside its own passes: batched
    generation once attended to the left padding and wrote garbage queries."""
    from blockrank.model import load_model

    model, tokenizer, _ = load_model(tiny_model_dir, dtype="fp32")
    passages = ["short", "a much longer passage about glaciers, caves and the meltwater that carves them"]
    batched = synth.QueryGenerator(model, tokenizer, max_new_tokens=6, batch_size=2).generate(passages)
    single = [synth.QueryGenerator(model, tokenizer, max_new_tokens=6).generate([p])[0] for p in passages]
    assert batched == single


def test_synth_command_excludes_evaluation_passages_and_resumes(tmp_path, tiny_model_dir, monkeypatch):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": d.id, "text": d.text}) + "\n" for d in CORPUS.values()))
    held_out = tmp_path / "qrels.txt"
    held_out.write_text("q1 0 p3 1\n")
    monkeypatch.setattr(synth.QueryGenerator, "generate", lambda self, passages, keys=None: [ANSWERS[p] for p in passages])
    from blockrank.cli import main

    args = [
        "synth",
        str(corpus),
        "--out",
        str(tmp_path / "out"),
        "--generator",
        str(tiny_model_dir),
        "--teacher",
        "bm25",
        "--candidates",
        "3",
        "--keep-rank",
        "1",
        "--exclude",
        str(held_out),
    ]
    assert main(args) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["passages"] == 3 and stats["generated"] == 2 and stats["dropped"] == {"empty": 1}
    assert stats["kept"] + stats["inconsistent"] == 2
    lists = [json.loads(x) for x in (tmp_path / "out" / "lists.jsonl").read_text().splitlines()]
    assert len(lists) == stats["kept"] and all(r["docids"][0] == r["qid"].removeprefix("synth:") for r in lists)
    assert (tmp_path / "out" / "teacher-scores" / "out.bm25.jsonl").is_file()
    rows = [json.loads(x) for x in (tmp_path / "out" / "queries.jsonl").read_text().splitlines()]
    assert "p3" not in {r["pid"] for r in rows}
    assert main(args) == 0  # a rerun generates nothing new
    assert len((tmp_path / "out" / "queries.jsonl").read_text().splitlines()) == 3


def test_ctrl_c_during_generation_keeps_what_was_written(tmp_path):
    class Interrupted(Scripted):
        def generate(self, passages, keys=None):
            if self.calls:
                raise KeyboardInterrupt
            return super().generate(passages, keys)

    out = tmp_path / "queries.jsonl"
    with pytest.raises(KeyboardInterrupt):
        synth.generate_queries(Interrupted(ANSWERS), CORPUS, out)
    assert len(out.read_text().splitlines()) == 2  # the first batch is on disk
    gen = Scripted(ANSWERS)
    assert sorted(synth.generate_queries(gen, CORPUS, out)) == ["p0", "p2", "p3"] and gen.calls == [2]
