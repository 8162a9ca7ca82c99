"""Collections: create, list, describe, delete; ingest documents and files; search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter

from services.gateway.bounds import check_chunking, check_metadata, check_scope
from services.gateway.caller import Caller, ServiceCaller
from services.gateway.retrieval_schemas import (
    CreateCollectionBody,
    DeleteDocumentsBody,
    IngestBody,
    SearchBody,
)
from services.gateway.settings import GatewaySettings
from shared.errors import BabelError, ErrorCode
from shared.messages.retrieval import (
    CREATE_COLLECTION,
    DELETE_COLLECTION,
    DELETE_DOCUMENTS,
    DESCRIBE_COLLECTION,
    DOCUMENT_CHUNKS,
    INGEST,
    INGEST_FILE,
    LIST_COLLECTIONS,
    LIST_DOCUMENTS,
    MAX_CHUNKS_PAGE,
    MAX_DOCUMENTS_PAGE,
    SEARCH,
    Chunking,
    ChunksRequest,
    CollectionDeleted,
    CollectionInfo,
    CollectionList,
    CollectionRef,
    CollectionSpec,
    DeleteDocuments,
    DocumentChunks,
    DocumentList,
    DocumentsDeleted,
    FileIngestRequest,
    IngestReply,
    IngestRequest,
    ListCollections,
    ListDocuments,
    SearchReply,
    SearchRequest,
)


@dataclass
class FileUploadForm:
    file: UploadFile
    id: str | None = None
    metadata: str | None = None
    """A JSON object, as a string (multipart fields are text)."""
    max_chars: int | None = None
    overlap_chars: int | None = None


def _check_documents(body: IngestBody, settings: GatewaySettings) -> None:
    """Refuse the whole request before any batch is stored (nothing half-way)."""
    check_chunking(body.chunking.max_chars, body.chunking.overlap_chars, settings)
    if not body.documents:
        raise BabelError(ErrorCode.INVALID_ARGUMENT, "no documents", field="documents")
    seen: set[str] = set()
    for i, document in enumerate(body.documents):
        if not document.id.strip():
            raise BabelError(ErrorCode.INVALID_ARGUMENT, "id is empty", field=f"documents[{i}].id")
        if document.id in seen:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT, "duplicate id in request", field=f"documents[{i}].id"
            )
        seen.add(document.id)
        check_metadata(document.metadata, f"documents[{i}].metadata", settings)
        if not document.text.strip():
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT, "text is empty", field=f"documents[{i}].text"
            )


async def ingest_documents(
    name: str, data: IngestBody, caller: Caller, settings: GatewaySettings
) -> IngestReply:
    """One request, one RPC: the service checks every document before it stores any,
    embeds in batches, and commits the whole request in one transaction."""
    _check_documents(data, settings)
    request = IngestRequest(
        collection=name, documents=tuple(data.documents), chunking=data.chunking
    )
    return await caller.call(INGEST, request, timeout_s=settings.ingest_timeout_s)


class CollectionsController(Controller):
    path = "/v1/collections"
    tags = ["retrieval"]

    @post("/", status_code=201, summary="Create a collection (409 if the name exists)")
    async def create(self, data: CreateCollectionBody, caller: ServiceCaller) -> CollectionInfo:
        return await caller.call(
            CREATE_COLLECTION, CollectionSpec(name=data.name, model=data.model)
        )

    @get("/", summary="List collections with their statistics")
    async def list_all(self, caller: ServiceCaller) -> CollectionList:
        return await caller.call(LIST_COLLECTIONS, ListCollections())

    @get("/{name:str}", summary="Statistics of one collection")
    async def describe(self, name: str, caller: ServiceCaller) -> CollectionInfo:
        return await caller.call(DESCRIBE_COLLECTION, CollectionRef(name=name))

    @delete("/{name:str}", status_code=200, summary="Delete a collection and everything in it")
    async def remove(self, name: str, caller: ServiceCaller) -> CollectionDeleted:
        return await caller.call(DELETE_COLLECTION, CollectionRef(name=name))

    @post("/{name:str}/documents", status_code=200, summary="Upsert documents (by id)")
    async def ingest(
        self, name: str, data: IngestBody, caller: ServiceCaller, settings: GatewaySettings
    ) -> IngestReply:
        return await ingest_documents(name, data, caller, settings)

    @post("/{name:str}/files", status_code=200, summary="Upload a file (txt, md, html, pdf)")
    async def upload(
        self,
        name: str,
        data: Annotated[FileUploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        caller: ServiceCaller,
        settings: GatewaySettings,
    ) -> IngestReply:
        metadata: dict[str, object] = {}
        if data.metadata:
            try:
                decoded = msgspec.json.decode(data.metadata)
            except msgspec.DecodeError as exc:
                raise BabelError(
                    ErrorCode.INVALID_ARGUMENT, f"metadata is not JSON: {exc}", field="metadata"
                ) from exc
            if not isinstance(decoded, dict):
                raise BabelError(
                    ErrorCode.INVALID_ARGUMENT, "metadata must be a JSON object", field="metadata"
                )
            metadata = decoded
        check_metadata(metadata, "metadata", settings)
        check_chunking(data.max_chars, data.overlap_chars, settings)
        document_id = data.id or data.file.filename
        if not document_id:
            raise BabelError(ErrorCode.INVALID_ARGUMENT, "give an id or a file name", field="id")
        payload = await data.file.read()
        request = FileIngestRequest(
            collection=name,
            document_id=document_id,
            data=payload,
            media_type=data.file.content_type or "application/octet-stream",
            filename=data.file.filename or None,
            metadata=metadata,
            chunking=Chunking(max_chars=data.max_chars, overlap_chars=data.overlap_chars),
        )
        with caller.upload_slot(len(payload)):
            return await caller.call(INGEST_FILE, request, timeout_s=settings.ingest_timeout_s)

    @get("/{name:str}/documents", summary="List documents by id, a page at a time")
    async def list_documents(
        self,
        name: str,
        caller: ServiceCaller,
        limit: Annotated[int, Parameter(ge=1, le=MAX_DOCUMENTS_PAGE)] = 50,
        after: Annotated[
            str | None, Parameter(description="the `next_after` of the previous page")
        ] = None,
    ) -> DocumentList:
        return await caller.call(
            LIST_DOCUMENTS, ListDocuments(collection=name, after=after, limit=limit)
        )

    @get("/{name:str}/chunks", summary="Consecutive chunks of one document (a hit in context)")
    async def chunks(
        self,
        name: str,
        caller: ServiceCaller,
        document_id: Annotated[str, Parameter(description="the document's id")],
        first: Annotated[int, Parameter(ge=0, description="index of the first chunk")] = 0,
        limit: Annotated[int, Parameter(ge=1, le=MAX_CHUNKS_PAGE)] = 3,
    ) -> DocumentChunks:
        return await caller.call(
            DOCUMENT_CHUNKS,
            ChunksRequest(collection=name, document_id=document_id, first=first, limit=limit),
        )

    @post("/{name:str}/documents/delete", status_code=200, summary="Delete documents by id")
    async def delete_documents(
        self, name: str, data: DeleteDocumentsBody, caller: ServiceCaller
    ) -> DocumentsDeleted:
        return await caller.call(
            DELETE_DOCUMENTS, DeleteDocuments(collection=name, ids=tuple(data.ids))
        )

    @delete(
        "/{name:str}/documents/{document_id:str}", status_code=200, summary="Delete one document"
    )
    async def delete_document(
        self, name: str, document_id: str, caller: ServiceCaller
    ) -> DocumentsDeleted:
        return await caller.call(
            DELETE_DOCUMENTS, DeleteDocuments(collection=name, ids=(document_id,))
        )

    @post("/{name:str}/search", status_code=200, summary="Dense, BM25 or hybrid search")
    async def search(
        self, name: str, data: SearchBody, caller: ServiceCaller, settings: GatewaySettings
    ) -> SearchReply:
        check_scope(data.filter, data.languages, settings)
        request = SearchRequest(
            collection=name,
            query=data.query,
            k=data.k,
            mode=data.mode,
            filter=data.filter,
            languages=tuple(data.languages),
            bm25_weight=data.bm25_weight,
        )
        return await caller.call(SEARCH, request)
