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
