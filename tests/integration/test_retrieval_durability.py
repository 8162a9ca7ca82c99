"""Durability of the retrieval service: graceful restarts, a crash in the middle of ingests.

Real Redis (a database of its own), real ``python -m services.retrieval`` workers with the
real model, all on one data directory, called through the RPC client (no gateway). Three
workers run one after the other, each stopped by its own pid:

1. the first ingests two collections and is stopped with SIGTERM (it writes its index
   snapshots on the way out);
2. the second starts from those snapshots, serves the restart checks, and is SIGKILLed
   while ingests into ``crash`` are in flight;
3. the third reclaims the unacknowledged requests (``BABEL_WORKER_CLAIM_IDLE_MS`` is 1 s)
   and redoes them, after rebuilding the stale ``crash`` index from the store.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.launcher.redis_server import RedisServer
from shared.messages.retrieval import (
    CREATE_COLLECTION,
    DESCRIBE_COLLECTION,
    INGEST,
    SEARCH,
    Chunking,
    CollectionInfo,
    CollectionRef,
    CollectionSpec,
    DocumentIn,
    Hit,
    IngestReply,
    IngestRequest,
    SearchRequest,
)
from shared.rpc.client import RpcClient
from shared.rpc.connection import connect
from shared.rpc.keys import Keys
from shared.settings import RedisSettings
from tests.support.processes import WorkerProcess
from tests.support.redis_db import fresh_db_url
from tests.support.retrieval import SERVICE, start_retrieval_worker, wait_worker_ready

pytestmark = pytest.mark.timeout(300)

REDIS_DB = 6
KEYS = Keys()
RPC_TIMEOUT_S = 180.0
"""Long enough for a request to outlive its worker and be redone by the next one."""
WORKER_ENV = {
    "BABEL_WORKER_CLAIM_IDLE_MS": 1_000,
    # No periodic snapshots: only a graceful stop writes them, so after the SIGKILL the
    # snapshot of "crash" is certainly older than its store.
    "BABEL_RETRIEVAL_SNAPSHOT_INTERVAL_S": 3_600,
    # Small forward passes: concurrent ingests finish one after another over many passes
    # (not all in one), so a kill after the first acknowledgement finds others in flight.
    "BABEL_RETRIEVAL_EMBED_BATCH_SIZE": 4,
}
CHUNKING = Chunking(max_chars=120, overlap_chars=0)
"""Each sentence of the documents below is a chunk of its own (three per document)."""
GRACEFUL = "graceful"
CRASH = "crash"
REBUILT = "rebuilt index from the store"


# ---------------------------------------------------------------------- documents
ADJECTIVES = ["weary", "young", "stubborn", "silver", "tiny", "famous", "limping", "curious",
              "hungry", "proud", "nervous"]  # fmt: skip
ANIMALS = ["camel", "otter", "heron", "wolf", "tortoise", "falcon", "badger", "moose", "lynx",
           "walrus", "ibis", "yak", "gecko"]  # fmt: skip
PLACES = ["frozen river", "salt desert", "mountain pass", "flooded valley", "old bridge",
          "pine forest", "volcanic plain", "narrow canyon", "tidal marsh", "limestone cave",
          "coral lagoon", "wheat field", "city square", "glacier tongue", "dry lake",
          "bamboo grove", "harbour wall"]  # fmt: skip
CITIES = ["Lisbon", "Kyoto", "Nairobi", "Oslo", "Lima", "Hanoi", "Tbilisi", "Perth", "Quito",
          "Riga", "Dakar", "Seville", "Tromsø", "Cusco", "Manila", "Bergen", "Accra", "Turin",
          "Osaka"]  # fmt: skip
GOODS = ["salt", "letters", "copper wire", "dried figs", "wool blankets", "medicine",
         "tea bricks", "glass beads", "seed potatoes", "lamp oil", "maps", "violins",
         "honey jars"]  # fmt: skip
PEOPLE = ["Inspector Alvarez", "Doctor Mbeki", "Captain Sørensen", "Professor Tanaka",
          "Sergeant Okafor", "Ms Kowalski", "Mr Haddad"]  # fmt: skip
BUILDINGS = ["town hall", "lighthouse", "railway station", "observatory", "monastery",
             "post office", "customs house", "library", "fire station"]  # fmt: skip
WEATHER = ["rainy", "windy", "foggy", "scorching", "snowy"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _pick(words: Sequence[str], i: int, step: int) -> str:
    return words[(i * step + i // len(words)) % len(words)]


def document(prefix: str, i: int) -> DocumentIn:
    """Three sentences (three chunks) with a unique record code and varied content."""
    code = f"{prefix}{i:03d}"
    sentences = [
        f"Archive record {code} tells how a {_pick(ADJECTIVES, i, 3)} {_pick(ANIMALS, i, 5)} "
        f"crossed the {_pick(PLACES, i, 7)} in {1800 + (i * 37) % 200}.",
        f"Witnesses in {_pick(CITIES, i, 11)} said it carried {_pick(GOODS, i, 4)} "
        f"for {2 + (i * 13) % 40} days without rest.",
        f"{_pick(PEOPLE, i, 2)} filed the report at the {_pick(BUILDINGS, i, 5)} "
        f"on a {_pick(WEATHER, i, 3)} {_pick(DAYS, i, 4)}.",
    ]
    assert all(len(s) <= CHUNKING.max_chars for s in sentences)  # type: ignore[operator]
    return DocumentIn(id=code, text=" ".join(sentences), metadata={"doc": code, "n": i})


def first_sentence(document: DocumentIn) -> str:
    return document.text.split(". ", 1)[0] + "."


# ---------------------------------------------------------------------- the scenario
@dataclass
class Scenario:
    redis_url: str
    data_dir: Path
    log_dir: Path
    rpc: RpcClient
    redis: aioredis.Redis
    graceful_docs: list[DocumentIn]
    graceful_before: CollectionInfo
    crash_baseline: list[DocumentIn]
    first: WorkerProcess
    first_exit: int
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def current(self) -> WorkerProcess:
        return self.workers[-1]

    async def start_worker(self, name: str) -> WorkerProcess:
        worker = start_retrieval_worker(
            redis_url=self.redis_url,
            data_dir=self.data_dir,
            log_dir=self.log_dir,
            name=name,
            env=WORKER_ENV,
        )
        self.workers.append(worker)
        await asyncio.to_thread(wait_worker_ready, self.redis_url, worker)
        return worker


async def ingest(rpc: RpcClient, collection: str, documents: Sequence[DocumentIn]) -> IngestReply:
    request = IngestRequest(collection=collection, documents=tuple(documents), chunking=CHUNKING)
    return await rpc.call(INGEST, request, timeout_s=RPC_TIMEOUT_S)


async def describe(rpc: RpcClient, collection: str) -> CollectionInfo:
    return await rpc.call(DESCRIBE_COLLECTION, CollectionRef(name=collection))


async def search(rpc: RpcClient, collection: str, query: str, **options: Any) -> tuple[Hit, ...]:
    request = SearchRequest(collection=collection, query=query, **options)
    reply = await rpc.call(SEARCH, request, timeout_s=60.0)
    return reply.hits


@pytest.fixture(scope="module")
async def scenario(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scenario]:
    """Worker 1 ingests ``graceful`` and a baseline of ``crash``, is stopped with SIGTERM;
    worker 2 is started on the same data directory."""
    url = fresh_db_url(redis_server, REDIS_DB)
    log_dir = tmp_path_factory.mktemp("retrieval-durability")
    client = connect(RedisSettings(url=url))
    rpc = RpcClient(client, KEYS, default_timeout_s=60.0)
    first = start_retrieval_worker(
        redis_url=url,
        data_dir=log_dir / "data",
        log_dir=log_dir,
        name="retrieval-1",
        env=WORKER_ENV,
    )
    started = [first]
    try:
        await asyncio.to_thread(wait_worker_ready, url, first)
        for name in (GRACEFUL, CRASH):
            await rpc.call(CREATE_COLLECTION, CollectionSpec(name=name))
        graceful_docs = [document("graceful", i) for i in range(24)]
        for start in range(0, len(graceful_docs), 8):  # several acknowledged requests
            reply = await ingest(rpc, GRACEFUL, graceful_docs[start : start + 8])
            assert (reply.documents, reply.chunks, reply.replaced) == (8, 24, 0)
        crash_baseline = [document("crash", i) for i in range(8)]
        await ingest(rpc, CRASH, crash_baseline)
        graceful_before = await describe(rpc, GRACEFUL)

        first.signal(signal.SIGTERM)
        first_exit = await asyncio.to_thread(first.wait, 60.0)

        scenario = Scenario(
            redis_url=url,
            data_dir=log_dir / "data",
            log_dir=log_dir,
            rpc=rpc,
            redis=client,
            graceful_docs=graceful_docs,
            graceful_before=graceful_before,
            crash_baseline=crash_baseline,
            first=first,
            first_exit=first_exit,
            workers=[],
        )
        try:
            await scenario.start_worker("retrieval-2")
            yield scenario
        finally:
            started.extend(scenario.workers)
    finally:
        for worker in reversed(started):
            await asyncio.to_thread(worker.stop, 15.0)
        await client.aclose()


# ---------------------------------------------------------------------- checks
async def assert_stored_once(
    rpc: RpcClient, collection: str, documents: Sequence[DocumentIn]
) -> int:
    """Every document is in store and index exactly once: its chunks (found through the
    dense index among the store's rows for that id) are 0..n-1, in order, covering its text;
    an exact-sentence BM25 query and a dense query with its own first chunk rank it first.
    Returns the total number of chunks."""
    limit = asyncio.Semaphore(16)

    async def check(doc: DocumentIn) -> int:
        async with limit:
            chunks = await search(
                rpc, collection, "record", mode="dense", k=200, filter={"doc": doc.id}
            )
            lexical = await search(rpc, collection, first_sentence(doc), mode="bm25", k=5)
            dense = await search(rpc, collection, first_sentence(doc), mode="dense", k=1)
        ordered = sorted(chunks, key=lambda hit: hit.chunk_index)
        assert [hit.chunk_index for hit in ordered] == list(range(len(ordered))), (doc.id, chunks)
        assert {hit.document_id for hit in ordered} == {doc.id}
        assert ordered, doc.id
        for hit in ordered:
            assert hit.text == doc.text[hit.start : hit.end]
            assert hit.metadata == doc.metadata
        assert ordered[0].start == 0
        assert ordered[-1].end == len(doc.text)
        for before, after in itertools.pairwise(ordered):
            assert not doc.text[before.end : after.start].strip()
        assert (lexical[0].document_id, lexical[0].chunk_index) == (doc.id, 0), lexical
        assert [h.document_id for h in lexical].count(doc.id) == 1
        assert (dense[0].document_id, dense[0].chunk_index) == (doc.id, 0), dense
        return len(ordered)

    counts = await asyncio.gather(*(check(doc) for doc in documents))
    return sum(counts)


async def assert_index_matches_store(rpc: RpcClient, collection: str) -> CollectionInfo:
    """Asked for more than it holds, the dense index returns every chunk the store has,
    each once: no vector is missing and none points at a chunk that is gone."""
    info = await describe(rpc, collection)
    assert info.chunks <= 200  # max k: the whole collection fits in one answer
    hits = await search(rpc, collection, "archive record", mode="dense", k=200)
    keys = [(hit.document_id, hit.chunk_index) for hit in hits]
    assert len(keys) == len(set(keys)) == info.chunks
    assert len({hit.document_id for hit in hits}) == info.documents
    return info


def rebuilt_lines(worker: WorkerProcess, collection: str) -> list[str]:
    return [
        line
        for line in worker.log_text().splitlines()
        if REBUILT in line and re.search(rf"\bcollection={collection}\b", line)
    ]


# ---------------------------------------------------------------------- tests
async def test_graceful_restart_keeps_every_acknowledged_document(scenario: Scenario) -> None:
    assert scenario.first_exit == 0, scenario.first.log_tail()
    assert "worker stopped" in scenario.first.log_text()
    snapshots = sorted(p.name for p in (scenario.data_dir / "indexes").iterdir())
    assert len([name for name in snapshots if name.endswith(".faiss")]) == 2, snapshots
    assert len([name for name in snapshots if name.endswith(".json")]) == 2, snapshots
    second = scenario.current

    after = await describe(scenario.rpc, GRACEFUL)

    before = scenario.graceful_before
    assert (after.documents, after.chunks) == (24, 72)
    assert (after.documents, after.chunks, after.languages) == (
        before.documents,
        before.chunks,
        before.languages,
    )
    assert (after.model, after.dim, after.index_type, after.created_at) == (
        before.model,
        before.dim,
        before.index_type,
        before.created_at,
    )
    assert after.size_bytes > before.size_bytes  # the snapshot now counts too
    chunks = await assert_stored_once(scenario.rpc, GRACEFUL, scenario.graceful_docs)
    assert chunks == after.chunks
    await assert_index_matches_store(scenario.rpc, GRACEFUL)
    # The snapshots were current: the second worker loaded them, rebuilt nothing.
    assert REBUILT not in second.log_text(), second.log_tail()


async def test_sigkill_during_ingests_loses_and_duplicates_nothing(scenario: Scenario) -> None:
    victim = scenario.current
    rpc = scenario.rpc
    batches = [[document("crash", 8 + 5 * b + i) for i in range(5)] for b in range(8)]
    expected = scenario.crash_baseline + [doc for batch in batches for doc in batch]
    tasks = [asyncio.create_task(ingest(rpc, CRASH, batch)) for batch in batches]

    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED, timeout=120.0)
    victim.kill()  # SIGKILL: no drain, no snapshot, no heartbeat clean-up
    in_flight = [task for task in tasks if not task.done()]

    assert done, f"no ingest finished before the kill; log:\n{victim.log_tail()}"
    assert in_flight, "every ingest finished before the kill; nothing was cut off"
    # The next worker reclaims the unacknowledged requests and does them again.
    successor = await scenario.start_worker("retrieval-3")
    replies = await asyncio.wait_for(asyncio.gather(*tasks), timeout=RPC_TIMEOUT_S)

    for batch, reply in zip(batches, replies, strict=True):
        assert reply.documents == len(batch)
        assert reply.chunks == 3 * len(batch)
    # Taken over (the victim's heartbeat expired) or reclaimed (idle past 1 s): both redo it.
    moved = ("reclaimed pending entry", "took over a dead worker's requests")
    assert any(m in line for line in successor.log_text().splitlines() for m in moved)
    # Snapshot mismatch: the snapshot of "crash" (written at the graceful stop) is behind the
    # store, so the successor rebuilt that index from the stored vectors, which already held
    # every acknowledged chunk before anything was redone; "graceful" was current, kept.
    (rebuilt,) = rebuilt_lines(successor, CRASH)
    assert "snapshot_found=True" in rebuilt, rebuilt
    found = re.search(r"\bchunks=(\d+)", rebuilt)
    assert found is not None, rebuilt
    acknowledged_before_kill = 3 * (len(scenario.crash_baseline) + 5 * len(done))
    assert int(found.group(1)) >= acknowledged_before_kill, rebuilt
    assert rebuilt_lines(successor, GRACEFUL) == []
    info = await assert_index_matches_store(rpc, CRASH)
    assert info.documents == len(expected)
    chunks = await assert_stored_once(rpc, CRASH, expected)
    assert chunks == info.chunks == 3 * len(expected)
    # Nothing is left pending, nothing was given up on.
    pending: Any = await scenario.redis.xpending(KEYS.requests(SERVICE), KEYS.group(SERVICE))
    assert pending["pending"] == 0, pending
    assert await scenario.redis.xlen(KEYS.dead_letters(SERVICE)) == 0
