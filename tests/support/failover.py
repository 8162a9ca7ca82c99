"""A bounded HTTP load with one SIGKILL in it: which calls ran, how they ended, and which
requests the killed worker held at the moment it died."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis.asyncio as aioredis

from shared.rpc.keys import Keys
from shared.rpc.stats import pending_on
from tests.support.processes import WorkerProcess
from tests.support.waiting import wait_until

Send = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]
"""Sends one request with the given headers (they carry the request id)."""


@dataclass
class Call:
    kind: str
    send: Send
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Outcome:
    call: Call
    status: int
    text: str
    seconds: float

    def json(self) -> Any:
        return httpx.Response(self.status, text=self.text).json()


@dataclass
class Victim:
    """The worker to kill: its process, service and consumer name."""

    process: WorkerProcess
    service: str
    name: str
    held: list[str] = field(default_factory=list)
    """Request ids pending on it when it died (filled in by :func:`load_with_kill`)."""
    killed_at: float = 0.0


async def _kill_when_holding(
    redis: aioredis.Redis, keys: Keys, victim: Victim, started: asyncio.Event
) -> None:
    await started.wait()

    async def holding() -> list[str]:
        return await pending_on(redis, keys, victim.service, victim.name)

    await wait_until(holding, timeout_s=120, interval_s=0.01, what=f"{victim.name} holding work")
    victim.process.signal(signal.SIGKILL)  # at once, in this coroutine: it holds work now
    victim.killed_at = time.monotonic()
    # Dead now: what is pending on it stays put until the takeover (seconds away). Read it
    # before reaping the process and its children, which can take seconds (vLLM's engine):
    # long enough, on a loaded machine, for the takeover to have moved it all.
    victim.held = await pending_on(redis, keys, victim.service, victim.name)
    await asyncio.to_thread(victim.process.kill)


async def load_with_kill(
    base_url: str,
    calls: Sequence[Call],
    *,
    redis: aioredis.Redis,
    victim: Victim,
    kill_after: int,
    concurrency: int = 8,
    timeout_s: float = 300.0,
) -> list[Outcome]:
    """Send ``calls``, ``concurrency`` at a time; once ``kill_after`` have started and the
    victim holds at least one request, SIGKILL it. Every call's outcome, in order."""
    gate = asyncio.Semaphore(concurrency)
    started_enough = asyncio.Event()
    count = 0

    async def one(client: httpx.AsyncClient, call: Call) -> Outcome:
        nonlocal count
        async with gate:
            count += 1
            if count >= kill_after:
                started_enough.set()
            began = time.monotonic()
            try:
                response = await call.send(client, {"x-request-id": call.request_id})
            except httpx.HTTPError as exc:
                return Outcome(call, 0, f"{type(exc).__name__}: {exc}", time.monotonic() - began)
            return Outcome(call, response.status_code, response.text, time.monotonic() - began)

    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s) as client:
        killer = asyncio.create_task(_kill_when_holding(redis, Keys(), victim, started_enough))
        outcomes = await asyncio.gather(*(one(client, call) for call in calls))
        await killer
    return list(outcomes)


def failures(outcomes: Sequence[Outcome]) -> list[str]:
    """One line per call that did not succeed (2xx), for an assertion message."""
    return [
        f"{o.call.kind} {o.call.request_id}: {o.status} {o.text[:300]}"
        for o in outcomes
        if not 200 <= o.status < 300
    ]
