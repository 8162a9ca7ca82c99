"""Settings of the retrieval service (prefix ``BABEL_RETRIEVAL_``)."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import BaseSettings


class RetrievalSettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_RETRIEVAL_"
    model: str = "multilingual-e5-small"
    """A name prepared in the model cache (``babelstack models prepare``), a local
    sentence-transformers folder, or a Hugging Face id already in the HF cache."""
    query_prefix: str | None = None
    """Prefix for queries; None picks the model's own (``query: `` for e5 models)."""
    passage_prefix: str | None = None
    data_dir: str = ".babelstack/data/retrieval"
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu`` or ``cuda``."""
    threads: int = 0
    """Torch CPU threads; 0 keeps torch's default (all cores)."""
    embed_batch_size: int = 32
    embed_max_wait_ms: float = 2.0
    """How long the batcher waits for more texts from concurrent requests."""
    embed_max_queued: int = 4_096
    """Interactive texts (searches, embeddings) waiting for the model; more get 503 overloaded.
    Ingest is fed to the model in slices behind them and never refused for this."""
    chunk_max_chars: int = 1_000
    chunk_overlap_chars: int = 150
    chunk_min_chars: int = 100
    """The smallest ``max_chars`` a request may ask for (tiny chunks multiply the work)."""
    chunk_largest_chars: int = 20_000
    """The largest ``max_chars`` a request may ask for."""
    chunk_max_overlap_fraction: float = 0.5
    """``overlap_chars`` may be at most this fraction of ``max_chars``."""
    max_chunks_per_document: int = 10_000
    max_chunks_per_request: int = 20_000
    max_pdf_pages: int = 2_000
    max_pdf_content_bytes: int = 256 * 1_048_576
    """Decoded content streams of a PDF's pages, summed (pages may share one object)."""
    max_filter_terms: int = 100
    """Values in one search filter (each comparison and each ``$in``/``$nin`` item counts)."""
    max_search_languages: int = 32
    max_json_depth: int = 32
    """Nesting of metadata and filters."""
    max_document_chars: int = 2_000_000
    max_documents_per_request: int = 10_000
    max_query_chars: int = 4_000
    max_k: int = 200
    exact_max_chunks: int = 20_000
    """Past this many chunks a collection moves from exact search to an IVF index."""
    ivf_nprobe_fraction: float = 0.125
    ivf_min_scanned: int = 4_000
    """IVF probes enough lists to scan at least this many vectors per query."""
    hybrid_candidates: int = 100
    hybrid_rrf_k: int = 60
    hybrid_bm25_weight: float = 0.5
    """Weight of the BM25 list against the dense list (1.0) in reciprocal-rank fusion."""
    hybrid_language_gate: bool = True
    """In hybrid mode, BM25 hits count only when the chunk is in the query's language
    (across languages BM25 matches names and numbers, not meaning)."""
    snapshot_interval_s: float = 30.0
