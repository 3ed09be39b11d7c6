"""The public API: ``Reranker.from_pretrained().rerank(query, documents)``."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedModel

from .attention import BATCH_TOKENS
from .calibration import Calibration, find_calibration
from .compiled import compile_layers, eager_on_failure, is_compiled
from .defaults import FIRST_STAGE_WEIGHT, MODES, Mode
from .errors import DocumentTypeError, InputError, PromptTooLongError, QueryTooLongError
from .fusion import check_first_stage, fuse_first_stage
from .model import check_layer, default_layer, display_name, load_model
from .prompt import Document, PromptBlocks, PromptBuilder, TruncationWarning, as_documents
from .scoring import AttentionReadout, attention_readout, cancellable, decode_answer, parse_ranking, ranking_scores

Method = Literal["attention", "decode"]
DocumentLike = str | Mapping[str, Any] | Document

logger = logging.getLogger("blockrank")


@dataclass(frozen=True)
class Result:
    """One ranked document: its position in the caller's list, its id, its score, the document and its raw score.

    ``score`` is the calibrated probability of relevance when the reranker has a calibration (comparable across
    queries and list sizes: threshold it), else ``mass``. ``mass`` is the document's share of the attention at
    layer l*, normalised over this list (it shrinks as the list grows); the ranking follows it, unless the caller
    passed first-stage scores: then it follows ``fused`` (:mod:`blockrank.fusion`), and ``score`` stays BlockRank's.
    """

    index: int
    id: str
    score: float
    document: Document
    mass: float
    fused: float | None = None


@dataclass(frozen=True)
class RerankReport:
    """Results best first, the documents cut to the per-document limit, that limit and the prompt's length."""

    results: list[Result]
    truncated: list[int]
    num_tokens: int
    doc_limit: int


class Reranker:
    """In-context reranker over one causal LM.

    ``method="attention"`` (default) scores documents by the signal tokens' attention mass at
    ``layer`` and stops the forward there; ``method="decode"`` generates the answer list.
    ``attention`` picks the implementation: ``"sparse"`` (BlockRank, linear), ``"reference"``
    (the stock kernel with an explicit mask, quadratic) or ``"causal"`` (ordinary full attention, the ICR baseline).

    Documents are read whole: ``split=True`` (default) cuts a document longer than one block
    (``max_doc_tokens``) into overlapping passages, one block each, and scores the document by its best
    passage; up to ``max_tokens_per_doc`` tokens of a document count. ``split=False`` reads only the
    first block. Past the limit a document is truncated and reported, or refused with ``truncate=False``.

    With a ``calibration`` (:meth:`from_pretrained` loads the model's own), scores are probabilities of
    relevance; without one they are the list-normalised attention mass.

    ``compile=True`` compiles the decoder layers (:mod:`blockrank.compiled`): faster calls after a first
    one that compiles, for services and batch runs. It compiles ``model`` itself, in place: every reranker and
    other user of that model object runs the compiled layers too (``compiled.uncompile_layers`` undoes it).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer,
        layer: int | None = None,
        method: Method = "attention",
        attention: Mode = "sparse",
        max_doc_tokens: int = 160,
        max_tokens_per_doc: int = 1024,
        split: bool = True,
        truncate: bool = True,
        batch_tokens: int = BATCH_TOKENS,
        tail_position: int | None = None,
        max_query_tokens: int = 1024,
        max_prompt_tokens: int = 1_000_000,
        calibration: Calibration | None = None,
        compile: bool = False,
    ):
        if method not in ("attention", "decode"):
            raise InputError(f"unknown method {method!r}; choose 'attention' or 'decode'")
        if attention not in MODES:
            raise InputError(f"unknown attention {attention!r}; choose one of {', '.join(MODES)}")
        self.model = model
        self.tokenizer = tokenizer
        self.layer = default_layer(model.config) if layer is None else layer
        check_layer(model.config, self.layer)
        self.method = method
        self.attention = attention
        self._warned_truncation = False
        self.max_query_tokens, self.max_prompt_tokens = max_query_tokens, max_prompt_tokens
        self.max_doc_tokens, self.max_tokens_per_doc, self.split = max_doc_tokens, max_tokens_per_doc, split
        self.builder = self._builder(max_tokens_per_doc, truncate, split)
        self.batch_tokens, self.tail_position = batch_tokens, tail_position
        if calibration is not None and (method != "attention" or calibration.layer != self.layer):
            raise InputError(
                f"the calibration was fitted at layer {calibration.layer} for attention scores; this "
                f"reranker scores by {method} at layer {self.layer}"
            )
        self.calibration = calibration
        if compile and not is_compiled(model):
            compile_layers(model)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        *,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        calibrated: bool | None = None,
        **kwargs,
    ) -> Reranker:
        """Load a model (``None``: the embedded default) and wrap it; ``kwargs`` go to :class:`Reranker`.

        A model trained by ``blockrank train`` brings its own ``layer`` and ``max_doc_tokens`` defaults, and
        its ``calibration.json`` if it has one (``blockrank calibrate``). ``calibrated=None`` uses a matching
        calibration and otherwise warns and scores by mass; ``True`` requires one; ``False`` scores by mass.
        """
        model, tokenizer, trained = load_model(name_or_path, dtype=dtype, device=device)
        args = settings(trained, **kwargs)
        layer = args.get("layer", default_layer(model.config))
        if args.get("method", "attention") != "attention":
            calibrated = False
        name = display_name(name_or_path or "default")
        return cls(model, tokenizer, calibration=find_calibration(trained, name, layer, calibrated), **args)

    def _builder(self, max_tokens_per_doc: int, truncate: bool, split: bool) -> PromptBuilder:
        if max_tokens_per_doc <= 0:
            raise InputError(f"max_tokens_per_doc must be positive, got {max_tokens_per_doc}")
        if split:
            return PromptBuilder(self.tokenizer, self.max_doc_tokens, truncate, max_tokens_per_doc=max_tokens_per_doc)
        return PromptBuilder(self.tokenizer, min(self.max_doc_tokens, max_tokens_per_doc), truncate)

    def prompt(
        self,
        query: str,
        documents: Sequence[DocumentLike],
        max_tokens_per_doc: int | None = None,
        truncate: bool | None = None,
        split: bool | None = None,
    ) -> PromptBlocks:
        """Build the prompt; the arguments override the reranker's settings for this call."""
        return self.builder_for(max_tokens_per_doc, truncate, split).build(query, documents)

    def builder_for(
        self, max_tokens_per_doc: int | None = None, truncate: bool | None = None, split: bool | None = None
    ) -> PromptBuilder:
        """The prompt builder for these overrides of the reranker's settings (its own when there are none)."""
        wanted = (
            self.max_tokens_per_doc if max_tokens_per_doc is None else max_tokens_per_doc,
            self.builder.truncate if truncate is None else truncate,
            self.split if split is None else split,
        )
        if wanted == (self.max_tokens_per_doc, self.builder.truncate, self.split):
            return self.builder
        return self._builder(*wanted)

    def score_blocks(self, blocks: PromptBlocks) -> torch.Tensor:
        """Scores ``[N]`` for an already built prompt, in document order (higher is more relevant)."""
        return self.score_and_mass(blocks)[0]

    def score_and_mass(self, blocks: PromptBlocks) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores and list-normalised masses ``[N]`` for a built prompt (a document's best passage counts)."""
        if self.method == "decode":
            answer = eager_on_failure(
                self.model,
                lambda: decode_answer(
                    self.model,
                    self.tokenizer,
                    blocks,
                    mode=self.attention,
                    batch_tokens=self.batch_tokens,
                    tail_position=self.tail_position,
                ),
            )
            ranked = ranking_scores(parse_ranking(answer, len(blocks.docs)), len(blocks.docs))
            ranked = pool_passages(ranked, blocks.owner, blocks.num_documents)
            return ranked, ranked
        readout = self.readout(blocks)
        if self.calibration is None:
            return readout.mass, readout.mass
        return self.calibration(readout.logits()), readout.mass

    def readout(self, blocks: PromptBlocks) -> AttentionReadout:
        """The layer-l* readout of a built prompt, per document (a document's best passage counts)."""
        readout = eager_on_failure(
            self.model,
            lambda: attention_readout(
                self.model,
                blocks,
                self.layer,
                mode=self.attention,
                batch_tokens=self.batch_tokens,
                tail_position=self.tail_position,
            ),
        )
        return AttentionReadout(pool_passages(readout.mass, blocks.owner, blocks.num_documents), readout.log_scale)

    def score(self, query: str, documents: Sequence[DocumentLike]) -> list[float]:
        """One score per document, in the caller's order."""
        return self.score_blocks(self.prompt(query, documents)).tolist()

    def _report_truncation(self, n: int, total: int, budget: int) -> None:
        """Warn the first time only; after that, log (``RerankReport.truncated`` has every call's details)."""
        message = f"{n} of {total} documents were truncated to {budget} tokens"
        if self._warned_truncation:
            logger.info(message)
            return
        self._warned_truncation = True
        warnings.warn(
            f"{message}. This reranker warns once; later truncations are logged ('blockrank' logger) and "
            "listed on RerankReport.truncated. Pass truncate=False to get an error instead.",
            TruncationWarning,
            stacklevel=3,
        )

    def rerank(
        self,
        query: str,
        documents: Sequence[DocumentLike],
        top_k: int | None = None,
        first_stage: Sequence[float] | None = None,
        first_stage_weight: float = FIRST_STAGE_WEIGHT,
    ) -> list[Result]:
        """Documents best first (ties keep the input order); ``top_k`` keeps only the best ``k``.

        ``first_stage``: the retriever's scores, one per document. The ranking then follows their fusion with
        BlockRank's (z-normalised within the list, the first stage weighted ``first_stage_weight``); it helped a
        strong first stage such as SPLADE++ and hurt BM25's (docs/results.md, "Fusion with the first stage").
        """
        report = self.rerank_report(query, documents, top_k, first_stage=first_stage, first_stage_weight=first_stage_weight)
        return report.results

    def rerank_report(
        self,
        query: str,
        documents: Sequence[DocumentLike],
        top_k: int | None = None,
        max_tokens_per_doc: int | None = None,
        truncate: bool | None = None,
        max_query_tokens: int | None = None,
        max_prompt_tokens: int | None = None,
        cancel: threading.Event | None = None,
        first_stage: Sequence[float] | None = None,
        first_stage_weight: float = FIRST_STAGE_WEIGHT,
    ) -> RerankReport:
        """:meth:`rerank` plus what the prompt looked like (truncated documents, token count).

        The cost is bounded before the model runs: a query over ``max_query_tokens`` raises
        :class:`QueryTooLongError`, a prompt over ``max_prompt_tokens`` :class:`PromptTooLongError`
        (defaults: the reranker's). Setting ``cancel`` from another thread stops the model at its next
        layer with :class:`~blockrank.scoring.Cancelled`.
        """
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
            raise InputError(f"top_k must be a positive integer, got {top_k!r}")
        docs = as_documents(documents)
        given = None if first_stage is None else check_first_stage(first_stage, len(docs), first_stage_weight)
        query_limit = max_query_tokens or self.max_query_tokens
        n = len(self.tokenizer.encode(query, add_special_tokens=False)) if isinstance(query, str) else 0
        if n > query_limit:
            raise QueryTooLongError(f"query has {n} tokens, over the limit of {query_limit}")
        builder = self.builder_for(max_tokens_per_doc, truncate)
        blocks = builder.build(query, docs)
        prompt_limit = max_prompt_tokens or self.max_prompt_tokens
        if blocks.num_tokens > prompt_limit:
            raise PromptTooLongError(
                f"the prompt has {blocks.num_tokens} tokens, over the limit of {prompt_limit}: send fewer or shorter documents"
            )
        if blocks.truncated:
            self._report_truncation(len(blocks.truncated), len(docs), builder.doc_limit)
        with cancellable(self.model, cancel):
            scores, mass = self.score_and_mass(blocks)
        key: list[float] = mass.double().tolist()
        fused = None
        if given is not None:
            key = fused = fuse_first_stage(given, key, first_stage_weight, log_mass=self.method == "attention")
        order = sorted(range(len(docs)), key=lambda i: -key[i])  # calibration keeps the order of mass
        results = [
            Result(i, docs[i].id, float(scores[i]), docs[i], float(mass[i]), None if fused is None else fused[i])
            for i in order[:top_k]
        ]
        return RerankReport(
            results=results, truncated=blocks.truncated, num_tokens=blocks.num_tokens, doc_limit=builder.doc_limit
        )

    def predict(self, pairs: Sequence[tuple[str, DocumentLike]]) -> np.ndarray:
        """One score per ``(query, document)`` pair, like sentence-transformers' ``CrossEncoder.predict``.

        Pairs that share a query go into one BlockRank prompt, so they are read together; without a calibration
        a score is a share of its query's list (they sum to 1).
        """
        if not len(pairs):
            raise InputError("pairs is empty: give (query, document) pairs")
        groups: dict[str, list[int]] = {}
        for i, pair in enumerate(pairs):
            if (
                not isinstance(pair, (tuple, list))
                or len(pair) != 2
                or not isinstance(pair[0], str)
                or not isinstance(pair[1], (str, Mapping, Document))
            ):
                raise DocumentTypeError(f"pair {i} is not a (query, document) pair of strings: {pair!r:.80}")
            groups.setdefault(pair[0], []).append(i)
        scores: np.ndarray = np.zeros(len(pairs), dtype=np.float32)
        for query, idx in groups.items():
            scores[idx] = self.score(query, [pairs[i][1] for i in idx])
        return scores

    def rank(
        self,
        query: str,
        documents: Sequence[DocumentLike],
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
    ) -> list[dict[str, Any]]:
        """sentence-transformers' ``CrossEncoder.rank``: ``[{"corpus_id", "score", "text"?}]`` best first.
        ``batch_size`` and ``show_progress_bar`` are accepted for drop-in use and change nothing: the documents
        of one query always go into one prompt."""
        out = []
        for r in self.rerank(query, documents, top_k=top_k):
            item: dict[str, Any] = {"corpus_id": r.index, "score": r.score}
            if return_documents:
                item["text"] = r.document.content
            out.append(item)
        return out

    def rerank_batch(
        self,
        queries: Sequence[str],
        documents: Sequence[Sequence[DocumentLike]],
        top_k: int | None = None,
        progress: bool = False,
        first_stage: Sequence[Sequence[float]] | None = None,
        first_stage_weight: float = FIRST_STAGE_WEIGHT,
    ) -> list[list[Result]]:
        """:meth:`rerank` for many queries, each with its own documents (``progress`` shows a bar) and, with
        ``first_stage``, its own list of retriever scores."""
        if len(queries) != len(documents):
            raise InputError(f"got {len(queries)} queries but {len(documents)} document lists")
        if first_stage is not None and len(first_stage) != len(queries):
            raise InputError(f"got {len(queries)} queries but {len(first_stage)} first_stage score lists")
        given = [None] * len(queries) if first_stage is None else list(first_stage)
        jobs = tqdm(list(zip(queries, documents, given)), desc="rerank", unit="query", disable=not progress)
        return [self.rerank(q, d, top_k, first_stage=f, first_stage_weight=first_stage_weight) for q, d, f in jobs]


def settings(trained: dict, **kwargs) -> dict[str, Any]:
    """:class:`Reranker` arguments: a trained model's ``layer``/``max_doc_tokens`` (``LoadedModel.settings``),
    overridden by the non-None ``kwargs``."""
    given = {k: v for k, v in kwargs.items() if v is not None}
    return {k: v for k, v in trained.items() if k in ("layer", "max_doc_tokens")} | given


def pool_passages(scores: torch.Tensor, owner: list[int] | None, n_docs: int) -> torch.Tensor:
    """Per-document scores ``[n_docs]`` from per-block ``scores``: the best passage of each document."""
    if owner is None:
        return scores
    index = torch.tensor(owner, device=scores.device)
    return torch.full((n_docs,), float("-inf"), dtype=scores.dtype, device=scores.device).scatter_reduce(
        0, index, scores, reduce="amax"
    )
