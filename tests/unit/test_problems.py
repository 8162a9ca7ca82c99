"""The one mapping from errors to problem-details responses."""

from __future__ import annotations

import msgspec
import pytest

from services.gateway.problems import STATUS_BY_CODE, _field_of, problem_response
from services.gateway.settings import GatewaySettings
from services.gateway.texts import texts_of
from shared.errors import BabelError, ErrorCode, ErrorInfo


def test_every_error_code_has_an_http_status() -> None:
    assert set(STATUS_BY_CODE) == set(ErrorCode)


@pytest.mark.parametrize(
    ("message", "cause", "field"),
    [
        ("Expected `int`, got `str`", "Expected `int`, got `str` - at `$.data.top_k`", "top_k"),
        (
            "Object missing required field `q`",
            "Object missing required field `q` - at `$.data`",
            "q",
        ),
        ("Object contains unknown field `zz`", "... - at `$.data`", "zz"),
        ("Expected `str`, got `int`", "Expected `str`, got `int` - at `$.data.q[2]`", "q[2]"),
        ("Object missing required field `id`", "... - at `$.data.docs[0]`", "docs[0].id"),
        ("something else", None, "body"),
    ],
)
def test_field_is_named_from_msgspec_errors(message: str, cause: str | None, field: str) -> None:
    assert _field_of(message, ValueError(cause) if cause else None) == field


def test_retryable_errors_carry_retry_after() -> None:
    info = ErrorInfo(code=ErrorCode.OVERLOADED, message="busy", retryable=True, retry_after_s=1.2)
    response = problem_response(info)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.media_type == "application/problem+json"
    body = msgspec.to_builtins(response.content)
    assert body["code"] == "overloaded"
    assert body["retryable"] is True


def test_texts_of_names_the_bad_item() -> None:
    settings = GatewaySettings(max_batch=3, max_text_chars=10)
    assert texts_of("hello", settings) == ("hello",)
    assert texts_of(["a", "b"], settings) == ("a", "b")
    with pytest.raises(BabelError) as empty:
        texts_of(["a", "  "], settings)
    assert empty.value.field == "q[1]"
    with pytest.raises(BabelError) as too_long:
        texts_of("x" * 11, settings)
    assert too_long.value.field == "q"
    with pytest.raises(BabelError) as too_many:
        texts_of(["a", "b", "c", "d"], settings)
    assert too_many.value.code == ErrorCode.INVALID_ARGUMENT
    with pytest.raises(BabelError):
        texts_of([], settings)
