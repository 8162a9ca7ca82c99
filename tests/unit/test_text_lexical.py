"""BM25 tokens: normalisation, stemming, jieba, bigrams, scripts, FTS5 safety."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import unicodedata

import pytest

from services.retrieval.text.lexical import (
    base_language,
    bigrams,
    fts_query,
    snowball_algorithm,
    tokenize,
)
from tests.unit.test_text_chunking import HANDCRAFTED, random_texts

FTS5_TOKENIZE = "tokenize = \"unicode61 remove_diacritics 0 categories 'L* M* N* Co'\""


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("The runners were running quickly", "en", ["the", "runner", "were", "run", "quick"]),
        ("Die Häuser der Straße", "de", ["die", "haus", "der", "strass"]),
        ("Las ciudades españolas", "es", ["las", "ciudad", "español"]),
        ("Москва — столица России", "ru", ["москв", "столиц", "росс"]),
        ("المكتبة الكبيرة", "ar", ["مكتب", "كبير"]),
        ("東京は日本", "ja", ["東京", "京は", "は日", "日本"]),
        ("서울에서 만나요", "ko", ["서울", "울에", "에서", "만나", "나요"]),
        ("猫", "ja", ["猫"]),
        ("ＡＢＣ１２３ foo_bar", None, ["abc123", "foo", "bar"]),
        ("iPhone 15 は Apple の製品", "ja", ["iphone", "15", "は", "apple", "の製", "製品"]),
    ],
    ids=["en", "de", "es", "ru", "ar", "ja", "ko", "single", "nfkc", "mixed"],
)
def test_tokens(text: str, language: str | None, expected: list[str]) -> None:
    assert tokenize(text, language) == expected


def test_chinese_uses_jieba_search_mode() -> None:
    tokens = tokenize("中华人民共和国成立于1949年，首都是北京。", "zh")
    assert {"中华人民共和国", "共和国", "人民", "北京", "1949", "首都"} <= set(tokens)
    assert tokenize("北京", "zh-Hans") == ["北京"]
    assert tokenize("首都北京", None) == tokenize("首都北京", "zh")  # Han without kana


def test_kana_makes_unknown_cjk_text_japanese() -> None:
    assert tokenize("東京は日本の首都", None) == tokenize("東京は日本の首都", "ja")


def test_thai_bigrams_keep_marks_with_their_letters() -> None:
    tokens = tokenize("ที่นี่ประเทศไทย", "th")
    assert tokens[0] == "ที่นี่"
    assert all(unicodedata.category(t[0])[0] != "M" for t in tokens)
    assert bigrams("ไทย") == ["ไท", "ทย"]


def test_arabic_vowel_marks_and_tatweel_do_not_change_tokens() -> None:
    assert tokenize("الْمَكْتَبَةُ الكبـــيرة", "ar") == tokenize("المكتبة الكبيرة", "ar")


@pytest.mark.parametrize(
    ("language", "algorithm"),
    [
        ("en", "english"),
        ("EN-us", "english"),
        ("pt_BR", "portuguese"),
        ("nb", "norwegian"),
        ("german", "german"),
        ("zh", None),
        ("xx", None),
        (None, None),
        ("  ", None),
    ],
)
def test_language_codes_map_to_snowball(language: str | None, algorithm: str | None) -> None:
    assert snowball_algorithm(language) == algorithm


def test_base_language() -> None:
    assert base_language("zh-Hant-TW") == "zh"
    assert base_language(None) is None


def test_unknown_language_is_not_stemmed() -> None:
    assert tokenize("running runners", "xx") == ["running", "runners"]
    assert tokenize("running runners", None) == ["running", "runners"]


def test_tokens_are_short_and_only_letters_marks_digits() -> None:
    assert tokenize("a" * 500, "en") == ["a" * 64]
    for text in [*HANDCRAFTED, *random_texts(40, seed=7)]:
        for language in ("en", "zh", "ja", "th", "ar", None):
            for token in tokenize(text, language):
                assert token
                assert all(unicodedata.category(ch)[0] in "LMN" for ch in token), token


def test_fts_query_quotes_deduplicates_and_handles_empty() -> None:
    assert fts_query(["run", "fast", "run", ""]) == '"run" OR "fast"'
    assert fts_query([]) is None
    assert fts_query(tokenize("... !!! ...", "en")) is None
    assert fts_query(['a"b']) == '"a""b"'


def test_tokens_round_trip_through_sqlite_fts5() -> None:
    documents = {
        "en": "The quick brown foxes were jumping over lazy dogs.",
        "de": "Die schnellen Füchse sprangen über die faulen Hunde.",
        "zh": "中华人民共和国成立于1949年，首都是北京。",
        "ja": "東京は日本の首都で、人口が多い都市です。",
        "ar": "القاهرة هي عاصمة مصر وأكبر مدنها.",
        "th": "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
        "hi": "भारत की राजधानी नई दिल्ली है।",
    }
    queries = {
        "en": "jumped fox",
        "de": "schneller Hund",
        "zh": "北京是首都",
        "ja": "日本の首都",
        "ar": "عاصمة مصر",
        "th": "เมืองหลวงไทย",
        "hi": "भारत की राजधानी",
    }
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE docs USING fts5(language UNINDEXED, tokens, {FTS5_TOKENIZE})")
    db.execute("CREATE VIRTUAL TABLE vocab USING fts5vocab(docs, 'row')")
    stored: set[str] = set()
    for language, text in documents.items():
        tokens = tokenize(text, language)
        stored.update(tokens)
        db.execute(
            "INSERT INTO docs (language, tokens) VALUES (?, ?)", (language, " ".join(tokens))
        )
    assert {row[0] for row in db.execute("SELECT term FROM vocab")} == stored
    for language, query in queries.items():
        match = fts_query(tokenize(query, language))
        best = db.execute(
            "SELECT language FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT 1", (match,)
        ).fetchone()
        assert best == (language,), (language, match)


def test_importing_the_package_loads_no_segmenter() -> None:
    code = "import sys, services.retrieval.text; assert 'jieba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
