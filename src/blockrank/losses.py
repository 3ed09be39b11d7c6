"""BlockRank's training objective: ``L = L_lm + lambda * L_aux``.

``L_lm`` is next-token cross-entropy on the answer tokens only (``3, 7]`` after the ``[`` opener).
``L_aux`` is a multi-positive InfoNCE over documents whose logits are the signal tokens'
layer-l* attention mass per document (see :func:`blockrank.scoring.document_mass`) divided by a
temperature: ``-log(sum_pos exp(s_j) / sum_all exp(s_j))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .scoring import document_mass


def lm_loss(logits: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``answer [A]`` given ``logits [A + 1 or more, V]`` whose last ``A + 1`` rows
    end at the final answer token (the row before each answer token predicts it)."""
    if answer.numel() == 0:
        raise ValueError("the answer is empty")
    predicting = logits[-answer.numel() - 1 : -1]
    return F.cross_entropy(predicting.float(), answer.to(predicting.device))


def aux_loss(mass: torch.Tensor, positives: Sequence[int], temperature: float) -> torch.Tensor:
    """Multi-positive InfoNCE over per-document attention mass ``[N]``."""
    if not positives:
        raise ValueError("the auxiliary loss needs at least one positive document")
    if any(not 0 <= p < mass.numel() for p in positives):
        raise ValueError(f"positive ids {list(positives)} out of range for {mass.numel()} documents")
    s = mass.float() / temperature
    idx = torch.as_tensor(list(positives), device=s.device)
    return torch.logsumexp(s, 0) - torch.logsumexp(s[idx], 0)


@dataclass
class LossParts:
    loss: torch.Tensor
    lm: torch.Tensor
    aux: torch.Tensor
    top1: bool  # is the document with the most attention mass a positive?


def blockrank_loss(
    logits: torch.Tensor,
    answer: torch.Tensor,
    probe_logits: torch.Tensor,
    doc_of_token: torch.Tensor,
    num_docs: int,
    positives: Sequence[int],
    aux_weight: float = 0.1,
    temperature: float = 0.05,
) -> LossParts:
    """The combined objective for one example."""
    mass = document_mass(probe_logits, doc_of_token.to(probe_logits.device), num_docs)
    lm = lm_loss(logits, answer)
    aux = aux_loss(mass, positives, temperature)
    return LossParts(lm + aux_weight * aux, lm.detach(), aux.detach(), int(mass.argmax()) in set(positives))
