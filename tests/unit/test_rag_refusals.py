"""The fixed "I don't know" exists for every language the service offers, and the project's
own language identification (fastText lid.176, ``shared.langid``) reads each as its language."""

from __future__ import annotations

import asyncio

import pytest

from services.generation.rag import RagPipeline
from services.generation.refusals import NO_ANSWER, no_answer, refusal_prompt
from services.generation.settings import GenerationSettings
from shared.langid import FastLangdetectIdentifier
from shared.languages import LANGUAGES

LANGID_CONFUSES = {
    "no": "da",  # lid.176 lite reads Bokmål sentences as Danish; Norwegian comes second
    "zh-Hant": "zh",  # lid.176 has one label for both Chinese scripts
}
"""Languages lid.176 cannot tell from a neighbour: the sentence must rank its language within
the top two, or (Chinese) be read as the one label it has."""


@pytest.fixture(scope="module")
def identifier() -> FastLangdetectIdentifier:
    identifier = FastLangdetectIdentifier(max_chars=1_000)
    identifier.warm_up()
    return identifier


def test_every_offered_language_has_a_sentence() -> None:
    assert len(LANGUAGES) >= 39
    assert sorted(LANGUAGES) == sorted(NO_ANSWER)
    assert all(no_answer(code) for code in LANGUAGES)


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_the_sentence_is_identified_as_its_language(
    identifier: FastLangdetectIdentifier, code: str
) -> None:
    found = [score.language for score in identifier.identify(NO_ANSWER[code], 2)]
    if code not in LANGID_CONFUSES:
        assert found[0] == code, found
        return
    assert found[0] == LANGID_CONFUSES[code], found
    if code != "zh-Hant":  # lid.176 has no label for it to rank second
        assert code in found, found


def test_a_language_without_a_sentence_is_left_to_the_model() -> None:
    assert no_answer("sw") is None
    prompt = refusal_prompt("sw", "sw")
    assert "ISO 639 sw" in prompt
    assert NO_ANSWER["en"] in prompt
    assert "Thai (ISO 639 code th)" in refusal_prompt("th", "Thai")


class AnswerFakeEngine:
    """Fake: records the prompts it is asked and answers a fixed Swahili sentence."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    async def answer(self, prompt: str, max_tokens: int) -> str:
        self.prompts.append(prompt)
        return " Sijui: nyaraka ninazoweza kutafuta hazijibu swali hili. "


def test_the_model_says_it_only_where_no_sentence_exists() -> None:
    engine = AnswerFakeEngine()
    pipeline = RagPipeline(engine, rpc=None, identifier=None, settings=GenerationSettings())  # type: ignore[arg-type]
    assert asyncio.run(pipeline.refusal("th")) == NO_ANSWER["th"]
    assert engine.prompts == []
    said = asyncio.run(pipeline.refusal("sw"))
    assert said == "Sijui: nyaraka ninazoweza kutafuta hazijibu swali hili."
    assert len(engine.prompts) == 1
