"""Reading a collection's contents back: its documents page by page, and consecutive chunks
of one document (the context around a search hit or a cited passage)."""

from __future__ import annotations

import json

from services.retrieval.store import Collection, DocStore
from shared.messages.retrieval import (
    MAX_CHUNKS_PAGE,
    MAX_DOCUMENTS_PAGE,
    ChunksRequest,
    DocumentChunks,
    DocumentInfo,
    DocumentList,
    ListDocuments,
    StoredPassage,
)


def list_documents(store: DocStore, collection: Collection, request: ListDocuments) -> DocumentList:
    limit = min(max(request.limit, 1), MAX_DOCUMENTS_PAGE)
    rows = store.documents(collection, request.after, limit)
    documents = tuple(
        DocumentInfo(
            id=document_id,
            chars=chars,
            chunks=chunks,
            languages=tuple(sorted(filter(None, languages.split(",")))),
            metadata=json.loads(metadata),
            updated_at=updated_at,
        )
        for document_id, chars, chunks, languages, updated_at, metadata in rows
    )
    next_after = documents[-1].id if len(documents) == limit else None
    return DocumentList(collection=collection.name, documents=documents, next_after=next_after)


def document_chunks(
    store: DocStore, collection: Collection, request: ChunksRequest
) -> DocumentChunks:
    limit = min(max(request.limit, 1), MAX_CHUNKS_PAGE)
    total, rows = store.document_chunks(
        collection, request.document_id, max(request.first, 0), limit
    )
    return DocumentChunks(
        collection=collection.name,
        document_id=request.document_id,
        total=total,
        chunks=tuple(
            StoredPassage(chunk_index=idx, start=start, end=end, text=text, language=language)
            for idx, start, end, text, language in rows
        ),
    )
