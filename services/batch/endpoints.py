"""The endpoints a batch may target: each one's request body and the gateway's own work.

A line's ``body`` is decoded into the very struct the synchronous endpoint accepts and run
by the very function its controller runs, so a batch line answers what the endpoint would.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from services.gateway.caller import Caller
from services.gateway.classification_schemas import ClassifyBody, SentimentBody
from services.gateway.controllers.chat import chat_completion, text_completion
from services.gateway.controllers.classifiers import predict_labels
from services.gateway.controllers.collections import ingest_documents
from services.gateway.controllers.embeddings import embed_texts
from services.gateway.controllers.languages import detect_languages
from services.gateway.controllers.sentiment import analyze_sentiment
from services.gateway.controllers.translate import translate_texts
from services.gateway.openai_schemas import ChatCompletionBody, CompletionBody
from services.gateway.retrieval_schemas import EmbeddingsBody, IngestBody
from services.gateway.schemas import DetectBody
from services.gateway.settings import GatewaySettings
from services.gateway.translation_schemas import TranslateBody
from shared.errors import BabelError, ErrorCode

Run = Callable[[Any, Caller, GatewaySettings, dict[str, str]], Awaitable[msgspec.Struct]]


@dataclass(frozen=True)
class Endpoint:
    pattern: str
    """The route, ``{name}`` for a path parameter."""
    body: type[msgspec.Struct]
    run: Run
    service: str
    """The service that does the work (its lines' concurrency and metrics label)."""

    def match(self, url: str) -> dict[str, str] | None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.pattern))
        found = re.fullmatch(regex, url)
        return found.groupdict() if found else None


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "/v1/chat/completions",
        ChatCompletionBody,
        lambda body, caller, settings, _: chat_completion(body, caller, settings),
        "generation",
    ),
    Endpoint(
        "/v1/completions",
        CompletionBody,
        lambda body, caller, settings, _: text_completion(body, caller, settings),
        "generation",
    ),
    Endpoint(
        "/v1/embeddings",
        EmbeddingsBody,
        lambda body, caller, settings, _: embed_texts(body, caller, settings),
        "retrieval",
    ),
    Endpoint(
        "/v1/translate",
        TranslateBody,
        lambda body, caller, settings, _: translate_texts(body, caller, settings),
        "tasks",
    ),
    Endpoint(
        "/v1/sentiment",
        SentimentBody,
        lambda body, caller, settings, _: analyze_sentiment(body, caller, settings),
        "tasks",
    ),
    Endpoint(
        "/v1/detect",
        DetectBody,
        lambda body, caller, settings, _: detect_languages(body, caller, settings),
        "tasks",
    ),
    Endpoint(
        "/v1/classifiers/{name}/predict",
        ClassifyBody,
        lambda body, caller, settings, p: predict_labels(p["name"], body, caller, settings),
        "tasks",
    ),
    Endpoint(
        "/v1/collections/{name}/documents",
        IngestBody,
        lambda body, caller, settings, p: ingest_documents(p["name"], body, caller, settings),
        "retrieval",
    ),
)

PATTERNS: tuple[str, ...] = tuple(e.pattern for e in ENDPOINTS)


def endpoint_of(url: str) -> tuple[Endpoint, dict[str, str]]:
    """The endpoint ``url`` names and its path parameters; 422 naming ``endpoint`` if none."""
    for endpoint in ENDPOINTS:
        params = endpoint.match(url)
        if params is not None:
            return endpoint, params
    raise BabelError(
        ErrorCode.INVALID_ARGUMENT,
        f"a batch cannot target {url!r}; it may target {', '.join(PATTERNS)}",
        field="endpoint",
    )


def decode_body(endpoint: Endpoint, body: dict[str, Any]) -> msgspec.Struct:
    """The line's body as the endpoint's request struct; ``BabelError`` naming the field."""
    try:
        decoded = msgspec.convert(body, endpoint.body)
    except msgspec.ValidationError as exc:
        message = str(exc)
        path = re.search(r"at `\$\.?([^`]*)`", message)
        field = "body" + ("." + path.group(1) if path and path.group(1) else "")
        raise BabelError(ErrorCode.INVALID_ARGUMENT, message, field=field) from exc
    if getattr(decoded, "stream", False):
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT, "a batch line cannot stream", field="body.stream"
        )
    return decoded
