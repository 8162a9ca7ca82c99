"""HTTP bodies of the retrieval API (collections, documents, search, embeddings)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from shared.messages.retrieval import Chunking, DocumentIn, Metadata, SearchMode


class Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of request bodies: unknown fields are an error, not silently dropped."""


class CreateCollectionBody(Body, frozen=True):
    name: str
    model: str | None = None


class IngestBody(Body, frozen=True):
    documents: list[DocumentIn]
    chunking: Chunking = Chunking()


class DeleteDocumentsBody(Body, frozen=True):
    ids: list[str]


class SearchBody(Body, frozen=True):
    query: str
    k: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    mode: SearchMode = "hybrid"
    filter: Metadata | None = None
    languages: list[str] = []
    bm25_weight: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None


class EmbeddingsBody(Body, frozen=True):
    """OpenAI's embeddings request; ``input_type`` is BabelStack's addition (e5 prefixes)."""

    input: str | list[str]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    input_type: Literal["query", "passage"] = "query"
    dimensions: Annotated[int, msgspec.Meta(ge=1, le=65_536)] | None = None
    user: str | None = None


class Embedding(msgspec.Struct, frozen=True):
    index: int
    embedding: list[float] | str
    object: str = "embedding"


class EmbeddingUsage(msgspec.Struct, frozen=True):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResult(msgspec.Struct, frozen=True):
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
    object: str = "list"


class UploadForm(msgspec.Struct, frozen=True):
    """Fields of a multipart upload besides the file itself."""

    id: str | None = None
    metadata: dict[str, Any] | None = None
    max_chars: int | None = None
    overlap_chars: int | None = None
