"""Chunks: whole sentences, within max_chars, overlap, and offsets that round-trip."""

from __future__ import annotations

import itertools
import random

import pytest

from services.retrieval.text.chunking import Chunk, chunk_text
from shared.errors import BabelError, ErrorCode
from shared.text.sentences import sentence_spans

HANDCRAFTED = [
    "Dr. Smith paid $3.50 for the book. He left at 5 p.m. and said: “That’s it!” Then he "
    "went home... The U.S. economy grew 2.5% e.g. in Q3. J. R. R. Tolkien wrote it.",
    "Am 3. Oktober 1990 wurde Deutschland wiedervereinigt. Das war z. B. für Berlin "
    "wichtig.\n\nIm 19. Jahrhundert gab es ca. 39 Staaten. Heute sind es 16 Länder.",
    "東京は日本の首都です。人口は約1400万人です！「すごい」と彼は言った。本当ですか？" * 4,
    "北京是中国的首都。它有三千多年的历史！你去过吗？价格是3.5元。" * 5,
    "القاهرة هي عاصمة مصر وأكبر مدنها. هل زرتها من قبل؟ نعم، زرتها مرتين في الصيف!" * 3,
    "ประเทศไทยมีประชากรประมาณ 70 ล้านคน กรุงเทพมหานครเป็นเมืองหลวง ภาษาไทยเป็นภาษาราชการ " * 3,
    "Москва — столица России. Население ок. 13 млн человек. Это крупнейший город "
    "Европы! Правда? Да.\r\nНовая строка здесь.",
    "  leading and trailing space. \n\n  ",
    "x" * 500,
    "word " * 200,
]

_PIECES = [
    "Hello", "world", "Dr.", "3.14", "e.g.", "東京", "中文句子", "。", "！", "？", "مرحبا",
    "؟", "۔", "ภาษาไทย", "ไทย", "привет", "т. е.", "।", "…", "“quoted.”", "Élan",
    "e\u0301", "x" * 40, "長い文章" * 8, ".", "!", "?", "\u200b", "-", "(a)", "5.",
]  # fmt: skip
_SEPARATORS = [" ", " ", " ", "", "\n", "\n\n", "  ", "\t", "\r\n", " \u00a0"]


def random_texts(count: int, seed: int = 20240611) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 120)):
            parts.append(rng.choice(_PIECES))
            parts.append(rng.choice(_SEPARATORS))
        texts.append("".join(parts))
    return texts


def covered(text: str, chunks: list[Chunk]) -> set[int]:
    return {i for chunk in chunks for i in range(chunk.start, chunk.end)}


@pytest.mark.parametrize(("max_chars", "overlap_chars"), [(40, 0), (80, 30), (200, 60), (1, 0)])
def test_chunks_round_trip_fit_and_cover_the_text(max_chars: int, overlap_chars: int) -> None:
    for text in HANDCRAFTED + random_texts(60):
        chunks = chunk_text(text, max_chars, overlap_chars)
        for chunk in chunks:
            assert text[chunk.start : chunk.end] == chunk.text
            assert 0 < len(chunk.text) <= max_chars
            assert chunk.text == chunk.text.strip(" \t\r\n\u00a0\u200b")
        starts = [c.start for c in chunks]
        ends = [c.end for c in chunks]
        assert starts == sorted(set(starts)), "every chunk starts later"
        assert ends == sorted(set(ends)), "every chunk brings new text"
        visible = {i for i, ch in enumerate(text) if not ch.isspace() and ch != "\u200b"}
        assert visible <= covered(text, chunks)


def test_chunks_pack_whole_sentences() -> None:
    text = HANDCRAFTED[1]
    starts = {s for s, _ in sentence_spans(text)}
    ends = {e for _, e in sentence_spans(text)}
    chunks = chunk_text(text, 120, 0)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.start in starts
        assert chunk.end in ends
    assert chunks[0].text == (
        "Am 3. Oktober 1990 wurde Deutschland wiedervereinigt. Das war z. B. für Berlin wichtig."
    )


def test_overlap_repeats_trailing_sentences_within_the_budget() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(20))  # 27-28 chars each
    chunks = chunk_text(text, 100, 60)
    for previous, following in itertools.pairwise(chunks):
        shared = previous.end - following.start
        assert 0 < shared <= 60
        assert previous.text.endswith(text[following.start : previous.end])
    without = chunk_text(text, 100, 0)
    assert all(a.end < b.start for a, b in itertools.pairwise(without))
    assert len(chunks) > len(without)


def test_one_sentence_longer_than_max_chars_is_split() -> None:
    text = "Short one. " + "Lorem ipsum dolor sit amet " * 10 + "end. Tail."
    chunks = chunk_text(text, 50, 10)
    assert all(len(c.text) <= 50 for c in chunks)
    assert chunks[-1].text.endswith("Tail.")
    cjk = "東京は日本の首都で人口が多い" * 5  # one sentence, no spaces, no punctuation
    pieces = chunk_text(cjk, 16, 0)
    assert [len(c.text) for c in pieces] == [16, 16, 16, 16, 6]
    assert "".join(c.text for c in pieces) == cjk


@pytest.mark.parametrize("text", ["", "   \n\n\t"])
def test_blank_text_has_no_chunks(text: str) -> None:
    assert chunk_text(text, 100, 10) == []


@pytest.mark.parametrize(
    ("max_chars", "overlap_chars", "field"),
    [
        (0, 0, "chunking.max_chars"),
        (-5, 0, "chunking.max_chars"),
        (100, 100, "chunking.overlap_chars"),
        (100, 150, "chunking.overlap_chars"),
        (100, -1, "chunking.overlap_chars"),
    ],
)
def test_invalid_arguments_are_babel_errors(max_chars: int, overlap_chars: int, field: str) -> None:
    with pytest.raises(BabelError) as caught:
        chunk_text("Some text.", max_chars, overlap_chars)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert caught.value.field == field
