"""How many characters a request costs against its key's per-minute quota: the texts it
sends in, and for generation the prompt plus ``max_tokens`` (the answer it may cost).

One table by request type, and one list of those that cost nothing (reads, deletes);
``tests/unit/test_access_tables.py`` fails for a request type in neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from shared.messages.base import Message
from shared.messages.classifiers import (
    ClassifierRef,
    CreateClassifier,
    ListClassifiers,
    PredictRequest,
)
from shared.messages.generation import (
    EngineStatsRequest,
    GenerateRequest,
    ModelsRequest,
    RagRequest,
    Sampling,
)
from shared.messages.langid import DetectRequest
from shared.messages.retrieval import (
    ChunksRequest,
    CollectionRef,
    CollectionSpec,
    DeleteDocuments,
    EmbedRequest,
    FileIngestRequest,
    IngestRequest,
    ListCollections,
    ListDocuments,
    SearchRequest,
)
from shared.messages.sentiment import SentimentRequest
from shared.messages.system import PingRequest
from shared.messages.translation import TranslateRequest, TranslationLanguagesRequest

UNBOUNDED_MAX_TOKENS: Final = 1024
"""What a generation request without ``max_tokens`` is counted for."""


def _texts(request: Any) -> int:
    return sum(len(text) for text in request.texts)


def _answer(sampling: Sampling) -> int:
    tokens = sampling.max_tokens if sampling.max_tokens is not None else UNBOUNDED_MAX_TOKENS
    return tokens * max(1, sampling.n)


def _generate(request: GenerateRequest) -> int:
    prompt = len(request.prompt or "") + sum(len(m.content) for m in request.messages or ())
    return prompt + _answer(request.sampling)


CHARGES: Final[dict[type[Message], Callable[[Any], int]]] = {
    DetectRequest: _texts,
    TranslateRequest: _texts,
    SentimentRequest: _texts,
    PredictRequest: _texts,
    EmbedRequest: _texts,
    SearchRequest: lambda r: len(r.query),
    IngestRequest: lambda r: sum(len(d.text) for d in r.documents),
    FileIngestRequest: lambda r: len(r.data),  # bytes: the text is not extracted yet
    CreateClassifier: lambda r: sum(len(e.text) for e in r.examples),
    GenerateRequest: _generate,
    RagRequest: lambda r: len(r.question) + _answer(r.sampling),
}

FREE: Final[frozenset[type[Message]]] = frozenset(
    {
        ClassifierRef,
        ListClassifiers,
        EngineStatsRequest,
        ModelsRequest,
        CollectionRef,
        CollectionSpec,
        DeleteDocuments,
        ListCollections,
        ListDocuments,
        ChunksRequest,
        PingRequest,
        TranslationLanguagesRequest,
    }
)
"""Requests that carry no text to work on: they count as requests, not characters."""


def chars_of(request: Message) -> int:
    charge = CHARGES.get(type(request))
    return charge(request) if charge is not None else 0
