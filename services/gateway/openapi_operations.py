"""The operations of an OpenAPI document, for the modules that amend it after Litestar
builds it (errors, constraints, API-key security)."""

from __future__ import annotations

from collections.abc import Iterator

from litestar.openapi.spec import OpenAPI, Operation

METHODS = ("get", "put", "post", "delete", "patch", "head")
"""The HTTP methods a path item may hold an operation for (OPTIONS is answered by Litestar)."""


def operations(openapi: OpenAPI) -> Iterator[tuple[str, str, Operation]]:
    """Every ``(path, method, operation)`` of ``openapi``, the method in lower case."""
    for path, item in (openapi.paths or {}).items():
        for method in METHODS:
            operation = getattr(item, method, None)
            if isinstance(operation, Operation):
                yield path, method, operation
