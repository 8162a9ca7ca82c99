"""Sentence embeddings: a model behind a small Protocol, and a batcher that lets
concurrent requests share forward passes (texts sorted by length per batch)."""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from shared.errors import BabelError, ErrorCode
from shared.messages.retrieval import InputType


class Embedder(Protocol):
    name: str
    dim: int

    def warm_up(self) -> None: ...

    def encode(self, texts: Sequence[str], input_type: InputType) -> tuple[np.ndarray, list[int]]:
        """L2-normalised float32 vectors (one row per text) and each text's token count."""
        ...


PADDING_SLACK_CHARS = 64
"""Texts up to this many characters longer than a batch's shortest share its batch anyway."""


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indexes of texts in batches for the model: sorted by length, at most ``batch_size``
    each, and a new batch wherever a text is over twice (+ ``PADDING_SLACK_CHARS``) as long
    as the batch's first. Every text of a batch is padded to its longest: one 512-token text
    among 31 short ones made the whole batch cost 32 long texts (a sentiment request of one
    long text and its 200 sentences took 34 s, now 3-4 s, on a busy 2-core machine). The
    extra batches are at most one per doubling of length."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        current = batches[-1] if batches else None
        if (
            current is None
            or len(current) >= batch_size
            or lengths[i] > 2 * lengths[current[0]] + PADDING_SLACK_CHARS
        ):
            batches.append([i])
        else:
            current.append(i)
    return batches


def default_prefixes(model_name: str) -> tuple[str, str]:
    return ("query: ", "passage: ") if "e5" in model_name.lower() else ("", "")


class SentenceTransformerEmbedder:
    """Any sentence-transformers model (folder or id); e5 prefixes applied by default."""

    def __init__(
        self,
        name: str,
        path: str,
        *,
        device: str,
        threads: int,
        batch_size: int,
        prefixes: tuple[str, str],
    ) -> None:
        self.name = name
        self._path = path
        self._device = device
        self._threads = threads
        self._batch_size = batch_size
        self._query_prefix, self._passage_prefix = prefixes
        self._model: Any = None
        self.dim = 0

    @property
    def device(self) -> str:
        """Where the model runs (``cpu``, ``cuda:0``); the configured value before warm-up."""
        return str(self._model.device) if self._model is not None else self._device

    def warm_up(self) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if self._threads:
            torch.set_num_threads(self._threads)
        device = self._device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self._model = SentenceTransformer(self._path, device=device)
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.encode(["warm up"], "query")

    def encode(self, texts: Sequence[str], input_type: InputType) -> tuple[np.ndarray, list[int]]:
        """Each batch is tokenized once: the same tokens feed the model and the counts."""
        if self._model is None:
            raise RuntimeError("encode() before warm_up()")
        import torch

        prefix = self._query_prefix if input_type == "query" else self._passage_prefix
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        tokens = [0] * len(texts)
        for rows in length_batches([len(text) for text in texts], self._batch_size):
            features = self._model.preprocess([prefix + texts[i] for i in rows])
            counts = features["attention_mask"].sum(dim=1).tolist()
            features = {
                key: value.to(self._model.device) if isinstance(value, torch.Tensor) else value
                for key, value in features.items()
            }
            with torch.inference_mode():
                embedded = self._model.forward(features)["sentence_embedding"]
                embedded = torch.nn.functional.normalize(embedded.float(), p=2, dim=1)
            vectors[rows] = embedded.cpu().numpy()
            for i, count in zip(rows, counts, strict=True):
                tokens[i] = int(count)
        return vectors, tokens


Priority = Literal["interactive", "bulk"]
"""Interactive texts (searches, sentiment, predictions) are embedded before bulk ones (ingest,
training): a big ingest never stands in front of a search."""


@dataclass
class _Pending:
    text: str
    input_type: InputType
    future: asyncio.Future[tuple[np.ndarray, int]] = field(repr=False)


class BatchingEmbedder:
    """Collects texts from concurrent requests into shared batches, one model call at a time.

    Two queues: interactive texts go first. A model call holds texts of one queue only (with
    bulk texts in it, an interactive call took as long as they did), and bulk calls are sized
    to take about ``bulk_call_s`` (from the pace of the previous ones; ``bulk_batch_size``, a
    quarter of ``batch_size`` by default, until measured; at least one text), so an
    interactive text that arrives meanwhile waits for one short call at most: searches during
    an ingest waited 10 s for calls of 32 chunks on a busy CPU. A bulk request is fed in
    slices of ``2 × batch_size`` texts (the next slice after the previous is embedded), so bulk
    work never holds more than that per request in the queue. Interactive texts are refused
    with ``overloaded`` (503 + Retry-After) when ``max_queued`` of them are already waiting,
    instead of the queue growing without bound.
    """

    def __init__(
        self,
        embedder: Embedder,
        batch_size: int,
        max_wait_ms: float,
        *,
        max_queued: int = 4_096,
        retry_after_s: float = 1.0,
        bulk_batch_size: int | None = None,
        bulk_call_s: float = 0.1,
    ) -> None:
        self.embedder = embedder
        self._batch_size = batch_size
        self._bulk_batch_size = bulk_batch_size or max(1, batch_size // 4)
        self._bulk_call_s = bulk_call_s
        self._bulk_s_per_text = 0.0
        """Seconds per text of recent bulk calls (0 until one is measured)."""
        self._max_wait_s = max_wait_ms / 1000
        self._max_queued = max_queued
        self._retry_after_s = retry_after_s
        self._queues: dict[Priority, deque[_Pending]] = {"interactive": deque(), "bulk": deque()}
        self._arrived = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0
        """Model calls made (for tests and metrics)."""

    def queued(self, priority: Priority) -> int:
        return len(self._queues[priority])

    async def embed(
        self, texts: Sequence[str], input_type: InputType, *, priority: Priority = "interactive"
    ) -> tuple[np.ndarray, int]:
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32), 0
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="embed-batcher")
        if priority == "interactive":
            if self.queued("interactive") + len(texts) > self._max_queued:
                raise BabelError(
                    ErrorCode.OVERLOADED,
                    f"the embedder has {self.queued('interactive')} texts waiting "
                    f"(limit {self._max_queued}); retry shortly",
                    retryable=True,
                    retry_after_s=self._retry_after_s,
                )
            results = await self._submit(texts, input_type, priority)
        else:
            step = 2 * self._batch_size
            results = []
            for start in range(0, len(texts), step):
                results.extend(
                    await self._submit(texts[start : start + step], input_type, priority)
                )
        vectors = np.stack([row for row, _ in results])
        return vectors, sum(tokens for _, tokens in results)

    async def _submit(
        self, texts: Sequence[str], input_type: InputType, priority: Priority
    ) -> list[tuple[np.ndarray, int]]:
        loop = asyncio.get_running_loop()
        pending = [_Pending(t, input_type, loop.create_future()) for t in texts]
        self._queues[priority].extend(pending)
        self._arrived.set()
        try:
            return list(await asyncio.gather(*(item.future for item in pending)))
        except BaseException:
            for item in pending:  # a cancelled caller's texts are not embedded
                item.future.cancel()
            raise

    def _take(self, priority: Priority, limit: int) -> list[_Pending]:
        queue = self._queues[priority]
        taken: list[_Pending] = []
        while queue and len(taken) < limit:
            item = queue.popleft()
            if not item.future.done():
                taken.append(item)
        return taken

    def _bulk_limit(self) -> int:
        if self._bulk_s_per_text <= 0:
            return self._bulk_batch_size
        fitting = int(self._bulk_call_s / self._bulk_s_per_text)
        return max(1, min(self._batch_size, fitting))

    def _learn_bulk_pace(self, seconds: float, texts: int) -> None:
        pace = seconds / texts
        known = self._bulk_s_per_text
        self._bulk_s_per_text = pace if known <= 0 else 0.7 * known + 0.3 * pace

    async def _collect(self) -> tuple[list[_Pending], bool]:
        """The next model call's texts: interactive ones (waiting ``max_wait_ms`` for more to
        share the call), else at once a bulk call sized to its pace; True for bulk."""
        while True:
            batch = self._take("interactive", self._batch_size)
            if batch:
                break
            bulk = self._take("bulk", self._bulk_limit())
            if bulk:
                return bulk, True
            self._arrived.clear()
            await self._arrived.wait()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._max_wait_s
        while len(batch) < self._batch_size:
            remaining = give_up - loop.time()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
            batch.extend(self._take("interactive", self._batch_size - len(batch)))
        return batch, False

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            collected, bulk = await self._collect()
            batch = [item for item in collected if not item.future.done()]
            for input_type in ("query", "passage"):
                group = sorted(
                    (item for item in batch if item.input_type == input_type),
                    key=lambda item: len(item.text),
                )
                if group:
                    self.batches += 1
                    started = loop.time()
                    await self._encode_group(group, input_type)
                    if bulk:
                        self._learn_bulk_pace(loop.time() - started, len(group))

    async def _encode_group(self, group: list[_Pending], input_type: InputType) -> None:
        try:
            vectors, counts = await asyncio.to_thread(
                self.embedder.encode, [item.text for item in group], input_type
            )
        except Exception as exc:  # hand the failure to every waiting request
            for item in group:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for item, row, tokens in zip(group, vectors, counts, strict=True):
            if not item.future.done():
                item.future.set_result((row, tokens))
