"""Ingest: validate documents, chunk them by sentences, detect each chunk's language,
tokenize it for BM25, embed it, and commit the whole request at once (upsert by id)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from services.retrieval.collections import CollectionManager
from services.retrieval.settings import RetrievalSettings
from services.retrieval.store import Collection, NewChunk, NewDocument
from services.retrieval.text.chunking import Chunk, TooManyChunks, chunk_text
from services.retrieval.text.lexical import tokenize
from shared.errors import BabelError, ErrorCode
from shared.json_shape import check_json
from shared.langid import LanguageIdentifier
from shared.messages.retrieval import Chunking, DocumentIn, IngestReply
from shared.models.embedder import BatchingEmbedder

MAX_ID_CHARS = 256


def check_model(collection: Collection, model: str) -> None:
    if collection.model != model:
        raise BabelError(
            ErrorCode.CONFLICT,
            f"collection {collection.name!r} was built with model {collection.model!r}, "
            f"but this service embeds with {model!r}: re-index the collection into a new one "
            "built with the current model, or configure the service with the collection's model",
            field="collection",
        )


class Ingestor:
    def __init__(
        self,
        manager: CollectionManager,
        embedder: BatchingEmbedder,
        identifier: LanguageIdentifier,
        settings: RetrievalSettings,
    ) -> None:
        self._manager = manager
        self._embedder = embedder
        self._identifier = identifier
        self._settings = settings

    def _validate(self, documents: Sequence[DocumentIn]) -> None:
        limit = self._settings.max_documents_per_request
        if not documents:
            raise BabelError(ErrorCode.INVALID_ARGUMENT, "no documents", field="documents")
        if len(documents) > limit:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"{len(documents)} documents; at most {limit} per request (send batches)",
                field="documents",
            )
        seen: set[str] = set()
        for i, document in enumerate(documents):
            where = f"documents[{i}]"
            if not document.id or len(document.id) > MAX_ID_CHARS:
                raise BabelError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"id must be 1-{MAX_ID_CHARS} characters",
                    field=f"{where}.id",
                )
            if document.id in seen:
                raise BabelError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"id {document.id!r} appears twice in one request",
                    field=f"{where}.id",
                )
            seen.add(document.id)
            check_json(document.metadata, f"{where}.metadata", self._settings.max_json_depth)
            if not document.text.strip():
                raise BabelError(ErrorCode.INVALID_ARGUMENT, "text is empty", field=f"{where}.text")
            if len(document.text) > self._settings.max_document_chars:
                raise BabelError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"text has {len(document.text)} characters; "
                    f"at most {self._settings.max_document_chars}",
                    field=f"{where}.text",
                )

    def _chunking(self, chunking: Chunking) -> tuple[int, int]:
        """``max_chars`` within the settings' range and an overlap of at most a fraction of
        it: tiny chunks with an overlap of almost their size turn a few bytes into a chunk."""
        settings = self._settings
        max_chars = chunking.max_chars or settings.chunk_max_chars
        overlap = (
            chunking.overlap_chars
            if chunking.overlap_chars is not None
            else min(settings.chunk_overlap_chars, max_chars // 4)
        )
        low, high = settings.chunk_min_chars, settings.chunk_largest_chars
        if not low <= max_chars <= high:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"max_chars must be {low}..{high}, got {max_chars}",
                field="chunking.max_chars",
            )
        most = int(max_chars * settings.chunk_max_overlap_fraction)
        if not 0 <= overlap <= most:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"overlap_chars must be 0..{most} "
                f"({settings.chunk_max_overlap_fraction:g} of max_chars), got {overlap}",
                field="chunking.overlap_chars",
            )
        return max_chars, overlap

    def _prepare_all(
        self, documents: Sequence[DocumentIn], max_chars: int, overlap: int
    ) -> list[list[NewChunk]]:
        """Every document's chunks, counted as they are made: past the per-document or
        per-request limit the request stops with an error naming the document."""
        prepared: list[list[NewChunk]] = []
        budget = self._settings.max_chunks_per_request
        for i, document in enumerate(documents):
            limit = min(self._settings.max_chunks_per_document, budget)
            try:
                pieces = chunk_text(document.text, max_chars, overlap, max_chunks=limit)
            except TooManyChunks:
                raise BabelError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"the text makes more than {limit} chunks"
                    + (
                        " (the request's chunk budget is spent)"
                        if limit < self._settings.max_chunks_per_document
                        else ""
                    )
                    + "; send a shorter text, fewer documents, or a larger max_chars",
                    field=f"documents[{i}].text",
                ) from None
            budget -= len(pieces)
            prepared.append(self._prepare(pieces))
        return prepared

    def _prepare(self, pieces: Sequence[Chunk]) -> list[NewChunk]:
        chunks = []
        for idx, piece in enumerate(pieces):
            language = self._identifier.identify(piece.text, 1)[0].language
            chunks.append(
                NewChunk(
                    idx=idx,
                    start=piece.start,
                    end=piece.end,
                    text=piece.text,
                    language=language,
                    tokens=" ".join(tokenize(piece.text, language)),
                )
            )
        return chunks

    async def ingest(
        self, collection_name: str, documents: Sequence[DocumentIn], chunking: Chunking
    ) -> IngestReply:
        collection = self._manager.get(collection_name)
        check_model(collection, self._embedder.embedder.name)
        self._validate(documents)
        max_chars, overlap = self._chunking(chunking)
        prepared = await asyncio.to_thread(self._prepare_all, documents, max_chars, overlap)
        texts = [chunk.text for chunks in prepared for chunk in chunks]
        vectors, _ = await self._embedder.embed(texts, "passage", priority="bulk")
        new_documents = []
        offset = 0
        for document, chunks in zip(documents, prepared, strict=True):
            rows = vectors[offset : offset + len(chunks)]
            offset += len(chunks)
            new_documents.append(
                NewDocument(
                    id=document.id,
                    metadata=dict(document.metadata),
                    chars=len(document.text),
                    chunks=chunks,
                    vectors=np.asarray(rows, dtype=np.float32),
                )
            )
        change = await asyncio.to_thread(self._manager.upsert, collection, new_documents)
        return IngestReply(
            collection=collection.name,
            documents=change.documents,
            chunks=len(change.added),
            replaced=change.replaced,
        )
