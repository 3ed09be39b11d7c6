"""Calibrated scores: the probability that a document is relevant, comparable across queries and list sizes.

The attention mass at layer l* is normalised over the list, so it shrinks as the list grows. The readout's
logit ``log(mass) + log_scale`` (:class:`~blockrank.scoring.AttentionReadout`) measures a document against
block 0 instead, and a Platt sigmoid ``p = sigmoid(a * logit + b)`` fitted on judged dev lists turns it into a
probability. Within one list it is monotone in the mass, so the ranking is unchanged.

A calibration belongs to one model and layer; it is stored as ``calibration.json`` beside the adapter.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import CalibrationError
from .files import write_text_atomic

FILENAME = "calibration.json"


@dataclass(frozen=True)
class Calibration:
    """``sigmoid(a * logit + b)`` for readouts of ``model`` at ``layer``."""

    a: float
    b: float
    model: str  # the model's name, for people
    weights: str  # :func:`weights_fingerprint` of the model it was fitted for: what is checked
    layer: int
    fitted_on: list[str] = field(default_factory=list)  # the dev lists, for the record
    examples: int = 0  # judged (query, document) pairs the fit saw
    positives: int = 0

    def logit(self, readout_logits: torch.Tensor) -> torch.Tensor:
        """The calibrated log-odds of relevance."""
        return self.a * readout_logits + self.b

    def __call__(self, readout_logits: torch.Tensor) -> torch.Tensor:
        """The probability of relevance."""
        return torch.sigmoid(self.logit(readout_logits))

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
            cal = cls(**json.loads(path.read_text()))
            float(cal.a), float(cal.b)
        except (OSError, ValueError, TypeError) as e:
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


def find_calibration(settings: dict, model: str, layer: int, calibrated: bool | None) -> Calibration | None:
    """The calibration of a loaded model (``settings`` from :func:`~blockrank.model.load_model`), if one is wanted.

    ``calibrated=None`` uses it when the model has a matching one and otherwise warns and falls back to the raw
    scores; ``True`` requires it (:class:`CalibrationError` naming the model); ``False`` never loads it.
    """
    if calibrated is False:
        return None
    from .model import model_file

    source = settings.get("source")
    path = model_file(source, FILENAME) if source else None
    try:
        if source is None or path is None:
            raise CalibrationError(
                f"model {model!r} has no {FILENAME}: its scores are list-normalised attention mass. "
                "Fit one with `blockrank calibrate`, or pass calibrated=False"
            )
        return Calibration.load(path, model, weights_fingerprint(source), layer)
    except CalibrationError as e:
        if calibrated:
            raise
        if str(e) not in _warned:  # once per process and problem: loading the same model again stays quiet
            _warned.add(str(e))
            warnings.warn(str(e), CalibrationWarning, stacklevel=3)
        return None


_warned: set[str] = set()


class CalibrationWarning(UserWarning):
    """Scores fall back to the raw, list-normalised attention mass."""


def fit(
    logits: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, l2: float = 1e-3, steps: int = 100
) -> tuple[float, float]:
    """Platt scaling: ``(a, b)`` maximising the likelihood of ``labels`` (0/1) under ``sigmoid(a * x + b)``.

    Newton's method on two parameters with a small ridge on ``a`` (the problem is tiny and convex).
    """
    x, y = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise CalibrationError(f"need one label per logit, got {x.shape} and {y.shape}")
    if not 0 < y.sum() < len(y):
        raise CalibrationError(f"calibration needs relevant and non-relevant examples; got {int(y.sum())} of {len(y)}")
    X = np.stack([x, np.ones_like(x)], 1)
    w = np.array([1.0, float(np.log(y.mean() / (1 - y.mean())) - x.mean())])
    ridge = np.diag([l2 * len(x), 0.0])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(X @ w)))
        grad = X.T @ (p - y) + ridge @ w
        hess = X.T @ (X * (p * (1 - p))[:, None]) + ridge + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


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


def collect(
    reranker, candidates: list, qrels: dict[str, dict[str, int]], path: str | os.PathLike, depth: int | None = None
) -> list[dict]:
    """The readout of every list (its first ``depth`` candidates): ``{qid, ids, grades, log_mass, log_scale}``,
    grades ``None`` where unjudged. Rows are appended to the JSONL ``path`` one query at a time, so an interrupted
    run resumes; rows already there are read, not recomputed."""
    from .data import read_jsonl
    from .files import append_synced

    path = Path(path)
    done = {r["qid"]: r for r in read_jsonl(path)} if path.is_file() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for c in candidates:
            if c.qid in done:
                continue
            docs = c.documents[:depth]
            readout = reranker.readout(reranker.prompt(c.query, docs))
            judged = qrels.get(c.qid, {})
            done[c.qid] = {
                "qid": c.qid,
                "ids": [d.id for d in docs],
                "grades": [judged.get(d.id) for d in docs],
                "log_mass": readout.mass.double().log().tolist(),
                "log_scale": readout.log_scale,
            }
            append_synced(f, json.dumps(done[c.qid]) + "\n")
    return [done[c.qid] for c in candidates]


def judged_examples(rows: list[dict], rel: int) -> tuple[np.ndarray, np.ndarray]:
    """Readout logits and 0/1 labels (grade >= ``rel``) of the judged documents."""
    x, y = [], []
    for r in rows:
        for g, m in zip(r["grades"], r["log_mass"]):
            if g is not None:
                x.append(m + r["log_scale"])
                y.append(int(g >= rel))
    return np.array(x), np.array(y)


def calibrate(reranker, sets: list, cache: str | os.PathLike, model: str, source: str) -> Calibration:
    """Fit a calibration for ``reranker`` on judged dev ``sets`` (:class:`~blockrank.evaluation.EvalSet`, all with
    one relevance level); readouts are cached per set in ``cache`` (resumable). ``model`` names the model,
    ``source`` is where its weights are (:func:`weights_fingerprint`)."""
    rels = {s.rel for s in sets}
    if len(rels) != 1:
        raise CalibrationError(f"the dev sets count different grades as relevant ({sorted(rels)}): give --rel")
    rows = [r for s in sets for r in collect(reranker, s.candidates, s.qrels, Path(cache) / f"{s.name}.jsonl")]
    x, y = judged_examples(rows, rels.pop())
    a, b = fit(x, y)
    return Calibration(
        a=a,
        b=b,
        model=model,
        weights=weights_fingerprint(source),
        layer=reranker.layer,
        fitted_on=[f"{s.name} ({len(s.candidates)} queries)" for s in sets],
        examples=len(y),
        positives=int(y.sum()),
    )
