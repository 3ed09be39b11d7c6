"""BlockRank: in-context document reranking with structured sparse attention.

The model-facing names load on first use, so that ``import blockrank`` (and ``blockrank --help``) does not
pay for importing torch and transformers.
"""

__version__ = "0.7.0"  # the one version source (pyproject reads it)

from typing import TYPE_CHECKING

from blockrank._names import surface
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

if TYPE_CHECKING:
    from blockrank.model import LoadedModel, load_model
    from blockrank.reranker import Reranker, Result

__getattr__, _ = surface(__name__, {"reranker": ("Reranker", "Result"), "model": ("LoadedModel", "load_model")})

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
