"""Translation payloads (served by the tasks service)."""

from __future__ import annotations

from typing import Literal

from shared.messages.base import Message, Method

TextFormat = Literal["text", "html"]
AUTO = "auto"


class TranslateRequest(Message, frozen=True, kw_only=True):
    texts: tuple[str, ...]
    target: str
    source: str = AUTO
    """A language code, or ``"auto"``: each text's language is identified first."""
    format: TextFormat = "text"
    """``html``: only text nodes are translated; tags, attributes, scripts and styles stay."""
    alternatives: int = 0
    """Extra candidate translations per text (plain text only)."""


class Translation(Message, frozen=True, kw_only=True):
    text: str
    source: str
    """The source language used: the request's, or the one identified."""
    confidence: float | None = None
    """Confidence (0..1) of the identified source language; ``None`` when it was given."""
    alternatives: tuple[str, ...] = ()


class TranslateResponse(Message, frozen=True, kw_only=True):
    translations: tuple[Translation, ...]
    backend: str
    """``llm`` or ``seq2seq``."""
    model: str


class TranslationLanguagesRequest(Message, frozen=True, kw_only=True):
    pass


class TranslationLanguage(Message, frozen=True, kw_only=True):
    code: str
    name: str
    """English name."""
    targets: tuple[str, ...]
    """Codes this language can be translated into."""


class TranslationLanguagesResponse(Message, frozen=True, kw_only=True):
    languages: tuple[TranslationLanguage, ...]
    backend: str
    model: str


TRANSLATE: Method[TranslateRequest, TranslateResponse] = Method(
    "tasks", "translate", TranslateRequest, TranslateResponse
)
TRANSLATION_LANGUAGES: Method[TranslationLanguagesRequest, TranslationLanguagesResponse] = Method(
    "tasks", "translation_languages", TranslationLanguagesRequest, TranslationLanguagesResponse
)
