"""The generation service as the tasks service calls it (LLM translation, LLM sentiment)."""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as aioredis

from shared.messages.generation import GENERATE, GenerateRequest, GenerateResponse
from shared.rpc.client import RpcClient
from shared.rpc.keys import Keys
from shared.rpc.stats import read_workers

GENERATION = GENERATE.service


class GenerationClient(Protocol):
    async def available(self) -> bool:
        """Whether a generation worker is alive (it has a heartbeat)."""
        ...

    async def generate(self, request: GenerateRequest, *, deadline: float) -> GenerateResponse: ...


class RpcGenerationClient:
    """The generation service over Redis, with the RPC client the gateway uses too."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._rpc = RpcClient(redis, keys)

    async def available(self) -> bool:
        return bool(await read_workers(self._redis, self._keys, GENERATION))

    async def generate(self, request: GenerateRequest, *, deadline: float) -> GenerateResponse:
        return await self._rpc.call(GENERATE, request, deadline=deadline)
