"""The RAG model's structured reply read as it streams, and the per-query relevance gate."""

from __future__ import annotations

import json

import pytest

from services.generation.answer_json import ANSWER_SCHEMA, AnswerReader
from services.generation.relevance import relevant


def _read(pieces: list[str]) -> tuple[AnswerReader, str]:
    reader = AnswerReader()
    return reader, "".join(reader.feed(piece) for piece in pieces)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1_000])
def test_the_answer_is_decoded_whatever_the_pieces(size: int) -> None:
    answer = 'Il mesure 330 m [1].\n"Tour" \\ \u00e9 \U0001f600 \u0627\u0644\u0628\u0631\u062c'
    text = json.dumps({"answerable": True, "answer": answer}, ensure_ascii=True)
    reader, decoded = _read([text[i : i + size] for i in range(0, len(text), size)])
    assert decoded == answer
    assert reader.answerable is True
    assert reader.finished


def test_the_verdict_is_known_before_the_answer() -> None:
    reader = AnswerReader()
    assert reader.feed('{ "answerable" :') == ""
    assert reader.answerable is None
    assert reader.feed(" false, ") == ""
    assert reader.answerable is False
    assert reader.feed('"answer": ""}') == ""
    assert reader.finished


def test_an_unfinished_reply_keeps_what_was_decoded() -> None:
    reader, decoded = _read(['{"answerable": true, "answer": "330 m', "etres \\u00"])
    assert decoded == "330 metres "
    assert not reader.finished


def test_the_schema_puts_the_verdict_first() -> None:
    assert list(ANSWER_SCHEMA["properties"]) == ["answerable", "answer"]
    assert ANSWER_SCHEMA["required"] == ["answerable", "answer"]


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([], False),
        ([0.69], False),  # under the floor
        ([0.75], True),  # one hit: the floor decides
        ([0.80, 0.79, 0.79, 0.78], False),  # the best does not stand out
        ([0.80, 0.77, 0.76, 0.78], True),  # 0.80 - median(0.77, 0.76, 0.78) = 0.03
        ([0.69, 0.60, 0.60], False),  # stands out, but under the floor
    ],
)
def test_relevance_is_decided_per_query(scores: list[float], expected: bool) -> None:
    assert relevant(scores, floor=0.70, margin=0.015) is expected
