"""Calibrated scores: the affinity readout, the features, the logistic fit, the calibration file and how the reranker
uses it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from factories import random_blocks, tiny_calibration, tiny_llama

from blockrank.calibration import (
    FEATURES,
    FILENAME,
    Calibration,
    CalibrationWarning,
    Evidence,
    best_f1,
    expected_calibration_error,
    f1_at,
    features,
    fit,
    weights_fingerprint,
)
from blockrank.errors import CalibrationError
from blockrank.kernel.scoring import attention_readout
from blockrank.prompt import PromptBlocks
from blockrank.reranker import Reranker


def test_affinity_does_not_depend_on_the_other_documents():
    # At layer 0 the signal query cannot see the list, so a document's attention relative to block 0 must be the
    # same among 5 and among 50 documents, while its list-normalised mass shrinks.
    model = tiny_llama(layers=2)
    many = random_blocks([5 + i % 7 for i in range(50)], seed=3)
    few = PromptBlocks(prefix=many.prefix, docs=many.docs[:5], tail=many.tail)
    for grouped in (True, False):
        a = attention_readout(model, few, 0, grouped=grouped, tail_position=100)
        b = attention_readout(model, many, 0, grouped=grouped, tail_position=100)
        torch.testing.assert_close(a.affinity, b.affinity[:5], atol=1e-4, rtol=1e-4)
        assert (a.mass / b.mass[:5]).min() > 3  # the raw score is not comparable across list sizes


@pytest.mark.parametrize("mode", ["reference", "causal"])
def test_readout_is_the_same_on_every_path(mode):
    model = tiny_llama(layers=3)
    blocks = random_blocks([9, 4, 12, 7, 3])
    grouped = attention_readout(model, blocks, 2, batch_tokens=16)
    layer_major = attention_readout(model, blocks, 2, grouped=False)
    torch.testing.assert_close(grouped.mass, layer_major.mass, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(grouped.affinity, layer_major.affinity, atol=1e-4, rtol=1e-5)
    if mode == "reference":  # the reference mask gives the same numbers; causal attention is another model of the prompt
        reference = attention_readout(model, blocks, 2, mode="reference")
        torch.testing.assert_close(grouped.mass, reference.mass, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(grouped.affinity, reference.affinity, atol=1e-3, rtol=1e-4)
    else:
        causal = attention_readout(model, blocks, 2, mode="causal")
        assert causal.mass.sum() == pytest.approx(1.0, abs=1e-5) and bool(torch.isfinite(causal.affinity).all())


def test_fit_recovers_logistic_parameters():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 2)) * 2
    offset = 0.5 * rng.normal(size=20_000)
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-(x @ [1.5, -0.7] - 1.0 + offset)))).astype(int)
    w, b = fit(x, y, offset=offset)
    assert w == pytest.approx([1.5, -0.7], abs=0.08) and b == pytest.approx(-1.0, abs=0.08)
    with pytest.raises(CalibrationError, match="relevant and non-relevant"):
        fit([0.1, 0.2], [1, 1])
    with pytest.raises(CalibrationError, match="one label per row"):
        fit([0.1, 0.2], [1])


def test_threshold_measures():
    scores, labels = [0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0]
    assert best_f1(scores, labels) == (pytest.approx(0.8), 0.3)  # keep three: tp 2, kept 3, relevant 2
    assert f1_at(scores, labels, 0.85) == pytest.approx(2 / 3)
    assert f1_at(scores, labels, 1.0) == 0.0
    assert expected_calibration_error([0.25, 0.25, 0.75, 0.75], [0, 1, 1, 1]) == pytest.approx(0.25)
    assert expected_calibration_error([0.05, 0.95], [0, 1]) == pytest.approx(0.05)


def test_features_of_a_list():
    evidence = Evidence(
        affinity=np.array([2.0, 1.0, 0.0]), log_mass=np.log([0.5, 0.3, 0.2]), blocks=4, lengths=np.array([40, 0, 4])
    )
    x = features(evidence, "ranked", full_agreement=0.3)
    column = dict(zip(FEATURES, x.T))
    assert column["affinity_x_log_blocks"] == pytest.approx([2 * np.log(4), np.log(4), 0])
    assert column["order"] == pytest.approx(-np.log1p([0, 1, 2]))
    assert column["short"] == pytest.approx([0, np.log(16), np.log(4)])  # empty counts as one token
    assert column["first_stage"] == pytest.approx([0, 0, 0])  # none given
    assert (features(evidence, "unordered", 0.3)[:, FEATURES.index("order")] == 0).all()
    assert (features(evidence, "auto", 0.3) == x).all()  # the model reads the list in its order: rho 1, full trust
    given = Evidence(**{**evidence.__dict__, "first_stage": np.array([1.0, 2.0, 3.0])})
    assert features(given, "auto", 0.3)[:, FEATURES.index("first_stage")] == pytest.approx([-1.2247, 0, 1.2247], abs=1e-4)


def _calibration(path, layer: int) -> Calibration:
    return tiny_calibration(path, layer, order=0.5)


def test_calibration_file_round_trip_and_mismatches(tiny_model_dir, tmp_path):
    cal = _calibration(tiny_model_dir, 1)
    path = cal.save(tmp_path)
    assert path == tmp_path / FILENAME
    assert Calibration.load(path, "tiny", weights_fingerprint(tiny_model_dir), 1) == cal
    with pytest.raises(CalibrationError, match="model 'tiny' at layer 2"):
        Calibration.load(path, "tiny", weights_fingerprint(tiny_model_dir), 2)
    with pytest.raises(CalibrationError, match="other weights"):
        Calibration.load(path, "tiny", "0123456789abcdef", 1)
    for body, message in [
        ("{not json", "not a readable calibration for model 'tiny'"),
        (json.dumps({"a": 1.0, "b": 2.0, "model": "tiny", "weights": "x", "layer": 1}), "format 1, .* refit it"),
        (json.dumps({**json.loads(path.read_text()), "coef": {"colour": 1.0}}), "coef must hold finite numbers"),
    ]:
        path.write_text(body)
        with pytest.raises(CalibrationError, match=message):
            Calibration.load(path, "tiny", "x", 1)


def test_reranker_scores_are_calibrated_probabilities(tiny_model_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    docs = ["Paris is in France.", "Bananas are yellow.", "Rain is wet.", "The sky is blue today."]
    with pytest.warns(CalibrationWarning, match="has no calibration.json"):
        raw = Reranker.from_pretrained(model_dir, layer=1)
    with pytest.raises(CalibrationError, match="model 'model' has no calibration.json"):
        Reranker.from_pretrained(model_dir, layer=1, calibrated=True)
    uncalibrated = raw.rerank("q", docs)
    assert [r.score for r in uncalibrated] == sorted(r.mass for r in uncalibrated)[::-1]  # the mass, and its order

    cal = _calibration(model_dir, 1)
    cal.save(model_dir)
    calibrated = Reranker.from_pretrained(model_dir, layer=1)
    assert calibrated.calibration == cal
    got = calibrated.rerank("q", docs)
    assert [r.score for r in got] == sorted((r.score for r in got), reverse=True) and all(0 < r.score < 1 for r in got)
    blocks = calibrated.prompt("q", docs)
    readout = calibrated.readout(blocks)
    evidence = Evidence(
        affinity=readout.affinity.double().numpy(),
        log_mass=readout.mass.double().log().numpy(),
        blocks=len(blocks.docs),
        lengths=np.array(blocks.lengths),
    )
    expected = cal.probability(evidence, "auto")
    assert [r.score for r in got] == pytest.approx([float(expected[r.index]) for r in got])
    assert [r.mass for r in got] == pytest.approx([float(readout.mass[r.index]) for r in got])
    assert Reranker.from_pretrained(model_dir, layer=1, calibrated=False).calibration is None

    with pytest.warns(CalibrationWarning, match="at layer 2"):  # fitted for layer 1: the raw scores, with a warning
        assert Reranker.from_pretrained(model_dir, layer=2).calibration is None
    with pytest.raises(CalibrationError, match="at layer 2"):
        Reranker.from_pretrained(model_dir, layer=2, calibrated=True)
    (model_dir / FILENAME).write_text(json.dumps({**json.loads((model_dir / FILENAME).read_text()), "weights": "other"}))
    with pytest.raises(CalibrationError, match="other weights"):
        Reranker.from_pretrained(model_dir, layer=1, calibrated=True)


def test_auto_trusts_an_order_by_its_distance_from_chance():
    from blockrank.calibration import order_trust

    def trust(ranks: list[int], full: float = 1.0) -> float:
        log_mass = -np.asarray(ranks, dtype=float)  # the model's own order: rank 0 is its best
        n = len(ranks)
        return order_trust(Evidence(np.zeros(n), log_mass, n + 1, np.full(n, 50)), "auto", full)

    assert trust([1, 3, 0, 2, 4]) == 0.0  # rho 0.5 over 5 documents (the rho-only rule trusted it fully): z 1
    assert trust([0, 2, 1, 4, 3]) == pytest.approx(0.6)  # rho 0.8: z 1.6, partly
    assert trust(list(range(5))) == pytest.approx(1.0)  # rho 1: z 2, a full standard deviation past it
    rng = np.random.default_rng(0)
    agreeing = np.argsort(np.arange(100) + rng.normal(0, 60, 100)).argsort()  # rho about 0.4 over 100
    assert trust(list(agreeing)) == 1.0
    assert trust(list(rng.permutation(100))) < 0.5  # a shuffled list of 100
    assert order_trust(Evidence(np.zeros(1), np.zeros(1), 2, np.ones(1)), "auto", 1.0) == 0.0  # one document
