"""Pack whole sentences into chunks of at most ``max_chars``, with sentence overlap.

Each chunk is a slice of the source (``source[chunk.start:chunk.end] == chunk.text``), from
the start of its first sentence to the end of its last, so the whitespace and line breaks
between sentences are kept as they were. A sentence longer than ``max_chars`` is split at
whitespace, else after a comma-like mark, else hard (no-space scripts).
"""

from __future__ import annotations

import msgspec

from shared.errors import BabelError, ErrorCode
from shared.text.sentences import Span, sentence_spans


class TooManyChunks(Exception):
    """The text makes more chunks than the caller allows."""


class Chunk(msgspec.Struct, frozen=True):
    text: str
    start: int
    end: int


def chunk_text(
    text: str, max_chars: int, overlap_chars: int = 0, max_chunks: int | None = None
) -> list[Chunk]:
    """Chunks of ``text`` in order; empty for blank text.

    Sentences are packed greedily while the chunk stays within ``max_chars``. The next chunk
    starts with the previous chunk's trailing sentences that fit in ``overlap_chars`` (and
    leave room for at least one new sentence), so every chunk brings new text.
    More than ``max_chunks`` chunks raise ``TooManyChunks`` as soon as the count passes it.
    """
    _validate(max_chars, overlap_chars)
    sentences = sentence_spans(text, max_chars=max_chars)
    chunks: list[Chunk] = []
    current: list[Span] = []
    for sentence in sentences:
        if current and sentence[1] - current[0][0] > max_chars:
            chunks.append(_chunk(text, current))
            if max_chunks is not None and len(chunks) >= max_chunks:
                raise TooManyChunks(max_chunks)
            current = _overlap(current, sentence, max_chars, overlap_chars)
        current.append(sentence)
    if current:
        chunks.append(_chunk(text, current))
    return chunks


def _chunk(text: str, sentences: list[Span]) -> Chunk:
    start, end = sentences[0][0], sentences[-1][1]
    return Chunk(text=text[start:end], start=start, end=end)


def _overlap(previous: list[Span], following: Span, max_chars: int, overlap: int) -> list[Span]:
    """The trailing sentences of ``previous`` within ``overlap`` chars that leave room for
    ``following``; never all of ``previous`` (that chunk did not have room for it)."""
    kept: list[Span] = []
    end = previous[-1][1]
    for sentence in reversed(previous[1:]):
        if end - sentence[0] > overlap or following[1] - sentence[0] > max_chars:
            break
        kept.append(sentence)
    kept.reverse()
    return kept


def _validate(max_chars: int, overlap_chars: int) -> None:
    if max_chars < 1:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"max_chars must be at least 1, got {max_chars}",
            field="chunking.max_chars",
        )
    if overlap_chars < 0 or overlap_chars >= max_chars:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"overlap_chars must be at least 0 and less than max_chars ({max_chars}), "
            f"got {overlap_chars}",
            field="chunking.overlap_chars",
        )
