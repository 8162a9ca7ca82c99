"""The one error type of BabelStack.

Every failure that crosses a process boundary is a :class:`BabelError`. On the wire it
travels as an :class:`ErrorInfo` struct; the gateway maps its ``code`` to an HTTP
problem-details response in one place (``services.gateway.problems``).
"""

from __future__ import annotations

import enum

import msgspec


class ErrorCode(enum.StrEnum):
    INVALID_JSON = "invalid_json"
    INVALID_ARGUMENT = "invalid_argument"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    RATE_LIMITED = "rate_limited"
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
    INVALID_SCHEMA = "invalid_schema"
    UNSUPPORTED_LANGUAGE = "unsupported_language"
    NOT_ENOUGH_EXAMPLES = "not_enough_examples"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_METHOD = "unknown_method"
    OVERLOADED = "overloaded"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    DEAD_LETTERED = "dead_lettered"
    INTERNAL = "internal"


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Wire form of an error: what went wrong, where, and whether to try again."""

    code: ErrorCode
    message: str
    field: str | None = None
    retryable: bool = False
    retry_after_s: float | None = None


class BabelError(Exception):
    """The single exception type raised for any expected failure."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        field: str | None = None,
        retryable: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.info = ErrorInfo(
            code=code,
            message=message,
            field=field,
            retryable=retryable,
            retry_after_s=retry_after_s,
        )

    @property
    def code(self) -> ErrorCode:
        return self.info.code

    @property
    def field(self) -> str | None:
        return self.info.field

    @classmethod
    def from_info(cls, info: ErrorInfo) -> BabelError:
        return cls(
            info.code,
            info.message,
            field=info.field,
            retryable=info.retryable,
            retry_after_s=info.retry_after_s,
        )

    @classmethod
    def from_exception(cls, exc: BaseException) -> BabelError:
        """Map any exception to the one error type (unexpected ones become ``internal``)."""
        if isinstance(exc, BabelError):
            return exc
        return cls(ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}", retryable=False)

    def __repr__(self) -> str:
        return f"BabelError({self.info.code.value!r}, {str(self)!r}, field={self.info.field!r})"
