"""A write whose request is past its deadline is rolled back: the client already has its 504,
so nothing may appear afterwards (a real SQLite store; the request context as the RPC
dispatcher sets it)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from services.retrieval.store import DocStore, NewChunk, NewDocument
from shared.errors import BabelError, ErrorCode
from shared.rpc.handlers import RequestContext, serving


def _context(deadline: float) -> RequestContext:
    return RequestContext(request_id="r", deadline=deadline, worker="w", deliveries=1)


def _document(document_id: str) -> NewDocument:
    chunk = NewChunk(idx=0, start=0, end=5, text="hello", language="en", tokens="hello")
    return NewDocument(
        id=document_id,
        metadata={},
        chars=5,
        chunks=[chunk],
        vectors=np.ones((1, 4), dtype=np.float32),
    )


async def test_an_upsert_past_its_deadline_stores_nothing(tmp_path: Path) -> None:
    store = DocStore(tmp_path / "retrieval.sqlite3")
    kb = store.create_collection("kb", "e5", 4)
    with serving(_context(time.time() - 0.01)), pytest.raises(BabelError) as late:
        # run in a thread, as the ingest does: the request's context goes with it
        await asyncio.to_thread(store.upsert, kb, [_document("late")])
    assert late.value.code is ErrorCode.DEADLINE_EXCEEDED
    assert store.stats(kb)[:2] == (0, 0)
    with serving(_context(time.time() + 60)):
        await asyncio.to_thread(store.upsert, kb, [_document("in-time")])
    assert store.stats(kb)[:2] == (1, 1)
