"""Creating a collection is idempotent per RPC call: the same call delivered again (its
worker died after the commit, before the reply) gets the collection; another call, 409."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.retrieval.store import DocStore
from shared.errors import BabelError, ErrorCode


def test_the_creating_call_gets_its_collection_back_others_a_conflict(tmp_path: Path) -> None:
    store = DocStore(tmp_path / "retrieval.sqlite3")
    created = store.create_collection("kb", "e5", 384, "call-1")
    again = DocStore(tmp_path / "retrieval.sqlite3")  # the worker that takes the call over
    assert again.create_collection("kb", "e5", 384, "call-1") == created
    for other in ("call-2", ""):
        with pytest.raises(BabelError) as caught:
            again.create_collection("kb", "e5", 384, other)
        assert caught.value.code is ErrorCode.CONFLICT
    assert [c.name for c in again.collections()] == ["kb"]


def test_a_deleted_collection_forgets_its_creating_call(tmp_path: Path) -> None:
    store = DocStore(tmp_path / "retrieval.sqlite3")
    store.delete_collection(store.create_collection("kb", "e5", 384, "call-1"))
    recreated = store.create_collection("kb", "e5", 384, "call-2")
    with pytest.raises(BabelError) as caught:
        store.create_collection("kb", "e5", 384, "call-1")
    assert caught.value.code is ErrorCode.CONFLICT
    assert store.collection("kb") == recreated
