"""RPC handlers of the tasks service."""

from __future__ import annotations

from services.tasks.settings import TasksSettings
from services.tasks.texts import check_texts
from shared.errors import BabelError, ErrorCode
from shared.langid import LanguageIdentifier
from shared.messages.langid import DETECT, Detection, DetectRequest, DetectResponse
from shared.rpc.handlers import HandlerRegistry, RequestContext


class LanguageHandlers:
    def __init__(self, identifier: LanguageIdentifier, settings: TasksSettings) -> None:
        self._identifier = identifier
        self._settings = settings

    def register(self, registry: HandlerRegistry) -> None:
        registry.add_unary(DETECT, self.detect)

    def _validate(self, request: DetectRequest) -> None:
        check_texts(
            request.texts,
            max_texts=self._settings.max_texts,
            max_text_chars=self._settings.max_text_chars,
        )
        if not 1 <= request.top_k <= 10:
            raise BabelError(ErrorCode.INVALID_ARGUMENT, "top_k must be 1..10", field="top_k")

    async def detect(self, request: DetectRequest, context: RequestContext) -> DetectResponse:
        self._validate(request)
        detections = []
        for text in request.texts:
            ranked = self._identifier.identify(text, request.top_k)
            best = ranked[0]
            detections.append(
                Detection(
                    language=best.language,
                    confidence=best.confidence,
                    alternatives=tuple(ranked[1:]),
                )
            )
        return DetectResponse(detections=tuple(detections), model=self._identifier.name)
