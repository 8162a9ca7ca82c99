"""Search: dense (FAISS), BM25 (SQLite FTS5), and hybrid by reciprocal-rank fusion.

Hybrid fusion is language-gated by default: a BM25 hit counts only when its chunk is
in the query's language. Across languages BM25 matches names and numbers rather than
meaning, and naive fusion then loses to dense alone (see ``bench/REFERENCES.md``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from services.retrieval.collections import CollectionManager
from services.retrieval.filters import SqlFilter, build_filter, check_scope
from services.retrieval.ingest import check_model
from services.retrieval.settings import RetrievalSettings
from services.retrieval.store import Collection
from services.retrieval.text.fusion import rrf
from services.retrieval.text.lexical import fts_query, tokenize
from services.retrieval.text.stopwords import without_stopwords
from shared.errors import BabelError, ErrorCode
from shared.langid import LanguageIdentifier
from shared.messages.retrieval import Hit, SearchReply, SearchRequest
from shared.models.embedder import BatchingEmbedder


class Searcher:
    def __init__(
        self,
        manager: CollectionManager,
        embedder: BatchingEmbedder,
        identifier: LanguageIdentifier,
        settings: RetrievalSettings,
    ) -> None:
        self._manager = manager
        self._embedder = embedder
        self._identifier = identifier
        self._settings = settings

    def _validate(self, request: SearchRequest) -> None:
        if not request.query.strip():
            raise BabelError(ErrorCode.INVALID_ARGUMENT, "query is empty", field="query")
        if len(request.query) > self._settings.max_query_chars:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"query is longer than {self._settings.max_query_chars} characters",
                field="query",
            )
        if request.bm25_weight is not None and not 0 <= request.bm25_weight <= 1:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT, "bm25_weight must be 0..1", field="bm25_weight"
            )
        if not 1 <= request.k <= self._settings.max_k:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT, f"k must be 1..{self._settings.max_k}", field="k"
            )
        check_scope(request.filter, request.languages, self._settings)

    async def search(self, request: SearchRequest) -> SearchReply:
        self._validate(request)
        collection = self._manager.get(request.collection)
        sql_filter = (
            build_filter(request.filter, self._manager.store.field_types(collection))
            if request.filter
            else None
        )
        language = self._identifier.identify(request.query, 1)[0].language
        pool = max(request.k, self._settings.hybrid_candidates)
        dense: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        if request.mode in ("dense", "hybrid"):
            check_model(collection, self._embedder.embedder.name)
            vectors, _ = await self._embedder.embed([request.query], "query")
            dense = await self._dense(collection, vectors[0], pool, sql_filter, request.languages)
        if request.mode in ("bm25", "hybrid"):
            languages: Sequence[str] = request.languages
            if request.mode == "hybrid" and self._settings.hybrid_language_gate:
                # ("",) matches nothing: the gate and the caller's languages exclude each other
                gated = bool(languages) and language not in languages
                languages = ("",) if gated else (language,)
            lexical = await self._bm25(
                collection, request.query, language, pool, sql_filter, languages
            )
        if request.mode == "dense":
            ranked = dense[: request.k]
        elif request.mode == "bm25":
            ranked = lexical[: request.k]
        else:
            weight = (
                request.bm25_weight
                if request.bm25_weight is not None
                else self._settings.hybrid_bm25_weight
            )
            fused = rrf(
                [[i for i, _ in dense], [i for i, _ in lexical]],
                k=self._settings.hybrid_rrf_k,
                weights=[1.0, weight],
            )
            ranked = fused[: request.k]
        rows = await asyncio.to_thread(self._manager.store.chunks, [i for i, _ in ranked])
        hits = tuple(
            Hit(
                document_id=row.document_id,
                chunk_index=row.idx,
                text=row.text,
                start=row.start,
                end=row.end,
                score=score,
                language=row.language,
                metadata=row.metadata,
            )
            for chunk_id, score in ranked
            if (row := rows.get(chunk_id)) is not None
        )
        return SearchReply(
            collection=collection.name, mode=request.mode, query_language=language, hits=hits
        )

    async def _dense(
        self,
        collection: Collection,
        vector: np.ndarray,
        k: int,
        sql_filter: SqlFilter | None,
        languages: Sequence[str],
    ) -> list[tuple[int, float]]:
        def run() -> list[tuple[int, float]]:
            allowed = (
                self._manager.store.allowed(collection, sql_filter, languages)
                if sql_filter is not None or languages
                else None
            )
            return self._manager.dense(collection, vector, k, allowed)

        return await asyncio.to_thread(run)

    async def _bm25(
        self,
        collection: Collection,
        query: str,
        language: str,
        k: int,
        sql_filter: SqlFilter | None,
        languages: Sequence[str],
    ) -> list[tuple[int, float]]:
        match = fts_query(without_stopwords(tokenize(query, language), language))
        if match is None:
            return []
        return await asyncio.to_thread(
            self._manager.store.bm25, collection, match, k, sql_filter, languages
        )
