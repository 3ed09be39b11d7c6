"""blockrank.train.export: a checkpoint of a training run as a model that loads on its own."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from blockrank.cli import main
from blockrank.errors import ConfigError
from blockrank.model import load_model


def test_checkpoint_exports_to_a_loadable_bf16_model(tmp_path, tiny_model_dir):
    run = tmp_path / "run"
    ckpt = run / "checkpoint-30"
    ckpt.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": str(tiny_model_dir), "layer": 1, "block_tokens": 16}))
    (ckpt / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    weights = load_file(tiny_model_dir / "model.safetensors")
    save_file({k: v.float() for k, v in weights.items()}, ckpt / "model.safetensors")
    torch.save({"step": 30}, ckpt / "trainer_state.pt")

    assert main(["export", str(ckpt), str(tmp_path / "out"), "--note", "stopped early"]) == 0
    out = tmp_path / "out"
    assert json.loads((out / "blockrank.json").read_text()) == {
        "layer": 1,
        "block_tokens": 16,
        "base_model": str(tiny_model_dir),
        "prompt_version": 1,
        "steps": 30,
        "note": "stopped early",
    }
    assert {v.dtype for v in load_file(out / "model.safetensors").values()} == {torch.bfloat16}
    assert not (out / "trainer_state.pt").exists()
    assert load_model(str(out)).settings.layer == 1


def test_not_a_checkpoint_is_named(tmp_path):
    (tmp_path / "checkpoint-3").mkdir()
    with pytest.raises(ConfigError, match="not a checkpoint of a blockrank train run"):
        from blockrank.train.export import export_checkpoint

        export_checkpoint(tmp_path / "checkpoint-3", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_run_config_without_its_layer_is_named(tmp_path):
    from blockrank.train.export import export_checkpoint

    ckpt = tmp_path / "run" / "checkpoint-3"
    ckpt.mkdir(parents=True)
    (tmp_path / "run" / "config.json").write_text(json.dumps({"model": "m", "layer": None, "block_tokens": 16}))
    save_file({"w": torch.zeros(2)}, ckpt / "adapter_model.safetensors")
    with pytest.raises(ConfigError, match="does not record the layer"):
        export_checkpoint(ckpt, tmp_path / "out")
