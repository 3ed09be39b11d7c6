"""Offline reranking of run files, resumable: each finished query is appended (and fsynced) to the
output run, and a restart skips the queries already there.

``rerank_run_ray`` fans the same job out with Ray Data: one actor per model replica,
``map_batches`` over queries, results streamed back and appended the same way. On a cluster,
start Ray on every machine (``ray start``), then run ``blockrank rerank-run --ray --replicas R``
from the head node: the actors spread over the machines.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tqdm import tqdm

from blockrank.errors import InputError
from blockrank.eval.data import Candidates, format_run
from blockrank.files import append_synced, write_text_atomic
from blockrank.prompt import Document
from blockrank.reranker import Reranker


def finished_queries(path: Path, expected: dict[str, int]) -> set[str]:
    """Queries completely written to ``path``. Incomplete ones (a crash mid-write) are removed from the file."""
    if not path.exists():
        return set()
    groups: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.strip():
            groups.setdefault(line.split(maxsplit=1)[0], []).append(line)
    complete = {q for q, lines in groups.items() if len(lines) == expected.get(q, -1) and lines[-1].endswith("\n")}
    if len(complete) != len(groups):
        write_text_atomic(path, "".join(line for q in groups if q in complete for line in groups[q]))
    return complete


def rank_lines(reranker: Reranker, c: Candidates, tag: str, first_stage: bool = True) -> str:
    """One query's reranked run lines, the run's own order and (with ``first_stage``, when it has them) scores
    counting as evidence."""
    results = reranker.rerank(c.query, c.documents, first_stage=c.scores if first_stage and c.scores else None)
    return format_run(c.qid, [(r.id, r.score) for r in results], tag)


def _pending(candidates: list[Candidates], out: Path) -> list[Candidates]:
    for c in candidates:
        if not c.documents:
            raise InputError(f"query {c.qid} has an empty candidate list")
    done = finished_queries(out, {c.qid: len(c.documents) for c in candidates})
    return [c for c in candidates if c.qid not in done]


def rerank_run(
    reranker: Reranker,
    candidates: list[Candidates],
    out: str | os.PathLike,
    tag: str = "blockrank",
    first_stage: bool = True,
) -> int:
    """Rerank every query not yet in ``out`` (the run's scores count unless ``first_stage`` is False); returns how
    many were reranked now."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    todo = _pending(candidates, out)
    with out.open("a", encoding="utf-8") as f:
        for c in tqdm(todo, desc="rerank-run", unit="query"):
            append_synced(f, rank_lines(reranker, c, tag, first_stage))
    return len(todo)


class _RerankActor:
    """A Ray Data actor holding one model replica."""

    def __init__(self, model: str | None, tag: str, reranker_kwargs: dict[str, Any], first_stage: bool):
        self.reranker = Reranker.from_pretrained(model, **reranker_kwargs)
        self.tag, self.first_stage = tag, first_stage

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        lines = []
        for qid, query, docs, scores in zip(batch["qid"], batch["query"], batch["documents"], batch["scores"]):
            documents = [Document(id=str(d["id"]), text=str(d["text"]), title=str(d["title"])) for d in docs]
            c = Candidates(str(qid), str(query), documents, [float(x) for x in scores])
            lines.append(rank_lines(self.reranker, c, self.tag, self.first_stage))
        return {"lines": lines}


def rerank_run_ray(
    model: str | None,
    candidates: list[Candidates],
    out: str | os.PathLike,
    tag: str = "blockrank",
    replicas: int = 1,
    reranker_kwargs: dict[str, Any] | None = None,
    first_stage: bool = True,
) -> int:
    """:func:`rerank_run` with ``replicas`` model actors on the Ray cluster in reach (a local one if none)."""
    import ray

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    todo = _pending(candidates, out)
    if not todo:
        return 0
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    items = [
        {
            "qid": c.qid,
            "query": c.query,
            "documents": [{"id": d.id, "title": d.title, "text": d.text} for d in c.documents],
            "scores": c.scores,
        }
        for c in todo
    ]
    ds = ray.data.from_items(items).map_batches(
        _RerankActor,
        fn_constructor_kwargs={
            "model": model,
            "tag": tag,
            "reranker_kwargs": reranker_kwargs or {},
            "first_stage": first_stage,
        },
        batch_size=1,
        concurrency=replicas,
    )
    with out.open("a", encoding="utf-8") as f:
        for row in tqdm(ds.iter_rows(), total=len(todo), desc="rerank-run (ray)", unit="query"):
            append_synced(f, row["lines"])
    return len(todo)
