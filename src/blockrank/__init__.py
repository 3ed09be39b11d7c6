"""BlockRank: in-context document reranking with structured sparse attention."""

from .errors import (BlockRankError, DocumentTooLongError, InputError, ModelLoadError, PromptTooLongError,
                     QueryTooLongError, UnsupportedModelError)
from .model import BASE_MODEL, DEFAULT_RERANKER, LoadedModel, load_model
from .prompt import Document, TruncationWarning
from .reranker import Reranker, Result

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
__version__ = "0.1.0"
