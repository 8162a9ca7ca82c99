"""Multilingual tokens for BM25 (SQLite FTS5 or bm25s): pure functions, lazy resources.

``tokenize`` applies NFKC + casefold, drops Arabic/Hebrew vowel marks and tatweel, finds
word runs (letters, combining marks, digits) and splits each by script:

* Chinese (``language`` zh, or Han text with no kana when unknown): jieba search mode;
* Japanese, Korean, Thai, Lao, Khmer, Myanmar (and Han in Japanese): overlapping
  character bigrams over grapheme clusters (a lone character is a unigram);
* everything else: the word, Snowball-stemmed (PyStemmer) when the language has one.

Tokens hold only Unicode letters, marks and digits (no underscore, quote or space), so
they can be stored space-separated in an FTS5 column and double-quoted in a MATCH query.
Use an FTS5 tokenizer that keeps combining marks inside tokens, e.g.
``tokenize = "unicode61 remove_diacritics 0 categories 'L* M* N* Co'"``: the default
categories (``L* N* Co``) treat marks as separators, cutting Hindi, Thai and Arabic
tokens into their base letters. Index and query with the same ``language``.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from typing import Any

import Stemmer

_MAX_TOKEN_CHARS = 64
_HAN = "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"  # noqa: E501
_KANA = "\u3040-\u30ff\u31f0-\u31ff\U0001b000-\U0001b16f"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7ff"
_SEA = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u19e0-\u19ff\ua9e0-\ua9ff\uaa60-\uaa7f"
_RUNS = re.compile(
    f"(?P<cjk>[{_HAN}{_KANA}]+)|(?P<bigram>[{_HANGUL}]+|[{_SEA}]+)"
    f"|(?P<word>[^{_HAN}{_KANA}{_HANGUL}{_SEA}]+)"
)
_KANA_CHAR = re.compile(f"[{_KANA}]")
_HEBREW_POINTS = (0x05BF, 0x05C1, 0x05C2, 0x05C4, 0x05C5, 0x05C7)
# Arabic tatweel and vowel marks, Hebrew points and cantillation: dropped before matching.
_UNVOCALISED = dict.fromkeys(
    [0x0640, *range(0x064B, 0x0660), 0x0670, *range(0x0591, 0x05BE), *_HEBREW_POINTS]
)

# ISO 639-1 → Snowball algorithm (only those the installed PyStemmer has are used).
_SNOWBALL = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech",
    "da": "danish", "nl": "dutch", "en": "english", "eo": "esperanto", "et": "estonian",
    "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian", "lt": "lithuanian",
    "ne": "nepali", "no": "norwegian", "nb": "norwegian", "nn": "norwegian", "fa": "persian",
    "pl": "polish", "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian",
    "st": "sesotho", "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish",
    "yi": "yiddish",
}  # fmt: skip


def tokenize(text: str, language: str | None = None) -> list[str]:
    """BM25 tokens of ``text``; ``language`` is an ISO 639-1 code (``en``, ``zh-Hans``)."""
    code = base_language(language)
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_UNVOCALISED)
    chinese = code == "zh" or (code is None and _KANA_CHAR.search(folded) is None)
    stemmer = _stemmer(code)
    tokens: list[str] = []
    words: list[str] = []
    for run in _word_pattern().findall(folded):
        for part in _RUNS.finditer(run):
            piece, kind = part.group(), part.lastgroup
            if kind == "word":
                words.append(piece[:_MAX_TOKEN_CHARS])
                continue
            if words:
                tokens.extend(_stemmed(words, stemmer))
                words = []
            if kind == "cjk" and chinese and _KANA_CHAR.search(piece) is None:
                tokens.extend(_jieba_words(piece))
            else:
                tokens.extend(bigrams(piece))
    tokens.extend(_stemmed(words, stemmer))
    return tokens


def fts_query(tokens: Iterable[str]) -> str | None:
    """An FTS5 MATCH expression: each distinct token double-quoted, joined by ``OR``."""
    unique = dict.fromkeys(t for t in tokens if t)
    if not unique:
        return None
    return " OR ".join('"' + token.replace('"', '""') + '"' for token in unique)


def bigrams(run: str) -> list[str]:
    """Overlapping pairs of grapheme clusters (base + marks); one cluster → itself."""
    clusters = _cluster_pattern().findall(run)
    if len(clusters) < 2:
        return clusters
    return [a + b for a, b in itertools.pairwise(clusters)]


def base_language(language: str | None) -> str | None:
    """``"zh-Hans"`` → ``"zh"``, ``"pt_BR"`` → ``"pt"``; None or blank → None."""
    if not language or not language.strip():
        return None
    return language.strip().lower().replace("_", "-").split("-")[0]


def snowball_algorithm(language: str | None) -> str | None:
    """The PyStemmer algorithm for an ISO 639-1 code, or None when there is none."""
    code = base_language(language)
    name = _SNOWBALL.get(code, code) if code else None
    return name if name in _algorithms() else None


def warm_up(languages: Iterable[str] = ("zh",)) -> None:
    """Build the character classes, the stemmers and (for zh) jieba's dictionary now."""
    tokenize("warm up", None)
    for language in languages:
        _stemmer(base_language(language))
        if base_language(language) == "zh":
            _jieba()


@functools.cache
def _algorithms() -> frozenset[str]:
    return frozenset(Stemmer.algorithms())


@functools.cache
def _marks() -> str:
    """A regex class body of every combining mark (categories Mn, Mc, Me) in planes 0–1."""
    ranges: list[str] = []
    first: int | None = None
    for cp in range(0x20001):
        is_mark = cp < 0x20000 and unicodedata.category(chr(cp))[0] == "M"
        if is_mark and first is None:
            first = cp
        elif not is_mark and first is not None:
            ranges.append(f"{re.escape(chr(first))}-{re.escape(chr(cp - 1))}")
            first = None
    return "".join(ranges)


@functools.cache
def _word_pattern() -> re.Pattern[str]:
    return re.compile(f"(?:[^\\W_]|[{_marks()}])+")


@functools.cache
def _cluster_pattern() -> re.Pattern[str]:
    return re.compile(f".[{_marks()}]*", re.DOTALL)


_local = threading.local()


def _stemmer(code: str | None) -> Any:
    """A per-thread PyStemmer instance (they are not thread-safe), or None."""
    algorithm = snowball_algorithm(code)
    if algorithm is None:
        return None
    cache: dict[str, Any] = _local.__dict__.setdefault("stemmers", {})
    if algorithm not in cache:
        cache[algorithm] = Stemmer.Stemmer(algorithm)
    return cache[algorithm]


def _stemmed(words: list[str], stemmer: Any) -> list[str]:
    if not words or stemmer is None:
        return words
    return [stem for stem in stemmer.stemWords(words) if stem]


_jieba_lock = threading.Lock()
_jieba_tokenizer: list[Any] = []


def _jieba() -> Any:
    """jieba's own tokenizer instance, dictionary loaded once, logging silenced."""
    if not _jieba_tokenizer:
        with _jieba_lock:
            if not _jieba_tokenizer:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _jieba_tokenizer.append(tokenizer)
    return _jieba_tokenizer[0]


def _jieba_words(run: str) -> list[str]:
    return [word for word in _jieba().cut_for_search(run, HMM=True) if word.strip()]
