"""What an API key is allowed: its scopes and limits, and the usage counted against it."""

from __future__ import annotations

import re
from typing import Final

import msgspec

from shared.errors import BabelError, ErrorCode

SCOPES: Final = (
    "search",
    "ingest",
    "generate",
    "translate",
    "analyze",
    "classifiers",
    "batch",
    "admin",
)
"""Every scope, one per route family (see ``services.gateway.access.scopes``)."""
ALL = "all"
"""Shorthand for every scope on the command line."""
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Matched in full (``fullmatch``): ``$`` would let a trailing newline through."""
BOOTSTRAP_NAME: Final = "bootstrap-admin"
"""The admin key from ``BABEL_ADMIN_KEY_HASH``/``_FILE``; no stored key may take its name."""

DEFAULT_RPM = 600
DEFAULT_CHARS_PER_MIN = 200_000
DEFAULT_STREAMS = 8


class KeyLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-key limits; 0 means no limit."""

    rpm: int = DEFAULT_RPM
    chars_per_min: int = DEFAULT_CHARS_PER_MIN
    streams: int = DEFAULT_STREAMS


class KeyUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Counted in Redis by every gateway, since the key was created."""

    requests: int = 0
    chars: int = 0
    throttled: int = 0
    """Requests refused with 429."""
    last_used_at: float | None = None
    active_streams: int = 0


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored key (without the key: only its digest's owner knows it)."""

    name: str
    scopes: tuple[str, ...]
    limits: KeyLimits
    created_at: float
    expires_at: float | None = None
    hint: str = ""
    usage: KeyUsage = KeyUsage()

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def check_name(name: str, field: str = "name") -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"key name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field=field,
        )
    if name == BOOTSTRAP_NAME:
        raise BabelError(ErrorCode.INVALID_ARGUMENT, f"{BOOTSTRAP_NAME!r} is reserved", field=field)
    return name


def parse_scopes(
    values: str | list[str] | tuple[str, ...], field: str = "scopes"
) -> tuple[str, ...]:
    """``"search,generate"`` or a list; ``all`` means every scope; unknown ones are refused."""
    items = values.split(",") if isinstance(values, str) else list(values)
    wanted = [item.strip() for item in items if item.strip()]
    if ALL in wanted:
        return SCOPES
    unknown = sorted(set(wanted) - set(SCOPES))
    if unknown:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown scope(s) {unknown}; known: {', '.join(SCOPES)} (or {ALL})",
            field=field,
        )
    if not wanted:
        raise BabelError(ErrorCode.INVALID_ARGUMENT, "give at least one scope", field=field)
    return tuple(scope for scope in SCOPES if scope in wanted)


DURATION_UNITS_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
MAX_DURATION_S: Final = 100 * 365 * 86_400
"""A key's lifetime: at most a century (a datetime past year 9999 cannot be written)."""
_DURATION = re.compile(r"([0-9]+)([smhdw]?)")
"""Matched in full: ASCII digits only (``float`` also read "nan", "inf", "1e3", "١٢")."""


def parse_duration(text: str, field: str = "expires") -> float:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w`` or plain seconds → seconds (1 s .. a century)."""
    found = _DURATION.fullmatch(text)
    value = int(found.group(1)) * DURATION_UNITS_S.get(found.group(2), 1) if found else 0
    if not 0 < value <= MAX_DURATION_S:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"{text!r} is not a duration like 90d, 12h, 30m or 3600 (at most {MAX_DURATION_S} s)",
            field=field,
        )
    return float(value)
