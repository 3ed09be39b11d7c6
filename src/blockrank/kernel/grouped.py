"""The document-major scoring pass: BlockRank's sparse attention, run group by group.

Documents never attend to each other, so each can go through layers 0..l* on its own. This pass runs
block 0 through those layers once, keeping its keys and values; then each group of documents (about
``group_tokens`` tokens, length-sorted, padded at the end) through all of them while the group's
activations are still in cache, keeping only each layer's document keys and values; then the last block
through the same layers, attending to block 0, every document and itself. At layer l* the signal tokens'
logits toward the document keys are the scores, and nothing above l* runs.

The layer-major path (``attention.py``: every layer over all tokens, then the next) computes exactly the
same attention; it stays for training (autograd) and decoding. This one is for inference: its working set
is one group's activations, not all N documents' (``bench/`` measures the difference).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from blockrank.kernel.attention import (
    BATCH_TOKENS,
    StopForward,
    attend,
    document_attention,
    first_tail_position,
    length_groups,
    signal_logits,
)
from blockrank.prompt import PromptBlocks


@dataclass
class GroupedPass:
    """What the attention function needs in each phase, and what it keeps between phases."""

    layer: int  # l*: the probe's layer, the last one run
    signal: slice  # the signal tokens within the last block
    phase: str = "prefix"  # "prefix" (block 0), "docs" (one group), "tail" (the last block)
    valid: torch.Tensor | None = None  # docs phase: [B, L], False on padding
    prefix_kv: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # per layer, [kv_h, L0, d]
    doc_k: list[list[torch.Tensor]] = field(default_factory=list)  # per layer, per group: [kv_h, tokens, d]
    doc_v: list[list[torch.Tensor]] = field(default_factory=list)
    prefix_k: torch.Tensor | None = None  # block 0's keys at l* [kv_h, L0, d]
    logits: torch.Tensor | None = None  # [heads, signal, T_docs], documents in group order
    prefix_logits: torch.Tensor | None = None  # [heads, signal, L0]

    def attend(self, module: torch.nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scaling: float) -> torch.Tensor:
        """Attention for ``q, k, v [B, heads, L, d]`` in the current phase; returns ``[B, L, heads, d]``."""
        i = module.layer_idx
        if self.phase == "prefix":
            if i == self.layer:
                self.prefix_k = k[0]  # the probe's reference: l*'s queries never run for block 0
                raise StopForward
            self.prefix_kv.append((k[0], v[0]))
            return attend(q, k, v, scaling).transpose(1, 2)
        if self.phase == "docs":
            keep = self.valid
            if len(self.doc_k) == i:
                self.doc_k.append([])
                self.doc_v.append([])
            self.doc_k[i].append(k.transpose(1, 2)[keep].transpose(0, 1))  # [kv_h, tokens, d]
            if i == self.layer:
                raise StopForward  # the probe needs only l*'s document keys
            self.doc_v[i].append(v.transpose(1, 2)[keep].transpose(0, 1))
            k0, v0 = self.prefix_kv[i]
            return document_attention(q, k, v, k0, v0, scaling).transpose(1, 2)  # padding sits after each document
        # tail: block 0, every document (in group order) and, causally, itself. The tail passes each layer once, so a
        # layer's document keys and values are let go as soon as they are joined: the peak holds one layer's copy.
        if i == self.layer:
            signal = q[0, :, self.signal]
            self.logits = signal_logits(signal, torch.cat(self.doc_k[i], dim=1), scaling)
            self.prefix_logits = signal_logits(signal, self.prefix_k, scaling)
            raise StopForward
        k0, v0 = self.prefix_kv[i]
        keys = torch.cat([k0, *self.doc_k[i], k[0]], dim=1)
        values = torch.cat([v0, *self.doc_v[i], v[0]], dim=1)
        self.doc_k[i], self.doc_v[i] = [], []
        return attend(q, keys[None], values[None], scaling).transpose(1, 2)


def _run_layers(model, ids: torch.Tensor, positions: torch.Tensor, state: GroupedPass) -> None:
    decoder = model.get_decoder()
    hidden = decoder.embed_tokens(ids)
    position_embeddings = decoder.rotary_emb(hidden, positions)
    try:
        for layer in decoder.layers[: state.layer + 1]:
            hidden = layer(hidden, position_ids=positions, position_embeddings=position_embeddings, block_pass=state)
    except StopForward:
        return


@torch.inference_mode()
def grouped_scores(
    model, blocks: PromptBlocks, layer: int, group_tokens: int = BATCH_TOKENS, tail_position: int | None = None
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    """Signal logits at ``layer`` toward document tokens ``[heads, signal, T_docs]``, the document of each of
    those tokens, and the signal logits toward block 0 ``[heads, signal, L0]`` (None if ``layer`` never ran)."""
    device = model.device
    end = len(blocks.tail)  # a training answer would follow the signal tokens
    state = GroupedPass(layer=layer, signal=slice(end - blocks.n_signal, end))
    L0, lengths = len(blocks.prefix), [len(d) for d in blocks.docs]
    if not blocks.docs or min(lengths) == 0:
        raise ValueError("every document block needs at least one token")
    _run_layers(model, torch.tensor([blocks.prefix], device=device), torch.arange(L0, device=device)[None], state)

    state.phase, doc_of_token = "docs", []
    for group in length_groups(lengths, group_tokens):
        width = lengths[group[0]]
        ids = torch.zeros(len(group), width, dtype=torch.long)
        for row, d in enumerate(group):
            ids[row, : lengths[d]] = torch.tensor(blocks.docs[d])
        state.valid = (torch.arange(width)[None, :] < torch.tensor([lengths[d] for d in group])[:, None]).to(device)
        positions = (L0 + torch.arange(width, device=device))[None].expand(len(group), -1)
        _run_layers(model, ids.to(device), positions, state)
        doc_of_token += [d for d in group for _ in range(lengths[d])]

    state.phase = "tail"
    tail = blocks.tail + blocks.answer
    start = first_tail_position(L0, max(lengths), tail_position)
    _run_layers(model, torch.tensor([tail], device=device), (start + torch.arange(len(tail), device=device))[None], state)
    return state.logits, torch.tensor(doc_of_token), state.prefix_logits
