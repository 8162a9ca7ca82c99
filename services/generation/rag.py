"""Retrieval-augmented answers: search (any language) → a per-query relevance gate → numbered
passages fitted into the context → the model judges whether they answer the question and
answers in the question's language → citations checked against the sources. A refusal is
the fixed "I don't know" of the question's language (``refusals``)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import msgspec
import numpy as np

from services.generation.answer_json import ANSWER_SCHEMA, AnswerReader
from services.generation.engine import Delta, LlmEngine
from services.generation.prompts import passage_block, rag_messages
from services.generation.refusals import no_answer, refusal_prompt
from services.generation.relevance import relevant
from services.generation.sampling import CheckedSampling, check_sampling
from services.generation.settings import GenerationSettings
from shared.errors import BabelError, ErrorCode
from shared.langid import LanguageIdentifier
from shared.languages import name_of as language_name
from shared.messages.generation import RagChunk, RagRequest, RagResponse, Source, Usage
from shared.messages.retrieval import EMBED, SEARCH, EmbedRequest, Hit, SearchRequest
from shared.rpc.client import RpcClient
from shared.text.sentences import sentence_spans

_CITATION = re.compile(r"\[(\d{1,3})\]")
_BLOCK_SLACK = 2
"""Spare tokens per passage for tokens that merge across a block's seams."""
_TRUNCATED = " …"


@dataclass(frozen=True, slots=True)
class RagPlan:
    language: str
    sources: tuple[Source, ...]
    prompt_ids: list[int] | None
    """None when nothing relevant was found: the answer is the fixed 'I don't know'."""
    sampling: CheckedSampling | None
    structured: bool = False
    """The model replies ``{"answerable", "answer"}`` (``answer_json``)."""


def cited_numbers(answer: str, valid: int) -> tuple[int, ...]:
    """``[n]`` markers of ``answer`` that name one of ``valid`` sources, in first-seen order."""
    seen: dict[int, None] = {}
    for match in _CITATION.finditer(answer):
        number = int(match.group(1))
        if 1 <= number <= valid:
            seen.setdefault(number, None)
    return tuple(seen)


class RagPipeline:
    def __init__(
        self,
        engine: LlmEngine,
        rpc: RpcClient,
        identifier: LanguageIdentifier,
        settings: GenerationSettings,
    ) -> None:
        self._engine = engine
        self._rpc = rpc
        self._identifier = identifier
        self._settings = settings

    # ------------------------------------------------------------------ plan
    def _validate(self, request: RagRequest) -> None:
        if not request.question.strip():
            raise BabelError(ErrorCode.INVALID_ARGUMENT, "question is empty", field="question")
        if len(request.question) > self._settings.rag_max_question_chars:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"question is longer than {self._settings.rag_max_question_chars} characters",
                field="question",
            )
        if not 1 <= request.k <= self._settings.rag_max_k:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT, f"k must be 1..{self._settings.rag_max_k}", field="k"
            )

    def _fit(
        self, hits: Sequence[Hit], language: str, question: str, answer_tokens: int
    ) -> tuple[list[Source], list[int]]:
        """Number the passages and keep as many as fit the context with room for the answer.

        Linear in the passages: each is tokenized once on its own (its block and separator
        counted with :data:`_BLOCK_SLACK` spare tokens for merges at the seams), then the chosen
        prompt once; only if that overshoots are trailing passages dropped and it is encoded
        again. CPU work: the caller runs this in a thread, off the worker's event loop."""
        name = language_name(language)
        structured = self._settings.rag_model_judges
        budget = self._engine.max_model_len - answer_tokens
        ids = self._engine.encode_chat(rag_messages(name, [], question, structured))
        if len(ids) > budget:
            raise BabelError(
                ErrorCode.CONTEXT_LENGTH_EXCEEDED,
                f"the question alone takes {len(ids)} tokens; the model's context is "
                f"{self._engine.max_model_len} with {answer_tokens} kept for the answer",
                field="question",
            )
        sources: list[Source] = []
        blocks: list[str] = []
        used = len(ids)
        for hit in hits:
            tokens = self._engine.encode_text(hit.text)
            text = hit.text
            if len(tokens) > self._settings.rag_max_passage_tokens:
                text = self._engine.decode(tokens[: self._settings.rag_max_passage_tokens])
                text += _TRUNCATED
            number = len(sources) + 1
            block = passage_block(number, text)
            cost = len(self._engine.encode_text(block + "\n\n")) + _BLOCK_SLACK
            if used + cost > budget:
                break
            used += cost
            blocks.append(block)
            sources.append(Source(number=number, hit=hit))
        while blocks:
            ids = self._engine.encode_chat(rag_messages(name, blocks, question, structured))
            if len(ids) <= budget:
                break
            blocks.pop()
            sources.pop()
        else:
            ids = self._engine.encode_chat(rag_messages(name, [], question, structured))
        return sources, ids

    async def plan(self, request: RagRequest) -> RagPlan:
        self._validate(request)
        detected = self._identifier.identify(request.question, 1)
        language = detected[0].language if detected else "en"
        reply = await self._rpc.call(
            SEARCH,
            SearchRequest(
                collection=request.collection,
                query=request.question,
                k=max(request.k, self._settings.rag_calibration_hits),
                mode="dense",
                filter=request.filters,
                languages=request.languages or (),
            ),
            timeout_s=self._settings.rag_timeout_s,
        )
        scores = [hit.score for hit in reply.hits]
        if not relevant(scores, self._settings.rag_min_score, self._settings.rag_min_margin):
            return RagPlan(language=language, sources=(), prompt_ids=None, sampling=None)
        floor = self._settings.rag_min_score
        hits = [hit for hit in reply.hits[: request.k] if hit.score >= floor]
        wanted = request.sampling.max_tokens or self._settings.rag_answer_tokens
        sources, ids = await asyncio.to_thread(self._fit, hits, language, request.question, wanted)
        if not sources:
            return RagPlan(language=language, sources=(), prompt_ids=None, sampling=None)
        structured = self._settings.rag_model_judges
        sampling = check_sampling(
            msgspec.structs.replace(
                request.sampling,
                max_tokens=wanted,
                n=1,
                json_schema=ANSWER_SCHEMA if structured else None,
            ),
            prompt_tokens=len(ids),
            max_model_len=self._engine.max_model_len,
        )
        return RagPlan(
            language=language,
            sources=tuple(sources),
            prompt_ids=ids,
            sampling=sampling,
            structured=structured,
        )

    # ------------------------------------------------------------------ citations
    async def cite(
        self, question: str, answer: str, sources: Sequence[Source]
    ) -> tuple[str, tuple[int, ...]]:
        """Citations of ``answer``: its own valid ``[n]``; else each sentence (read together
        with the question, so that a bare "330." still means something) attributed to the most
        similar passage. Returns the ``[n]`` markers to append and the cited numbers."""
        own = cited_numbers(answer, len(sources))
        if own or not sources:
            return "", own
        sentences = [answer[s:e] for s, e in sentence_spans(answer)]
        sentences = [s for s in sentences if len(s.strip()) > 1]
        if not sentences:
            return "", ()
        texts = tuple(f"{question} {s}" for s in sentences)
        texts += tuple(source.hit.text for source in sources)
        reply = await self._rpc.call(
            EMBED,
            EmbedRequest(texts=texts, input_type="query"),
            timeout_s=self._settings.rag_timeout_s,
        )
        vectors = np.frombuffer(reply.vectors, dtype=np.float32).reshape(len(texts), reply.dim)
        similarity = vectors[: len(sentences)] @ vectors[len(sentences) :].T
        numbers: dict[int, None] = {}
        for row in similarity:
            best = int(np.argmax(row))
            if float(row[best]) >= self._settings.rag_attribution_min_score:
                numbers.setdefault(sources[best].number, None)
        suffix = "".join(f" [{n}]" for n in numbers)
        return suffix, tuple(numbers)

    # ------------------------------------------------------------------ answers
    async def answer(self, request: RagRequest, request_id: str) -> RagResponse:
        """The streamed answer, gathered: sources first, the text, citations and usage last."""
        first: RagChunk | None = None
        last: RagChunk | None = None
        parts: list[str] = []
        async for chunk in self.stream(request, request_id):
            first = first or chunk
            last = chunk
            parts.append(chunk.text)
        assert first is not None
        assert last is not None
        assert first.language is not None
        assert last.finish_reason is not None
        assert last.usage is not None
        return RagResponse(
            model=first.model,
            answer="".join(parts).strip(),
            language=first.language,
            sources=first.sources or (),
            cited=last.cited or (),
            grounded=bool(last.grounded),
            finish_reason=last.finish_reason,
            usage=last.usage,
        )

    async def refusal(self, language: str) -> str:
        """ "I don't know" in ``language``: the fixed sentence, else the model's translation."""
        fixed = no_answer(language)
        if fixed is not None:
            return fixed
        prompt = refusal_prompt(language, language_name(language))
        said = (await self._engine.answer(prompt, max_tokens=80)).strip()
        return said or str(no_answer("en"))

    async def _refuse(
        self, model: str, language: str, usage: Usage | None = None
    ) -> AsyncIterator[RagChunk]:
        """The refusal's chunks; ``usage``: what the model spent judging, when it was asked."""
        yield RagChunk(model=model, language=language, sources=(), grounded=False)
        yield RagChunk(model=model, text=await self.refusal(language))
        yield RagChunk(
            model=model,
            cited=(),
            grounded=False,
            finish_reason="stop",
            usage=usage or Usage(prompt_tokens=0, completion_tokens=0),
        )

    async def stream(self, request: RagRequest, request_id: str) -> AsyncIterator[RagChunk]:
        model = self._engine.served_name
        plan = await self.plan(request)
        if plan.prompt_ids is None or plan.sampling is None:
            async for chunk in self._refuse(model, plan.language):
                yield chunk
            return
        deltas = aiter(self._engine.stream(plan.prompt_ids, plan.sampling, request_id))
        reader = AnswerReader() if plan.structured else None
        parts: list[str] = []
        tokens = 0
        finish = "stop"
        pending = ""
        """Answer text read before the verdict was known."""
        if reader is not None:
            # The verdict comes first (the schema's order): wait for it before the sources.
            async for delta in deltas:
                tokens += delta.tokens
                finish = delta.finish_reason or finish
                pending += reader.feed(delta.text)
                if reader.answerable is not None or delta.finish_reason:
                    break
            if reader.answerable is False:
                await _close(deltas)  # aborts the generation: the rest is not needed
                spent = Usage(prompt_tokens=len(plan.prompt_ids), completion_tokens=tokens)
                async for chunk in self._refuse(model, plan.language, spent):
                    yield chunk
                return
        yield RagChunk(model=model, language=plan.language, sources=plan.sources, grounded=True)
        if pending:
            parts.append(pending)
            yield RagChunk(model=model, text=pending)
        async for delta in deltas:
            tokens += delta.tokens
            finish = delta.finish_reason or finish
            text = reader.feed(delta.text) if reader is not None else delta.text
            if text:
                parts.append(text)
                yield RagChunk(model=model, text=text)
        suffix, cited = await self.cite(request.question, "".join(parts).strip(), plan.sources)
        yield RagChunk(
            model=model,
            text=suffix,
            cited=cited,
            grounded=bool(cited),
            finish_reason="length" if finish == "length" else "stop",
            usage=Usage(prompt_tokens=len(plan.prompt_ids), completion_tokens=tokens),
        )


async def _close(deltas: AsyncIterator[Delta]) -> None:
    close = getattr(deltas, "aclose", None)
    if close is not None:
        await close()
