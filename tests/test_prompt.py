"""Prompt layout with the default model's tokenizer."""

from __future__ import annotations

import pytest

from blockrank import DocumentTooLongError
from blockrank.prompt import ANSWER_OPENER, PromptBuilder, as_documents


def test_blocks_follow_the_layout(tokenizer):
    docs = ["Clouds condense.", {"id": "b", "title": "Sun", "text": "It is hot."}]
    blocks = PromptBuilder(tokenizer).build("what causes rain?", docs)
    prefix = tokenizer.decode(blocks.prefix)
    assert prefix.startswith("<|im_start|>")  # the chat template is used
    assert "Query: what causes rain?" in prefix  # block 0 states the query
    assert tokenizer.decode(blocks.docs[0]) == "[1] Clouds condense.\n"
    assert tokenizer.decode(blocks.docs[1]) == "[2] Sun. It is hot.\n"
    tail = tokenizer.decode(blocks.tail)
    assert "Query: what causes rain?" in tail and tail.endswith(ANSWER_OPENER)
    assert "<|im_start|>assistant" in tail
    assert blocks.truncated == []
    assert blocks.num_tokens == len(blocks.prefix) + len(blocks.docs[0]) + len(blocks.docs[1]) + len(blocks.tail)


def test_truncation_is_reported(tokenizer):
    long_doc = "word " * 400
    blocks = PromptBuilder(tokenizer, block_tokens=32).build("q", ["short", long_doc])
    assert blocks.truncated == [1]
    label, newline = len(tokenizer.encode("[2]")), 1
    assert len(blocks.docs[1]) == label + 32 + newline
    with pytest.raises(DocumentTooLongError, match="over the budget of 32"):
        PromptBuilder(tokenizer, block_tokens=32, truncate=False).build("q", ["short", long_doc])


@pytest.mark.parametrize(
    "query,docs,error,match",
    [
        ("", ["a"], ValueError, "query is empty"),
        ("   ", ["a"], ValueError, "query is empty"),
        ("q", [], ValueError, "documents is empty"),
        ("q", "just a string", TypeError, "list of strings"),
        ("q", ["a", 3], TypeError, "document 1 is a int"),
        ("q", [{"title": "no text"}], TypeError, "needs a string 'text'"),
    ],
)
def test_bad_input(tokenizer, query, docs, error, match):
    with pytest.raises(error, match=match):
        PromptBuilder(tokenizer).build(query, docs)


def test_document_ids():
    docs = as_documents(["x", {"id": 7, "text": "y"}, {"_id": "d3", "text": "z"}])
    assert [d.id for d in docs] == ["0", "7", "d3"]


def test_long_documents_split_into_overlapping_passages(tokenizer):
    builder = PromptBuilder(tokenizer, block_tokens=32, overlap=4, max_tokens_per_doc=100)
    words = " ".join(f"w{i}" for i in range(200))
    body = tokenizer.encode(" " + words, add_special_tokens=False)
    blocks = builder.build("q", ["short one", words, "another"])
    assert blocks.owner == [0, 1, 1, 1, 1, 2]  # 100 tokens at stride 28: passages start at 0, 28, 56, 84
    label = lambda b: tokenizer.encode(f"[{b}]", add_special_tokens=False)  # noqa: E731
    passages = [blocks.docs[b][len(label(b + 1)) : -1] for b in range(1, 5)]
    assert passages == [body[0:32], body[28:60], body[56:88], body[84:100]]
    assert blocks.truncated == [1]  # 200 words are over the 100-token cap
    assert f"Below are {len(blocks.docs)} candidate documents" in tokenizer.decode(blocks.prefix)
    short = builder.build("q", ["short one", "another"])
    assert short.owner is None and len(short.docs) == 2  # nothing to split: the prompt of the unsplit builder
    assert short.docs == PromptBuilder(tokenizer, block_tokens=32).build("q", ["short one", "another"]).docs
    with pytest.raises(DocumentTooLongError, match="over the budget of 100 .*max_tokens_per_doc"):
        PromptBuilder(tokenizer, block_tokens=32, max_tokens_per_doc=100, truncate=False).build("q", [words])


@pytest.mark.parametrize(
    "kwargs,match", [({"max_tokens_per_doc": 0}, "max_tokens_per_doc must be positive"), ({"overlap": 32}, "overlap must be in")]
)
def test_bad_split_settings(tokenizer, kwargs, match):
    with pytest.raises(ValueError, match=match):
        PromptBuilder(tokenizer, block_tokens=32, **kwargs)
