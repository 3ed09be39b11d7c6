"""Thin adapters that put a :class:`blockrank.Reranker` inside RAG frameworks (optional extras)."""
