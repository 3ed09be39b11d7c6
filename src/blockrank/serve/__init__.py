"""The HTTP service: Cohere/TEI-compatible rerank endpoints over one :class:`blockrank.Reranker`.

Its surface for scripts (bench/, notebooks) is ``__all__``; the rest may change without notice.
"""

from blockrank._names import surface

__getattr__, __all__ = surface(__name__)
