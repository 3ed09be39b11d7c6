"""Score fusion: a weighted mean of z-normalised scores, per list.

Z-normalising within a list makes fusion scale-free, so BM25 scores, SPLADE++ scores, cosines and attention
logits mix fairly. The teachers fuse their members with it (``given+mpnet``), and :meth:`Reranker.rerank
<blockrank.reranker.Reranker.rerank>` fuses a caller's first-stage scores with BlockRank's own when given them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .errors import InputError


def fuse(per_member: Sequence[Sequence[float]], weights: Sequence[float] | None = None) -> list[float]:
    """The weighted mean (default: equal weights) of each member's scores for one list, z-normalised within the
    list; a one-document list gives 0."""
    stacked = torch.tensor(per_member, dtype=torch.float64)
    if stacked.shape[1] < 2:
        return [0.0] * stacked.shape[1]
    z = (stacked - stacked.mean(1, keepdim=True)) / stacked.std(1, unbiased=False, keepdim=True).clamp_min(1e-6)
    if weights is None:
        return z.mean(0).tolist()
    return (torch.tensor(weights, dtype=torch.float64)[:, None] * z).sum(0).tolist()


def check_first_stage(first_stage: Sequence[float] | torch.Tensor, n_docs: int, weight: float) -> list[float]:
    """The caller's first-stage scores (a list, array or tensor) as floats, refused with a clear error if they
    cannot be fused with ``n_docs`` documents at ``weight``."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise InputError(f"first_stage_weight must be a number in [0, 1], got {weight!r}")
    try:
        scores = torch.as_tensor(first_stage, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise InputError("first_stage must be numbers, one score per document") from None
    if scores.ndim != 1 or len(scores) != n_docs:
        raise InputError(f"first_stage has shape {tuple(scores.shape)}; give one score per document ({n_docs})")
    if not torch.isfinite(scores).all():
        raise InputError(f"first_stage[{int((~torch.isfinite(scores)).nonzero()[0])}] is not a finite number")
    return scores.tolist()


def fuse_first_stage(first_stage: Sequence[float], own: Sequence[float], weight: float, log_mass: bool = True) -> list[float]:
    """The first stage's scores fused with BlockRank's own, the first stage weighted ``weight``. ``own`` is
    attention mass, read as log mass (``log_mass``), or decode mode's rank scores, read as they are."""
    mine = torch.tensor(own, dtype=torch.float64)
    if log_mass:
        mine = mine.clamp_min(1e-300).log()
    return fuse([first_stage, mine.tolist()], [weight, 1 - weight])
