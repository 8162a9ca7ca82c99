"""Text generation payloads (served by the generation service).

The gateway turns OpenAI-shaped HTTP bodies into these; other services (translation,
sentiment by LLM) call the same methods directly over Redis.
"""

from __future__ import annotations

from typing import Any, Literal

from shared.messages.base import Message, Method
from shared.messages.retrieval import Hit

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]
"""OpenAI's values only: an engine-side abort reaches the caller as an error."""


class ChatMessage(Message, frozen=True, kw_only=True):
    role: Role
    content: str


class Sampling(Message, frozen=True, kw_only=True):
    """Decoding options; ``None`` means the engine's default for the model."""

    max_tokens: int | None = None
    """``None``: as many as fit in the context after the prompt."""
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    json_schema: dict[str, Any] | None = None
    """Structured output: the engine only emits JSON that validates against this schema."""
    ignore_eos: bool = False
    """Benchmarks only: generate exactly ``max_tokens``."""


class GenerateRequest(Message, frozen=True, kw_only=True):
    """Either ``messages`` (chat; the model's chat template applies) or ``prompt`` (raw)."""

    model: str | None = None
    """Served model id; ``None`` picks the default model."""
    messages: tuple[ChatMessage, ...] | None = None
    prompt: str | None = None
    sampling: Sampling = Sampling()


class Usage(Message, frozen=True, kw_only=True):
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Choice(Message, frozen=True, kw_only=True):
    index: int
    text: str
    finish_reason: FinishReason


class GenerateResponse(Message, frozen=True, kw_only=True):
    model: str
    choices: tuple[Choice, ...]
    usage: Usage


class GenerateChunk(Message, frozen=True, kw_only=True):
    """One streamed delta of choice ``index``; the last chunk of a choice has ``finish_reason``.

    The final chunk of the whole stream carries ``usage`` (and no text).
    """

    model: str
    index: int = 0
    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


class ModelsRequest(Message, frozen=True, kw_only=True):
    pass


class ModelCard(Message, frozen=True, kw_only=True):
    id: str
    max_model_len: int
    created: int
    """Unix time the engine was loaded."""


class ModelsResponse(Message, frozen=True, kw_only=True):
    models: tuple[ModelCard, ...]
    default: str


class EngineStatsRequest(Message, frozen=True, kw_only=True):
    pass


class EngineStats(Message, frozen=True, kw_only=True):
    model: str
    unfinished_requests: int
    """Requests the engine holds right now (running or waiting)."""


class RagRequest(Message, frozen=True, kw_only=True):
    question: str
    collection: str
    k: int = 4
    filters: dict[str, Any] | None = None
    languages: tuple[str, ...] | None = None
    model: str | None = None
    sampling: Sampling = Sampling(temperature=0.0, max_tokens=256)


class Source(Message, frozen=True, kw_only=True):
    """A passage placed in the prompt as ``[number]``."""

    number: int
    hit: Hit


class RagResponse(Message, frozen=True, kw_only=True):
    model: str
    answer: str
    language: str
    """Detected language of the question; the answer is asked for in it."""
    sources: tuple[Source, ...]
    """Every passage the model saw, numbered as in the prompt."""
    cited: tuple[int, ...]
    """Numbers of the sources the answer cites with ``[n]``."""
    grounded: bool
    """False when nothing relevant was retrieved and the answer says so."""
    finish_reason: FinishReason
    usage: Usage


class RagChunk(Message, frozen=True, kw_only=True):
    """Streamed RAG answer: the first chunk has ``sources``; the last ``cited`` and ``usage``."""

    model: str
    text: str = ""
    language: str | None = None
    sources: tuple[Source, ...] | None = None
    grounded: bool | None = None
    cited: tuple[int, ...] | None = None
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


GENERATE: Method[GenerateRequest, GenerateResponse] = Method(
    "generation", "generate", GenerateRequest, GenerateResponse
)
GENERATE_STREAM: Method[GenerateRequest, GenerateChunk] = Method(
    "generation", "generate_stream", GenerateRequest, GenerateChunk, streaming=True
)
MODELS: Method[ModelsRequest, ModelsResponse] = Method(
    "generation", "models", ModelsRequest, ModelsResponse
)
ENGINE_STATS: Method[EngineStatsRequest, EngineStats] = Method(
    "generation", "engine_stats", EngineStatsRequest, EngineStats
)
RAG_ANSWER: Method[RagRequest, RagResponse] = Method(
    "generation", "rag_answer", RagRequest, RagResponse
)
RAG_STREAM: Method[RagRequest, RagChunk] = Method(
    "generation", "rag_stream", RagRequest, RagChunk, streaming=True
)
