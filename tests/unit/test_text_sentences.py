"""Sentence spans in many scripts: boundaries, guards, trimming and length fallback."""

from __future__ import annotations

import itertools
import unicodedata

import pytest

from shared.text.sentences import sentence_spans, split_long


def sentences(text: str, max_chars: int | None = None) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text, max_chars)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # en: titles, initials, a.m./p.m., decimals, quotes closing a sentence
            "Dr. Smith paid $3.50 for it at 5 p.m. today. J. R. R. Tolkien agreed! "
            "“Really?” she asked. Yes... The end",
            [
                "Dr. Smith paid $3.50 for it at 5 p.m. today.",
                "J. R. R. Tolkien agreed!",
                "“Really?” she asked.",
                "Yes...",
                "The end",
            ],
        ),
        (  # de: ordinals, "z. B.", "ca."
            "Am 3. Oktober 1990 wurde Deutschland wiedervereinigt. Das war z. B. für "
            "Berlin wichtig. Im 19. Jahrhundert gab es ca. 39 Staaten.",
            [
                "Am 3. Oktober 1990 wurde Deutschland wiedervereinigt.",
                "Das war z. B. für Berlin wichtig.",
                "Im 19. Jahrhundert gab es ca. 39 Staaten.",
            ],
        ),
        (  # ja: no spaces, brackets close
            "東京は日本の首都です。人口は約1400万人！「すごい。」と彼は言った。本当？",
            [
                "東京は日本の首都です。",
                "人口は約1400万人！",
                "「すごい。」",
                "と彼は言った。",
                "本当？",
            ],
        ),
        (  # zh: decimal inside a sentence
            "北京是中国的首都。它有三千多年的历史！你去过吗？价格是3.5元。",
            ["北京是中国的首都。", "它有三千多年的历史！", "你去过吗？", "价格是3.5元。"],
        ),
        (  # ar: Arabic question mark and Latin full stop
            "القاهرة هي عاصمة مصر. هل زرتها؟ نعم، زرتها مرتين!",
            ["القاهرة هي عاصمة مصر.", "هل زرتها؟", "نعم، زرتها مرتين!"],
        ),
        (  # ur: Urdu full stop
            "پاکستان ایک ملک ہے۔ اس کا دارالحکومت اسلام آباد ہے۔",
            ["پاکستان ایک ملک ہے۔", "اس کا دارالحکومت اسلام آباد ہے۔"],
        ),
        (  # hi: danda and double danda
            "भारत एक विशाल देश है। इसकी राजधानी नई दिल्ली है॥",
            ["भारत एक विशाल देश है।", "इसकी राजधानी नई दिल्ली है॥"],
        ),
        (  # th: spaces between Thai letters separate clauses; not before a number
            "ประเทศไทยมีประชากรประมาณ 70 ล้านคน กรุงเทพมหานครเป็นเมืองหลวง",
            ["ประเทศไทยมีประชากรประมาณ 70 ล้านคน", "กรุงเทพมหานครเป็นเมืองหลวง"],
        ),
        (  # ru: "т. е.", "г.", "ок."
            "Москва — столица России. Население ок. 13 млн, т. е. больше, чем в "
            "Лондоне. Это г. Москва! Правда?",
            [
                "Москва — столица России.",
                "Население ок. 13 млн, т. е. больше, чем в Лондоне.",
                "Это г. Москва!",
                "Правда?",
            ],
        ),
        (  # el: Greek question mark (U+037E)
            "Η Αθήνα είναι η πρωτεύουσα. Πού είναι η Θεσσαλονίκη\u037e Στο βορρά.",
            ["Η Αθήνα είναι η πρωτεύουσα.", "Πού είναι η Θεσσαλονίκη\u037e", "Στο βορρά."],
        ),
    ],
    ids=["en", "de", "ja", "zh", "ar", "ur", "hi", "th", "ru", "el"],
)
def test_sentences_per_language(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_lowercase_after_a_period_is_no_boundary() -> None:
    assert sentences("It costs approx. five euros. Fine.") == [
        "It costs approx. five euros.",
        "Fine.",
    ]
    assert sentences("Use etc. and so on. Next") == ["Use etc. and so on.", "Next"]


def test_line_breaks_paragraphs_and_hard_wrapped_prose() -> None:
    text = (
        "Title line\nThis hard-wrapped line\ncontinues here. Next one.\n\n"
        "new paragraph even in lowercase\n- bullet one\n- bullet two\r\nWindows line"
    )
    assert sentences(text) == [
        "Title line",
        "This hard-wrapped line\ncontinues here.",
        "Next one.",
        "new paragraph even in lowercase",
        "- bullet one",
        "- bullet two",
        "Windows line",
    ]


def test_spans_are_trimmed_ordered_and_offsets_into_the_original() -> None:
    text = "  \u200bFirst one.   Second one!\n\n\t Third。第四？  \n"
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["First one.", "Second one!", "Third。", "第四？"]
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t", "\u200b \ufeff"])
def test_blank_text_has_no_sentences(text: str) -> None:
    assert sentence_spans(text) == []


def test_long_sentences_split_at_whitespace_within_max_chars() -> None:
    text = "word " * 50 + "end."
    pieces = sentences(text, max_chars=32)
    assert all(len(p) <= 32 for p in pieces)
    assert all(not p.startswith("ord") for p in pieces)  # never inside a word
    assert " ".join(pieces).split() == text.split()


def test_no_space_scripts_split_after_commas_else_hard() -> None:
    text = "我们今天去了公园，然后去了博物馆，最后在饭店吃了晚饭还喝了很多很多的茶"
    pieces = sentences(text, max_chars=12)
    assert pieces[0] == "我们今天去了公园，"
    assert all(len(p) <= 12 for p in pieces)
    assert "".join(pieces) == text


@pytest.mark.parametrize("text", ["ที่นี่มีน้ำใจไมตรีดีมากจริงๆ" * 3, "हिन्दीभाषाकीलिपिदेवनागरीहै" * 3])
def test_hard_splits_never_strand_a_combining_mark(text: str) -> None:
    for start, end in split_long(text, 0, len(text), 7):
        assert end - start <= 7
        assert unicodedata.category(text[start])[0] != "M"


def test_split_long_rejects_a_non_positive_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split_long("abc", 0, 3, 0)
