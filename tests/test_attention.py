"""The efficient block-sparse path against the dense reference, on tiny random models."""

from __future__ import annotations

import pytest
import torch
from factories import random_blocks, tiny_llama
from transformers import MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

from blockrank.kernel.attention import LayerProbe, dense_mask, length_groups, pack
from blockrank.kernel.scoring import attention_scores, document_mass, forward_blocks
from blockrank.model import use_block_attention

LENGTHS = [5, 31, 1, 12, 3, 17]  # very different lengths, one single-token document


def run(model, blocks, mode, layer=2, **pack_kwargs):
    """Final hidden states and layer-``layer`` document scores for one mode."""
    ids, layout = pack(blocks, mode=mode, **pack_kwargs)
    probe = LayerProbe(layer, stop=False)
    with torch.no_grad():
        out = forward_blocks(model, ids, layout, probe, output_hidden_states=True)
    return out, document_mass(probe.logits, layout.doc_of_token, layout.num_docs)


def test_dense_mask_pattern():
    blocks = random_blocks([2, 3], prefix=2, tail=2)
    _, layout = pack(blocks, mode="reference")
    allowed = (dense_mask(layout)[0, 0] == 0).int()
    expected = torch.tensor(
        [
            # p p d d e e e t t
            [1, 0, 0, 0, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0, 0, 0, 0],  # document 1 sees block 0 and itself
            [1, 1, 1, 1, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 1, 0, 0, 0, 0],  # document 2 does not see document 1
            [1, 1, 0, 0, 1, 1, 0, 0, 0],
            [1, 1, 0, 0, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 1, 1, 1, 0],  # the tail sees everything
            [1, 1, 1, 1, 1, 1, 1, 1, 1],
        ]
    )
    assert torch.equal(allowed, expected)


def test_permutation_invariant_positions():
    blocks = random_blocks([2, 4], prefix=3, tail=2)
    _, layout = pack(blocks)
    assert layout.position_ids.tolist() == [0, 1, 2, 3, 4, 3, 4, 5, 6, 7, 8]
    _, fixed = pack(blocks, tail_position=100)
    assert fixed.position_ids[-2:].tolist() == [100, 101]
    with pytest.raises(ValueError, match="inside the document blocks"):
        pack(blocks, tail_position=5)


@pytest.mark.parametrize("batch_tokens", [4096, 40, 1])
def test_sparse_matches_dense_reference(batch_tokens):
    model = tiny_llama()
    blocks = random_blocks(LENGTHS)
    sparse, s_scores = run(model, blocks, "sparse", batch_tokens=batch_tokens)
    dense, d_scores = run(model, blocks, "reference")
    for hs, hd in zip(sparse.hidden_states, dense.hidden_states):
        torch.testing.assert_close(hs, hd, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sparse.logits, dense.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s_scores, d_scores, atol=1e-6, rtol=1e-5)
    assert s_scores.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_sparse_gradients_match_the_dense_reference():
    """Training backpropagates through the sparse path: its gradients are the reference's."""
    blocks = random_blocks(LENGTHS)
    grads = {}
    for mode in ("sparse", "reference"):
        model = tiny_llama()
        ids, layout = pack(blocks, mode=mode, batch_tokens=40)
        probe = LayerProbe(2, stop=True)
        forward_blocks(model, ids, layout, probe)
        mass = document_mass(probe.logits, layout.doc_of_token, layout.num_docs)
        (mass * torch.arange(1.0, 1.0 + len(LENGTHS))).sum().backward()
        grads[mode] = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads["sparse"].keys() == grads["reference"].keys() and any(g.abs().sum() > 0 for g in grads["reference"].values())
    for name, g in grads["reference"].items():
        torch.testing.assert_close(grads["sparse"][name], g, atol=1e-6, rtol=1e-4, msg=name)


def test_length_groups_cut_padding_within_the_budget():
    lengths = [181, 176, 160, 133, 127, 107, 96, 87, 81, 75, 68, 62, 50, 41] * 4
    groups = length_groups(lengths, batch_tokens=1024, group_cost=64)
    assert sorted(d for g in groups for d in g) == list(range(len(lengths)))
    for g in groups:
        assert lengths[g[0]] == max(lengths[d] for d in g)  # padded to its first document
        assert len(g) * lengths[g[0]] <= 1024
    assert sum(len(g) * lengths[g[0]] for g in groups) < 1.05 * sum(lengths)
    # filled greedily, longest first, the long one would take four short ones and pad them by 640 tokens
    assert [len(g) for g in length_groups([200] + [40] * 30, batch_tokens=1024, group_cost=64)] == [1, 25, 5]
    assert length_groups([900, 10, 10], batch_tokens=512) == [[0], [1, 2]]  # over the budget: alone
    assert max(map(len, length_groups([5] * 9, batch_tokens=20, group_cost=1))) == 4  # 3 groups, the fewest


def test_micro_batching_does_not_change_scores():
    model = tiny_llama()
    blocks = random_blocks(LENGTHS * 3)
    one = attention_scores(model, blocks, layer=2, batch_tokens=10**6)
    many = attention_scores(model, blocks, layer=2, batch_tokens=16)
    assert len(pack(blocks, batch_tokens=16)[1].batches) > 5
    torch.testing.assert_close(one, many, atol=1e-6, rtol=1e-5)


def test_permuting_documents_permutes_scores_only():
    model = tiny_llama()
    blocks = random_blocks(LENGTHS)
    perm = [3, 0, 5, 1, 4, 2]
    shuffled = random_blocks(LENGTHS)
    shuffled.docs = [blocks.docs[i] for i in perm]
    out, scores = run(model, blocks, "sparse")
    out_p, scores_p = run(model, shuffled, "sparse")
    torch.testing.assert_close(scores_p, scores[perm], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(
        attention_scores(model, shuffled, 2, batch_tokens=40),  # document-major too
        attention_scores(model, blocks, 2, batch_tokens=40)[perm],
        atol=1e-6,
        rtol=1e-5,
    )
    tail = len(blocks.tail)
    torch.testing.assert_close(out_p.logits[:, -tail:], out.logits[:, -tail:], atol=1e-5, rtol=1e-5)


def test_causal_mode_is_the_stock_model():
    model = tiny_llama()
    blocks = random_blocks(LENGTHS)
    ids, layout = pack(blocks, mode="causal")
    with torch.no_grad():
        ours = forward_blocks(model, ids, layout).logits
        model.set_attn_implementation("sdpa")
        stock = model(ids).logits
    torch.testing.assert_close(ours, stock, atol=1e-5, rtol=1e-5)


def test_layers_above_probe_and_lm_head_do_not_run():
    model = tiny_llama(layers=6)
    called = []
    for i, layer in enumerate(model.model.layers):
        layer.register_forward_hook(lambda *_, i=i: called.append(i))
    model.lm_head.register_forward_hook(lambda *_: called.append("lm_head"))
    model.model.norm.register_forward_hook(lambda *_: called.append("norm"))
    blocks = random_blocks(LENGTHS)
    scores = attention_scores(model, blocks, layer=3, grouped=False)
    assert called == [0, 1, 2]  # layer 3 stops inside its attention, after reading q and k
    assert scores.shape == (len(LENGTHS),)
    called.clear()
    attention_scores(model, blocks, layer=3, batch_tokens=40)  # document-major: block 0, 3 groups, the tail
    assert called == [0, 1, 2] * 5


def _family(cls, config_cls, **extra):
    torch.manual_seed(0)
    config = config_cls(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        **extra,
    )
    return use_block_attention(cls(config).eval())


@pytest.mark.parametrize(
    "cls,config_cls,extra",
    [
        (MistralForCausalLM, MistralConfig, {"sliding_window": None}),
        (Qwen2ForCausalLM, Qwen2Config, {}),
        (Qwen3ForCausalLM, Qwen3Config, {"head_dim": 16}),
    ],
    ids=["mistral", "qwen2", "qwen3"],
)
def test_other_families_match_reference(cls, config_cls, extra):
    model = _family(cls, config_cls, **extra)
    blocks = random_blocks(LENGTHS)
    sparse, s_scores = run(model, blocks, "sparse")
    dense, d_scores = run(model, blocks, "reference")
    torch.testing.assert_close(sparse.logits, dense.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s_scores, d_scores, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("group_tokens", [4096, 40, 1])
@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "qwen3"])
def test_document_major_pass_matches_the_dense_reference(family, group_tokens):
    """The grouped pass (documents through layers 0..l* group by group, then the tail) is the same attention."""
    model = {
        "llama": lambda: tiny_llama(),
        "mistral": lambda: _family(MistralForCausalLM, MistralConfig, sliding_window=None),
        "qwen2": lambda: _family(Qwen2ForCausalLM, Qwen2Config),
        "qwen3": lambda: _family(Qwen3ForCausalLM, Qwen3Config, head_dim=16),
    }[family]()
    blocks = random_blocks(LENGTHS)
    _, reference = run(model, blocks, "reference")
    grouped = attention_scores(model, blocks, layer=2, batch_tokens=group_tokens)
    torch.testing.assert_close(grouped, reference, atol=1e-6, rtol=1e-5)
    fixed_tail = attention_scores(model, blocks, layer=2, batch_tokens=group_tokens, tail_position=100)
    torch.testing.assert_close(
        fixed_tail, attention_scores(model, blocks, 2, grouped=False, tail_position=100), atol=1e-6, rtol=1e-5
    )
