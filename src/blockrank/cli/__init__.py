"""Command line: ``blockrank COMMAND``, one module per group of commands.

Each group module registers its subcommands (``register``) and imports what a command needs only when it runs,
so ``blockrank --help`` never imports torch.
"""

from __future__ import annotations

import argparse
import sys

from blockrank.cli import evaluate, rerank, serve, train
from blockrank.errors import BlockRankError

# Reported in one line. Anything else is a bug and keeps its traceback.
USER_ERRORS = (BlockRankError, FileNotFoundError, IsADirectoryError, PermissionError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blockrank", description="BlockRank in-context reranking")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (rerank, evaluate, train, serve):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        print(f"blockrank {args.command}: error: {err}", file=sys.stderr)
        return 2
