"""How closely can ``softmax(mass / tau)`` match a recipe's teacher targets, whatever the model does?

The masses of a list sum to 1, so linear logits span at most ``1 / tau``. For each sampled training list this finds,
by gradient descent over the simplex, the mass vector closest to the teacher's target and prints the mean of that
lowest KL by list size: the part of the logged distillation loss that no model can remove (log logits reach 0).

    python bench/mass_logit_floor.py configs/smollm2-synth-depth.yaml [--lists 120]
"""

from __future__ import annotations

import argparse
import random
import statistics

import torch

from blockrank.train import distill_loss, document_logits, examples_of, load_config


def lowest_kl(teacher: list[float], tau: float, teacher_temperature: float, steps: int = 1500) -> float:
    u = torch.zeros(len(teacher), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([u], lr=0.05)
    for _ in range(steps):
        kl = distill_loss(document_logits(torch.softmax(u, 0), tau), teacher, teacher_temperature)
        opt.zero_grad()
        kl.backward()
        opt.step()
    return float(kl.detach())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--lists", type=int, default=120, help="teacher-labelled lists sampled from the recipe")
    args = ap.parse_args()
    cfg = load_config(args.config)
    labelled = [ex for ex in examples_of(cfg) if ex.teacher is not None]
    random.Random(0).shuffle(labelled)
    rows = [(len(ex.teacher), lowest_kl(ex.teacher, cfg.temperature, cfg.teacher_temperature)) for ex in labelled[: args.lists]]
    print(f"tau {cfg.temperature}, teacher temperature {cfg.teacher_temperature}")
    print("| documents | lists | lowest KL, mean | max |\n|---|---|---|---|")
    for lo, hi in [(1, 40), (40, 1000)]:
        kls = [kl for n, kl in rows if lo <= n < hi]
        if kls:
            print(f"| {lo}-{hi - 1} | {len(kls)} | {statistics.mean(kls):.3f} | {max(kls):.3f} |")


if __name__ == "__main__":
    main()
