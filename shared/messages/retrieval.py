"""Retrieval service payloads: collections, ingest, search, embeddings."""

from __future__ import annotations

from typing import Any, Literal

from shared.messages.base import Message, Method

SearchMode = Literal["dense", "bm25", "hybrid"]
InputType = Literal["query", "passage"]

# Metadata is the user's own JSON object per document: typed as such, stored verbatim.
Metadata = dict[str, Any]


class CollectionSpec(Message, frozen=True, kw_only=True):
    name: str
    model: str | None = None
    """Embedding model; None means the service's configured model."""


class CollectionRef(Message, frozen=True, kw_only=True):
    name: str


class ListCollections(Message, frozen=True, kw_only=True):
    pass


class CollectionInfo(Message, frozen=True, kw_only=True):
    name: str
    model: str
    dim: int
    documents: int
    chunks: int
    languages: dict[str, int]
    index_type: str
    size_bytes: int
    created_at: float


class CollectionList(Message, frozen=True, kw_only=True):
    collections: tuple[CollectionInfo, ...]


class CollectionDeleted(Message, frozen=True, kw_only=True):
    name: str
    documents: int
    chunks: int


class Chunking(Message, frozen=True, kw_only=True):
    max_chars: int | None = None
    overlap_chars: int | None = None


class DocumentIn(Message, frozen=True, kw_only=True):
    id: str
    text: str
    metadata: Metadata = {}


class IngestRequest(Message, frozen=True, kw_only=True):
    collection: str
    documents: tuple[DocumentIn, ...]
    chunking: Chunking = Chunking()


class FileIngestRequest(Message, frozen=True, kw_only=True):
    collection: str
    document_id: str
    data: bytes
    media_type: str
    filename: str | None = None
    metadata: Metadata = {}
    chunking: Chunking = Chunking()


class IngestReply(Message, frozen=True, kw_only=True):
    collection: str
    documents: int
    chunks: int
    replaced: int
    """Documents that existed before and whose chunks were replaced (upsert)."""


class DeleteDocuments(Message, frozen=True, kw_only=True):
    collection: str
    ids: tuple[str, ...]


class DocumentsDeleted(Message, frozen=True, kw_only=True):
    collection: str
    documents: int
    chunks: int


MAX_DOCUMENTS_PAGE = 200
"""Most documents one ``list_documents`` page holds."""
MAX_CHUNKS_PAGE = 50
"""Most chunks one ``document_chunks`` call returns."""


class ListDocuments(Message, frozen=True, kw_only=True):
    collection: str
    after: str | None = None
    """Only ids after this one (the ``next_after`` of the previous page)."""
    limit: int = 50


class DocumentInfo(Message, frozen=True, kw_only=True):
    id: str
    chars: int
    chunks: int
    languages: tuple[str, ...]
    metadata: Metadata
    updated_at: float


class DocumentList(Message, frozen=True, kw_only=True):
    collection: str
    documents: tuple[DocumentInfo, ...]
    next_after: str | None
    """Pass as ``after`` for the next page; None on the last page."""


class ChunksRequest(Message, frozen=True, kw_only=True):
    """Consecutive chunks of one document (a passage in its context)."""

    collection: str
    document_id: str
    first: int = 0
    limit: int = 3


class StoredPassage(Message, frozen=True, kw_only=True):
    chunk_index: int
    start: int
    end: int
    text: str
    language: str


class DocumentChunks(Message, frozen=True, kw_only=True):
    collection: str
    document_id: str
    total: int
    """Chunks the document has."""
    chunks: tuple[StoredPassage, ...]


class SearchRequest(Message, frozen=True, kw_only=True):
    collection: str
    query: str
    k: int = 10
    mode: SearchMode = "hybrid"
    filter: Metadata | None = None
    """Metadata conditions: ``{"field": value}``, or ``{"field": {"$in": [...]}}`` with
    ``$eq $ne $in $nin $gt $gte $lt $lte``; all must hold."""
    languages: tuple[str, ...] = ()
    """Only chunks in these languages (ISO 639-1)."""
    bm25_weight: float | None = None
    """Hybrid only: weight of the BM25 ranking against dense (1.0); None = configured."""


class Hit(Message, frozen=True, kw_only=True):
    document_id: str
    chunk_index: int
    text: str
    start: int
    end: int
    score: float
    language: str
    metadata: Metadata


class SearchReply(Message, frozen=True, kw_only=True):
    collection: str
    mode: SearchMode
    query_language: str
    hits: tuple[Hit, ...]


class EmbedRequest(Message, frozen=True, kw_only=True):
    texts: tuple[str, ...]
    model: str | None = None
    input_type: InputType = "query"


class EmbedReply(Message, frozen=True, kw_only=True):
    model: str
    dim: int
    vectors: bytes
    """Row-major float32, ``len(texts) * dim`` values, L2-normalised."""
    tokens: int


def filter_terms(conditions: Metadata) -> int:
    """Values a search filter compares with: one per comparison, one per ``$in``/``$nin``
    item (each is one SQL parameter, so their number is bounded)."""
    terms = 0
    for condition in conditions.values():
        operations = condition if isinstance(condition, dict) else {"$eq": condition}
        for value in operations.values():
            terms += len(value) if isinstance(value, list) else 1
    return terms


SERVICE = "retrieval"
CREATE_COLLECTION = Method(SERVICE, "create_collection", CollectionSpec, CollectionInfo)
LIST_COLLECTIONS = Method(SERVICE, "list_collections", ListCollections, CollectionList)
DESCRIBE_COLLECTION = Method(SERVICE, "describe_collection", CollectionRef, CollectionInfo)
DELETE_COLLECTION = Method(SERVICE, "delete_collection", CollectionRef, CollectionDeleted)
INGEST = Method(SERVICE, "ingest", IngestRequest, IngestReply)
INGEST_FILE = Method(SERVICE, "ingest_file", FileIngestRequest, IngestReply)
DELETE_DOCUMENTS = Method(SERVICE, "delete_documents", DeleteDocuments, DocumentsDeleted)
SEARCH = Method(SERVICE, "search", SearchRequest, SearchReply)
LIST_DOCUMENTS = Method(SERVICE, "list_documents", ListDocuments, DocumentList)
DOCUMENT_CHUNKS = Method(SERVICE, "document_chunks", ChunksRequest, DocumentChunks)
EMBED = Method(SERVICE, "embed", EmbedRequest, EmbedReply)
