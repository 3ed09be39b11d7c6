"""Training data sampling, the ICR JSONL format, and short training runs on a tiny random model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from factories import icr_examples, pool

from blockrank.eval.data import Candidates, DataFormatError
from blockrank.prompt import Document
from blockrank.train.examples import (
    ICRExample,
    pools_from_candidates,
    read_icr_jsonl,
    sample_example,
    sample_examples,
    write_icr_jsonl,
)
from blockrank.train.sources import BeirSource, CandidatesSource, ICRSource, SynthSource, parse_source


def test_sampling_has_positives_hard_negatives_and_shuffles():
    ex = sample_example(pool(), n_docs=10, rng=random.Random(0))
    assert len(ex.documents) == 10
    assert sorted(ex.documents[i].id for i in ex.positives) == ["p0", "p1"]
    negatives = [d.id for i, d in enumerate(ex.documents) if i not in ex.positives]
    assert {"n0", "n1", "n2", "n3"} <= set(negatives)  # the hardest half is always there
    assert ex.positives != [0, 1]  # shuffled (for this seed)
    again = sample_example(pool(), n_docs=10, rng=random.Random(0))
    assert [d.id for d in again.documents] == [d.id for d in ex.documents]  # seeded


def test_sample_examples_counts_and_caps():
    examples = sample_examples([pool(n_pos=6, qid="a"), pool(qid="b")], n_docs=8, seed=1, epochs=3, max_positives=3)
    assert len(examples) == 6
    assert all(1 <= len(e.positives) <= 3 and len(e.documents) == 8 for e in examples)


def test_pools_skip_queries_without_positive():
    docs = [Document("a", "x"), Document("b", "y")]
    cands = [Candidates("1", "q1", docs), Candidates("2", "q2", docs)]
    with pytest.warns(UserWarning, match="1 of 2 queries have no positive"):
        pools = pools_from_candidates(cands, {"1": {"a": 3, "b": 1}, "2": {"a": 1}}, min_grade=2)
    assert len(pools) == 1 and [d.id for d in pools[0].positives] == ["a"]


def test_icr_jsonl_round_trip_and_errors(tmp_path):
    ex = ICRExample("q1", "query", [Document("d1", "t1", "T"), Document("d2", "t2")], [1])
    path = tmp_path / "icr.jsonl"
    write_icr_jsonl(path, [ex])
    row = json.loads(path.read_text())
    assert row["answer_ids"] == [2] and row["documents"][0] == {"doc_id": "d1", "title": "T", "text": "t1"}
    assert read_icr_jsonl(path) == [ex]
    row["answer_ids"] = [3]
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataFormatError, match=r"example 1: answer ids \[3\] out of range 1..2"):
        read_icr_jsonl(path)
    row["answer_ids"] = []
    path.write_text(json.dumps(row) + "\n" + "{bad\n")
    with pytest.raises(DataFormatError, match="line 2: not valid JSON"):
        read_icr_jsonl(path)
    path.write_text(json.dumps(row) + "\n")
    with pytest.warns(UserWarning, match="1 examples without any positive skipped"):
        assert read_icr_jsonl(path) == []


def test_sources_slice_queries_to_hold_out_a_dev_set(tmp_path):
    from blockrank.train.sources import build_examples
    from blockrank.train.training import load_config

    cands = [Candidates(str(i), f"q{i}", [Document(f"{i}a", "x"), Document(f"{i}b", "y")]) for i in range(5)]
    path = tmp_path / "cands.jsonl"
    path.write_text(
        "".join(
            json.dumps({"qid": c.qid, "query": c.query, "candidates": [{"docid": d.id, "text": d.text} for d in c.documents]})
            + "\n"
            for c in cands
        )
    )
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("".join(f"{i} 0 {i}a 2\n" for i in range(5)))
    cfg = load_config(None, ["n_docs=2"])
    dev = build_examples([CandidatesSource(str(path), qrels=str(qrels), limit=2)], cfg.n_docs, seed=0)
    train = build_examples([CandidatesSource(str(path), qrels=str(qrels), offset=2, epochs=3)], cfg.n_docs, seed=0)
    assert sorted(e.query_id for e in dev) == ["0", "1"]
    assert sorted(e.query_id for e in train) == ["2", "2", "2", "3", "3", "3", "4", "4", "4"]


def dev_fixture(tmp_path):
    """Two dev queries (d0, d1) of four candidates each; one relevant, one judged non-relevant, two unjudged."""
    lists = tmp_path / "dev.jsonl"
    lists.write_text(
        "".join(
            json.dumps(
                {
                    "qid": q,
                    "query": f"question {q}",
                    "candidates": [{"docid": f"{q}_{j}", "score": 4 - j, "text": f"passage {j} for {q}"} for j in range(4)],
                }
            )
            + "\n"
            for q in ("d0", "d1")
        )
    )
    qrels = tmp_path / "dev-qrels.txt"
    qrels.write_text("d0 0 d0_2 3\nd0 0 d0_0 0\nd1 0 d1_3 2\nd1 0 d1_1 0\n")
    return lists, qrels


@pytest.fixture
def icr_file(tmp_path):
    path = tmp_path / "train.jsonl"
    write_icr_jsonl(path, icr_examples(6))
    return path


def test_two_step_lora_run_checkpoints_and_resumes(tmp_path, tiny_model_dir, icr_file):
    from blockrank.errors import ConfigError
    from blockrank.reranker import Reranker
    from blockrank.train.training import Trainer, load_config

    overrides = [
        f"model={tiny_model_dir}",
        f"out_dir={tmp_path / 'run'}",
        "layer=1",
        "max_steps=2",
        "grad_accum=2",
        "lora.r=4",
        "block_tokens=16",
        "save_every=1",
        "log_every=1",
        "eval_every=1",
    ]
    cfg = load_config(None, overrides)
    dev_lists, dev_qrels = dev_fixture(tmp_path)
    (tmp_path / "dev.qids").write_text("# dev\nd0\nd1\n")
    cfg.data = [ICRSource(str(icr_file))]
    cfg.holdout = str(tmp_path / "dev.qids")
    cfg.dev = {"lists": [str(dev_lists)], "qrels": str(dev_qrels), "top_k": 4}
    final = Trainer(cfg).train()
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [0, 1, 2]  # the curve starts with the untrained model's dev row
    assert all(r["lm_loss"] > 0 and r["aux_loss"] > 0 for r in log[1:])
    for r in log:  # two dev queries ranked at full depth, plain and condensed
        assert 0 <= r["dev_dev_ndcg"] <= 1 and 0 <= r["dev_dev_condensed"] <= 1
        assert r["dev_score"] == pytest.approx((r["dev_dev_ndcg"] + r["dev_dev_condensed"]) / 2)
    assert (tmp_path / "run" / "latest").read_text() == "checkpoint-2"
    assert (final / "adapter_model.safetensors").is_file()

    r = Reranker.from_pretrained(final)  # base + adapter, merged; layer comes from the recipe
    assert r.layer == 1 and r.builder.block_tokens == 16
    assert len(r.rerank("q", ["a", "b"])) == 2
    from blockrank.train.export import export_checkpoint  # a checkpoint exported loads with the same settings as final

    exported = export_checkpoint(tmp_path / "run" / "checkpoint-1", tmp_path / "exported")
    settings = json.loads((final / "blockrank.json").read_text())
    assert json.loads((exported / "blockrank.json").read_text()) == settings | {"steps": 1}
    assert Reranker.from_pretrained(exported).layer == 1

    changed = load_config(None, [*overrides, "lora.r=8"])  # resuming under a different recipe is refused by name
    changed.data = cfg.data
    with pytest.raises(ConfigError, match="checkpoint .*checkpoint-2.*its r is 4"):
        Trainer(changed, resume=True)


def test_numbers_in_exponent_form_are_numbers():
    from blockrank.errors import ConfigError
    from blockrank.train.training import load_config

    assert load_config(None, ["lr=1e-3", "temperature=5e-2"]).lr == 0.001
    with pytest.raises(ConfigError, match="lr: expected a number"):
        load_config(None, ["lr=fast"])


def test_mass_logits_setting_reaches_the_loss(tmp_path, tiny_model_dir, icr_file):
    from blockrank.errors import ConfigError
    from blockrank.train.training import Trainer, load_config

    cfg = load_config(None, [f"model={tiny_model_dir}", "layer=1", "mass_logits=log", "temperature=1", f"out_dir={tmp_path}"])
    cfg.data = [ICRSource(str(icr_file))]
    assert Trainer(cfg).weights.mass_logits == "log"
    with pytest.raises(ConfigError, match="mass_logits: 'softplus' is not one of linear, log"):
        load_config(None, ["mass_logits=softplus"])
    with pytest.raises(ConfigError, match="attention: 'dense' is not one of sparse, reference, causal"):
        load_config(None, ["attention=dense"])


@pytest.mark.parametrize("weights", ["lora.r=4", "lora=null"])  # the adapter and the full fine-tune
def test_resume_continues_exactly_where_the_run_stopped(tmp_path, tiny_model_dir, icr_file, weights):
    """Interrupted after 2 of 4 steps and resumed: weights and optimizer state equal an uninterrupted run's."""
    from blockrank.train.training import Trainer, load_config

    def trainer(out: str, resume: bool = False) -> Trainer:
        cfg = load_config(
            None,
            [
                f"model={tiny_model_dir}",
                f"out_dir={tmp_path / out}",
                "layer=1",
                "max_steps=4",
                "grad_accum=1",
                weights,
                "block_tokens=16",
                "save_every=2",
                "lr=1e-2",
            ],
        )
        cfg.data = [ICRSource(str(icr_file))]
        return Trainer(cfg, resume=resume)

    clean = trainer("clean")
    clean.train()
    stopped = trainer("stopped")
    real = stopped.loss
    calls = []

    def crash(ex):  # dies inside step 3, after checkpoint-2
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("power cut")
        return real(ex)

    stopped.loss = crash
    with pytest.raises(RuntimeError, match="power cut"):
        stopped.train()
    resumed = trainer("stopped", resume=True)
    assert resumed.step == 2
    resumed.train()

    def trained(t: Trainer) -> dict[str, torch.Tensor]:
        return {k: v for k, v in t.accelerator.unwrap_model(t.model).named_parameters() if v.requires_grad}

    a, b = trained(clean), trained(resumed)
    assert a.keys() == b.keys() and a
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = clean.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[i][m], sb[i][m]) for i in sa for m in sa[i])
    assert clean.scheduler.state_dict() == resumed.scheduler.state_dict()


def test_resume_before_the_first_checkpoint_drops_the_logged_rows(tmp_path, tiny_model_dir, icr_file):
    """Killed after step 1 was logged but before any checkpoint was pointed to: the rerun logs step 1 again,
    so the old row must go (SIGKILL test: the log read 1, 1, 2, ...)."""
    from blockrank.train.training import Trainer, load_config

    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text(json.dumps({"step": 1, "aux_loss": 1.0}) + "\n")
    cfg = load_config(
        None,
        [
            f"model={tiny_model_dir}",
            f"out_dir={run}",
            "layer=1",
            "max_steps=2",
            "grad_accum=1",
            "lora.r=4",
            "block_tokens=16",
            "log_every=1",
        ],
    )
    cfg.data = [ICRSource(str(icr_file))]
    trainer = Trainer(cfg, resume=True)
    assert trainer.step == 0 and (run / "log.jsonl").read_text() == ""
    trainer.train()
    assert [json.loads(x)["step"] for x in (run / "log.jsonl").read_text().splitlines()] == [1, 2]


def test_ctrl_c_saves_a_checkpoint(tmp_path, tiny_model_dir, icr_file, monkeypatch):
    from blockrank.train.training import Trainer, load_config

    cfg = load_config(
        None,
        [
            f"model={tiny_model_dir}",
            f"out_dir={tmp_path / 'run'}",
            "layer=1",
            "max_steps=5",
            "grad_accum=1",
            "lora=null",
            "block_tokens=16",
            "save_every=100",
        ],
    )
    cfg.data = [ICRSource(str(icr_file))]
    trainer = Trainer(cfg)
    real, calls = trainer.loss, []

    def interrupted(ex):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(ex)

    monkeypatch.setattr(trainer, "loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert (tmp_path / "run" / "latest").read_text() == "checkpoint-2"
    assert (tmp_path / "run" / "checkpoint-2" / "model.safetensors").is_file()


def test_config_errors():
    from blockrank.train.training import LoraSettings, load_config

    with pytest.raises(ValueError, match="unknown config keys: bogus"):
        load_config(None, ["bogus=1"])
    with pytest.raises(ValueError, match="not key=value"):
        load_config(None, ["lr"])
    assert load_config(None, ["lora.r=8", "lora.dropout=1e-1"]).lora == LoraSettings(r=8, alpha=32, dropout=0.1)
    assert load_config(None, ["lora=null"]).lora is None
    with pytest.raises(ValueError, match="unknown lora keys: rank"):
        load_config(None, ["lora.rank=8"])
    with pytest.raises(ValueError, match="lora.dropout: expected a number, got 'none'"):
        load_config(None, ["lora.dropout=none"])
    with pytest.raises(ValueError, match="lr: expected a number"):
        load_config(None, ["lr=fast"])
    assert load_config(None, ["lr=1e-3"]).lr == 1e-3


@pytest.mark.parametrize("recipe", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_committed_recipe_loads_and_its_start_is_committed(recipe):
    """A recipe runs as committed on a fresh clone: its keys are known and the adapter it continues is in adapters/."""
    from blockrank.train.training import load_config

    cfg = load_config(recipe)
    assert cfg.init_adapter is None or (recipe.parents[1] / cfg.init_adapter / "adapter_config.json").is_file()
    for src in cfg.data:  # synthetic query sets are committed as ids (their text comes from ../shared/data)
        assert not isinstance(src, SynthSource) or (recipe.parents[1] / src.path / "lists.jsonl").is_file()


@pytest.mark.parametrize(
    "source, message",
    [
        ("{type: titles, path: p, n: 10, seed: 1}", r"data source 0 \(titles, p\): unknown keys seed; a titles source takes"),
        ("{type: icr, path: p, epochs: 2}", r"unknown keys epochs"),
        ("{type: bm25, path: p}", r"data source 0: unknown type 'bm25'"),
        ("{type: beir}", r"data source 0 \(beir\): no path"),
        ("scifact", r"data source 0: expected a mapping"),
        ("{type: beir, path: p, limit: ten}", r"data source 0 \(beir, p\): limit: expected int \| None, got 'ten'"),
        ("{type: candidates, path: p, n_docs: [20, 30, 40]}", r"n_docs: expected int \| tuple\[int, int\] \| None"),
        ("{type: synth, path: p, passages: a.jsonl}", r"passages: expected tuple\[str, ...\], got 'a.jsonl'"),
        ("{type: titles, path: p, n: true}", r"n: expected int, got True"),
    ],
)
def test_recipe_sources_with_keys_their_type_ignores_or_values_of_the_wrong_kind_are_refused(source, message):
    from blockrank.train.training import load_config

    with pytest.raises(ValueError, match=message):
        load_config(None, [f"data=[{source}]"])
    assert load_config(None, ["data=[{type: candidates, path: p, qrels: q, min_grade: 2, epochs: 3}]"]).data


def test_recipe_sources_are_typed_and_read_back_from_a_run_config():
    from blockrank.train.training import load_config

    (beir, synth) = load_config(
        None,
        [
            "data=[{type: beir, path: p, n_docs: [20, 30], limit: 5}, "
            "{type: synth, path: s, passages: [a, b], teacher: given+mpnet}]"
        ],
    ).data
    assert beir == BeirSource("p", n_docs=(20, 30), limit=5) and beir.score_name(0, 0) == "p-train-top100"
    assert synth == SynthSource("s", teacher="given+mpnet", passages=("a", "b"))
    for src in (beir, synth):  # config.json holds as_dict(), through JSON
        assert parse_source(json.loads(json.dumps(src.as_dict())), 0) == src


def unlabelled_source(tmp_path):
    """Three candidate lists without qrels; in list ``u{i}`` only passage ``u{i}-{i}`` names the query."""
    path = tmp_path / "unlabelled.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "qid": f"u{i}",
                    "query": f"query {i}",
                    "candidates": [
                        {"docid": f"u{i}-{j}", "text": f"passage {j} about query {i}" if j == i else f"other text {j}"}
                        for j in range(4)
                    ],
                }
            )
            + "\n"
            for i in range(3)
        )
    )
    return path


def test_aux_only_bf16_distillation_run_with_an_unlabelled_source(tmp_path, tiny_model_dir, icr_file):
    from safetensors.torch import load_file

    from blockrank.train.training import Trainer, load_config

    unlabelled = unlabelled_source(tmp_path)
    overrides = [
        f"model={tiny_model_dir}",
        f"out_dir={tmp_path / 'run'}",
        "layer=1",
        "max_steps=2",
        "grad_accum=2",
        "lora.r=4",
        "lora.dropout=0",
        "block_tokens=16",
        "n_docs=4",
        "lm_weight=0",
        "aux_weight=1",
        "bf16=true",
        "teacher=bm25",
        "kd_weight=1",
        "log_every=2",
        "threads=1",
    ]
    cfg = load_config(None, [*overrides, "eval_every=1"])  # a dev step between log steps is still evaluated
    dev_lists, dev_qrels = dev_fixture(tmp_path)
    (tmp_path / "dev.qids").write_text("d0\nd1\n")
    cfg.data = [ICRSource(str(icr_file)), CandidatesSource(str(unlabelled))]
    cfg.holdout, cfg.dev = str(tmp_path / "dev.qids"), {"lists": [str(dev_lists)], "qrels": str(dev_qrels)}
    trainer = Trainer(cfg)
    assert sum(not ex.positives for ex in trainer.examples) == 3 and all(ex.teacher for ex in trainer.examples)
    final = trainer.train()
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [0, 1, 2] and all(r["lm_loss"] == 0 for r in log[1:])
    assert sum(r["kd_loss"] for r in log[1:]) > 0
    assert all(0 <= r["dev_score"] <= 1 for r in log)  # dev ranked under bf16 autocast, without grad
    adapted = {k.split(".layers.")[1].split(".")[0] for k in load_file(final / "adapter_model.safetensors")}
    assert adapted == {"0", "1"}  # aux-only: no adapters above l* (the tiny model has 3 layers)
    stored = tmp_path / "run" / "teacher-scores"  # every source's lists, scored once before training
    assert sorted(p.name for p in stored.iterdir()) == ["train.bm25.jsonl", "unlabelled.bm25.jsonl"]
    assert len((stored / "unlabelled.bm25.jsonl").read_text().splitlines()) == 3


def test_aux_only_full_fine_tune_trains_layers_up_to_lstar_only(tmp_path, tiny_model_dir, icr_file):
    """Full fine-tuning read at l*: the layers above it never run and the embeddings (tied to the LM head)
    stay as they are, so only layers 0..l* may change."""
    from blockrank.train.training import Trainer, load_config

    cfg = load_config(
        None,
        [
            f"model={tiny_model_dir}",
            f"out_dir={tmp_path / 'run'}",
            "layer=1",
            "max_steps=2",
            "grad_accum=1",
            "lora=null",
            "lm_weight=0",
            "aux_weight=1",
            "block_tokens=16",
            "lr=1e-2",
        ],
    )
    cfg.data = [ICRSource(str(icr_file))]
    trainer = Trainer(cfg)
    model = trainer.accelerator.unwrap_model(trainer.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.train()
    assert {k.split(".layers.")[1].split(".")[0] for k, p in model.named_parameters() if p.requires_grad} == {"0", "1"}
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(".layers.0." in k or ".layers.1." in k for k in changed)


def test_a_source_brings_its_own_teacher(tmp_path, tiny_model_dir, icr_file):
    from blockrank.train.training import Trainer, load_config

    unlabelled = unlabelled_source(tmp_path)
    cfg = load_config(
        None,
        [
            f"model={tiny_model_dir}",
            f"out_dir={tmp_path / 'run'}",
            "layer=1",
            "n_docs=4",
            "block_tokens=16",
            "lm_weight=0",
            "aux_weight=1",
            "kd_weight=1",
        ],
    )
    cfg.data = [ICRSource(str(icr_file)), CandidatesSource(str(unlabelled), teacher="bm25")]
    trainer = Trainer(cfg)  # no recipe-wide teacher: only the unlabelled source is distilled
    labelled = [ex for ex in trainer.examples if ex.positives]
    assert labelled and all(ex.teacher is None for ex in labelled)
    for ex in trainer.examples:
        if not ex.positives:  # BM25 puts the passage that names the query first
            best = max(range(4), key=ex.teacher.__getitem__)
            assert ex.teacher_name == "bm25" and ex.documents[best].id == f"{ex.query_id}-{ex.query_id[1:]}"
    assert [p.name for p in (tmp_path / "run" / "teacher-scores").iterdir()] == ["unlabelled.bm25.jsonl"]


def test_init_adapter_continues_a_saved_adapter(tmp_path, tiny_model_dir, icr_file):
    from safetensors.torch import load_file

    from blockrank.errors import ConfigError
    from blockrank.train.training import Trainer, load_config

    base = [
        f"model={tiny_model_dir}",
        "layer=1",
        "max_steps=2",
        "grad_accum=1",
        "lora.r=4",
        "lora.dropout=0",
        "block_tokens=16",
        "lm_weight=0",
        "aux_weight=1",
        "lr=1e-2",
    ]
    first = load_config(None, [*base, f"out_dir={tmp_path / 'a'}"])
    first.data = [ICRSource(str(icr_file))]
    saved = load_file(Trainer(first).train() / "adapter_model.safetensors")
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in saved.items())  # B starts at zero

    second = load_config(None, [*base, f"out_dir={tmp_path / 'b'}", f"init_adapter={tmp_path / 'a' / 'final'}"])
    second.data = first.data
    trainer = Trainer(second)
    model = trainer.accelerator.unwrap_model(trainer.model)
    state = {k.replace(".default", ""): v for k, v in model.state_dict().items() if "lora_" in k}
    assert state.keys() == saved.keys()
    assert all(torch.equal(state[k].to(torch.bfloat16), saved[k]) for k in saved)

    for bad, match in [("lora.r=8", "its r is 4"), (f"init_adapter={tmp_path}", "not a LoRA adapter directory")]:
        cfg = load_config(None, [*base, f"out_dir={tmp_path / 'c'}", f"init_adapter={tmp_path / 'a' / 'final'}", bad])
        cfg.data = first.data
        with pytest.raises(ConfigError, match=match):
            Trainer(cfg)


def test_unlabelled_source_needs_a_teacher(tmp_path, tiny_model_dir):
    from blockrank.train.training import Trainer, load_config

    path = tmp_path / "u.jsonl"
    path.write_text(json.dumps({"qid": "u", "query": "q", "candidates": [{"docid": "a", "text": "x"}]}) + "\n")
    cfg = load_config(None, [f"model={tiny_model_dir}", f"out_dir={tmp_path / 'run'}", "layer=1"])
    cfg.data = [CandidatesSource(str(path))]
    with pytest.raises(ValueError, match="need a teacher"):
        Trainer(cfg)
    cfg.teacher = None
    cfg.kd_weight = 1.0
    with pytest.raises(ValueError, match="kd_weight > 0 needs a teacher"):
        Trainer(cfg)


def test_graded_sources_use_their_own_relevance_threshold(tmp_path):
    """ANTIQUE-style grades 1-4 (relevant >= 3) and WikiQA-style lists with no answer (skipped, counted)."""
    from blockrank.train.sources import build_examples
    from blockrank.train.training import load_config

    path = tmp_path / "graded.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "qid": q,
                    "query": f"question {q}",
                    "candidates": [{"docid": f"{q}_{j}", "rank": j + 1, "score": 0.0, "text": f"answer {j}"} for j in range(4)],
                }
            )
            + "\n"
            for q in ("a", "b")
        )
    )
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("a 0 a_0 4\na 0 a_1 2\na 0 a_2 3\nb 0 b_0 1\n")
    cfg = load_config(None, ["n_docs=4"])
    with pytest.warns(UserWarning, match="1 of 2 queries have no positive"):
        (ex,) = build_examples([CandidatesSource(str(path), qrels=str(qrels), min_grade=3)], cfg.n_docs, 0)
    assert sorted(ex.documents[i].id for i in ex.positives) == ["a_0", "a_2"]


def test_dry_run_counts_examples_per_source(tmp_path, icr_file, capsys):
    from blockrank.cli import main

    assert main(["train", "--dry-run", f"data=[{{type: icr, path: {icr_file}}}, {{type: icr, path: {icr_file}}}]"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["examples"] for r in rows] == [6, 6] and rows[0]["source"]["type"] == "icr"


def test_title_queries_never_use_held_out_judged_documents():
    from blockrank.train.examples import pools_from_titles

    corpus = {f"d{i}": Document(f"d{i}", f"text {i} about things", f"Title {i} words") for i in range(6)}
    pools = pools_from_titles(corpus, n=6, exclude={"d1", "d4"}, top_k=3)
    assert sorted(p.positives[0].id for p in pools) == ["d0", "d2", "d3", "d5"]
    assert not {d.id for p in pools for d in p.negatives} & {"d1", "d4"}  # not as negatives either


def test_beir_training_pools_leave_out_test_judged_documents(tmp_path):
    """SciFact judges some abstracts for train and test queries alike: a train source must use neither them as
    positives nor any test-judged abstract as a negative, or training sees the report set's judged passages."""
    texts = {
        "d0": "glacier caves form in ice",
        "d1": "glacier ice melts into caves",
        "d2": "caves of glacier ice",
        "d3": "penguins live on ice",
        "d4": "volcano lava",
        "d5": "stock market",
    }
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in texts.items())
    )
    (tmp_path / "queries.jsonl").write_text(
        json.dumps({"_id": "a", "text": "glacier caves"}) + "\n" + json.dumps({"_id": "b", "text": "penguins"}) + "\n"
    )
    header = "query-id\tcorpus-id\tscore\n"
    (tmp_path / "qrels" / "train.tsv").write_text(header + "a\td0\t1\na\td1\t1\nb\td2\t1\n")
    (tmp_path / "qrels" / "test.tsv").write_text(header + "t\td1\t1\nt\td2\t1\n")
    with pytest.warns(UserWarning, match="1 of 2 queries have no positive"):  # b's only positive is test-judged
        pools = BeirSource(str(tmp_path), top_k=5).pools(0, 0)
    assert [p.query_id for p in pools] == ["a"] and [d.id for d in pools[0].positives] == ["d0"]
    assert not {d.id for d in pools[0].negatives} & {"d1", "d2"}
