"""Every service behind one gateway, for tests that drive the whole API: a tasks worker
(language identification, sentiment, classifiers; translation by a tiny seq2seq model built
here), a retrieval worker, a generation worker (vLLM on SmolLM2), the Celery batch worker
and a gateway with API keys on (the bootstrap admin key holds every scope)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.batch import start_batch_worker
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.generation import LOAD_TIMEOUT_S, start_generation_worker
from tests.support.processes import WorkerProcess, start_worker
from tests.support.retrieval import start_retrieval_worker, wait_worker_ready
from tests.support.tiny_seq2seq import build_tiny_nllb

ADMIN_KEY = "bsk_full-stack-admin-key-for-the-test-run-0123456789"


@dataclass
class FullStack:
    gateway: GatewayProcess
    workers: list[WorkerProcess]
    redis_url: str
    folder: Path
    admin_key: str = ADMIN_KEY


@contextlib.contextmanager
def full_stack(
    redis_url: str, folder: Path, gateway_env: dict[str, Any] | None = None
) -> Iterator[FullStack]:
    """Start every process on ``redis_url`` (logs in ``folder``); stop them all at the end."""
    model_dir = build_tiny_nllb(folder / "tiny-nllb")
    admin_file = folder / "admin.key"
    admin_file.write_text(ADMIN_KEY + "\n")
    batch_env = {"BABEL_BATCH_DIR": str(folder / "batch")}
    processes: list[GatewayProcess | WorkerProcess] = []
    try:
        generation = start_generation_worker(redis_url=redis_url, log_dir=folder)
        processes.append(generation)
        retrieval = start_retrieval_worker(
            redis_url=redis_url, data_dir=folder / "retrieval", log_dir=folder, name="retrieval"
        )
        processes.append(retrieval)
        tasks = start_worker(
            "services.tasks",
            redis_url=redis_url,
            log_dir=folder,
            name="tasks",
            env={
                "BABEL_TRANSLATION_BACKEND": "seq2seq",
                "BABEL_TRANSLATION_MODEL": str(model_dir),
                "BABEL_TASKS_DATA_DIR": str(folder / "tasks"),  # classifiers
                "HF_HUB_OFFLINE": "1",
            },
        )
        processes.append(tasks)
        batch = start_batch_worker(redis_url=redis_url, log_dir=folder, name="batch", env=batch_env)
        processes.append(batch)
        gateway = start_gateway(
            redis_url=redis_url,
            log_dir=folder,
            env={
                "BABEL_AUTH": "on",
                "BABEL_ADMIN_KEY_FILE": str(admin_file),
                "BABEL_GATEWAY_SERVICES": "tasks,retrieval,generation",
                "BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.2,
                **batch_env,
                **(gateway_env or {}),
            },
        )
        processes.append(gateway)
        wait_worker_ready(redis_url, retrieval)
        wait_worker_ready(redis_url, tasks, service="tasks")
        wait_worker_ready(redis_url, generation, service="generation", timeout_s=LOAD_TIMEOUT_S)
        wait_ready(gateway, watch=[generation, retrieval, tasks], timeout_s=30.0)
        yield FullStack(gateway, [generation, retrieval, tasks, batch], redis_url, folder)
    finally:
        for process in reversed(processes):
            process.stop(timeout_s=30.0)
