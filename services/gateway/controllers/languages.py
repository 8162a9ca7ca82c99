"""Language identification: ``POST /v1/detect``."""

from __future__ import annotations

from litestar import Controller, post

from services.gateway.caller import Caller, ServiceCaller
from services.gateway.schemas import DetectBody, DetectResult
from services.gateway.settings import GatewaySettings
from services.gateway.texts import texts_of
from shared.messages.langid import DETECT, DetectRequest


async def detect_languages(
    data: DetectBody, caller: Caller, settings: GatewaySettings
) -> DetectResult:
    texts = texts_of(data.q, settings)
    reply = await caller.call(DETECT, DetectRequest(texts=texts, top_k=data.top_k))
    return DetectResult(detections=list(reply.detections), model=reply.model)


class LanguageController(Controller):
    path = "/v1"
    tags = ["language"]

    @post("/detect", status_code=200, summary="Identify the language of one text or many")
    async def detect(
        self, data: DetectBody, caller: ServiceCaller, settings: GatewaySettings
    ) -> DetectResult:
        return await detect_languages(data, caller, settings)
