"""LangChain and LlamaIndex adapters, with the real packages (skipped with a reason when absent)."""

from __future__ import annotations

import pytest
from factories import tiny_calibration

from blockrank import Reranker
from blockrank.model import load_model
from blockrank.settings import ModelSettings

DOCS = ["Paris is the capital of France.", "Bananas are yellow.", "The Eiffel tower is in Paris."]
RETRIEVER = [0.2, 0.9, 0.5]  # the retriever's scores, in DOCS order


@pytest.fixture(scope="module")
def reranker(tiny_model_dir):
    return Reranker.from_pretrained(tiny_model_dir, layer=1)


def test_langchain_compressor(reranker):
    pytest.importorskip("langchain_core", reason="langchain-core is not installed (pip install blockrank[integrations])")
    from langchain_core.documents import Document

    from blockrank.integrations.langchain import BlockRankCompressor

    docs = [Document(page_content=t, metadata={"n": i}) for i, t in enumerate(DOCS)]
    out = BlockRankCompressor(reranker=reranker, top_n=2).compress_documents(docs, "capital of France")
    expected = reranker.rerank("capital of France", DOCS, top_k=2)
    assert [d.metadata["n"] for d in out] == [r.index for r in expected]
    assert [d.metadata["relevance_score"] for d in out] == [r.score for r in expected]
    assert BlockRankCompressor(reranker=reranker).compress_documents([], "q") == []


def test_llamaindex_postprocessor(reranker):
    pytest.importorskip("llama_index.core", reason="llama-index-core is not installed (pip install blockrank[integrations])")
    from llama_index.core.schema import NodeWithScore, TextNode

    from blockrank.integrations.llamaindex import BlockRankPostprocessor

    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=0.0) for i, t in enumerate(DOCS)]
    out = BlockRankPostprocessor(reranker=reranker, top_n=2).postprocess_nodes(nodes, query_str="capital of France")
    expected = reranker.rerank("capital of France", DOCS, top_k=2)
    assert [n.node.id_ for n in out] == [f"n{r.index}" for r in expected]
    assert [n.score for n in out] == [r.score for r in expected]


@pytest.fixture(scope="module")
def led_by_scores(tiny_model_dir):
    """A reranker whose calibration lets the retriever's scores decide, so passing them is visible in the order."""
    lm = load_model(tiny_model_dir, dtype="fp32")
    return Reranker(lm.model, lm.tokenizer, ModelSettings(layer=1, calibration=tiny_calibration(tiny_model_dir, first_stage=1e4)))


def test_langchain_compressor_passes_the_retrievers_scores(led_by_scores):
    pytest.importorskip("langchain_core", reason="langchain-core is not installed (pip install blockrank[integrations])")
    from langchain_core.documents import Document

    from blockrank.integrations.langchain import BlockRankCompressor

    docs = [Document(page_content=t, metadata={"n": i, "score": s}) for i, (t, s) in enumerate(zip(DOCS, RETRIEVER))]
    compressor = BlockRankCompressor(reranker=led_by_scores, top_n=3)
    out = compressor.compress_documents(docs, "capital of France")
    expected = led_by_scores.rerank("capital of France", DOCS, first_stage=RETRIEVER)
    assert [d.metadata["n"] for d in out] == [r.index for r in expected] == [1, 2, 0]
    assert [(d.metadata["relevance_score"], d.metadata["model_score"]) for d in out] == [
        (r.score, r.model_score) for r in expected
    ]
    docs[2].metadata.pop("score")  # not every document has a score: the order and the model decide
    alone = led_by_scores.rerank("capital of France", DOCS)
    assert [d.metadata["n"] for d in compressor.compress_documents(docs, "capital of France")] == [r.index for r in alone]


def test_llamaindex_postprocessor_passes_the_node_scores(led_by_scores):
    pytest.importorskip("llama_index.core", reason="llama-index-core is not installed (pip install blockrank[integrations])")
    from llama_index.core.schema import NodeWithScore, TextNode

    from blockrank.integrations.llamaindex import BlockRankPostprocessor

    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=s) for i, (t, s) in enumerate(zip(DOCS, RETRIEVER))]
    postprocessor = BlockRankPostprocessor(reranker=led_by_scores, top_n=3)
    out = postprocessor.postprocess_nodes(nodes, query_str="capital of France")
    expected = led_by_scores.rerank("capital of France", DOCS, first_stage=RETRIEVER)
    assert [n.node.id_ for n in out] == [f"n{r.index}" for r in expected] == ["n1", "n2", "n0"]
    assert [n.score for n in out] == [r.score for r in expected]
    nodes[1] = NodeWithScore(node=nodes[1].node, score=None)  # a node without a score: the order and the model decide
    alone = led_by_scores.rerank("capital of France", DOCS, top_k=3)
    out = postprocessor.postprocess_nodes(nodes, query_str="capital of France")
    assert [n.node.id_ for n in out] == [f"n{r.index}" for r in alone]
