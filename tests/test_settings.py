"""The settings contract (blockrank.json) and the renamed arguments."""

from __future__ import annotations

import json
import warnings

import pytest

from blockrank.errors import ConfigError
from blockrank.settings import FILENAME, ModelSettings


def test_settings_round_trip_and_keep_their_provenance(tmp_path):
    settings = ModelSettings(layer=3, block_tokens=48, base_model="base", provenance={"steps": 80, "note": "why"})
    settings.save(tmp_path)
    saved = json.loads((tmp_path / FILENAME).read_text())
    assert saved == {"layer": 3, "block_tokens": 48, "base_model": "base", "prompt_version": 1, "steps": 80, "note": "why"}
    loaded = ModelSettings.load(tmp_path)
    assert loaded == settings and loaded.provenance == settings.provenance and loaded.source == str(tmp_path)


def test_a_model_without_settings_gets_the_defaults(tmp_path):
    assert ModelSettings.load(tmp_path) == ModelSettings()


def test_the_0_6_spelling_still_loads(tmp_path):
    (tmp_path / FILENAME).write_text('{"layer": 2, "max_doc_tokens": 64, "base_model": "b", "steps": 5}')
    assert ModelSettings.load(tmp_path).block_tokens == 64


@pytest.mark.parametrize(
    "content, field",
    [
        ('{"layer": -1}', "'layer'"),
        ('{"layer": "20"}', "'layer'"),
        ('{"block_tokens": 0}', "'block_tokens'"),
        ('{"block_tokens": true}', "'block_tokens'"),
        ('{"base_model": 7}', "'base_model'"),
        ('{"prompt_version": 99}', "'prompt_version'"),
        ("[1, 2]", "JSON object"),
        ("{layer: 1}", "not valid JSON"),
    ],
)
def test_bad_settings_name_the_file_and_the_field(tmp_path, content, field):
    (tmp_path / FILENAME).write_text(content)
    with pytest.raises(ConfigError, match=field) as err:
        ModelSettings.load(tmp_path)
    assert str(tmp_path / FILENAME) in str(err.value)


def test_replace_ignores_none_and_drops_a_calibration_of_another_layer(tiny_model_dir):
    from factories import tiny_calibration

    cal = tiny_calibration(tiny_model_dir)
    settings = ModelSettings(layer=cal.layer, calibration=cal)
    assert settings.replace(layer=None, block_tokens=None) is not settings
    assert settings.replace(layer=None).calibration is cal
    assert settings.replace(layer=cal.layer + 1).calibration is None


def test_the_0_6_reranker_keywords_warn_once_and_still_work(tiny_model_dir):
    from blockrank import Reranker, load_model

    lm = load_model(tiny_model_dir, device="cpu")
    with pytest.warns(DeprecationWarning, match="settings.block_tokens"):
        old = Reranker(lm.model, lm.tokenizer, layer=1, max_doc_tokens=24, method="attention")
    new = Reranker(lm.model, lm.tokenizer, ModelSettings(layer=1, block_tokens=24))
    assert (old.layer, old.block_tokens, old.score_by) == (new.layer, new.block_tokens, new.score_by) == (1, 24, "attention")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Reranker(lm.model, lm.tokenizer, layer=1, max_doc_tokens=24)  # once per process: quiet now
    with pytest.raises(TypeError, match="layers"):
        Reranker(lm.model, lm.tokenizer, layers=1)


def test_the_0_6_spellings_of_the_cli_and_recipes_still_work(tmp_path):
    from blockrank.cli import build_parser
    from blockrank.train.training import load_config

    args = build_parser().parse_args(["rerank", "--demo", "--max-doc-tokens", "32", "--method", "decode"])
    assert (args.block_tokens, args.score_by) == (32, "decode")
    recipe = tmp_path / "old.yaml"
    recipe.write_text("max_doc_tokens: 48\n")
    with pytest.warns(DeprecationWarning, match="block_tokens"):
        assert load_config(recipe).block_tokens == 48


def test_a_calibration_must_match_the_layer_the_reranker_reads(tiny_model_dir):
    from factories import tiny_calibration

    from blockrank import Reranker, load_model
    from blockrank.errors import InputError

    lm = load_model(tiny_model_dir, device="cpu")
    cal = tiny_calibration(tiny_model_dir, layer=1)  # the tiny model's default layer is 2
    with pytest.raises(InputError, match="fitted at layer 1"):
        Reranker(lm.model, lm.tokenizer, ModelSettings(calibration=cal))
    settings = ModelSettings(layer=2).replace(layer=1, calibration=cal)  # both given: both kept
    assert Reranker(lm.model, lm.tokenizer, settings).calibration is cal


def test_from_pretrained_reads_the_0_6_block_length_keyword(tiny_model_dir):
    from blockrank import Reranker

    with warnings.catch_warnings():  # the warning is Reranker(max_doc_tokens=...)'s, given once per process
        warnings.simplefilter("ignore", DeprecationWarning)
        old = Reranker.from_pretrained(tiny_model_dir, device="cpu", max_doc_tokens=24, calibrated=False)
    assert old.block_tokens == 24
    assert Reranker.from_pretrained(tiny_model_dir, device="cpu", block_tokens=32, calibrated=False).block_tokens == 32
