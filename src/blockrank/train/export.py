"""A training checkpoint as a model that loads on its own, like the ``final`` directory a finished run writes.

Checkpoints are for resuming: fp32 weights beside the optimizer state, and no scoring settings, so a reranker
loaded from one falls back to default layer and block length. Exporting one keeps the weights (LoRA adapter or
full model, which also gets its base's tokenizer) in bf16 and adds ``blockrank.json`` from the run's ``config.json``:

    blockrank export runs/NAME/checkpoint-175 adapters/NAME-175 [--note "stopped at step 175 of 240"]
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from blockrank.errors import ConfigError
from blockrank.files import atomic_directory
from blockrank.settings import ModelSettings

WEIGHTS = ("adapter_model.safetensors", "model.safetensors")
CONFIGS = ("adapter_config.json", "config.json")


def trained_settings(run_config: dict[str, Any], steps: int, note: str | None = None) -> ModelSettings:
    """The settings of weights trained under ``run_config`` (a run's ``config.json``) for ``steps`` steps."""
    recipe = {k: v for k, v in run_config.items() if k in ("layer", "block_tokens", "max_doc_tokens")}  # 0.6 runs wrote the last
    provenance = {"steps": steps} | ({"note": note} if note else {})
    return ModelSettings.from_json(recipe | {"base_model": run_config["model"]} | provenance, "the run's config.json")


def export_checkpoint(checkpoint: Path, out: Path, note: str | None = None) -> Path:
    """Write ``checkpoint``'s weights in bf16, its model/adapter config and ``blockrank.json`` to ``out``."""
    run_config = checkpoint.parent / "config.json"
    weights = next((checkpoint / w for w in WEIGHTS if (checkpoint / w).is_file()), None)
    if weights is None or not run_config.is_file():
        raise ConfigError(
            f"{checkpoint} is not a checkpoint of a blockrank train run: it needs one of "
            f"{', '.join(WEIGHTS)} and the run's config.json beside it"
        )
    try:
        steps = int(checkpoint.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        raise ConfigError(f"{checkpoint.name!r} is not named checkpoint-STEP") from None
    recipe = json.loads(run_config.read_text())
    if recipe.get("layer") is None:
        raise ConfigError(
            f"{run_config} does not record the layer l* its run trained (the recipe left it to the "
            'model, and the run predates recording it): add "layer" to that file, then export again'
        )
    settings = trained_settings(recipe, steps, note)
    tensors = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in load_file(weights).items()}
    with atomic_directory(out) as tmp:
        for name in CONFIGS:
            if (checkpoint / name).is_file():
                shutil.copy2(checkpoint / name, tmp / name)
        save_file(tensors, tmp / weights.name, metadata={"format": "pt"})
        if weights.name == "model.safetensors":  # a full model loads its tokenizer from its own directory
            from transformers import AutoTokenizer

            from blockrank.model import resolve

            AutoTokenizer.from_pretrained(resolve(recipe["model"])[0]).save_pretrained(tmp)
        settings.save(tmp)
    return out
