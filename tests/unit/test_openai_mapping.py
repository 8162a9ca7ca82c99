"""OpenAI-shaped chat bodies turned into generation requests (no service)."""

from __future__ import annotations

import msgspec
import pytest

from services.gateway.controllers.chat import chat_request as map_chat
from services.gateway.openai_schemas import ChatCompletionBody
from shared.errors import BabelError, ErrorCode
from shared.messages.generation import GenerateRequest


def body(**fields: object) -> ChatCompletionBody:
    return msgspec.convert(fields, ChatCompletionBody)


def chat_request(data: ChatCompletionBody) -> GenerateRequest:
    return map_chat(data, max_json_depth=32)


def test_roles_content_parts_and_sampling_map_across() -> None:
    request = chat_request(
        body(
            model="m",
            messages=[
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
                },
            ],
            max_tokens=5,
            max_completion_tokens=9,
            stop="END",
            seed=3,
            temperature=0.5,
        )
    )
    assert request.model == "m"
    assert request.messages is not None
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "Be brief."),
        ("user", "Hi there"),
    ]
    assert request.sampling.max_tokens == 9, "max_completion_tokens wins over max_tokens"
    assert request.sampling.stop == ("END",)
    assert request.sampling.seed == 3
    assert request.sampling.temperature == 0.5


def test_response_formats() -> None:
    user = [{"role": "user", "content": "x"}]
    assert chat_request(body(messages=user)).sampling.json_schema is None
    as_object = chat_request(body(messages=user, response_format={"type": "json_object"}))
    assert as_object.sampling.json_schema == {"type": "object"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    as_schema = chat_request(
        body(
            messages=user,
            response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
        )
    )
    assert as_schema.sampling.json_schema == schema
    with pytest.raises(BabelError) as caught:
        chat_request(
            body(
                messages=user, response_format={"type": "json_schema", "json_schema": {"name": "s"}}
            )
        )
    assert caught.value.code == ErrorCode.INVALID_SCHEMA


def test_empty_messages_are_refused() -> None:
    with pytest.raises(BabelError) as caught:
        chat_request(body(messages=[]))
    assert caught.value.field == "messages"


def test_unsupported_options_are_refused_by_the_schema() -> None:
    with pytest.raises(msgspec.ValidationError):
        body(messages=[{"role": "user", "content": "x"}], presence_penalty=0.5)
    with pytest.raises(msgspec.ValidationError):
        body(messages=[{"role": "tool", "content": "x"}])


def test_a_json_schema_nested_too_deep_is_refused_before_any_service() -> None:
    schema: dict[str, object] = {"type": "array"}
    inner = schema
    for _ in range(40):
        inner["items"] = {"type": "array"}
        inner = inner["items"]  # type: ignore[assignment]
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    with pytest.raises(BabelError) as caught:
        chat_request(body(messages=[{"role": "user", "content": "x"}], response_format=fmt))
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    assert caught.value.field is not None
    assert caught.value.field.startswith("response_format.json_schema.schema.items")
    assert "nested more than 32 levels" in str(caught.value)
