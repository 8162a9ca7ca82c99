"""HTTP bodies of the OpenAI-compatible generation API (chat, completions, models).

Field names and shapes follow OpenAI's API so its clients work unchanged. Options that
BabelStack does not implement are refused when set to anything but their neutral value.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from services.gateway.retrieval_schemas import Body

Stop = str | list[str] | None
MAX_TOKENS = 2**31 - 1
"""Past any model's context; the service answers 400 with the real limit."""
SEED = msgspec.Meta(ge=-(2**63), le=2**63 - 1)


class TextPart(Body, frozen=True):
    type: Literal["text"]
    text: str


class ChatMessageBody(Body, frozen=True):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None


class JsonSchemaSpec(Body, frozen=True):
    name: str
    schema: dict[str, Any] = {}
    description: str | None = None
    strict: bool | None = None


class ResponseFormat(Body, frozen=True):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class StreamOptions(Body, frozen=True):
    include_usage: bool = False


class SamplingFields(Body, frozen=True):
    """What chat and completions requests share."""

    model: str | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=MAX_TOKENS)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] = 1.0
    top_p: Annotated[float, msgspec.Meta(gt=0, le=1)] = 1.0
    n: Annotated[int, msgspec.Meta(ge=1, le=8)] = 1
    stop: Stop = None
    seed: Annotated[int, SEED] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    presence_penalty: Annotated[float, msgspec.Meta(ge=0, le=0)] = 0.0
    """Not implemented: only 0 is accepted."""
    frequency_penalty: Annotated[float, msgspec.Meta(ge=0, le=0)] = 0.0
    """Not implemented: only 0 is accepted."""


class ChatCompletionBody(SamplingFields, frozen=True):
    messages: list[ChatMessageBody] = []
    max_completion_tokens: Annotated[int, msgspec.Meta(ge=1, le=MAX_TOKENS)] | None = None
    """OpenAI's newer name for ``max_tokens``."""
    response_format: ResponseFormat | None = None


class CompletionBody(SamplingFields, frozen=True):
    prompt: str | list[str] = ""
    echo: Literal[False] = False
    """Not implemented: only false is accepted."""


# ---------------------------------------------------------------- responses
class UsageOut(msgspec.Struct, frozen=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(msgspec.Struct, frozen=True):
    role: Literal["assistant"]
    content: str


class ChatChoice(msgspec.Struct, frozen=True):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(msgspec.Struct, frozen=True):
    id: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageOut
    object: Literal["chat.completion"] = "chat.completion"


class TextChoice(msgspec.Struct, frozen=True):
    index: int
    text: str
    finish_reason: str
    logprobs: None = None


class Completion(msgspec.Struct, frozen=True):
    id: str
    created: int
    model: str
    choices: list[TextChoice]
    usage: UsageOut
    object: Literal["text_completion"] = "text_completion"


class ModelOut(msgspec.Struct, frozen=True):
    id: str
    created: int
    owned_by: str
    max_model_len: int
    object: Literal["model"] = "model"


class ModelList(msgspec.Struct, frozen=True):
    data: list[ModelOut]
    object: Literal["list"] = "list"
