"""API keys end to end: real gateway processes (BABEL_AUTH=on), a real tasks and retrieval
worker, the session's Redis server, the ``babelstack keys`` CLI and the ``openai`` client.

Every route family: no key → 401, a key without the family's scope → 403, revoked or
expired → 401, the right key → the service's answer. LibreTranslate routes take the key in
JSON, form and multipart bodies and answer with LibreTranslate's codes. Limits live in Redis:
a burst gets 429 with a Retry-After that is honoured, characters of every text in a batch
count, and two gateways share one limit. An unauthenticated 1 MB body is refused before a
byte of it is sent. At the end, no key is in any log or anywhere in Redis.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis as sync_redis
from libretranslatepy import LibreTranslateAPI

from services.launcher.redis_server import RedisServer
from shared.access.tokens import digest
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.problems import assert_problem
from tests.support.processes import REPO_ROOT, WorkerProcess, start_worker, worker_env
from tests.support.redis_db import fresh_db_url
from tests.support.retrieval import retrieval_env, wait_worker_ready

REDIS_DB = 15
ADMIN_KEY = "bsk_bootstrap-admin-key-for-the-test-run-0123456789"


@dataclass
class Stack:
    gateway: GatewayProcess
    second: GatewayProcess
    workers: list[WorkerProcess]
    redis_url: str
    tokens: list[str] = field(default_factory=list)
    """Every key made in this module, to grep for at the end."""


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = fresh_db_url(redis_server, REDIS_DB)
    log_dir = tmp_path_factory.mktemp("api-keys")
    admin_file = log_dir / "admin.key"
    admin_file.write_text(ADMIN_KEY + "\n")
    tasks = start_worker("services.tasks", redis_url=url, log_dir=log_dir, name="tasks")
    retrieval = start_worker(
        "services.retrieval",
        redis_url=url,
        log_dir=log_dir,
        name="retrieval",
        env=retrieval_env(log_dir / "retrieval-data"),
    )
    gateways: list[GatewayProcess] = []
    env = {
        "BABEL_AUTH": "on",
        "BABEL_ADMIN_KEY_FILE": str(admin_file),
        "BABEL_GATEWAY_SERVICES": "tasks,retrieval",
        "BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.2,
        "BABEL_LOG_LEVEL": "DEBUG",  # every request is logged: the keys must still not be
    }
    try:
        for name in ("gateway-a", "gateway-b"):
            gateways.append(start_gateway(redis_url=url, log_dir=log_dir, name=name, env=env))
        wait_worker_ready(url, retrieval)
        for gateway in gateways:
            wait_ready(gateway, timeout_s=120, watch=[tasks, retrieval])
        yield Stack(gateways[0], gateways[1], [tasks, retrieval], url, [ADMIN_KEY])
    finally:
        for process in [*gateways, tasks, retrieval]:
            process.stop(timeout_s=10.0)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway.base_url, timeout=60.0) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


ADMIN = bearer(ADMIN_KEY)


async def make_key(
    http: httpx.AsyncClient, stack: Stack, name: str, scopes: list[str], **limits: Any
) -> str:
    response = await http.post(
        "/v1/keys", json={"name": name, "scopes": scopes, **limits}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == name
    assert body["key"].startswith("bsk_")
    assert body["hint"] == body["key"][:8]
    stack.tokens.append(body["key"])
    return str(body["key"])


# One request a family, that its key makes succeed (the service answers), with the status.
FAMILIES: dict[str, tuple[str, str, dict[str, Any] | None, int]] = {
    "search": ("GET", "/v1/collections", None, 200),
    "ingest": ("POST", "/v1/collections", {"name": "kb-auth"}, 201),
    "generate": ("GET", "/v1/models", None, 503),  # passes the gate; no generation worker here
    "translate": ("GET", "/v1/translate/languages", None, 200),
    "analyze": ("POST", "/v1/detect", {"q": "Guten Morgen, wie geht es dir heute?"}, 200),
    "classifiers": ("DELETE", "/v1/classifiers/none-such", None, 404),  # the service's 404
    "batch": ("GET", "/v1/batches", None, 200),
    "admin": ("GET", "/v1/services", None, 200),
}


async def call(
    http: httpx.AsyncClient, family: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    method, path, body, _ = FAMILIES[family]
    return await http.request(method, path, json=body, headers=headers or {})


# ---------------------------------------------------------------------- open routes
async def test_open_routes_need_no_key(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/readyz")).status_code == 200
    assert (await http.get("/schema/openapi.json")).status_code == 200
    preflight = await http.options("/v1/detect")
    assert preflight.status_code == 204, preflight.text


# ---------------------------------------------------------------------- every family
@pytest.mark.parametrize("family", list(FAMILIES))
async def test_no_key_is_401(http: httpx.AsyncClient, family: str) -> None:
    response = await call(http, family)
    body = assert_problem(response, 401, "unauthenticated")
    assert "Authorization: Bearer" in body["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("family", list(FAMILIES))
async def test_unknown_key_is_401(http: httpx.AsyncClient, family: str) -> None:
    response = await call(http, family, {"X-API-Key": "bsk_not-a-key-anyone-made"})
    assert_problem(response, 401, "unauthenticated")


@pytest.mark.parametrize("family", list(FAMILIES))
async def test_key_without_the_scope_is_403(
    http: httpx.AsyncClient, stack: Stack, family: str
) -> None:
    others = [f for f in FAMILIES if f != family]
    key = await make_key(http, stack, f"all-but-{family}", others)
    response = await call(http, family, bearer(key))
    body = assert_problem(response, 403, "permission_denied")
    assert repr(family) in body["detail"]


@pytest.mark.parametrize("family", list(FAMILIES))
async def test_key_with_the_scope_is_served(
    http: httpx.AsyncClient, stack: Stack, family: str
) -> None:
    key = await make_key(http, stack, f"only-{family}", [family])
    response = await call(http, family, {"X-API-Key": key})
    expected = FAMILIES[family][3]
    assert response.status_code == expected, response.text
    if expected == 503:
        assert "generation" in response.json()["detail"]  # the caller's answer, past the gate
    if family == "ingest":
        done = await http.delete("/v1/collections/kb-auth", headers={"X-API-Key": key})
        assert done.status_code == 200, done.text


async def test_revoked_key_is_401(http: httpx.AsyncClient, stack: Stack) -> None:
    key = await make_key(http, stack, "to-revoke", ["analyze"])
    assert (await call(http, "analyze", bearer(key))).status_code == 200
    revoked = await http.delete("/v1/keys/to-revoke", headers=ADMIN)
    assert revoked.json() == {"name": "to-revoke", "revoked": True}
    for gateway in (stack.gateway, stack.second):  # every gateway, at once
        async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as other:
            assert_problem(await call(other, "analyze", bearer(key)), 401, "unauthenticated")
    assert_problem(await http.delete("/v1/keys/to-revoke", headers=ADMIN), 404, "not_found")


async def test_expired_key_is_401(http: httpx.AsyncClient, stack: Stack) -> None:
    key = await make_key(http, stack, "short-lived", ["analyze"], expires_in="1s")
    await asyncio.sleep(1.2)
    body = assert_problem(await call(http, "analyze", bearer(key)), 401, "unauthenticated")
    assert "expired" in body["detail"]
    listed = (await http.get("/v1/keys/short-lived", headers=ADMIN)).json()
    assert listed["expired"] is True


async def test_key_admin_api(http: httpx.AsyncClient, stack: Stack) -> None:
    key = await make_key(http, stack, "described", ["analyze"], rpm=100, chars_per_min=5000)
    for _ in range(2):
        assert (await call(http, "analyze", bearer(key))).status_code == 200
    described = (await http.get("/v1/keys/described", headers=ADMIN)).json()
    assert described["scopes"] == ["analyze"]
    assert described["limits"] == {"rpm": 100, "chars_per_min": 5000, "streams": 8}
    assert described["usage"]["requests"] == 2
    assert described["usage"]["chars"] == 2 * len(FAMILIES["analyze"][2]["q"])  # type: ignore[index]
    assert described["usage"]["last_used_at"] >= described["created_at"]
    assert "key" not in described
    listing = (await http.get("/v1/keys", headers=ADMIN)).json()
    assert "described" in [k["name"] for k in listing["keys"]]
    assert key not in json.dumps(listing)
    taken = await http.post(
        "/v1/keys", json={"name": "described", "scopes": ["search"]}, headers=ADMIN
    )
    assert_problem(taken, 409, "conflict")
    unknown = await http.post("/v1/keys", json={"name": "x", "scopes": ["root"]}, headers=ADMIN)
    assert_problem(unknown, 422, "invalid_argument", "scopes")


# ---------------------------------------------------------------------- LibreTranslate
async def test_libretranslate_key_in_json_form_and_multipart(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    key = await make_key(http, stack, "lt-client", ["analyze", "translate"])
    text = "Buenos días, ¿cómo estás hoy?"
    as_json = await http.post("/detect", json={"q": text, "api_key": key})
    as_form = await http.post("/detect", data={"q": text, "api_key": key})
    as_multipart = await http.post(
        "/detect", data={"q": text, "api_key": key}, files={"unused": ("a.txt", b"x")}
    )
    for response in (as_json, as_form, as_multipart):
        assert response.status_code == 200, response.text
        assert response.json()[0]["language"] == "es"
    assert "multipart/form-data" in as_multipart.request.headers["content-type"]
    languages = await http.get("/languages", params={"api_key": key})
    assert languages.status_code == 200, languages.text


async def test_libretranslate_client_with_api_key(http: httpx.AsyncClient, stack: Stack) -> None:
    """The ``libretranslatepy`` client, as LibreTranslate users have it: api_key in the form."""
    key = await make_key(http, stack, "lt-library", ["analyze", "translate"])
    client = LibreTranslateAPI(stack.gateway.base_url + "/", api_key=key)
    detected = await asyncio.to_thread(client.detect, "Wie geht es dir heute, mein Freund?")
    assert detected[0]["language"] == "de"
    languages = await asyncio.to_thread(client.languages)
    assert {"code", "name", "targets"} <= set(languages[0])
    anonymous = LibreTranslateAPI(stack.gateway.base_url + "/")
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(anonymous.detect, "Hallo")
    assert refused.value.code == 400


async def test_libretranslate_codes(http: httpx.AsyncClient, stack: Stack) -> None:
    missing = await http.post("/translate", json={"q": "Hello", "source": "en", "target": "de"})
    body = assert_problem(missing, 400, "unauthenticated")
    assert body["error"] == body["detail"]
    bad = await http.post(
        "/translate", data={"q": "Hello", "source": "en", "target": "de", "api_key": "bsk_nope"}
    )
    assert assert_problem(bad, 403, "unauthenticated")["error"]
    reader = await make_key(http, stack, "lt-reader", ["search"])
    wrong = await http.post("/detect", json={"q": "Hello there", "api_key": reader})
    assert assert_problem(wrong, 403, "permission_denied")["error"]
    slow = await make_key(http, stack, "lt-slow", ["analyze"], rpm=1)
    assert (
        await http.post("/detect", data={"q": "Hello there", "api_key": slow})
    ).status_code == 200
    limited = await http.post("/detect", data={"q": "Hello there", "api_key": slow})
    assert assert_problem(limited, 429, "rate_limited")["error"]
    assert int(limited.headers["retry-after"]) > 0


# ---------------------------------------------------------------------- the openai client
async def test_openai_client_with_api_key(http: httpx.AsyncClient, stack: Stack) -> None:
    key = await make_key(http, stack, "openai-app", ["search"])
    base = stack.gateway.base_url + "/v1"

    def embed(api_key: str) -> Any:
        client = openai.OpenAI(base_url=base, api_key=api_key, max_retries=0, timeout=60)
        return client.embeddings.create(
            input=["Hallo Welt", "Hello world"], model="multilingual-e5-small"
        )

    result = await asyncio.to_thread(embed, key)
    assert len(result.data) == 2
    assert len(result.data[0].embedding) == 384
    with pytest.raises(openai.AuthenticationError):
        await asyncio.to_thread(embed, "bsk_wrong")
    generator = await make_key(http, stack, "openai-generate-only", ["generate"])
    with pytest.raises(openai.PermissionDeniedError):
        await asyncio.to_thread(embed, generator)


# ---------------------------------------------------------------------- limits
def _rate_limit(response: httpx.Response) -> dict[str, dict[str, int]]:
    """``"requests";r=3;t=10, "chars";r=…`` → {"requests": {"r": 3, "t": 10}, …}."""
    found = {}
    for item in response.headers["ratelimit"].split(","):
        name, *params = item.strip().split(";")
        found[name.strip('"')] = {k: int(v) for k, v in (p.split("=") for p in params)}
    return found


async def test_request_burst_gets_429_with_retry_after_then_succeeds(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    key = await make_key(http, stack, "bursty", ["analyze"], rpm=12, chars_per_min=0)
    # Bad bodies: refused at once by validation (422), but each counts as a request.
    started = time.monotonic()
    burst = await asyncio.gather(
        *(http.post("/v1/detect", json={}, headers=bearer(key)) for _ in range(12))
    )
    assert sorted(r.status_code for r in burst) == [422] * 12
    assert sorted(_rate_limit(r)["requests"]["r"] for r in burst) == list(range(12))
    assert burst[0].headers["ratelimit-policy"] == '"requests";q=12;w=60'
    over = await http.post("/v1/detect", json={}, headers=bearer(key))
    elapsed = time.monotonic() - started
    assert_problem(over, 429, "rate_limited")
    retry_after = int(over.headers["retry-after"])
    # 12 a minute = one every 5 s: the next is due 5 s after the burst began.
    assert max(1, 5 - elapsed - 1) <= retry_after <= 5
    assert _rate_limit(over)["requests"]["r"] == 0
    await asyncio.sleep(retry_after)
    again = await call(http, "analyze", bearer(key))
    assert again.status_code == 200, again.text
    usage = (await http.get("/v1/keys/bursty", headers=ADMIN)).json()["usage"]
    assert usage["requests"] == 13
    assert usage["throttled"] == 1


async def test_char_quota_counts_every_text_of_a_batch(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    key = await make_key(http, stack, "chars", ["analyze"], rpm=0, chars_per_min=100)
    texts = [
        "Das ist ein ganz gewöhnlicher deutscher Satz über das Wetter heute.",
        "Good morning, everyone here!",
    ]
    chars = sum(len(t) for t in texts)
    assert 90 <= chars < 100
    first = await http.post("/v1/detect", json={"q": texts}, headers=bearer(key))
    assert first.status_code == 200, first.text
    assert _rate_limit(first)["chars"]["r"] == 100 - chars
    # Had only the first text been counted, 20 more characters would fit.
    second = await http.post("/v1/detect", json={"q": ["x" * 20]}, headers=bearer(key))
    body = assert_problem(second, 429, "rate_limited")
    assert "20 characters" in body["detail"]
    assert int(second.headers["retry-after"]) >= 1
    assert '"chars";q=100;w=60' in second.headers["ratelimit-policy"]
    usage = (await http.get("/v1/keys/chars", headers=ADMIN)).json()["usage"]
    assert usage["chars"] == chars


async def test_two_gateways_share_one_limit(http: httpx.AsyncClient, stack: Stack) -> None:
    key = await make_key(http, stack, "shared", ["analyze"], rpm=4, chars_per_min=0)
    async with httpx.AsyncClient(base_url=stack.second.base_url, timeout=30) as second:
        for client in (http, second, http, second):
            assert (
                await client.post("/v1/detect", json={}, headers=bearer(key))
            ).status_code == 422
        for client in (http, second):
            over = await client.post("/v1/detect", json={}, headers=bearer(key))
            assert_problem(over, 429, "rate_limited")


# ---------------------------------------------------------------------- cost of refusing
def test_unauthenticated_body_is_refused_unread(stack: Stack) -> None:
    """The gateway answers 401 to the headers of a 1 MB POST while not one byte of its body
    has been sent: it cannot have read it."""
    with socket.create_connection(("127.0.0.1", stack.gateway.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/collections/kb/documents HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n"
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


# ---------------------------------------------------------------------- CLI, metrics, docs
def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.launcher.cli", "keys", *args],
        cwd=REPO_ROOT,
        env=worker_env(stack.redis_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_create_list_revoke(http: httpx.AsyncClient, stack: Stack) -> None:
    made = _cli(
        stack,
        "create",
        "--name",
        "team-a",
        "--scopes",
        "search,analyze",
        "--rpm",
        "600",
        "--chars-per-min",
        "200000",
        "--expires",
        "90d",
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    stack.tokens.append(key)
    assert re.fullmatch(r"bsk_[A-Za-z0-9_-]{43}", key)
    assert "not shown again" in made.stderr
    assert (await call(http, "analyze", bearer(key))).status_code == 200
    listed = _cli(stack, "list")
    line = next(row for row in listed.stdout.splitlines() if row.startswith("team-a"))
    assert "search,analyze" in line
    assert key[:8] in line
    assert key not in listed.stdout
    assert _cli(stack, "revoke", "team-a").returncode == 0
    assert_problem(await call(http, "analyze", bearer(key)), 401, "unauthenticated")
    missing = _cli(stack, "revoke", "team-a")
    assert missing.returncode == 1
    assert "no key named 'team-a'" in missing.stderr


async def test_metrics_count_by_key_name_for_admins(http: httpx.AsyncClient, stack: Stack) -> None:
    key = await make_key(http, stack, "metered", ["analyze"])
    assert (await call(http, "analyze", bearer(key))).status_code == 200
    assert_problem(await http.get("/metrics", headers=bearer(key)), 403, "permission_denied")
    text = (await http.get("/metrics", headers=ADMIN)).text
    assert 'babel_api_key_requests_total{key="metered"} 1.0' in text
    assert re.search(r'babel_api_key_chars_total\{key="metered"\} [1-9]', text)
    assert 'babel_api_key_refusals_total{key="-",reason="missing"}' in text
    assert key not in text


async def test_openapi_documents_keys_on_every_operation(http: httpx.AsyncClient) -> None:
    document = (await http.get("/schema/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["apiKeyHeader"]["name"] == "X-API-Key"
    checked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path in ("/healthz", "/readyz") or path.startswith("/schema"):
                assert "security" not in operation or not operation["security"]
                continue
            checked += 1
            codes = set(operation["responses"])
            expected = (
                {"400", "403", "429"}
                if path in ("/translate", "/detect", "/languages")
                else {"401", "403", "429"}
            )
            assert expected <= codes, (method, path, codes)
            assert operation["security"], (method, path)
            assert "scope" in operation["description"]
            assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert checked > 20


@pytest.mark.parametrize(("auth", "warned"), [("off", True), ("auto", False)])
def test_keys_off_on_loopback_or_when_told(
    stack: Stack, tmp_path: Path, auth: str, warned: bool
) -> None:
    """``auto`` on loopback and an explicit ``off`` serve without keys; ``off`` says so in
    the log. (``auto`` on any other address requires keys: tests/unit/test_access_tables.py.)"""
    gateway = start_gateway(
        redis_url=stack.redis_url,
        log_dir=tmp_path,
        name=f"gateway-{auth}",
        env={"BABEL_AUTH": auth, "BABEL_GATEWAY_SERVICES": "tasks"},
    )
    try:
        with httpx.Client(base_url=gateway.base_url, timeout=30) as client:
            assert client.get("/v1/keys").status_code == 200
            assert client.post("/v1/detect", json={"q": "Hello there"}).status_code == 200
    finally:
        gateway.stop()
    assert ("BABEL_AUTH=off" in gateway.log_text()) is warned


# ---------------------------------------------------------------------- last: no key leaked
def test_keys_never_logged_or_stored_in_plain_text(stack: Stack) -> None:
    """Runs last in this module: every key made above is absent from every log and from
    every key and value in Redis (its digest is there)."""
    with httpx.Client(base_url=stack.gateway.base_url, timeout=30) as client:
        made = client.post(
            "/v1/keys", json={"name": "grep-me", "scopes": ["analyze"]}, headers=ADMIN
        )
        key = made.json()["key"]
        stack.tokens.append(key)
        assert client.post("/v1/detect", json={"q": "Hello there"}, headers=bearer(key)).is_success
        assert client.post("/detect", data={"q": "Hello there", "api_key": key}).is_success
    logs = "".join(p.log_text() for p in (stack.gateway, stack.second, *stack.workers))
    assert "request" in logs  # DEBUG access lines were written
    client = sync_redis.Redis.from_url(stack.redis_url)
    try:
        stored = []
        for name in client.scan_iter(count=1000):
            stored.append(name)
            kind = client.type(name)
            if kind == b"hash":
                stored += [b for pair in client.hgetall(name).items() for b in pair]
            elif kind == b"string":
                stored.append(client.get(name) or b"")
            elif kind == b"zset":
                stored += [m for m, _ in client.zrange(name, 0, -1, withscores=True)]
            elif kind == b"list":
                stored += client.lrange(name, 0, -1)
        redis_text = b"\n".join(stored).decode("utf-8", "replace")
    finally:
        client.close()
    assert digest(key) in redis_text
    for token in stack.tokens:
        secret = token.removeprefix("bsk_")
        assert secret not in logs
        assert secret not in redis_text
