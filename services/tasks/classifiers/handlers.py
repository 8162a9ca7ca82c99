"""RPC handlers of custom classifiers: create (train), list, describe, delete, classify."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import numpy as np

from services.tasks.classifiers.settings import ClassifierSettings
from services.tasks.classifiers.store import ClassifierStore, check_name
from services.tasks.classifiers.training import check_examples, fit_classifier
from services.tasks.sentiment.tweets import normalize_tweet
from services.tasks.texts import check_texts
from shared.errors import BabelError, ErrorCode
from shared.messages.classifiers import (
    CLASSIFY,
    CREATE_CLASSIFIER,
    DELETE_CLASSIFIER,
    DESCRIBE_CLASSIFIER,
    LIST_CLASSIFIERS,
    ClassifierDeleted,
    ClassifierInfo,
    ClassifierList,
    ClassifierRef,
    CreateClassifier,
    LabelScore,
    ListClassifiers,
    Prediction,
    PredictRequest,
    PredictResponse,
)
from shared.models.embedder import BatchingEmbedder, Priority
from shared.rpc.handlers import HandlerRegistry, RequestContext


class ClassifierHandlers:
    def __init__(
        self, embedder: BatchingEmbedder, store: ClassifierStore, settings: ClassifierSettings
    ) -> None:
        self._embedder = embedder
        self._store = store
        self._settings = settings
        self._creating: set[str] = set()

    def register(self, registry: HandlerRegistry) -> None:
        registry.add_unary(CREATE_CLASSIFIER, self.create)
        registry.add_unary(LIST_CLASSIFIERS, self.list)
        registry.add_unary(DESCRIBE_CLASSIFIER, self.describe)
        registry.add_unary(DELETE_CLASSIFIER, self.delete)
        registry.add_unary(CLASSIFY, self.classify)

    async def _embed(self, texts: list[str], priority: Priority = "interactive") -> np.ndarray:
        normalized = [normalize_tweet(t) for t in texts]
        vectors, _ = await self._embedder.embed(normalized, "query", priority=priority)
        return vectors

    async def create(self, request: CreateClassifier, context: RequestContext) -> ClassifierInfo:
        check_name(request.name)
        counts = check_examples(request.examples, self._settings)
        done = await asyncio.to_thread(self._store.created_by_call, request.name, context.call_id)
        if done is not None:  # this very call, delivered again: it created the classifier
            return done
        if request.name in self._creating or self._store.exists(request.name):
            raise BabelError(
                ErrorCode.CONFLICT, f"classifier {request.name!r} already exists", field="name"
            )
        self._creating.add(request.name)
        try:
            started = time.perf_counter()
            labels = [count.label for count in counts]
            index = {label: i for i, label in enumerate(labels)}  # not list.index per example
            targets = [index[example.label] for example in request.examples]
            vectors = await self._embed([example.text for example in request.examples], "bulk")
            head, validation = await asyncio.to_thread(
                fit_classifier, vectors, targets, labels, self._settings
            )
            info = ClassifierInfo(
                name=request.name,
                description=request.description,
                labels=counts,
                examples=len(request.examples),
                validation=validation,
                embedding_model=self._embedder.embedder.name,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                train_seconds=round(time.perf_counter() - started, 3),
            )
            if context.remaining_s() <= 0:  # the client has its 504: keep nothing
                raise BabelError(
                    ErrorCode.DEADLINE_EXCEEDED,
                    f"training {request.name!r} outlasted the request's deadline; not stored",
                    retryable=True,
                )
            await asyncio.to_thread(self._store.create, info, head, context.call_id)
            return info
        finally:
            self._creating.discard(request.name)

    async def list(self, request: ListClassifiers, context: RequestContext) -> ClassifierList:
        return ClassifierList(classifiers=tuple(await asyncio.to_thread(self._store.list)))

    async def describe(self, request: ClassifierRef, context: RequestContext) -> ClassifierInfo:
        info, _ = await asyncio.to_thread(self._store.get, request.name)
        return info

    async def delete(self, request: ClassifierRef, context: RequestContext) -> ClassifierDeleted:
        await asyncio.to_thread(self._store.delete, request.name)
        return ClassifierDeleted(name=request.name)

    def _check_texts(self, texts: tuple[str, ...]) -> None:
        check_texts(
            texts,
            max_texts=self._settings.max_texts,
            max_text_chars=self._settings.max_text_chars,
        )

    async def classify(self, request: PredictRequest, context: RequestContext) -> PredictResponse:
        info, head = await asyncio.to_thread(self._store.get, request.name)
        self._check_texts(request.texts)
        if info.embedding_model != self._embedder.embedder.name:
            raise BabelError(
                ErrorCode.UNAVAILABLE,
                f"classifier {request.name!r} was trained on {info.embedding_model!r} "
                f"embeddings; this worker embeds with {self._embedder.embedder.name!r}",
            )
        rows = head.predict_proba(await self._embed(list(request.texts)))
        predictions = []
        for row in rows:
            ranked = sorted(zip(head.labels, row, strict=True), key=lambda item: -item[1])
            predictions.append(
                Prediction(
                    label=ranked[0][0],
                    confidence=round(float(ranked[0][1]), 4),
                    scores=tuple(
                        LabelScore(label=label, probability=round(float(p), 4))
                        for label, p in ranked
                    ),
                )
            )
        return PredictResponse(classifier=request.name, predictions=tuple(predictions))
