"""The one table of which scope each route family needs.

Rules are tried in order; the first whose method and path match decides. ``None`` means
open (no key). Anything no rule names needs ``admin``: a route added without a line here
is closed by default, never open by accident.
"""

from __future__ import annotations

import re
from typing import Final

OPEN: Final = None
ANY: Final = "*"

_SEGMENT = r"[^/]+"

# (methods or ANY, path pattern, scope or OPEN). Patterns match the whole path; {} is one segment.
RULES: Final[tuple[tuple[str, str, str | None], ...]] = (
    (ANY, "/healthz", OPEN),
    (ANY, "/readyz", OPEN),
    (ANY, "/schema", OPEN),
    (ANY, "/schema/.*", OPEN),
    (ANY, "/ui", OPEN),  # the search page and its widget send the user's key themselves
    (ANY, "/ui/.*", OPEN),
    (ANY, "/metrics", "admin"),  # key names and usage; or BABEL_METRICS_PORT without keys
    # admin: keys, what runs, dead letters
    (ANY, "/v1/keys", "admin"),
    (ANY, "/v1/keys/.*", "admin"),
    (ANY, "/v1/services", "admin"),
    (ANY, "/v1/services/.*", "admin"),
    (ANY, "/v1/dead-letters.*", "admin"),
    # search: read collections, search, embeddings
    ("GET", "/v1/collections", "search"),
    ("GET", "/v1/collections/{}", "search"),
    ("GET", "/v1/collections/{}/documents", "search"),  # list documents (the UI)
    ("GET", "/v1/collections/{}/chunks", "search"),  # a passage in its context (the UI)
    ("POST", "/v1/collections/{}/search", "search"),
    ("POST", "/v1/embeddings", "search"),
    # ingest: documents, files, collection create/delete
    ("POST", "/v1/collections", "ingest"),
    ("DELETE", "/v1/collections/{}", "ingest"),
    ("POST", "/v1/collections/{}/documents", "ingest"),
    ("POST", "/v1/collections/{}/documents/delete", "ingest"),
    ("DELETE", "/v1/collections/{}/documents/{}", "ingest"),
    ("POST", "/v1/collections/{}/files", "ingest"),
    # generate: chat, completions, RAG
    (ANY, "/v1/chat/completions", "generate"),
    (ANY, "/v1/completions", "generate"),
    (ANY, "/v1/models", "generate"),
    (ANY, "/v1/models/.*", "generate"),
    (ANY, "/v1/rag/.*", "generate"),
    # translate (native and LibreTranslate)
    (ANY, "/v1/translate", "translate"),
    (ANY, "/v1/translate/.*", "translate"),
    (ANY, "/translate", "translate"),
    (ANY, "/translate_file", "translate"),
    (ANY, "/languages", "translate"),
    # analyze: detect, sentiment, classifier predict (and reading classifiers)
    (ANY, "/v1/detect", "analyze"),
    (ANY, "/detect", "analyze"),
    (ANY, "/v1/sentiment", "analyze"),
    ("POST", "/v1/classifiers/{}/predict", "analyze"),
    ("GET", "/v1/classifiers", "analyze"),
    ("GET", "/v1/classifiers/{}", "analyze"),
    # classifiers: create/delete
    ("POST", "/v1/classifiers", "classifiers"),
    ("DELETE", "/v1/classifiers/{}", "classifiers"),
    # batch: jobs and their files
    (ANY, "/v1/files", "batch"),
    (ANY, "/v1/files/.*", "batch"),
    (ANY, "/v1/batches", "batch"),
    (ANY, "/v1/batches/.*", "batch"),
)
DEFAULT_SCOPE: Final = "admin"

LIBRETRANSLATE_PATHS: Final = frozenset(
    {"/translate", "/translate_file", "/detect", "/languages", "/frontend/settings"}
)
"""Routes that speak LibreTranslate: ``api_key`` in the body, its status codes."""

_COMPILED: Final = tuple(
    (
        None if methods == ANY else frozenset(methods.split(",")),
        re.compile(pattern.replace("{}", _SEGMENT) + "/?"),  # matched in full
        scope,
    )
    for methods, pattern, scope in RULES
)


def required_scope(method: str, path: str) -> str | None:
    """The scope ``method path`` needs, or ``None`` when it is open.

    ``OPTIONS`` (CORS preflight, which carries no credentials) is open everywhere: Litestar
    answers it with the allowed methods and runs no handler.
    """
    if method == "OPTIONS":
        return OPEN
    probe = "GET" if method == "HEAD" else method
    for methods, pattern, scope in _COMPILED:
        if (methods is None or probe in methods) and pattern.fullmatch(path):
            return scope
    return DEFAULT_SCOPE


def speaks_libretranslate(path: str) -> bool:
    return path.rstrip("/") in LIBRETRANSLATE_PATHS
