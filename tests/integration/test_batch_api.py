"""Batch jobs over real HTTP: a real Redis, a real Celery worker (``python -m services.batch``),
a real tasks worker (language identification only) and the gateway — driven with the
official ``openai`` client where it has a call, with plain HTTP where it has not.

No retrieval worker runs in this module: batches on ``/v1/embeddings`` meet a service
without a live worker, which the retry, cancel and expiry tests use.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from services.launcher.redis_server import RedisServer
from tests.support.batch import jsonl, read_lines, request_line, start_batch_worker, wait_batch
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.problems import assert_problem
from tests.support.processes import REPO_ROOT, WorkerProcess, start_worker, worker_env
from tests.support.redis_db import fresh_db_url
from tests.support.retrieval import wait_worker_ready

pytestmark = pytest.mark.timeout(300)

REDIS_DB = 9
CHUNK_LINES = 4
MAX_FILE_LINES = 500
TEXTS = [
    "Hello, how are you today?",
    "Wie geht es dir heute?",
    "¿Cómo estás hoy?",
    "Comment allez-vous aujourd'hui ?",
    "お元気ですか？",
    "Come stai oggi?",
]
BATCH_ENV = {
    "BABEL_BATCH_CHUNK_LINES": CHUNK_LINES,
    "BABEL_BATCH_MAX_FILE_LINES": MAX_FILE_LINES,
    "BABEL_BATCH_VISIBILITY_TIMEOUT_S": 6,
    "BABEL_BATCH_LINE_MAX_ATTEMPTS": 14,
    "BABEL_BATCH_RETRY_BASE_S": 0.25,
    "BABEL_BATCH_RETRY_MAX_S": 2,
    "BABEL_BATCH_CONCURRENCY": 4,
    "BABEL_BATCH_METRICS_INTERVAL_S": 0.2,
}


@dataclass
class Stack:
    url: str
    folder: Path
    env: dict[str, Any]
    gateway: GatewayProcess
    tasks: WorkerProcess
    batch: WorkerProcess
    generation: int = 0

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.gateway.base_url, timeout=30.0)

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.base_url + "/v1", api_key="unused")

    def start_tasks(self) -> WorkerProcess:
        self.generation += 1
        self.tasks = start_worker(
            "services.tasks",
            redis_url=self.url,
            log_dir=self.folder,
            name=f"tasks-{self.generation}",
            env={
                "BABEL_TRANSLATION_BACKEND": "off",
                "BABEL_SENTIMENT_BACKEND": "off",
                "BABEL_CLASSIFIERS_ENABLED": "false",
            },
        )
        return self.tasks

    def start_batch(self) -> WorkerProcess:
        self.generation += 1
        self.batch = start_batch_worker(
            redis_url=self.url, log_dir=self.folder, name=f"batch-{self.generation}", env=self.env
        )
        return self.batch

    def restart_gateway(self) -> None:
        self.gateway.stop()
        self.generation += 1
        self.gateway = start_gateway(
            redis_url=self.url,
            log_dir=self.folder,
            name=f"gateway-{self.generation}",
            env=self.env,
        )


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("batch-api")
    url = fresh_db_url(redis_server, REDIS_DB)
    env: dict[str, Any] = {**BATCH_ENV, "BABEL_BATCH_DIR": str(folder / "store")}
    gateway = start_gateway(redis_url=url, log_dir=folder, env=env)
    stack = Stack(url, folder, env, gateway, tasks=None, batch=None)  # type: ignore[arg-type]
    try:
        stack.start_tasks()
        stack.start_batch()
        wait_worker_ready(url, stack.tasks, service="tasks")
        wait_ready(gateway, watch=[stack.tasks])
        yield stack
    finally:
        for process in (stack.batch, stack.tasks):
            if process is not None:
                process.stop(timeout_s=15.0)
        stack.gateway.stop()


def _detect_lines(count: int, prefix: str = "req") -> list[dict[str, Any]]:
    return [
        request_line(f"{prefix}-{i}", "/v1/detect", {"q": TEXTS[i % len(TEXTS)]})
        for i in range(count)
    ]


def _submit(stack: Stack, lines: list[Any], endpoint: str, window: str = "24h") -> str:
    client = stack.openai()
    file = client.files.create(file=("input.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=file.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window=window,  # type: ignore[arg-type]
    )
    return batch.id


# ---------------------------------------------------------------------- the happy path
def test_openai_client_runs_a_batch_whose_lines_answer_what_the_endpoint_answers(
    stack: Stack,
) -> None:
    client = stack.openai()
    lines = _detect_lines(10)
    file = client.files.create(file=("detect.jsonl", jsonl(lines)), purpose="batch")
    assert file.purpose == "batch"
    assert file.bytes == len(jsonl(lines))
    assert client.files.retrieve(file.id).id == file.id
    batch = client.batches.create(
        input_file_id=file.id,
        endpoint="/v1/detect",  # type: ignore[arg-type]
        completion_window="24h",
        metadata={"team": "ops"},
    )
    assert batch.status == "validating"
    assert batch.metadata == {"team": "ops"}
    with stack.http() as http:
        finished = wait_batch(http, batch.id, watch=[stack.batch, stack.tasks])
        assert finished["status"] == "completed", finished
        assert finished["request_counts"] == {"total": 10, "completed": 10, "failed": 0}
        assert finished["error_file_id"] is None
        direct = http.post("/v1/detect", json={"q": TEXTS[1]}).json()
    retrieved = client.batches.retrieve(batch.id)
    assert retrieved.output_file_id == finished["output_file_id"]
    assert retrieved.completed_at
    assert retrieved.in_progress_at
    assert retrieved.finalizing_at
    output = [
        line for line in client.files.content(retrieved.output_file_id).text.splitlines() if line
    ]
    decoded = [json.loads(line) for line in output]
    assert [d["custom_id"] for d in decoded] == [f"req-{i}" for i in range(10)]  # input order
    assert all(d["error"] is None and d["response"]["status_code"] == 200 for d in decoded)
    assert decoded[1]["response"]["body"] == direct  # what /v1/detect answers, exactly
    assert len({d["response"]["request_id"] for d in decoded}) == 10
    listed = client.batches.list(limit=100)
    assert batch.id in [b.id for b in listed.data]


def test_idempotency_key_returns_the_same_file_and_batch(stack: Stack) -> None:
    client = stack.openai()
    content = jsonl(_detect_lines(2, prefix="idem"))
    headers = {"Idempotency-Key": "file-key-1"}
    first = client.files.create(file=("a.jsonl", content), purpose="batch", extra_headers=headers)
    again = client.files.create(file=("a.jsonl", content), purpose="batch", extra_headers=headers)
    assert again.id == first.id
    batch_headers = {"Idempotency-Key": "batch-key-1"}
    one = client.batches.create(
        input_file_id=first.id,
        endpoint="/v1/detect",  # type: ignore[arg-type]
        completion_window="24h",
        extra_headers=batch_headers,
    )
    two = client.batches.create(
        input_file_id=first.id,
        endpoint="/v1/detect",  # type: ignore[arg-type]
        completion_window="24h",
        extra_headers=batch_headers,
    )
    assert two.id == one.id
    with stack.http() as http:
        wait_batch(http, one.id, watch=[stack.batch])
        ids = [b["id"] for b in http.get("/v1/batches", params={"limit": 100}).json()["data"]]
    assert ids.count(one.id) == 1


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.launcher.cli", "batch", *args],
        cwd=REPO_ROOT,
        env=worker_env(stack.url, {"BABEL_URL": stack.gateway.base_url}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_submits_waits_for_and_reads_a_batch(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_bytes(jsonl(_detect_lines(5, prefix="cli")))
    submitted = _cli(stack, "submit", str(path), "--endpoint", "/v1/detect", "--wait", "--json")
    assert submitted.returncode == 0, submitted.stderr
    batch = json.loads(submitted.stdout)
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 5, "completed": 5, "failed": 0}
    results = _cli(stack, "results", batch["id"])
    assert results.returncode == 0, results.stderr
    lines = [json.loads(line) for line in results.stdout.splitlines()]
    assert [line["custom_id"] for line in lines] == [f"cli-{i}" for i in range(5)]
    status = _cli(stack, "status", batch["id"])
    assert status.returncode == 0, status.stderr
    assert f"batch      {batch['id']}  completed" in status.stdout
    assert "5 completed, 0 failed, 5 in all" in status.stdout
    cancelled = _cli(stack, "cancel", batch["id"], "--json")
    assert json.loads(cancelled.stdout)["status"] == "completed"  # finished: unchanged
    missing = _cli(stack, "status", "batch_nope")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: 404 not_found")


# ---------------------------------------------------------------------- bad input
def test_bad_lines_are_reported_per_line_and_the_rest_runs(stack: Stack) -> None:
    lines: list[Any] = [
        request_line("good-0", "/v1/detect", {"q": "Guten Morgen zusammen"}),
        "this is not json",
        request_line("good-0", "/v1/detect", {"q": "duplicate id"}),
        request_line("wrong-url", "/v1/sentiment", {"q": "hello"}),
        request_line("bad-body", "/v1/detect", {"q": "hello", "colour": "red"}),
        request_line("refused", "/v1/detect", {"q": "   "}),
        request_line("good-1", "/v1/detect", {"q": "Bonjour tout le monde"}),
    ]
    batch_id = _submit(stack, lines, "/v1/detect")
    with stack.http() as http:
        batch = wait_batch(http, batch_id, watch=[stack.batch])
        assert batch["status"] == "completed", batch
        errors = {(e["line"], e["code"]): e for e in batch["errors"]["data"]}
        assert set(errors) == {
            (2, "invalid_json_line"),
            (3, "duplicate_custom_id"),
            (4, "invalid_url"),
            (5, "invalid_body"),
        }
        assert errors[(4, "invalid_url")]["param"] == "url"
        assert "colour" in errors[(5, "invalid_body")]["message"]
        assert batch["request_counts"] == {"total": 7, "completed": 2, "failed": 3}
        good = read_lines(http, batch["output_file_id"])
        bad = read_lines(http, batch["error_file_id"])
    assert [g["custom_id"] for g in good] == ["good-0", "good-1"]
    assert [b["custom_id"] for b in bad] == ["wrong-url", "bad-body", "refused"]
    refused = bad[2]["response"]
    assert refused["status_code"] == 422
    assert refused["body"]["code"] == "invalid_argument"
    assert refused["body"]["field"] == "q"
    assert bad[0]["error"]["code"] == "invalid_url"
    assert bad[0]["response"] is None


def test_a_file_with_no_runnable_line_fails_the_batch(stack: Stack) -> None:
    batch_id = _submit(stack, ["not json", "{}"], "/v1/detect")
    with stack.http() as http:
        batch = wait_batch(http, batch_id, watch=[stack.batch])
    assert batch["status"] == "failed"
    assert batch["failed_at"]
    assert [e["line"] for e in batch["errors"]["data"]] == [1, 2]


def test_http_errors(stack: Stack) -> None:
    with stack.http() as http:
        assert_problem(http.get("/v1/files/file-nope"), 404, "not_found")
        assert_problem(http.get("/v1/files/file-nope/content"), 404, "not_found")
        assert_problem(http.delete("/v1/files/file-nope"), 404, "not_found")
        assert_problem(http.get("/v1/batches/batch_nope"), 404, "not_found")
        assert_problem(http.post("/v1/batches/batch_nope/cancel"), 404, "not_found")
        assert_problem(
            http.post(
                "/v1/batches",
                json={"input_file_id": "file-nope", "endpoint": "/v1/detect"},
            ),
            404,
            "not_found",
        )
        too_many = jsonl(_detect_lines(MAX_FILE_LINES + 1))
        assert_problem(
            http.post(
                "/v1/files", files={"file": ("big.jsonl", too_many)}, data={"purpose": "batch"}
            ),
            413,
            "payload_too_large",
            "file",
        )
        assert_problem(
            http.post(
                "/v1/files", files={"file": ("x.jsonl", b"{}\n")}, data={"purpose": "fine-tune"}
            ),
            422,
            "invalid_argument",
            "purpose",
        )
        file_id = http.post(
            "/v1/files",
            files={"file": ("x.jsonl", jsonl(_detect_lines(1)))},
            data={"purpose": "batch"},
        ).json()["id"]
        assert_problem(
            http.post("/v1/batches", json={"input_file_id": file_id, "endpoint": "/v1/rag/answer"}),
            422,
            "invalid_argument",
            "endpoint",
        )
        assert_problem(
            http.post(
                "/v1/batches",
                json={
                    "input_file_id": file_id,
                    "endpoint": "/v1/detect",
                    "completion_window": "soon",
                },
            ),
            422,
            "invalid_argument",
            "completion_window",
        )
        batch = http.post(
            "/v1/batches", json={"input_file_id": file_id, "endpoint": "/v1/detect"}
        ).json()
        done = wait_batch(http, batch["id"], watch=[stack.batch])
        cancelled = http.post(f"/v1/batches/{batch['id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json() == done  # a finished batch stays as it was
        assert http.delete(f"/v1/files/{file_id}").json() == {
            "id": file_id,
            "deleted": True,
            "object": "file",
        }
        assert_problem(http.get(f"/v1/files/{file_id}"), 404, "not_found")


# ---------------------------------------------------------------------- cancel, expiry, retries
EMBED_LINES = [request_line(f"emb-{i}", "/v1/embeddings", {"input": "hi"}) for i in range(3)]


def test_cancel_stops_a_batch_and_it_ends_cancelled(stack: Stack) -> None:
    client = stack.openai()
    batch_id = _submit(stack, EMBED_LINES, "/v1/embeddings")  # no retrieval worker: lines wait
    with stack.http() as http:
        wait_batch(http, batch_id, until={"in_progress"}, watch=[stack.batch])
    cancelling = client.batches.cancel(batch_id)
    assert cancelling.status in ("cancelling", "cancelled")
    assert cancelling.cancelling_at
    with stack.http() as http:
        batch = wait_batch(http, batch_id, timeout_s=30, watch=[stack.batch])
    assert batch["status"] == "cancelled"
    assert batch["cancelled_at"]
    assert batch["output_file_id"] is None
    assert batch["request_counts"]["completed"] == 0


def test_lines_not_done_within_the_completion_window_expire(stack: Stack) -> None:
    batch_id = _submit(stack, EMBED_LINES, "/v1/embeddings", window="2s")
    with stack.http() as http:
        batch = wait_batch(http, batch_id, timeout_s=60, watch=[stack.batch])
        assert batch["status"] == "expired"
        assert batch["expired_at"]
        errors = read_lines(http, batch["error_file_id"])
    assert [e["custom_id"] for e in errors] == ["emb-0", "emb-1", "emb-2"]
    assert {e["error"]["code"] for e in errors} == {"batch_expired"}


def test_lines_wait_for_a_service_that_comes_back_or_fail_after_the_retry_budget(
    stack: Stack,
) -> None:
    assert stack.tasks.stop(timeout_s=15.0) == 0, stack.tasks.log_tail()
    detect_id = _submit(stack, _detect_lines(6, prefix="back"), "/v1/detect")
    never_id = _submit(stack, EMBED_LINES, "/v1/embeddings")
    stack.start_tasks()  # lines retry with backoff while it loads
    with stack.http() as http:
        detect = wait_batch(http, detect_id, timeout_s=120, watch=[stack.batch, stack.tasks])
        never = wait_batch(http, never_id, timeout_s=120, watch=[stack.batch])
        assert detect["status"] == "completed", detect
        assert detect["request_counts"] == {"total": 6, "completed": 6, "failed": 0}
        assert never["status"] == "completed"
        assert never["request_counts"] == {"total": 3, "completed": 0, "failed": 3}
        errors = read_lines(http, never["error_file_id"])
    assert {e["response"]["status_code"] for e in errors} == {503}
    assert {e["response"]["body"]["code"] for e in errors} == {"unavailable"}


# ---------------------------------------------------------------------- faults
_RECEIVED = re.compile(r"Task babel\.batch\.run_chunk\[([0-9a-f-]+)\] received")
_SUCCEEDED = re.compile(r"Task babel\.batch\.run_chunk\[([0-9a-f-]+)\] succeeded")


def _completed(http: httpx.Client, batch_id: str) -> int:
    return int(http.get(f"/v1/batches/{batch_id}").json()["request_counts"]["completed"])


def test_sigkill_of_the_celery_worker_and_a_gateway_restart_lose_and_duplicate_nothing(
    stack: Stack,
) -> None:
    """The Celery worker is SIGKILLed while it runs chunks of a 240-line batch (60 chunks of
    4), the gateway is restarted, a new worker starts: the chunks the dead worker held are
    delivered again (same task ids) and every line is answered exactly once.

    The kill waits until the batch is planned (every chunk queued and the ``validate`` task
    done) and a chunk finished after that: a kill during planning makes ``validate`` run
    again, which queues the chunks anew under new ids, so the held ids prove nothing."""
    count = 240
    batch_id = _submit(stack, _detect_lines(count, prefix="kill"), "/v1/detect")
    killed = stack.batch
    planned = re.compile(rf"batch planned\s+batch={batch_id}\b")
    give_up = time.monotonic() + 120
    with stack.http() as http:
        wait_batch(http, batch_id, until={"in_progress"}, watch=[killed])
        while not planned.search(killed.log_text()):
            killed.assert_alive()
            assert time.monotonic() < give_up, "the batch was never planned"
            time.sleep(0.01)
        done_when_planned = _completed(http, batch_id)
        while (done := _completed(http, batch_id)) == done_when_planned:
            killed.assert_alive()
            assert time.monotonic() < give_up, "no chunk finished after the plan"
    assert done < count, "the batch was done before the kill: the test proved nothing"
    killed.kill()  # SIGKILL: the chunks it held stay unacknowledged in Redis
    log = killed.log_text()
    held = set(_RECEIVED.findall(log)) - set(_SUCCEEDED.findall(log))
    assert held, "the worker held no chunk when killed: the test proved nothing"
    with stack.http() as http:
        before = http.get(f"/v1/batches/{batch_id}").json()
    assert before["status"] == "in_progress", before
    assert before["request_counts"]["completed"] < count
    stack.restart_gateway()
    stack.start_batch()
    with stack.http() as http:
        batch = wait_batch(http, batch_id, timeout_s=180, watch=[stack.batch, stack.tasks])
        assert batch["status"] == "completed", batch
        assert batch["request_counts"] == {"total": count, "completed": count, "failed": 0}
        output = read_lines(http, batch["output_file_id"])
        errors = read_lines(http, batch["error_file_id"])
        metrics = http.get("/metrics").text
    assert held & set(_RECEIVED.findall(stack.batch.log_text())), "no held chunk was redelivered"
    seen = [line["custom_id"] for line in output + errors]
    assert sorted(seen) == sorted(f"kill-{i}" for i in range(count))  # each exactly once
    assert 'babel_batch_lines{endpoint="/v1/detect",outcome="completed"}' in metrics
    assert 'babel_batches{status="completed"}' in metrics
    assert "babel_batch_queue_depth" in metrics
