"""RPC handlers of the generation service: chat/completion (plain and streamed), models, stats."""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.generation.engine import LlmEngine
from services.generation.rag import RagPipeline
from services.generation.sampling import check_sampling
from services.generation.settings import GenerationSettings
from shared.errors import BabelError, ErrorCode
from shared.messages.generation import (
    ENGINE_STATS,
    GENERATE,
    GENERATE_STREAM,
    MODELS,
    RAG_ANSWER,
    RAG_STREAM,
    Choice,
    EngineStats,
    EngineStatsRequest,
    FinishReason,
    GenerateChunk,
    GenerateRequest,
    GenerateResponse,
    ModelCard,
    ModelsRequest,
    ModelsResponse,
    RagChunk,
    RagRequest,
    RagResponse,
    Usage,
)
from shared.rpc.handlers import HandlerRegistry, RequestContext


class GenerationHandlers:
    def __init__(self, engine: LlmEngine, settings: GenerationSettings) -> None:
        self._engine = engine
        self._settings = settings

    def register(self, registry: HandlerRegistry) -> None:
        registry.add_unary(GENERATE, self.generate)
        registry.add_stream(GENERATE_STREAM, self.generate_stream)
        registry.add_unary(MODELS, self.models)
        registry.add_unary(ENGINE_STATS, self.stats)

    # ------------------------------------------------------------------ checks
    def check_model(self, model: str | None) -> str:
        served = self._engine.served_name
        if model is not None and model != served:
            raise BabelError(
                ErrorCode.NOT_FOUND,
                f"model {model!r} is not served here; served models: [{served!r}]",
                field="model",
            )
        return served

    def prompt_ids(self, request: GenerateRequest) -> list[int]:
        if (request.messages is None) == (request.prompt is None):
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT, "give either messages or prompt", field="messages"
            )
        if request.messages is not None:
            if not request.messages:
                raise BabelError(
                    ErrorCode.INVALID_ARGUMENT, "messages must not be empty", field="messages"
                )
            chars = sum(len(m.content) for m in request.messages)
            field = "messages"
        else:
            assert request.prompt is not None
            if not request.prompt:
                raise BabelError(ErrorCode.INVALID_ARGUMENT, "prompt is empty", field="prompt")
            chars = len(request.prompt)
            field = "prompt"
        if chars > self._settings.max_prompt_chars:
            raise BabelError(
                ErrorCode.CONTEXT_LENGTH_EXCEEDED,
                f"the prompt has {chars} characters; at most {self._settings.max_prompt_chars}",
                field=field,
            )
        if request.messages is not None:
            return self._engine.encode_chat(request.messages)
        assert request.prompt is not None
        return self._engine.encode_text(request.prompt)

    # ------------------------------------------------------------------ methods
    async def generate(self, request: GenerateRequest, context: RequestContext) -> GenerateResponse:
        model = self.check_model(request.model)
        ids = self.prompt_ids(request)
        sampling = check_sampling(
            request.sampling, prompt_tokens=len(ids), max_model_len=self._engine.max_model_len
        )
        texts: dict[int, list[str]] = {i: [] for i in range(sampling.n)}
        reasons: dict[int, FinishReason] = {}
        completion_tokens = 0
        async for delta in self._engine.stream(ids, sampling, context.call_id):
            texts[delta.index].append(delta.text)
            completion_tokens += delta.tokens
            if delta.finish_reason is not None:
                reasons[delta.index] = delta.finish_reason
        return GenerateResponse(
            model=model,
            choices=tuple(
                Choice(index=i, text="".join(parts), finish_reason=reasons.get(i, "stop"))
                for i, parts in sorted(texts.items())
            ),
            usage=Usage(prompt_tokens=len(ids), completion_tokens=completion_tokens),
        )

    async def generate_stream(
        self, request: GenerateRequest, context: RequestContext
    ) -> AsyncIterator[GenerateChunk]:
        model = self.check_model(request.model)
        ids = self.prompt_ids(request)
        sampling = check_sampling(
            request.sampling, prompt_tokens=len(ids), max_model_len=self._engine.max_model_len
        )
        completion_tokens = 0
        async for delta in self._engine.stream(ids, sampling, context.call_id):
            completion_tokens += delta.tokens
            if delta.text or delta.finish_reason is not None:
                yield GenerateChunk(
                    model=model,
                    index=delta.index,
                    text=delta.text,
                    finish_reason=delta.finish_reason,
                )
        yield GenerateChunk(
            model=model, usage=Usage(prompt_tokens=len(ids), completion_tokens=completion_tokens)
        )

    async def models(self, request: ModelsRequest, context: RequestContext) -> ModelsResponse:
        card = ModelCard(
            id=self._engine.served_name,
            max_model_len=self._engine.max_model_len,
            created=self._engine.created,
        )
        return ModelsResponse(models=(card,), default=card.id)

    async def stats(self, request: EngineStatsRequest, context: RequestContext) -> EngineStats:
        return EngineStats(
            model=self._engine.served_name,
            unfinished_requests=self._engine.unfinished_requests(),
        )


class RagHandlers:
    def __init__(self, pipeline: RagPipeline) -> None:
        self._pipeline = pipeline

    def register(self, registry: HandlerRegistry) -> None:
        registry.add_unary(RAG_ANSWER, self.answer)
        registry.add_stream(RAG_STREAM, self.stream)

    async def answer(self, request: RagRequest, context: RequestContext) -> RagResponse:
        return await self._pipeline.answer(request, context.call_id)

    async def stream(self, request: RagRequest, context: RequestContext) -> AsyncIterator[RagChunk]:
        async for chunk in self._pipeline.stream(request, context.call_id):
            yield chunk
