"""Batch tests' helpers: JSONL input files, the Celery batch worker, waiting for a batch."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import WorkerProcess, start_worker

FINAL = {"completed", "failed", "expired", "cancelled"}


def jsonl(lines: Iterable[Mapping[str, Any] | str]) -> bytes:
    """A batch input file: dicts as JSON lines, strings as they are (to make bad lines)."""
    return b"".join(
        (line if isinstance(line, str) else json.dumps(line)).encode() + b"\n" for line in lines
    )


def request_line(custom_id: str, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": dict(body)}


def start_batch_worker(
    *, redis_url: str, log_dir: Path, name: str, env: Mapping[str, Any]
) -> WorkerProcess:
    """``python -m services.batch`` (the Celery worker); it is consuming once its log says so."""
    worker = start_worker(
        "services.batch",
        redis_url=redis_url,
        log_dir=log_dir,
        name=name,
        env={key: str(value) for key, value in env.items()},
    )
    give_up = time.monotonic() + 60.0
    while "ready." not in worker.log_text():
        worker.assert_alive()
        if time.monotonic() > give_up:
            raise AssertionError(f"batch worker {name} not ready:\n{worker.log_tail()}")
        time.sleep(0.1)
    return worker


def wait_batch(
    client: httpx.Client,
    batch_id: str,
    *,
    timeout_s: float = 120.0,
    until: set[str] = FINAL,
    watch: Iterable[WorkerProcess] = (),
) -> dict[str, Any]:
    """Poll ``GET /v1/batches/{id}`` until its status is in ``until``; return the batch."""
    give_up = time.monotonic() + timeout_s
    watched = list(watch)
    while True:
        batch: dict[str, Any] = client.get(f"/v1/batches/{batch_id}").json()
        if batch["status"] in until:
            return batch
        for worker in watched:
            worker.assert_alive()
        if time.monotonic() > give_up:
            logs = "".join(f"\n--- {w.name}:\n{w.log_tail()}" for w in watched)
            raise AssertionError(f"batch {batch_id} still {batch}{logs}")
        time.sleep(0.1)


def read_lines(client: httpx.Client, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    response = client.get(f"/v1/files/{file_id}/content")
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]
