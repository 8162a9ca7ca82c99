"""Fail-over under SIGKILL, per service kind: N requests through the gateway to two workers,
one of them SIGKILLed a third of the way in (once it holds at least one request).

Prints, per kind, how many requests were answered and how many failed, and the latency of
the requests the killed worker held when it died (they are answered after the takeover,
which waits for its heartbeat to expire), against the heartbeat TTL: the aim is
p99 <= TTL + the request's own time.

    .venv/bin/python bench/failover.py [-n 1000] [--kinds tasks,retrieval,generation]
        [--concurrency 32] [--json out.json]

Each kind gets its own Redis, gateway and two workers (started here, stopped by pid).
tasks: ``POST /v1/detect`` (16 texts, the issue's reproduction); retrieval:
``/search`` and ``/v1/embeddings`` on a small collection (each worker on a data folder of
its own, the second with a copy of the first's store); generation: ``/v1/completions``
(SmolLM2-135M-Instruct, 16 tokens, greedy; ``make models`` first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import redis as sync_redis

from services.launcher.processes import Child, spawn, stop_all
from services.launcher.redis_server import free_port, start_redis
from shared.messages.system import WorkerInfo
from shared.rpc.connection import connect
from shared.rpc.keys import Keys
from shared.rpc.stats import pending_on, read_failover
from shared.settings import RedisSettings, WorkerSettings, load_settings

REPO = Path(__file__).resolve().parents[1]
KINDS = ("tasks", "retrieval", "generation")
TEXTS = [
    "I absolutely love this, it made my day!",
    "Das war eine schreckliche Erfahrung, ich bin total enttäuscht.",
    "¡Me encanta este lugar, es maravilloso!",
    "C'est nul, je suis vraiment déçu et en colère.",
    "この映画は本当に素晴らしかった！大好きです。",
    "The weather is lovely today and we are going for a walk in the park.",
    "Bitte schicken Sie mir den Bericht vor der Besprechung morgen früh.",
    "من فضلك أرسل لي التقرير قبل الاجتماع صباح الغد.",
]
BATCH = [TEXTS[i % len(TEXTS)] for i in range(16)]
_info = msgspec.msgpack.Decoder(WorkerInfo)


def request_of(kind: str, i: int) -> tuple[str, dict[str, Any]]:
    """The ``i``-th request of a kind: path and JSON body."""
    if kind == "tasks":
        return "/v1/detect", {"q": BATCH}
    if kind == "retrieval":
        if i % 2:
            return "/v1/embeddings", {"input": BATCH[:8], "model": "multilingual-e5-small"}
        return "/v1/collections/kb/search", {"query": "Wie hoch ist der Eiffelturm?", "k": 3}
    return "/v1/completions", {"prompt": "1, 2, 3, 4, 5, 6,", "max_tokens": 16, "temperature": 0}


# ---------------------------------------------------------------------------- the stack
@dataclass
class Stack:
    base_url: str
    redis_url: str
    workers: list[Child] = field(default_factory=list)


def _wait_worker(redis_url: str, kind: str, child: Child, timeout_s: float = 600.0) -> str:
    """Block until ``child`` publishes a ready heartbeat; return its worker name."""
    client = sync_redis.Redis.from_url(redis_url)
    give_up = time.monotonic() + timeout_s
    try:
        while time.monotonic() < give_up:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited; log {child.log_path}")
            for key in client.scan_iter(match=Keys().heartbeat_pattern(kind)):
                raw: Any = client.get(key)
                info = _info.decode(raw) if raw else None
                if info is not None and info.pid == child.pid and info.state == "ready":
                    return info.worker
            time.sleep(0.2)
    finally:
        client.close()
    raise RuntimeError(f"{child.name} not ready in {timeout_s} s; log {child.log_path}")


def _seed_collection(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=120) as http:
        http.post("/v1/collections", json={"name": "kb"}).raise_for_status()
        documents = [{"id": f"t{i}", "text": text} for i, text in enumerate(TEXTS)]
        documents.append({"id": "eiffel", "text": "The Eiffel Tower is 330 metres tall."})
        http.post("/v1/collections/kb/documents", json={"documents": documents}).raise_for_status()


def _copy_store(source: Path, target: Path) -> None:
    """A consistent copy of a live retrieval store (SQLite's backup)."""
    target.mkdir(parents=True, exist_ok=True)
    name = "retrieval.sqlite3"
    with sqlite3.connect(source / name) as live, sqlite3.connect(target / name) as copy:
        live.backup(copy)


def _wait_http_ready(base_url: str, children: list[Child], timeout_s: float = 120.0) -> None:
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        dead = [c.name for c in children if not c.alive()]
        if dead:
            raise RuntimeError(f"exited: {dead}")
        try:
            if httpx.get(base_url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gateway not ready")


@contextmanager
def two_workers(kind: str, keep_logs: bool) -> Iterator[tuple[Stack, list[str]]]:
    """Redis, the gateway and two workers of ``kind``; yields the stack and worker names."""
    folder = Path(tempfile.mkdtemp(prefix=f"babel-failover-{kind}-"))
    redis = start_redis(folder / "redis")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BABEL_") and k != "REDIS_URL"}
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": str(REPO),
            "BABEL_LOG_LEVEL": "INFO" if keep_logs else "WARNING",
            "BABEL_TRANSLATION_BACKEND": "off",
            "BABEL_TASKS_DATA_DIR": str(folder / "tasks"),
            "BABEL_GENERATION_MODEL": "SmolLM2-135M-Instruct",
            "BABEL_GENERATION_MAX_MODEL_LEN": "2048",
            "BABEL_GENERATION_KV_CACHE_GIB": "1",
            "REDIS_URL": redis.url,
            "BABEL_GATEWAY_PORT": str(port),
            "BABEL_GATEWAY_SERVICES": kind,
            **{k: v for k, v in os.environ.items() if k.startswith("BABEL_WORKER_")},
        }
    )
    if "BABEL_MODELS_DIR" in os.environ:
        env["BABEL_MODELS_DIR"] = os.environ["BABEL_MODELS_DIR"]
    stack = Stack(base_url=f"http://127.0.0.1:{port}", redis_url=redis.url)
    children: list[Child] = []
    ok = False
    try:
        gateway = spawn("gateway", [sys.executable, "-m", "services.gateway"], env, folder)
        children.append(gateway)

        def start(i: int) -> None:
            argv = [sys.executable, "-m", f"services.{kind}"]
            own = {**env, "BABEL_RETRIEVAL_DATA_DIR": str(folder / f"retrieval-{i}")}
            stack.workers.append(spawn(f"{kind}-{i}", argv, own, folder))
            children.append(stack.workers[-1])

        start(0)
        if kind != "retrieval":  # both load at once
            start(1)
        names = [_wait_worker(redis.url, kind, stack.workers[0])]
        _wait_http_ready(stack.base_url, children)
        if kind == "retrieval":  # one writer per data folder: the second gets a copy
            _seed_collection(stack.base_url)
            _copy_store(folder / "retrieval-0", folder / "retrieval-1")
            start(1)
        names.append(_wait_worker(redis.url, kind, stack.workers[1]))
        _wait_http_ready(stack.base_url, children)
        yield stack, names
        ok = True
    finally:
        stop_all(list(reversed(children)), grace_s=30.0)
        redis.stop()
        if ok and not keep_logs:
            shutil.rmtree(folder, ignore_errors=True)
        if not ok or keep_logs:
            print(f"logs kept in {folder}", file=sys.stderr)


# ---------------------------------------------------------------------------- the load
@dataclass
class Result:
    request_id: str
    status: int
    seconds: float


async def run_kind(kind: str, n: int, concurrency: int, keep_logs: bool) -> dict[str, Any]:
    with two_workers(kind, keep_logs) as (stack, names):
        redis = connect(RedisSettings(url=stack.redis_url))
        keys = Keys()
        victim, victim_name = stack.workers[0], names[0]
        gate = asyncio.Semaphore(concurrency)
        third = asyncio.Event()
        held: list[str] = []
        killed_at = taken_at = 0.0
        started = 0

        async def one(client: httpx.AsyncClient, i: int) -> Result:
            nonlocal started
            path, body = request_of(kind, i)
            request_id = uuid.uuid4().hex
            async with gate:
                started += 1
                if started >= n // 3:
                    third.set()
                began = time.perf_counter()
                try:
                    response = await client.post(
                        path, json=body, headers={"x-request-id": request_id}
                    )
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                return Result(request_id, status, time.perf_counter() - began)

        async def kill() -> None:
            nonlocal killed_at, taken_at, held
            await third.wait()
            give_up = time.monotonic() + 30
            while time.monotonic() < give_up:
                if await pending_on(redis, keys, kind, victim_name):
                    break
                await asyncio.sleep(0.005)
            victim.process.kill()
            await asyncio.to_thread(victim.process.wait)
            killed_at = time.perf_counter()
            held = await pending_on(redis, keys, kind, victim_name)
            while (await read_failover(redis, keys, kind)).takeovers == 0:
                if time.perf_counter() - killed_at > 120:
                    return
                await asyncio.sleep(0.01)
            taken_at = time.perf_counter()

        began = time.perf_counter()
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=900) as client:
            killer = asyncio.create_task(kill())
            results = await asyncio.gather(*(one(client, i) for i in range(n)))
            await killer
        wall_s = time.perf_counter() - began
        failover = await read_failover(redis, keys, kind)
        await redis.aclose()
    held_set = set(held)
    on_victim = sorted(r.seconds for r in results if r.request_id in held_set)
    everyone = sorted(r.seconds for r in results)
    failed: dict[str, int] = {}
    for r in results:
        if not 200 <= r.status < 300:
            failed[str(r.status)] = failed.get(str(r.status), 0) + 1
    return {
        "kind": kind,
        "requests": n,
        "concurrency": concurrency,
        "answered": sum(1 for r in results if 200 <= r.status < 300),
        "failed": sum(failed.values()),
        "failed_by_status": failed,
        "held_by_killed": len(held),
        "held_p50_s": _pct(on_victim, 50),
        "held_p99_s": _pct(on_victim, 99),
        "held_max_s": on_victim[-1] if on_victim else None,
        "all_p50_s": _pct(everyone, 50),
        "all_p99_s": _pct(everyone, 99),
        "heartbeat_ttl_s": load_settings(WorkerSettings, os.environ).heartbeat_ttl_ms / 1000,
        "kill_to_takeover_s": round(taken_at - killed_at, 2) if taken_at else None,
        "takeovers": failover.takeovers,
        "taken_over": failover.taken_over,
        "reclaimed_idle": failover.reclaimed,
        "wall_s": round(wall_s, 1),
    }


def _pct(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1], 3)


def _row(result: dict[str, Any]) -> str:
    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    failed = ",".join(f"{k}:{v}" for k, v in sorted(result["failed_by_status"].items()))
    return (
        f"{result['kind']:<10} {result['requests']:>5} {result['answered']:>8} "
        f"{result['failed']:>6} {result['held_by_killed']:>5} {s(result['held_p50_s']):>7} "
        f"{s(result['held_p99_s']):>7} {s(result['all_p50_s']):>6} {s(result['all_p99_s']):>6} "
        f"{result['heartbeat_ttl_s']:>4.1f} {s(result['kill_to_takeover_s']):>8} "
        f"{result['takeovers']}/{result['taken_over']} {failed}"
    )


HEADER = (
    f"{'kind':<10} {'N':>5} {'answered':>8} {'failed':>6} {'held':>5} {'held50':>7} "
    f"{'held99':>7} {'p50':>6} {'p99':>6} {'TTL':>4} {'takeover':>8} takeovers/entries"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="requests per kind")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep-logs", action="store_true", help="INFO logs, kept in /tmp")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {sorted(unknown)}")
    results = []
    print(HEADER, flush=True)
    for kind in kinds:
        result = asyncio.run(run_kind(kind, args.n, args.concurrency, args.keep_logs))
        results.append(result)
        print(_row(result), flush=True)
    print(
        "held: requests pending on the killed worker when it died; held50/held99: their "
        "latency (s), which includes waiting for its heartbeat TTL to expire; p50/p99: all "
        "requests; takeover: seconds from the SIGKILL to the takeover"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
