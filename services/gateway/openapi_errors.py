"""Every error status each operation answers, in the OpenAPI document, from one table.

Rules give most of them: an operation with parameters or a body answers 422 for an invalid
one (the problem names the field); a JSON body also 400 (not JSON) and any body 413 (over
the size limit); a path parameter 404 (no such resource). ``_EXTRA`` adds what an
operation's own logic answers: 409 when a name is taken, 400 for the codes listed in
``_BAD_REQUEST``, 502/503/504 when it calls a service over Redis. Every error body is the
one ``Problem`` schema, as ``application/problem+json``; streamed answers (``stream: true``)
are documented as ``text/event-stream`` beside the JSON.
"""

from __future__ import annotations

import re

from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)

from services.gateway.access.openapi import PROBLEM_SCHEMA
from services.gateway.access.scopes import speaks_libretranslate
from services.gateway.openapi_operations import operations
from services.gateway.problems import PROBLEM_MEDIA_TYPE

_PATH_PARAMETER = re.compile(r"\{[^}]+\}")
_SSE = "text/event-stream"
_LITESTAR_400 = "Bad request syntax or unsupported method"

_RETRY_AFTER: dict[str, OpenAPIHeader | Reference] = {
    "Retry-After": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.INTEGER), description="seconds to wait before a retry"
    )
}

_DESCRIPTIONS = {
    400: "The body is not valid JSON",
    404: "No such resource (the problem names it): a collection, a model that is not served, "
    "the file an earlier call with this Idempotency-Key made and that was deleted since",
    409: "The name is taken",
    413: "The request body is larger than the configured limit",
    422: "A field or parameter is missing or invalid (the problem names it)",
    502: "The request failed its worker repeatedly and was set aside (dead-lettered)",
    503: "The service has no live worker or its queue is full (see Retry-After)",
    504: "The service did not answer within the request's deadline",
}

_BAD_REQUEST = {
    "context_length_exceeded": "the prompt and max_tokens do not fit the model's context",
    "invalid_schema": "the response_format JSON schema cannot be enforced",
    "unsupported_language": "the translation backend does not offer the language pair",
    "not_enough_examples": "too few labels or examples to train a classifier",
}

_SERVICE = (502, 503, 504)
_EXTRA: dict[tuple[str, str], tuple[int | str, ...]] = {
    ("GET", "/readyz"): (503,),
    ("POST", "/v1/detect"): _SERVICE,
    ("GET", "/v1/services/{name}/ping"): _SERVICE,
    ("POST", "/v1/collections"): (*_SERVICE, 404, 409),
    ("GET", "/v1/collections"): _SERVICE,
    ("GET", "/v1/collections/{name}"): _SERVICE,
    ("DELETE", "/v1/collections/{name}"): _SERVICE,
    ("GET", "/v1/collections/{name}/chunks"): _SERVICE,
    ("GET", "/v1/collections/{name}/documents"): _SERVICE,
    ("POST", "/v1/collections/{name}/documents"): _SERVICE,
    ("DELETE", "/v1/collections/{name}/documents/{document_id}"): _SERVICE,
    ("POST", "/v1/collections/{name}/documents/delete"): _SERVICE,
    ("POST", "/v1/collections/{name}/search"): _SERVICE,
    ("POST", "/v1/collections/{name}/files"): _SERVICE,
    ("POST", "/v1/embeddings"): (*_SERVICE, 404),
    ("GET", "/v1/translate/languages"): _SERVICE,
    ("POST", "/v1/translate"): (*_SERVICE, "unsupported_language", "context_length_exceeded"),
    ("POST", "/detect"): _SERVICE,
    ("GET", "/languages"): _SERVICE,
    ("POST", "/translate"): (*_SERVICE, "unsupported_language", "context_length_exceeded"),
    ("POST", "/v1/chat/completions"): (*_SERVICE, 404, "context_length_exceeded", "invalid_schema"),
    ("POST", "/v1/completions"): (*_SERVICE, 404, "context_length_exceeded"),
    ("GET", "/v1/models"): _SERVICE,
    ("POST", "/v1/sentiment"): _SERVICE,
    ("GET", "/v1/classifiers"): _SERVICE,
    ("POST", "/v1/classifiers"): (*_SERVICE, 409, "not_enough_examples"),
    ("GET", "/v1/classifiers/{name}"): _SERVICE,
    ("DELETE", "/v1/classifiers/{name}"): _SERVICE,
    ("POST", "/v1/classifiers/{name}/predict"): _SERVICE,
    ("POST", "/v1/rag/answer"): (*_SERVICE, 404, "context_length_exceeded"),
    ("POST", "/v1/keys"): (409,),
    ("POST", "/v1/files"): (404,),
    ("POST", "/v1/batches"): (503,),
    ("POST", "/v1/batches/{batch_id}/cancel"): (503,),
}
"""What an operation answers beyond the rules: a status, or a 400 problem code."""

_STREAMED = {"/v1/chat/completions", "/v1/completions", "/v1/rag/answer"}


def _problem(description: str, retry_after: bool = False) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        headers=_RETRY_AFTER if retry_after else None,
        content={
            PROBLEM_MEDIA_TYPE: OpenAPIMediaType(
                schema=Reference(ref=f"#/components/schemas/{PROBLEM_SCHEMA}")
            )
        },
    )


def _statuses(method: str, path: str, operation: Operation) -> dict[int, str]:
    """Each error status of the operation, with its description."""
    body = operation.request_body if isinstance(operation.request_body, RequestBody) else None
    found: dict[int, str] = {}
    if operation.parameters or body is not None:
        found[422] = _DESCRIPTIONS[422]
    if body is not None:
        found[413] = _DESCRIPTIONS[413]
        if "application/json" in (body.content or {}):
            found[400] = _DESCRIPTIONS[400]
    if _PATH_PARAMETER.search(path):
        found[404] = _DESCRIPTIONS[404]
    codes = []
    for extra in _EXTRA.get((method, path), ()):
        if isinstance(extra, str):
            codes.append(extra)
        else:
            found[extra] = _DESCRIPTIONS[extra]
    if speaks_libretranslate(path) and 422 in found:  # LibreTranslate's code for bad input
        invalid = found.pop(422)
        found[400] = (
            f"{found[400]}; or {invalid[0].lower()}{invalid[1:]}" if 400 in found else invalid
        )
    if codes:
        reasons = "; ".join(f"`{code}`: {_BAD_REQUEST[code]}" for code in codes)
        found[400] = f"{found[400]}; or {reasons}" if 400 in found else reasons.capitalize()
    return found


def _merge(existing: OpenAPIResponse | Reference | None, status: int, text: str) -> OpenAPIResponse:
    """The problem answer, keeping what the route (or ``access.openapi``) said about it."""
    known = existing.description if isinstance(existing, OpenAPIResponse) else ""
    if known and known != _LITESTAR_400 and known not in text:
        text = f"{text}; {known}"
    return _problem(text, retry_after=status == 503)


def _problems_everywhere(operation: Operation) -> None:
    """Every 4xx/5xx answer of ``operation`` is a problem (Litestar's own 400 is not)."""
    for status, response in (operation.responses or {}).items():
        if status[0] in "45" and isinstance(response, OpenAPIResponse):
            response.content = _problem(response.description).content


def _document_streams(operation: Operation) -> None:
    """JSON, or with ``stream: true`` server-sent events (the handler's union with the event
    stream's response is not a JSON alternative: it is dropped from the JSON schema)."""
    ok = (operation.responses or {}).get("200")
    if isinstance(ok, OpenAPIResponse) and ok.content is not None:
        for media in ok.content.values():
            schema = media.schema
            if isinstance(schema, Schema) and schema.one_of:
                kept = [s for s in schema.one_of if not (isinstance(s, Schema) and s == Schema())]
                if len(kept) == 1:
                    media.schema = kept[0]
        text = Schema(type=OpenAPIType.STRING)
        ok.content[_SSE] = OpenAPIMediaType(
            schema=Schema(
                type=OpenAPIType.OBJECT,
                description='With "stream": true: server-sent events, each `data: {json}` '
                "(the chunk), the last `data: [DONE]`.",
                required=["data"],
                properties={"data": text, "event": text, "id": text, "retry": text},
            )
        )


def document_errors(openapi: OpenAPI) -> None:
    """Add every operation's error answers (problem details) to ``openapi``."""
    for path, method, operation in operations(openapi):
        responses = operation.responses if operation.responses is not None else {}
        for status, text in _statuses(method.upper(), path, operation).items():
            responses[str(status)] = _merge(responses.get(str(status)), status, text)
        operation.responses = responses
        _problems_everywhere(operation)
        if path in _STREAMED:
            _document_streams(operation)
