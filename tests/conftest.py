"""Shared fixtures: tiny random models and the default model's tokenizer (builders in factories.py)."""

from __future__ import annotations

import os

import pytest
from factories import tiny_llama
from transformers import AutoTokenizer

from blockrank.model import base_model_path

# LiteLLM (a test client, also imported by the rerankers library) fetches a price list over the network on import
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def default_path():
    """The converted default model (converted once into the user cache; ~20 s the first time)."""
    return base_model_path()


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
