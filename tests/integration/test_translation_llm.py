"""The ``llm`` translation backend end to end: gateway -> tasks -> generation (vLLM).

One stack for the module: the session's Redis server (a database of its own), a real
``python -m services.generation`` worker serving SmolLM2-135M-Instruct (prepared in the
model cache; English only, so these tests check shapes and that text comes back, not
translation quality), a ``python -m services.tasks`` worker with the default ``llm``
backend, and ``python -m services.gateway``. Generation and tasks share the cores as
``babelstack up`` has them share (``services/launcher/cores.py``): the hostile tests time
the tasks service while generation is busy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.hostile import HOSTILE_TRANSLATE_HTML
from services.launcher.redis_server import RedisServer
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.generation import embedded_core_plan, engine_stats, start_generation_worker
from tests.support.prober import probing
from tests.support.problems import assert_problem
from tests.support.processes import WorkerProcess, start_worker
from tests.support.redis_db import fresh_db_url

pytestmark = pytest.mark.timeout(420)

REDIS_DB = 13


@dataclass
class Stack:
    gateway: GatewayProcess
    tasks: WorkerProcess
    generation: WorkerProcess
    redis_url: str
    folder: Path


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("translation-llm")
    url = fresh_db_url(redis_server, REDIS_DB)
    processes: list[WorkerProcess | GatewayProcess] = []
    try:
        plan = embedded_core_plan(["tasks"])
        generation = start_generation_worker(
            redis_url=url,
            log_dir=folder,
            env={"BABEL_GENERATION_MAX_MODEL_LEN": "1024"},
            plan=plan,
        )
        processes.append(generation)
        tasks = start_worker(
            "services.tasks",
            redis_url=url,
            log_dir=folder,
            name="tasks-llm",
            env={
                **plan.env.get("tasks", {}),
                "BABEL_TRANSLATION_LANGUAGES": "en,de,fr",
                "BABEL_SENTIMENT_BACKEND": "llm",
                "BABEL_CLASSIFIERS_ENABLED": "false",
            },
        )
        processes.append(tasks)
        gateway = start_gateway(
            redis_url=url,
            log_dir=folder,
            env={"BABEL_GATEWAY_SERVICES": "tasks,generation"},
        )
        processes.append(gateway)
        wait_ready(gateway, watch=[generation, tasks], timeout_s=300.0)
        yield Stack(
            gateway=gateway, tasks=tasks, generation=generation, redis_url=url, folder=folder
        )
    finally:
        for process in reversed(processes):
            process.stop(timeout_s=30.0)


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway.base_url, timeout=120.0) as http:
        yield http


def test_libretranslate_translate_through_the_llm(client: httpx.Client) -> None:
    response = client.post(
        "/translate",
        data={"q": "Guten Morgen. Wie geht es dir?", "source": "auto", "target": "en"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["translatedText"], str)
    assert body["translatedText"].strip()
    assert "\n" not in body["translatedText"]
    assert body["detectedLanguage"]["language"] == "de"


def test_native_batch_with_paragraphs(client: httpx.Client, stack: Stack) -> None:
    texts = ["Good morning.\n\nThe weather is nice today.", "Bonjour."]
    response = client.post("/v1/translate", json={"texts": texts, "source": "en", "target": "en"})
    assert response.status_code == 200, response.text
    assert [t["text"] for t in response.json()["translations"]] == texts  # same language

    response = client.post("/v1/translate", json={"texts": texts, "target": "de"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["backend"] == "llm"
    first, second = body["translations"]
    assert (first["source"], second["source"]) == ("en", "fr")
    assert first["text"].count("\n\n") == 1
    assert all(part.strip() for part in first["text"].split("\n\n"))
    assert second["text"].strip()
    stack.tasks.assert_alive()
    stack.generation.assert_alive()


def test_html_through_the_llm(client: httpx.Client) -> None:
    response = client.post(
        "/translate",
        json={
            "q": "<p>Good <b>morning</b>!</p><script>x = 1</script>",
            "source": "en",
            "target": "fr",
            "format": "html",
        },
    )
    assert response.status_code == 200, response.text
    out = response.json()["translatedText"]
    assert out.startswith("<p>")
    assert out.endswith("</p><script>x = 1</script>")
    assert "<b>" in out
    assert "</b>" in out


def test_sentiment_by_the_llm(client: httpx.Client) -> None:
    """The ``llm`` sentiment backend: the engine restricts each answer to one of the labels."""
    texts = [
        "I love this phone, it is wonderful and works perfectly!",
        "This is the worst service ever, I hate it and want my money back.",
    ]
    response = client.post("/v1/sentiment", json={"q": texts})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"].startswith("llm:")
    first, second = body["results"]
    for result in (first, second):
        probabilities = result["probabilities"]
        assert set(probabilities) == {"negative", "neutral", "positive"}
        assert abs(sum(probabilities.values()) - 1.0) < 1e-6
    assert first["label"] == "positive", first
    assert second["label"] == "negative", second
    assert first["score"] > second["score"]


# ---------------------------------------------------------------------- hostile requests
def _worker(http: httpx.Client, service: str) -> dict[str, Any]:
    services = http.get("/v1/services").json()["services"]
    (worker,) = next(s["workers"] for s in services if s["name"] == service)
    return dict(worker)


def _processed_when_idle(http: httpx.Client, service: str, timeout_s: float = 60.0) -> int:
    """The requests the worker of ``service`` has processed, read once it has none in flight
    (and its heartbeat has been renewed since)."""
    give_up = time.monotonic() + timeout_s
    while True:
        first = _worker(http, service)
        if first["in_flight"] == 0:
            time.sleep(1.5)  # a heartbeat later: still idle, count settled
            again = _worker(http, service)
            if again["in_flight"] == 0 and again["processed"] == first["processed"]:
                return int(again["processed"])
        assert time.monotonic() < give_up, f"{service} still busy after {timeout_s} s"
        time.sleep(0.2)


def test_hostile_html_is_read_in_linear_time_and_translated_once(
    stack: Stack, client: httpx.Client
) -> None:
    """Classes 1, 7 and 12 for translation. One request of 100 copies of 9,000 characters of
    ``<a `` as HTML (900 KB; html.parser alone was quadratic on it, ~1.3 s a copy, on the
    worker's event loop): answered 200 within 180 s; the copies' identical sentences reach the
    engine once (the generation worker processes at most 10 requests for it, not 100 x 23);
    every copy comes back the same and without a single ``<`` (no tag was complete in the
    input, and everything the service writes is escaped). A second client keeps calling
    /v1/translate/languages and /readyz: no error, p99 under 5 s."""
    before = _processed_when_idle(client, "generation")
    body = {"texts": [HOSTILE_TRANSLATE_HTML] * 100, "source": "en", "target": "de",
            "format": "html"}  # fmt: skip
    with probing(stack.gateway.base_url, ["/v1/translate/languages", "/readyz"]) as probes:
        started = time.monotonic()
        response = client.post("/v1/translate", json=body, timeout=300)
        took = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert took < 180.0, f"the hostile translation took {took:.1f} s"
    texts = {t["text"] for t in response.json()["translations"]}
    assert len(texts) == 1
    assert "<" not in texts.pop()
    engine_calls = _processed_when_idle(client, "generation") - before
    assert 1 <= engine_calls <= 10, engine_calls
    print(f"translated in {took:.1f} s with {engine_calls} generation calls; second client: "
          f"{probes.calls} calls, p99 {probes.p99_s() * 1000:.0f} ms")  # fmt: skip
    stack.tasks.assert_alive()


def test_a_translation_past_its_deadline_ends_its_generation_calls(
    stack: Stack, client: httpx.Client
) -> None:
    """Class 5. Through a second gateway whose translation timeout is 2 s, 384 distinct
    sentences (one generation call each, made by the tasks worker) get their 504 within 15 s;
    the nested calls end with their caller: within 10 s of the 504 the engine holds no
    request, where it would otherwise generate for the 384 sentences for a minute more. A
    second client keeps calling /v1/translate/languages and /readyz: no error, p99 under 5 s."""
    texts = [
        f"The old ferry number {i} crossed the wide river slowly. "
        f"Passenger {i} watched the city lights disappear behind the hills. "
        f"Everyone on deck {i} was quiet until the engine stopped."
        for i in range(128)
    ]
    short = start_gateway(
        redis_url=stack.redis_url,
        log_dir=stack.folder,
        name="gateway-short-translate",
        env={"BABEL_GATEWAY_SERVICES": "tasks,generation", "BABEL_GATEWAY_TRANSLATE_TIMEOUT_S": 2},
    )
    try:
        with (
            httpx.Client(base_url=short.base_url, timeout=60.0) as hurried,
            probing(stack.gateway.base_url, ["/v1/translate/languages", "/readyz"]) as probes,
        ):
            started = time.monotonic()
            response = hurried.post(
                "/v1/translate", json={"texts": texts, "source": "en", "target": "de"}
            )
            took = time.monotonic() - started
            assert_problem(response, 504, "deadline_exceeded")
            assert took < 15.0, f"the 504 came after {took:.1f} s"
            give_up = time.monotonic() + 10.0
            while (held := asyncio.run(engine_stats(stack.redis_url)).unfinished_requests) > 0:
                assert time.monotonic() < give_up, f"the engine still holds {held} requests"
                time.sleep(0.2)
            emptied = time.monotonic() - started - took
    finally:
        short.stop()
    after = client.post(
        "/v1/translate", json={"texts": "Good night.", "source": "en", "target": "de"}
    )
    assert after.status_code == 200, after.text
    print(f"504 after {took:.1f} s, engine empty {emptied:.1f} s later; second client: "
          f"{probes.calls} calls, p99 {probes.p99_s() * 1000:.0f} ms")  # fmt: skip
    stack.tasks.assert_alive()
    stack.generation.assert_alive()
