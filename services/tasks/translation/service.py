"""Translation as the tasks service builds it from settings: backend, handlers, lifecycle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis

from services.tasks.generation_client import RpcGenerationClient
from services.tasks.translation.backend import Translator
from services.tasks.translation.handlers import TranslationHandlers
from services.tasks.translation.llm import LlmTranslator
from services.tasks.translation.seq2seq import Seq2SeqTranslator
from services.tasks.translation.settings import TranslationSettings
from shared.langid import LanguageIdentifier
from shared.rpc.connection import connect
from shared.rpc.handlers import HandlerRegistry
from shared.rpc.keys import Keys
from shared.settings import RedisSettings, load_settings


@dataclass
class TranslationService:
    translator: Translator | None
    handlers: TranslationHandlers | None
    redis: aioredis.Redis | None = None
    """The ``llm`` backend's own connection to the generation service."""

    def register(self, registry: HandlerRegistry) -> None:
        if self.handlers is not None:
            self.handlers.register(registry)

    @property
    def model(self) -> str | None:
        return None if self.translator is None else self.translator.model

    async def warm_up(self) -> None:
        if self.translator is not None:
            await self.translator.warm_up()

    async def close(self) -> None:
        if self.translator is not None:
            await self.translator.close()
        if self.redis is not None:
            await self.redis.aclose()


def build_translation(
    environ: Mapping[str, str], identifier: LanguageIdentifier
) -> TranslationService:
    """Cheap: nothing is loaded or connected until ``warm_up``/the first request."""
    settings = load_settings(TranslationSettings, environ)
    translator: Translator
    redis = None
    if settings.backend == "off":
        return TranslationService(translator=None, handlers=None)
    if settings.backend == "seq2seq":
        translator = Seq2SeqTranslator(settings)
    else:
        redis_settings = RedisSettings.from_env(environ)
        redis = connect(redis_settings)
        translator = LlmTranslator(
            RpcGenerationClient(redis, Keys(redis_settings.key_prefix)), settings
        )
    handlers = TranslationHandlers(translator, identifier, settings)
    return TranslationService(translator=translator, handlers=handlers, redis=redis)


def translation_models(environ: Mapping[str, str]) -> tuple[str, ...]:
    """What the worker's heartbeat names for translation (nothing is loaded here)."""
    settings = load_settings(TranslationSettings, environ)
    if settings.backend == "off":
        return ()
    return (f"translation/{settings.backend}:{settings.model or 'default'}",)
