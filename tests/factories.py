"""Builders shared by the tests: tiny random models, random prompt blocks and training pools."""

from __future__ import annotations

import os
import random

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from blockrank.model import use_block_attention
from blockrank.prompt import Document, PromptBlocks
from blockrank.train.examples import ICRExample, Pool, sample_example


def tiny_llama(vocab_size: int = 128, layers: int = 4, seed: int = 0, **overrides) -> LlamaForCausalLM:
    """A randomly initialised Llama with grouped-query attention (4 heads, 2 KV heads), fp32, eval mode."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        **{
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
        }
        | overrides
    )
    return use_block_attention(LlamaForCausalLM(config).eval())


def random_blocks(lengths: list[int], prefix: int = 7, tail: int = 6, vocab: int = 128, seed: int = 1) -> PromptBlocks:
    g = torch.Generator().manual_seed(seed)

    def ids(n: int) -> list[int]:
        return torch.randint(0, vocab, (n,), generator=g).tolist()

    return PromptBlocks(prefix=ids(prefix), docs=[ids(n) for n in lengths], tail=ids(tail))


def pool(n_pos=2, n_neg=30, qid="q"):
    return Pool(
        qid,
        f"query {qid}",
        [Document(f"p{i}", f"pos {i}") for i in range(n_pos)],
        [Document(f"n{i}", f"neg {i}") for i in range(n_neg)],
    )


def icr_examples(n: int) -> list[ICRExample]:
    rng = random.Random(0)
    return [sample_example(pool(qid=str(i)), n_docs=4, rng=rng) for i in range(n)]


def needs_data(path) -> "pytest.MarkDecorator":
    """Skip when the shared data is missing, except under CI (``BLOCKRANK_REQUIRE_DATA=1``), where it must be there."""
    required = os.environ.get("BLOCKRANK_REQUIRE_DATA") == "1"
    return pytest.mark.skipif(not path.exists() and not required, reason=f"{path} not found (../shared/data)")


def tiny_calibration(model_dir, layer: int = 1, **coef: float):
    """A hand-set calibration for a tiny test model: the model's affinity counts 1, the rest as given."""
    from blockrank.calibration import Calibration, weights_fingerprint

    return Calibration(
        coef={"affinity": 1.0} | coef,
        bias=0.0,
        full_agreement=1.0,
        model="tiny",
        weights=weights_fingerprint(model_dir),
        layer=layer,
    )
