"""Metadata filters → SQL over the documents' JSON metadata, with type checks."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.retrieval.settings import RetrievalSettings
from shared.errors import BabelError, ErrorCode
from shared.json_shape import check_json
from shared.messages.retrieval import Metadata, filter_terms

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_COMPARE = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_RANGE = {"$gt", "$gte", "$lt", "$lte"}
_SETS = {"$in": "IN", "$nin": "NOT IN"}


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


def check_scope(
    conditions: Metadata | None, languages: Sequence[str], settings: RetrievalSettings
) -> None:
    """A search's filter and languages stay within the settings' bounds: each value is one
    SQL parameter, and SQLite refuses statements past its variable limit."""
    if len(languages) > settings.max_search_languages:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"{len(languages)} languages; at most {settings.max_search_languages}",
            field="languages",
        )
    if conditions is not None:
        check_json(conditions, "filter", settings.max_json_depth)
        if (terms := filter_terms(conditions)) > settings.max_filter_terms:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"{terms} filter values; at most {settings.max_filter_terms}",
                field="filter",
            )


@dataclass(frozen=True, slots=True)
class SqlFilter:
    where: str
    params: tuple[Any, ...]


def _scalar(field: str, value: Any, known: set[str] | None, *, ordered: bool) -> Any:
    kind = json_type(value)
    where = f"filter.{field}"
    if kind in ("array", "object", "null"):
        raise BabelError(ErrorCode.INVALID_ARGUMENT, f"cannot compare with {kind}", field=where)
    if ordered and kind == "boolean":
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT, "range operators need a number or a string", field=where
        )
    if known and kind not in known:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"field {field!r} holds {'/'.join(sorted(known))} values; the filter gives {kind}",
            field=where,
        )
    return int(value) if kind == "boolean" else value


def build_filter(conditions: Mapping[str, Any], field_types: Mapping[str, set[str]]) -> SqlFilter:
    """``{"lang": "de", "year": {"$gte": 2020}}`` → SQL over ``d.metadata`` (all must hold)."""
    clauses: list[str] = []
    params: list[Any] = []
    for field, condition in conditions.items():
        if not _FIELD.fullmatch(field):
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT, f"bad metadata field name {field!r}", field="filter"
            )
        column = f"json_extract(d.metadata, '$.\"{field}\"')"
        known = field_types.get(field)
        operations = condition if isinstance(condition, dict) else {"$eq": condition}
        if not operations:
            raise BabelError(ErrorCode.INVALID_ARGUMENT, "empty condition", field=f"filter.{field}")
        for op, value in operations.items():
            if op in _COMPARE:
                clauses.append(f"{column} {_COMPARE[op]} ?")
                params.append(_scalar(field, value, known, ordered=op in _RANGE))
            elif op in _SETS:
                if not isinstance(value, list) or not value:
                    raise BabelError(
                        ErrorCode.INVALID_ARGUMENT,
                        f"{op} needs a non-empty list",
                        field=f"filter.{field}",
                    )
                marks = ",".join("?" * len(value))
                clauses.append(f"{column} {_SETS[op]} ({marks})")
                params.extend(_scalar(field, v, known, ordered=False) for v in value)
            else:
                raise BabelError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"unknown operator {op!r}; use {sorted([*_COMPARE, *_SETS])}",
                    field=f"filter.{field}",
                )
    return SqlFilter(where=" AND ".join(clauses) or "1", params=tuple(params))
