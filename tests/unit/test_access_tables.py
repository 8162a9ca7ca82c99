"""The access tables: which scope each route needs, what each request costs, where keys come
from, and when keys are required. No Redis."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import shared.messages
from services.gateway.access.charges import CHARGES, FREE, UNBOUNDED_MAX_TOKENS, chars_of
from services.gateway.access.credentials import body_key, header_key, query_key
from services.gateway.access.scopes import required_scope, speaks_libretranslate
from services.gateway.access.settings import AccessSettings, bootstrap_digest, keys_required
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.access.records import MAX_DURATION_S, SCOPES, parse_duration, parse_scopes
from shared.access.tokens import digest
from shared.errors import BabelError
from shared.messages.base import Method
from shared.messages.generation import ChatMessage, GenerateRequest, Sampling
from shared.messages.langid import DetectRequest
from shared.settings import RedisSettings


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/schema/openapi.json", None),
        ("GET", "/ui", None),
        ("GET", "/ui/widget.js", None),
        ("GET", "/ui/assets/app.css", None),
        ("OPTIONS", "/v1/keys", None),
        ("GET", "/metrics", "admin"),
        ("GET", "/v1/keys", "admin"),
        ("DELETE", "/v1/keys/team-a", "admin"),
        ("GET", "/v1/services/tasks/ping", "admin"),
        ("GET", "/v1/collections", "search"),
        ("GET", "/v1/collections/kb", "search"),
        ("POST", "/v1/collections/kb/search", "search"),
        ("POST", "/v1/embeddings", "search"),
        ("POST", "/v1/collections", "ingest"),
        ("DELETE", "/v1/collections/kb", "ingest"),
        ("POST", "/v1/collections/kb/documents", "ingest"),
        ("POST", "/v1/collections/kb/files", "ingest"),
        ("DELETE", "/v1/collections/kb/documents/doc-1", "ingest"),
        ("POST", "/v1/chat/completions", "generate"),
        ("POST", "/v1/completions", "generate"),
        ("POST", "/v1/rag/answer", "generate"),
        ("POST", "/v1/translate", "translate"),
        ("POST", "/translate", "translate"),
        ("GET", "/languages", "translate"),
        ("POST", "/v1/detect", "analyze"),
        ("POST", "/detect", "analyze"),
        ("POST", "/v1/sentiment", "analyze"),
        ("POST", "/v1/classifiers/topics/predict", "analyze"),
        ("POST", "/v1/classifiers", "classifiers"),
        ("DELETE", "/v1/classifiers/topics", "classifiers"),
        ("POST", "/v1/files", "batch"),
        ("GET", "/v1/files/file-1/content", "batch"),
        ("POST", "/v1/batches", "batch"),
        ("POST", "/v1/batches/b-1/cancel", "batch"),
        ("GET", "/v1/something-new", "admin"),  # deny by default
        ("GET", "/elsewhere", "admin"),
        ("PUT", "/v1/collections/kb", "admin"),  # a method no rule names
    ],
)
def test_required_scope(method: str, path: str, scope: str | None) -> None:
    assert required_scope(method, path) == scope


def test_every_route_of_the_app_has_a_rule() -> None:
    """No route of today's app falls to the default by accident (admin routes say so)."""
    app = create_app(GatewaySettings(), RedisSettings())
    admin_prefixes = ("/v1/keys", "/v1/services", "/metrics")
    for route in app.routes:
        path = route.path_format.replace("{", "").replace("}", "") or "/"
        for method in sorted(getattr(route, "methods", ())):
            scope = required_scope(method, path)
            if scope == "admin":
                assert path.startswith(admin_prefixes), (method, path)
            assert scope is None or scope in SCOPES


def test_libretranslate_paths() -> None:
    assert speaks_libretranslate("/translate")
    assert speaks_libretranslate("/detect/")
    assert not speaks_libretranslate("/v1/detect")


def _request_types() -> set[type]:
    found: set[type] = set()
    for info in pkgutil.iter_modules(shared.messages.__path__):
        module = importlib.import_module(f"shared.messages.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Method):
                found.add(value.request)
    return found


def test_every_request_type_is_charged_or_free() -> None:
    types = _request_types()
    assert DetectRequest in types
    unclassified = {t.__name__ for t in types} - {t.__name__ for t in (*CHARGES, *FREE)}
    assert not unclassified, f"add these to CHARGES or FREE: {sorted(unclassified)}"


def test_charges() -> None:
    assert chars_of(DetectRequest(texts=("abc", "de"))) == 5
    chat = GenerateRequest(
        messages=(ChatMessage(role="user", content="hello"),),
        sampling=Sampling(max_tokens=10, n=2),
    )
    assert chars_of(chat) == 5 + 20
    assert chars_of(GenerateRequest(prompt="abc")) == 3 + UNBOUNDED_MAX_TOKENS


def _scope(headers: list[tuple[bytes, bytes]], query: bytes = b"") -> dict[str, object]:
    return {"type": "http", "headers": headers, "query_string": query}


def test_key_sources() -> None:
    assert header_key(_scope([(b"authorization", b"Bearer bsk_a")])) == "bsk_a"  # type: ignore[arg-type]
    assert header_key(_scope([(b"authorization", b"bearer  bsk_b ")])) == "bsk_b"  # type: ignore[arg-type]
    assert header_key(_scope([(b"authorization", b"Basic abc")])) is None  # type: ignore[arg-type]
    assert header_key(_scope([(b"x-api-key", b"bsk_c")])) == "bsk_c"  # type: ignore[arg-type]
    assert query_key(_scope([], b"q=x&api_key=bsk_d")) == "bsk_d"  # type: ignore[arg-type]
    assert body_key("application/json", b'{"api_key": "bsk_e"}') == "bsk_e"
    assert body_key("application/json", b'["not", "an", "object"]') is None
    assert body_key("application/json", b"{broken") is None
    assert body_key("application/x-www-form-urlencoded", b"q=a&api_key=bsk_f") == "bsk_f"
    multipart = (
        b'--B\r\nContent-Disposition: form-data; name="q"\r\n\r\nhi\r\n'
        b'--B\r\nContent-Disposition: form-data; name="api_key"\r\n\r\nbsk_g\r\n--B--\r\n'
    )
    assert body_key("multipart/form-data; boundary=B", multipart) == "bsk_g"
    assert body_key("multipart/form-data; boundary=B", b"garbage") is None
    assert body_key("text/plain", b"api_key=bsk_h") is None


@pytest.mark.parametrize(
    ("auth", "host", "required"),
    [
        ("auto", "127.0.0.1", False),
        ("auto", "::1", False),
        ("auto", "localhost", False),
        ("auto", "0.0.0.0", True),
        ("auto", "10.1.2.3", True),
        ("on", "127.0.0.1", True),
        ("off", "0.0.0.0", False),
    ],
)
def test_keys_required(auth: str, host: str, required: bool) -> None:
    settings = AccessSettings(auth=auth)  # type: ignore[arg-type]
    assert keys_required(settings, host) is required


def test_bootstrap_digest(tmp_path: object) -> None:
    from pathlib import Path

    assert bootstrap_digest(AccessSettings()) is None
    key = "k" * 40
    assert bootstrap_digest(AccessSettings(admin_key_hash=digest(key).upper())) == digest(key)
    secret = Path(str(tmp_path)) / "admin.key"
    secret.write_text(key + "\n")
    assert bootstrap_digest(AccessSettings(admin_key_file=str(secret))) == digest(key)
    secret.write_text("short\n")
    with pytest.raises(BabelError, match="at least 32"):
        bootstrap_digest(AccessSettings(admin_key_file=str(secret)))
    with pytest.raises(BabelError, match="64 hex"):
        bootstrap_digest(AccessSettings(admin_key_hash="abc"))


def test_scopes_and_durations() -> None:
    assert parse_scopes("generate, search") == ("search", "generate")
    assert parse_scopes("all") == SCOPES
    with pytest.raises(BabelError, match="unknown scope"):
        parse_scopes("search,root")
    assert parse_duration("90d") == 90 * 86_400
    assert parse_duration("12h") == 12 * 3600
    assert parse_duration("45") == 45
    with pytest.raises(BabelError):
        parse_duration("soon")
    # float() read these; "nan" and "inf" made keys whose expiry could not be compared or written
    for bad in ("nan", "inf", "1e3", "١٢", "0", "12h\n", "-5", f"{MAX_DURATION_S + 1}"):
        with pytest.raises(BabelError, match="is not a duration"):
            parse_duration(bad)
    assert parse_duration(f"{MAX_DURATION_S}") == MAX_DURATION_S
