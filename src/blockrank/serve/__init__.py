"""The HTTP service: Cohere/TEI/Jina-compatible rerank endpoints over one :class:`blockrank.Reranker`."""
