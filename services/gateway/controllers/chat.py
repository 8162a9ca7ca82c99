"""OpenAI-compatible generation: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``.

Streaming answers are server-sent events (``data: {chunk}`` … ``data: [DONE]``). The first
chunk is awaited before the response starts, so a refused request still gets a
problem-details answer; a client that goes away mid-stream cancels the engine's request.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from litestar import Controller, get, post

from services.gateway.bounds import check_prompts
from services.gateway.caller import Caller, ServiceCaller
from services.gateway.openai_schemas import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionBody,
    ChatMessageBody,
    Completion,
    CompletionBody,
    ModelList,
    ModelOut,
    SamplingFields,
    TextChoice,
    UsageOut,
)
from services.gateway.settings import GatewaySettings
from services.gateway.sse import EventStream, sse_data, sse_done, sse_error
from shared.errors import BabelError, ErrorCode
from shared.json_shape import check_json
from shared.messages.generation import (
    GENERATE,
    GENERATE_STREAM,
    MODELS,
    ChatMessage,
    GenerateChunk,
    GenerateRequest,
    GenerateResponse,
    ModelsRequest,
    Sampling,
    Usage,
)


def _usage(usage: Usage) -> UsageOut:
    return UsageOut(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def _stop(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)


def _sampling(
    body: SamplingFields, max_tokens: int | None, json_schema: dict[str, Any] | None
) -> Sampling:
    return Sampling(
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=_stop(body.stop),
        seed=body.seed,
        n=body.n,
        json_schema=json_schema,
    )


def _content(message: ChatMessageBody) -> str:
    if isinstance(message.content, str):
        return message.content
    return "".join(part.text for part in message.content)


def _json_schema(body: ChatCompletionBody, max_depth: int) -> dict[str, Any] | None:
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "object"}
    if fmt.json_schema is None or not fmt.json_schema.schema:
        raise BabelError(
            ErrorCode.INVALID_SCHEMA,
            "response_format of type json_schema needs json_schema.schema",
            field="response_format.json_schema",
        )
    check_json(fmt.json_schema.schema, "response_format.json_schema.schema", max_depth)
    return fmt.json_schema.schema


def chat_request(body: ChatCompletionBody, max_json_depth: int) -> GenerateRequest:
    if not body.messages:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT, "messages must hold at least one message", field="messages"
        )
    messages = tuple(
        ChatMessage(role="system" if m.role == "developer" else m.role, content=_content(m))
        for m in body.messages
    )
    return GenerateRequest(
        model=body.model,
        messages=messages,
        sampling=_sampling(
            body, body.max_completion_tokens or body.max_tokens, _json_schema(body, max_json_depth)
        ),
    )


async def chat_completion(
    data: ChatCompletionBody, caller: Caller, settings: GatewaySettings
) -> ChatCompletion:
    """A whole (not streamed) chat completion."""
    request = chat_request(data, settings.max_json_depth)
    reply = await caller.call(GENERATE, request, timeout_s=settings.generation_timeout_s)
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=reply.model,
        choices=[
            ChatChoice(
                index=c.index,
                message=AssistantMessage(role="assistant", content=c.text),
                finish_reason=c.finish_reason,
            )
            for c in reply.choices
        ],
        usage=_usage(reply.usage),
    )


def _completion_requests(data: CompletionBody, settings: GatewaySettings) -> list[GenerateRequest]:
    prompts = [data.prompt] if isinstance(data.prompt, str) else data.prompt
    if not prompts or any(not p for p in prompts):
        raise BabelError(ErrorCode.INVALID_ARGUMENT, "prompt must not be empty", field="prompt")
    check_prompts(prompts, settings)
    sampling = _sampling(data, data.max_tokens if data.max_tokens is not None else 16, None)
    return [GenerateRequest(model=data.model, prompt=p, sampling=sampling) for p in prompts]


async def text_completion(
    data: CompletionBody, caller: Caller, settings: GatewaySettings
) -> Completion:
    """A whole (not streamed) text completion of one prompt or several."""
    requests = _completion_requests(data, settings)
    replies: list[GenerateResponse] = await asyncio.gather(
        *(caller.call(GENERATE, r, timeout_s=settings.generation_timeout_s) for r in requests)
    )
    choices = [
        TextChoice(index=i * data.n + c.index, text=c.text, finish_reason=c.finish_reason)
        for i, reply in enumerate(replies)
        for c in reply.choices
    ]
    return Completion(
        id=f"cmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=replies[0].model,
        choices=choices,
        usage=UsageOut(
            prompt_tokens=sum(r.usage.prompt_tokens for r in replies),
            completion_tokens=sum(r.usage.completion_tokens for r in replies),
            total_tokens=sum(r.usage.total_tokens for r in replies),
        ),
    )


class ChatController(Controller):
    path = "/v1"
    tags = ["generation"]

    @get("/models", summary="Models served by the generation service (OpenAI-compatible)")
    async def models(self, caller: ServiceCaller) -> ModelList:
        reply = await caller.call(MODELS, ModelsRequest())
        return ModelList(
            data=[
                ModelOut(
                    id=m.id, created=m.created, owned_by="babelstack", max_model_len=m.max_model_len
                )
                for m in reply.models
            ]
        )

    @post("/chat/completions", status_code=200, summary="Chat completion (OpenAI-compatible)")
    async def chat(
        self, data: ChatCompletionBody, caller: ServiceCaller, settings: GatewaySettings
    ) -> ChatCompletion | EventStream:
        if data.stream:
            request = chat_request(data, settings.max_json_depth)
            completion_id = f"chatcmpl-{uuid.uuid4().hex}"
            created = int(time.time())
            include_usage = bool(data.stream_options and data.stream_options.include_usage)
            chunks = caller.stream(
                GENERATE_STREAM, request, timeout_s=settings.generation_timeout_s
            )
            first = await anext(aiter(chunks))
            opening = [
                {
                    "index": index,
                    "delta": {"role": "assistant", "content": ""},
                    "finish_reason": None,
                    "logprobs": None,
                }
                for index in range(data.n)
            ]
            return EventStream(
                _events(
                    object_name="chat.completion.chunk",
                    completion_id=completion_id,
                    created=created,
                    include_usage=include_usage,
                    opening=opening,
                    choice=_chat_choice,
                    first=first,
                    rest=chunks,
                )
            )
        return await chat_completion(data, caller, settings)

    @post("/completions", status_code=200, summary="Text completion (OpenAI-compatible)")
    async def completions(
        self, data: CompletionBody, caller: ServiceCaller, settings: GatewaySettings
    ) -> Completion | EventStream:
        if data.stream:
            requests = _completion_requests(data, settings)
            completion_id = f"cmpl-{uuid.uuid4().hex}"
            created = int(time.time())
            if len(requests) > 1:
                raise BabelError(
                    ErrorCode.INVALID_ARGUMENT,
                    "streaming takes one prompt, not a list",
                    field="prompt",
                )
            include_usage = bool(data.stream_options and data.stream_options.include_usage)
            chunks = caller.stream(
                GENERATE_STREAM, requests[0], timeout_s=settings.generation_timeout_s
            )
            first = await anext(aiter(chunks))
            return EventStream(
                _events(
                    object_name="text_completion",
                    completion_id=completion_id,
                    created=created,
                    include_usage=include_usage,
                    opening=[],
                    choice=_text_choice,
                    first=first,
                    rest=chunks,
                )
            )
        return await text_completion(data, caller, settings)


async def _with_first(
    first: GenerateChunk, rest: AsyncIterator[GenerateChunk]
) -> AsyncIterator[GenerateChunk]:
    yield first
    async for chunk in rest:
        yield chunk


def _chat_choice(chunk: GenerateChunk) -> dict[str, Any]:
    return {
        "index": chunk.index,
        "delta": {"content": chunk.text} if chunk.text else {},
        "finish_reason": chunk.finish_reason,
        "logprobs": None,
    }


def _text_choice(chunk: GenerateChunk) -> dict[str, Any]:
    return {
        "index": chunk.index,
        "text": chunk.text,
        "finish_reason": chunk.finish_reason,
        "logprobs": None,
    }


async def _events(
    *,
    object_name: str,
    completion_id: str,
    created: int,
    include_usage: bool,
    opening: list[dict[str, Any]],
    choice: Callable[[GenerateChunk], dict[str, Any]],
    first: GenerateChunk,
    rest: AsyncIterator[GenerateChunk],
) -> AsyncIterator[bytes]:
    """OpenAI's stream: ``opening`` choices, one event per delta, usage if asked, [DONE]."""

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return sse_data(
            {
                "id": completion_id,
                "object": object_name,
                "created": created,
                "model": first.model,
                "choices": choices,
                **extra,
            }
        )

    for opened in opening:
        yield event([opened])
    try:
        async for chunk in _with_first(first, rest):
            if chunk.usage is None:
                yield event([choice(chunk)])
            elif include_usage:
                yield event([], usage=msgspec.to_builtins(_usage(chunk.usage)))
    except BabelError as exc:
        yield sse_error(exc)
    yield sse_done()
