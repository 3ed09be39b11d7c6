"""bf16 inference ranks like fp32 on the real default model (a sample of real passages)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from factories import needs_data

from blockrank import Reranker
from blockrank.kernel.attention import pack
from blockrank.kernel.scoring import attention_scores

DL19 = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec-dl" / "dl19-bm25-top100.jsonl"


def top10_overlap(a: torch.Tensor, b: torch.Tensor) -> int:
    return len(set(a.topk(10).indices.tolist()) & set(b.topk(10).indices.tolist()))


@pytest.mark.slow
@needs_data(DL19)
def test_bf16_rankings_agree_with_fp32(capsys):
    row = json.loads(DL19.read_text().splitlines()[0])
    docs = [c["text"] for c in row["candidates"][:30]]
    fp32 = Reranker.from_pretrained(dtype="fp32", device="cpu", block_tokens=96)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blocks = fp32.prompt(row["query"], docs)
    s32 = attention_scores(fp32.model, blocks, fp32.layer)
    bf16 = fp32.model.to(torch.bfloat16)
    s16 = attention_scores(bf16, blocks, fp32.layer)
    overlap = top10_overlap(s32, s16)
    with capsys.disabled():
        print(
            f"\nbf16 vs fp32 on DL19 query {row['qid']} (30 passages): top-10 overlap {overlap}/10, "
            f"max score diff {float((s32 - s16).abs().max()):.2e}"
        )
    assert overlap >= 8
    assert torch.corrcoef(torch.stack([s32, s16]))[0, 1] > 0.95


def test_bf16_sparse_matches_bf16_dense():
    from factories import random_blocks, tiny_llama

    model = tiny_llama().to(torch.bfloat16)
    blocks = random_blocks([5, 31, 1, 12, 3, 17])
    sparse = attention_scores(model, blocks, 2)
    dense = attention_scores(model, blocks, 2, mode="reference")
    torch.testing.assert_close(sparse, dense, atol=2e-2, rtol=0)
    assert pack(blocks)[1].num_tokens == blocks.num_tokens
