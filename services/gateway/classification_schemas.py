"""HTTP bodies of sentiment and custom classifiers (documented in OpenAPI)."""

from __future__ import annotations

import msgspec

from shared.messages.classifiers import LabelledExample
from shared.messages.sentiment import SentimentResult


class SentimentBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    q: str | list[str]
    """One text, or a list of texts."""
    sentences: bool = False
    """Also return the sentiment of each sentence."""


class SentimentReply(msgspec.Struct, frozen=True):
    results: list[SentimentResult]
    model: str


class CreateClassifierBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    examples: list[LabelledExample]
    """Labelled texts in any languages: at least two labels, a few examples each."""
    description: str = ""


class ClassifyBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    q: str | list[str]
    """One text, or a list of texts, in any language."""
