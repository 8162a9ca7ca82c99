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
_REPEAT = re.compile(r"(.{3,}?)(?:\s*\1){2,}\s*$", re.DOTALL)


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
    return _REPEAT.sub(r"\1", text).strip() if truncated else text


def _unquote(text: str, source_text: str) -> str:
    if len(text) < 2:
        return text
    closing = _QUOTES.get(text[0])
    source = source_text.strip()
    quoted_source = bool(source) and source[0] == text[0]
    if closing is not None and text.endswith(closing) and not quoted_source:
        return text[1:-1].strip()
    return text
