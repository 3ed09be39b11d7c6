"""Average two LoRA adapters of the same shape, weight by weight (a two-model "soup").

Meant for a run continued from another: both start from the same weights, so the mean of their A and B
matrices lies between the two models. The shipped default is the mean of configs/smollm2-continue.yaml's
adapter and configs/smollm2-scifact.yaml's, which continued it:

    python bench/average_adapters.py adapters/smollm2-continue runs/smollm2-scifact/final runs/shipped [--weight 0.5]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from blockrank.data import atomic_directory
from blockrank.training import ADAPTER_SHAPE, adapter_shape_difference


def average(first: Path, second: Path, out: Path, weight: float = 0.5) -> None:
    """``out`` = (1 - weight) · ``first`` + weight · ``second``; recipe and tokenizer files come from ``second``."""
    configs = [json.loads((d / "adapter_config.json").read_text()) for d in (first, second)]
    if differs := adapter_shape_difference(*configs, keys=(*ADAPTER_SHAPE, "base_model_name_or_path")):
        raise SystemExit("the adapters differ in {}: {} vs {}".format(*differs))
    a, b = load_file(first / "adapter_model.safetensors"), load_file(second / "adapter_model.safetensors")
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise SystemExit("the adapters hold different weights")
    mean = {k: ((1 - weight) * a[k].float() + weight * b[k].float()).to(a[k].dtype) for k in a}
    with atomic_directory(out) as tmp:
        for f in second.iterdir():
            if f.is_file() and f.name not in ("adapter_model.safetensors", "blockrank.json"):
                shutil.copy2(f, tmp / f.name)
        save_file(mean, tmp / "adapter_model.safetensors", metadata={"format": "pt"})
        recipe = json.loads((second / "blockrank.json").read_text())
        (tmp / "blockrank.json").write_text(json.dumps(recipe | {"average_of": [str(first), str(second)],
                                                                  "weight": weight}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("first", type=Path)
    p.add_argument("second", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--weight", type=float, default=0.5, help="the second adapter's share")
    args = p.parse_args()
    average(args.first, args.second, args.out, args.weight)
    print(args.out)


if __name__ == "__main__":
    main()
