"""The service's runtime: one worker thread owns the model, so concurrent requests never interleave inside it.

Requests wait in a bounded queue; a full queue, a timeout and a client that hangs up each end in their own
exception, which the HTTP layer (:mod:`blockrank.serve.service`) turns into a status code. Timed-out and abandoned work
is cancelled at the model's next layer, so the requests behind it are not held up.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any, Protocol

from blockrank.defaults import Limits
from blockrank.errors import ServiceBusy, ServiceTimeout
from blockrank.model import display_name
from blockrank.reranker import Reranker, RerankReport


class Disconnect(Protocol):
    async def is_disconnected(self) -> bool: ...


class Service:
    """The app's state: the reranker, its single worker thread and the queue count."""

    def __init__(self, reranker: Reranker, limits: Limits):
        self.reranker, self.limits = reranker, limits
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blockrank-worker")
        self.waiting = 0  # requests accepted and not yet answered

    async def run(
        self,
        query: str,
        documents: list,
        top_n: int | None,
        max_tokens: int | None,
        truncate: bool = True,
        input_order: str | None = None,
        client: Disconnect | None = None,
    ) -> RerankReport:
        """Rank on the worker. A timeout (``ServiceTimeout``) or a ``client`` that hangs up (``Cancelled``)
        cancels the work at the model's next layer, or before it starts if still queued; ``ServiceBusy`` if
        the queue is full."""
        if self.waiting >= self.limits.max_queue:
            raise ServiceBusy(f"server busy: {self.waiting} requests queued")
        self.waiting += 1
        cancel = threading.Event()
        future = asyncio.get_running_loop().run_in_executor(
            self.pool, self._rank, query, documents, top_n, max_tokens, truncate, input_order, cancel
        )
        future.add_done_callback(_consume)  # abandoned work ends in Cancelled, which nobody awaits
        watcher = asyncio.create_task(_watch_disconnect(client, cancel)) if client is not None else None
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=self.limits.request_timeout_s)
        except asyncio.TimeoutError:
            raise ServiceTimeout(f"request took longer than {self.limits.request_timeout_s:.0f} s") from None
        finally:
            cancel.set()  # a no-op for finished work; stops abandoned work
            if watcher is not None:
                watcher.cancel()
            self.waiting -= 1

    def _rank(self, query, documents, top_n, max_tokens, truncate, input_order, cancel: threading.Event) -> RerankReport:
        budget = min(max_tokens or self.reranker.max_tokens_per_doc, self.limits.max_tokens_per_doc)
        return self.reranker.rerank_report(
            query,
            documents,
            top_k=top_n,
            max_tokens_per_doc=budget,
            truncate=truncate,
            input_order=input_order or self.limits.input_order,
            max_query_tokens=self.limits.max_query_tokens,
            max_prompt_tokens=self.limits.max_prompt_tokens,
            cancel=cancel,
        )

    def info(self) -> dict[str, Any]:
        r = self.reranker
        return {
            "model": display_name(r.model.config.name_or_path),
            "model_type": r.model.config.model_type,
            "layer": r.layer,
            "num_layers": r.model.config.num_hidden_layers,
            "score_by": r.score_by,
            "attention": r.attention,
            "dtype": str(r.model.dtype).replace("torch.", ""),
            "device": str(r.model.device),
            "max_tokens_per_doc_default": min(r.max_tokens_per_doc, self.limits.max_tokens_per_doc),
            "passage_tokens": r.block_tokens,
            "split": r.split,
            "limits": asdict(self.limits),
        }


def _consume(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


async def _watch_disconnect(client: Disconnect, cancel: threading.Event, every_s: float = 0.1) -> None:
    while not cancel.is_set():
        if await client.is_disconnected():
            cancel.set()
            return
        await asyncio.sleep(every_s)
