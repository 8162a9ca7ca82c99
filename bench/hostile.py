"""Hostile requests of issue 11, one place for the integration tests and ``bench/load.py``.

The payloads are the inputs that were quadratic, unbounded or a 500 before; ``catalogue``
lists one request (or a few) per class of the issue, each with the answers it may get, for a
benchmark that sends them while interactive load runs. The tests import the payloads and make
their own, stricter assertions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HUGE_INT = 2**70
"""Past every 64-bit field: a 422 naming the field, never a 500."""

HOSTILE_MARKDOWN = ("**a " + "*b " + "[c" + "![d](" + "<http:" + "_e ") * 800
"""18,400 characters of openers without closers (the Markdown patterns backtracked)."""

HOSTILE_HTML = "<a " * 3_000 + "</" * 2_000 + "<?" * 2_000
"""A file of unclosed tags: 60 KB of ``<a `` took html.parser 48 s (it rescans for ``>``)."""

HOSTILE_TRANSLATE_HTML = "<a " * 3_000
"""9,000 characters of ``<a `` for ``format: html``: text to the translator (each ``<`` that
opens no complete tag comes back escaped), read in linear time; sent many times in one
request, its sentences are translated once."""


def deep_dict(depth: int) -> dict[str, Any]:
    """``{"a": {"a": ...}}``, ``depth`` levels: past the services' JSON depth limit (32)."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def too_deep_json(prefix: bytes, depth: int = 5_000) -> bytes:
    """A JSON body ``{<prefix> [[[…]]]}`` nested past the decoder's recursion limit (~1000):
    a 400 ``invalid_json``, not a 500. ``prefix`` is the members before it, with the key."""
    return b"{" + prefix + b"[" * depth + b"]" * depth + b"}"


def long_sentences_text(sentences: int) -> str:
    """Many short sentences in one text: sentence splitting and per-sentence scoring are
    bounded (``BABEL_SENTIMENT_MAX_SENTENCES``) and run off the worker's event loop."""
    return " ".join(f"Item {i} is fine." for i in range(sentences))


# ---------------------------------------------------------------------- for the benchmark
@dataclass(frozen=True)
class Hostile:
    """One hostile HTTP request and the answers that count as handled."""

    kind: str
    """The issue's class, e.g. ``1 super-linear``."""
    name: str
    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    data: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    expect: tuple[int, ...] = (200,)


def catalogue(collection: str, model: str, *, max_upload_bytes: int) -> list[Hostile]:
    """One request or more per class that can be sent over HTTP without harming the stack
    (a dead engine, a Redis restart and deadlines need settings or signals: the tests have
    them). ``collection`` exists and holds documents; ``model`` is the generation model."""
    search = f"/v1/collections/{collection}/search"
    documents = f"/v1/collections/{collection}/documents"
    files = f"/v1/collections/{collection}/files"
    json_header = {"content-type": "application/json"}
    chat = {
        "model": model,
        "messages": [{"role": "user", "content": "Name a colour."}],
        "max_tokens": 8,
    }
    return [
        Hostile("1 super-linear", "markdown file", "POST", files,
                files={"file": ("hostile.md", HOSTILE_MARKDOWN.encode(), "text/markdown")},
                data={"max_chars": "20000", "id": "hostile-md"}),
        Hostile("1 super-linear", "html file", "POST", files,
                files={"file": ("hostile.html", HOSTILE_HTML.encode(), "text/html")},
                data={"max_chars": "20000", "id": "hostile-html"}),
        Hostile("1 super-linear", "html translation x32", "POST", "/v1/translate",
                json={"texts": [HOSTILE_TRANSLATE_HTML] * 32, "source": "en", "target": "de",
                      "format": "html"}),
        Hostile("2 amplification", "prompt list", "POST", "/v1/completions",
                json={"model": model, "prompt": ["x"] * 10_000, "max_tokens": 1},
                expect=(422,)),
        Hostile("2 amplification", "tiny chunks", "POST", documents,
                json={"documents": [{"id": "tiny", "text": "x " * 5_000}],
                      "chunking": {"max_chars": 100, "overlap_chars": 99}},
                expect=(422,)),
        Hostile("2 amplification", "$in of 5000", "POST", search,
                json={"query": "q", "filter": {"n": {"$in": list(range(5_000))}}},
                expect=(422,)),
        Hostile("4 shared identity", "X-Request-ID reused", "POST", "/v1/chat/completions",
                json=chat, headers={"X-Request-ID": "one-id-for-all"}),
        Hostile("6 bulk work", "classifier of 600", "POST", "/v1/classifiers",
                json={"name": "hostile-topics",
                      "examples": [{"text": f"Example number {i} of topic {i % 3}.",
                                    "label": f"t{i % 3}"} for i in range(600)]},
                expect=(201, 409)),
        Hostile("7 event loop", "2 texts, 400 sentences", "POST", "/v1/sentiment",
                json={"q": [long_sentences_text(400)] * 2, "sentences": True}),
        Hostile("10 storage", "upload over the cap", "POST", files,
                files={"file": ("big.txt", b"a " * (max_upload_bytes // 2 + 1), "text/plain")},
                expect=(413,)),
        Hostile("11 odd JSON", "huge ints", "POST", "/v1/completions",
                json={"model": model, "prompt": "x", "seed": HUGE_INT}, expect=(422,)),
        Hostile("11 odd JSON", "deep metadata", "POST", documents,
                json={"documents": [{"id": "deep", "text": "x", "metadata": deep_dict(40)}]},
                expect=(422,)),
        Hostile("11 odd JSON", "nested past the decoder", "POST", search,
                content=too_deep_json(b'"query": "q", "filter": '), headers=json_header,
                expect=(400,)),
        Hostile("11 odd JSON", "top_k 2**70", "POST", "/v1/detect",
                json={"q": "hello", "top_k": HUGE_INT}, expect=(422,)),
        Hostile("12 names", "name with a newline", "POST", "/v1/collections",
                json={"name": "kb\n"}, expect=(422,)),
    ]  # fmt: skip
