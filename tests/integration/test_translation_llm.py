"""The ``llm`` translation backend end to end: gateway -> tasks -> generation (vLLM).

One stack for the module: the session's Redis server (a database of its own), a real
``python -m services.generation`` worker serving SmolLM2-135M-Instruct (prepared in the
model cache; English only, so these tests check shapes and that text comes back, not
translation quality), a ``python -m services.tasks`` worker with the default ``llm``
backend, and ``python -m services.gateway``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.launcher.redis_server import RedisServer
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.processes import WorkerProcess, start_worker
from tests.support.redis_db import fresh_db_url

pytestmark = pytest.mark.timeout(420)

REDIS_DB = 13
MODEL = "SmolLM2-135M-Instruct"
MODELS_DIR = Path("~/.cache/babelstack/models").expanduser()


@dataclass
class Stack:
    gateway: GatewayProcess
    tasks: WorkerProcess
    generation: WorkerProcess


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert (MODELS_DIR / MODEL / "config.json").is_file(), f"{MODEL} is not prepared"
    folder = tmp_path_factory.mktemp("translation-llm")
    url = fresh_db_url(redis_server, REDIS_DB)
    processes: list[WorkerProcess | GatewayProcess] = []
    try:
        generation = start_worker(
            "services.generation",
            redis_url=url,
            log_dir=folder,
            name="generation",
            env={
                "BABEL_GENERATION_MODEL": MODEL,
                "BABEL_GENERATION_MAX_MODEL_LEN": "1024",
                "BABEL_MODELS_DIR": str(MODELS_DIR),
                "HF_HUB_OFFLINE": "1",
            },
        )
        processes.append(generation)
        tasks = start_worker(
            "services.tasks",
            redis_url=url,
            log_dir=folder,
            name="tasks-llm",
            env={
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
        yield Stack(gateway=gateway, tasks=tasks, generation=generation)
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
