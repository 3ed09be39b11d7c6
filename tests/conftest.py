"""Shared fixtures: tiny random models of each supported family, and the default model's tokenizer."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from blockrank.model import default_model_path, use_block_attention
from blockrank.prompt import PromptBlocks


def tiny_llama(vocab_size: int = 128, layers: int = 4, seed: int = 0, **overrides) -> LlamaForCausalLM:
    """A randomly initialised Llama with grouped-query attention (4 heads, 2 KV heads), fp32, eval mode."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        **overrides,
    )
    return use_block_attention(LlamaForCausalLM(config).eval())


def random_blocks(lengths: list[int], prefix: int = 7, tail: int = 6, vocab: int = 128, seed: int = 1) -> PromptBlocks:
    g = torch.Generator().manual_seed(seed)

    def ids(n: int) -> list[int]:
        return torch.randint(0, vocab, (n,), generator=g).tolist()

    return PromptBlocks(prefix=ids(prefix), docs=[ids(n) for n in lengths], tail=ids(tail))


@pytest.fixture(scope="session")
def default_path():
    """The converted default model (converted once into the user cache; ~20 s the first time)."""
    return default_model_path()


@pytest.fixture(scope="session")
def tokenizer(default_path):
    return AutoTokenizer.from_pretrained(default_path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A tiny random Llama with the real tokenizer, saved as a model directory (for loader and CLI tests)."""
    model = tiny_llama(vocab_size=len(tokenizer), layers=3)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
