"""The translation prompt for an instruction-tuned LLM, and the cleaning of its answer.

Small models add things around a translation: a preamble ("Here is the translation:"),
the target language's name as a label, quotes, a second line with notes, or a loop
that runs to the token limit. The request asks for the translation only; the answer
keeps the first non-empty line, without a label, wrapping quotes or a repeated tail.
"""

from __future__ import annotations

import re

from shared.languages import LANGUAGES, name_of
from shared.messages.generation import ChatMessage

INSTRUCTION = "Translate the following {source} text to {target}. Output only the translation."

STOP = ("\n\n", "<|im_end|>", "<|endoftext|>")

_NAMES = "|".join(re.escape(name) for name, _ in sorted(LANGUAGES.values(), reverse=True))
_PREAMBLE = re.compile(
    rf"(?:here(?:'s| is) )?(?:the |a |your )?(?:(?:{_NAMES}) )?(?:translation|translated text)"
    rf"(?: (?:in|to|into) (?:{_NAMES}))?(?: is)?\s*[:：]\s*|(?:{_NAMES})\s*[:：]\s*",
    re.IGNORECASE,
)
_QUOTES = {'"': '"', "“": "”", "„": "“", "«": "»", "「": "」", "『": "』", "'": "'"}
MIN_REPEAT = 3
"""A repeated tail's unit has at least this many characters and appears three times."""


def build_messages(text: str, source: str, target: str) -> tuple[ChatMessage, ...]:
    instruction = INSTRUCTION.format(source=name_of(source), target=name_of(target))
    return (ChatMessage(role="user", content=f"{instruction}\n\n{text}"),)


def max_tokens_for(text: str) -> int:
    """A cap relative to the source: one token a character covers every script pair."""
    return min(16 + len(text), 1_024)


def clean_translation(output: str, source_text: str, *, truncated: bool = False) -> str:
    """The translation in ``output``: first line, no label or wrapping quotes.

    ``truncated`` (the model ran to the token cap): a repeated tail is cut to one copy.
    """
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0]
    if len(lines) > 1 and _PREAMBLE.fullmatch(first):
        first = lines[1]  # "Translation:" alone on the first line
    text = (_PREAMBLE.sub("", first, count=1) if _PREAMBLE.match(first) else first).strip()
    text = text or first
    text = _unquote(text, source_text)
    return cut_repeated_tail(text) if truncated else text


def cut_repeated_tail(text: str) -> str:
    """``text`` whose end is one unit (of at least ``MIN_REPEAT`` characters) repeated
    three or more times, words apart or not, cut to the first copy; in linear time (a
    backtracking pattern for this was cubic on a looping answer)."""
    words = " ".join(text.split())
    best: tuple[int, int, str] | None = None  # (start of the repeats, unit length, string)
    for candidate in (words, words + " "):  # units with or without a space between copies
        n = len(candidate)
        period = _z_function(candidate[::-1])  # period[L] + L: the tail periodic with L
        for unit in range(MIN_REPEAT, n // 3 + 1):
            copies = (period[unit] + unit) // unit
            if copies >= 3 and (best is None or n - copies * unit < best[0]):
                best = (n - copies * unit, unit, candidate)
    if best is None:
        return text
    start, unit, candidate = best
    return (candidate[:start] + candidate[start : start + unit]).strip()


def _z_function(s: str) -> list[int]:
    """``z[i]``: the length of the longest common prefix of ``s`` and ``s[i:]``."""
    n = len(s)
    z = [0] * n
    left = right = 0
    for i in range(1, n):
        if i < right:
            z[i] = min(right - i, z[i - left])
        while i + z[i] < n and s[z[i]] == s[i + z[i]]:
            z[i] += 1
        if i + z[i] > right:
            left, right = i, i + z[i]
    return z


def _unquote(text: str, source_text: str) -> str:
    if len(text) < 2:
        return text
    closing = _QUOTES.get(text[0])
    source = source_text.strip()
    quoted_source = bool(source) and source[0] == text[0]
    if closing is not None and text.endswith(closing) and not quoted_source:
        return text[1:-1].strip()
    return text
