"""Chat batches on a real vLLM engine (SmolLM2, CPU): lines answer what
``/v1/chat/completions`` answers, and a cancelled batch's requests are aborted in the engine.

One stack for the module: Redis (a database of its own), one generation worker, the
gateway and the Celery batch worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from services.launcher.redis_server import RedisServer
from shared.messages.generation import ENGINE_STATS, EngineStats, EngineStatsRequest
from shared.rpc.client import RpcClient
from shared.rpc.connection import connect
from shared.rpc.keys import Keys
from shared.settings import RedisSettings
from tests.support.batch import jsonl, read_lines, request_line, start_batch_worker, wait_batch
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.generation import LOAD_TIMEOUT_S, TEST_MODEL, start_generation_worker
from tests.support.processes import WorkerProcess
from tests.support.redis_db import fresh_db_url
from tests.support.retrieval import wait_worker_ready

pytestmark = pytest.mark.timeout(400)

REDIS_DB = 8
QUESTIONS = ["What is the capital of France?", "Name a colour.", "Say hello."]


@dataclass
class Stack:
    url: str
    folder: Path
    gateway: GatewayProcess
    generation: WorkerProcess
    batch: WorkerProcess


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("batch-generation")
    url = fresh_db_url(redis_server, REDIS_DB)
    env = {"BABEL_BATCH_DIR": str(folder / "store"), "BABEL_BATCH_CHUNK_LINES": 16}
    processes: list[GatewayProcess | WorkerProcess] = []
    try:
        generation = start_generation_worker(redis_url=url, log_dir=folder)
        processes.append(generation)
        gateway = start_gateway(
            redis_url=url, log_dir=folder, env={**env, "BABEL_GATEWAY_SERVICES": "generation"}
        )
        processes.append(gateway)
        batch = start_batch_worker(redis_url=url, log_dir=folder, name="batch", env=env)
        processes.append(batch)
        wait_worker_ready(url, generation, service="generation", timeout_s=LOAD_TIMEOUT_S)
        wait_ready(gateway, watch=[generation, batch])
        yield Stack(url, folder, gateway, generation, batch)
    finally:
        for process in reversed(processes):
            process.stop(timeout_s=30.0)


def _chat(question: str, max_tokens: int) -> dict[str, object]:
    return {
        "model": TEST_MODEL,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }


def _engine_stats(url: str) -> EngineStats:
    async def ask() -> EngineStats:
        settings = RedisSettings(url=url)
        connection = connect(settings)
        try:
            return await RpcClient(connection, Keys(settings.key_prefix)).call(
                ENGINE_STATS, EngineStatsRequest(), timeout_s=10
            )
        finally:
            await connection.aclose()

    return asyncio.run(ask())


def test_a_chat_batch_answers_what_chat_completions_answers(stack: Stack) -> None:
    client = openai.OpenAI(base_url=stack.gateway.base_url + "/v1", api_key="unused")
    lines = [
        request_line(f"q-{i}", "/v1/chat/completions", _chat(q, 8)) for i, q in enumerate(QUESTIONS)
    ]
    file = client.files.create(file=("chat.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    with httpx.Client(base_url=stack.gateway.base_url, timeout=120) as http:
        done = wait_batch(http, batch.id, timeout_s=240, watch=[stack.batch, stack.generation])
        assert done["status"] == "completed", done
        output = read_lines(http, done["output_file_id"])
        direct = http.post("/v1/chat/completions", json=_chat(QUESTIONS[0], 8)).json()
    assert [line["custom_id"] for line in output] == ["q-0", "q-1", "q-2"]
    first = output[0]["response"]["body"]
    assert first["object"] == "chat.completion"
    assert first["model"] == direct["model"]
    assert first["choices"] == direct["choices"]  # greedy: the same answer as the endpoint
    assert first["usage"] == direct["usage"]
    assert 0 < first["usage"]["completion_tokens"] <= 8


def test_cancel_aborts_the_batch_requests_in_the_engine(stack: Stack) -> None:
    client = openai.OpenAI(base_url=stack.gateway.base_url + "/v1", api_key="unused")
    lines = [
        request_line(f"long-{i}", "/v1/chat/completions", _chat("Tell a very long story.", 1500))
        for i in range(8)
    ]
    file = client.files.create(file=("long.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    give_up = time.monotonic() + 120
    while _engine_stats(stack.url).unfinished_requests == 0:  # the lines reached the engine
        stack.batch.assert_alive()
        assert time.monotonic() < give_up, stack.batch.log_tail()
        time.sleep(0.2)
    client.batches.cancel(batch.id)
    with httpx.Client(base_url=stack.gateway.base_url, timeout=120) as http:
        done = wait_batch(http, batch.id, timeout_s=60, watch=[stack.batch, stack.generation])
    assert done["status"] == "cancelled", done
    give_up = time.monotonic() + 30
    while _engine_stats(stack.url).unfinished_requests:  # aborted, not run to 1500 tokens
        assert time.monotonic() < give_up, "the engine still runs the cancelled batch's requests"
        time.sleep(0.2)
    assert "request aborted" in stack.generation.log_text()
