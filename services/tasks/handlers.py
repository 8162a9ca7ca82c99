"""RPC handlers of the tasks service."""

from __future__ import annotations

from services.tasks.settings import TasksSettings
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
        if not request.texts:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT, "at least one text is needed", field="texts"
            )
        if len(request.texts) > self._settings.max_texts:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"at most {self._settings.max_texts} texts per request",
                field="texts",
            )
        if not 1 <= request.top_k <= 10:
            raise BabelError(ErrorCode.INVALID_ARGUMENT, "top_k must be 1..10", field="top_k")
        for i, text in enumerate(request.texts):
            if not text.strip():
                raise BabelError(ErrorCode.INVALID_ARGUMENT, "text is empty", field=f"texts[{i}]")
            if len(text) > self._settings.max_text_chars:
                raise BabelError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"text is longer than {self._settings.max_text_chars} characters",
                    field=f"texts[{i}]",
                )

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
