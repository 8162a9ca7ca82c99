"""Bounds on what one request may ask for, checked before any RPC: each a setting, each
refused with a 422 that names the field (and stated in the OpenAPI document by
``openapi_bounds``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.gateway.settings import GatewaySettings
from shared.errors import BabelError, ErrorCode
from shared.json_shape import check_json
from shared.messages.retrieval import filter_terms


def _too_many(field: str, count: int, limit: int, what: str) -> BabelError:
    return BabelError(
        ErrorCode.INVALID_ARGUMENT, f"{count} {what}; at most {limit} per request", field=field
    )


def check_prompts(prompts: Sequence[str], settings: GatewaySettings) -> None:
    if len(prompts) > settings.max_prompts:
        raise _too_many("prompt", len(prompts), settings.max_prompts, "prompts")


def check_metadata(
    metadata: Mapping[str, Any] | None, field: str, settings: GatewaySettings
) -> None:
    if metadata is not None:
        check_json(metadata, field, settings.max_json_depth)


def check_scope(
    conditions: dict[str, Any] | None, languages: Sequence[str], settings: GatewaySettings
) -> None:
    """A search's (or RAG question's) filter and languages."""
    if len(languages) > settings.max_search_languages:
        raise _too_many("languages", len(languages), settings.max_search_languages, "languages")
    if conditions is not None:
        check_json(conditions, "filter", settings.max_json_depth)
        terms = filter_terms(conditions)
        if terms > settings.max_filter_terms:
            raise _too_many("filter", terms, settings.max_filter_terms, "filter values")


def check_chunking(max_chars: int | None, overlap: int | None, settings: GatewaySettings) -> None:
    low, high = settings.chunk_min_chars, settings.chunk_max_chars
    if max_chars is not None and not low <= max_chars <= high:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"max_chars must be {low}..{high}, got {max_chars}",
            field="chunking.max_chars",
        )
    if overlap is not None:
        base = max_chars if max_chars is not None else high  # the service checks the default
        most = int(base * settings.chunk_max_overlap_fraction)
        if not 0 <= overlap <= most:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"overlap_chars must be 0..{most} "
                f"({settings.chunk_max_overlap_fraction:g} of max_chars), got {overlap}",
                field="chunking.overlap_chars",
            )
