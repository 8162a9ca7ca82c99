"""Validation of the texts a request carries (``q``: one string or a list)."""

from __future__ import annotations

from services.gateway.settings import GatewaySettings
from shared.errors import BabelError, ErrorCode


def texts_of(q: str | list[str], settings: GatewaySettings, field: str = "q") -> tuple[str, ...]:
    """Normalise ``q`` to a tuple, naming the offending item in any error."""
    single = isinstance(q, str)
    texts = (q,) if isinstance(q, str) else tuple(q)
    if not texts:
        raise BabelError(ErrorCode.INVALID_ARGUMENT, "the list is empty", field=field)
    if len(texts) > settings.max_batch:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"{len(texts)} texts; at most {settings.max_batch} per request",
            field=field,
        )
    for i, text in enumerate(texts):
        where = field if single else f"{field}[{i}]"
        if not text.strip():
            raise BabelError(ErrorCode.INVALID_ARGUMENT, "text is empty", field=where)
        if len(text) > settings.max_text_chars:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"text has {len(text)} characters; at most {settings.max_text_chars}",
                field=where,
            )
    return texts
