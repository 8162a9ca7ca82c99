"""``python -m services.gateway``: serve the gateway with uvicorn."""

from __future__ import annotations

import os

import uvicorn

from services.batch.settings import BatchSettings
from services.gateway.access.settings import AccessSettings
from services.gateway.app import create_asgi
from services.gateway.settings import GatewaySettings
from shared.settings import LogSettings, RedisSettings, load_settings
from shared.telemetry import configure_logging


def main() -> None:
    settings = load_settings(GatewaySettings, os.environ)
    configure_logging(load_settings(LogSettings, os.environ), service="gateway")
    app = create_asgi(
        settings,
        RedisSettings.from_env(os.environ),
        load_settings(AccessSettings, os.environ),
        load_settings(BatchSettings, os.environ),
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
