"""The returned score: the probability that a document is relevant to the query, given all the evidence the call has.

The evidence per document is the model's readout at layer l* (its attention relative to block 0,
:func:`~blockrank.kernel.scoring.document_affinity`, which does not shrink as the list grows), how many blocks the list
has, how long the document is, where the caller put it (the input order) and, when the caller gives them, the first
stage's scores. A logistic model over those features, fitted on judged training lists of every size with junk mixed
in (:mod:`blockrank.train.calibration_lists`), turns them into one probability. The ranking follows it, so scores and
order agree, and the same model with the order and first-stage features left out gives the model-only score.

The input order counts as far as it is trusted: fully when the caller says the list is ``"ranked"``, not at all
when ``"unordered"``, and under ``"auto"`` by how well it agrees with the model's own reading of the list
(Spearman's rho between input position and attention mass, scaled so that ``agreement`` counts fully). A shuffled
list agrees about as much as chance, so its order is ignored.

A calibration belongs to one model and layer; it is stored as ``calibration.json`` beside the adapter.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from blockrank.defaults import INPUT_ORDERS, InputOrder
from blockrank.errors import CalibrationError, InputError, warn_once
from blockrank.files import model_file, write_text_atomic

if TYPE_CHECKING:
    from blockrank.kernel.scoring import AttentionReadout
    from blockrank.prompt import PromptBlocks

FILENAME = "calibration.json"
FORMAT = 3  # 1: a Platt sigmoid of log mass + log_scale; 2: the input order trusted by rho alone, noise on short lists
# The features, in order. Model evidence first; "order" and "first_stage" are the caller's evidence.
FEATURES = ("affinity", "affinity_x_log_blocks", "log_blocks", "short", "order", "first_stage")
CALLER_FEATURES = ("order", "first_stage")
SHORT_TOKENS = 16  # documents shorter than this many tokens carry little: the "short" feature grows below it


@dataclass(frozen=True)
class Evidence:
    """What one reranking call knows about each of its ``N`` documents, in the caller's order.

    ``affinity`` and ``log_mass`` come from the readout (a document's best passage), ``blocks`` is the number of
    blocks in the prompt, ``lengths`` the documents' token counts, ``first_stage`` the caller's retriever scores
    (or None).
    """

    affinity: np.ndarray
    log_mass: np.ndarray
    blocks: int
    lengths: np.ndarray
    first_stage: np.ndarray | None = None

    @classmethod
    def of(cls, readout: AttentionReadout, blocks: PromptBlocks, first_stage: Sequence[float] | None = None) -> Evidence:
        """The evidence of a built prompt's per-document readout (:meth:`Reranker.readout
        <blockrank.reranker.Reranker.readout>`)."""
        return cls(
            affinity=readout.affinity.double().numpy(),
            log_mass=readout.mass.double().clamp_min(1e-300).log().numpy(),
            blocks=len(blocks.docs),
            lengths=np.array(blocks.lengths, dtype=np.float64),
            first_stage=None if first_stage is None else np.asarray(first_stage, dtype=np.float64),
        )


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))  # 1 / (1 + exp(-x)) without overflow


def agreement(log_mass: np.ndarray) -> float:
    """Spearman's rho between the input order (first is best) and the model's own order; 0 below 3 documents."""
    n = len(log_mass)
    if n < 3:
        return 0.0
    model_rank = np.argsort(np.argsort(-log_mass, kind="stable"), kind="stable")
    d = model_rank - np.arange(n)
    return float(1 - 6 * (d.astype(np.float64) ** 2).sum() / (n * (n * n - 1)))


def check_input_order(input_order: str) -> InputOrder:
    if input_order not in INPUT_ORDERS:
        raise InputError(f"input_order must be one of {', '.join(map(repr, INPUT_ORDERS))}, got {input_order!r}")
    return input_order  # type: ignore[return-value]


def order_trust(evidence: Evidence, input_order: InputOrder, full_agreement: float) -> float:
    """How much the input order counts, in [0, 1].

    Under ``"auto"`` it is the agreement's distance from chance: a random order's rho over ``n`` documents has
    standard deviation about ``1 / sqrt(n - 1)``, so rho 0.6 over 5 documents is as likely luck as 0.2 over 100
    is not. Agreement within one standard deviation of chance counts for nothing; ``full_agreement`` standard
    deviations beyond that, fully.
    """
    if input_order == "ranked":
        return 1.0
    if input_order == "unordered":
        return 0.0
    z = agreement(evidence.log_mass) * math.sqrt(max(len(evidence.log_mass) - 1, 0))
    return float(np.clip((z - 1.0) / full_agreement, 0.0, 1.0))


def features(evidence: Evidence, input_order: InputOrder, full_agreement: float) -> np.ndarray:
    """The feature matrix ``[N, len(FEATURES)]`` of one list."""
    n = len(evidence.affinity)
    log_blocks = math.log(evidence.blocks)
    trust = order_trust(evidence, input_order, full_agreement)
    first_stage = np.zeros(n)
    if evidence.first_stage is not None and n > 1 and evidence.first_stage.std() > 0:
        first_stage = (evidence.first_stage - evidence.first_stage.mean()) / evidence.first_stage.std()
    columns = {
        "affinity": evidence.affinity,
        "affinity_x_log_blocks": evidence.affinity * log_blocks,
        "log_blocks": np.full(n, log_blocks),
        "short": np.maximum(0.0, math.log(SHORT_TOKENS) - np.log(np.maximum(evidence.lengths, 1))),
        "order": -trust * np.log1p(np.arange(n)),
        "first_stage": first_stage,
    }
    return np.stack([np.asarray(columns[f], dtype=np.float64) for f in FEATURES], 1)


@dataclass(frozen=True)
class Calibration:
    """``sigmoid(coef . features + bias)`` for readouts of ``model`` at ``layer``."""

    coef: dict[str, float]
    bias: float
    full_agreement: float  # under "auto" the input order counts fully this many standard deviations past chance + 1
    model: str  # the model's name, for people
    weights: str  # :func:`weights_fingerprint` of the model it was fitted for: what is checked
    layer: int
    fitted_on: list[str] = field(default_factory=list)  # the training lists, for the record
    examples: int = 0  # judged (list, document) pairs the fit saw
    positives: int = 0
    format: int = FORMAT

    def log_odds(self, evidence: Evidence, input_order: InputOrder = "auto", model_only: bool = False) -> np.ndarray:
        """The log-odds of relevance per document; ``model_only`` leaves the caller's evidence out."""
        x = features(evidence, "unordered" if model_only else input_order, self.full_agreement)
        w = np.array([0.0 if model_only and f in CALLER_FEATURES else self.coef.get(f, 0.0) for f in FEATURES])
        return x @ w + self.bias

    def probability(self, evidence: Evidence, input_order: InputOrder = "auto", model_only: bool = False) -> np.ndarray:
        return sigmoid(self.log_odds(evidence, input_order, model_only))

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``calibration.json`` into ``path`` (a directory) or to ``path``, atomically."""
        path = Path(path)
        target = path / FILENAME if path.is_dir() else path
        write_text_atomic(target, json.dumps(asdict(self), indent=1) + "\n")
        return target

    @classmethod
    def load(cls, path: str | os.PathLike, model: str, weights: str, layer: int) -> Calibration:
        """Read a calibration and check that it was fitted for these ``weights`` at ``layer`` (``model`` names them)."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format', 1)}, this version reads format {FORMAT}: refit it")
            cal = cls(**raw)
            if set(cal.coef) - set(FEATURES) or not all(math.isfinite(float(v)) for v in [*cal.coef.values(), cal.bias]):
                raise ValueError(f"coef must hold finite numbers for features among {FEATURES}")
            if not cal.full_agreement > 0:
                raise ValueError("full_agreement must be positive")
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise CalibrationError(f"{path}: not a readable calibration for model {model!r} ({e})") from e
        if cal.weights != weights or cal.layer != layer:
            raise CalibrationError(
                f"{path} was fitted for other weights or another layer than model {model!r} at layer {layer} "
                f"(it names {cal.model!r}, layer {cal.layer}): refit it with `blockrank calibrate`, or pass "
                "calibrated=False for the raw, list-normalised scores"
            )
        return cal


def weights_fingerprint(source: str | os.PathLike) -> str:
    """What a calibration is tied to: sha256 (first 16 hex digits) of a model directory's weights file, or the
    hub id itself for a model that is not a local directory."""
    directory = Path(source)
    for name in ("adapter_model.safetensors", "model.safetensors", "pytorch_model.bin"):
        if (directory / name).is_file():
            h = hashlib.sha256()
            with open(directory / name, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            return h.hexdigest()[:16]
    return str(source)


def find_calibration(source: str | None, model: str, layer: int, calibrated: bool | None) -> Calibration | None:
    """The calibration of the model loaded from ``source`` (a directory or hub id), if one is wanted.

    ``calibrated=None`` uses it when the model has a matching one and otherwise warns and falls back to the raw
    scores; ``True`` requires it (:class:`CalibrationError` naming the model); ``False`` never loads it.
    """
    if calibrated is False:
        return None
    path = model_file(source, FILENAME) if source else None
    try:
        if source is None or path is None:
            raise CalibrationError(
                f"model {model!r} has no {FILENAME}: its scores are list-normalised attention mass and its ranking "
                "is the model's alone. Fit one with `blockrank calibrate`, or pass calibrated=False"
            )
        return Calibration.load(path, model, weights_fingerprint(source), layer)
    except CalibrationError as e:
        if calibrated:
            raise
        warn_once(str(e), CalibrationWarning, stacklevel=3)  # loading the same model again stays quiet
        return None


class CalibrationWarning(UserWarning):
    """Scores fall back to the raw, list-normalised attention mass."""


def fit(
    x: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    l2: float = 1e-3,
    steps: int = 100,
    offset: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Logistic regression: ``(w, b)`` maximising the likelihood of ``labels`` (0/1) under
    ``sigmoid(x @ w + b + offset)``; ``offset`` holds terms whose weights are fixed.

    Newton's method with a small ridge on ``w`` (the problem is small and convex).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    offset = np.zeros(len(y)) if offset is None else np.asarray(offset, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or y.shape != (len(x),):
        raise CalibrationError(f"need one label per row of features, got {x.shape} and {y.shape}")
    if not 0 < y.sum() < len(y):
        raise CalibrationError(f"calibration needs relevant and non-relevant examples; got {int(y.sum())} of {len(y)}")
    X = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(X.shape[1])
    w[-1] = math.log(y.mean() / (1 - y.mean()))
    ridge = np.diag([l2 * len(x)] * x.shape[1] + [0.0])
    for _ in range(steps):
        p = sigmoid(X @ w + offset)
        grad = X.T @ (p - y) + ridge @ w
        hess = X.T @ (X * (p * (1 - p))[:, None]) + ridge + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w[:-1], float(w[-1])


def expected_calibration_error(probs: Sequence[float], labels: Sequence[int], bins: int = 10) -> float:
    """ECE: the bin-weighted mean gap between predicted probability and observed frequency (equal-width bins)."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    return float(
        sum(abs(p[which == k].mean() - y[which == k].mean()) * (which == k).sum() for k in range(bins) if (which == k).any())
        / len(p)
    )


def best_f1(scores: Sequence[float], labels: Sequence[int]) -> tuple[float, float]:
    """The best F1 of ``score >= t`` over thresholds ``t`` and that threshold (``(0, inf)`` with no positives)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if not y.any():
        return 0.0, float("inf")
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(y[order])
    f1 = 2 * tp / (np.arange(1, len(s) + 1) + y.sum())
    k = int(f1.argmax())
    return float(f1[k]), float(s[order][k])


def f1_at(scores: Sequence[float], labels: Sequence[int], threshold: float) -> float:
    """F1 of ``score >= threshold`` (0 when nothing is relevant or nothing is kept)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    kept = s >= threshold
    tp = int((kept & (y == 1)).sum())
    return 0.0 if tp == 0 else 2 * tp / (int(kept.sum()) + int(y.sum()))
