"""Training throughput per configuration: examples/min, tokens/s and % of dense bf16 matmul GFLOP/s.

    python bench/train_speed.py                       # the default sweep, ~10 min on 2 cores
    python bench/train_speed.py --configs fp32-lm,bf16-aux --steps 4

Every configuration trains the same examples (SciFact train, BM25 negatives) of ``--n-docs`` documents x
``--block-tokens`` tokens, after one warm-up step. Model FLOPs per token are counted as 2 x params for
the forward plus 2 x params for the input gradients (the frozen base needs no weight gradients), over
the layers that run (up to l* for aux-only, all plus the LM head otherwise). Writes
``bench/results/train-speed.json``. Nothing else should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from blockrank.eval import machine_info, matmul_gflops, training_gflop_per_token
from blockrank.kernel import pack
from blockrank.train import BeirSource, LoraSettings, TrainConfig, Trainer

NO_DROPOUT = LoraSettings(dropout=0.0)  # LoRA dropout is an element-wise pass per adapted projection
# name -> overrides of the base config below
CONFIGS = {
    "fp32-lm": {},  # the shipped recipe: L_lm + L_aux, all layers, fp32
    "bf16-lm": {"bf16": True},
    "fp32-aux": {"lm_weight": 0.0},
    "bf16-aux": {"lm_weight": 0.0, "bf16": True},
    "bf16-aux-1thread": {"lm_weight": 0.0, "bf16": True, "threads": 1},
    "bf16-aux-nodrop": {"lm_weight": 0.0, "bf16": True, "lora": NO_DROPOUT},
    "bf16-aux-nodrop-l16": {"lm_weight": 0.0, "bf16": True, "lora": NO_DROPOUT, "layer": 16},
    "bf16-aux-nodrop-l12": {"lm_weight": 0.0, "bf16": True, "lora": NO_DROPOUT, "layer": 12},
    "bf16-aux-nodrop-l8": {"lm_weight": 0.0, "bf16": True, "lora": NO_DROPOUT, "layer": 8},
}


def measure(name: str, overrides: dict, args) -> dict:
    cfg = TrainConfig(
        model="SmolLM2-135M-Instruct",
        out_dir="/tmp/blockrank-train-speed",
        n_docs=args.n_docs,
        block_tokens=args.block_tokens,
        grad_accum=args.grad_accum,
        lr=1e-3,
        aux_weight=1.0,
        layer=20,
        max_steps=args.steps + 1,
        threads=2,
        data=[BeirSource(f"{args.data}/scifact", top_k=50, limit=(args.steps + 1) * args.grad_accum)],
    )
    for key, value in overrides.items():
        setattr(cfg, key, value)
    trainer = Trainer(cfg)
    examples = trainer.examples
    trainer.model.train()
    trainer.optimizer_step(examples[: cfg.grad_accum])  # warm-up
    used = examples[cfg.grad_accum : cfg.grad_accum * (args.steps + 1)]
    tokens = sum(pack(trainer.builder.build(ex.query, ex.documents))[0].numel() for ex in used)
    start = time.perf_counter()
    for i in range(0, len(used), cfg.grad_accum):
        trainer.optimizer_step(used[i : i + cfg.grad_accum])
    seconds = time.perf_counter() - start
    gflop = tokens * training_gflop_per_token(
        trainer.accelerator.unwrap_model(trainer.model).config, trainer.layer, not cfg.lm_weight
    )
    return {
        "config": name,
        "overrides": overrides,
        "examples": len(used),
        "seconds": seconds,
        "examples_per_min": 60 * len(used) / seconds,
        "tokens_per_s": tokens / seconds,
        "gflops": gflop / seconds,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--steps", type=int, default=3, help="timed optimizer steps per configuration")
    p.add_argument("--grad-accum", type=int, default=2)
    p.add_argument("--n-docs", type=int, default=12)
    p.add_argument("--block-tokens", type=int, default=64)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--out", default="bench/results/train-speed.json")
    args = p.parse_args()
    names = args.configs.split(",")
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        p.error(f"unknown configs {unknown}; choose from {', '.join(CONFIGS)}")
    torch.set_num_threads(2)
    ceiling = matmul_gflops(torch.bfloat16, torch.device("cpu"))
    rows = []
    for name in names:
        row = measure(name, CONFIGS[name], args)
        row["pct_of_bf16_matmul"] = 100 * row["gflops"] / ceiling
        rows.append(row)
        print(
            f"{name:18s} {row['examples_per_min']:7.2f} ex/min {row['tokens_per_s']:8.0f} tok/s "
            f"{row['gflops']:7.1f} GFLOP/s {row['pct_of_bf16_matmul']:5.1f}% of matmul",
            flush=True,
        )
    base = rows[0]["examples_per_min"]
    print(f"\n| config | examples/min | x {rows[0]['config']} | tokens/s | GFLOP/s | % of bf16 matmul ({ceiling:.0f} GFLOP/s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['config']} | {r['examples_per_min']:.2f} | {r['examples_per_min'] / base:.2f} | {r['tokens_per_s']:.0f} "
            f"| {r['gflops']:.1f} | {r['pct_of_bf16_matmul']:.1f} |"
        )
    report = {
        "machine": machine_info(torch.device("cpu")),
        "bf16_matmul_gflops": ceiling,
        "n_docs": args.n_docs,
        "block_tokens": args.block_tokens,
        "grad_accum": args.grad_accum,
        "command": "python bench/train_speed.py " + " ".join(sys.argv[1:]),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
