"""Limits on free-form JSON (metadata, filters, JSON schemas) that crosses the services.

Valid JSON can still break what comes after it: an integer past 64 bits cannot be
encoded in msgpack (the RPC wire format) nor stored by SQLite, and nesting deep enough
overflows recursive code (``json.dumps``, SQLite's JSON functions, the JSON-schema
checker). ``check_json`` walks a value without recursion, in time linear in its size,
and names the first offending place.
"""

from __future__ import annotations

from typing import Any

from shared.errors import BabelError, ErrorCode

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
"""SQLite's integer range (signed 64 bits); msgpack's is a little wider."""


def check_json(value: Any, field: str, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` (a scalar is depth 0, ``{"a": 1}`` depth 1)
    and integers outside the signed 64-bit range; ``field`` prefixes the reported place."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, bool) or item is None or isinstance(item, float | str):
            continue
        if isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                raise BabelError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"integer {_short(item)} is outside the 64-bit range "
                    f"({INT_MIN}..{INT_MAX}); send it as a string",
                    field=where,
                )
            continue
        if depth >= max_depth:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"JSON nested more than {max_depth} levels deep",
                field=where,
            )
        if isinstance(item, dict):
            stack.extend((v, f"{where}.{k}", depth + 1) for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(item))


def _short(number: int) -> str:
    digits = str(number) if number.bit_length() < 4_000 else "a huge number"
    return digits if len(digits) <= 40 else f"{digits[:20]}…({len(digits)} digits)"
