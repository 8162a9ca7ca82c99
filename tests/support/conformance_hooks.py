"""Schemathesis hooks for the conformance run (``SCHEMATHESIS_HOOKS``).

Generation stays short.
A generated chat, completion or RAG request may ask for up to 2^31 tokens, or name none (the
engine then writes until the context is full): at SmolLM2's ~30 tokens/s on a busy 2-core
machine one such request takes minutes. Before each call, a token count the schema accepts
is lowered to at most ``MAX_TOKENS`` and a missing one is set to it. Both stay valid, so a
positive case stays positive; a count the schema refuses (0, -1, 2^31, "x") is sent as
generated, so negative cases keep their defect.

Embeddings' ``dimensions`` must be the served model's own (e5-small: 384; it cannot shorten
vectors), a fact about the running model that the document cannot state: a valid count is
sent as the model's, an invalid one as generated. Likewise ``overlap_chars`` may be at most
half of ``max_chars`` (or of the retrieval service's default chunk size when none is given),
a relation between two fields that JSON Schema cannot state: a valid overlap above it is
lowered to it; and the documents of one ingest request must have distinct ids (a rule
over the items' fields): a repeated id gets a suffix.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from services.gateway.settings import GatewaySettings
from services.retrieval.settings import RetrievalSettings

MAX_TOKENS = 8
EMBEDDING_DIMENSIONS = 384
GENERATION_PATHS = {"/v1/chat/completions", "/v1/completions", "/v1/rag/answer"}
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")
UPPER = 2**31 - 1
OVERLAP_FRACTION = 0.5
CHUNK_PATHS = {"/v1/collections/{name}/documents", "/v1/collections/{name}/files"}


def _chunking(chunking: dict[str, Any]) -> dict[str, Any]:
    """A valid overlap lowered to half of a valid chunk size (or the service's default)."""
    gateway = GatewaySettings()
    overlap, size = chunking.get("overlap_chars"), chunking.get("max_chars")
    most = int(gateway.chunk_max_chars * OVERLAP_FRACTION)
    if not _integer(overlap) or not 0 <= overlap <= most:
        return chunking
    if size is None:
        size = RetrievalSettings().chunk_max_chars
    if not _integer(size) or not gateway.chunk_min_chars <= size <= gateway.chunk_max_chars:
        return chunking
    return {**chunking, "overlap_chars": min(int(overlap), int(size * OVERLAP_FRACTION))}


def _unique_ids(documents: Any) -> Any:
    """Documents of one request with distinct ids (a rule over list items' fields)."""
    if not isinstance(documents, list):
        return documents
    seen: set[str] = set()
    unique = []
    for i, document in enumerate(documents):
        if isinstance(document, dict) and isinstance(document.get("id"), str):
            if document["id"] in seen:
                document = {**document, "id": f"{document['id']}-{i}"}
            seen.add(document["id"])
        unique.append(document)
    return unique


def _integer(value: Any) -> bool:
    """An integer as JSON Schema sees one (``8.0`` is one)."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _valid(value: Any) -> bool:
    return _integer(value) and 1 <= value <= UPPER


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if not isinstance(case.body, dict):
        return
    if case.operation.path == "/v1/embeddings" and _valid(case.body.get("dimensions")):
        case.body = {**case.body, "dimensions": EMBEDDING_DIMENSIONS}
    if case.operation.path in CHUNK_PATHS:
        body = case.body
        if isinstance(body.get("chunking"), dict):
            body = {**body, "chunking": _chunking(body["chunking"])}
        if "documents" in body:
            body = {**body, "documents": _unique_ids(body["documents"])}
        case.body = _chunking(body)
    if case.operation.path not in GENERATION_PATHS:
        return
    body = dict(case.body)
    for field in TOKEN_FIELDS:
        if _valid(body.get(field)):
            body[field] = min(int(body[field]), MAX_TOKENS)
    if not any(field in body for field in TOKEN_FIELDS):
        body["max_tokens"] = MAX_TOKENS
    case.body = body
