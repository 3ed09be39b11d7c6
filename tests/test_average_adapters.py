"""blockrank.train.averaging: the weight-by-weight mean that made the shipped adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from blockrank.cli import main
from blockrank.errors import ConfigError
from blockrank.train.averaging import average_adapters


def adapter(path: Path, value: float, r: int = 4, targets=("q_proj", "v_proj")) -> Path:
    path.mkdir()
    (path / "adapter_config.json").write_text(
        json.dumps(
            {
                "r": r,
                "lora_alpha": 8,
                "target_modules": list(targets),
                "layers_to_transform": [0, 1],
                "base_model_name_or_path": "m",
            }
        )
    )
    (path / "blockrank.json").write_text(json.dumps({"layer": 1, "block_tokens": 16}))
    save_file(
        {
            "a.lora_A.weight": torch.full((r, 8), value, dtype=torch.bfloat16),
            "a.lora_B.weight": torch.full((8, r), -value, dtype=torch.bfloat16),
        },
        path / "adapter_model.safetensors",
    )
    return path


def test_mean_of_two_adapters(tmp_path):
    first, second = adapter(tmp_path / "a", 1.0), adapter(tmp_path / "b", 2.0, targets=("v_proj", "q_proj"))
    average_adapters(first, second, tmp_path / "out", weight=0.25)
    mean = load_file(tmp_path / "out" / "adapter_model.safetensors")
    assert torch.equal(mean["a.lora_A.weight"], torch.full((4, 8), 1.25, dtype=torch.bfloat16))
    assert torch.equal(mean["a.lora_B.weight"], torch.full((8, 4), -1.25, dtype=torch.bfloat16))
    recipe = json.loads((tmp_path / "out" / "blockrank.json").read_text())
    assert recipe["layer"] == 1 and recipe["weight"] == 0.25 and recipe["average_of"] == [str(first), str(second)]


def test_adapters_of_another_shape_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="differ in r"):
        average_adapters(adapter(tmp_path / "a", 1.0), adapter(tmp_path / "b", 2.0, r=8), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_average_command(tmp_path, capsys):
    first, second = adapter(tmp_path / "a", 1.0), adapter(tmp_path / "b", 3.0)
    assert main(["average", str(first), str(second), str(tmp_path / "out")]) == 0
    mean = load_file(tmp_path / "out" / "adapter_model.safetensors")
    assert torch.equal(mean["a.lora_A.weight"], torch.full((4, 8), 2.0, dtype=torch.bfloat16))
    assert main(["average", str(first), str(tmp_path / "missing"), str(tmp_path / "out2")]) != 0
    assert "not a LoRA adapter directory" in capsys.readouterr().err
