"""The gateway's browser side without Redis: /ui's static files, the CORS allowlist, and
problems that name a bad query parameter."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from litestar import Litestar, get
from litestar.params import Parameter
from litestar.testing import TestClient

from services.gateway.frontend import UI_DIR, cors_config, ui_router
from services.gateway.problems import exception_handlers
from services.gateway.settings import GatewaySettings
from shared.settings import load_settings

ALLOWED = "http://intranet.test:3000"


@get("/v1/things")
async def things(
    limit: Annotated[int, Parameter(ge=1, le=5)], name: Annotated[str, Parameter()]
) -> dict[str, int]:
    return {"limit": limit}


def client(origins: tuple[str, ...]) -> TestClient[Litestar]:
    app = Litestar(
        route_handlers=[things, ui_router()],
        cors_config=cors_config(origins),
        exception_handlers=exception_handlers(),
    )
    return TestClient(app)


def test_the_ui_files_are_served_without_a_build_step() -> None:
    with client(()) as http:
        for path, kind in [
            ("/ui", "text/html"),
            ("/ui/", "text/html"),
            ("/ui/widget.js", "javascript"),
            ("/ui/app.js", "javascript"),
            ("/ui/styles.css", "text/css"),
            ("/ui/embed-example.html", "text/html"),
        ]:
            response = http.get(path)
            assert response.status_code == 200, path
            assert kind in response.headers["content-type"], path
        assert http.get("/ui/missing.js").status_code == 404
        assert http.get("/ui/../pyproject.toml").status_code == 404


def test_every_module_the_page_imports_is_shipped() -> None:
    """index.html and the modules import by absolute /ui/ paths: each must exist."""
    referred = {
        (source.name, name)
        for source in UI_DIR.glob("*.*")
        for name in re.findall(r'"/ui/([\w.-]+)"', source.read_text())
    }
    assert {name for _, name in referred} >= {"app.js", "widget.js", "styles.css", "i18n.js"}
    for source, name in referred:
        assert (UI_DIR / name).is_file(), f"{source} refers to missing /ui/{name}"


def test_cors_is_off_by_default() -> None:
    assert GatewaySettings().cors_origins == ()
    with client(()) as http:
        response = http.get("/v1/things?limit=1&name=x", headers={"origin": ALLOWED})
        assert "access-control-allow-origin" not in response.headers


def test_cors_allows_exactly_the_listed_origins() -> None:
    settings = load_settings(
        GatewaySettings, {"BABEL_GATEWAY_CORS_ORIGINS": f"{ALLOWED},https://other.test"}
    )
    assert settings.cors_origins == (ALLOWED, "https://other.test")
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }
    with client(settings.cors_origins) as http:
        allowed = http.options("/v1/things", headers={"origin": ALLOWED, **preflight})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == ALLOWED
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        refused = http.options("/v1/things", headers={"origin": "http://evil.test", **preflight})
        assert "access-control-allow-origin" not in refused.headers
        simple = http.get("/v1/things?limit=1&name=x", headers={"origin": ALLOWED})
        assert simple.headers["access-control-allow-origin"] == ALLOWED


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=9&name=x", "limit"), ("limit=x&name=x", "limit"), ("limit=1", "name")],
)
def test_a_bad_query_parameter_is_named(query: str, field: str) -> None:
    with client(()) as http:
        response = http.get(f"/v1/things?{query}")
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field, response.json()
