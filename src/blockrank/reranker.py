"""The public API: ``Reranker.from_pretrained().rerank(query, documents)``."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedModel

from blockrank.calibration import Calibration, Evidence, check_input_order, find_calibration, sigmoid
from blockrank.defaults import MAX_TOKENS_PER_DOC, MODES, InputOrder, Mode
from blockrank.errors import DocumentTypeError, InputError, PromptTooLongError, QueryTooLongError, warn_deprecated
from blockrank.fusion import check_first_stage
from blockrank.kernel.attention import BATCH_TOKENS
from blockrank.kernel.compiled import compile_layers, eager_on_failure, is_compiled
from blockrank.kernel.scoring import (
    AttentionReadout,
    attention_readout,
    cancellable,
    check_layer,
    decode_answer,
    parse_ranking,
    ranking_scores,
)
from blockrank.model import LoadedModel, default_layer, display_name, load_model
from blockrank.prompt import Document, PromptBlocks, PromptBuilder, TruncationWarning, as_documents
from blockrank.settings import ModelSettings

ScoreBy = Literal["attention", "decode"]  # what scores: attention at l*, or decoding the answer list
DocumentLike = str | Mapping[str, Any] | Document

logger = logging.getLogger("blockrank")


@dataclass(frozen=True)
class Result:
    """One ranked document: its position in the caller's list, its id, its score and the document.

    ``score`` is the probability that the document is relevant to the query, given everything the call had: the
    model's reading, the input order (as far as it is trusted, ``input_order``) and the first stage's scores if
    given (:mod:`blockrank.calibration`). It means the same at every list size: threshold it. Results are sorted by
    it. ``model_score`` is the same probability from the model's evidence alone. ``mass`` is the document's share
    of the attention at layer l*, normalised over this list (it shrinks as the list grows).

    A reranker without a calibration ranks by ``mass`` alone, and ``score`` and ``model_score`` are the mass.
    """

    index: int
    id: str
    score: float
    document: Document
    mass: float
    model_score: float

    @property
    def fused(self) -> float:
        """Deprecated since 0.6 (removed in 0.7): the fused score is ``score`` now."""
        warn_deprecated("Result.fused", "Result.score, which now fuses the first stage and the input order", "0.6")
        return self.score


@dataclass(frozen=True)
class RerankReport:
    """Results best first, the documents cut to the per-document limit, that limit and the prompt's length."""

    results: list[Result]
    truncated: list[int]
    num_tokens: int
    doc_limit: int


class Reranker:
    """In-context reranker over one causal LM.

    ``settings`` are what the model was trained to score with (:class:`~blockrank.settings.ModelSettings`:
    the layer l*, the block length, the calibration); :meth:`from_pretrained` loads a model's own. The other
    arguments say how to read this model:

    - ``score_by="attention"`` (default) scores documents by the signal tokens' attention at l* and stops the
      forward there; ``"decode"`` generates the answer list. ``attention`` picks the implementation:
      ``"sparse"`` (BlockRank, linear), ``"reference"`` (the stock kernel with an explicit mask, quadratic) or
      ``"causal"`` (ordinary full attention, the ICR baseline).
    - Documents are read whole: ``split=True`` cuts a document longer than one block into overlapping passages,
      one block each, and scores it by its best passage; up to ``max_tokens_per_doc`` tokens of a document count
      (4,096, Cohere's default). ``split=False`` reads only the first block. Past the limit a document is
      truncated and reported, or refused with ``truncate=False``.
    - With a calibration, scores are probabilities of relevance and the ranking follows them; they weigh the
      caller's order as ``input_order`` says (``"auto"``: as far as it agrees with the model; ``"ranked"``;
      ``"unordered"``: not at all). Without one, scores are the list-normalised attention mass and the ranking
      is the model's alone.
    - ``compile=True`` compiles the decoder layers (:mod:`blockrank.kernel.compiled`): faster calls after a first
      one that compiles. It compiles ``model`` itself, in place, for every other user of that object too.

    ``layer``, ``max_doc_tokens``, ``calibration`` and ``method`` are the 0.6 spellings, still read (deprecated).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer,
        settings: ModelSettings | None = None,
        *,
        score_by: ScoreBy = "attention",
        attention: Mode = "sparse",
        max_tokens_per_doc: int = MAX_TOKENS_PER_DOC,
        split: bool = True,
        truncate: bool = True,
        batch_tokens: int = BATCH_TOKENS,
        tail_position: int | None = None,
        max_query_tokens: int = 1024,
        max_prompt_tokens: int = 1_000_000,
        compile: bool = False,
        input_order: InputOrder = "auto",
        **deprecated: Any,
    ):
        settings, score_by = _renamed_arguments(settings or ModelSettings(), score_by, deprecated)
        if score_by not in ("attention", "decode"):
            raise InputError(f"unknown score_by {score_by!r}; choose 'attention' or 'decode'")
        if attention not in MODES:
            raise InputError(f"unknown attention {attention!r}; choose one of {', '.join(MODES)}")
        self.model = model
        self.tokenizer = tokenizer
        layer = default_layer(model.config) if settings.layer is None else settings.layer
        check_layer(model.config, layer)
        if settings.calibration is not None and settings.calibration.layer != layer:
            raise InputError(f"the calibration was fitted at layer {settings.calibration.layer}; this reranker scores at {layer}")
        settings = dataclasses.replace(settings, layer=layer)
        if settings.calibration is not None and score_by != "attention":
            raise InputError(f"the calibration reads attention scores; this reranker scores by {score_by}")
        self.settings = settings
        self.score_by = score_by
        self.attention = attention
        self._warned_truncation = False
        self.max_query_tokens, self.max_prompt_tokens = max_query_tokens, max_prompt_tokens
        self.max_tokens_per_doc, self.split = max_tokens_per_doc, split
        self.builder = self._builder(max_tokens_per_doc, truncate, split)
        self.batch_tokens, self.tail_position = batch_tokens, tail_position
        self.input_order = check_input_order(input_order)
        if compile and not is_compiled(model):
            compile_layers(model)

    @property
    def layer(self) -> int:
        """l*, the layer whose attention scores."""
        assert self.settings.layer is not None  # resolved in __init__
        return self.settings.layer

    @property
    def block_tokens(self) -> int:
        """Tokens per block: the trained block length, a passage's length when a document is split."""
        return self.settings.block_tokens

    @property
    def calibration(self) -> Calibration | None:
        return self.settings.calibration

    @property
    def method(self) -> ScoreBy:
        """Deprecated since 0.7: ``score_by``."""
        warn_deprecated("Reranker.method", "Reranker.score_by", "0.7")
        return self.score_by

    @property
    def max_doc_tokens(self) -> int:
        """Deprecated since 0.7: ``block_tokens``."""
        warn_deprecated("Reranker.max_doc_tokens", "Reranker.block_tokens", "0.7")
        return self.block_tokens

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        *,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        calibrated: bool | None = None,
        layer: int | None = None,
        block_tokens: int | None = None,
        **kwargs: Any,
    ) -> Reranker:
        """Load a model (``None``: the embedded default) with its settings, and wrap it.

        ``layer`` and ``block_tokens`` override the model's trained settings (for research on untrained models);
        ``kwargs`` go to :class:`Reranker`. ``calibrated=None`` uses the model's matching ``calibration.json``
        and otherwise warns and scores by mass; ``True`` requires one; ``False`` scores by mass.
        """
        loaded = load_model(name_or_path, dtype=dtype, device=device)
        name = display_name(name_or_path or "default")
        return cls.from_loaded(loaded, name, calibrated, layer=layer, block_tokens=block_tokens, **kwargs)

    @classmethod
    def from_loaded(
        cls,
        loaded: LoadedModel,
        name: str,
        calibrated: bool | None = None,
        layer: int | None = None,
        block_tokens: int | None = None,
        **kwargs: Any,
    ) -> Reranker:
        """Wrap an already loaded model (:func:`~blockrank.model.load_model`, called ``name``) as
        :meth:`from_pretrained` does: its trained settings overridden as given, its calibration as ``calibrated`` says."""
        settings = loaded.settings.replace(layer=layer, block_tokens=block_tokens)
        layer = default_layer(loaded.model.config) if settings.layer is None else settings.layer
        if kwargs.get("score_by", kwargs.get("method", "attention")) != "attention":
            calibrated = False
        calibration = find_calibration(settings.source, name, layer, calibrated)
        return cls(loaded.model, loaded.tokenizer, settings.replace(layer=layer, calibration=calibration), **kwargs)

    def _builder(self, max_tokens_per_doc: int, truncate: bool, split: bool) -> PromptBuilder:
        if max_tokens_per_doc <= 0:
            raise InputError(f"max_tokens_per_doc must be positive, got {max_tokens_per_doc}")
        if split:
            return PromptBuilder(self.tokenizer, self.block_tokens, truncate, max_tokens_per_doc=max_tokens_per_doc)
        return PromptBuilder(self.tokenizer, min(self.block_tokens, max_tokens_per_doc), truncate)

    def prompt(self, query: str, documents: Sequence[DocumentLike], **overrides: Any) -> PromptBlocks:
        """Build the prompt; ``overrides`` (:meth:`builder_for`'s) change the reranker's settings for this call."""
        return self.builder_for(**overrides).build(query, documents)

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
        """Model-only scores ``[N]`` for an already built prompt, in document order (higher is more relevant)."""
        return self.score_and_mass(blocks)[0]

    def score_and_mass(self, blocks: PromptBlocks) -> tuple[torch.Tensor, torch.Tensor]:
        """Model-only scores and list-normalised masses ``[N]`` for a built prompt (a document's best passage counts)."""
        _, _, model_score, mass = self.judge(blocks, None, "unordered")
        return torch.from_numpy(model_score), torch.from_numpy(mass)

    def judge(
        self, blocks: PromptBlocks, first_stage: Sequence[float] | None, input_order: InputOrder
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(key, score, model_score, mass)`` per document of a built prompt, in document order (see :class:`Result`);
        ``key`` orders as ``score`` does without saturating (the log-odds)."""
        if self.score_by == "decode":
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
            ranked = pool_passages(ranked, blocks.owner, blocks.num_documents).double().numpy()
            return ranked, ranked, ranked, ranked
        readout = self.readout(blocks)
        mass = readout.mass.double().numpy()
        if self.calibration is None:
            return mass, mass, mass, mass
        evidence = Evidence.of(readout, blocks, first_stage)
        key = self.calibration.log_odds(evidence, input_order)
        return key, sigmoid(key), sigmoid(self.calibration.log_odds(evidence, model_only=True)), mass

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
        return AttentionReadout(
            pool_passages(readout.mass, blocks.owner, blocks.num_documents),
            pool_passages(readout.affinity, blocks.owner, blocks.num_documents),
        )

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
        input_order: InputOrder | None = None,
        first_stage_weight: float | None = None,
    ) -> list[Result]:
        """Documents best first, by ``score`` (ties keep the input order); ``top_k`` keeps only the best ``k``.

        ``first_stage``: the retriever's scores, one per document, as further evidence. ``input_order``: what the
        documents' order means (default: the reranker's, ``"auto"``). ``first_stage_weight`` is deprecated and
        ignored: the weights are fitted (:mod:`blockrank.calibration`).
        """
        report = self.rerank_report(
            query, documents, top_k, first_stage=first_stage, input_order=input_order, first_stage_weight=first_stage_weight
        )
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
        input_order: InputOrder | None = None,
        first_stage_weight: float | None = None,
    ) -> RerankReport:
        """:meth:`rerank` plus what the prompt looked like (truncated documents, token count).

        The cost is bounded before the model runs: a query over ``max_query_tokens`` raises
        :class:`QueryTooLongError`, a prompt over ``max_prompt_tokens`` :class:`PromptTooLongError`
        (defaults: the reranker's). Setting ``cancel`` from another thread stops the model at its next
        layer with :class:`~blockrank.kernel.scoring.Cancelled`.
        """
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
            raise InputError(f"top_k must be a positive integer, got {top_k!r}")
        if first_stage_weight is not None:
            warn_deprecated("first_stage_weight", "nothing: the first stage's weight is fitted with the calibration", "0.6", 3)
        order_mode = check_input_order(self.input_order if input_order is None else input_order)
        docs = as_documents(documents)
        given = None if first_stage is None else check_first_stage(first_stage, len(docs))
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
            key, score, model_score, mass = self.judge(blocks, given, order_mode)
        order = sorted(range(len(docs)), key=lambda i: -key[i])
        results = [Result(i, docs[i].id, float(score[i]), docs[i], float(mass[i]), float(model_score[i])) for i in order[:top_k]]
        return RerankReport(
            results=results, truncated=blocks.truncated, num_tokens=blocks.num_tokens, doc_limit=builder.doc_limit
        )

    def predict(
        self,
        sentences: Sequence[tuple[str, DocumentLike]] | tuple[str, DocumentLike],
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
    ) -> np.ndarray | torch.Tensor | list[float] | float:
        """One score per ``(query, document)`` pair, as sentence-transformers' ``CrossEncoder.predict``; one pair
        alone gives one score.

        Pairs that share a query go into one BlockRank prompt, read as an unordered list (pairs carry no ranking).
        Scores are model-only probabilities of relevance; ``activation_fn`` is applied to their log-odds instead
        (``torch.nn.Identity()`` gives the log-odds), and ``apply_softmax`` normalises over the pairs of each
        query. Without a calibration a score is a share of its query's list (they sum to 1). ``batch_size`` is
        accepted and changes nothing: a query's documents always share one prompt.
        """
        single = isinstance(sentences, (tuple, list)) and len(sentences) == 2 and isinstance(sentences[0], str)
        single = single and not isinstance(sentences[1], (tuple, list))
        pairs = [sentences] if single else list(sentences)
        if not pairs:
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
        scores = torch.zeros(len(pairs), dtype=torch.float64)
        for query, idx in tqdm(groups.items(), desc="predict", unit="query", disable=not show_progress_bar):
            scores[idx] = self._activated([pairs[i][1] for i in idx], query, activation_fn, apply_softmax)
        out = scores.float()
        if single:
            return float(out[0])
        if convert_to_tensor:
            return out
        return out.numpy() if convert_to_numpy else out.tolist()

    def _activated(self, documents: list, query: str, activation_fn, apply_softmax: bool) -> torch.Tensor:
        """Model-only scores of one query's documents, through ``activation_fn`` and the softmax if asked."""
        score = self.score_blocks(self.prompt(query, documents))
        if activation_fn is not None or apply_softmax:
            if self.calibration is None or self.score_by != "attention":
                logits = score.clamp_min(1e-300).log()
            else:
                logits = torch.logit(score.clamp(1e-15, 1 - 1e-15))
            score = logits if activation_fn is None else activation_fn(logits)
            if apply_softmax:
                score = torch.softmax(score, 0)
        return score

    def rank(
        self,
        query: str,
        documents: Sequence[DocumentLike],
        top_k: int | None = None,
        return_documents: bool = False,
        activation_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        apply_softmax: bool = False,
        **unused: Any,
    ) -> list[dict[str, Any]]:
        """sentence-transformers' ``CrossEncoder.rank``: ``[{"corpus_id", "score", "text"?}]`` best first, scored as
        :meth:`predict` scores (the documents read as an unordered list). ``activation_fn`` and ``apply_softmax``
        are ``predict``'s; its ``batch_size``, ``show_progress_bar`` and ``convert_to_*`` are accepted and change
        nothing in a ranking."""
        if unknown := sorted(set(unused) - {"batch_size", "show_progress_bar", "convert_to_numpy", "convert_to_tensor"}):
            raise TypeError(f"rank() got unexpected keyword arguments {unknown}")
        scores = self._activated(list(documents), query, activation_fn, apply_softmax)
        order = sorted(range(len(documents)), key=lambda i: -float(scores[i]))[:top_k]
        out = []
        for i in order:
            item: dict[str, Any] = {"corpus_id": i, "score": float(scores[i])}
            if return_documents:
                item["text"] = as_documents([documents[i]])[0].content
            out.append(item)
        return out

    def rerank_batch(
        self,
        queries: Sequence[str],
        documents: Sequence[Sequence[DocumentLike]],
        top_k: int | None = None,
        progress: bool = False,
        first_stage: Sequence[Sequence[float]] | None = None,
        input_order: InputOrder | None = None,
        first_stage_weight: float | None = None,
    ) -> list[list[Result]]:
        """:meth:`rerank` for many queries, each with its own documents (``progress`` shows a bar) and, with
        ``first_stage``, its own list of retriever scores."""
        if len(queries) != len(documents):
            raise InputError(f"got {len(queries)} queries but {len(documents)} document lists")
        if first_stage is not None and len(first_stage) != len(queries):
            raise InputError(f"got {len(queries)} queries but {len(first_stage)} first_stage score lists")
        given = [None] * len(queries) if first_stage is None else list(first_stage)
        jobs = tqdm(list(zip(queries, documents, given)), desc="rerank", unit="query", disable=not progress)
        return [
            self.rerank(q, d, top_k, first_stage=f, input_order=input_order, first_stage_weight=first_stage_weight)
            for q, d, f in jobs
        ]


def pool_passages(scores: torch.Tensor, owner: list[int] | None, n_docs: int) -> torch.Tensor:
    """Per-document scores ``[n_docs]`` from per-block ``scores``: the best passage of each document."""
    if owner is None:
        return scores
    index = torch.tensor(owner, device=scores.device)
    return torch.full((n_docs,), float("-inf"), dtype=scores.dtype, device=scores.device).scatter_reduce(
        0, index, scores, reduce="amax"
    )


def _renamed_arguments(settings: ModelSettings, score_by: ScoreBy, old: dict[str, Any]) -> tuple[ModelSettings, ScoreBy]:
    """Fold 0.6's loose :class:`Reranker` keywords into the settings (each warns once)."""
    renamed = {
        "layer": "settings.layer",
        "max_doc_tokens": "settings.block_tokens (from_pretrained: block_tokens=)",
        "calibration": "settings.calibration",
        "method": "score_by=",
    }
    if unknown := sorted(set(old) - set(renamed)):
        raise TypeError(f"Reranker got unexpected keyword arguments {unknown}")
    for name in old:
        warn_deprecated(f"Reranker({name}=...)", renamed[name], "0.7", 3)
    settings = settings.replace(layer=old.get("layer"), block_tokens=old.get("max_doc_tokens"))
    if "calibration" in old:
        settings = dataclasses.replace(settings, calibration=old["calibration"])
    return settings, old.get("method", score_by)
