"""The weight-by-weight mean of two LoRA adapters of the same shape (a two-model "soup").

Meant for a run continued from another: both start from the same weights, so the mean of their A and B
matrices lies between the two models. The shipped default is the mean of configs/smollm2-continue.yaml's
adapter and configs/smollm2-scifact.yaml's, which continued it:

    blockrank average adapters/smollm2-continue runs/smollm2-scifact/final runs/shipped [--weight 0.5]
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from blockrank.errors import ConfigError
from blockrank.files import atomic_directory
from blockrank.settings import FILENAME, ModelSettings
from blockrank.train.training import ADAPTER_SHAPE, adapter_shape_difference


def average_adapters(first: Path, second: Path, out: Path, weight: float = 0.5) -> None:
    """``out`` = (1 - weight) · ``first`` + weight · ``second``; recipe and tokenizer files come from ``second``."""
    try:
        configs = [json.loads((d / "adapter_config.json").read_text()) for d in (first, second)]
        a, b = load_file(first / "adapter_model.safetensors"), load_file(second / "adapter_model.safetensors")
    except OSError as err:
        raise ConfigError(f"not a LoRA adapter directory: {err}") from None
    if differs := adapter_shape_difference(configs[0], configs[1], keys=(*ADAPTER_SHAPE, "base_model_name_or_path")):
        raise ConfigError("the adapters differ in {}: {} vs {}".format(*differs))
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise ConfigError(f"{first} and {second} hold different weights")
    mean = {k: ((1 - weight) * a[k].float() + weight * b[k].float()).to(a[k].dtype) for k in a}
    with atomic_directory(out) as tmp:
        for f in second.iterdir():
            if f.is_file() and f.name not in ("adapter_model.safetensors", FILENAME):
                shutil.copy2(f, tmp / f.name)
        save_file(mean, tmp / "adapter_model.safetensors", metadata={"format": "pt"})
        recipe = ModelSettings.load(second)
        averaged = {"average_of": [str(first), str(second)], "weight": weight}
        dataclasses.replace(recipe, provenance=recipe.provenance | averaged).save(tmp)
