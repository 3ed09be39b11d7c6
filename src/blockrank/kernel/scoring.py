"""Scoring documents: attention mass at layer l* (no decoding) or a decoded answer list."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache, PreTrainedModel

from blockrank.errors import InputError
from blockrank.kernel.attention import BATCH_TOKENS, BlockLayout, LayerProbe, Mode, StopForward, dense_mask, pack
from blockrank.kernel.grouped import grouped_scores
from blockrank.prompt import PromptBlocks


class Cancelled(Exception):
    """The caller's cancel event was set: the forward stopped at a layer boundary."""


@contextmanager
def cancellable(model: PreTrainedModel, cancel: threading.Event | None) -> Iterator[None]:
    """While inside, every decoder layer first checks ``cancel`` and raises :class:`Cancelled` if it is set.

    Only forwards on this thread are affected, so other threads sharing the model run on.
    """
    if cancel is None:
        yield
        return
    if cancel.is_set():
        raise Cancelled
    owner = threading.get_ident()

    def check(module, args):
        if cancel.is_set() and threading.get_ident() == owner:
            raise Cancelled

    hooks = [layer.register_forward_pre_hook(check, prepend=True) for layer in model.get_decoder().layers]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def document_mass(logits: torch.Tensor, doc_of_token: torch.Tensor, num_docs: int) -> torch.Tensor:
    """Per-document attention mass from signal-token logits ``[heads, signal, T_docs]``.

    Softmax over all document tokens, mean over heads and signal tokens, sum per document.
    The result sums to 1 over documents.
    """
    probs = torch.softmax(logits.float(), dim=-1).mean(dim=(0, 1))
    return torch.zeros(num_docs, dtype=probs.dtype, device=probs.device).index_add(0, doc_of_token, probs)


def forward_blocks(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    layout: BlockLayout,
    probe: LayerProbe | None = None,
    **kwargs,
):
    """Run ``model`` on a packed prompt under ``layout``; returns its output, or None if ``probe`` stopped it."""
    device = model.device
    layout = layout.to(device)
    if layout.mode == "reference":
        kwargs["attention_mask"] = dense_mask(layout, dtype=model.dtype).to(device)
    try:
        return model(
            input_ids.to(device),
            position_ids=layout.position_ids[None],
            block_layout=layout,
            block_probe=probe,
            **kwargs,
        )
    except StopForward:
        return None


def document_affinity(
    logits: torch.Tensor, doc_of_token: torch.Tensor, num_docs: int, prefix_logits: torch.Tensor
) -> torch.Tensor:
    """Per-document attention relative to block 0 ``[N]``: log of the mean over heads and signal tokens of
    ``sum(exp(logits of the document's tokens)) / sum(exp(logits of block 0's tokens))``.

    Within one head the ratio does not depend on the other documents' logits, so unlike ``mass`` it does not
    shrink as the list grows; calibration (:mod:`blockrank.calibration`) reads it.
    """
    logits, prefix = logits.float(), torch.logsumexp(prefix_logits.float(), -1, keepdim=True)  # [H, S, 1]
    shift = logits.amax(-1, keepdim=True)
    per_doc = torch.zeros(*logits.shape[:2], num_docs, dtype=logits.dtype, device=logits.device)
    per_doc.index_add_(2, doc_of_token, torch.exp(logits - shift))  # [H, S, N]
    relative = per_doc.clamp_min(1e-30).log() + shift - prefix
    return torch.logsumexp(relative.flatten(0, 1), 0) - math.log(relative.shape[0] * relative.shape[1])


@dataclass(frozen=True)
class AttentionReadout:
    """What the probe at layer l* gives for one prompt.

    ``mass [N]``: each block's share of the signal tokens' attention over document tokens (sums to 1).
    ``affinity [N]``: each block's attention relative to block 0's (:func:`document_affinity`).
    """

    mass: torch.Tensor
    affinity: torch.Tensor


@torch.inference_mode()
def attention_readout(
    model: PreTrainedModel,
    blocks: PromptBlocks,
    layer: int,
    mode: Mode = "sparse",
    grouped: bool = True,
    batch_tokens: int = BATCH_TOKENS,
    tail_position: int | None = None,
) -> AttentionReadout:
    """Layer ``layer``'s attention readout for a prompt; layers above it never run.

    Sparse mode runs document-major (:mod:`blockrank.kernel.grouped`, groups of ``batch_tokens``); ``grouped=False``
    runs the same attention layer-major, as training does.
    """
    check_layer(model.config, layer)
    if mode == "sparse" and grouped:
        logits, doc_of_token, prefix_logits = grouped_scores(model, blocks, layer, batch_tokens, tail_position)
    else:
        input_ids, layout = pack(blocks, mode=mode, batch_tokens=batch_tokens, tail_position=tail_position)
        probe = LayerProbe(layer, stop=True)
        forward_blocks(model, input_ids, layout, probe)
        logits, doc_of_token, prefix_logits = probe.logits, layout.doc_of_token, probe.prefix_logits
    if logits is None or prefix_logits is None:
        raise RuntimeError(f"layer {layer} never ran: the model has fewer layers")
    doc_of_token = doc_of_token.to(logits.device)
    mass = document_mass(logits, doc_of_token, len(blocks.docs)).cpu()
    affinity = document_affinity(logits, doc_of_token, len(blocks.docs), prefix_logits).cpu()
    return AttentionReadout(mass, affinity)


def attention_scores(model: PreTrainedModel, blocks: PromptBlocks, layer: int, **options: Any) -> torch.Tensor:
    """Document scores ``[N]``: the list-normalised attention mass of :func:`attention_readout` (same ``options``)."""
    return attention_readout(model, blocks, layer, **options).mass


@torch.inference_mode()
def decode_answer(
    model: PreTrainedModel,
    tokenizer,
    blocks: PromptBlocks,
    mode: Mode = "sparse",
    max_new_tokens: int = 64,
    batch_tokens: int = BATCH_TOKENS,
    tail_position: int | None = None,
) -> str:
    """Greedily decode the answer list that follows the prompt's ``[`` opener (e.g. ``"3, 7]"``)."""
    input_ids, layout = pack(blocks, mode=mode, batch_tokens=batch_tokens, tail_position=tail_position)
    cache = DynamicCache(config=model.config)
    out = forward_blocks(model, input_ids, layout, past_key_values=cache, use_cache=True, logits_to_keep=1)
    position = int(layout.position_ids[-1]) + 1
    generated: list[int] = []
    for _ in range(max_new_tokens):
        token = int(out.logits[0, -1].argmax())
        if token == tokenizer.eos_token_id:
            break
        generated.append(token)
        if "]" in tokenizer.decode([token]):
            break
        out = model(
            torch.tensor([[token]], device=model.device),
            position_ids=torch.tensor([[position]], device=model.device),
            past_key_values=cache,
            use_cache=True,
        )
        position += 1
    return tokenizer.decode(generated, skip_special_tokens=True)


def parse_ranking(answer: str, num_docs: int) -> list[int]:
    """0-based document indices named in an answer like ``"3, 7, 1]"``, in order, deduplicated.

    Ids outside ``1..num_docs`` and anything after the closing bracket are ignored.
    """
    ranking: list[int] = []
    for match in re.findall(r"\d+", answer.split("]")[0]):
        i = int(match) - 1
        if 0 <= i < num_docs and i not in ranking:
            ranking.append(i)
    return ranking


def ranking_scores(ranking: list[int], num_docs: int) -> torch.Tensor:
    """Scores for a decoded ranking: named documents ``1 / (1 + rank)``, the rest 0."""
    scores = torch.zeros(num_docs)
    for rank, i in enumerate(ranking):
        scores[i] = 1.0 / (1 + rank)
    return scores


def check_layer(config, layer: int) -> None:
    """Raise :class:`InputError` unless ``layer`` is one of the model's layers."""
    if not 0 <= layer < config.num_hidden_layers:
        raise InputError(f"layer {layer} is outside the model's {config.num_hidden_layers} layers")
