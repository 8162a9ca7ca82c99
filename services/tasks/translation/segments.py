"""Long texts as sentences: split for translation, reassembled with their line breaks.

A text becomes its sentences plus the whitespace between them (``gaps``). The
translations are put back between the same gaps, so line breaks and blank lines
(paragraphs) survive exactly; only a gap of spaces inside a paragraph is adapted to
the target script (no space between Japanese or Chinese sentences, one space between
sentences of spaced scripts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.languages import NO_SPACE_BETWEEN_SENTENCES
from shared.text.sentences import sentence_spans


@dataclass(frozen=True, slots=True)
class Segmented:
    sentences: tuple[str, ...]
    gaps: tuple[str, ...]
    """``len(sentences) + 1`` separators: before the first sentence, between, after the last."""


def segment(text: str, max_chars: int) -> Segmented:
    """Split ``text`` into sentences of at most ``max_chars`` and the gaps around them."""
    spans = sentence_spans(text, max_chars=max_chars)
    sentences = tuple(text[start:end] for start, end in spans)
    gaps: list[str] = []
    cursor = 0
    for start, end in spans:
        gaps.append(text[cursor:start])
        cursor = end
    gaps.append(text[cursor:])
    return Segmented(sentences=sentences, gaps=tuple(gaps))


def _joint(gap: str, target: str) -> str:
    if "\n" in gap or "\r" in gap or "\u2029" in gap or "\u2028" in gap:
        return gap
    if target in NO_SPACE_BETWEEN_SENTENCES:
        return ""
    return gap or " "


def reassemble(segmented: Segmented, translated: Sequence[str], target: str) -> str:
    """The translated sentences between the original gaps."""
    if len(translated) != len(segmented.sentences):
        raise ValueError("one translation per sentence is needed")
    if not translated:
        return "".join(segmented.gaps)
    parts = [segmented.gaps[0]]
    for i, sentence in enumerate(translated):
        parts.append(sentence)
        following = segmented.gaps[i + 1]
        last = i == len(translated) - 1
        parts.append(following if last else _joint(following, target))
    return "".join(parts)
