"""RPC handlers of translation: validate, identify the source, split, translate, reassemble."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from services.tasks.texts import check_texts
from services.tasks.translation.backend import Translator
from services.tasks.translation.html_nodes import HtmlDocument, parse_html
from services.tasks.translation.segments import Segmented, reassemble, segment
from services.tasks.translation.settings import TranslationSettings
from shared.errors import BabelError, ErrorCode
from shared.langid import LanguageIdentifier
from shared.languages import name_of, normalize
from shared.messages.translation import (
    AUTO,
    TRANSLATE,
    TRANSLATION_LANGUAGES,
    TranslateRequest,
    TranslateResponse,
    Translation,
    TranslationLanguage,
    TranslationLanguagesRequest,
    TranslationLanguagesResponse,
)
from shared.rpc.handlers import HandlerRegistry, RequestContext


@dataclass
class _Job:
    """One text of a request: its pieces to translate and how to put them back."""

    source: str
    confidence: float | None
    pieces: list[Segmented]
    document: HtmlDocument | None = None
    node_ids: tuple[int, ...] = ()


class TranslationHandlers:
    def __init__(
        self,
        translator: Translator,
        identifier: LanguageIdentifier,
        settings: TranslationSettings,
    ) -> None:
        self._translator = translator
        self._identifier = identifier
        self._settings = settings

    def register(self, registry: HandlerRegistry) -> None:
        registry.add_unary(TRANSLATE, self.translate)
        registry.add_unary(TRANSLATION_LANGUAGES, self.languages)

    # ------------------------------------------------------------------ languages
    async def languages(
        self, request: TranslationLanguagesRequest, context: RequestContext
    ) -> TranslationLanguagesResponse:
        pairs = self._translator.languages()
        languages = tuple(
            TranslationLanguage(code=code, name=name_of(code), targets=tuple(sorted(targets)))
            for code, targets in sorted(pairs.items())
        )
        return TranslationLanguagesResponse(
            languages=languages, backend=self._translator.backend, model=self._translator.model
        )

    def _supported(self) -> str:
        return ", ".join(sorted(self._translator.languages()))

    def _check_target(self, target: str) -> str:
        code = normalize(target)
        targets = {t for ts in self._translator.languages().values() for t in ts}
        if code not in targets:
            raise BabelError(
                ErrorCode.UNSUPPORTED_LANGUAGE,
                f"target language {target!r} is not supported; supported: {self._supported()}",
                field="target",
            )
        return code

    def _check_pair(self, source: str, target: str, field: str) -> None:
        pairs = self._translator.languages()
        if source == target:
            return
        if source not in pairs:
            raise BabelError(
                ErrorCode.UNSUPPORTED_LANGUAGE,
                f"source language {source!r} ({name_of(source)}) is not supported; "
                f"supported: {self._supported()}",
                field=field,
            )
        if target not in pairs[source]:
            raise BabelError(
                ErrorCode.UNSUPPORTED_LANGUAGE,
                f"{source} -> {target} is not supported; {source} translates into: "
                f"{', '.join(sorted(pairs[source]))}",
                field="target",
            )

    # ------------------------------------------------------------------ translate
    def _validate(self, request: TranslateRequest) -> None:
        settings = self._settings
        if not 0 <= request.alternatives <= settings.max_alternatives:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"alternatives must be 0..{settings.max_alternatives}",
                field="alternatives",
            )
        check_texts(
            request.texts, max_texts=settings.max_texts, max_text_chars=settings.max_text_chars
        )

    def _job(self, text: str, index: int, request: TranslateRequest, target: str) -> _Job:
        max_chars = self._settings.max_sentence_chars
        document: HtmlDocument | None = None
        nodes: dict[int, str] = {}
        if request.format == "html":
            document = parse_html(text)
            nodes = document.translatable()
            plain = " ".join(nodes.values())
        else:
            plain = text
        source, confidence = normalize(request.source), None
        if request.source == AUTO:
            if not plain.strip():
                source = target  # markup only: nothing to translate
            else:
                best = self._identifier.identify(plain, 1)[0]
                source, confidence = normalize(best.language), best.confidence
        self._check_pair(
            source, target, field=f"texts[{index}]" if request.source == AUTO else "source"
        )
        if document is None:
            return _Job(source, confidence, [segment(text, max_chars)])
        return _Job(
            source,
            confidence,
            [segment(value, max_chars) for value in nodes.values()],
            document=document,
            node_ids=tuple(nodes),
        )

    async def translate(
        self, request: TranslateRequest, context: RequestContext
    ) -> TranslateResponse:
        self._validate(request)
        target = self._check_target(request.target)
        # HTML parsing, identification and segmentation are CPU work: off the event loop.
        jobs = await asyncio.to_thread(
            lambda: [self._job(text, i, request, target) for i, text in enumerate(request.texts)]
        )
        alternatives = request.alternatives if request.format == "text" else 0
        translated = await self._translate_all(jobs, target, alternatives, context.deadline)
        translations = []
        for job in jobs:
            candidates = [
                self._render(job, [translated[(job.source, s)] for s in _sentences(job)], k, target)
                for k in range(alternatives + 1)
            ]
            best, others = candidates[0], _distinct(candidates[1:], best=candidates[0])
            translations.append(
                Translation(
                    text=best, source=job.source, confidence=job.confidence, alternatives=others
                )
            )
        return TranslateResponse(
            translations=tuple(translations),
            backend=self._translator.backend,
            model=self._translator.model,
        )

    async def _translate_all(
        self, jobs: Sequence[_Job], target: str, alternatives: int, deadline: float
    ) -> dict[tuple[str, str], tuple[str, ...]]:
        """Every distinct sentence once, one backend call per source language."""
        by_source: dict[str, dict[str, None]] = {}  # an ordered set: O(1) membership
        for job in jobs:
            wanted = by_source.setdefault(job.source, {})
            for sentence in _sentences(job):
                wanted.setdefault(sentence)
        done: dict[tuple[str, str], tuple[str, ...]] = {}
        calls = []
        for source, distinct in by_source.items():
            sentences = list(distinct)
            if source == target:
                done.update({(source, s): (s,) for s in sentences})
                continue
            calls.append((source, sentences))
        results = await asyncio.gather(
            *(
                self._translator.translate(
                    sentences, source, target, alternatives=alternatives, deadline=deadline
                )
                for source, sentences in calls
            )
        )
        for (source, sentences), found in zip(calls, results, strict=True):
            done.update({(source, s): t for s, t in zip(sentences, found, strict=True)})
        return done

    @staticmethod
    def _render(job: _Job, hypotheses: list[tuple[str, ...]], k: int, target: str) -> str:
        """The text with hypothesis ``k`` of every sentence (the best where there is no k-th)."""
        chosen = iter(h[k] if k < len(h) else h[0] for h in hypotheses)
        pieces = [reassemble(p, [next(chosen) for _ in p.sentences], target) for p in job.pieces]
        if job.document is None:
            return pieces[0]
        return job.document.render(dict(zip(job.node_ids, pieces, strict=True)))


def _sentences(job: _Job) -> list[str]:
    return [s for piece in job.pieces for s in piece.sentences]


def _distinct(candidates: Sequence[str], best: str) -> tuple[str, ...]:
    seen = {best, ""}
    kept = []
    for candidate in candidates:
        if candidate not in seen:
            seen.add(candidate)
            kept.append(candidate)
    return tuple(kept)
