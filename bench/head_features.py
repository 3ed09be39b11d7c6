"""Per-layer, per-head attention mass of the signal tokens toward each document, for layers 0..l*.

The shipped score averages layer l*'s heads. This dumps what every head of every layer up to l* gives each
document, from the same document-major pass (no layer above l* runs), so that head selections and weightings
can be compared without rerunning the model:

    python bench/head_features.py MODEL LISTS.jsonl OUT.pt [--top-k 100] [--block-tokens 64] [--threads 1]

LISTS is a candidate-list JSONL (qid, query, documents) or a BEIR directory (BM25 top-k computed here).
OUT holds {qid: {"docids": [...], "mass": float16 [layers, heads, N]}}; an existing OUT is resumed.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from blockrank import Reranker
from blockrank.eval import load_eval_set
from blockrank.kernel import document_mass, grouped, signal_logits


@dataclass
class HeadPass(grouped.GroupedPass):
    """The document-major pass, also keeping the signal tokens' document logits at every layer below l*."""

    layers: list[torch.Tensor] = field(default_factory=list)

    def attend(self, module, q, k, v, scaling):
        i = module.layer_idx
        if self.phase == "tail" and i < self.layer:
            self.layers.append(signal_logits(q[0, :, self.signal], torch.cat(self.doc_k[i], dim=1), scaling))
        return super().attend(module, q, k, v, scaling)


def per_head_mass(logits: torch.Tensor, doc_of_token: torch.Tensor, n: int) -> torch.Tensor:
    """``[heads, signal, T]`` logits -> ``[heads, N]``: each head's own :func:`document_mass`."""
    return torch.stack([document_mass(head[None], doc_of_token, n) for head in logits])


def save(done: dict, out: Path) -> None:
    """Replace ``out`` all at once, so that a kill leaves a dump to resume from."""
    torch.save(done, str(out) + ".tmp")
    os.replace(str(out) + ".tmp", out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("lists")
    p.add_argument("out")
    p.add_argument("--qrels")
    p.add_argument("--top-k", type=int, default=100)
    p.add_argument("--block-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    done: dict = torch.load(out) if out.exists() else {}
    rr = Reranker.from_pretrained(
        None if a.model == "default" else a.model, dtype="bf16", calibrated=False, block_tokens=a.block_tokens, split=False
    )
    if a.qrels or Path(a.lists).is_dir():
        candidates = load_eval_set(a.lists, a.qrels, top_k=a.top_k).candidates
    else:
        from blockrank.eval import read_candidates

        candidates = read_candidates(a.lists)
    captured: list[HeadPass] = []

    def make(*args, **kwargs):
        state = HeadPass(*args, **kwargs)
        captured.append(state)
        return state

    grouped.GroupedPass = make  # type: ignore[misc,assignment]
    for n, c in enumerate(candidates):
        if c.qid in done:
            continue
        docs = c.documents[: a.top_k]
        blocks = rr.prompt(c.query, docs)
        captured.clear()
        logits, doc_of_token, _ = grouped.grouped_scores(rr.model, blocks, rr.layer, rr.batch_tokens, rr.tail_position)
        state = captured[0]
        mass = torch.stack([per_head_mass(x, doc_of_token, len(docs)) for x in [*state.layers, logits]])
        done[c.qid] = {"docids": [d.id for d in docs], "mass": mass.half()}
        if n % 20 == 19:
            save(done, out)
            print(f"{n + 1}/{len(candidates)}", file=sys.stderr, flush=True)
    save(done, out)


if __name__ == "__main__":
    main()
