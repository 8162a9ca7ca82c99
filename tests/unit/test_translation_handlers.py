"""Translation handlers and the ``llm`` backend, with deterministic fakes."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import pytest

from services.tasks.translation.backend import all_pairs
from services.tasks.translation.handlers import TranslationHandlers
from services.tasks.translation.llm import LlmTranslator
from services.tasks.translation.settings import TranslationSettings
from shared.errors import BabelError, ErrorCode
from shared.messages.generation import Choice, GenerateRequest, GenerateResponse, Usage
from shared.messages.langid import LanguageScore
from shared.messages.translation import TranslateRequest, TranslationLanguagesRequest
from shared.rpc.handlers import RequestContext

CONTEXT = RequestContext(request_id="r", deadline=time.time() + 60, worker="w", deliveries=1)


class FakeTranslator:
    """Wraps each sentence as ``<target:sentence>``; alternatives add ``#k``."""

    backend = "fake"
    model = "fake-model"

    def __init__(self, codes: Sequence[str] = ("en", "de", "fr", "ja")) -> None:
        self.calls: list[tuple[tuple[str, ...], str, str, int]] = []
        self._pairs = all_pairs(codes)

    def languages(self) -> Mapping[str, tuple[str, ...]]:
        return self._pairs

    async def warm_up(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def translate(
        self,
        sentences: Sequence[str],
        source: str,
        target: str,
        *,
        alternatives: int,
        deadline: float,
    ) -> list[tuple[str, ...]]:
        self.calls.append((tuple(sentences), source, target, alternatives))
        return [
            tuple([f"<{target}:{s}>", *(f"<{target}:{s}#{k}>" for k in range(1, alternatives + 1))])
            for s in sentences
        ]


class FakeIdentifier:
    name = "fake-langid"

    def warm_up(self) -> None:
        pass

    def identify(self, text: str, top_k: int) -> list[LanguageScore]:
        language = "de" if "der" in text.split() or "Hallo" in text else "en"
        return [LanguageScore(language=language, confidence=0.9)]


def _handlers(translator: FakeTranslator | None = None, **settings: object) -> TranslationHandlers:
    return TranslationHandlers(
        translator or FakeTranslator(),
        FakeIdentifier(),
        TranslationSettings(**settings),  # type: ignore[arg-type]
    )


async def test_sentences_are_translated_once_and_reassembled() -> None:
    translator = FakeTranslator()
    text = "Hello there. Hello there.\n\nBye."
    reply = await _handlers(translator).translate(
        TranslateRequest(texts=(text, "Bye."), source="en", target="de"), CONTEXT
    )
    assert [t.text for t in reply.translations] == [
        "<de:Hello there.> <de:Hello there.>\n\n<de:Bye.>",
        "<de:Bye.>",
    ]
    assert translator.calls == [(("Hello there.", "Bye."), "en", "de", 0)]
    assert reply.translations[0].source == "en"
    assert reply.translations[0].confidence is None
    assert (reply.backend, reply.model) == ("fake", "fake-model")


async def test_auto_detects_each_text_and_groups_by_source() -> None:
    translator = FakeTranslator()
    reply = await _handlers(translator).translate(
        TranslateRequest(texts=("Hallo Welt.", "Good morning."), target="fr"), CONTEXT
    )
    assert [(t.source, t.confidence) for t in reply.translations] == [("de", 0.9), ("en", 0.9)]
    assert sorted(call[1] for call in translator.calls) == ["de", "en"]


async def test_same_language_is_returned_unchanged() -> None:
    translator = FakeTranslator()
    reply = await _handlers(translator).translate(
        TranslateRequest(texts=("Good morning.",), target="en"), CONTEXT
    )
    assert reply.translations[0].text == "Good morning."
    assert translator.calls == []


async def test_alternatives_are_distinct_and_without_the_best() -> None:
    reply = await _handlers().translate(
        TranslateRequest(texts=("One. Two.",), source="en", target="de", alternatives=2), CONTEXT
    )
    (translation,) = reply.translations
    assert translation.text == "<de:One.> <de:Two.>"
    assert translation.alternatives == ("<de:One.#1> <de:Two.#1>", "<de:One.#2> <de:Two.#2>")


async def test_html_translates_text_nodes_only() -> None:
    markup = '<p title="Hello">Hello <b>world</b></p><script>x("Hello")</script>'
    reply = await _handlers().translate(
        TranslateRequest(texts=(markup,), source="en", target="de", format="html"), CONTEXT
    )
    assert reply.translations[0].text == (
        '<p title="Hello">&lt;de:Hello&gt; <b>&lt;de:world&gt;</b></p><script>x("Hello")</script>'
    )


@pytest.mark.parametrize(
    ("request_", "code", "field", "words"),
    [
        (
            TranslateRequest(texts=("Hi.",), source="en", target="xx"),
            ErrorCode.UNSUPPORTED_LANGUAGE,
            "target",
            "en, fr, ja",
        ),
        (
            TranslateRequest(texts=("Hi.",), source="qq", target="de"),
            ErrorCode.UNSUPPORTED_LANGUAGE,
            "source",
            "supported: de",
        ),
        (
            TranslateRequest(texts=(), target="de"),
            ErrorCode.INVALID_ARGUMENT,
            "texts",
            "at least one",
        ),
        (
            TranslateRequest(texts=("  ",), target="de"),
            ErrorCode.INVALID_ARGUMENT,
            "texts[0]",
            "empty",
        ),
        (
            TranslateRequest(texts=("x" * 101,), target="de"),
            ErrorCode.INVALID_ARGUMENT,
            "texts[0]",
            "at most 100",
        ),
        (
            TranslateRequest(texts=("Hi.",), target="de", alternatives=9),
            ErrorCode.INVALID_ARGUMENT,
            "alternatives",
            "0..3",
        ),
    ],
)
async def test_bad_requests_name_the_field(
    request_: TranslateRequest, code: ErrorCode, field: str, words: str
) -> None:
    with pytest.raises(BabelError) as caught:
        await _handlers(max_text_chars=100).translate(request_, CONTEXT)
    assert caught.value.code == code
    assert caught.value.field == field
    assert words in str(caught.value)


async def test_unsupported_pair_lists_the_targets() -> None:
    translator = FakeTranslator()
    translator._pairs = {"en": ("de",), "de": ("en", "fr")}
    with pytest.raises(BabelError, match="en -> fr is not supported; en translates into: de"):
        await _handlers(translator).translate(
            TranslateRequest(texts=("Hi.",), source="en", target="fr"), CONTEXT
        )


async def test_languages_list_names_and_targets() -> None:
    reply = await _handlers(FakeTranslator(("en", "de"))).languages(
        TranslationLanguagesRequest(), CONTEXT
    )
    assert [(lang.code, lang.name, lang.targets) for lang in reply.languages] == [
        ("de", "German", ("en",)),
        ("en", "English", ("de",)),
    ]


class FakeGenerationClient:
    def __init__(self, answers: Mapping[str, str], alive: bool = True) -> None:
        self.answers = answers
        self.alive = alive
        self.requests: list[GenerateRequest] = []

    async def available(self) -> bool:
        return self.alive

    async def generate(self, request: GenerateRequest, *, deadline: float) -> GenerateResponse:
        self.requests.append(request)
        assert request.messages is not None
        source = request.messages[-1].content.rsplit("\n\n", 1)[1]
        text = self.answers[source]
        choices = tuple(
            Choice(index=i, text=text, finish_reason="stop") for i in range(request.sampling.n)
        )
        return GenerateResponse(
            model="fake-llm", choices=choices, usage=Usage(prompt_tokens=1, completion_tokens=1)
        )


async def test_llm_backend_asks_greedily_and_cleans_the_answer() -> None:
    client = FakeGenerationClient({"Guten Morgen.": "Translation: Good morning.\nNote: formal."})
    translator = LlmTranslator(client, TranslationSettings(languages=("de", "en")))
    found = await translator.translate(
        ["Guten Morgen."], "de", "en", alternatives=0, deadline=time.time() + 10
    )
    assert found == [("Good morning.",)]
    (request,) = client.requests
    assert request.sampling.temperature == 0.0
    assert request.sampling.max_tokens == 16 + len("Guten Morgen.")
    assert "\n\n" in request.sampling.stop
    assert request.messages is not None
    assert "German text to English" in request.messages[0].content
    assert translator.languages() == {"de": ("en",), "en": ("de",)}


async def test_llm_backend_samples_alternatives() -> None:
    client = FakeGenerationClient({"Hallo.": "Hello."})
    translator = LlmTranslator(client, TranslationSettings())
    found = await translator.translate(
        ["Hallo."], "de", "en", alternatives=2, deadline=time.time() + 10
    )
    assert found == [("Hello.", "Hello.", "Hello.")]
    assert [r.sampling.n for r in client.requests] == [1, 2]
    assert client.requests[1].sampling.temperature > 0


async def test_llm_backend_without_generation_worker_is_unavailable() -> None:
    translator = LlmTranslator(FakeGenerationClient({}, alive=False), TranslationSettings())
    with pytest.raises(BabelError) as caught:
        await translator.translate(["Hallo."], "de", "en", alternatives=0, deadline=0)
    assert caught.value.code == ErrorCode.UNAVAILABLE
    assert caught.value.info.retryable


async def test_many_distinct_sentences_are_deduplicated_in_linear_time() -> None:
    """20,000 distinct sentences: a list membership test per sentence was quadratic."""
    translator = FakeTranslator()
    text = " ".join(f"Sentence {i}." for i in range(20_000))
    started = time.perf_counter()
    reply = await _handlers(translator, max_text_chars=len(text)).translate(
        TranslateRequest(texts=(text, text), source="en", target="de"), CONTEXT
    )
    assert time.perf_counter() - started < 30.0  # ~0.3 s now; minutes quadratic
    ((sentences, *_),) = translator.calls
    assert len(sentences) > 19_000  # (the splitter joins a few numbered ones)
    assert len(set(sentences)) == len(sentences), "each distinct sentence once"
    assert reply.translations[0].text == reply.translations[1].text
