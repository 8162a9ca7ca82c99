"""The RAG model's structured reply, ``{"answerable": bool, "answer": "..."}``, read as it
streams: the verdict as soon as it is written, then the answer's text piece by piece (JSON
string escapes decoded), so that a grounded answer still streams token by token.

The engine enforces :data:`ANSWER_SCHEMA` (guided decoding), which writes the properties in
the schema's order: the verdict comes first and a refusal costs a handful of tokens.
"""

from __future__ import annotations

import json
import re
from typing import Any

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answerable": {"type": "boolean"}, "answer": {"type": "string"}},
    "required": ["answerable", "answer"],
    "additionalProperties": False,
}

_VERDICT = re.compile(r'"answerable"\s*:\s*(true|false)')
_ANSWER_START = re.compile(r'"answer"\s*:\s*"')
_ESCAPE_LENGTH = {"u": 6}
"""Characters an escape takes (``\\uXXXX``); every other escape takes 2."""


class AnswerReader:
    """Feed the model's text as it comes; :meth:`feed` returns the answer text it completes."""

    def __init__(self) -> None:
        self._buffer = ""
        self._at: int | None = None
        """Where the undecoded rest of the answer string starts in the buffer."""
        self.answerable: bool | None = None
        self.finished = False
        """The answer string is closed."""

    def feed(self, text: str) -> str:
        self._buffer += text
        if self.answerable is None:
            verdict = _VERDICT.search(self._buffer)
            if verdict:
                self.answerable = verdict.group(1) == "true"
        if self._at is None:
            start = _ANSWER_START.search(self._buffer)
            if start is None:
                return ""
            self._at = start.end()
        return self._decode()

    def _decode(self) -> str:
        assert self._at is not None
        out: list[str] = []
        buffer, at = self._buffer, self._at
        while at < len(buffer) and not self.finished:
            char = buffer[at]
            if char == '"':
                self.finished = True
                break
            if char != "\\":
                out.append(char)
                at += 1
                continue
            if at + 1 >= len(buffer):
                break  # the escape continues in the next piece
            length = _ESCAPE_LENGTH.get(buffer[at + 1], 2)
            escape = buffer[at : at + length]
            if _is_high_surrogate(escape):
                length = 12  # a pair: \uD83D\uDE00
                escape = buffer[at : at + length]
            if len(escape) < length:
                break
            try:
                out.append(json.loads(f'"{escape}"'))
            except ValueError:
                out.append(escape)
            at += length
        self._at = at
        return "".join(out)


def _is_high_surrogate(escape: str) -> bool:
    return len(escape) == 6 and escape[1] == "u" and escape[2:4].lower() in ("d8", "d9", "da", "db")
