"""The browser side of the gateway: the search UI's static files at ``/ui`` (the page, the
``<babel-search>`` widget at ``/ui/widget.js``) and the CORS allowlist that lets pages on
other origins call the API.

The files are plain ES modules and CSS in ``services/gateway/ui`` (package data: no build
step). They are served without an API key: they hold no data, and every API call they make
carries the key the user gives them.
"""

from __future__ import annotations

from pathlib import Path

from litestar.config.cors import CORSConfig
from litestar.datastructures import CacheControlHeader
from litestar.router import Router
from litestar.static_files import create_static_files_router

from services.gateway.observability import REQUEST_ID_HEADER

UI_DIR = Path(__file__).resolve().parent / "ui"
UI_PATH = "/ui"


def ui_router() -> Router:
    """``/ui`` serves ``index.html``; every other file by its name. Revalidated on each load,
    so an upgraded gateway never serves a stale mix of modules."""
    return create_static_files_router(
        path=UI_PATH,
        directories=[UI_DIR],
        html_mode=True,
        name="ui",
        include_in_schema=False,
        cache_control=CacheControlHeader(no_cache=True),
    )


def cors_config(origins: tuple[str, ...]) -> CORSConfig | None:
    """Cross-origin access for exactly these origins (``https://intranet.example``);
    none at all when the list is empty."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["authorization", "content-type", REQUEST_ID_HEADER],
        expose_headers=[REQUEST_ID_HEADER, "retry-after"],
        max_age=600,
    )
