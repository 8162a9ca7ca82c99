"""HTTP request and response bodies (documented in OpenAPI)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared.messages.langid import Detection
from shared.messages.system import WorkerInfo
from shared.rpc.stats import QueueStats


class DetectBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    q: str | list[str]
    """One text, or a list of texts."""
    top_k: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    """How many candidate languages to return per text (the first is the answer)."""


class DetectResult(msgspec.Struct, frozen=True):
    detections: list[Detection]
    model: str


class ServiceInfo(msgspec.Struct, frozen=True):
    name: str
    version: str | None
    models: list[str]
    live_workers: int
    ready: bool
    queue: QueueStats
    workers: list[WorkerInfo]


class ServicesResult(msgspec.Struct, frozen=True):
    services: list[ServiceInfo]


class PingResult(msgspec.Struct, frozen=True):
    service: str
    worker: str
    round_trip_ms: float


class RedisStatus(msgspec.Struct, frozen=True):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class ServiceReadiness(msgspec.Struct, frozen=True):
    ready: bool
    required: bool
    live_workers: int
    queue_depth: int
    pending: int
    lag: int | None
    dead_letters: int


class Readiness(msgspec.Struct, frozen=True):
    status: str
    redis: RedisStatus
    services: dict[str, ServiceReadiness]
