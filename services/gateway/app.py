"""The gateway's app factory: every dependency is built here from settings and injected."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from services.batch.settings import BatchSettings
from services.batch.wiring import build_batch
from services.gateway import __version__
from services.gateway.access.control import build_access
from services.gateway.access.gate import AccessGate
from services.gateway.access.limiter import Limiter
from services.gateway.access.metrics_port import serve_metrics
from services.gateway.access.openapi import document_access
from services.gateway.access.settings import AccessSettings
from services.gateway.batch_metrics import BatchMetrics
from services.gateway.caller import ServiceCaller, check_pool
from services.gateway.controllers.batches import BatchesController
from services.gateway.controllers.chat import ChatController
from services.gateway.controllers.classifiers import ClassifiersController
from services.gateway.controllers.collections import CollectionsController
from services.gateway.controllers.embeddings import EmbeddingsController
from services.gateway.controllers.files import FilesController
from services.gateway.controllers.health import HealthController
from services.gateway.controllers.keys import KeysController
from services.gateway.controllers.languages import LanguageController
from services.gateway.controllers.libretranslate import LibreTranslateController
from services.gateway.controllers.rag import RagController
from services.gateway.controllers.sentiment import SentimentController
from services.gateway.controllers.services import ServicesController
from services.gateway.controllers.translate import TranslateController
from services.gateway.frontend import cors_config, ui_router
from services.gateway.limits import BodyLimit
from services.gateway.monitor import ServiceMonitor
from services.gateway.observability import GatewayMetrics, RequestObserver
from services.gateway.openapi_bounds import state_bounds
from services.gateway.openapi_constraints import state_constraints
from services.gateway.openapi_errors import document_errors
from services.gateway.openapi_links import document_links
from services.gateway.options_allow import correct_options_allow
from services.gateway.problems import exception_handlers
from services.gateway.settings import GatewaySettings
from services.gateway.strict_bodies import strict_json_body
from shared.access.store import AccessKeys, KeyStore
from shared.rpc.client import RpcClient
from shared.rpc.connection import connect
from shared.rpc.keys import Keys
from shared.settings import RedisSettings


def _constant(value: Any) -> Provide:
    def provide() -> Any:
        return value

    return Provide(provide, use_cache=True, sync_to_thread=False)


def create_app(
    gateway: GatewaySettings,
    redis_settings: RedisSettings,
    access_settings: AccessSettings | None = None,
    batch_settings: BatchSettings | None = None,
) -> Litestar:
    check_pool(gateway, redis_settings.max_connections)
    keys = Keys(redis_settings.key_prefix)
    redis = connect(redis_settings)
    metrics = GatewayMetrics()
    monitor = ServiceMonitor(redis, keys, gateway, metrics)
    access_settings = access_settings or AccessSettings()
    access_keys = AccessKeys(redis_settings.key_prefix)
    access = build_access(
        access_settings, gateway.host, Limiter(redis, access_keys), metrics.registry
    )
    caller = ServiceCaller(RpcClient(redis, keys), monitor, gateway, access)
    batch = build_batch(batch_settings or BatchSettings(), redis_settings)
    batch_metrics = BatchMetrics(metrics.registry, batch.settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await monitor.refresh()
        watcher = asyncio.create_task(monitor.run(), name="service-monitor")
        metrics_server = serve_metrics(access_settings.metrics_port, gateway.host, metrics.registry)
        batch_watcher = asyncio.create_task(
            batch_metrics.run(redis, batch.progress), name="batch-metrics"
        )
        try:
            yield
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
            for task in (watcher, batch_watcher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await redis.aclose()

    dependencies: dict[str, Provide] = {
        "settings": _constant(gateway),
        "metrics": _constant(metrics),
        "monitor": _constant(monitor),
        "caller": _constant(caller),
        "key_store": _constant(KeyStore(redis, access_keys)),
        "batches": _constant(batch.service),
    }
    app = Litestar(
        route_handlers=[
            HealthController,
            LanguageController,
            ServicesController,
            CollectionsController,
            EmbeddingsController,
            TranslateController,
            LibreTranslateController,
            ChatController,
            SentimentController,
            ClassifiersController,
            RagController,
            KeysController,
            ui_router(),
            FilesController,
            BatchesController,
        ],
        cors_config=cors_config(gateway.cors_origins),
        dependencies=dependencies,
        exception_handlers=exception_handlers(),
        before_request=strict_json_body,
        lifespan=[lifespan],
        request_max_body_size=max(gateway.max_body_bytes, gateway.max_upload_bytes),
        openapi_config=OpenAPIConfig(
            title="BabelStack",
            version=__version__,
            description="Multilingual NLP and retrieval-augmented generation behind one REST API.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
        debug=gateway.debug,
    )
    document_access(app.openapi_schema)
    app.state.metrics = metrics
    app.state.access = access
    state_bounds(app, gateway)
    state_constraints(app.openapi_schema, gateway, batch.settings)
    document_errors(app.openapi_schema)
    document_links(app.openapi_schema)
    correct_options_allow(app)
    return app


def create_asgi(
    gateway: GatewaySettings,
    redis_settings: RedisSettings,
    access_settings: AccessSettings | None = None,
    batch_settings: BatchSettings | None = None,
) -> Callable[..., Any]:
    """The app as served: Litestar behind the body limit, behind the API-key gate (so an
    unauthenticated body is never read), wrapped in request-id/metrics observation."""
    app = create_app(gateway, redis_settings, access_settings, batch_settings)
    limited = BodyLimit(app, gateway.max_body_bytes, gateway.max_upload_bytes)
    gated = AccessGate(limited, app.state.access, gateway.max_body_bytes)
    return RequestObserver(gated, app.state.metrics)
