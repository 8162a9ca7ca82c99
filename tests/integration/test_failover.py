"""Fail-over under SIGKILL: real Redis, real worker subprocesses, real models.

A worker that dies leaves its requests pending; a live worker takes them over once the
dead one's heartbeat key has expired (``BABEL_WORKER_HEARTBEAT_TTL_MS``), long before the
idle-time reclaim (``BABEL_WORKER_CLAIM_IDLE_MS``, set far out of reach here, so a
request that succeeds was served by the takeover).

First the contract with the test-only echo service (fast, exact), then each service kind
through the gateway under a bounded load (8 at a time), one of two workers SIGKILLed while
it holds requests: tasks (with classifier creation, which must not run twice), retrieval
(with ingest) and generation (SmolLM2, a module-scoped pair, streamed and not).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from services.launcher.redis_server import RedisServer
from shared.errors import BabelError, ErrorCode
from shared.messages.classifiers import (
    CREATE_CLASSIFIER,
    ClassifierInfo,
    CreateClassifier,
    LabelledExample,
)
from shared.messages.envelope import (
    ENTRY_FIELD,
    PROTOCOL_VERSION,
    Envelope,
    TraceContext,
    encode,
    reply_decoder,
)
from shared.messages.retrieval import (
    CREATE_COLLECTION,
    DESCRIBE_COLLECTION,
    INGEST,
    CollectionInfo,
    CollectionRef,
    CollectionSpec,
    DocumentIn,
    IngestReply,
    IngestRequest,
)
from shared.rpc.client import RpcClient, decode_payload
from shared.rpc.connection import connect
from shared.rpc.keys import Keys
from shared.rpc.stats import pending_on, read_failover
from shared.settings import RedisSettings
from tests.support.echo_calls import start_echo_worker
from tests.support.echo_worker import (
    COUNT,
    SERVICE,
    SLEEP,
    STARTED_KEY,
    CountRequest,
    SleepRequest,
)
from tests.support.failover import Call, Victim, failures, load_with_kill
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.generation import LOAD_TIMEOUT_S as GENERATION_LOAD_TIMEOUT_S
from tests.support.generation import start_generation_worker
from tests.support.processes import StartWorker, WorkerProcess, start_worker
from tests.support.redis_db import fresh_db_url
from tests.support.retrieval import start_retrieval_worker, wait_worker_ready
from tests.support.waiting import wait_until, worker_info

pytestmark = pytest.mark.timeout(300)

KEYS = Keys()
ECHO_ENV = {
    "BABEL_WORKER_HEARTBEAT_TTL_MS": "2000",
    "BABEL_WORKER_HEARTBEAT_INTERVAL_MS": "250",
    "BABEL_WORKER_CLAIM_IDLE_MS": "120000",
    "BABEL_WORKER_BLOCK_MS": "200",
}
SERVICE_ENV = {"BABEL_WORKER_CLAIM_IDLE_MS": "120000"}
"""Services keep the default heartbeat (TTL 5 s); only the idle-time reclaim is put away."""


async def start_echo(
    start: StartWorker, redis: aioredis.Redis, name: str
) -> tuple[WorkerProcess, str]:
    return await start_echo_worker(start, redis, name, ECHO_ENV)


async def consumers(redis: aioredis.Redis, service: str) -> list[str]:
    found: list[dict[str, Any]] = await redis.xinfo_consumers(
        KEYS.requests(service), KEYS.group(service)
    )
    return sorted(c["name"].decode() for c in found)


async def hold(redis: aioredis.Redis, service: str, consumer: str, count: int) -> None:
    async def holds() -> bool:
        return len(await pending_on(redis, KEYS, service, consumer)) >= count

    await wait_until(holds, timeout_s=60, what=f"{consumer} holding {count} request(s)")


# ---------------------------------------------------------------------- the contract (echo)
async def test_a_dead_workers_requests_are_taken_over_when_its_heartbeat_expires(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    rpc = RpcClient(redis_client, KEYS)
    victim, victim_name = await start_echo(start_service_worker, redis_client, "echo-a")
    values = [f"t{i}-{uuid.uuid4().hex[:6]}" for i in range(10)]
    calls = [
        asyncio.create_task(rpc.call(SLEEP, SleepRequest(value=v, sleep_ms=4000), timeout_s=60))
        for v in values
    ]
    await hold(redis_client, SERVICE, victim_name, 10)
    _, survivor_name = await start_echo(start_service_worker, redis_client, "echo-b")
    await asyncio.to_thread(victim.kill)

    replies = await asyncio.gather(*calls)

    assert [r.value for r in replies] == values
    assert {r.worker for r in replies} == {survivor_name}
    assert all(r.deliveries == 2 for r in replies)
    failover = await read_failover(redis_client, KEYS, SERVICE)
    assert (failover.takeovers, failover.taken_over, failover.reclaimed) == (1, 10, 0)
    assert await consumers(redis_client, SERVICE) == [survivor_name]  # the dead one is gone


async def test_two_live_workers_run_each_taken_over_request_once(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    rpc = RpcClient(redis_client, KEYS)
    victim, victim_name = await start_echo(start_service_worker, redis_client, "echo-a")
    values = [f"r{i}-{uuid.uuid4().hex[:6]}" for i in range(16)]
    calls = [
        asyncio.create_task(rpc.call(SLEEP, SleepRequest(value=v, sleep_ms=4000), timeout_s=60))
        for v in values
    ]
    await hold(redis_client, SERVICE, victim_name, 16)
    _, b = await start_echo(start_service_worker, redis_client, "echo-b")
    _, c = await start_echo(start_service_worker, redis_client, "echo-c")
    await asyncio.to_thread(victim.kill)

    replies = await asyncio.gather(*calls)

    assert [r.value for r in replies] == values
    assert {r.worker for r in replies} <= {b, c}
    assert all(r.deliveries == 2 for r in replies)
    started: list[Any] = await redis_client.lrange(STARTED_KEY, 0, -1)
    runs = [s.decode() for s in started]
    assert sorted(runs) == sorted(values * 2)  # once on the dead worker, once after: never 3
    failover = await read_failover(redis_client, KEYS, SERVICE)
    assert failover.taken_over == 16
    assert failover.reclaimed == 0


async def test_a_stream_with_no_chunk_sent_restarts_cleanly_on_the_new_worker(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    rpc = RpcClient(redis_client, KEYS)
    victim, victim_name = await start_echo(start_service_worker, redis_client, "echo-a")
    # The first chunk comes after 3 s: the victim dies holding the request, having sent nothing.
    chunks = rpc.stream(COUNT, CountRequest(n=2, delay_ms=3000), timeout_s=90)
    first = asyncio.create_task(anext(aiter(chunks)))
    await hold(redis_client, SERVICE, victim_name, 1)
    await start_echo(start_service_worker, redis_client, "echo-b")
    await asyncio.to_thread(victim.kill)

    got = [(await first).i] + [chunk.i async for chunk in chunks]

    assert got == [0, 1]


async def test_a_stream_cut_after_some_chunks_ends_with_a_retryable_error(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    rpc = RpcClient(redis_client, KEYS)
    victim, _ = await start_echo(start_service_worker, redis_client, "echo-a")
    got: list[int] = []

    async def consume() -> None:
        async for chunk in rpc.stream(COUNT, CountRequest(n=2000, delay_ms=50), timeout_s=150):
            got.append(chunk.i)

    consumer = asyncio.create_task(consume())
    await wait_until(lambda: asyncio.sleep(0, len(got) >= 3), timeout_s=30, what="3 chunks")
    await start_echo(start_service_worker, redis_client, "echo-b")
    await asyncio.to_thread(victim.kill)

    with pytest.raises(BabelError) as caught:
        await consumer

    assert caught.value.code is ErrorCode.UNAVAILABLE
    assert caught.value.info.retryable
    assert got == list(range(len(got)))  # every chunk once, in order, then the error
    assert 3 <= len(got) < 2000


async def test_a_worker_stops_a_request_another_worker_took_from_it(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    """A worker presumed dead (or stuck past the idle timeout) that comes back finds, on its
    next lease renewal, that its request is pending elsewhere: it stops running it."""
    rpc = RpcClient(redis_client, KEYS)
    worker, name = await start_echo(start_service_worker, redis_client, "echo-a")
    call = asyncio.create_task(
        rpc.call(SLEEP, SleepRequest(value="taken", sleep_ms=60_000), timeout_s=90)
    )
    await hold(redis_client, SERVICE, name, 1)
    [entry] = await redis_client.xpending_range(
        KEYS.requests(SERVICE), KEYS.group(SERVICE), "-", "+", 1, consumername=name
    )
    await redis_client.xclaim(
        KEYS.requests(SERVICE), KEYS.group(SERVICE), "thief", 0, [entry["message_id"]]
    )

    await wait_until(
        lambda: asyncio.sleep(0, "taken over by another worker; stopped" in worker.log_text()),
        timeout_s=30,
        what="the worker's log line about the taken request",
    )

    async def stopped() -> bool:
        info = await worker_info(redis_client, worker, SERVICE)
        return info is not None and info.in_flight == 0

    await wait_until(stopped, timeout_s=30, what="the worker dropping the taken request")
    assert await pending_on(redis_client, KEYS, SERVICE, name) == []  # not stolen back
    assert not call.done()  # no reply from the worker that lost it
    call.cancel()


# ---------------------------------------------------------------------- services through HTTP
TEXTS = [
    "I absolutely love this, it made my day!",
    "Das war eine schreckliche Erfahrung, ich bin total enttäuscht.",
    "¡Me encanta este lugar, es maravilloso!",
    "C'est nul, je suis vraiment déçu et en colère.",
    "この映画は本当に素晴らしかった！大好きです。",
    "The weather is lovely today and we are going for a walk in the park.",
    "Bitte schicken Sie mir den Bericht vor der Besprechung morgen früh.",
    "من فضلك أرسل لي التقرير قبل الاجتماع صباح الغد.",
]
BATCH = [TEXTS[i % len(TEXTS)] for i in range(16)]
TOPIC_EXAMPLES = [
    ("The team won the football match last night.", "sports"),
    ("She scored two goals in the second half.", "sports"),
    ("The tennis final went to five sets.", "sports"),
    ("Our basketball coach called a timeout.", "sports"),
    ("Stir the onions until they are golden brown.", "cooking"),
    ("Bake the bread for forty minutes.", "cooking"),
    ("Add a pinch of salt to the soup.", "cooking"),
    ("This recipe needs fresh basil and garlic.", "cooking"),
]


@dataclass
class Pair:
    """A gateway and two workers of one service; ``workers[0]`` is the one to kill."""

    url: str
    gateway: GatewayProcess
    workers: list[WorkerProcess]
    folder: Path
    extra: list[WorkerProcess] = field(default_factory=list)


async def victim_of(pair: Pair, redis: aioredis.Redis, service: str) -> Victim:
    info = await worker_info(redis, pair.workers[0], service)
    assert info is not None, pair.workers[0].log_tail()
    return Victim(process=pair.workers[0], service=service, name=info.worker)


async def metric(base_url: str, name: str, labels: str) -> float:
    async with httpx.AsyncClient(base_url=base_url) as client:
        text = (await client.get("/metrics")).text
    found = re.search(rf"^{name}\{{{labels}\}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def assert_taken_over(pair: Pair, redis: aioredis.Redis, victim: Victim) -> None:
    """The victim held requests when it died; the takeover (not the idle reclaim) moved them,
    the dead consumer left the group, and the gateway's /metrics says so."""
    assert victim.held, "the victim held nothing when killed: the test proved nothing"
    failover = await read_failover(redis, KEYS, victim.service)
    assert failover.takeovers >= 1
    assert failover.taken_over >= len(victim.held)
    assert failover.reclaimed == 0
    assert victim.name not in await consumers(redis, victim.service)
    labels = f'service="{victim.service}"'

    async def exported() -> bool:
        return await metric(pair.gateway.base_url, "babel_worker_takeovers_total", labels) >= 1

    await wait_until(exported, timeout_s=10, what="babel_worker_takeovers_total on /metrics")
    moved = await metric(
        pair.gateway.base_url, "babel_reclaimed_entries_total", labels + ',via="takeover"'
    )
    assert moved >= len(victim.held)


def envelope_fields(kind: str, request: Any) -> dict[str, Any]:
    """An envelope as the RPC client builds it, to be delivered more than once."""
    call_id = uuid.uuid4().hex
    return {
        "v": PROTOCOL_VERSION,
        "id": call_id,
        "kind": kind,
        "payload": encode(request),
        "reply_to": KEYS.reply(call_id),
        "deadline": time.time() + 120,
        "trace": TraceContext(request_id=call_id),
    }


async def deliver(redis: aioredis.Redis, service: str, envelope: Envelope) -> bytes:
    """Put ``envelope`` on the service's stream (again) and return its reply's payload, as
    a taken-over call is: same envelope, same id, same reply key."""
    await redis.xadd(KEYS.requests(service), {ENTRY_FIELD: encode(envelope)})
    popped: Any = await redis.blpop([envelope.reply_to], timeout=120)
    assert popped is not None, "no reply"
    reply = reply_decoder.decode(popped[1])
    assert reply.error is None, reply.error
    assert reply.payload is not None
    return reply.payload


def post(path: str, body: dict[str, Any]) -> Callable[..., Awaitable[httpx.Response]]:
    def send(client: httpx.AsyncClient, headers: dict[str, str]) -> Awaitable[httpx.Response]:
        return client.post(path, json=body, headers=headers)

    return send


def tasks_worker(url: str, folder: Path, name: str) -> WorkerProcess:
    return start_worker(
        "services.tasks",
        redis_url=url,
        log_dir=folder,
        name=name,
        env={
            **SERVICE_ENV,
            "BABEL_TASKS_DATA_DIR": str(folder / "data"),
            "BABEL_TRANSLATION_BACKEND": "off",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        },
    )


@pytest.fixture(scope="module")
def tasks_pair(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    folder = tmp_path_factory.mktemp("failover-tasks")
    url = fresh_db_url(redis_server, 8)
    gateway = start_gateway(
        redis_url=url, log_dir=folder, env={"BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.2}
    )
    workers = [tasks_worker(url, folder, f"tasks-{i}") for i in range(2)]
    try:
        for worker in workers:
            wait_worker_ready(url, worker, service="tasks", timeout_s=240)
        wait_ready(gateway, watch=workers)
        yield Pair(url=url, gateway=gateway, workers=workers, folder=folder)
    finally:
        for worker in workers:
            worker.stop()
        gateway.stop()


def classifier_body(name: str) -> dict[str, Any]:
    examples = [{"text": text, "label": label} for text, label in TOPIC_EXAMPLES]
    return {"name": name, "examples": examples}


async def test_tasks_survive_a_killed_worker_and_create_each_classifier_once(
    tasks_pair: Pair,
) -> None:
    redis = connect(RedisSettings(url=tasks_pair.url))
    try:
        victim = await victim_of(tasks_pair, redis, "tasks")
        names = [f"topics-{i}" for i in range(4)]
        calls = [Call("classifier", post("/v1/classifiers", classifier_body(n))) for n in names]
        for i in range(28):
            if i % 4 == 3:
                calls.append(Call("detect", post("/v1/detect", {"q": BATCH})))
            else:
                calls.append(Call("sentiment", post("/v1/sentiment", {"q": BATCH})))

        outcomes = await load_with_kill(
            tasks_pair.gateway.base_url, calls, redis=redis, victim=victim, kill_after=10
        )

        assert failures(outcomes) == []
        assert [o.status for o in outcomes if o.call.kind == "classifier"] == [201] * 4
        async with httpx.AsyncClient(base_url=tasks_pair.gateway.base_url) as client:
            listed = (await client.get("/v1/classifiers")).json()["classifiers"]
        assert sorted(c["name"] for c in listed) == names
        files = sorted(p.name for p in (tasks_pair.folder / "data" / "classifiers").iterdir())
        assert files == [f"{n}.msgpack" for n in names]  # no temp file left, none twice
        await assert_taken_over(tasks_pair, redis, victim)
    finally:
        await redis.aclose()


async def test_a_classifier_creation_delivered_twice_creates_it_once(tasks_pair: Pair) -> None:
    """A worker that trained and stored the classifier, then died before replying: the same
    call, delivered again, answers with the classifier it created instead of a conflict."""
    redis = connect(RedisSettings(url=tasks_pair.url))
    try:
        examples = [LabelledExample(text=text, label=label) for text, label in TOPIC_EXAMPLES]
        request = CreateClassifier(name="replayed", examples=tuple(examples))
        envelope = Envelope(**envelope_fields(CREATE_CLASSIFIER.kind, request))

        first = decode_payload(await deliver(redis, "tasks", envelope), ClassifierInfo)
        again = decode_payload(await deliver(redis, "tasks", envelope), ClassifierInfo)

        assert again == first
        other = RpcClient(redis, KEYS)  # another call for the same name is still a conflict
        with pytest.raises(BabelError) as caught:
            await other.call(CREATE_CLASSIFIER, request, timeout_s=120)
        assert caught.value.code is ErrorCode.CONFLICT
    finally:
        await redis.aclose()


# ---------------------------------------------------------------------- retrieval
SEED = [
    ("eiffel", "The Eiffel Tower in Paris is 330 metres tall and was finished in 1889."),
    ("zugspitze", "Die Zugspitze ist mit 2962 Metern der höchste Berg Deutschlands."),
    ("fuji", "富士山は日本で最も高い山で、標高は3776メートルです。"),
]
STORE_FILE = "retrieval.sqlite3"


@pytest.fixture(scope="module")
def retrieval_pair(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """Two retrieval workers, each on a data folder of its own (one writer per folder): the
    second gets a copy of the first one's store, so both serve the same collection."""
    folder = tmp_path_factory.mktemp("failover-retrieval")
    url = fresh_db_url(redis_server, 9)
    gateway = start_gateway(
        redis_url=url,
        log_dir=folder,
        env={"BABEL_GATEWAY_SERVICES": "retrieval", "BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.2},
    )
    workers: list[WorkerProcess] = []

    def start(i: int) -> None:
        worker = start_retrieval_worker(
            redis_url=url,
            data_dir=folder / f"data-{i}",
            log_dir=folder,
            name=f"retrieval-{i}",
            env=SERVICE_ENV,
        )
        workers.append(worker)
        wait_worker_ready(url, worker, timeout_s=240)

    try:
        start(0)
        wait_ready(gateway, watch=workers)
        with httpx.Client(base_url=gateway.base_url, timeout=120) as http:
            assert http.post("/v1/collections", json={"name": "kb"}).status_code == 201
            documents = [{"id": i, "text": t} for i, t in SEED]
            seeded = http.post("/v1/collections/kb/documents", json={"documents": documents})
            assert seeded.status_code == 200, seeded.text
        (folder / "data-1").mkdir()
        with (
            sqlite3.connect(folder / "data-0" / STORE_FILE) as source,
            sqlite3.connect(folder / "data-1" / STORE_FILE) as copy,
        ):
            source.backup(copy)  # a consistent copy of a live SQLite database
        start(1)
        yield Pair(url=url, gateway=gateway, workers=workers, folder=folder)
    finally:
        for worker in workers:
            worker.stop()
        gateway.stop()


async def test_retrieval_survives_a_killed_worker(retrieval_pair: Pair) -> None:
    redis = connect(RedisSettings(url=retrieval_pair.url))
    try:
        victim = await victim_of(retrieval_pair, redis, "retrieval")
        search = {"query": "Wie hoch ist der Eiffelturm?", "k": 3}
        embed = {"input": BATCH, "model": "multilingual-e5-small"}
        calls = [
            Call("search", post("/v1/collections/kb/search", search))
            if i % 2
            else Call("embed", post("/v1/embeddings", embed))
            for i in range(40)
        ]

        outcomes = await load_with_kill(
            retrieval_pair.gateway.base_url, calls, redis=redis, victim=victim, kill_after=8
        )

        assert failures(outcomes) == []
        for outcome in outcomes:
            if outcome.call.kind == "search":
                assert outcome.json()["hits"][0]["document_id"] == "eiffel"
            else:
                assert len(outcome.json()["data"]) == len(BATCH)
        await assert_taken_over(retrieval_pair, redis, victim)
    finally:
        await redis.aclose()


async def test_collection_creation_and_ingest_delivered_twice_store_once(
    retrieval_pair: Pair,
) -> None:
    """What a taken-over call does to the store when its first worker had committed the work
    and died before replying: the same call, delivered again, changes nothing twice."""
    retrieval_pair.workers[0].stop()  # one store: the survivor's (each worker has its own)
    redis = connect(RedisSettings(url=retrieval_pair.url))
    try:
        create = Envelope(
            **envelope_fields(CREATE_COLLECTION.kind, CollectionSpec(name="replayed"))
        )
        first = decode_payload(await deliver(redis, "retrieval", create), CollectionInfo)
        again = decode_payload(await deliver(redis, "retrieval", create), CollectionInfo)
        assert again == first  # not a 409 for the collection this very call created
        documents = tuple(DocumentIn(id=f"d{i}", text=text) for i, text in enumerate(TEXTS))
        ingest = Envelope(
            **envelope_fields(
                INGEST.kind, IngestRequest(collection="replayed", documents=documents)
            )
        )
        once = decode_payload(await deliver(redis, "retrieval", ingest), IngestReply)
        twice = decode_payload(await deliver(redis, "retrieval", ingest), IngestReply)
        assert (once.documents, once.replaced) == (len(TEXTS), 0)
        assert (twice.documents, twice.chunks, twice.replaced) == (
            len(TEXTS),
            once.chunks,
            len(TEXTS),  # upsert by document id: the second run replaced its own documents
        )
        rpc = RpcClient(redis, KEYS)
        info = await rpc.call(DESCRIBE_COLLECTION, CollectionRef(name="replayed"), timeout_s=60)
        assert (info.documents, info.chunks) == (len(TEXTS), once.chunks)
    finally:
        await redis.aclose()


# ---------------------------------------------------------------------- generation
COUNTING = "1, 2, 3, 4, 5, 6,"
"""A prompt even SmolLM2-135M continues the same way every time (greedy)."""


@pytest.fixture(scope="module")
def generation_pair(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """Two vLLM workers (the heaviest fixture of the module: one engine each)."""
    folder = tmp_path_factory.mktemp("failover-generation")
    url = fresh_db_url(redis_server, 10)
    gateway = start_gateway(
        redis_url=url,
        log_dir=folder,
        env={"BABEL_GATEWAY_SERVICES": "generation", "BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.2},
    )
    workers: list[WorkerProcess] = []
    try:
        for i in range(2):
            workers.append(
                start_generation_worker(
                    redis_url=url, log_dir=folder, name=f"generation-{i}", env=SERVICE_ENV
                )
            )
        for worker in workers:
            wait_worker_ready(
                url, worker, service="generation", timeout_s=GENERATION_LOAD_TIMEOUT_S
            )
        wait_ready(gateway, watch=workers)
        yield Pair(url=url, gateway=gateway, workers=workers, folder=folder)
    finally:
        for worker in workers:
            worker.stop(timeout_s=30.0)
        gateway.stop()


def sse_events(body: str) -> list[Any]:
    """The JSON events of a server-sent event stream, and "[DONE]" where it came."""
    events: list[Any] = []
    for line in body.splitlines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


async def test_generation_survives_a_killed_worker_without_repeating_a_token(
    generation_pair: Pair,
) -> None:
    redis = connect(RedisSettings(url=generation_pair.url))
    try:
        victim = await victim_of(generation_pair, redis, "generation")
        body = {"prompt": COUNTING, "max_tokens": 12, "temperature": 0}
        streamed = {**body, "stream": True}
        calls = [
            Call("stream", post("/v1/completions", streamed))
            if i % 4 == 3
            else Call("unary", post("/v1/completions", body))
            for i in range(40)
        ]

        outcomes = await load_with_kill(
            generation_pair.gateway.base_url, calls, redis=redis, victim=victim, kill_after=10
        )

        assert failures(outcomes) == []  # every call got 200, streamed or not
        answers = {o.json()["choices"][0]["text"] for o in outcomes if o.call.kind == "unary"}
        assert len(answers) == 1, answers  # greedy: one answer, the reference for the streams
        (answer,) = answers
        for outcome in (o for o in outcomes if o.call.kind == "stream"):
            events = sse_events(outcome.text)
            assert events[-1] == "[DONE]"
            assert events.count("[DONE]") == 1
            text = "".join(e["choices"][0]["text"] for e in events[:-1] if "choices" in e)
            errors = [e["error"] for e in events[:-1] if "error" in e]
            if errors:  # cut on the dead worker after some tokens: said so, retryable
                assert len(errors) == 1, errors
                assert errors[0]["retryable"] is True, errors
                assert answer.startswith(text), (text, answer)
            else:  # served whole (or restarted before its first token): no token twice
                assert text == answer, (text, answer)
        await assert_taken_over(generation_pair, redis, victim)
    finally:
        await redis.aclose()
