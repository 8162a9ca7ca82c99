"""The batching embedder's queues: interactive first, bulk in slices, a bounded backlog.

The model here is a fake (``RecordingFakeEmbedder``): these tests are about ordering and
bounds, not vectors. It blocks in ``encode`` until released so a backlog can be built.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from shared.errors import BabelError, ErrorCode
from shared.messages.retrieval import InputType
from shared.models.embedder import BatchingEmbedder, length_batches


class RecordingFakeEmbedder:
    """A fake model: each text's vector is its length; every call's texts are recorded."""

    name = "fake"
    dim = 2

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def warm_up(self) -> None:
        return None

    def encode(self, texts: Sequence[str], input_type: InputType) -> tuple[np.ndarray, list[int]]:
        self.gate.wait(timeout=10)
        self.calls.append(list(texts))
        vectors = np.array([[len(t), 1.0] for t in texts], dtype=np.float32)
        return vectors, [len(t) for t in texts]


async def _until(predicate: object, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def test_vectors_come_back_in_request_order() -> None:
    fake = RecordingFakeEmbedder()
    batcher = BatchingEmbedder(fake, batch_size=4, max_wait_ms=1)
    vectors, tokens = await batcher.embed(["ccc", "a", "bb"], "query")
    assert vectors[:, 0].tolist() == [3.0, 1.0, 2.0]
    assert tokens == 6


async def test_interactive_texts_overtake_a_queued_bulk_ingest() -> None:
    fake = RecordingFakeEmbedder()
    batcher = BatchingEmbedder(fake, batch_size=4, max_wait_ms=1)
    fake.gate.clear()  # the model is busy: the first batch blocks
    bulk = asyncio.create_task(
        batcher.embed([f"bulk-{i}" for i in range(40)], "query", priority="bulk")
    )
    await _until(lambda: batcher.batches == 1)
    search = asyncio.create_task(batcher.embed(["search"], "query"))
    await _until(lambda: batcher.queued("interactive") == 1)
    fake.gate.set()
    await asyncio.gather(bulk, search)
    assert "search" in fake.calls[1], fake.calls[:3]  # the very next model call
    assert sum(len(call) for call in fake.calls) == 41


async def test_model_calls_never_mix_interactive_and_bulk_texts() -> None:
    """Issue 11: a call with bulk texts in it takes as long as they do, so interactive texts
    get calls of their own; the first bulk call is a quarter of the batch size."""
    fake = RecordingFakeEmbedder()
    batcher = BatchingEmbedder(fake, batch_size=8, max_wait_ms=1)
    fake.gate.clear()
    bulk = asyncio.create_task(
        batcher.embed([f"bulk-{i}" for i in range(40)], "passage", priority="bulk")
    )
    await _until(lambda: batcher.batches == 1)
    searches = [asyncio.create_task(batcher.embed([f"search-{i}"], "query")) for i in range(3)]
    await _until(lambda: batcher.queued("interactive") == 3)
    fake.gate.set()
    await asyncio.gather(bulk, *searches)
    kinds = [{text.split("-")[0] for text in call} for call in fake.calls]
    assert all(len(kind) == 1 for kind in kinds), fake.calls
    assert fake.calls[1] == ["search-0", "search-1", "search-2"], fake.calls[:3]
    assert len(fake.calls[0]) == 2


class SlowFakeEmbedder(RecordingFakeEmbedder):
    """A fake model that takes ``seconds_per_text`` for each text of a call."""

    def __init__(self, seconds_per_text: float) -> None:
        super().__init__()
        self.seconds_per_text = seconds_per_text

    def encode(self, texts: Sequence[str], input_type: InputType) -> tuple[np.ndarray, list[int]]:
        time.sleep(self.seconds_per_text * len(texts))
        return super().encode(texts, input_type)


async def test_bulk_calls_are_sized_to_take_about_bulk_call_s() -> None:
    """At 20 ms (or more) a text and a target of 50 ms, bulk calls hold at most 2 texts once the
    pace is known, so an interactive text never waits long behind one; when the target allows,
    the calls grow to the batch size (throughput)."""
    slow = SlowFakeEmbedder(seconds_per_text=0.02)
    batcher = BatchingEmbedder(slow, batch_size=16, max_wait_ms=1, bulk_call_s=0.05)
    await batcher.embed([f"bulk-{i}" for i in range(24)], "passage", priority="bulk")
    assert len(slow.calls[0]) == 4  # a quarter of the batch size until measured
    assert max(len(call) for call in slow.calls[1:]) <= 2
    fast = RecordingFakeEmbedder()
    quick = BatchingEmbedder(fast, batch_size=16, max_wait_ms=1, bulk_call_s=10.0)
    await quick.embed([f"bulk-{i}" for i in range(64)], "passage", priority="bulk")
    assert max(len(call) for call in fast.calls) == 16


async def test_bulk_work_is_fed_in_slices() -> None:
    fake = RecordingFakeEmbedder()
    batcher = BatchingEmbedder(fake, batch_size=4, max_wait_ms=1)
    fake.gate.clear()
    bulk = asyncio.create_task(
        batcher.embed([f"doc-{i}" for i in range(1_000)], "passage", priority="bulk")
    )
    await _until(lambda: batcher.batches == 1)
    assert batcher.queued("bulk") <= 2 * 4  # one slice, not the whole document
    fake.gate.set()
    vectors, _ = await bulk
    assert vectors.shape == (1_000, 2)


async def test_a_full_interactive_queue_answers_overloaded() -> None:
    fake = RecordingFakeEmbedder()
    batcher = BatchingEmbedder(fake, batch_size=2, max_wait_ms=1, max_queued=5, retry_after_s=3)
    fake.gate.clear()
    first = asyncio.create_task(batcher.embed(["x", "y"], "query"))
    await _until(lambda: batcher.batches == 1)
    waiting = asyncio.create_task(batcher.embed(["a", "b", "c", "d"], "query"))
    await _until(lambda: batcher.queued("interactive") == 4)
    with pytest.raises(BabelError) as refused:
        await batcher.embed(["e", "f"], "query")
    assert refused.value.info.code == ErrorCode.OVERLOADED
    assert refused.value.info.retry_after_s == 3
    fake.gate.set()
    await asyncio.gather(first, waiting)


async def test_a_cancelled_request_is_not_embedded() -> None:
    fake = RecordingFakeEmbedder()
    batcher = BatchingEmbedder(fake, batch_size=2, max_wait_ms=1)
    fake.gate.clear()
    first = asyncio.create_task(batcher.embed(["x", "y"], "query"))
    await _until(lambda: batcher.batches == 1)
    abandoned = asyncio.create_task(batcher.embed(["gone-1", "gone-2"], "query"))
    await _until(lambda: batcher.queued("interactive") == 2)
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    fake.gate.set()
    await first
    await batcher.embed(["after"], "query")
    assert not any(text.startswith("gone") for call in fake.calls for text in call)


def test_a_long_text_never_pads_a_batch_of_short_ones() -> None:
    """Issue 11: every text of a model batch is padded to its longest, so the model's batches
    are cut where lengths double (plus some slack): a 2,000-character text among 200 short
    sentences gets a batch of its own, and the short ones still share full batches."""
    lengths = [2_000] + [3] * 200
    batches = length_batches(lengths, batch_size=32)
    assert batches[-1] == [0]
    assert [len(b) for b in batches[:-1]] == [32] * 6 + [8]
    assert sorted(i for b in batches for i in b) == list(range(201))
    # lengths in one doubling (+ slack) share batches; each doubling past it starts one
    assert len(length_batches([10, 40, 70], batch_size=32)) == 1
    assert [len(b) for b in length_batches([100, 200, 300, 600, 1500], 32)] == [2, 2, 1]
    assert length_batches([], batch_size=32) == []
