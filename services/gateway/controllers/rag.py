"""``POST /v1/rag/answer``: a grounded answer with numbered sources, plain or streamed (SSE).

Streamed events, each ``data: <json>``: ``{"type": "sources", ...}`` first, then
``{"type": "delta", "text": ...}`` pieces, then ``{"type": "done", "cited": [...], ...}``,
then ``data: [DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, post

from services.gateway.bounds import check_scope
from services.gateway.caller import ServiceCaller
from services.gateway.openai_schemas import MAX_TOKENS
from services.gateway.retrieval_schemas import Body
from services.gateway.settings import GatewaySettings
from services.gateway.sse import EventStream, sse_data, sse_done, sse_error
from shared.errors import BabelError
from shared.messages.generation import (
    RAG_ANSWER,
    RAG_STREAM,
    RagChunk,
    RagRequest,
    Sampling,
    Source,
)
from shared.messages.retrieval import Metadata


class RagBody(Body, frozen=True):
    question: str
    collection: str
    k: Annotated[int, msgspec.Meta(ge=1, le=20)] = 4
    filter: Metadata | None = None
    languages: list[str] = []
    model: str | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=MAX_TOKENS)] = 256
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] = 0.0
    stream: bool = False


class SourceOut(msgspec.Struct, frozen=True):
    number: int
    document_id: str
    chunk_index: int
    start: int
    end: int
    text: str
    language: str
    score: float
    metadata: Metadata


class RagUsage(msgspec.Struct, frozen=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RagAnswer(msgspec.Struct, frozen=True):
    answer: str
    language: str
    grounded: bool
    cited: list[int]
    sources: list[SourceOut]
    model: str
    finish_reason: str
    usage: RagUsage


def _source(source: Source) -> SourceOut:
    hit = source.hit
    return SourceOut(
        number=source.number,
        document_id=hit.document_id,
        chunk_index=hit.chunk_index,
        start=hit.start,
        end=hit.end,
        text=hit.text,
        language=hit.language,
        score=hit.score,
        metadata=hit.metadata,
    )


def _request(body: RagBody) -> RagRequest:
    return RagRequest(
        question=body.question,
        collection=body.collection,
        k=body.k,
        filters=body.filter,
        languages=tuple(body.languages) or None,
        model=body.model,
        sampling=Sampling(max_tokens=body.max_tokens, temperature=body.temperature),
    )


class RagController(Controller):
    path = "/v1/rag"
    tags = ["generation"]

    @post("/answer", status_code=200, summary="Answer a question from a collection, with sources")
    async def answer(
        self, data: RagBody, caller: ServiceCaller, settings: GatewaySettings
    ) -> RagAnswer | EventStream:
        check_scope(data.filter, data.languages, settings)
        request = _request(data)
        if data.stream:
            chunks = caller.stream(RAG_STREAM, request, timeout_s=settings.generation_timeout_s)
            first = await anext(aiter(chunks))
            return EventStream(_events(first, chunks))
        reply = await caller.call(RAG_ANSWER, request, timeout_s=settings.generation_timeout_s)
        return RagAnswer(
            answer=reply.answer,
            language=reply.language,
            grounded=reply.grounded,
            cited=list(reply.cited),
            sources=[_source(s) for s in reply.sources],
            model=reply.model,
            finish_reason=reply.finish_reason,
            usage=RagUsage(
                prompt_tokens=reply.usage.prompt_tokens,
                completion_tokens=reply.usage.completion_tokens,
                total_tokens=reply.usage.total_tokens,
            ),
        )


def _event(chunk: RagChunk) -> dict[str, Any] | None:
    if chunk.sources is not None:
        return {
            "type": "sources",
            "model": chunk.model,
            "language": chunk.language,
            "grounded": chunk.grounded,
            "sources": [msgspec.to_builtins(_source(s)) for s in chunk.sources],
        }
    if chunk.finish_reason is not None:
        usage = chunk.usage
        return {
            "type": "done",
            "text": chunk.text,
            "cited": list(chunk.cited or ()),
            "grounded": chunk.grounded,
            "finish_reason": chunk.finish_reason,
            "usage": None
            if usage is None
            else {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
        }
    if chunk.text:
        return {"type": "delta", "text": chunk.text}
    return None


async def _events(first: RagChunk, rest: AsyncIterator[RagChunk]) -> AsyncIterator[bytes]:
    try:
        event = _event(first)
        if event is not None:
            yield sse_data(event)
        async for chunk in rest:
            event = _event(chunk)
            if event is not None:
                yield sse_data(event)
    except BabelError as exc:
        yield sse_error(exc)
    yield sse_done()
