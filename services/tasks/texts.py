"""The checks every tasks method applies to its list of input texts."""

from __future__ import annotations

from collections.abc import Sequence

from shared.errors import BabelError, ErrorCode


def check_texts(texts: Sequence[str], *, max_texts: int, max_text_chars: int) -> None:
    """At least one text, at most ``max_texts``, none blank, none over ``max_text_chars``."""
    if not texts:
        raise BabelError(ErrorCode.INVALID_ARGUMENT, "at least one text is needed", field="texts")
    if len(texts) > max_texts:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"{len(texts)} texts; at most {max_texts} per request",
            field="texts",
        )
    for i, text in enumerate(texts):
        if not text.strip():
            raise BabelError(ErrorCode.INVALID_ARGUMENT, "text is empty", field=f"texts[{i}]")
        if len(text) > max_text_chars:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"text has {len(text)} characters; at most {max_text_chars}",
                field=f"texts[{i}]",
            )
