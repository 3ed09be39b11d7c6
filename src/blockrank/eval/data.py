"""Readers and writers for IR data: BEIR directories, TREC qrels and run files, candidate-list JSONL.

Every reader names the file and line of what it cannot parse.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from blockrank.errors import DataFormatError
from blockrank.files import write_text_atomic
from blockrank.prompt import Document

Qrels = dict[str, dict[str, int]]  # qid -> docid -> grade
Run = dict[str, list[tuple[str, float]]]  # qid -> [(docid, score)] best first


@dataclass
class Candidates:
    """One query with its first-stage candidates, best first."""

    qid: str
    query: str
    documents: list[Document]
    scores: list[float] = field(default_factory=list)


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path} does not exist")
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{path}, line {n}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise DataFormatError(f"{path}, line {n}: expected a JSON object")
            yield row


def _field(row: dict, names: tuple[str, ...], path: Path) -> str:
    for name in names:
        if name in row:
            return str(row[name])
    raise DataFormatError(f"{path}: a row has none of the fields {', '.join(names)}")


def read_corpus(path: str | os.PathLike) -> dict[str, Document]:
    """BEIR ``corpus.jsonl`` (``_id``, ``title``, ``text``)."""
    path = Path(path)
    corpus = {}
    for row in read_jsonl(path):
        doc_id = _field(row, ("_id", "doc_id", "docid", "id"), path)
        corpus[doc_id] = Document(id=doc_id, text=str(row.get("text", "")), title=str(row.get("title") or ""))
    return corpus


def read_queries(path: str | os.PathLike) -> dict[str, str]:
    """BEIR ``queries.jsonl`` (``_id``, ``text``)."""
    path = Path(path)
    return {_field(r, ("_id", "query_id", "qid", "id"), path): _field(r, ("text", "query"), path) for r in read_jsonl(path)}


def read_qrels(path: str | os.PathLike) -> Qrels:
    """Graded qrels: BEIR TSV (``query-id corpus-id score`` with a header) or TREC (``qid Q0 docid grade``)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path} does not exist")
    qrels: Qrels = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts or (n == 1 and parts[0] == "query-id"):
            continue
        if len(parts) == 3:
            qid, docid, grade = parts
        elif len(parts) == 4:
            qid, _, docid, grade = parts
        else:
            raise DataFormatError(f"{path}, line {n}: expected 3 (BEIR) or 4 (TREC) columns, got {len(parts)}")
        try:
            qrels.setdefault(qid, {})[docid] = int(float(grade))
        except ValueError:
            raise DataFormatError(f"{path}, line {n}: grade {grade!r} is not a number") from None
    if not qrels:
        raise DataFormatError(f"{path} holds no judgements")
    return qrels


def read_run(path: str | os.PathLike) -> Run:
    """TREC run file (``qid Q0 docid rank score tag``), each query sorted by score; duplicates are dropped with a warning."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path} does not exist")
    rows: dict[str, dict[str, float]] = {}
    duplicates = 0
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise DataFormatError(f"{path}, line {n}: expected 6 columns (qid Q0 docid rank score tag), got {len(parts)}")
        qid, _, docid, _, score, _ = parts
        try:
            value = float(score)
        except ValueError:
            raise DataFormatError(f"{path}, line {n}: score {score!r} is not a number") from None
        if docid in rows.setdefault(qid, {}):
            duplicates += 1
            continue
        rows[qid][docid] = value
    if duplicates:
        warnings.warn(f"{path}: {duplicates} duplicate (query, document) rows ignored; the first of each was kept", stacklevel=2)
    return {qid: sorted(docs.items(), key=lambda x: -x[1]) for qid, docs in rows.items()}


def format_run(qid: str, ranked: list[tuple[str, float]], tag: str) -> str:
    """TREC run lines for one query, ``ranked`` best first."""
    return "".join(f"{qid} Q0 {docid} {rank} {score:.6f} {tag}\n" for rank, (docid, score) in enumerate(ranked, 1))


def write_run(path: str | os.PathLike, run: Run, tag: str) -> None:
    """Write a whole run atomically."""
    write_text_atomic(path, "".join(format_run(q, ranked, tag) for q, ranked in run.items()))


def read_candidates(path: str | os.PathLike) -> list[Candidates]:
    """Candidate lists ``{qid, query, candidates: [{docid, text, score?, title?}]}`` (e.g. TREC DL BM25 top-100),
    one a line, or rank_llm's retrieve-results JSON (see :func:`read_rank_llm`)."""
    path = Path(path)
    if path.is_file():
        with path.open(encoding="utf-8") as f:
            if f.read(64).lstrip().startswith("["):
                return read_rank_llm(path)
    out = []
    for row in read_jsonl(path):
        qid = _field(row, ("qid", "query_id", "_id"), path)
        cands = row.get("candidates")
        if not isinstance(cands, list):
            raise DataFormatError(f"{path}: query {qid} has no 'candidates' list")
        docs = [
            Document(id=str(c.get("docid", c.get("doc_id"))), text=str(c.get("text", "")), title=str(c.get("title") or ""))
            for c in cands
        ]
        scores = [float(c.get("score", -i)) for i, c in enumerate(cands)]
        out.append(Candidates(qid=qid, query=_field(row, ("query", "text"), path), documents=docs, scores=scores))
    return out


def read_rank_llm(path: str | os.PathLike) -> list[Candidates]:
    """rank_llm's retrieve results: ``[{query: str | {text, qid}, hits: [{qid, docid, rank, score, content}]}]``."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: not valid JSON ({err.msg})") from None
    out = []
    for n, row in enumerate(rows if isinstance(rows, list) else [], 1):
        if not isinstance(row, dict) or not isinstance(row.get("hits"), list) or "query" not in row:
            raise DataFormatError(f"{path}, entry {n}: expected {{query, hits: [...]}} (rank_llm retrieve results)")
        query, hits = row["query"], sorted(row["hits"], key=lambda h: h.get("rank", 0))
        qid = query.get("qid") if isinstance(query, dict) else None
        if qid is None:
            qid = hits[0].get("qid", n) if hits else n
        text = query.get("text") if isinstance(query, dict) else query
        try:
            docs = [Document(str(h["docid"]), str(h["content"])) for h in hits]
        except KeyError as err:
            raise DataFormatError(f"{path}, entry {n}: a hit has no {err.args[0]!r}") from None
        out.append(Candidates(str(qid), str(text), docs, [float(h.get("score", -i)) for i, h in enumerate(hits)]))
    if not out:
        raise DataFormatError(f"{path}: expected a JSON list of rank_llm retrieve results")
    return out


def write_rank_llm(path: str | os.PathLike, candidates: list[Candidates], run: dict[str, dict[str, float]]) -> None:
    """``candidates`` reordered by ``run`` (``{qid: {docid: score}}``), in rank_llm's retrieve-results JSON."""
    rows = []
    for c in candidates:
        scores = run.get(c.qid)
        if scores is None:
            continue
        texts = {d.id: d.content for d in c.documents}
        ranked = sorted((d for d in scores if d in texts), key=lambda d: -scores[d])
        rows.append(
            {
                "query": {"text": c.query, "qid": c.qid},
                "hits": [
                    {"qid": c.qid, "docid": d, "rank": r, "score": scores[d], "content": texts[d]}
                    for r, d in enumerate(ranked, 1)
                ],
            }
        )
    write_text_atomic(path, json.dumps(rows, indent=1))


@dataclass
class BeirDataset:
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: Qrels


def read_beir(directory: str | os.PathLike, split: str = "test") -> BeirDataset:
    """A BEIR directory: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/{split}.tsv``."""
    directory = Path(directory)
    missing = [p for p in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv") if not (directory / p).is_file()]
    if missing:
        raise DataFormatError(f"{directory} is not a BEIR dataset: missing {', '.join(missing)}")
    return BeirDataset(
        read_corpus(directory / "corpus.jsonl"),
        read_queries(directory / "queries.jsonl"),
        read_qrels(directory / "qrels" / f"{split}.tsv"),
    )


def candidates_from_run(run: Run, queries: dict[str, str], corpus: dict[str, Document], top_k: int) -> list[Candidates]:
    """Join a first-stage run with query and document text; unknown ids are errors with counts."""
    missing_q = [q for q in run if q not in queries]
    if missing_q:
        raise DataFormatError(f"{len(missing_q)} run queries have no text (e.g. {missing_q[0]!r})")
    out, missing_d = [], 0
    for qid, ranked in run.items():
        docs = []
        for docid, score in ranked[:top_k]:
            if docid in corpus:
                docs.append((corpus[docid], score))
            else:
                missing_d += 1
        out.append(Candidates(qid, queries[qid], [d for d, _ in docs], [s for _, s in docs]))
    if missing_d:
        raise DataFormatError(f"{missing_d} run documents are not in the corpus")
    return out
