"""Calibrated scores: the readout logit, Platt fitting, the calibration file and how the reranker uses it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from factories import random_blocks, tiny_llama

from blockrank.calibration import (
    FILENAME,
    Calibration,
    CalibrationWarning,
    best_f1,
    expected_calibration_error,
    f1_at,
    fit,
    weights_fingerprint,
)
from blockrank.errors import CalibrationError
from blockrank.prompt import PromptBlocks
from blockrank.reranker import Reranker
from blockrank.scoring import attention_readout


def test_readout_logit_does_not_depend_on_the_other_documents():
    # At layer 0 with one head and one signal token the signal query cannot see the list, so the readout logit of
    # a document must be the same among 5 and among 50 documents, while its list-normalised mass shrinks.
    model = tiny_llama(layers=2, num_attention_heads=1, num_key_value_heads=1)
    many = random_blocks([5 + i % 7 for i in range(50)], seed=3)
    few = PromptBlocks(prefix=many.prefix, docs=many.docs[:5], tail=many.tail, n_signal=1)
    many = PromptBlocks(prefix=many.prefix, docs=many.docs, tail=many.tail, n_signal=1)
    for grouped in (True, False):
        a = attention_readout(model, few, 0, grouped=grouped, tail_position=100)
        b = attention_readout(model, many, 0, grouped=grouped, tail_position=100)
        torch.testing.assert_close(a.logits(), b.logits()[:5], atol=1e-5, rtol=1e-5)
        assert (a.mass / b.mass[:5]).min() > 3  # the raw score is not comparable across list sizes


@pytest.mark.parametrize("mode", ["reference", "causal"])
def test_readout_is_the_same_on_every_path(mode):
    model = tiny_llama(layers=3)
    blocks = random_blocks([9, 4, 12, 7, 3])
    grouped = attention_readout(model, blocks, 2, batch_tokens=16)
    layer_major = attention_readout(model, blocks, 2, grouped=False)
    torch.testing.assert_close(grouped.mass, layer_major.mass, atol=1e-6, rtol=1e-5)
    assert grouped.log_scale == pytest.approx(layer_major.log_scale, abs=1e-5)
    if mode == "reference":  # the reference mask gives the same numbers; causal attention is another model of the prompt
        reference = attention_readout(model, blocks, 2, mode="reference")
        torch.testing.assert_close(grouped.mass, reference.mass, atol=1e-5, rtol=1e-4)
        assert grouped.log_scale == pytest.approx(reference.log_scale, abs=1e-4)
    else:
        causal = attention_readout(model, blocks, 2, mode="causal")
        assert causal.mass.sum() == pytest.approx(1.0, abs=1e-5) and np.isfinite(causal.log_scale)


def test_fit_recovers_platt_parameters():
    rng = np.random.default_rng(0)
    x = rng.normal(size=20_000) * 2
    y = (rng.random(x.size) < 1 / (1 + np.exp(-(1.5 * x - 1.0)))).astype(int)
    a, b = fit(x, y)
    assert a == pytest.approx(1.5, abs=0.08) and b == pytest.approx(-1.0, abs=0.08)
    with pytest.raises(CalibrationError, match="relevant and non-relevant"):
        fit([0.1, 0.2], [1, 1])
    with pytest.raises(CalibrationError, match="one label per logit"):
        fit([0.1, 0.2], [1])


def test_threshold_measures():
    scores, labels = [0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0]
    assert best_f1(scores, labels) == (pytest.approx(0.8), 0.3)  # keep three: tp 2, kept 3, relevant 2
    assert f1_at(scores, labels, 0.85) == pytest.approx(2 / 3)
    assert f1_at(scores, labels, 1.0) == 0.0
    assert expected_calibration_error([0.25, 0.25, 0.75, 0.75], [0, 1, 1, 1]) == pytest.approx(0.25)
    assert expected_calibration_error([0.05, 0.95], [0, 1]) == pytest.approx(0.05)


def _calibration(path, layer: int) -> Calibration:
    return Calibration(a=1.0, b=2.0, model="tiny", weights=weights_fingerprint(path), layer=layer)


def test_calibration_file_round_trip_and_mismatches(tiny_model_dir, tmp_path):
    cal = _calibration(tiny_model_dir, 1)
    path = cal.save(tmp_path)
    assert path == tmp_path / FILENAME
    assert Calibration.load(path, "tiny", weights_fingerprint(tiny_model_dir), 1) == cal
    with pytest.raises(CalibrationError, match="model 'tiny' at layer 2"):
        Calibration.load(path, "tiny", weights_fingerprint(tiny_model_dir), 2)
    with pytest.raises(CalibrationError, match="other weights"):
        Calibration.load(path, "tiny", "0123456789abcdef", 1)
    path.write_text("{not json")
    with pytest.raises(CalibrationError, match="not a readable calibration for model 'tiny'"):
        Calibration.load(path, "tiny", "x", 1)


def test_reranker_scores_are_calibrated_probabilities_in_the_mass_order(tiny_model_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    docs = ["Paris is in France.", "Bananas are yellow.", "Rain is wet.", "The sky is blue today."]
    with pytest.warns(CalibrationWarning, match="has no calibration.json"):
        raw = Reranker.from_pretrained(model_dir, layer=1)
    with pytest.raises(CalibrationError, match="model 'model' has no calibration.json"):
        Reranker.from_pretrained(model_dir, layer=1, calibrated=True)

    _calibration(model_dir, 1).save(model_dir)
    calibrated = Reranker.from_pretrained(model_dir, layer=1)
    assert calibrated.calibration is not None
    got, want = calibrated.rerank("q", docs), raw.rerank("q", docs)
    assert [r.index for r in got] == [r.index for r in want]  # calibration keeps the ranking
    assert [r.mass for r in got] == pytest.approx([r.score for r in want])  # and the raw mass stays available
    readout = calibrated.readout(calibrated.prompt("q", docs))
    expected = torch.sigmoid(readout.logits() + 2.0)
    assert [r.score for r in got] == pytest.approx([float(expected[r.index]) for r in got])
    assert all(0 < r.score < 1 for r in got)
    assert Reranker.from_pretrained(model_dir, layer=1, calibrated=False).calibration is None

    with pytest.warns(CalibrationWarning, match="at layer 2"):  # fitted for layer 1: the raw scores, with a warning
        assert Reranker.from_pretrained(model_dir, layer=2).calibration is None
    with pytest.raises(CalibrationError, match="at layer 2"):
        Reranker.from_pretrained(model_dir, layer=2, calibrated=True)
    (model_dir / FILENAME).write_text(json.dumps({**json.loads((model_dir / FILENAME).read_text()), "weights": "other"}))
    with pytest.raises(CalibrationError, match="other weights"):
        Reranker.from_pretrained(model_dir, layer=1, calibrated=True)
