"""RAG's context fitting is linear: each passage is tokenized once, the prompt about once.

The engine here is a fake (``WordTokenFakeEngine``: one token per whitespace-separated word,
the chat template adds a fixed frame); it counts how much text went through the tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.generation.rag import RagPipeline
from services.generation.settings import GenerationSettings
from shared.messages.generation import ChatMessage
from shared.messages.retrieval import Hit

FRAME = 20


class WordTokenFakeEngine:
    def __init__(self, max_model_len: int) -> None:
        self.max_model_len = max_model_len
        self.encoded_words = 0
        self.chat_encodes = 0

    def encode_text(self, text: str) -> list[int]:
        words = text.split()
        self.encoded_words += len(words)
        return list(range(len(words)))

    def encode_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        self.chat_encodes += 1
        words = sum(len(m.content.split()) for m in messages)
        self.encoded_words += words
        return list(range(words + FRAME))

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join("w" for _ in ids)


def _hits(count: int, words: int) -> list[Hit]:
    text = " ".join(["word"] * words)
    return [
        Hit(
            document_id=f"d{i}",
            chunk_index=0,
            text=text,
            start=0,
            end=len(text),
            score=0.9,
            language="en",
            metadata={},
        )
        for i in range(count)
    ]


def _pipeline(engine: Any) -> RagPipeline:
    settings = GenerationSettings(rag_max_passage_tokens=400)
    return RagPipeline(engine, rpc=None, identifier=None, settings=settings)  # type: ignore[arg-type]


def test_the_chosen_passages_fit_and_the_work_is_linear() -> None:
    engine = WordTokenFakeEngine(max_model_len=100_000)
    sources, ids = _pipeline(engine)._fit(_hits(200, 100), "en", "why?", 256)
    assert len(sources) == 200
    assert len(ids) <= 100_000 - 256
    # every passage once on its own (twice: text, then block), the prompt twice: linear
    assert engine.chat_encodes == 2
    assert engine.encoded_words < 6 * 200 * 100


def test_passages_stop_where_the_context_ends() -> None:
    engine = WordTokenFakeEngine(max_model_len=1_000)
    sources, ids = _pipeline(engine)._fit(_hits(50, 100), "en", "why?", 256)
    assert 0 < len(sources) < 50
    assert len(ids) <= 1_000 - 256
    assert [s.number for s in sources] == list(range(1, len(sources) + 1))
