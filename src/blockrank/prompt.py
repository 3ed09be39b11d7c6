"""Prompt layout: (query, documents) -> token blocks.

Block 0 is the instruction, which already states the query; blocks 1..N hold one document each,
labelled ``[i]`` so the model can name it; the last block repeats the query and ends with the
answer opener (``Relevant documents: [``). Each block is tokenized on its own so documents can be
moved, dropped or batched without re-tokenizing the rest.

Whole documents: with ``max_tokens_per_doc`` set, a document longer than one block is split into
passages of the block length that overlap a little, one block each, so the cost stays linear in the
total tokens and nothing before the cap is invisible. ``PromptBlocks.owner`` maps blocks back to
documents; the reranker pools a document's passage scores (``reranker.pool_passages``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from blockrank.defaults import BLOCK_TOKENS
from blockrank.errors import DocumentTooLongError, DocumentTypeError, InputError

INSTRUCTION = (
    "You are a search engine. Below are {n} candidate documents, each labelled with an id in square "
    "brackets. Find the documents that are relevant to this query.\nQuery: {query}\n\n"
)
QUESTION = (
    "\nQuery: {query}\nWhich of the {n} documents above are relevant to the query? "
    "Answer with their ids in brackets, most relevant first."
)
ANSWER_OPENER = "Relevant documents: ["
_SENTINEL = "\u2063BLOCKRANK_DOCUMENTS\u2063"

PROMPT_VERSION = 1  # the template below; a model records the version it was trained with (blockrank.json)


class TruncationWarning(UserWarning):
    """A document was cut to the token budget (warned once per :class:`~blockrank.Reranker`)."""


@dataclass(frozen=True)
class Document:
    """One candidate document; ``id`` is the caller's identifier (defaults to its index)."""

    id: str
    text: str
    title: str = ""

    @property
    def content(self) -> str:
        return f"{self.title.rstrip('.')}. {self.text}" if self.title else self.text


def as_documents(documents: Sequence[str | Mapping[str, Any] | Document]) -> list[Document]:
    """Normalise strings, ``{id, title, text}`` dicts or Documents; raises on anything else."""
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise DocumentTypeError("documents must be a list of strings or {id, title, text} dicts")
    if len(documents) == 0:
        raise InputError("documents is empty: give at least one document to rerank")
    out = []
    for i, doc in enumerate(documents):
        if isinstance(doc, Document):
            out.append(doc)
        elif isinstance(doc, str):
            out.append(Document(id=str(i), text=doc))
        elif isinstance(doc, Mapping):
            text = doc.get("text")
            if not isinstance(text, str):
                raise DocumentTypeError(f"document {i}: a dict document needs a string 'text' field", i)
            doc_id = doc.get("id", doc.get("doc_id", doc.get("_id", i)))
            out.append(Document(id=str(doc_id), text=text, title=str(doc.get("title") or "")))
        else:
            raise DocumentTypeError(f"document {i} is a {type(doc).__name__}; expected a string or a dict with 'text'", i)
    return out


@dataclass
class PromptBlocks:
    """Token ids of one ICR prompt, block by block.

    ``docs[i]`` is the block of the caller's document ``i``; ``truncated`` lists the documents that
    were cut to the budget. The last ``n_signal`` tokens of ``tail`` are the signal tokens whose
    attention scores the documents. ``answer`` (training only) is the target answer, appended to the
    last block for teacher forcing.
    """

    prefix: list[int]
    docs: list[list[int]]
    tail: list[int]
    truncated: list[int] = field(default_factory=list)
    n_signal: int = 2
    answer: list[int] = field(default_factory=list)
    owner: list[int] | None = None  # owner[b]: the document of block b, when documents were split into passages
    lengths: list[int] = field(default_factory=list)  # lengths[i]: content tokens of document i that count

    @property
    def num_tokens(self) -> int:
        return len(self.prefix) + sum(map(len, self.docs)) + len(self.tail) + len(self.answer)

    @property
    def num_documents(self) -> int:
        """The caller's documents (fewer than ``docs`` when some were split into passages)."""
        return len(self.docs) if self.owner is None else self.owner[-1] + 1


class PromptBuilder:
    """Turns a query and documents into :class:`PromptBlocks` for one tokenizer.

    ``block_tokens`` is the block length. ``max_tokens_per_doc=None`` gives one block per document, cut to the
    block length; an integer splits documents into passages of the block length, overlapping by ``overlap``
    tokens (default an eighth of a block), and cuts each document at ``max_tokens_per_doc`` tokens. A document
    over its limit is cut and listed in ``truncated``, or raises with ``truncate=False``.
    """

    def __init__(
        self,
        tokenizer,
        block_tokens: int = BLOCK_TOKENS,
        truncate: bool = True,
        max_tokens_per_doc: int | None = None,
        overlap: int | None = None,
    ):
        if block_tokens <= 0:
            raise InputError("block_tokens must be positive")
        if max_tokens_per_doc is not None and max_tokens_per_doc <= 0:
            raise InputError("max_tokens_per_doc must be positive")
        overlap = block_tokens // 8 if overlap is None else overlap
        if not 0 <= overlap < block_tokens:
            raise InputError(f"overlap must be in [0, block_tokens), got {overlap}")
        self.tokenizer = tokenizer
        self.block_tokens = block_tokens
        self.truncate = truncate
        self.max_tokens_per_doc = max_tokens_per_doc
        self.overlap = overlap
        self._newline = self._encode("\n")

    @property
    def doc_limit(self) -> int:
        """Tokens of a document that count; the rest is truncated."""
        return self.block_tokens if self.max_tokens_per_doc is None else self.max_tokens_per_doc

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _frame(self, query: str, n: int) -> tuple[str, str]:
        """Text before and after the documents, through the chat template when there is one."""
        user = INSTRUCTION.format(n=n, query=query) + _SENTINEL + QUESTION.format(n=n, query=query)
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = user + "\n"
        before, after = text.split(_SENTINEL)
        return before, after + ANSWER_OPENER

    def answer(self, positives: list[int]) -> list[int]:
        """Target tokens after the ``[`` opener for 0-based positive documents, e.g. ``3, 7]``."""
        return self._encode(", ".join(str(i + 1) for i in positives) + "]")

    def passages(self, doc: Document) -> tuple[list[list[int]], bool, int]:
        """A document's content tokens as passages (one, unless splitting), whether it was truncated, and how many
        of its tokens count."""
        body = self._encode(" " + doc.content.strip())
        limit = self.doc_limit
        cut = len(body) > limit
        if cut and not self.truncate:
            knob = "block_tokens" if self.max_tokens_per_doc is None else "max_tokens_per_doc"
            raise DocumentTooLongError(
                f"document {doc.id!r} has {len(body)} tokens, over the budget of {limit} (raise {knob} or allow truncation)"
            )
        body = body[:limit]
        size, stride = self.block_tokens, self.block_tokens - self.overlap
        starts = range(0, max(len(body) - self.overlap, 1), stride) if self.max_tokens_per_doc else [0]
        return [body[s : s + size] for s in starts], cut, len(body)

    def build(self, query: str, documents: Sequence[str | Mapping[str, Any] | Document]) -> PromptBlocks:
        if not isinstance(query, str) or not query.strip():
            raise InputError("query is empty: give a non-empty query string")
        docs = as_documents(documents)
        pieces, owner, truncated, lengths = [], [], [], []
        for i, doc in enumerate(docs):
            passages, cut, length = self.passages(doc)
            pieces += passages
            owner += [i] * len(passages)
            lengths.append(length)
            if cut:
                truncated.append(i)
        before, after = self._frame(query.strip(), len(pieces))
        blocks = [self._encode(f"[{b + 1}]") + piece + self._newline for b, piece in enumerate(pieces)]
        return PromptBlocks(
            prefix=self._encode(before),
            docs=blocks,
            tail=self._encode(after),
            truncated=truncated,
            owner=owner if len(pieces) > len(docs) else None,
            lengths=lengths,
        )
