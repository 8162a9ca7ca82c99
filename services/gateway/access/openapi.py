"""The API keys in the OpenAPI document: two security schemes, and on every operation the
key it needs (its scope) with the 401/403/429 answers (400/403/429 on LibreTranslate's)."""

from __future__ import annotations

import re

from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
    SecurityScheme,
)

from services.gateway.access.scopes import required_scope, speaks_libretranslate
from services.gateway.openapi_operations import operations
from services.gateway.problems import PROBLEM_MEDIA_TYPE

PROBLEM_SCHEMA = "Problem"
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKeyHeader": []}]
_PARAMETER = re.compile(r"\{[^}]+\}")


def _string(description: str) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description)


def _problem_schema() -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        description="RFC 9457 problem details (LibreTranslate routes add `error`).",
        required=["type", "title", "status", "detail", "code"],
        properties={
            "type": _string("URI of the problem type"),
            "title": _string("short summary"),
            "status": Schema(type=OpenAPIType.INTEGER),
            "detail": _string("what went wrong"),
            "code": _string("machine-readable code, e.g. unauthenticated, rate_limited"),
            "retryable": Schema(type=OpenAPIType.BOOLEAN),
            "field": _string("the offending field"),
            "request_id": _string("also in X-Request-ID"),
            "error": _string("the detail again (LibreTranslate routes only)"),
        },
    )


def _answer(
    description: str, headers: dict[str, OpenAPIHeader | Reference] | None = None
) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        headers=headers,
        content={
            PROBLEM_MEDIA_TYPE: OpenAPIMediaType(
                schema=Reference(ref=f"#/components/schemas/{PROBLEM_SCHEMA}")
            )
        },
    )


_LIMIT_HEADERS: dict[str, OpenAPIHeader | Reference] = {
    "Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), description="seconds"),
    "RateLimit-Policy": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING),
        description='the key\'s quotas, e.g. "requests";q=600;w=60, "chars";q=200000;w=60',
    ),
    "RateLimit": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING),
        description='what is left, e.g. "requests";r=0;t=1',
    ),
}


def _document(operation: Operation, scope: str, compat: bool) -> None:
    operation.security = list(SECURITY)
    note = f"Needs an API key with the scope `{scope}` when keys are required (`BABEL_AUTH`)."
    if compat:
        note += " The key may also come as the `api_key` field (query, JSON, form or multipart)."
    operation.description = f"{operation.description}\n\n{note}" if operation.description else note
    responses = operation.responses if operation.responses is not None else {}
    too_many = _answer(
        "Over the key's requests or characters a minute, or its concurrent streams",
        _LIMIT_HEADERS,
    )
    if compat:
        existing = responses.get("400")
        if isinstance(existing, OpenAPIResponse):
            existing.description += "; also: no API key (LibreTranslate's code for it)"
        else:
            responses["400"] = _answer("No API key (LibreTranslate's code for it)")
        responses["403"] = _answer("Unknown, revoked or expired key, or one without the scope")
    else:
        responses["401"] = _answer("No API key, or an unknown, revoked or expired one")
        responses["403"] = _answer(f"The key lacks the scope `{scope}`")
    responses["429"] = too_many
    operation.responses = responses


def document_access(openapi: OpenAPI) -> None:
    """Add the schemes, and each operation's key requirement and answers, to ``openapi``."""
    components = openapi.components if isinstance(openapi.components, Components) else None
    if components is None:
        return
    components.schemas[PROBLEM_SCHEMA] = _problem_schema()
    components.security_schemes = {
        **(components.security_schemes or {}),
        "bearer": SecurityScheme(
            type="http", scheme="bearer", description="Authorization: Bearer <API key>"
        ),
        "apiKeyHeader": SecurityScheme(
            type="apiKey", name="X-API-Key", security_scheme_in="header", description="API key"
        ),
    }
    for path, method, operation in operations(openapi):
        concrete = _PARAMETER.sub("x", path)
        scope = required_scope(method.upper(), concrete)
        if scope is not None:
            _document(operation, scope, speaks_libretranslate(concrete))
