"""One vLLM ``AsyncLLM`` engine shared by every request of the worker (continuous batching).

vLLM is imported only when the engine starts, so the rest of the service (and its unit
tests) load without it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.generation.sampling import CheckedSampling
from services.generation.settings import EngineDtype, GenerationSettings
from shared.errors import BabelError, ErrorCode
from shared.messages.generation import ChatMessage, FinishReason
from shared.telemetry import get_logger

if TYPE_CHECKING:
    from vllm.v1.engine.async_llm import AsyncLLM

log = get_logger(__name__)

ENGINE_DEAD = "the vLLM engine of this worker has died; the worker is restarting"


@dataclass(frozen=True, slots=True)
class Delta:
    """New text of one choice since the last delta."""

    index: int
    text: str
    tokens: int
    finish_reason: FinishReason | None


def _finish_reason(raw: str | None) -> FinishReason | None:
    """vLLM's reason as an OpenAI one; an engine-side abort is an error, not a finish."""
    if raw is None:
        return None
    if raw == "length":
        return "length"
    if raw == "abort":
        raise BabelError(
            ErrorCode.UNAVAILABLE,
            "the generation engine aborted this request before it finished; retry",
            retryable=True,
        )
    return "stop"


class LlmEngine:
    """Owns the engine: start, tokenize, stream deltas, abort, stop."""

    def __init__(self, settings: GenerationSettings, model_path: str, served_name: str) -> None:
        self._settings = settings
        self._model_path = model_path
        self.served_name = served_name
        self.max_model_len = settings.max_model_len
        self.created = int(time.time())
        self.dtype: str | None = None
        """The dtype the running engine was built with."""
        self._engine: AsyncLLM | None = None
        self._tokenizer: Any = None

    @property
    def engine(self) -> AsyncLLM:
        if self._engine is None:
            raise BabelError(ErrorCode.UNAVAILABLE, "the engine is still loading", retryable=True)
        if self._engine.errored:
            raise BabelError(ErrorCode.UNAVAILABLE, ENGINE_DEAD, retryable=True)
        return self._engine

    def dead(self) -> str | None:
        """Why this worker can no longer serve (its engine processes died), or None."""
        if self._engine is not None and self._engine.errored:
            return ENGINE_DEAD
        return None

    def on_cpu(self) -> bool:
        """Whether vLLM runs on its CPU backend here (imports vLLM)."""
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())

    def _build(self, dtype: EngineDtype) -> AsyncLLM:
        # Read by vLLM's CPU backend when the engine starts; an integer number of GiB.
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self._settings.kv_cache_gib))
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(
            model=self._model_path,
            served_model_name=[self.served_name],
            dtype=dtype,
            max_model_len=self._settings.max_model_len,
            enforce_eager=self._settings.enforce_eager,
            max_num_seqs=self._settings.max_num_seqs,
            gpu_memory_utilization=self._settings.gpu_memory_utilization,
            seed=self._settings.seed,
        )
        return AsyncLLM.from_engine_args(args)

    async def start(self, dtype: EngineDtype) -> None:
        """Build the engine in ``dtype``; see :mod:`services.generation.probe` for the choice."""
        began = time.monotonic()
        # Built off the event loop so heartbeats go on while the engine processes spawn.
        engine = await asyncio.to_thread(self._build, dtype)
        self._tokenizer = engine.get_tokenizer()
        self._engine = engine
        self.dtype = dtype
        log.info(
            "engine ready",
            model=self.served_name,
            dtype=dtype,
            seconds=round(time.monotonic() - began, 1),
            max_model_len=self.max_model_len,
        )

    async def answer(self, prompt: str, max_tokens: int) -> str:
        """The greedy answer to one user message: the path users' chats take."""
        sampling = CheckedSampling(
            max_tokens=max_tokens,
            temperature=0.0,
            top_p=1.0,
            stop=(),
            seed=None,
            n=1,
            json_schema=None,
            ignore_eos=False,
        )
        ids = self.encode_chat([ChatMessage(role="user", content=prompt)])
        parts = [d.text async for d in self.stream(ids, sampling, f"probe-{uuid.uuid4().hex[:12]}")]
        return "".join(parts)

    def _ids(self, encoded: Any) -> list[int]:
        if isinstance(encoded, list):
            return [int(i) for i in encoded]
        return [int(i) for i in encoded["input_ids"]]

    def encode_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Token ids of ``messages`` under the model's chat template, ready for an answer."""
        if self._tokenizer is None:
            raise BabelError(ErrorCode.UNAVAILABLE, "the engine is still loading", retryable=True)
        encoded = self._tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages],
            tokenize=True,
            add_generation_prompt=True,
        )
        return self._ids(encoded)

    def encode_text(self, text: str) -> list[int]:
        if self._tokenizer is None:
            raise BabelError(ErrorCode.UNAVAILABLE, "the engine is still loading", retryable=True)
        return [int(i) for i in self._tokenizer.encode(text, add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=True))

    def unfinished_requests(self) -> int:
        return self.engine.get_num_unfinished_requests() if self._engine is not None else 0

    def _params(self, sampling: CheckedSampling) -> Any:
        from vllm.sampling_params import RequestOutputKind, SamplingParams, StructuredOutputsParams

        structured = (
            StructuredOutputsParams(json=sampling.json_schema)
            if sampling.json_schema is not None
            else None
        )
        return SamplingParams(
            n=sampling.n,
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            stop=list(sampling.stop) or None,
            seed=sampling.seed,
            ignore_eos=sampling.ignore_eos,
            structured_outputs=structured,
            output_kind=RequestOutputKind.DELTA,
        )

    async def stream(
        self, prompt_ids: list[int], sampling: CheckedSampling, request_id: str
    ) -> AsyncIterator[Delta]:
        """Deltas of every choice until all are finished; closing early aborts the request."""
        from vllm.v1.engine.exceptions import EngineDeadError

        engine = self.engine
        try:
            params = self._params(sampling)
        except ValueError as exc:
            raise BabelError(ErrorCode.INVALID_ARGUMENT, f"sampling: {exc}") from exc
        finished = False
        try:
            outputs = engine.generate({"prompt_token_ids": prompt_ids}, params, request_id)
            async for output in outputs:
                for completion in output.outputs:
                    yield Delta(
                        index=completion.index,
                        text=completion.text,
                        tokens=len(completion.token_ids),
                        finish_reason=_finish_reason(completion.finish_reason),
                    )
                if output.finished:
                    finished = True
        except ValueError as exc:  # rejected by the engine's input checks (e.g. a grammar)
            raise BabelError(ErrorCode.INVALID_ARGUMENT, str(exc)) from exc
        except EngineDeadError as exc:
            raise BabelError(ErrorCode.UNAVAILABLE, ENGINE_DEAD, retryable=True) from exc
        finally:
            if not finished and not engine.errored:
                await engine.abort(request_id)
                log.info("request aborted", request_id=request_id)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        self._tokenizer = None
        self.dtype = None
        if engine is not None:
            await asyncio.to_thread(engine.shutdown)
            del engine
            gc.collect()
