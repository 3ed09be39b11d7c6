"""Options every model-loading command shares, and the reranker they build."""

from __future__ import annotations

import argparse
from typing import Any

from blockrank.defaults import BASE_MODEL, BLOCK_TOKENS, DEFAULT_RERANKER, INPUT_ORDERS, MAX_TOKENS_PER_DOC, MODES


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help=f"model directory, .gguf file or hub id (default: the shipped {DEFAULT_RERANKER}; "
        f"{BASE_MODEL} is its untrained base)",
    )
    parser.add_argument("--layer", type=int, default=None, help="layer l* whose attention scores (default: 2/3 depth)")
    parser.add_argument(
        "--score-by", choices=["attention", "decode"], default=None, help="attention at l* (default) or decoding a ranking"
    )
    parser.add_argument("--method", dest="score_by", choices=["attention", "decode"], help=argparse.SUPPRESS)  # 0.6 name
    parser.add_argument(
        "--attention",
        choices=MODES,
        default=None,
        help="sparse = BlockRank (default), reference = the same with an explicit mask, causal = full attention",
    )
    parser.add_argument(
        "--block-tokens",
        type=int,
        default=None,
        help=f"tokens per block: a document's passage length (default: the trained model's, else {BLOCK_TOKENS})",
    )
    parser.add_argument("--max-doc-tokens", dest="block_tokens", type=int, help=argparse.SUPPRESS)  # 0.6 name
    parser.add_argument(
        "--max-tokens-per-doc",
        type=int,
        default=None,
        help=f"tokens of a document that count, split into passages of --block-tokens; the rest is "
        f"truncated (default {MAX_TOKENS_PER_DOC}, Cohere's)",
    )
    parser.add_argument(
        "--input-order",
        choices=INPUT_ORDERS,
        default=None,
        help="what the documents' order means: a retriever's ranking (ranked), nothing (unordered), or auto: "
        "trusted as far as it agrees with the model (default)",
    )
    parser.add_argument(
        "--no-split",
        dest="split_documents",
        action="store_false",
        help="read only each document's first --block-tokens tokens (one block per document)",
    )
    parser.add_argument(
        "--dtype", default=None, help="fp32, bf16 or fp16 (default: bf16 on CUDA and on CPUs with AVX512-BF16 or AMX, else fp32)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument(
        "--batch-tokens",
        type=int,
        default=None,
        help="documents x padded length per group of the sparse pass (default: the reranker's)",
    )
    parser.add_argument(
        "--raw-scores",
        action="store_true",
        help="score by list-normalised attention mass instead of the model's calibrated probability",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the decoder layers: faster per call after a first call that compiles "
        "(tens of seconds); for services and batch runs",
    )


def reranker_options(args: argparse.Namespace) -> dict[str, Any]:
    """The model options given on the command line, for :meth:`Reranker.from_pretrained` (the rest default there)."""
    given = {
        "layer": args.layer,
        "block_tokens": args.block_tokens,
        "score_by": args.score_by,
        "attention": args.attention,
        "max_tokens_per_doc": args.max_tokens_per_doc,
        "batch_tokens": args.batch_tokens,
        "input_order": args.input_order,
        "split": args.split_documents,
        "compile": args.compile or None,
    }
    return {k: v for k, v in given.items() if v is not None}


def load_reranker(args: argparse.Namespace):
    """The reranker a command's options describe (``--raw-scores``: its uncalibrated attention mass)."""
    from blockrank.reranker import Reranker

    calibrated = False if args.raw_scores else None
    return Reranker.from_pretrained(
        args.model, dtype=args.dtype, device=args.device, calibrated=calibrated, **reranker_options(args)
    )
