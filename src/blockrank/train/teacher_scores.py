"""Teacher scores computed once per training source and stored in small files, so that training never runs a teacher.

A source's teacher is a fusion of members (``given+mpnet``, or one member alone). Each member's scores live in
their own file, ``DIR/SOURCE.MEMBER.jsonl``, one row a query: ``{"qid", "docids": [...], "scores": [...]}``
covering every document that query's examples can draw (its pool). Members:

* ``minilm``, ``mpnet``: embedding cosines (list-independent);
* ``bm25``: BM25 with statistics over every pool of the source;
* ``given``: the list's own first-stage score (e.g. SPLADE++'s), taken from the data, not computed.

A training list's teacher scores are the mean over members of their scores z-normalised within that list
(:func:`blockrank.fusion.fuse`), so a one-member teacher gives targets as sharp as a fusion's. Files are appended a chunk
of queries at a time and synced: a kill loses at most the chunk in flight, and rerunning continues.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from blockrank.errors import ConfigError
from blockrank.eval.data import DataFormatError, read_jsonl
from blockrank.eval.encoders import TEACHERS as MEMBERS
from blockrank.files import append_synced
from blockrank.fusion import fuse
from blockrank.prompt import Document

Scores = dict[str, dict[str, float]]  # qid -> docid -> score
Pools = Sequence[tuple[str, str, list[Document], list[float] | None]]  # (qid, query, documents, first-stage scores)


def members(teacher: str) -> list[str]:
    names = [n.strip() for n in teacher.split("+")]
    unknown = [n for n in names if n not in MEMBERS]
    if unknown:
        raise ConfigError(
            f"teacher {teacher!r}: unknown member {unknown[0]!r}; use {', '.join(MEMBERS)} or a fusion such as given+mpnet"
        )
    return names


def score_path(directory: str | os.PathLike, source: str, member: str) -> Path:
    return Path(directory) / f"{source}.{member}.jsonl"


def read_scores(path: Path) -> Scores:
    """One member's stored scores; a row whose ids and scores differ in length is refused, naming the file."""
    out: Scores = {}
    for n, row in enumerate(read_jsonl(path), 1):
        try:
            qid, docids, scores = str(row["qid"]), row["docids"], row["scores"]
        except KeyError as err:
            raise DataFormatError(f"{path}, line {n}: missing field {err}") from None
        if not isinstance(docids, list) or not isinstance(scores, list) or len(docids) != len(scores):
            raise DataFormatError(
                f"{path}, line {n} (query {qid}): {len(docids)} document ids but "
                f"{len(scores) if isinstance(scores, list) else 'no'} scores"
            )
        out[qid] = dict(zip(map(str, docids), map(float, scores)))
    return out


def lookup(scores: Scores, path: Path, qid: str, docs: Sequence[Document]) -> list[float]:
    """The stored scores of ``docs`` for ``qid``; a query or document the file lacks is refused, naming the file."""
    row = scores.get(qid)
    if row is None:
        raise DataFormatError(
            f"{path} has no scores for query {qid!r}: it was made for other lists; add them with `blockrank label RECIPE`"
        )
    missing = [d.id for d in docs if d.id not in row]
    if missing:
        raise DataFormatError(
            f"{path}: query {qid!r} has no score for {len(missing)} of its documents "
            f"(e.g. {missing[0]!r}): it was made for other lists; add them with `blockrank label RECIPE`"
        )
    return [row[d.id] for d in docs]


def compute(
    path: Path, member: str, pools: Pools, dtype: torch.dtype | None = None, max_tokens: int | None = None, chunk: int = 16
) -> int:
    """Score every ``(qid, query, documents, first_stage)`` pool that ``path`` lacks with ``member`` and append
    them; returns how many were added. BM25 is computed over all pools in one call (corpus statistics).

    A query whose stored row misses documents of its pool (another recipe made it with shallower pools) is
    scored again and appended as the union of both, which :func:`read_scores` reads in place of the old row;
    exact for the per-document members (embeddings, given), while BM25 then mixes two calls' statistics."""
    _drop_torn_row(path)
    stored = read_scores(path) if path.is_file() else {}
    todo = [p for p in pools if p[0] not in stored or any(d.id not in stored[p[0]] for d in p[2])]
    if not todo:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    if member == "given" and any(p[3] is None for p in todo):
        raise ConfigError(f"{path}: the 'given' teacher needs first-stage scores, which this source does not have")
    from blockrank.eval.encoders import load_teacher

    scorer = load_teacher(member, dtype=dtype, max_tokens=max_tokens)
    step = len(todo) if member == "bm25" else chunk
    with path.open("a", encoding="utf-8") as f:
        for start in range(0, len(todo), step):
            part = todo[start : start + step]
            scores = scorer.score_lists([(p[1], p[2]) for p in part], [p[3] for p in part])
            rows = [stored.get(p[0], {}) | {d.id: round(x, 5) for d, x in zip(p[2], s_)} for p, s_ in zip(part, scores)]
            append_synced(
                f,
                "".join(
                    json.dumps({"qid": p[0], "docids": list(row), "scores": list(row.values())}) + "\n"
                    for p, row in zip(part, rows)
                ),
            )
    return len(todo)


def compute_all(
    teacher: str,
    source: str,
    directory: str | os.PathLike,
    pools: Pools,
    dtype: torch.dtype | None = None,
    max_tokens: int | None = None,
) -> dict[str, int]:
    """:func:`compute` for every member of ``teacher``, into ``directory/SOURCE.MEMBER.jsonl``; the queries newly
    scored per file."""
    paths = {member: score_path(directory, source, member) for member in members(teacher)}
    return {str(path): compute(path, member, pools, dtype, max_tokens) for member, path in paths.items()}


def fused(teacher: str, source: str, directory: str | os.PathLike) -> Callable[[str, Sequence[Document]], list[float]]:
    """The stored scores of ``teacher``'s members for ``source``, as ``(qid, documents) -> scores`` fused within
    that list; a member without a file is refused, naming it."""
    stored = []
    for member in members(teacher):
        path = score_path(directory, source, member)
        if not path.is_file():
            raise ConfigError(
                f"no stored {member} scores for source {source} ({path}): compute them with `blockrank label RECIPE`"
            )
        stored.append((path, read_scores(path)))
    return lambda qid, docs: fuse([lookup(scores, path, qid, docs) for path, scores in stored])


def _drop_torn_row(path: Path) -> None:
    """A kill mid-append can leave a last row without its newline: drop it, so that it is computed again."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
