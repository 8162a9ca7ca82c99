"""Batch pieces without Redis or Celery: endpoint table, windows, per-line validation, store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.batch.endpoints import endpoint_of
from services.batch.records import ChunkResult, LineError, OutputLine
from services.batch.service import window_seconds
from services.batch.store import BatchStore
from services.batch.validation import validate_lines
from shared.errors import BabelError


def test_endpoints_match_their_routes_with_path_parameters() -> None:
    endpoint, params = endpoint_of("/v1/classifiers/topics/predict")
    assert endpoint.pattern == "/v1/classifiers/{name}/predict"
    assert params == {"name": "topics"}
    assert endpoint_of("/v1/chat/completions")[0].service == "generation"
    for url in ("/v1/rag/answer", "/v1/classifiers/a/b/predict", "/v1/detect/"):
        with pytest.raises(BabelError) as caught:
            endpoint_of(url)
        assert caught.value.field == "endpoint"


@pytest.mark.parametrize(("window", "seconds"), [("24h", 86_400), ("90m", 5_400), ("2s", 2)])
def test_completion_windows(window: str, seconds: int) -> None:
    assert window_seconds(window, 7 * 86_400) == seconds


@pytest.mark.parametrize("window", ["", "24", "0h", "1w", "8d", "-1h"])
def test_bad_completion_windows_name_the_field(window: str) -> None:
    with pytest.raises(BabelError) as caught:
        window_seconds(window, 7 * 86_400)
    assert caught.value.field == "completion_window"


def _line(custom_id: str, url: str, body: dict[str, object]) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def test_validation_reports_each_bad_line_and_plans_the_rest() -> None:
    content = "\n".join(
        [
            _line("a", "/v1/detect", {"q": "hi"}),
            "",
            "{not json",
            _line("a", "/v1/detect", {"q": "again"}),
            _line("b", "/v1/sentiment", {"q": "hi"}),
            _line("c", "/v1/detect", {"q": 3}),
            _line("d", "/v1/chat/completions", {"messages": [], "stream": True}),
            _line("e", "/v1/detect", {"q": ["x", "y"], "top_k": 2}),
        ]
    ).encode()
    endpoint, _ = endpoint_of("/v1/detect")
    found = validate_lines(content, endpoint, "/v1/detect")
    assert found.total == 7  # the blank line is no request
    assert [(e.line, e.code, e.param) for e in found.errors] == [
        (3, "invalid_json_line", None),
        (4, "duplicate_custom_id", "custom_id"),
        (5, "invalid_url", "url"),
        (6, "invalid_body", "body.q"),
        (7, "invalid_url", "url"),
    ]
    assert [(p.line, p.custom_id) for p in found.planned] == [(1, "a"), (8, "e")]
    assert [
        (n, out.custom_id, out.error.code if out.error else None) for n, out in found.invalid
    ] == [
        (5, "b", "invalid_url"),
        (6, "c", "invalid_body"),
        (7, "d", "invalid_url"),
    ]


def test_a_streaming_body_is_refused() -> None:
    endpoint, _ = endpoint_of("/v1/chat/completions")
    content = _line("s", "/v1/chat/completions", {"messages": [], "stream": True}).encode()
    [error] = validate_lines(content, endpoint, "/v1/chat/completions").errors
    assert error.param == "body.stream"


def test_a_redelivered_chunk_replaces_its_results(tmp_path: Path) -> None:
    store = BatchStore(tmp_path)
    line = OutputLine(id="x", custom_id="a", response=None, error=LineError(code="c", message="m"))
    store.put_chunk_result(
        "batch_1", ChunkResult(chunk=0, lines=[(1, line)], completed=0, failed=1)
    )
    store.put_chunk_result(
        "batch_1", ChunkResult(chunk=0, lines=[(1, line)], completed=0, failed=1)
    )
    assert store.finished_chunks("batch_1") == [0]
    result = store.chunk_result("batch_1", 0)
    assert result is not None
    assert len(result.lines) == 1
    assert [c.failed for c in store.chunk_counts("batch_1")] == [1]


def test_an_idempotency_key_is_claimed_once(tmp_path: Path) -> None:
    store = BatchStore(tmp_path)
    assert store.claim_key("batch", "k", "batch_1") == "batch_1"
    assert store.claim_key("batch", "k", "batch_2") == "batch_1"
    assert store.claim_key("file", "k", "file-3") == "file-3"


def test_ids_that_could_leave_the_store_are_unknown(tmp_path: Path) -> None:
    store = BatchStore(tmp_path)
    for bad in ("../etc", ".hidden", "a/b"):
        with pytest.raises(BabelError) as caught:
            store.get_batch(bad)
        assert caught.value.code == "not_found"
