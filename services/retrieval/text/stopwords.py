"""Stopwords for BM25 *queries*: a query term like "der" or "the" is no evidence.

Documents keep every token (the index does not change); only the query drops the
tokens that the stopword list of its language (stopwords-iso) turns into. Without
this a same-language chunk that shares only function words with the query wins the
lexical list, and hybrid fusion promotes it over the right cross-language answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from services.retrieval.text.lexical import base_language, tokenize


@cache
def stop_tokens(language: str | None) -> frozenset[str]:
    """The BM25 tokens that the stopwords of ``language`` produce (empty if unknown)."""
    code = base_language(language)
    if code is None:
        return frozenset()
    import stopwordsiso

    if not stopwordsiso.has_lang(code):
        return frozenset()
    tokens: set[str] = set()
    for word in stopwordsiso.stopwords(code):
        tokens.update(tokenize(word, code))
    return frozenset(tokens)


def without_stopwords(tokens: Iterable[str], language: str | None) -> list[str]:
    stop = stop_tokens(language)
    return [token for token in tokens if token not in stop]
