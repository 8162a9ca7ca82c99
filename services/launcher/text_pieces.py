"""Input text cut into what the everyday commands send: translation pieces, sentiment lines.

A long text is translated in pieces of whole paragraphs (the API takes at most
``BABEL_GATEWAY_MAX_TEXT_CHARS`` characters a text, and one request should finish within
the gateway's translation timeout); the whitespace between pieces is kept, so the
translation has the input's paragraphs. A paragraph longer than a piece is cut at a line
break, else at a space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


@dataclass(frozen=True)
class Piece:
    text: str
    """What is translated (never blank)."""
    before: str
    """The whitespace in front of it in the input, copied as is."""


def _cut(paragraph: str, max_chars: int) -> list[tuple[str, str]]:
    """A stripped paragraph as ``(whitespace before, part)`` pairs of at most ``max_chars``:
    cut at the last line break, else space, in the second half of the window; hard when
    there is none."""
    parts: list[tuple[str, str]] = []
    before = ""
    rest = paragraph
    while len(rest) > max_chars:
        window = rest[: max_chars + 1]
        cut = window.rfind("\n")
        if cut < max_chars // 2:
            cut = max(window.rfind(" "), window.rfind("\t"))
        if cut < max(1, max_chars // 2):
            parts.append((before, rest[:max_chars]))
            before, rest = "", rest[max_chars:]
            continue
        part = rest[:cut].rstrip()
        tail = rest[len(part) :]
        parts.append((before, part))
        rest = tail.lstrip()
        before = tail[: len(tail) - len(rest)]
    parts.append((before, rest))
    return parts


def translation_pieces(text: str, max_chars: int) -> tuple[list[Piece], str]:
    """The pieces of ``text`` (paragraphs joined while they fit in ``max_chars``) and the
    whitespace after the last; ``"".join(p.before + p.text for p in pieces) + trailing``
    is ``text``."""
    if max_chars < 2:
        raise ValueError("max_chars must be at least 2")
    pieces: list[Piece] = []
    gap = ""
    chunks = _PARAGRAPH_BREAK.split(text)
    separators = [*_PARAGRAPH_BREAK.findall(text), ""]
    for paragraph, separator in zip(chunks, separators, strict=True):
        core = paragraph.strip()
        if not core:
            gap += paragraph + separator
            continue
        gap += paragraph[: len(paragraph) - len(paragraph.lstrip())]
        for before, part in _cut(core, max_chars):
            gap += before
            if pieces and len(pieces[-1].text) + len(gap) + len(part) <= max_chars:
                last = pieces[-1]
                pieces[-1] = Piece(text=last.text + gap + part, before=last.before)
            else:
                pieces.append(Piece(text=part, before=gap))
            gap = ""
        gap = paragraph[len(paragraph.rstrip()) :] + separator
    return pieces, gap


def sentiment_lines(text: str) -> list[tuple[int, str]]:
    """Non-blank lines of ``text`` with their 1-based line numbers, stripped."""
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
