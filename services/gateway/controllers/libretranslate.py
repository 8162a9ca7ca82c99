"""LibreTranslate-compatible API: ``POST /translate``, ``POST /detect``, ``GET /languages``.

Existing LibreTranslate clients work unchanged: the same paths, fields (JSON, form or
multipart bodies), answers and 400 for bad input. ``api_key`` is checked before a handler
runs (``services.gateway.access.gate``). Confidences are 0..100, as LibreTranslate reports them.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post

from services.gateway.caller import ServiceCaller
from services.gateway.libretranslate import (
    compat_exception_handlers,
    count_field,
    read_fields,
    required_text,
    texts_field,
)
from services.gateway.settings import GatewaySettings
from services.gateway.texts import texts_of
from services.gateway.translation_schemas import (
    MAX_ALTERNATIVES,
    LtDetected,
    LtLanguage,
    LtTranslateResult,
)
from shared.errors import BabelError, ErrorCode
from shared.messages.langid import DETECT, DetectRequest
from shared.messages.translation import (
    TRANSLATE,
    TRANSLATION_LANGUAGES,
    TextFormat,
    TranslateRequest,
    TranslationLanguagesRequest,
)

DETECT_CANDIDATES = 3


def _percent(confidence: float | None) -> float:
    return 100.0 if confidence is None else round(100.0 * confidence, 2)


class LibreTranslateController(Controller):
    path = "/"
    tags = ["libretranslate"]
    exception_handlers = compat_exception_handlers()

    @post("/translate", status_code=200, summary="Translate (LibreTranslate-compatible)")
    async def translate(
        self, request: Request[Any, Any, Any], caller: ServiceCaller, settings: GatewaySettings
    ) -> LtTranslateResult:
        fields = await read_fields(request)
        q = texts_field(fields)
        source = required_text(fields, "source")
        target = required_text(fields, "target")
        requested = fields.get("format") or "text"
        if requested not in ("text", "html"):
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT, f"{requested} format is not supported", field="format"
            )
        text_format: TextFormat = "html" if requested == "html" else "text"
        alternatives = count_field(fields, "alternatives", MAX_ALTERNATIVES)
        texts = texts_of(q, settings)
        reply = await caller.call(
            TRANSLATE,
            TranslateRequest(
                texts=texts,
                source=source,
                target=target,
                format=text_format,
                alternatives=alternatives,
            ),
            timeout_s=settings.translate_timeout_s,
        )
        items = reply.translations
        detected = [LtDetected(confidence=_percent(t.confidence), language=t.source) for t in items]
        batch = isinstance(q, list)
        return LtTranslateResult(
            translatedText=[t.text for t in items] if batch else items[0].text,
            detectedLanguage=(detected if batch else detected[0]) if source == "auto" else None,
            alternatives=(
                ([list(t.alternatives) for t in items] if batch else list(items[0].alternatives))
                if alternatives > 0
                else None
            ),
        )

    @post("/detect", status_code=200, summary="Detect the language (LibreTranslate-compatible)")
    async def detect(
        self, request: Request[Any, Any, Any], caller: ServiceCaller, settings: GatewaySettings
    ) -> list[LtDetected]:
        fields = await read_fields(request)
        texts = texts_of(texts_field(fields), settings)
        reply = await caller.call(DETECT, DetectRequest(texts=texts, top_k=DETECT_CANDIDATES))
        # Several texts: one ranking, each language's confidence averaged by text length.
        total = sum(len(t) for t in texts)
        scores: dict[str, float] = {}
        for text, detection in zip(texts, reply.detections, strict=True):
            weight = len(text) / total
            scores[detection.language] = scores.get(detection.language, 0.0) + (
                weight * detection.confidence
            )
            for other in detection.alternatives:
                scores[other.language] = scores.get(other.language, 0.0) + (
                    weight * other.confidence
                )
        ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
        return [LtDetected(confidence=_percent(c), language=lang) for lang, c in ranked]

    @get("/languages", summary="Translation languages (LibreTranslate-compatible)")
    async def languages(self, caller: ServiceCaller) -> list[LtLanguage]:
        reply = await caller.call(TRANSLATION_LANGUAGES, TranslationLanguagesRequest())
        return [
            LtLanguage(code=lang.code, name=lang.name, targets=list(lang.targets))
            for lang in reply.languages
        ]
