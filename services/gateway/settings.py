"""Settings of the gateway (prefix ``BABEL_GATEWAY_``)."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import BaseSettings


class GatewaySettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_GATEWAY_"
    host: str = "127.0.0.1"
    port: int = 8080
    services: tuple[str, ...] = ("tasks", "retrieval", "generation")
    """Services that must have a live worker for /readyz to be green."""
    max_body_bytes: int = 1_048_576
    request_timeout_s: float = 30.0
    max_queue_depth: int = 1_000
    """A service whose request stream holds more entries than this gets 503 + Retry-After."""
    retry_after_s: int = 2
    max_in_flight_per_service: int = 256
    """Calls one gateway process waits on per service; more get 503 overloaded at once. Each
    holds a pooled Redis connection: keep services × this below ``BABEL_REDIS_MAX_CONNECTIONS``
    (checked at start)."""
    monitor_interval_s: float = 0.5
    max_batch: int = 128
    """Texts in one request (``q`` as a list)."""
    max_text_chars: int = 10_000
    debug: bool = False
    max_upload_bytes: int = 25 * 1_048_576
    max_upload_bytes_in_flight: int = 100 * 1_048_576
    """Bytes of uploaded files one gateway keeps on request streams at once (each file travels
    whole in its Redis stream entry); more get 503 overloaded. One file is always let through."""
    """Size limit of file uploads (``/v1/collections/{name}/files``)."""
    ingest_timeout_s: float = 900.0
    translate_timeout_s: float = 300.0
    """Translation by an LLM takes seconds a sentence: its requests may wait this long."""
    generation_timeout_s: float = 600.0
    """Chat, completions and RAG answers (a long answer on a CPU takes minutes)."""
    cors_origins: tuple[str, ...] = ()
    """Origins (``scheme://host[:port]``) whose pages may call the API, e.g. a page that embeds
    the ``<babel-search>`` widget; empty: no cross-origin access."""
    classifier_train_timeout_s: float = 300.0
    """Training a custom classifier embeds every example (thousands take a minute on a CPU)."""
    max_prompts: int = 16
    """Prompts in one ``/v1/completions`` request (``prompt`` as a list): one RPC each."""
    max_filter_terms: int = 100
    """Values in one search filter (each comparison and each ``$in``/``$nin`` item counts)."""
    max_search_languages: int = 32
    """Codes in a search's ``languages`` list."""
    max_json_depth: int = 32
    """Nesting of free-form JSON: metadata, filters, response_format JSON schemas."""
    chunk_min_chars: int = 100
    chunk_max_chars: int = 20_000
    chunk_max_overlap_fraction: float = 0.5
    """``overlap_chars`` may be at most this fraction of ``max_chars``."""
