"""RPC handlers of the retrieval service: messages in, the pieces above do the work."""

from __future__ import annotations

import asyncio

from services.retrieval import browse
from services.retrieval.collections import CollectionManager
from services.retrieval.ingest import Ingestor
from services.retrieval.search import Searcher
from services.retrieval.settings import RetrievalSettings
from services.retrieval.text.extract import ExtractLimits, extract_text
from shared.errors import BabelError, ErrorCode
from shared.messages.retrieval import (
    CREATE_COLLECTION,
    DELETE_COLLECTION,
    DELETE_DOCUMENTS,
    DESCRIBE_COLLECTION,
    DOCUMENT_CHUNKS,
    EMBED,
    INGEST,
    INGEST_FILE,
    LIST_COLLECTIONS,
    LIST_DOCUMENTS,
    SEARCH,
    ChunksRequest,
    CollectionDeleted,
    CollectionInfo,
    CollectionList,
    CollectionRef,
    CollectionSpec,
    DeleteDocuments,
    DocumentChunks,
    DocumentIn,
    DocumentList,
    DocumentsDeleted,
    EmbedReply,
    EmbedRequest,
    FileIngestRequest,
    IngestReply,
    IngestRequest,
    ListCollections,
    ListDocuments,
    SearchReply,
    SearchRequest,
)
from shared.models.embedder import BatchingEmbedder
from shared.rpc.handlers import HandlerRegistry, RequestContext

MAX_EMBED_INPUTS = 2_048


class RetrievalHandlers:
    def __init__(
        self,
        manager: CollectionManager,
        embedder: BatchingEmbedder,
        ingestor: Ingestor,
        searcher: Searcher,
        settings: RetrievalSettings,
    ) -> None:
        self._manager = manager
        self._embedder = embedder
        self._ingestor = ingestor
        self._searcher = searcher
        self._settings = settings

    def register(self, registry: HandlerRegistry) -> None:
        registry.add_unary(CREATE_COLLECTION, self.create_collection)
        registry.add_unary(LIST_COLLECTIONS, self.list_collections)
        registry.add_unary(DESCRIBE_COLLECTION, self.describe_collection)
        registry.add_unary(DELETE_COLLECTION, self.delete_collection)
        registry.add_unary(INGEST, self.ingest)
        registry.add_unary(INGEST_FILE, self.ingest_file)
        registry.add_unary(DELETE_DOCUMENTS, self.delete_documents)
        registry.add_unary(SEARCH, self.search)
        registry.add_unary(LIST_DOCUMENTS, self.list_documents)
        registry.add_unary(DOCUMENT_CHUNKS, self.document_chunks)
        registry.add_unary(EMBED, self.embed)

    @property
    def model(self) -> str:
        return self._embedder.embedder.name

    def _check_served(self, model: str | None, field: str) -> None:
        if model is not None and model != self.model:
            raise BabelError(
                ErrorCode.NOT_FOUND,
                f"model {model!r} is not served here; served: [{self.model!r}]",
                field=field,
            )

    async def create_collection(
        self, spec: CollectionSpec, context: RequestContext
    ) -> CollectionInfo:
        self._check_served(spec.model, "model")
        dim = self._embedder.embedder.dim
        return await asyncio.to_thread(
            self._manager.create, spec.name, self.model, dim, context.call_id
        )

    async def list_collections(self, _: ListCollections, __: RequestContext) -> CollectionList:
        return CollectionList(collections=tuple(await asyncio.to_thread(self._manager.list_all)))

    async def describe_collection(self, ref: CollectionRef, _: RequestContext) -> CollectionInfo:
        return await asyncio.to_thread(self._manager.describe, ref.name)

    async def delete_collection(self, ref: CollectionRef, _: RequestContext) -> CollectionDeleted:
        documents, chunks = await asyncio.to_thread(self._manager.delete, ref.name)
        return CollectionDeleted(name=ref.name, documents=documents, chunks=chunks)

    async def ingest(self, request: IngestRequest, _: RequestContext) -> IngestReply:
        return await self._ingestor.ingest(request.collection, request.documents, request.chunking)

    async def ingest_file(self, request: FileIngestRequest, _: RequestContext) -> IngestReply:
        self._manager.get(request.collection)  # unknown collection: 404 before extraction
        limits = ExtractLimits(
            max_chars=self._settings.max_document_chars,
            max_pages=self._settings.max_pdf_pages,
            max_content_bytes=self._settings.max_pdf_content_bytes,
        )
        text = await asyncio.to_thread(
            extract_text, request.data, request.media_type, request.filename, limits
        )
        metadata = dict(request.metadata)
        if request.filename:
            metadata.setdefault("filename", request.filename)
        document = DocumentIn(id=request.document_id, text=text, metadata=metadata)
        return await self._ingestor.ingest(request.collection, (document,), request.chunking)

    async def delete_documents(
        self, request: DeleteDocuments, _: RequestContext
    ) -> DocumentsDeleted:
        if not request.ids:
            raise BabelError(ErrorCode.INVALID_ARGUMENT, "no document ids", field="ids")
        collection = self._manager.get(request.collection)
        change = await asyncio.to_thread(self._manager.delete_documents, collection, request.ids)
        return DocumentsDeleted(
            collection=collection.name, documents=change.documents, chunks=len(change.removed)
        )

    async def list_documents(self, request: ListDocuments, _: RequestContext) -> DocumentList:
        collection = self._manager.get(request.collection)
        return await asyncio.to_thread(
            browse.list_documents, self._manager.store, collection, request
        )

    async def document_chunks(self, request: ChunksRequest, _: RequestContext) -> DocumentChunks:
        collection = self._manager.get(request.collection)
        return await asyncio.to_thread(
            browse.document_chunks, self._manager.store, collection, request
        )

    async def search(self, request: SearchRequest, _: RequestContext) -> SearchReply:
        return await self._searcher.search(request)

    async def embed(self, request: EmbedRequest, _: RequestContext) -> EmbedReply:
        self._check_served(request.model, "model")
        if not request.texts:
            raise BabelError(ErrorCode.INVALID_ARGUMENT, "input is empty", field="input")
        if len(request.texts) > MAX_EMBED_INPUTS:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"at most {MAX_EMBED_INPUTS} inputs per request",
                field="input",
            )
        for i, text in enumerate(request.texts):
            if not text.strip():
                raise BabelError(ErrorCode.INVALID_ARGUMENT, "text is empty", field=f"input[{i}]")
            if len(text) > self._settings.max_document_chars:
                raise BabelError(ErrorCode.INVALID_ARGUMENT, "text too long", field=f"input[{i}]")
        vectors, tokens = await self._embedder.embed(request.texts, request.input_type)
        return EmbedReply(
            model=self.model, dim=int(vectors.shape[1]), vectors=vectors.tobytes(), tokens=tokens
        )
