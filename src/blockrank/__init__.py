"""BlockRank: in-context document reranking with structured sparse attention.

The model-facing names load on first use, so that ``import blockrank`` (and ``blockrank --help``) does not
pay for importing torch and transformers.
"""

__version__ = "0.7.0"  # the one version source (pyproject reads it)

from importlib import import_module
from typing import TYPE_CHECKING

from blockrank import _moved  # noqa: F401  (old module names, deprecated)
from blockrank.defaults import BASE_MODEL, DEFAULT_RERANKER
from blockrank.errors import (
    BlockRankError,
    DocumentTooLongError,
    InputError,
    ModelLoadError,
    PromptTooLongError,
    QueryTooLongError,
    UnsupportedModelError,
)
from blockrank.prompt import Document, TruncationWarning

_LAZY = {
    "Reranker": "blockrank.reranker",
    "Result": "blockrank.reranker",
    "LoadedModel": "blockrank.model",
    "load_model": "blockrank.model",
}

if TYPE_CHECKING:
    from blockrank.model import LoadedModel, load_model
    from blockrank.reranker import Reranker, Result


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'blockrank' has no attribute {name!r}")


__all__ = [
    "BASE_MODEL",
    "BlockRankError",
    "DEFAULT_RERANKER",
    "Document",
    "DocumentTooLongError",
    "InputError",
    "LoadedModel",
    "ModelLoadError",
    "PromptTooLongError",
    "QueryTooLongError",
    "Reranker",
    "Result",
    "TruncationWarning",
    "UnsupportedModelError",
    "load_model",
]
