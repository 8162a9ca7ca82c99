"""Translation, native shape: ``POST /v1/translate``, ``GET /v1/translate/languages``."""

from __future__ import annotations

from litestar import Controller, get, post

from services.gateway.caller import Caller, ServiceCaller
from services.gateway.settings import GatewaySettings
from services.gateway.texts import texts_of
from services.gateway.translation_schemas import (
    TranslateBody,
    TranslateResult,
    TranslationLanguagesResult,
)
from shared.messages.translation import (
    TRANSLATE,
    TRANSLATION_LANGUAGES,
    TranslateRequest,
    TranslationLanguagesRequest,
)


async def translate_texts(
    data: TranslateBody, caller: Caller, settings: GatewaySettings
) -> TranslateResult:
    texts = texts_of(data.texts, settings, field="texts")
    request = TranslateRequest(
        texts=texts,
        target=data.target,
        source=data.source or "auto",
        format=data.format,
        alternatives=data.alternatives,
    )
    reply = await caller.call(TRANSLATE, request, timeout_s=settings.translate_timeout_s)
    return TranslateResult(
        translations=list(reply.translations), backend=reply.backend, model=reply.model
    )


class TranslateController(Controller):
    path = "/v1/translate"
    tags = ["translation"]

    @post("", status_code=200, summary="Translate one text or many (text or HTML)")
    async def translate(
        self, data: TranslateBody, caller: ServiceCaller, settings: GatewaySettings
    ) -> TranslateResult:
        return await translate_texts(data, caller, settings)

    @get("/languages", summary="Languages the translation backend offers, with their targets")
    async def languages(self, caller: ServiceCaller) -> TranslationLanguagesResult:
        reply = await caller.call(TRANSLATION_LANGUAGES, TranslationLanguagesRequest())
        return TranslationLanguagesResult(
            languages=list(reply.languages), backend=reply.backend, model=reply.model
        )
