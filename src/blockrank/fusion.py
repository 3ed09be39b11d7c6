"""Score fusion for teachers: a weighted mean of z-normalised scores, per list, and the check of a caller's
first-stage scores.

Z-normalising within a list makes fusion scale-free, so BM25 scores, SPLADE++ scores and cosines mix fairly. The
teachers fuse their members with it (``given+mpnet``). The reranker's own use of first-stage scores is a fitted
feature of its calibrated score (:mod:`blockrank.calibration`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from blockrank.errors import InputError


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


def check_first_stage(first_stage: Sequence[float] | torch.Tensor, n_docs: int) -> list[float]:
    """The caller's first-stage scores (a list, array or tensor) as floats, refused with a clear error if they are
    not one finite number per document."""
    try:
        scores = torch.as_tensor(first_stage, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise InputError("first_stage must be numbers, one score per document") from None
    if scores.ndim != 1 or len(scores) != n_docs:
        raise InputError(f"first_stage has shape {tuple(scores.shape)}; give one score per document ({n_docs})")
    if not torch.isfinite(scores).all():
        raise InputError(f"first_stage[{int((~torch.isfinite(scores)).nonzero()[0])}] is not a finite number")
    return scores.tolist()
