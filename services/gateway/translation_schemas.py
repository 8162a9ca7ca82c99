"""HTTP bodies of translation: the native ``/v1/translate`` and LibreTranslate's shapes."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from shared.messages.translation import Translation, TranslationLanguage

MAX_ALTERNATIVES = 3
"""Alternatives per text: the translation service's default limit (BABEL_TRANSLATION_MAX_
ALTERNATIVES), checked here too so that the document states it."""


class TranslateBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    texts: str | list[str]
    """One text, or a list of texts."""
    target: str
    source: str = "auto"
    """A language code, or ``auto`` (each text's language is identified)."""
    format: Literal["text", "html"] = "text"
    alternatives: Annotated[int, msgspec.Meta(ge=0, le=MAX_ALTERNATIVES)] = 0


class TranslateResult(msgspec.Struct, frozen=True):
    translations: list[Translation]
    backend: str
    model: str


class TranslationLanguagesResult(msgspec.Struct, frozen=True):
    languages: list[TranslationLanguage]
    backend: str
    model: str


# ---------------------------------------------------------------- LibreTranslate


class LtDetected(msgspec.Struct, frozen=True):
    confidence: float
    """0..100, as LibreTranslate reports it."""
    language: str


class LtTranslateResult(msgspec.Struct, frozen=True, omit_defaults=True):
    translatedText: str | list[str]
    detectedLanguage: LtDetected | list[LtDetected] | None = None
    alternatives: list[str | list[str]] | None = None
    """One list of alternatives per text for a list `q`, a flat list for a single `q`."""


class LtLanguage(msgspec.Struct, frozen=True):
    code: str
    name: str
    targets: list[str]
