"""Payloads every worker understands, whatever its service."""

from __future__ import annotations

from shared.messages.base import Message, Method


class PingRequest(Message, frozen=True, kw_only=True):
    echo: str = ""


class PingReply(Message, frozen=True, kw_only=True):
    echo: str
    worker: str
    service: str


def ping_method(service: str) -> Method[PingRequest, PingReply]:
    """The built-in round-trip method of ``service``."""
    return Method(service, "ping", PingRequest, PingReply)


class SelfCheck(Message, frozen=True, kw_only=True):
    """A check a worker ran on itself before it reported ready, e.g. its engine's probe."""

    name: str
    passed: bool
    seconds: float
    detail: str
    """One line a person reads: what was asked, what came back."""
    facts: dict[str, str] = {}
    """What the check settled, e.g. ``{"dtype": "float32", "cpu_flags": "avx512_bf16"}``."""


class WorkerInfo(Message, frozen=True, kw_only=True):
    """What a worker publishes in its heartbeat key."""

    service: str
    worker: str
    version: str
    models: tuple[str, ...] = ()
    state: str = "ready"
    """``loading`` until warmed up, then ``ready``; ``stopping`` after SIGTERM."""
    pid: int
    host: str
    started_at: float
    in_flight: int = 0
    concurrency: int = 0
    processed: int = 0
    checks: tuple[SelfCheck, ...] = ()
    """The worker's self-checks (e.g. the generation engine's known-answer probe)."""
