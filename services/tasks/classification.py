"""Sentiment and custom classifiers as the tasks service builds them: one embedding model
shared by both, their handlers, and their lifecycle (cheap to build; ``warm_up`` loads)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

from services.tasks.classifiers.handlers import ClassifierHandlers
from services.tasks.classifiers.settings import ClassifierSettings
from services.tasks.classifiers.store import ClassifierStore
from services.tasks.features import build_features, feature_model_name, model_cache_root
from services.tasks.generation_client import RpcGenerationClient
from services.tasks.sentiment.artifact import head_folder
from services.tasks.sentiment.backend import HeadSentiment, SentimentBackend
from services.tasks.sentiment.handlers import SentimentHandlers
from services.tasks.sentiment.llm import LlmSentiment
from services.tasks.sentiment.settings import SentimentSettings
from services.tasks.settings import TasksSettings
from shared.models.embedder import BatchingEmbedder
from shared.rpc.connection import connect
from shared.rpc.handlers import HandlerRegistry
from shared.rpc.keys import Keys
from shared.settings import RedisSettings, load_settings


@dataclass
class ClassificationService:
    embedder: BatchingEmbedder | None = None
    sentiment: SentimentBackend | None = None
    handlers: list[SentimentHandlers | ClassifierHandlers] = field(default_factory=list)
    redis: aioredis.Redis | None = None
    """The connection of the LLM sentiment backend's generation client, when it has one."""

    def register(self, registry: HandlerRegistry) -> None:
        for handlers in self.handlers:
            handlers.register(registry)

    async def warm_up(self) -> None:
        if self.embedder is not None:
            await asyncio.to_thread(self.embedder.embedder.warm_up)
        if self.sentiment is not None:
            await self.sentiment.warm_up()

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def build_classification(environ: Mapping[str, str]) -> ClassificationService:
    sentiment_settings = load_settings(SentimentSettings, environ)
    classifier_settings = load_settings(ClassifierSettings, environ)
    service = ClassificationService()
    if sentiment_settings.backend == "head" or classifier_settings.enabled:
        service.embedder = build_features(environ)
    if sentiment_settings.backend == "head":
        assert service.embedder is not None
        folder = head_folder(model_cache_root(environ), sentiment_settings.head)
        service.sentiment = HeadSentiment(service.embedder, folder)
    elif sentiment_settings.backend == "llm":
        redis_settings = RedisSettings.from_env(environ)
        service.redis = connect(redis_settings)
        client = RpcGenerationClient(service.redis, Keys(redis_settings.key_prefix))
        service.sentiment = LlmSentiment(client, sentiment_settings)
    if service.sentiment is not None:
        service.handlers.append(SentimentHandlers(service.sentiment, sentiment_settings))
    if classifier_settings.enabled:
        assert service.embedder is not None
        data_dir = Path(load_settings(TasksSettings, environ).data_dir).expanduser()
        store = ClassifierStore(data_dir / "classifiers")
        service.handlers.append(ClassifierHandlers(service.embedder, store, classifier_settings))
    return service


def classification_models(environ: Mapping[str, str]) -> tuple[str, ...]:
    """What the worker's heartbeat names (nothing is loaded here)."""
    sentiment_settings = load_settings(SentimentSettings, environ)
    classifier_settings = load_settings(ClassifierSettings, environ)
    models = []
    if sentiment_settings.backend == "head" or classifier_settings.enabled:
        models.append(feature_model_name(environ))
    if sentiment_settings.backend == "head":
        models.append(f"sentiment/{sentiment_settings.head}")
    elif sentiment_settings.backend == "llm":
        models.append(f"sentiment/llm:{sentiment_settings.llm_model or 'generation-default'}")
    return tuple(models)
