"""Bounds on what one request may ask for (issue 11, classes 2, 11, 12): each a setting,
each refused with an error that names the field; work counted as it goes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from services.gateway.access.scopes import DEFAULT_SCOPE, required_scope
from services.gateway.app import create_app
from services.gateway.bounds import check_chunking, check_metadata, check_prompts, check_scope
from services.gateway.controllers.keys import CreateKeyBody
from services.gateway.settings import GatewaySettings
from services.generation.engine import _finish_reason
from services.generation.sampling import check_json_schema
from services.retrieval import collections, filters
from services.retrieval.ingest import Ingestor
from services.retrieval.settings import RetrievalSettings
from services.retrieval.store import SQL_VARIABLES, DocStore, NewChunk, NewDocument
from services.retrieval.text.chunking import TooManyChunks, chunk_text
from services.retrieval.text.extract import ExtractLimits, extract_text
from services.tasks.classifiers import store as classifiers
from shared.access.records import check_name as check_key_name
from shared.errors import BabelError, ErrorCode
from shared.json_shape import check_json
from shared.messages.retrieval import Chunking, DocumentIn, filter_terms
from shared.rpc.handlers import RequestContext
from tests.support.pdf import make_shared_content_pdf

GATEWAY = GatewaySettings()
RETRIEVAL = RetrievalSettings()


def refused(call: Any, *args: Any, **kwargs: Any) -> BabelError:
    with pytest.raises(BabelError) as caught:
        call(*args, **kwargs)
    assert caught.value.code in (ErrorCode.INVALID_ARGUMENT, ErrorCode.INVALID_SCHEMA)
    return caught.value


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# ------------------------------------------------------------------ odd but valid JSON
def test_integers_past_64_bits_are_refused_where_they_are() -> None:
    check_json({"a": [2**63 - 1, -(2**63)]}, "metadata", 32)
    error = refused(check_json, {"a": [1, {"b": 2**64}]}, "metadata", 32)
    assert error.field == "metadata.a[1].b"
    assert "64-bit" in str(error)
    error = refused(check_json, {"n": 10**5000}, "filter", 32)  # no 4,300-digit str() limit hit
    assert error.field == "filter.n"


def test_nesting_is_bounded_without_recursion() -> None:
    check_json(nested(32), "metadata", 32)
    error = refused(check_json, nested(33), "metadata", 32)
    assert error.field is not None
    assert error.field.startswith("metadata.a.a")
    refused(check_json, nested(100_000), "metadata", 32)  # recursion would overflow here


def test_a_json_schema_too_deep_for_the_checker_is_a_clear_error() -> None:
    schema: dict[str, Any] = {"type": "array"}
    inner = schema
    for _ in range(300):  # jsonschema's own check overflowed the stack at ~200 levels
        inner["items"] = {"type": "array"}
        inner = inner["items"]
    error = refused(check_json_schema, schema)
    assert error.field == "response_format.json_schema.schema.items" + ".items" * 63


# ------------------------------------------------------------------ amplification
def test_completions_prompt_lists_are_bounded() -> None:
    check_prompts(["x"] * GATEWAY.max_prompts, GATEWAY)
    assert refused(check_prompts, ["x"] * (GATEWAY.max_prompts + 1), GATEWAY).field == "prompt"


def test_filter_values_and_languages_are_bounded_at_gateway_and_service() -> None:
    big_in = {"year": {"$in": list(range(101))}, "team": "ops"}
    assert filter_terms(big_in) == 102
    assert filter_terms({"a": 1, "b": {"$gte": 1, "$lt": 3}}) == 3
    for check, settings in ((check_scope, GATEWAY), (filters.check_scope, RETRIEVAL)):
        check({"year": {"$in": list(range(99))}, "team": "ops"}, ["de"] * 32, settings)
        assert refused(check, big_in, [], settings).field == "filter"
        assert refused(check, None, ["de"] * 33, settings).field == "languages"
        assert refused(check, {"n": 2**70}, [], settings).field == "filter.n"


def test_metadata_is_checked_per_document() -> None:
    error = refused(check_metadata, {"n": 2**64}, "documents[3].metadata", GATEWAY)
    assert error.field == "documents[3].metadata.n"


def test_chunking_needs_a_sane_size_and_overlap_at_both_ends() -> None:
    check_chunking(100, 50, GATEWAY)
    assert refused(check_chunking, 99, None, GATEWAY).field == "chunking.max_chars"
    assert refused(check_chunking, 100, 51, GATEWAY).field == "chunking.overlap_chars"
    ingestor = Ingestor(None, None, None, RETRIEVAL)  # type: ignore[arg-type]
    assert ingestor._chunking(Chunking(max_chars=100, overlap_chars=50)) == (100, 50)
    for chunking, field in (
        (Chunking(max_chars=50), "chunking.max_chars"),
        (Chunking(max_chars=100, overlap_chars=99), "chunking.overlap_chars"),
    ):
        error = refused(ingestor._chunking, chunking)
        assert error.field == field


def test_chunks_are_counted_as_they_are_made() -> None:
    text = "A short sentence here. " * 2_000  # 46,000 characters
    assert len(chunk_text(text, 100, 50)) > 500
    with pytest.raises(TooManyChunks):
        chunk_text(text, 100, 50, max_chunks=500)
    settings = RetrievalSettings(max_chunks_per_document=50)
    ingestor = Ingestor(None, None, None, settings)  # type: ignore[arg-type]
    error = refused(ingestor._prepare_all, [DocumentIn(id="d", text=text)], 100, 0)
    assert error.field == "documents[0].text"
    assert "more than 50 chunks" in str(error)


def test_pdf_pages_sharing_one_content_object_stop_at_the_character_limit() -> None:
    pdf = make_shared_content_pdf(300, ["The same line of text on every page."] * 20)
    assert len(pdf) < 50_000
    error = refused(extract_text, pdf, "application/pdf", limits=ExtractLimits(max_chars=20_000))
    assert error.field == "file"
    assert "more than 20000 characters" in str(error)
    error = refused(extract_text, pdf, "application/pdf", limits=ExtractLimits(max_pages=299))
    assert "300 pages; at most 299" in str(error)
    limits = ExtractLimits(max_content_bytes=100_000)  # 300 pages x ~780 bytes
    assert "bytes of content" in str(refused(extract_text, pdf, "application/pdf", limits=limits))
    error = refused(
        extract_text, b"x" * 1_001, "text/markdown", limits=ExtractLimits(max_chars=1_000)
    )
    assert "more than 1000 characters" in str(error)


def test_openapi_states_the_bounds_the_settings_set() -> None:
    settings = GatewaySettings(max_prompts=5, max_search_languages=7, chunk_min_chars=123)
    document = create_app(settings, _redis()).openapi_schema.to_schema()
    schemas = document["components"]["schemas"]
    prompt = schemas["CompletionBody"]["properties"]["prompt"]["oneOf"]
    assert {
        "items": {"type": "string", "minLength": 1},
        "type": "array",
        "minItems": 1,
        "maxItems": 5,
    } in prompt
    assert schemas["SearchBody"]["properties"]["languages"]["maxItems"] == 7
    assert schemas["RagBody"]["properties"]["languages"]["maxItems"] == 7
    max_chars = schemas["Chunking"]["properties"]["max_chars"]["oneOf"][0]
    assert max_chars["minimum"] == 123
    assert max_chars["maximum"] == settings.chunk_max_chars
    assert "At most 100 values" in schemas["SearchBody"]["properties"]["filter"]["description"]


def _redis() -> Any:
    from shared.settings import RedisSettings

    return RedisSettings()


# ------------------------------------------------------------------ storage
def test_replacing_and_deleting_a_document_of_many_chunks(tmp_path: Path) -> None:
    """More chunks than SQLite's variable limit (32,766 here): every statement is batched."""
    store = DocStore(tmp_path / "store.sqlite")
    collection = store.create_collection("c", "m", 2)
    count = 40_000
    chunks = [
        NewChunk(idx=i, start=i, end=i + 1, text="x", language="en", tokens="x")
        for i in range(count)
    ]
    document = NewDocument(
        id="big", metadata={}, chars=count, chunks=chunks, vectors=np.ones((count, 2), np.float32)
    )
    store.upsert(collection, [document])
    replaced = store.upsert(collection, [document])
    assert replaced.replaced == 1
    assert len(replaced.removed) == count
    assert len(store.chunks(replaced.added[:1_500].tolist())) == 1_500
    deleted = store.delete_documents(collection, ["big"])
    assert deleted.documents == 1
    assert len(deleted.removed) == count
    assert SQL_VARIABLES < 999
    store.close()


# ------------------------------------------------------------------ names and identities
@pytest.mark.parametrize(
    ("check", "name"),
    [
        (collections.check_name, "kb\n"),
        (classifiers.check_name, "topics\n"),
    ],
)
def test_names_with_a_trailing_newline_are_refused(check: Any, name: str) -> None:
    check(name.strip())
    assert refused(check, name).field == "name"


def test_filter_fields_with_a_trailing_newline_are_refused() -> None:
    error = refused(filters.build_filter, {"year\n": 1}, {})
    assert error.field == "filter"


def test_engine_request_ids_are_the_calls_own() -> None:
    a = RequestContext(request_id="same", deadline=0, worker="w", deliveries=1)
    b = RequestContext(request_id="same", deadline=0, worker="w", deliveries=1)
    assert a.call_id != b.call_id


def test_an_engine_abort_is_an_error_not_a_finish_reason() -> None:
    assert _finish_reason("stop") == "stop"
    assert _finish_reason("length") == "length"
    with pytest.raises(BabelError) as caught:
        _finish_reason("abort")
    assert caught.value.code == ErrorCode.UNAVAILABLE
    assert caught.value.info.retryable


def test_key_names_and_scope_paths_are_matched_in_full() -> None:
    body = {"name": "team\n", "scopes": ["search"]}
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(body, CreateKeyBody)
    assert msgspec.convert({**body, "name": "team"}, CreateKeyBody).name == "team"
    assert refused(check_key_name, "team\n").field == "name"
    assert required_scope("GET", "/v1/collections") == "search"
    assert required_scope("GET", "/v1/collections\n") == DEFAULT_SCOPE
