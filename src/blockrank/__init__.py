"""BlockRank: in-context document reranking with structured sparse attention."""

from .model import DEFAULT_MODEL, DEFAULT_RERANKER, ModelLoadError, UnsupportedModelError, load_model
from .prompt import Document, DocumentTooLongError, TruncationWarning
from .reranker import Reranker, Result

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_RERANKER",
    "Document",
    "DocumentTooLongError",
    "ModelLoadError",
    "Reranker",
    "Result",
    "TruncationWarning",
    "UnsupportedModelError",
    "load_model",
]
__version__ = "0.1.0"
