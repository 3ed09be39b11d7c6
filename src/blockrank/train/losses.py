"""BlockRank's training objective: ``L = w_lm * L_lm + lambda * L_aux + w_kd * L_kd``.

``L_lm`` is next-token cross-entropy on the answer tokens only (``3, 7]`` after the ``[`` opener).
``L_aux`` is a multi-positive InfoNCE over documents, ``-log(sum_pos exp(s_j) / sum_all exp(s_j))``, whose
logits ``s`` come from the signal tokens' layer-l* attention mass per document (see
:func:`blockrank.kernel.scoring.document_mass`): ``mass / tau`` ("linear") or ``log(mass) / tau`` ("log").
``L_kd`` distils a teacher's ranking listwise: ``KL(softmax(t / T_t) || softmax(s))`` over the same documents.
With ``w_lm = 0`` the forward stops at l* (aux-only training): no logits are needed.

Why two forms: the masses sum to 1, so linear logits span at most ``1 / tau`` in all and cannot give many
documents large gaps, and a document's gradient shrinks with its mass. Log logits have neither limit; at
``tau = 1`` their softmax is the mass itself. Trained side by side, the two rank alike (docs/results.md,
"The loss-form lever"), so recipes keep the linear default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from blockrank.kernel.scoring import document_mass


def lm_loss(logits: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``answer [A]`` given ``logits [A + 1 or more, V]`` whose last ``A + 1`` rows
    end at the final answer token (the row before each answer token predicts it)."""
    if answer.numel() == 0:
        raise ValueError("the answer is empty")
    predicting = logits[-answer.numel() - 1 : -1]
    return F.cross_entropy(predicting.float(), answer.to(predicting.device))


MassLogits = Literal["linear", "log"]
MASS_LOGITS: tuple[str, ...] = get_args(MassLogits)


def document_logits(mass: torch.Tensor, temperature: float, form: MassLogits = "linear") -> torch.Tensor:
    """The student's per-document logits ``[N]`` from attention mass ``[N]``: ``mass / tau`` or ``log(mass) / tau``."""
    if form == "linear":
        return mass.float() / temperature
    if form == "log":
        return mass.float().clamp_min(1e-30).log() / temperature  # a mass that underflowed to 0 gets no gradient
    raise ValueError(f"mass logits {form!r} is not one of {', '.join(MASS_LOGITS)}")


def aux_loss(logits: torch.Tensor, positives: Sequence[int]) -> torch.Tensor:
    """Multi-positive InfoNCE over per-document logits ``[N]``."""
    if not positives:
        raise ValueError("the auxiliary loss needs at least one positive document")
    if any(not 0 <= p < logits.numel() for p in positives):
        raise ValueError(f"positive ids {list(positives)} out of range for {logits.numel()} documents")
    idx = torch.as_tensor(list(positives), device=logits.device)
    return torch.logsumexp(logits, 0) - torch.logsumexp(logits[idx], 0)


def distill_loss(logits: torch.Tensor, teacher: Sequence[float] | torch.Tensor, teacher_temperature: float) -> torch.Tensor:
    """Listwise KL from the teacher's softmax over documents to the student's, ``[N]`` each."""
    t = torch.as_tensor(teacher, dtype=torch.float32, device=logits.device)
    if t.shape != logits.shape:
        raise ValueError(f"{t.numel()} teacher scores for {logits.numel()} documents")
    target = torch.log_softmax(t / teacher_temperature, 0)
    return torch.sum(target.exp() * (target - torch.log_softmax(logits, 0)))


@dataclass
class LossParts:
    loss: torch.Tensor
    lm: torch.Tensor
    aux: torch.Tensor
    kd: torch.Tensor
    top1: bool  # is the document with the most attention mass a positive? (the teacher's top one if unlabelled)


@dataclass
class LossWeights:
    lm: float = 1.0
    aux: float = 0.1
    kd: float = 0.0
    temperature: float = 0.05  # tau, on the student's attention mass
    teacher_temperature: float = 1.0
    mass_logits: MassLogits = "linear"


def blockrank_loss(
    logits: torch.Tensor | None,
    answer: torch.Tensor | None,
    probe_logits: torch.Tensor,
    doc_of_token: torch.Tensor,
    num_docs: int,
    positives: Sequence[int],
    weights: LossWeights,
    teacher: Sequence[float] | None = None,
) -> LossParts:
    """The combined objective for one example. A term whose weight is 0, or whose labels the example
    lacks (no positives, no teacher scores), is left out."""
    mass = document_mass(probe_logits, doc_of_token.to(probe_logits.device), num_docs)
    s = document_logits(mass, weights.temperature, weights.mass_logits)
    zero = mass.new_zeros(())
    lm = lm_loss(logits, answer) if weights.lm else zero
    aux = aux_loss(s, positives) if weights.aux and positives else zero
    kd = distill_loss(s, teacher, weights.teacher_temperature) if weights.kd and teacher is not None else zero
    best = set(positives) if positives else {max(range(num_docs), key=lambda i: teacher[i])} if teacher else set()
    total = weights.lm * lm + weights.aux * aux + weights.kd * kd
    return LossParts(total, lm.detach(), aux.detach(), kd.detach(), int(mass.argmax()) in best)
