"""``python -m services.tasks``: run one tasks worker until SIGTERM."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from services.tasks import __version__
from services.tasks.classification import build_classification, classification_models
from services.tasks.handlers import LanguageHandlers
from services.tasks.settings import TasksSettings
from services.tasks.translation.service import build_translation, translation_models
from shared.langid import build_identifier
from shared.rpc.handlers import HandlerRegistry
from shared.rpc.runner import ServiceParts, run_service
from shared.rpc.worker import ServiceIdentity
from shared.settings import load_settings

SERVICE = "tasks"


def build(environ: Mapping[str, str]) -> ServiceParts:
    settings = load_settings(TasksSettings, environ)
    identifier = build_identifier(settings.langid_backend, settings.langid_max_chars)
    registry = HandlerRegistry(SERVICE)
    LanguageHandlers(identifier, settings).register(registry)
    translation = build_translation(environ, identifier)
    translation.register(registry)
    classification = build_classification(environ)
    classification.register(registry)

    async def warm_up() -> None:
        await asyncio.to_thread(identifier.warm_up)
        await translation.warm_up()
        await classification.warm_up()

    async def close() -> None:
        await translation.close()
        await classification.close()

    return ServiceParts(registry=registry, warm_up=warm_up, close=close)


def main() -> None:
    settings = load_settings(TasksSettings, os.environ)
    identity = ServiceIdentity(
        service=SERVICE,
        version=__version__,
        models=(
            build_identifier(settings.langid_backend, 0).name,
            *translation_models(os.environ),
            *classification_models(os.environ),
        ),
    )
    run_service(identity, build, os.environ)


if __name__ == "__main__":
    main()
