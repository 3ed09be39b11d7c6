"""Losses on hand-built inputs, and gradients of the sparse path against the dense reference."""

from __future__ import annotations

import math

import pytest
import torch
from factories import random_blocks, tiny_llama

from blockrank.kernel.attention import LayerProbe, pack
from blockrank.kernel.scoring import document_mass, forward_blocks
from blockrank.train.losses import LossWeights, aux_loss, blockrank_loss, distill_loss, document_logits, lm_loss


def test_document_mass_on_hand_built_logits():
    # 2 heads, 1 signal token, 4 document tokens: doc 0 owns tokens 0-1, doc 1 owns tokens 2-3
    logits = torch.log(torch.tensor([[[1.0, 1.0, 2.0, 4.0]], [[4.0, 2.0, 1.0, 1.0]]]))
    mass = document_mass(logits, torch.tensor([0, 0, 1, 1]), 2)
    # head 1: softmax = [1,1,2,4]/8 -> doc masses 0.25, 0.75; head 2 -> 0.75, 0.25; mean -> 0.5, 0.5
    torch.testing.assert_close(mass, torch.tensor([0.5, 0.5]))


def test_document_logits_forms():
    mass = torch.tensor([0.6, 0.3, 0.1])
    torch.testing.assert_close(document_logits(mass, 0.5), torch.tensor([1.2, 0.6, 0.2]))
    torch.testing.assert_close(document_logits(mass, 2.0, "log"), mass.log() / 2)
    # at temperature 1 the log form's softmax over documents is the mass itself
    torch.testing.assert_close(torch.softmax(document_logits(mass, 1.0, "log"), 0), mass)
    assert torch.isfinite(document_logits(torch.tensor([1.0, 0.0]), 1.0, "log")).all()
    with pytest.raises(ValueError, match="'squared' is not one of linear, log"):
        document_logits(mass, 1.0, "squared")  # type: ignore[arg-type]


def test_aux_loss_known_values():
    logits = document_logits(torch.tensor([0.6, 0.3, 0.1]), 0.5)
    e = [math.exp(1.2), math.exp(0.6), math.exp(0.2)]
    assert aux_loss(logits, [0]).item() == pytest.approx(-math.log(e[0] / sum(e)), rel=1e-5)
    # multi-positive: -log((e0 + e1) / (e0 + e1 + e2))
    assert aux_loss(logits, [0, 1]).item() == pytest.approx(-math.log((e[0] + e[1]) / sum(e)), rel=1e-5)
    # the log form at temperature 1: minus the log of the positives' share of the mass
    assert aux_loss(document_logits(torch.tensor([0.6, 0.3, 0.1]), 1.0, "log"), [1, 2]).item() == pytest.approx(-math.log(0.4))
    with pytest.raises(ValueError, match="out of range"):
        aux_loss(logits, [3])
    with pytest.raises(ValueError, match="at least one positive"):
        aux_loss(logits, [])


def test_distill_loss_known_values():
    logits = torch.tensor([0.5, 0.3, 0.2]) / 0.1
    teacher = [2.0, 0.0, 1.0]
    p = torch.softmax(torch.tensor(teacher) / 2.0, 0)  # teacher temperature 2
    q = torch.softmax(logits, 0)
    expected = float((p * (p.log() - q.log())).sum())
    assert distill_loss(logits, teacher, 2.0).item() == pytest.approx(expected, rel=1e-5)
    # zero exactly when the student's distribution is the teacher's
    assert distill_loss(logits, logits.tolist(), 1.0).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="2 teacher scores for 3 documents"):
        distill_loss(logits, [1.0, 2.0], 1.0)


def test_combined_loss_weights_and_unlabelled_examples():
    logits = torch.log(torch.tensor([[[1.0, 1.0, 2.0, 4.0]]]))  # 1 head, 1 signal token, 2 docs of 2 tokens
    doc_of_token = torch.tensor([0, 0, 1, 1])
    mass = document_mass(logits, doc_of_token, 2)
    w = LossWeights(lm=0.0, aux=0.5, kd=2.0, temperature=0.1, teacher_temperature=1.0)
    parts = blockrank_loss(None, None, logits, doc_of_token, 2, [0], w, teacher=[0.0, 1.0])
    s = mass / 0.1
    expected = 0.5 * aux_loss(s, [0]) + 2.0 * distill_loss(s, [0.0, 1.0], 1.0)
    assert parts.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    logged = blockrank_loss(
        None, None, logits, doc_of_token, 2, [0], LossWeights(lm=0.0, aux=1.0, temperature=1.0, mass_logits="log")
    )
    assert logged.aux.item() == pytest.approx(-math.log(mass[0].item()), rel=1e-6)
    assert parts.lm.item() == 0 and not parts.top1  # doc 1 holds 0.75 of the mass; the positive is doc 0
    unlabelled = blockrank_loss(None, None, logits, doc_of_token, 2, [], w, teacher=[0.0, 1.0])
    assert unlabelled.aux.item() == 0 and unlabelled.loss.item() == pytest.approx(2.0 * unlabelled.kd.item())
    assert unlabelled.top1  # the teacher's favourite, doc 1, has the most mass


def test_lm_loss_only_on_answer_tokens():
    vocab = 5
    logits = torch.zeros(4, vocab)
    logits[1, 3] = 10.0  # row 1 predicts answer token 0 (= 3) confidently
    logits[2, 1] = 10.0  # row 2 predicts answer token 1 (= 1)
    logits[3] = 100.0  # the row after the last answer token is ignored
    loss = lm_loss(logits, torch.tensor([3, 1]))
    expected = -torch.log_softmax(torch.tensor([0, 0, 0, 10.0, 0]), 0)[3].item()
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def _loss(model, blocks, mode, positives):
    ids, layout = pack(blocks, mode=mode)
    probe = LayerProbe(2, stop=False)
    out = forward_blocks(model, ids, layout, probe, logits_to_keep=len(blocks.answer) + 1)
    parts = blockrank_loss(
        out.logits[0],
        torch.tensor(blocks.answer),
        probe.logits,
        layout.doc_of_token,
        layout.num_docs,
        positives,
        LossWeights(aux=0.1, temperature=0.05),
    )
    model.zero_grad()
    parts.loss.backward()
    return parts, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_sparse_gradients_match_dense_reference():
    model = tiny_llama().train()
    blocks = random_blocks([5, 23, 1, 12, 8])
    blocks.answer = [11, 12, 13]
    sparse, g_sparse = _loss(model, blocks, "sparse", [1, 3])
    dense, g_dense = _loss(model, blocks, "reference", [1, 3])
    assert sparse.loss.item() == pytest.approx(dense.loss.item(), rel=1e-5)
    assert sparse.aux.item() > 0 and sparse.lm.item() > 0
    assert set(g_sparse) == set(g_dense) and len(g_sparse) > 10
    for name in g_sparse:
        torch.testing.assert_close(g_sparse[name], g_dense[name], atol=1e-5, rtol=1e-4, msg=name)


def test_aux_only_stops_at_the_layer_and_trains_through_it():
    model = tiny_llama().train()
    blocks = random_blocks([5, 9, 3])
    ids, layout = pack(blocks)
    probe = LayerProbe(1, stop=True)
    assert forward_blocks(model, ids, layout, probe) is None  # stopped at layer 1
    parts = blockrank_loss(None, None, probe.logits, layout.doc_of_token, layout.num_docs, [2], LossWeights(lm=0.0, aux=1.0))
    parts.loss.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any("layers.0." in n for n in grads) and any("layers.1.self_attn.k_proj" in n for n in grads)
    assert not any("layers.2." in n or "layers.3." in n or "lm_head" in n for n in grads)
