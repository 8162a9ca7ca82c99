"""Generation over real HTTP with the official ``openai`` client: gateway subprocess, real
Redis, a real vLLM engine (CPU) on SmolLM2-135M-Instruct, and a real retrieval worker for RAG.

One stack for the module (the engine takes up to a minute to start). SmolLM2 is tiny and
English-only: tests assert what such a model reliably does (greedy answers to easy
questions, valid structured output), and the service's behaviour around it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import platform
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema
import openai
import pytest
import redis

from services.generation.refusals import NO_ANSWER
from services.launcher.redis_server import RedisServer
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.generation import (
    LOAD_TIMEOUT_S,
    MAX_MODEL_LEN,
    TEST_MODEL,
    engine_stats,
    start_generation_worker,
)
from tests.support.prober import probing
from tests.support.problems import assert_problem
from tests.support.processes import WorkerProcess, descendants
from tests.support.retrieval import start_retrieval_worker, wait_worker_ready

pytestmark = pytest.mark.timeout(300)

REDIS_DB = 7
CAPITAL: Any = [{"role": "user", "content": "What is the capital of France?"}]


@dataclass
class Stack:
    gateway: GatewayProcess
    generation: WorkerProcess
    retrieval: WorkerProcess
    redis_url: str


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = f"redis://127.0.0.1:{redis_server.port}/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    log_dir = tmp_path_factory.mktemp("generation-api")
    processes: list[GatewayProcess | WorkerProcess] = []
    try:
        generation = start_generation_worker(redis_url=url, log_dir=log_dir)
        processes.append(generation)
        retrieval = start_retrieval_worker(
            redis_url=url, data_dir=log_dir / "data", log_dir=log_dir, name="retrieval"
        )
        processes.append(retrieval)
        gateway = start_gateway(
            redis_url=url,
            log_dir=log_dir,
            env={
                "BABEL_GATEWAY_SERVICES": "generation,retrieval",
                "BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.2,
            },
        )
        processes.append(gateway)
        wait_worker_ready(url, retrieval)
        wait_worker_ready(url, generation, service="generation", timeout_s=LOAD_TIMEOUT_S)
        wait_ready(gateway, watch=[generation, retrieval], timeout_s=10.0)
        yield Stack(gateway=gateway, generation=generation, retrieval=retrieval, redis_url=url)
    finally:
        for process in reversed(processes):
            process.stop(timeout_s=30.0)


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{stack.gateway.base_url}/v1", api_key="unused", max_retries=0, timeout=120
    ) as oai:
        yield oai


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway.base_url, timeout=120.0) as c:
        yield c


# ---------------------------------------------------------------------- engine probe
def test_the_worker_probed_its_own_engine_before_it_became_ready(http: httpx.Client) -> None:
    services = {s["name"]: s for s in http.get("/v1/services").json()["services"]}
    (worker,) = services["generation"]["workers"]
    assert worker["state"] == "ready"
    (check,) = worker["checks"]
    assert check["name"] == "engine-probe"
    assert check["passed"] is True
    # bfloat16 by default; on CPUs where its kernels answer wrongly the worker serves float32
    # and says why (docs/vllm-cpu-notes.md).
    facts = check["facts"]
    assert facts["requested_dtype"] == "bfloat16"
    if facts["fallback"] == "true":
        assert facts["dtype"] == "float32"
        assert facts["refused_dtypes"] == "bfloat16"
    else:
        assert facts["fallback"] == "false"
        assert facts["dtype"] == "bfloat16"
    assert facts["cpu"].startswith(platform.machine())
    assert "Paris" in check["detail"].split(f"{facts['dtype']}:")[-1]
    assert 0 < check["seconds"] < 60


# ---------------------------------------------------------------------- chat
def test_models_lists_the_served_model(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [TEST_MODEL]
    assert models.data[0].owned_by == "babelstack"


def test_chat_answers_with_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=TEST_MODEL,
        messages=CAPITAL,
        max_tokens=20,
        temperature=0,
    )
    assert reply.object == "chat.completion"
    assert reply.model == TEST_MODEL
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert "Paris" in (choice.message.content or "")
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 5
    assert 0 < reply.usage.completion_tokens <= 20
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streamed_chat_equals_the_plain_answer(client: openai.OpenAI) -> None:
    """Greedy decoding: the streamed deltas add up to the non-streamed answer."""
    messages: Any = [{"role": "user", "content": "Name three colours."}]
    plain = client.chat.completions.create(
        model=TEST_MODEL, messages=messages, max_tokens=24, temperature=0
    )
    stream = client.chat.completions.create(
        model=TEST_MODEL,
        messages=messages,
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    deltas: list[str] = []
    usage = None
    finish = None
    roles = set()
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.role:
                roles.add(choice.delta.role)
            deltas.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert roles == {"assistant"}
    assert len([d for d in deltas if d]) > 3, "the answer came in one piece, not streamed"
    assert "".join(deltas) == plain.choices[0].message.content
    assert finish == plain.choices[0].finish_reason
    assert usage is not None
    assert plain.usage is not None
    assert usage.completion_tokens == plain.usage.completion_tokens
    assert usage.prompt_tokens == plain.usage.prompt_tokens


def test_async_client_eight_concurrent_requests_all_complete(stack: Stack) -> None:
    async def run() -> list[Any]:
        async with openai.AsyncOpenAI(
            base_url=f"{stack.gateway.base_url}/v1", api_key="unused", max_retries=0, timeout=180
        ) as aoai:
            return await asyncio.gather(
                *(
                    aoai.chat.completions.create(
                        model=TEST_MODEL,
                        messages=[{"role": "user", "content": f"Say the number {i} in words."}],
                        max_tokens=16,
                        temperature=0,
                    )
                    for i in range(8)
                )
            )

    replies = asyncio.run(run())
    assert len(replies) == 8
    assert len({r.id for r in replies}) == 8
    for reply in replies:
        assert reply.choices[0].message.content
        assert reply.usage.completion_tokens > 0


def test_async_streaming(stack: Stack) -> None:
    async def run() -> str:
        async with openai.AsyncOpenAI(
            base_url=f"{stack.gateway.base_url}/v1", api_key="unused", max_retries=0
        ) as aoai:
            stream = await aoai.chat.completions.create(
                model=TEST_MODEL, messages=CAPITAL, max_tokens=20, temperature=0, stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert "Paris" in asyncio.run(run())


def test_json_schema_output_parses_and_validates(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "continent": {"enum": ["Africa", "America", "Asia", "Europe", "Oceania"]},
            "capital": {"type": "boolean"},
        },
        "required": ["city", "continent", "capital"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model=TEST_MODEL,
        messages=[{"role": "user", "content": "Describe Paris as JSON."}],
        max_tokens=100,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )
    assert reply.choices[0].finish_reason == "stop"
    content = reply.choices[0].message.content or ""
    document = json.loads(content)
    jsonschema.validate(document, schema)


def test_stop_sequence_cuts_the_answer(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=TEST_MODEL,
        messages=CAPITAL,
        max_tokens=20,
        temperature=0,
        stop=["Paris"],
    )
    content = reply.choices[0].message.content or ""
    assert "Paris" not in content
    assert content.strip(), "the text before the stop sequence is kept"
    assert reply.choices[0].finish_reason == "stop"


def test_max_tokens_limits_the_answer(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=TEST_MODEL,
        messages=[{"role": "user", "content": "Write a long story about the sea."}],
        max_tokens=5,
        temperature=0,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 5


def test_seed_makes_sampling_repeatable_and_n_gives_choices(client: openai.OpenAI) -> None:
    def sample(seed: int) -> list[str]:
        reply = client.chat.completions.create(
            model=TEST_MODEL,
            messages=[{"role": "user", "content": "Invent a name for a cat."}],
            max_tokens=12,
            temperature=1.0,
            seed=seed,
            n=3,
        )
        assert [c.index for c in reply.choices] == [0, 1, 2]
        return [c.message.content or "" for c in reply.choices]

    first = sample(7)
    assert first == sample(7)
    assert all(first)


def test_completions_endpoint(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model=TEST_MODEL, prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert reply.object == "text_completion"
    assert "Paris" in reply.choices[0].text
    assert (reply.usage is not None and reply.usage.completion_tokens == 8) or (
        reply.choices[0].finish_reason == "stop"
    )
    streamed = client.completions.create(
        model=TEST_MODEL,
        prompt="The capital of France is",
        max_tokens=8,
        temperature=0,
        stream=True,
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == reply.choices[0].text


# ---------------------------------------------------------------------- disconnects
LONG_STREAMED_STORY: dict[str, Any] = {
    "model": TEST_MODEL,
    "messages": [{"role": "user", "content": "Write a very long story about the sea."}],
    "max_tokens": 1500,
    "temperature": 0,
    "stream": True,
}
"""A streamed chat that runs far longer than the tests wait: something to cut or kill."""


def test_client_disconnect_aborts_the_engine_request(stack: Stack, http: httpx.Client) -> None:
    body = LONG_STREAMED_STORY
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream"), response.read()
        events = 0
        for line in response.iter_lines():
            if line.startswith("data: "):
                events += 1
            if events == 5:
                break
        during = asyncio.run(engine_stats(stack.redis_url))
        assert during.unfinished_requests == 1
    # The connection is closed: the gateway cancels the stream, the worker aborts the request.
    give_up = time.monotonic() + 15
    while (after := asyncio.run(engine_stats(stack.redis_url))).unfinished_requests:
        assert time.monotonic() < give_up, f"the engine still runs {after.unfinished_requests}"
        time.sleep(0.1)
    assert "request aborted" in stack.generation.log_text()
    # ... and the engine is free for the next request.
    reply = http.post("/v1/chat/completions", json={**body, "stream": False, "max_tokens": 4})
    assert reply.status_code == 200, reply.text


# ---------------------------------------------------------------------- bad input
def test_empty_messages_is_refused(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={"model": TEST_MODEL, "messages": []})
    assert_problem(response, 422, "invalid_argument", "messages")


def test_unknown_model_lists_the_served_ones(http: httpx.Client) -> None:
    for stream in (False, True):
        response = http.post(
            "/v1/chat/completions", json={"model": "gpt-9", "messages": CAPITAL, "stream": stream}
        )
        body = assert_problem(response, 404, "not_found", "model")
        assert TEST_MODEL in body["detail"]


def test_max_tokens_beyond_the_context_gives_the_token_counts(http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions",
        json={"model": TEST_MODEL, "messages": CAPITAL, "max_tokens": MAX_MODEL_LEN},
    )
    body = assert_problem(response, 400, "context_length_exceeded", "max_tokens")
    assert str(MAX_MODEL_LEN) in body["detail"]
    assert "prompt (" in body["detail"]


def test_prompt_beyond_the_context_is_refused(http: httpx.Client) -> None:
    long_text = "word " * (MAX_MODEL_LEN + 100)
    response = http.post(
        "/v1/chat/completions",
        json={"model": TEST_MODEL, "messages": [{"role": "user", "content": long_text}]},
    )
    body = assert_problem(response, 400, "context_length_exceeded")
    assert str(MAX_MODEL_LEN) in body["detail"]


def test_invalid_json_schema_is_refused(http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions",
        json={
            "model": TEST_MODEL,
            "messages": CAPITAL,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "no-such-type"}},
            },
        },
    )
    assert_problem(response, 400, "invalid_schema")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": CAPITAL, "temperature": 3}, "temperature"),
        ({"messages": CAPITAL, "n": 0}, "n"),
        ({"messages": CAPITAL, "max_tokens": 0}, "max_tokens"),
        ({"messages": CAPITAL, "logit_bias": {"1": 2}}, "logit_bias"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ],
)
def test_bad_fields_are_refused_with_the_field(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = http.post("/v1/chat/completions", json={"model": TEST_MODEL, **body})
    problem = assert_problem(response, 422, "invalid_argument")
    assert problem["field"] == field, problem


def test_the_service_keeps_serving_after_bad_input(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=TEST_MODEL, messages=CAPITAL, max_tokens=10**6)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=CAPITAL)
    reply = client.chat.completions.create(
        model=TEST_MODEL,
        messages=CAPITAL,
        max_tokens=12,
        temperature=0,
    )
    assert "Paris" in (reply.choices[0].message.content or "")


# ---------------------------------------------------------------------- RAG
KB = "rag-kb"
KB_DOCS = {
    "eiffel": "The Eiffel Tower in Paris was completed in 1889. "
    "It is 330 metres tall and was built by the company of the engineer Gustave Eiffel.",
    "rhein": "Der Rhein ist ein Fluss in Mitteleuropa. Er ist 1233 Kilometer lang "
    "und mündet in die Nordsee.",
    "fuji": "富士山は日本で最も高い山で、標高は3776メートルです。",
    "pan": "Para hacer pan se necesita harina, agua, sal y levadura. "
    "La masa debe reposar una hora antes de hornearla.",
}


@pytest.fixture(scope="module")
def kb(stack: Stack) -> str:
    with httpx.Client(base_url=stack.gateway.base_url, timeout=60.0) as c:
        assert c.post("/v1/collections", json={"name": KB}).status_code == 201
        documents = [{"id": k, "text": v, "metadata": {"topic": k}} for k, v in KB_DOCS.items()]
        response = c.post(f"/v1/collections/{KB}/documents", json={"documents": documents})
        assert response.status_code == 200, response.text
    return KB


def _check_sources(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    sources = {s["number"]: s for s in body["sources"]}
    assert sorted(sources) == list(range(1, len(sources) + 1))
    for source in sources.values():
        document = KB_DOCS[source["document_id"]]
        assert document[source["start"] : source["end"]] == source["text"]
    assert set(body["cited"]) <= set(sources)
    return sources


def test_rag_answer_cites_the_passage_that_holds_the_answer(http: httpx.Client, kb: str) -> None:
    response = http.post(
        "/v1/rag/answer",
        json={"question": "How tall is the Eiffel Tower?", "collection": kb, "max_tokens": 40},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    sources = _check_sources(body)
    assert body["language"] == "en"
    assert body["grounded"] is True
    assert "330" in body["answer"]
    cited_documents = {sources[n]["document_id"] for n in body["cited"]}
    assert cited_documents == {"eiffel"}, body
    for number in body["cited"]:
        assert f"[{number}]" in body["answer"]
    assert body["usage"]["prompt_tokens"] > 0


def test_rag_retrieves_across_languages(http: httpx.Client, kb: str) -> None:
    """A German question about a passage kept in English, an English one about German."""
    for question, document_id in [
        ("Wie hoch ist der Eiffelturm?", "eiffel"),
        ("How long is the Rhine river?", "rhein"),
    ]:
        response = http.post(
            "/v1/rag/answer", json={"question": question, "collection": kb, "max_tokens": 30}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        sources = _check_sources(body)
        assert sources[1]["document_id"] == document_id, body
        assert body["answer"].strip()


def test_rag_says_it_does_not_know_when_nothing_relevant(http: httpx.Client, kb: str) -> None:
    """Every best hit is under the floor (``BABEL_GENERATION_RAG_MIN_SCORE``): the model is
    not asked, and the refusal is in the question's language (Thai: issue 16)."""
    for question, language in [
        ("Who wrote the novel War and Peace?", "en"),
        ("Wer hat die Fußballweltmeisterschaft 1998 gewonnen?", "de"),
        ("ใครเป็นผู้แต่งนวนิยายเรื่องสงครามและสันติภาพ", "th"),
    ]:
        response = http.post("/v1/rag/answer", json={"question": question, "collection": kb})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["grounded"] is False
        assert body["sources"] == []
        assert body["cited"] == []
        assert body["language"] == language
        assert body["answer"] == NO_ANSWER[language]
        assert body["usage"]["prompt_tokens"] == 0


def test_rag_streams_sources_then_text_then_citations(http: httpx.Client, kb: str) -> None:
    body = {"question": "How tall is the Eiffel Tower?", "collection": kb, "stream": True}
    events: list[dict[str, Any]] = []
    with http.stream("POST", "/v1/rag/answer", json={**body, "max_tokens": 40}) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert events[0]["type"] == "sources"
    assert events[-1]["type"] == "done"
    assert all(e["type"] == "delta" for e in events[1:-1])
    assert len(events) > 3
    numbers = {s["number"]: s["document_id"] for s in events[0]["sources"]}
    assert {numbers[n] for n in events[-1]["cited"]} == {"eiffel"}
    text = "".join(e["text"] for e in events[1:])
    assert "330" in text


def test_rag_bad_input(http: httpx.Client, kb: str) -> None:
    missing = http.post("/v1/rag/answer", json={"question": "What?", "collection": "nope"})
    assert_problem(missing, 404, "not_found")
    empty = http.post("/v1/rag/answer", json={"question": "  ", "collection": kb})
    assert_problem(empty, 422, "invalid_argument", "question")
    too_many = http.post("/v1/rag/answer", json={"question": "What?", "collection": kb, "k": 99})
    assert_problem(too_many, 422, "invalid_argument", "k")
    streamed = http.post(
        "/v1/rag/answer", json={"question": "What?", "collection": "nope", "stream": True}
    )
    assert_problem(streamed, 404, "not_found")


ARABIC_EIFFEL = "متى تم بناء برج إيفل؟"  # When was the Eiffel Tower built?
KB_WITHOUT_EIFFEL = "rag-kb-no-eiffel"


@pytest.fixture(scope="module")
def kb_without_eiffel(stack: Stack) -> str:
    with httpx.Client(base_url=stack.gateway.base_url, timeout=60.0) as c:
        assert c.post("/v1/collections", json={"name": KB_WITHOUT_EIFFEL}).status_code == 201
        documents = [{"id": k, "text": v} for k, v in KB_DOCS.items() if k != "eiffel"]
        response = c.post(
            f"/v1/collections/{KB_WITHOUT_EIFFEL}/documents", json={"documents": documents}
        )
        assert response.status_code == 200, response.text
    return KB_WITHOUT_EIFFEL


def test_rag_answers_an_arabic_question_citing_its_english_paragraph(
    http: httpx.Client, kb: str
) -> None:
    """Issue 16: a non-Latin-script question about an English passage is answered (the model
    judged it answerable, in the structured reply the engine enforces) and cites it."""
    response = http.post(
        "/v1/rag/answer", json={"question": ARABIC_EIFFEL, "collection": kb, "max_tokens": 60}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    sources = _check_sources(body)
    assert body["language"] == "ar"
    assert body["grounded"] is True, body
    assert {sources[n]["document_id"] for n in body["cited"]} == {"eiffel"}, body


def test_rag_refuses_in_the_questions_language_without_its_paragraph(
    http: httpx.Client, kb_without_eiffel: str
) -> None:
    """Issue 16: the same question against a collection without its paragraph gets the
    fixed refusal in Arabic, not in English."""
    response = http.post(
        "/v1/rag/answer", json={"question": ARABIC_EIFFEL, "collection": kb_without_eiffel}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] == "ar"
    assert body["grounded"] is False, body
    assert body["sources"] == []
    assert body["cited"] == []
    assert body["answer"] == NO_ANSWER["ar"]


# ---------------------------------------------------------------------- hostile requests
def test_shared_request_ids_and_hostile_bodies(stack: Stack, http: httpx.Client) -> None:
    """Issue 11: a prompt list of any length, 64-bit overflows and a schema nested past the
    checker's stack are refused naming the field; two requests with one X-Request-ID (and
    the prompts of one list) no longer share an engine id, so none aborts another. A
    second client keeps calling /v1/models and /readyz meanwhile."""
    deep: dict[str, Any] = {"type": "array"}
    inner = deep
    for _ in range(300):
        inner["items"] = {"type": "array"}
        inner = inner["items"]
    schema_format = {"type": "json_schema", "json_schema": {"name": "s", "schema": deep}}
    refused: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/completions", {"prompt": ["x"] * 10_000, "max_tokens": 1}, "prompt"),
        ("/v1/completions", {"prompt": "x", "seed": 2**70}, "seed"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 2**70}, "max_tokens"),
        ("/v1/chat/completions", {"messages": CAPITAL, "response_format": schema_format},
         "response_format.json_schema.schema" + ".items" * 32),
    ]  # fmt: skip
    shared = {"X-Request-ID": "one-id-for-all"}
    story = {
        "model": TEST_MODEL,
        "messages": [{"role": "user", "content": "Write a very long story about the sea."}],
        "max_tokens": 120,
        "temperature": 0,
    }
    with probing(stack.gateway.base_url, ["/v1/models", "/readyz"]) as probes:
        for path, hostile, field in refused:
            response = http.post(path, json={"model": TEST_MODEL, **hostile})
            assert_problem(response, 422, "invalid_argument", field)
        listed = http.post(
            "/v1/completions",
            json={"model": TEST_MODEL, "prompt": ["The capital of France is"] * 2,
                  "max_tokens": 8, "temperature": 0},
            headers=shared,
        )  # fmt: skip
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            survivor = pool.submit(_post, stack, "/v1/chat/completions", story, shared)
            give_up = time.monotonic() + 30
            while not asyncio.run(engine_stats(stack.redis_url)).unfinished_requests:
                assert time.monotonic() < give_up, "the first request never reached the engine"
                time.sleep(0.05)
            # A second request with the same X-Request-ID, abandoned mid-stream: the worker
            # aborts its engine request, and only that one.
            streamed = {**story, "stream": True}
            with http.stream("POST", "/v1/chat/completions", json=streamed, headers=shared) as r:
                assert r.status_code == 200
                events = 0
                for line in r.iter_lines():
                    events += line.startswith("data: ")
                    if events == 3:
                        break
            answer = survivor.result(timeout=120)
    assert listed.status_code == 200, listed.text
    assert listed.headers["x-request-id"] == "one-id-for-all"
    choices = listed.json()["choices"]
    assert [c["finish_reason"] in ("stop", "length") for c in choices] == [True, True]
    assert choices[0]["text"] == choices[1]["text"]
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["finish_reason"] in ("stop", "length"), answer.text
    print(f"second client: {probes.calls} calls, p99 {probes.p99_s() * 1000:.0f} ms")
    stack.generation.assert_alive()


def _post(stack: Stack, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=stack.gateway.base_url, timeout=120.0) as client:
        return client.post(path, json=body, headers=headers)


# ---------------------------------------------------------------------- a dead engine (last)
def test_a_dead_engine_takes_its_worker_out(stack: Stack, http: httpx.Client) -> None:
    """SIGKILL the vLLM engine processes under the worker while it streams an answer: the
    stream's client gets the tokens sent so far, then an SSE error event (retryable), then
    [DONE]. The worker must not stay "ready" answering 500s; it stops taking work, calls get
    503, and it exits (status 70) so that its supervisor restarts it. This ends the module's
    generation worker: it runs last."""
    engine_processes = descendants(stack.generation.pid)
    assert engine_processes, "the worker has no engine processes"
    body = LONG_STREAMED_STORY
    events: list[Any] = []
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            events.append(data if data == "[DONE]" else json.loads(data))
            if len(events) == 5:  # mid-stream: the engine dies under it
                for pid in engine_processes:
                    os.kill(pid, signal.SIGKILL)
    assert events[-1] == "[DONE]", events[-3:]
    *chunks, error_event, _ = events
    assert len(chunks) >= 5
    assert all("choices" in chunk and "error" not in chunk for chunk in chunks), chunks
    assert any(c["choices"][0]["delta"].get("content") for c in chunks if c["choices"])
    error = error_event["error"]
    assert (error["code"], error["retryable"]) == ("unavailable", True), error_event
    statuses = []
    deadline = time.monotonic() + 60
    while stack.generation.alive() and time.monotonic() < deadline:
        response = http.post(
            "/v1/chat/completions", json={"messages": CAPITAL, "max_tokens": 4}, timeout=30
        )
        statuses.append(response.status_code)
        time.sleep(0.5)
    assert stack.generation.wait(timeout_s=30) == 70, stack.generation.log_tail()
    assert 500 not in statuses, statuses
    assert "service dead" in stack.generation.log_text()
    after = http.post("/v1/chat/completions", json={"messages": CAPITAL, "max_tokens": 4})
    assert_problem(after, 503)
    deadline = time.monotonic() + 15
    while http.get("/readyz").status_code != 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert http.get("/readyz").status_code == 503
