"""The OpenAPI document and the API agree, without Redis: the error answers each operation
documents, the constraints stated beside the code that enforces them, and the regressions
the schemathesis run found (OPTIONS' Allow header, lax JSON types, durations)."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from litestar import Controller, Litestar, get, post
from litestar.testing import TestClient

from services.batch.service import window_seconds
from services.batch.settings import BatchSettings
from services.gateway.app import create_app
from services.gateway.openapi_constraints import MAX_STOP, NOT_BLANK, duration_pattern
from services.gateway.options_allow import correct_options_allow
from services.gateway.problems import PROBLEM_MEDIA_TYPE, exception_handlers
from services.gateway.settings import GatewaySettings
from services.gateway.strict_bodies import strict_json_body
from services.generation.sampling import MAX_STOP as SERVICE_MAX_STOP
from shared.access.records import DURATION_UNITS_S, MAX_DURATION_S, parse_duration
from shared.errors import BabelError
from shared.settings import RedisSettings

METHODS = ("get", "put", "post", "delete", "patch", "head")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(GatewaySettings(), RedisSettings())
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return schema


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_error_answer_is_a_problem(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                (media,) = response["content"]
                assert media == PROBLEM_MEDIA_TYPE, (method, path, status)
                schema = response["content"][media]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)


def test_the_statuses_follow_from_the_operation(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        statuses = set(operation["responses"])
        if "{" in path:
            assert "404" in statuses, (method, path)
        body = operation.get("requestBody")
        if body is not None:
            assert "413" in statuses, (method, path)
        if path in ("/detect", "/translate", "/languages"):
            assert "422" not in statuses  # LibreTranslate says 400
            continue
        if body is not None or operation.get("parameters"):
            assert "422" in statuses, (method, path)
    responses = {(m, p): set(o["responses"]) for m, p, o in _operations(document)}
    assert {"409", "502", "503", "504"} <= responses[("POST", "/v1/collections")]
    assert "409" in responses[("POST", "/v1/keys")]
    assert "503" in responses[("GET", "/readyz")]
    retry_after = document["paths"]["/v1/detect"]["post"]["responses"]["503"]["headers"]
    assert "Retry-After" in retry_after


def test_streamed_answers_are_documented_beside_the_json(document: dict[str, Any]) -> None:
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/rag/answer"):
        content = document["paths"][path]["post"]["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/event-stream"}
        assert "$ref" in content["application/json"]["schema"]  # not oneOf [it, {}]


def test_the_constraints_the_handlers_enforce_are_stated(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["ChatCompletionBody"]["required"] == ["messages"]
    assert schemas["ChatCompletionBody"]["properties"]["messages"]["minItems"] == 1
    assert schemas["IngestBody"]["properties"]["documents"]["minItems"] == 1
    assert schemas["DetectBody"]["additionalProperties"] is False
    text = schemas["DetectBody"]["properties"]["q"]["oneOf"][0]
    assert text["pattern"] == NOT_BLANK
    assert text["maxLength"] == GatewaySettings().max_text_chars
    assert schemas["FileUpload"]["properties"]["purpose"]["enum"] == ["batch"]
    assert "/translate" in document["paths"]
    assert document["paths"]["/translate"]["post"]["requestBody"]["content"].keys() == {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }
    classifier = document["paths"]["/v1/classifiers/{name}"]["get"]["parameters"][0]
    assert classifier["schema"]["pattern"].startswith("^[A-Za-z0-9]")


def test_created_resources_link_to_the_operations_that_take_them(
    document: dict[str, Any],
) -> None:
    operation_ids = {o["operationId"] for _, _, o in _operations(document)}
    for path, status, count in (
        ("/v1/classifiers", "201", 3),
        ("/v1/files", "200", 3),
        ("/v1/batches", "200", 2),
    ):
        links = document["paths"][path]["post"]["responses"][status]["links"]
        assert len(links) == count, path
        assert {link["operationId"] for link in links.values()} <= operation_ids


def test_not_blank_matches_what_the_gateway_calls_empty() -> None:
    for text in (" ", "\t\n", "\x1c\x1f", "\u3000", "\xa0"):
        assert not text.strip()
        assert re.search(NOT_BLANK, text) is None
    assert re.search(NOT_BLANK, " x ")


def test_the_stop_limit_is_the_generation_services() -> None:
    assert MAX_STOP == SERVICE_MAX_STOP


@pytest.mark.parametrize(
    "window", ["1s", "24h", "0024h", "7d", "8d", "604800s", "604801s", "0h", "١h", "24h\n", "h"]
)
def test_the_completion_window_pattern_is_the_services_rule(window: str) -> None:
    limit = BatchSettings().completion_window_max_s
    pattern = re.compile(duration_pattern(limit, {"s": 1, "m": 60, "h": 3600, "d": 86_400}))
    try:
        window_seconds(window, limit)
        accepted = True
    except BabelError:
        accepted = False
    assert bool(pattern.search(window)) == accepted


@pytest.mark.parametrize(
    "text", ["90d", "12h", "45", "2w", "nan", "inf", "1e3", "0", "-5", "1.5h", " 9d", "5209w"]
)
def test_the_key_duration_pattern_is_parse_durations_rule(text: str) -> None:
    pattern = re.compile(duration_pattern(MAX_DURATION_S, DURATION_UNITS_S, bare=True))
    try:
        parse_duration(text)
        accepted = True
    except BabelError:
        accepted = False
    assert bool(pattern.search(text)) == accepted


# ---------------------------------------------------------------- regressions
class Things(Controller):
    path = "/things"

    @get("/")
    async def list_all(self) -> list[str]:
        return []

    @post("/", status_code=200)
    async def add(self, data: dict[str, str]) -> dict[str, str]:
        return data


class Body(msgspec.Struct, forbid_unknown_fields=True):
    n: int = 1
    flag: bool = False
    ratio: float = 0.5


@post("/strict", status_code=200)
async def strict(data: Body) -> dict[str, Any]:
    return msgspec.to_builtins(data)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def http() -> Any:
    app = Litestar(
        route_handlers=[Things, strict],
        exception_handlers=exception_handlers(),
        before_request=strict_json_body,
    )
    correct_options_allow(app)
    with TestClient(app) as client:
        yield client


def test_options_names_every_method_of_the_path(http: Any) -> None:
    """Litestar's OPTIONS handler read the route of the path's first handler: GET only."""
    response = http.options("/things")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, OPTIONS, POST"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"flag": 0}, "flag"), ({"n": "2"}, "n"), ({"n": 1.5}, "n"), ({"ratio": "0.1"}, "ratio")],
)
def test_json_types_are_not_converted(http: Any, body: dict[str, Any], field: str) -> None:
    """Litestar converted with strict=False: 0 was false, "2" was 2."""
    response = http.post("/strict", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["field"] == field


def test_integral_numbers_are_integers_and_the_rest_still_works(http: Any) -> None:
    assert http.post("/strict", json={"n": 2.0, "ratio": 1}).json() == {
        "n": 2,
        "flag": False,
        "ratio": 1.0,
    }
    unknown = http.post("/strict", json={"other": 1})
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "other"
    broken = http.post("/strict", content=b"{", headers={"content-type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["code"] == "invalid_json"
