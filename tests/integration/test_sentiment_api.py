"""Sentiment and custom classifiers over real HTTP, with the real models.

One stack for the module: the session's Redis server (a database of its own), one
``python -m services.tasks`` worker (translation off) that loads the prepared
multilingual-e5-small and the sentiment head that ``babelstack train sentiment`` put in
the model cache (``make models`` does both), and one ``python -m services.gateway``.
Custom classifiers live in a data folder of this module; one test restarts the worker
on it to show they persist.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.hostile import HUGE_INT, deep_dict, too_deep_json
from services.launcher.redis_server import RedisServer
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.prober import probing
from tests.support.problems import assert_problem
from tests.support.processes import WorkerProcess, start_worker
from tests.support.redis_db import fresh_db_url
from tests.support.retrieval import wait_worker_ready

pytestmark = pytest.mark.timeout(300)

REDIS_DB = 12
MAX_TEXT_CHARS = 2_000
LOAD_TIMEOUT_S = 180.0

POSITIVE = {
    "en": "I absolutely love this, it made my day!",
    "de": "Ich liebe diesen Film, er ist einfach wunderbar!",
    "es": "¡Me encanta este lugar, es maravilloso!",
    "fr": "J'adore ce restaurant, c'était délicieux !",
    "ja": "この映画は本当に素晴らしかった！大好きです。",
}
NEGATIVE = {
    "en": "This is the worst service I have ever had. I'm furious.",
    "de": "Das war eine schreckliche Erfahrung, ich bin total enttäuscht.",
    "es": "Odio esta aplicación, es horrible y no funciona.",
    "fr": "C'est nul, je suis vraiment déçu et en colère.",
    "ja": "最悪のサービスでした。二度と行きません。",
}

TOPIC_EXAMPLES = [
    ("The team won the football match last night.", "sports"),
    ("She scored two goals in the second half.", "sports"),
    ("The tennis final went to five sets.", "sports"),
    ("Our basketball coach called a timeout.", "sports"),
    ("Stir the onions until they are golden brown.", "cooking"),
    ("Bake the bread for forty minutes.", "cooking"),
    ("Add a pinch of salt to the soup.", "cooking"),
    ("This recipe needs fresh basil and garlic.", "cooking"),
    ("It will rain heavily tomorrow afternoon.", "weather"),
    ("A cold wind is blowing from the north.", "weather"),
    ("The forecast says sunny skies all week.", "weather"),
    ("Snow is expected in the mountains tonight.", "weather"),
]
TOPIC_TESTS = [
    ("Die Mannschaft hat das Spiel mit drei zu eins gewonnen.", "sports"),
    ("Den Teig eine Stunde ruhen lassen und dann im Ofen backen.", "cooking"),
    ("Morgen wird es stark regnen und sehr windig sein.", "weather"),
    ("El delantero marcó un gol en el último minuto.", "sports"),
    ("Corta las cebollas y fríelas en aceite de oliva.", "cooking"),
    ("Mañana habrá tormentas y mucho frío en el norte.", "weather"),
]


def _start_tasks(url: str, folder: Path, name: str) -> WorkerProcess:
    """A tasks worker on the module's data folder, returned once it is ready."""
    worker = start_worker(
        "services.tasks",
        redis_url=url,
        log_dir=folder,
        name=name,
        env={
            "BABEL_TASKS_DATA_DIR": str(folder / "data"),
            "BABEL_TRANSLATION_BACKEND": "off",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        },
    )
    wait_worker_ready(url, worker, service="tasks", timeout_s=LOAD_TIMEOUT_S)
    return worker


@dataclass
class Stack:
    url: str
    folder: Path
    gateway: GatewayProcess
    worker: WorkerProcess
    restarts: int = 0

    def restart_worker(self) -> None:
        assert self.worker.stop(timeout_s=15.0) == 0, self.worker.log_tail()
        self.restarts += 1
        self.worker = _start_tasks(self.url, self.folder, f"tasks-{self.restarts}")
        wait_ready(self.gateway, watch=[self.worker])


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("sentiment-api")
    url = fresh_db_url(redis_server, REDIS_DB)
    gateway = start_gateway(
        redis_url=url,
        log_dir=folder,
        env={"BABEL_GATEWAY_SERVICES": "tasks", "BABEL_GATEWAY_MAX_TEXT_CHARS": MAX_TEXT_CHARS},
    )
    workers: list[WorkerProcess] = []
    try:
        workers.append(_start_tasks(url, folder, "tasks-0"))
        stack = Stack(url=url, folder=folder, gateway=gateway, worker=workers[0])
        wait_ready(gateway, watch=workers)
        yield stack
        workers.append(stack.worker)
    finally:
        for worker in workers:  # stop() is a no-op for one that already exited
            worker.stop()
        gateway.stop()


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway.base_url, timeout=120.0) as client:
        yield client


# ------------------------------------------------------------------ sentiment
@pytest.mark.parametrize("language", sorted(POSITIVE))
def test_clear_sentiment_in_several_languages(http: httpx.Client, language: str) -> None:
    response = http.post("/v1/sentiment", json={"q": [POSITIVE[language], NEGATIVE[language]]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "sentiment-umsab-e5-small" in body["model"]
    positive, negative = body["results"]
    assert positive["label"] == "positive", positive
    assert negative["label"] == "negative", negative
    assert positive["score"] > 0.2 > -0.2 > negative["score"]
    for result in (positive, negative):
        probabilities = result["probabilities"]
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        assert -1.0 <= result["score"] <= 1.0
        assert result["magnitude"] > 0
        assert "sentences" not in result


def test_sentences_when_asked(http: httpx.Client) -> None:
    text = (
        "The hotel room was beautiful and the staff were wonderful. "
        "But the food was disgusting and made me sick."
    )
    response = http.post("/v1/sentiment", json={"q": text, "sentences": True})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    sentences = result["sentences"]
    assert [s["label"] for s in sentences] == ["positive", "negative"]
    assert [text[s["start"] : s["end"]] for s in sentences] == [s["text"] for s in sentences]
    assert result["magnitude"] == pytest.approx(sum(s["magnitude"] for s in sentences), abs=1e-3)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"q": "   "}, "q"),
        ({"q": []}, "q"),
        ({"q": ["fine", ""]}, "q[1]"),
        ({"q": "x" * (MAX_TEXT_CHARS + 1)}, "q"),
        ({"q": "hello", "extra": 1}, "extra"),
    ],
)
def test_sentiment_bad_input(http: httpx.Client, body: dict[str, Any], field: str) -> None:
    problem = assert_problem(http.post("/v1/sentiment", json=body), 422)
    assert problem["field"] == field
    ok = http.post("/v1/sentiment", json={"q": "Still serving?"})
    assert ok.status_code == 200, ok.text


# ------------------------------------------------------------- classifiers
def _create(http: httpx.Client, name: str, examples: list[tuple[str, str]]) -> httpx.Response:
    return http.post(
        "/v1/classifiers",
        json={
            "name": name,
            "description": "topic of a sentence",
            "examples": [{"text": text, "label": label} for text, label in examples],
        },
    )


def test_classifier_from_english_examples_classifies_german_and_spanish(
    http: httpx.Client,
) -> None:
    created = _create(http, "topics", TOPIC_EXAMPLES)
    assert created.status_code == 201, created.text
    info = created.json()
    assert [(c["label"], c["examples"]) for c in info["labels"]] == [
        ("cooking", 4),
        ("sports", 4),
        ("weather", 4),
    ]
    assert info["examples"] == 12
    assert info["validation"]["held_out"] == 3
    assert info["validation"]["trained_on"] == 9
    assert 0.0 <= info["validation"]["accuracy"] <= 1.0

    response = http.post(
        "/v1/classifiers/topics/predict", json={"q": [text for text, _ in TOPIC_TESTS]}
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["label"] for p in predictions] == [label for _, label in TOPIC_TESTS]
    for prediction in predictions:
        assert prediction["confidence"] == prediction["scores"][0]["probability"]
        assert sum(s["probability"] for s in prediction["scores"]) == pytest.approx(1, abs=1e-3)

    described = http.get("/v1/classifiers/topics")
    assert described.status_code == 200
    assert described.json() == info
    listed = http.get("/v1/classifiers").json()["classifiers"]
    assert "topics" in [c["name"] for c in listed]

    assert_problem(_create(http, "topics", TOPIC_EXAMPLES), 409)


def test_classifier_delete(http: httpx.Client) -> None:
    assert _create(http, "to-delete", TOPIC_EXAMPLES[:8]).status_code == 201
    deleted = http.delete("/v1/classifiers/to-delete")
    assert deleted.status_code == 200
    assert deleted.json() == {"name": "to-delete"}
    assert_problem(http.get("/v1/classifiers/to-delete"), 404)
    assert_problem(http.delete("/v1/classifiers/to-delete"), 404)
    assert "to-delete" not in [c["name"] for c in http.get("/v1/classifiers").json()["classifiers"]]


@pytest.mark.parametrize(
    ("name", "examples", "status", "needle"),
    [
        ("one-label", [(f"text {i}", "a") for i in range(6)], 400, "at least 2 labels"),
        (
            "too-few",
            [("good", "pos"), ("great", "pos"), ("fine", "pos"), ("bad", "neg")],
            400,
            "at least 3 examples",
        ),
        ("bad name!", TOPIC_EXAMPLES, 422, "name"),
        ("empty-text", [*TOPIC_EXAMPLES, ("  ", "sports")], 422, "empty"),
    ],
)
def test_classifier_bad_input(
    http: httpx.Client, name: str, examples: list[tuple[str, str]], status: int, needle: str
) -> None:
    problem = assert_problem(_create(http, name, examples), status)
    assert needle in problem["detail"]
    assert http.get("/v1/classifiers").status_code == 200  # still serving


def test_unknown_classifier_is_404(http: httpx.Client) -> None:
    problem = assert_problem(http.post("/v1/classifiers/nope/predict", json={"q": "hello"}), 404)
    assert "nope" in problem["detail"]
    assert_problem(http.get("/v1/classifiers/nope"), 404)


def test_classifiers_persist_across_a_worker_restart(stack: Stack, http: httpx.Client) -> None:
    created = _create(http, "kept", TOPIC_EXAMPLES)
    assert created.status_code == 201, created.text
    before = http.post("/v1/classifiers/kept/predict", json={"q": TOPIC_TESTS[0][0]}).json()

    stack.restart_worker()

    assert http.get("/v1/classifiers/kept").json() == created.json()
    after = http.post("/v1/classifiers/kept/predict", json={"q": TOPIC_TESTS[0][0]})
    assert after.status_code == 200, after.text
    assert after.json() == before
    assert "kept" in [c["name"] for c in http.get("/v1/classifiers").json()["classifiers"]]


# ------------------------------------------------------------- hostile requests (issue 11)
def _wait_idle(http: httpx.Client, timeout_s: float = 60.0) -> None:
    """Until every tasks worker reports nothing in flight (its heartbeat)."""
    give_up = time.monotonic() + timeout_s
    while True:
        services = http.get("/v1/services").json()["services"]
        workers = next(s["workers"] for s in services if s["name"] == "tasks")
        if workers and all(w["in_flight"] == 0 for w in workers):
            return
        assert time.monotonic() < give_up, f"tasks still busy after {timeout_s} s: {workers}"
        time.sleep(0.2)


def test_training_past_its_deadline_stores_no_classifier(stack: Stack, http: httpx.Client) -> None:
    """Classes 3 and 6. Through a second gateway whose training timeout is 1 s, a classifier
    of 4,000 examples gets its 504 (bound: within 15 s) and is never stored: not once the
    worker is idle again, nor 2 s later (training in a thread used to store it after the
    client had its 504). Meanwhile a second client keeps scoring sentiment, listing
    classifiers and calling /readyz through the main gateway: no error, p99 under 5 s (its
    texts go ahead of the training's in the shared embedder)."""
    name = "too-slow"
    examples = [
        {"text": f"{text} (variant {i})", "label": label}
        for i in range(4_000 // len(TOPIC_EXAMPLES))
        for text, label in TOPIC_EXAMPLES
    ]
    short = start_gateway(
        redis_url=stack.url,
        log_dir=stack.folder,
        name="gateway-short-training",
        env={"BABEL_GATEWAY_SERVICES": "tasks", "BABEL_GATEWAY_CLASSIFIER_TRAIN_TIMEOUT_S": 1},
    )
    probes_on = [("/v1/sentiment", {"q": POSITIVE["en"]}), "/v1/classifiers", "/readyz"]
    try:
        with (
            httpx.Client(base_url=short.base_url, timeout=60.0) as client,
            probing(stack.gateway.base_url, probes_on) as probes,
        ):
            started = time.monotonic()
            response = client.post("/v1/classifiers", json={"name": name, "examples": examples})
            took = time.monotonic() - started
            assert_problem(response, 504, "deadline_exceeded")
            assert took < 15.0, f"the 504 came after {took:.1f} s"
            _wait_idle(http)
            assert_problem(http.get(f"/v1/classifiers/{name}"), 404)
            time.sleep(2.0)  # a classifier stored after its handler gave up would be here now
    finally:
        short.stop()
    assert_problem(http.get(f"/v1/classifiers/{name}"), 404)
    assert name not in [c["name"] for c in http.get("/v1/classifiers").json()["classifiers"]]
    print(f"504 after {took:.1f} s; second client: {probes.calls} calls, "
          f"p99 {probes.p99_s() * 1000:.0f} ms")  # fmt: skip
    stack.worker.assert_alive()


def test_hostile_bodies_on_tasks_routes(stack: Stack, http: httpx.Client) -> None:
    """Classes 2, 7, 11 and 12 on the tasks routes. A text of 500 sentences is scored whole
    and per sentence, its first 200 only (``BABEL_SENTIMENT_MAX_SENTENCES``; splitting runs
    off the worker's event loop), within the gateway's 30 s (with the long text in one model
    batch with its sentences, padding made it 34 s on this machine);
    64-bit overflows, a body nested past the JSON decoder's limit, JSON where a flag belongs
    and names with a trailing newline are refused with a 4xx naming the field. A second
    client keeps listing classifiers and calling /readyz: no error, p99 under 5 s."""
    many = "Ok. " * 500
    assert len(many) <= MAX_TEXT_CHARS
    refused: list[tuple[str, str, dict[str, Any], int, str, str | None]] = [
        ("POST", "/v1/detect", {"json": {"q": "hello", "top_k": HUGE_INT}}, 422,
         "invalid_argument", "top_k"),
        ("POST", "/v1/sentiment", {"json": {"q": "hello", "sentences": deep_dict(40)}}, 422,
         "invalid_argument", "sentences"),
        ("POST", "/v1/sentiment", {"content": too_deep_json(b'"q": "hi", "x": '),
         "headers": {"content-type": "application/json"}}, 400, "invalid_json", None),
        ("POST", "/v1/classifiers", {"json": {"name": "topics\n", "examples": [
            {"text": t, "label": lb} for t, lb in TOPIC_EXAMPLES]}}, 422, "invalid_argument",
         "name"),
        ("POST", "/v1/classifiers/topics%0A/predict", {"json": {"q": "hi"}}, 422,
         "invalid_argument", "name"),
        ("GET", "/v1/classifiers/topics%0A", {}, 422, "invalid_argument", "name"),
    ]  # fmt: skip
    with probing(stack.gateway.base_url, ["/v1/classifiers", "/readyz"]) as probes:
        for method, path, options, status, code, field in refused:
            assert_problem(http.request(method, path, **options), status, code, field)
        started = time.monotonic()
        scored = http.post("/v1/sentiment", json={"q": many, "sentences": True})
        took = time.monotonic() - started
    assert scored.status_code == 200, scored.text
    assert took < 30.0, f"sentence scoring took {took:.1f} s"
    results = scored.json()["results"]
    assert [len(r["sentences"]) for r in results] == [200]
    print(f"sentences in {took:.1f} s; second client: {probes.calls} calls, "
          f"p99 {probes.p99_s() * 1000:.0f} ms")  # fmt: skip
    stack.worker.assert_alive()
